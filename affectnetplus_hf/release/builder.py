"""The ``datasets`` builder of AffectNet+: configs, splits, and examples from the reader.

Usage::

    from affectnetplus_hf import AffectNetPlus

    builder = AffectNetPlus(config_name="easy", data_dir="/data/AffectNet+")
    builder.download_and_prepare(num_proc=2)
    ds = builder.as_dataset()                # DatasetDict(train, validation)
    it = builder.as_streaming_dataset()      # IterableDatasetDict, no cache written

The config dataclass holds data (which part, which subset, what to do with bad
records); the builder holds behaviour. ``_generate_examples`` calls the reader and
nothing else parses files. Bad records are skipped and logged (one warning each,
naming file and reason, then a reconciliation line per split); with
``on_bad="error"`` the first one raises :class:`~affectnetplus_hf.errors.BadRecordError`.
The export (``affectnetplus export``) writes the full report file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import datasets

from ..core.choices import OnBad, check_choice
from ..core.configs import DEFAULT_CONFIG, RELEASE_CONFIGS, RELEASE_KINDS, configs_for
from ..core.schema import (
    AFFECTNET_CITATION,
    AFFECTNETPLUS_CITATION,
    FEATURES,
    HOMEPAGE,
    LICENSE_NOTE,
    MANUAL_DOWNLOAD_INSTRUCTIONS,
    SUBSETS,
)
from ..errors import ReleaseNotFoundError
from .kind import iter_rows, open_release

__all__ = ["AffectNetPlus", "AffectNetPlusConfig", "BUILDER_CONFIGS"]

logger = logging.getLogger(__name__)

_DESCRIPTION = (
    "AffectNet+: ~960k face crops with a human expression label, an 8-class soft label, a "
    "data-complexity subset (easy / challenging / difficult), valence and arousal, 68 facial "
    "landmarks, head pose, and age, gender and race estimates."
)


@dataclass
class AffectNetPlusConfig(datasets.BuilderConfig):
    """One view of the release.

    Attributes:
        splits: split name -> release part (``train``, ``validation`` or ``unlabeled``).
        subset: keep only rows of this data-complexity subset (``None`` keeps all).
        on_bad: ``"skip"`` (log and skip bad records) or ``"error"`` (raise on the first).
    """

    splits: dict | None = None
    subset: str | None = None
    on_bad: OnBad = "skip"

    def __post_init__(self):
        super().__post_init__()
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when ``subset`` or ``on_bad`` is not a valid value.

        Run at creation and again by the builder, since ``datasets`` sets config overrides
        (``on_bad=...``, ``subset=...``) as attributes after the config was created.
        """
        if self.subset is not None and self.subset not in SUBSETS:
            raise ValueError(f"subset must be one of {list(SUBSETS)} or None, got {self.subset!r}")
        check_choice("on_bad", self.on_bad, OnBad)


#: Every config of every release kind, by name, in card order (AffectNet+'s first); a config
#: of one name reads the same parts in every kind (``all``: train and validation).
_SPECS: dict = {}
for _kind in RELEASE_KINDS:
    for _spec in RELEASE_CONFIGS[_kind]:
        _SPECS.setdefault(_spec.name, _spec)

#: One builder config per config name of :data:`affectnetplus_hf.core.configs.RELEASE_CONFIGS`.
BUILDER_CONFIGS = [
    AffectNetPlusConfig(
        name=spec.name,
        version=datasets.Version("1.0.0"),
        description=spec.description,
        splits=dict(spec.splits),
        subset=spec.subset,
    )
    for spec in _SPECS.values()
]


class AffectNetPlus(datasets.GeneratorBasedBuilder):
    """AffectNet+ from the folder a user extracted it into (``data_dir``)."""

    BUILDER_CONFIG_CLASS = AffectNetPlusConfig
    BUILDER_CONFIGS = BUILDER_CONFIGS
    DEFAULT_CONFIG_NAME = DEFAULT_CONFIG
    DEFAULT_WRITER_BATCH_SIZE = 100  # image rows: keep row groups small for random access

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config.validate()  # config overrides (on_bad=..., subset=...) are set after the config's creation

    @property
    def manual_download_instructions(self) -> str:
        return MANUAL_DOWNLOAD_INSTRUCTIONS

    def _check_manual_download(self, dl_manager) -> None:
        # The one private hook of datasets we override (no public one exists): datasets < 4
        # checks for a data_dir before _split_generators and raises its own
        # ManualDownloadError (naming a load_dataset call that does not apply here);
        # find_release raises ReleaseNotFoundError with the instructions on every version.
        # datasets 4+ has no such check. tests/test_builder.py fails, naming the datasets
        # version, if the hook changes.
        return None

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=FEATURES,
            homepage=HOMEPAGE,
            license=LICENSE_NOTE,
            citation=AFFECTNETPLUS_CITATION + "\n\n" + AFFECTNET_CITATION,
        )

    def _split_generators(self, dl_manager):
        data_dir = self.config.data_dir or getattr(dl_manager, "manual_dir", None)
        release = open_release(data_dir)  # raises ReleaseNotFoundError with the instructions
        valid = [spec.name for spec in configs_for(release.kind)]
        if self.config.name not in valid:
            raise ReleaseNotFoundError(
                f"{release.root}: holds {release.title}, which has no config {self.config.name!r} (it has "
                f"{', '.join(valid)}); choose one of those."
            )
        generators = []
        for split, part_name in self.config.splits.items():
            if part_name not in release.parts:
                logger.warning(
                    "AffectNet+: part %r not found under %s; split %r is left out (partial extraction).",
                    part_name,
                    release.root,
                    split,
                )
                continue
            records, ignored = release.list_records(part_name)
            for item in ignored:
                logger.warning("AffectNet+: not a record, ignored: %s (%s)", item.path, item.reason)
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs={"records": records, "split": split}))
        if not generators:
            wanted = ", ".join(self.config.splits.values())
            raise ReleaseNotFoundError(
                f"{release.root}: config {self.config.name!r} needs part(s) {wanted}, and none is "
                f"present (found: {', '.join(release.parts) or 'none'}).\n\n" + MANUAL_DOWNLOAD_INSTRUCTIONS
            )
        return generators

    def _generate_examples(self, records, split):
        subset_code = SUBSETS.index(self.config.subset) if self.config.subset else None
        read = written = bad = 0
        for result in iter_rows(records, on_bad=self.config.on_bad):
            read += 1
            for note in result.notes:
                logger.info("AffectNet+: %s: %s: %s", note.path, note.field, note.reason)
            if result.bad is not None:
                bad += 1
                logger.warning("AffectNet+: bad record skipped: %s: %s", result.bad.path, result.bad.reason)
                continue
            row = result.row
            if subset_code is not None and row["subset"] != subset_code:
                continue
            written += 1
            if row["landmarks"] is not None:  # plain nested lists, as every other column (streaming yields rows as-is)
                row["landmarks"] = row["landmarks"].tolist()
            yield row["image_id"], row
        logger.info(
            "AffectNet+ %s/%s: %d records read, %d bad, %d yielded%s",
            self.config.name,
            split,
            read,
            bad,
            written,
            f" ({read - bad - written} in other subsets)" if subset_code is not None else "",
        )
