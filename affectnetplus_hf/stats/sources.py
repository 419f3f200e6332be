"""Where statistics read rows from: a raw release, an exported folder, a Hub repo, or rows in hand.

Every source is turned into the same stream of ``(split, batch)`` pairs of up to
``batch_size`` rows over the :data:`STATS_COLUMNS`. A batch is always a ``pyarrow.Table``
typed by the schema: ``datasets`` sources are read in their ``arrow`` format (no Python
object per value), and rows of a raw release or rows in hand (``datasets``' Python
format) are converted to Arrow once, by :func:`affectnetplus_hf.core.columns.rows_to_arrow`,
so raw and exported statistics are computed by one code path.
Images are never read into the stream, let alone decoded:

* **raw release** (a folder :func:`~affectnetplus_hf.release.layout.find_release` accepts): records
  are listed by :mod:`~affectnetplus_hf.release.layout` and read by
  :func:`~affectnetplus_hf.release.reader.iter_rows`, the package's only parser; bad records are
  counted, not raised;
* **exported folder** (written by ``affectnetplus export``) or **Hub repo id**
  (``owner/name``): ``datasets.load_dataset(source, config, streaming=True,
  columns=STATS_COLUMNS)`` per config, so Parquet files are read column by column and the
  image column is never fetched. Configs ``all`` and ``unlabeled`` are read (the subset
  configs hold the same rows again); the ``unlabeled`` config's only split ``train`` is
  reported as split ``unlabeled``;
* **rows in hand**: a ``datasets.Dataset`` / ``IterableDataset`` (one split), a
  ``DatasetDict`` / ``IterableDatasetDict`` (its splits), or a mapping ``split -> iterable
  of row dicts``.

Memory stays flat: one batch is alive at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.columns import rows_to_arrow
from ..core.configs import ALL_ROW_CONFIGS as ROW_CONFIGS
from ..core.configs import part_of_split
from ..core.export_files import CARD_FILE, DATA_DIR, INFO_FILE, SHARD_SUFFIX
from ..core.schema import COLUMN_NAMES, FEATURES, ORIGINAL_RELEASE_COLUMNS
from ..errors import AffectNetPlusError, ReleaseNotFoundError

__all__ = [
    "BATCH_SIZE",
    "STATS_COLUMNS",
    "SourceInfo",
    "arrow_of_columns",
    "arrow_of_rows",
    "batched_rows",
    "describe_source",
    "iter_batches",
]

#: Every schema column except ``image``: what statistics read.
STATS_COLUMNS: tuple[str, ...] = tuple(name for name in COLUMN_NAMES if name != "image")

#: Rows per batch handed to the accumulator.
BATCH_SIZE = 1000


@dataclass
class SourceInfo:
    """What was read: filled in while batches are produced.

    ``kind`` is ``"raw"``, ``"exported"``, ``"hub"`` or ``"rows"``; ``bad_records`` and
    ``notes`` are per split and only counted for raw releases (an export has reported
    them already, in its ``OUT/export_report.jsonl``).
    """

    kind: str
    name: str
    configs: list[str] = field(default_factory=list)
    bad_records: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)


def _is_exported_folder(path: Path) -> bool:
    if (path / INFO_FILE).is_file():
        return True
    readme = path / CARD_FILE
    if readme.is_file():
        head = readme.read_text(encoding="utf-8", errors="replace")[:20_000]
        if head.startswith("---") and "\nconfigs:" in head:
            return True
    data = path / DATA_DIR
    return data.is_dir() and next(data.rglob("*" + SHARD_SUFFIX), None) is not None


def describe_source(source: Any) -> tuple[str, Any]:
    """``(kind, value)`` for ``source``: ``"raw"``/``"exported"`` with a :class:`Path`,
    ``"hub"`` with a repo id, ``"rows"`` with the object itself.

    Raises :class:`~affectnetplus_hf.errors.AffectNetPlusError` naming what was given and
    what is accepted when ``source`` is none of these.
    """
    if not isinstance(source, (str, os.PathLike)):
        return "rows", source
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise AffectNetPlusError(
                f"{path}: is a file; expected a folder (an exported dataset folder or a raw AffectNet+ "
                "release) or a Hub repo id such as 'me/affectnet_plus'."
            )
        if _is_exported_folder(path):
            return "exported", path
        try:
            from ..release.kind import open_release

            open_release(path)
        except ReleaseNotFoundError as exc:
            raise ReleaseNotFoundError(
                f"{path}: is neither an exported dataset folder (no {INFO_FILE}, no {CARD_FILE} with "
                f"`configs:`, no {DATA_DIR}/**/*{SHARD_SUFFIX}) nor a raw AffectNet+ release. Pass the folder written by "
                "`affectnetplus export`, the folder you extracted the release into, or a Hub repo id.\n"
                f"Looking for a release said: {exc}"
            ) from None
        return "raw", path
    from ..core.repo_id import is_repo_id

    if is_repo_id(text):
        return "hub", text
    raise AffectNetPlusError(
        f"{text!r}: no such folder, and not a Hub repo id (expected 'owner/name'). Pass an exported "
        "dataset folder, a raw AffectNet+ release folder, or a Hub repo id."
    )


def arrow_of_rows(rows: list[dict]):
    """Row dicts (``datasets``' Python format) -> one ``pyarrow.Table`` of the :data:`STATS_COLUMNS`."""
    _check_columns(rows[0] if rows else STATS_COLUMNS, "rows")
    return _with_all_columns(rows_to_arrow(rows, STATS_COLUMNS))


def arrow_of_columns(columns: Mapping[str, list]):
    """A dict ``{column: list of values}`` -> one ``pyarrow.Table`` of the :data:`STATS_COLUMNS`."""
    _check_columns(columns, "rows")
    return _with_all_columns(rows_to_arrow(columns, STATS_COLUMNS))


def _with_all_columns(table):
    """``table`` with the :data:`~affectnetplus_hf.core.schema.ORIGINAL_RELEASE_COLUMNS` it lacks
    added as nulls (rows and exports made before those columns existed), in STATS_COLUMNS order."""
    import pyarrow as pa

    missing = [name for name in ORIGINAL_RELEASE_COLUMNS if name not in table.column_names]
    if not missing:
        return table
    for name in missing:
        table = table.append_column(name, pa.nulls(table.num_rows, type=FEATURES.arrow_schema.field(name).type))
    return table.select([name for name in STATS_COLUMNS if name in table.column_names])


def batched_rows(rows: Iterable[dict], batch_size: int) -> Iterator:
    """Row dicts -> Arrow tables of up to ``batch_size`` rows."""
    buffer: list[dict] = []
    for row in rows:
        buffer.append(row)
        if len(buffer) >= batch_size:
            yield arrow_of_rows(buffer)
            buffer = []
    if buffer:
        yield arrow_of_rows(buffer)


def _check_columns(names: Iterable[str], what: str) -> None:
    present = set(names)
    missing = [name for name in STATS_COLUMNS if name not in present and name not in ORIGINAL_RELEASE_COLUMNS]
    if missing:
        raise AffectNetPlusError(
            f"{what} lack{'' if what == 'rows' else 's'} column(s) {', '.join(missing)}; expected AffectNet+ rows with the columns "
            f"{', '.join(STATS_COLUMNS)} (see affectnetplus_hf.core.schema.FEATURES)."
        )


def _dataset_batches(dataset: Any, batch_size: int, what: str) -> Iterator:
    names = getattr(dataset, "column_names", None)
    if names is None and getattr(dataset, "features", None) is not None:
        names = list(dataset.features)
    if names is not None:
        _check_columns(names, f"{what}:")
        if set(names) != set(STATS_COLUMNS):
            dataset = dataset.select_columns([name for name in STATS_COLUMNS if name in names])
    for table in dataset.with_format("arrow").iter(batch_size=batch_size):
        yield _with_all_columns(table)


def _num_rows(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:
        pass
    info = getattr(dataset, "info", None)
    splits = getattr(info, "splits", None) or {}
    split = getattr(dataset, "split", None)
    if split is not None and str(split) in splits:
        return splits[str(split)].num_examples or None
    return None


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="row", disable=not enabled, leave=False)


def _raw_batches(root: Path, info: SourceInfo, splits, batch_size: int, progress: bool):
    from ..release.kind import iter_rows, open_release

    release = open_release(root)
    for name in release.info.parts:
        if name not in release.parts or (splits is not None and name not in splits):
            continue
        records, _ignored = release.list_records(name)
        info.bad_records[name] = 0
        info.notes[name] = 0
        bar = _progress(len(records), f"stats {name}", progress)
        buffer: list[dict] = []
        try:
            for result in iter_rows(records, on_bad="skip"):
                bar.update(1)
                info.notes[name] += len(result.notes)
                row = result.row
                if result.bad is not None or row is None:  # a bad record has no row
                    info.bad_records[name] += 1
                    continue
                row.pop("image", None)
                buffer.append(row)
                if len(buffer) >= batch_size:
                    yield name, arrow_of_rows(buffer)
                    buffer = []
            if buffer:
                yield name, arrow_of_rows(buffer)
        finally:
            bar.close()


def _load_streaming(source: str, config: str):
    import datasets

    columns = list(STATS_COLUMNS)
    features = datasets.load_dataset_builder(source, config).info.features
    if features is not None:  # an export made before ORIGINAL_RELEASE_COLUMNS existed has not got them
        columns = [name for name in columns if name in features or name not in ORIGINAL_RELEASE_COLUMNS]
    try:
        return datasets.load_dataset(source, config, streaming=True, columns=columns)
    except (TypeError, ValueError) as exc:
        # A builder without Parquet column selection: stream whole rows, images undecoded.
        if "columns" not in str(exc):
            raise
        loaded = datasets.load_dataset(source, config, streaming=True)
        return {
            split: ds.cast_column("image", datasets.Image(decode=False)).remove_columns(["image"])
            if "image" in (ds.column_names or [])
            else ds
            for split, ds in loaded.items()
        }


def _hub_errors() -> tuple[type[BaseException], ...]:
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import HfHubHTTPError

    return (ConnectionError, DatasetNotFoundError, HfHubHTTPError)


def _hf_batches(source: str, info: SourceInfo, splits, batch_size: int, progress: bool):
    if info.kind != "hub":
        yield from _hf_batches_unchecked(source, info, splits, batch_size, progress)
        return
    try:
        yield from _hf_batches_unchecked(source, info, splits, batch_size, progress)
    except _hub_errors() as exc:
        raise AffectNetPlusError(
            f"{source!r}: no local folder of that name, and reading it as a Hub dataset repo failed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}). Check the repo id; "
            "for a private or gated repo log in first (`hf auth login` or HF_TOKEN); check the network."
        ) from exc


def _hf_batches_unchecked(source: str, info: SourceInfo, splits, batch_size: int, progress: bool):
    import datasets

    names = datasets.get_dataset_config_names(source)
    configs = [name for name in ROW_CONFIGS if name in names]
    if not configs:
        if len(names) != 1:
            raise AffectNetPlusError(
                f"{source}: has configs {names}, none of which is {' or '.join(ROW_CONFIGS)}; expected a dataset "
                "written by `affectnetplus export` (config 'all' holds the human-annotated rows, 'unlabeled' the rest)."
            )
        configs = names
    info.configs = configs
    for config in configs:
        loaded = _load_streaming(source, config)
        for split_name, dataset in loaded.items():
            split = part_of_split(config, str(split_name))  # statistics report rows by part
            if splits is not None and split not in splits:
                continue
            bar = _progress(_num_rows(dataset), f"stats {split}", progress)
            try:
                for columns in _dataset_batches(
                    dataset, batch_size, f"{source} config {config!r} split {split_name!r}"
                ):
                    bar.update(columns.num_rows)
                    yield split, columns
            finally:
                bar.close()


def _rows_batches(obj: Any, info: SourceInfo, splits, batch_size: int, progress: bool):
    import datasets

    if isinstance(obj, (datasets.Dataset, datasets.IterableDataset)):
        split = str(obj.split) if getattr(obj, "split", None) is not None else "train"
        items: Iterable = [(split, obj)]
    elif isinstance(obj, Mapping):
        items = obj.items()
    else:
        raise AffectNetPlusError(
            f"cannot read statistics from a {type(obj).__name__}; expected a folder path, a Hub repo id, a "
            "datasets.Dataset / IterableDataset / DatasetDict, or a mapping split -> iterable of row dicts."
        )
    for split, value in items:
        split = str(split)
        if splits is not None and split not in splits:
            continue
        bar = _progress(_num_rows(value), f"stats {split}", progress)
        try:
            if isinstance(value, (datasets.Dataset, datasets.IterableDataset)):
                batches = _dataset_batches(value, batch_size, f"split {split!r}")
            else:
                batches = batched_rows(value, batch_size)
            for columns in batches:
                bar.update(columns.num_rows)
                yield split, columns
        finally:
            bar.close()


def iter_batches(
    source: Any,
    info: SourceInfo | None = None,
    *,
    splits: Iterable[str] | None = None,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
) -> Iterator[tuple[str, Any]]:
    """Yield ``(split, columns)`` batches of ``source`` (see the module docstring).

    ``info``, when given, is filled in as reading goes (configs read, bad records and
    notes of a raw release); ``splits`` keeps only those split names (``train``,
    ``validation``, ``unlabeled``); ``progress`` shows a tqdm bar per split.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    kind, value = describe_source(source)
    if info is None:
        info = SourceInfo(kind=kind, name=str(value) if kind != "rows" else type(value).__name__)
    wanted = set(splits) if splits is not None else None
    if kind == "raw":
        yield from _raw_batches(value, info, wanted, batch_size, progress)
    elif kind in ("exported", "hub"):
        yield from _hf_batches(str(value), info, wanted, batch_size, progress)
    else:
        yield from _rows_batches(value, info, wanted, batch_size, progress)
