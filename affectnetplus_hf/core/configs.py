"""The configs of AffectNet+ as plain data, and the one spelling of "no value".

This module is a leaf: it imports nothing from the package but the schema's expression
and subset names, so every stage (builder, export, card, stats, CLI, loading script) can read it.

A release has three **parts** (folders): ``train`` and ``validation`` (human annotated)
and ``unlabeled`` (``no_human_annotated``). A **config** reads some parts as its splits,
optionally keeping one data-complexity subset; the ``unlabeled`` part is the ``train``
split of config ``unlabeled`` (a ``datasets`` config has no split named ``unlabeled``).
Statistics report rows by part, so :func:`part_of_split` undoes that rename.

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
    "CONFIGS",
    "CONFIG_NAMES",
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
        ConfigSpec(subset, _HUMAN_SPLITS, subset, f"Human-annotated part, {subset} subset only: splits train and validation.")
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


def config_spec(name: str) -> ConfigSpec:
    """The :class:`ConfigSpec` named ``name``; an unknown name raises ``ValueError`` listing the valid ones."""
    for spec in CONFIGS:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown config {name!r}; valid: {list(CONFIG_NAMES)}")


def config_reading(part: str) -> str:
    """The config, keeping every subset, one of whose splits reads ``part`` (``train`` ->
    ``all``, ``unlabeled`` -> ``unlabeled``); an unknown part raises ``ValueError``."""
    for name in ROW_CONFIGS:
        if part in config_spec(name).splits.values():
            return name
    raise ValueError(f"unknown part {part!r}; valid: {list(PARTS)}")


def part_of_split(config: str, split: str) -> str:
    """The part that split ``split`` of config ``config`` reads (``unlabeled``/``train`` ->
    ``unlabeled``); a config or split not defined here keeps its split name."""
    for spec in CONFIGS:
        if spec.name == config:
            return spec.splits.get(split, split)
    return split
