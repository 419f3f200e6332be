"""The configs of AffectNet+ as plain data, and the one spelling of "no value".

This module is a leaf: it imports nothing from the package but the schema's expression
and subset names, so every stage (builder, export, card, stats, CLI, loading script) can read it.

A release has three **parts** (folders): ``train`` and ``validation`` (human annotated)
and ``unlabeled`` (``no_human_annotated``). A **config** reads some parts as its splits,
optionally keeping one data-complexity subset; the ``unlabeled`` part is the ``train``
split of config ``unlabeled`` (a ``datasets`` config has no split named ``unlabeled``).
Statistics report rows by part, so :func:`part_of_split` undoes that rename.

The original AffectNet releases have other parts and fewer configs (:data:`RELEASE_CONFIGS`,
by release kind): AffectNet 2017 has ``train``, ``validation`` and ``automatic`` (its
automatically annotated list, config ``automatic``, split ``train``), the 8-label release
``train`` and ``validation``; neither has complexity subsets, so neither has their configs.

``NULL_LABEL`` / ``NULL_SUBSET`` are the names a user sees for rows whose human label
or data-complexity subset is null: in ``export_info.json`` counts, the export's
partition folders, the card, ``verify``, ``stats`` tables and plots. There is no other
spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .schema import EXPRESSIONS, SUBSETS

__all__ = [
    "AFFECTNET_2017",
    "AFFECTNET_8LABELS",
    "AFFECTNET_PLUS",
    "ALL_PARTS",
    "ALL_ROW_CONFIGS",
    "AUTOMATIC_PART",
    "CONFIGS",
    "CONFIG_NAMES",
    "RELEASE_CONFIGS",
    "RELEASE_KINDS",
    "RELEASE_PARTS",
    "DEFAULT_CONFIG",
    "HUMAN_PARTS",
    "LABEL_NAMES",
    "NULL_LABEL",
    "NULL_SUBSET",
    "PARTS",
    "ROW_CONFIGS",
    "SUBSET_NAMES",
    "UNLABELED_PART",
    "ConfigSpec",
    "config_reading",
    "config_spec",
    "configs_for",
    "label_name",
    "part_of_split",
    "subset_name",
]

#: How a null human label is named wherever a user can see it.
NULL_LABEL = "no_label"
#: How a null data-complexity subset is named wherever a user can see it.
NULL_SUBSET = "no_subset"


#: Every name a human label can show, in code order, the null group last.
LABEL_NAMES: tuple[str, ...] = (*EXPRESSIONS, NULL_LABEL)
#: Every name a subset can show (the export's partitions), in code order, the null group last.
SUBSET_NAMES: tuple[str, ...] = (*SUBSETS, NULL_SUBSET)


def label_name(code: int | None) -> str:
    """The name a user sees for a human-label code: its expression, or :data:`NULL_LABEL` for null."""
    return NULL_LABEL if code is None else EXPRESSIONS[code]


def subset_name(code: int | None) -> str:
    """The name a user sees for a subset code: ``easy``/``challenging``/``difficult``, or :data:`NULL_SUBSET` for null."""
    return NULL_SUBSET if code is None else SUBSETS[code]


#: The human-annotated parts (their rows have a human label).
HUMAN_PARTS: tuple[str, ...] = ("train", "validation")
#: The part without human labels (the release's ``no_human_annotated`` folder).
UNLABELED_PART = "unlabeled"
#: The release's parts, in report order.
PARTS: tuple[str, ...] = (*HUMAN_PARTS, UNLABELED_PART)

_HUMAN_SPLITS = MappingProxyType({part: part for part in HUMAN_PARTS})
_UNLABELED_SPLITS = MappingProxyType({"train": UNLABELED_PART})


@dataclass(frozen=True)
class ConfigSpec:
    """One config: its name, ``splits`` (split name -> part), the subset it keeps (``None``:
    all), and the one-line description the builder and the card show."""

    name: str
    splits: Mapping[str, str] = field(default_factory=dict)
    subset: str | None = None
    description: str = ""


#: Every config, in card order; the first is the default.
CONFIGS: tuple[ConfigSpec, ...] = (
    ConfigSpec("all", _HUMAN_SPLITS, None, "Human-annotated part, every subset: splits train and validation."),
    *(
        ConfigSpec(
            subset, _HUMAN_SPLITS, subset, f"Human-annotated part, {subset} subset only: splits train and validation."
        )
        for subset in SUBSETS
    ),
    ConfigSpec(UNLABELED_PART, _UNLABELED_SPLITS, None, "The no_human_annotated part (no human label): split train."),
)

#: Config names in card order.
CONFIG_NAMES: tuple[str, ...] = tuple(spec.name for spec in CONFIGS)

#: The config ``load_dataset(folder)`` gives without a name.
DEFAULT_CONFIG = CONFIGS[0].name

#: Configs that together hold every row exactly once: those that keep every subset (the
#: subset configs repeat ``all``'s rows).
ROW_CONFIGS: tuple[str, ...] = tuple(spec.name for spec in CONFIGS if spec.subset is None)


# ----------------------------------------------------------------------------- release kinds

#: The release kinds this package reads, by the name ``export_info.json`` records.
AFFECTNET_PLUS = "affectnet_plus"
AFFECTNET_2017 = "affectnet_2017"
AFFECTNET_8LABELS = "affectnet_8labels"
RELEASE_KINDS: tuple[str, ...] = (AFFECTNET_PLUS, AFFECTNET_2017, AFFECTNET_8LABELS)

#: AffectNet 2017's automatically annotated list (``automatically_annotated.csv``): no human label.
AUTOMATIC_PART = "automatic"

#: Each kind's parts, in the order they are processed and reported.
RELEASE_PARTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {AFFECTNET_PLUS: PARTS, AFFECTNET_2017: (*HUMAN_PARTS, AUTOMATIC_PART), AFFECTNET_8LABELS: HUMAN_PARTS}
)

#: Each kind's configs, in card order, the first the default. A config a release cannot fill
#: is absent: the originals have no complexity subsets, only AffectNet 2017 an automatic list.
RELEASE_CONFIGS: Mapping[str, tuple[ConfigSpec, ...]] = MappingProxyType(
    {
        AFFECTNET_PLUS: CONFIGS,
        AFFECTNET_2017: (
            ConfigSpec(
                "all",
                _HUMAN_SPLITS,
                None,
                "Manually annotated images: splits train (training.csv) and validation (validation.csv).",
            ),
            ConfigSpec(
                AUTOMATIC_PART,
                MappingProxyType({"train": AUTOMATIC_PART}),
                None,
                "Automatically annotated images (automatically_annotated.csv; expression in auto_label): split train.",
            ),
        ),
        AFFECTNET_8LABELS: (
            ConfigSpec(
                "all", _HUMAN_SPLITS, None, "The 8-label release: splits train (train_set) and validation (val_set)."
            ),
        ),
    }
)

#: Every part name of any kind, in report order (``train``, ``validation``, ``unlabeled``, ``automatic``).
ALL_PARTS: tuple[str, ...] = tuple(dict.fromkeys(part for kind in RELEASE_KINDS for part in RELEASE_PARTS[kind]))

#: Configs of any kind that together hold every row of their release once: what statistics read.
ALL_ROW_CONFIGS: tuple[str, ...] = tuple(
    dict.fromkeys(spec.name for kind in RELEASE_KINDS for spec in RELEASE_CONFIGS[kind] if spec.subset is None)
)


def configs_for(kind: str) -> tuple[ConfigSpec, ...]:
    """The configs of release kind ``kind``; an unknown kind raises ``ValueError`` listing the valid ones."""
    try:
        return RELEASE_CONFIGS[kind]
    except KeyError:
        raise ValueError(f"unknown release kind {kind!r}; valid: {list(RELEASE_KINDS)}") from None


def config_spec(name: str, kind: str = AFFECTNET_PLUS) -> ConfigSpec:
    """The :class:`ConfigSpec` named ``name`` of release kind ``kind``; an unknown name raises
    ``ValueError`` listing the valid ones."""
    specs = configs_for(kind)
    for spec in specs:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown config {name!r}; valid: {[spec.name for spec in specs]}")


def config_reading(part: str, kind: str = AFFECTNET_PLUS) -> str:
    """The config, keeping every subset, one of whose splits reads ``part`` (``train`` ->
    ``all``, ``unlabeled`` -> ``unlabeled``); an unknown part raises ``ValueError``."""
    for spec in configs_for(kind):
        if spec.subset is None and part in spec.splits.values():
            return spec.name
    raise ValueError(f"unknown part {part!r}; valid: {list(RELEASE_PARTS[kind])}")


def part_of_split(config: str, split: str) -> str:
    """The part that split ``split`` of config ``config`` reads (``unlabeled``/``train`` ->
    ``unlabeled``, ``automatic``/``train`` -> ``automatic``); a config or split not defined
    here keeps its split name. Configs of one name read the same parts in every kind."""
    for kind in RELEASE_KINDS:
        for spec in RELEASE_CONFIGS[kind]:
            if spec.name == config:
                return spec.splits.get(split, split)
    return split
