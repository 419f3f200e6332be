"""Result shaping: the accumulator's sums -> :class:`StatsSummary`, typed and frozen.

:meth:`StatsSummary.to_json` is the plain data of ``stats.json`` and of
:func:`~.compute.compute_stats` (ints, floats, strings, lists, dicts and ``None``; each
field's name is its key); :meth:`StatsSummary.from_json` reads that data back, so the
tables, plots, report and card take either. Definitions of every number: :mod:`.compute`.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np

from ..core.schema import GENDERS, NUM_SOFT_CLASSES, RACES
from .groups import (
    AGE_BIN_EDGES,
    AGE_BIN_LABELS,
    CLASS_GROUPS,
    GENDER_GROUPS,
    NULL_COLUMNS,
    RACE_GROUPS,
    RANGED_COLUMNS,
    SOFT_CLASSES,
    STATS_VERSION,
    SUBSET_GROUPS,
    SUMMARY_RANGES,
    VA_BINS,
)
from .sources import SourceInfo

__all__ = [
    "AgeSummary",
    "Ages",
    "Agreement",
    "AgreementCell",
    "Demographic",
    "Demographics",
    "Density",
    "Labels",
    "Landmarks",
    "Nulls",
    "OutOfRange",
    "Rows",
    "SoftLabelMean",
    "SourceSummary",
    "Spread",
    "StatsSummary",
    "ValenceArousal",
    "ValenceArousalSummary",
    "AxisSummary",
    "summarize",
]


@dataclass(frozen=True)
class Spread:
    """Count, mean, population std, min and max of the known values of one group (``None`` when none is known)."""

    known: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class SourceSummary:
    """What was read (:class:`~.sources.SourceInfo`, frozen)."""

    kind: str
    name: str
    configs: tuple[str, ...]
    bad_records: Mapping[str, int]
    notes: Mapping[str, int]


@dataclass(frozen=True)
class Labels:
    """The group names the other fields are keyed by, in table order."""

    classes: tuple[str, ...]
    subsets: tuple[str, ...]
    soft_classes: tuple[str, ...]
    genders: tuple[str, ...]
    races: tuple[str, ...]
    age_bins: tuple[str, ...]
    age_bin_edges: tuple[int, ...]
    null_columns: tuple[str, ...]


@dataclass(frozen=True)
class Rows:
    """Rows per split and in all; in JSON one object, the splits' keys then ``"total"``."""

    by_split: Mapping[str, int]
    total: int


@dataclass(frozen=True)
class AgreementCell:
    entropy_rows: int
    mean_entropy: float | None
    std_entropy: float | None
    ranked: int
    top1: int
    top1_rate: float | None
    mean_rank: float | None
    rank_counts: tuple[int, ...]
    rows: int


@dataclass(frozen=True)
class Agreement:
    overall: AgreementCell
    by_subset: Mapping[str, AgreementCell]
    by_class: Mapping[str, AgreementCell]
    by_class_subset: Mapping[str, Mapping[str, AgreementCell]]


@dataclass(frozen=True)
class SoftLabelMean:
    rows: int
    normalised: tuple[float, ...] | None
    raw: tuple[float, ...] | None


@dataclass(frozen=True)
class AgeSummary:
    rows: int
    nulls: int
    known: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    histogram: tuple[int, ...]


@dataclass(frozen=True)
class Ages:
    overall: AgeSummary
    by_class: Mapping[str, AgeSummary]
    histogram_by_gender: Mapping[str, tuple[int, ...]]


@dataclass(frozen=True)
class Demographic:
    """Rows per group (the last group is ``unknown``), shares of the known rows and mean probabilities."""

    rows: int
    counts: Mapping[str, int]
    shares: Mapping[str, float | None]
    probability_rows: int
    mean_probability: Mapping[str, float | None]


@dataclass(frozen=True)
class Demographics:
    overall: Demographic
    by_class: Mapping[str, Demographic]


@dataclass(frozen=True)
class AxisSummary:
    """Valence or arousal of one group: :class:`Spread` and the rows where it is null."""

    nulls: int
    known: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class ValenceArousalSummary:
    rows: int
    valence: AxisSummary
    arousal: AxisSummary


@dataclass(frozen=True)
class Density:
    """A ``bins`` x ``bins`` histogram over ``range`` squared per class (valence first index, arousal second)."""

    bins: int
    range: tuple[float, float]
    by_class: Mapping[str, tuple[tuple[int, ...], ...]]


@dataclass(frozen=True)
class ValenceArousal:
    overall: ValenceArousalSummary
    by_class: Mapping[str, ValenceArousalSummary]
    density: Density


@dataclass(frozen=True)
class Nulls:
    columns: tuple[str, ...]
    by_split: Mapping[str, Mapping[str, int]]
    total: Mapping[str, int]


@dataclass(frozen=True)
class Landmarks:
    """Per iBUG-68 point, mean and std of (x, y); both ``None`` when no row has landmarks."""

    rows: int
    mean: tuple[tuple[float, float], ...] | None
    std: tuple[tuple[float, float], ...] | None


@dataclass(frozen=True)
class OutOfRange:
    """Values outside their column's range (:data:`~.groups.SUMMARY_RANGES`), left out of every
    number and plot like nulls (a vector counts once) and counted here, not in :class:`Nulls`."""

    columns: tuple[str, ...]
    #: column -> (low, high), before the slack
    ranges: Mapping[str, tuple[float, float]]
    #: split -> column -> values left out
    by_split: Mapping[str, Mapping[str, int]]
    #: column -> class -> values left out
    by_class: Mapping[str, Mapping[str, int]]
    total: Mapping[str, int]


@dataclass(frozen=True)
class StatsSummary:
    """Every number of the statistics (definitions: :mod:`.compute`)."""

    version: int
    source: SourceSummary
    labels: Labels
    splits: tuple[str, ...]
    rows: Rows
    #: split -> class -> subset -> rows
    counts: Mapping[str, Mapping[str, Mapping[str, int]]]
    agreement: Agreement
    soft_label_mean: Mapping[str, SoftLabelMean]
    age: Ages
    gender: Demographics
    race: Demographics
    valence_arousal: ValenceArousal
    nulls: Nulls
    landmarks: Landmarks
    out_of_range: OutOfRange

    def to_json(self) -> dict[str, Any]:
        """The plain data (``stats.json``): every field under its name, tuples as lists."""
        out = _plain(self)
        out["rows"] = {**self.rows.by_split, "total": self.rows.total}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatsSummary:
        """The inverse of :meth:`to_json`; ``ValueError`` naming the first key missing."""
        rows = dict(data.get("rows") or {})
        total = rows.pop("total", None)
        return _decode(cls, {**data, "rows": {"by_split": rows, "total": total}}, "stats")

    @classmethod
    def of(cls, stats: StatsSummary | Mapping[str, Any]) -> StatsSummary:
        """``stats`` itself, or read from its plain data (what :func:`~.compute.compute_stats` returns)."""
        return stats if isinstance(stats, StatsSummary) else cls.from_json(stats)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _decode(kind: Any, value: Any, where: str) -> Any:
    """``value`` (plain data) as the annotation ``kind``: dataclasses by field name, mappings, tuples, optionals."""
    if is_dataclass(kind) and isinstance(kind, type):
        hints = get_type_hints(kind)
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{where}: expected an object with keys {[f.name for f in fields(kind)]}, found {type(value).__name__}"
            )
        missing = [f.name for f in fields(kind) if f.name not in value]
        if missing:
            raise ValueError(
                f"{where}: missing key(s) {missing}; expected the statistics of compute_stats (version {STATS_VERSION})"
            )
        return kind(**{f.name: _decode(hints[f.name], value[f.name], f"{where}.{f.name}") for f in fields(kind)})
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        return None if value is None else _decode(next(a for a in args if a is not type(None)), value, where)
    if origin is Mapping or origin is dict:
        return {k: _decode(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        return tuple(_decode(args[0], v, where) for v in value)
    return value


_G, _S = len(CLASS_GROUPS), len(SUBSET_GROUPS)


def _agreement_cell(rows: int, ent_n: Any, ent_sum: Any, ent_sq: Any, rank_counts: Any) -> AgreementCell:
    ent_n, ent_sum, ent_sq = int(ent_n), float(ent_sum), float(ent_sq)
    ranks = tuple(int(v) for v in rank_counts)
    ranked = sum(ranks)
    mean_entropy = ent_sum / ent_n if ent_n else None
    return AgreementCell(
        rows=rows,
        entropy_rows=ent_n,
        mean_entropy=mean_entropy,
        std_entropy=math.sqrt(max(ent_sq / ent_n - mean_entropy**2, 0.0)) if mean_entropy is not None else None,
        ranked=ranked,
        top1=ranks[0],
        top1_rate=ranks[0] / ranked if ranked else None,
        mean_rank=sum((k + 1) * c for k, c in enumerate(ranks)) / ranked if ranked else None,
        rank_counts=ranks,
    )


def _demographic(
    counts: np.ndarray, prob: np.ndarray, prob_n: Any, groups: tuple[str, ...], keys: tuple[str, ...]
) -> Demographic:
    rows = int(counts.sum())
    known = rows - int(counts[-1])
    return Demographic(
        rows=rows,
        counts={name: int(c) for name, c in zip(groups, counts, strict=False)},
        shares={name: (int(c) / known if known else None) for name, c in zip(groups[:-1], counts[:-1], strict=False)},
        probability_rows=int(prob_n),
        mean_probability={k: (float(v) / prob_n if prob_n else None) for k, v in zip(keys, prob, strict=False)},
    )


def _points(array: np.ndarray) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in array)


def summarize(acc: Any, source: SourceInfo | None = None) -> StatsSummary:
    """The sums of ``acc`` (a :class:`~.accumulate.StatsAccumulator`, pending rows already
    added; not annotated as one, which would make the two modules import each other),
    described by ``source``."""
    splits = acc.splits()
    all_counts = sum(acc.split_counts.values(), np.zeros((_G, _S), dtype=np.int64))
    class_rows = all_counts.sum(axis=1)

    def cell(index: Any) -> AgreementCell:
        return _agreement_cell(
            int(all_counts[index].sum()), acc.ent_n[index].sum(), acc.ent_sum[index].sum(), acc.ent_sq[index].sum(),
            acc.rank_counts[index].reshape(-1, NUM_SOFT_CLASSES).sum(axis=0),
        )  # fmt: skip

    agreement = Agreement(
        overall=cell((slice(None), slice(None))),
        by_subset={name: cell((slice(None), si)) for si, name in enumerate(SUBSET_GROUPS)},
        by_class={name: cell((gi, slice(None))) for gi, name in enumerate(CLASS_GROUPS)},
        by_class_subset={
            gname: {sname: cell((gi, si)) for si, sname in enumerate(SUBSET_GROUPS)}
            for gi, gname in enumerate(CLASS_GROUPS)
        },
    )

    def group_rows(index: int | slice) -> int:
        return int(class_rows.sum() if isinstance(index, slice) else class_rows[index])

    def left_out(index: int | slice, name: str) -> int:
        return int(acc.left_out[index, RANGED_COLUMNS.index(name)].sum())

    def age_summary(index: int | slice) -> AgeSummary:
        s = acc.age.summary(index)
        rows = group_rows(index)
        hist = acc.age_hist.sum(axis=(0, 1)) if isinstance(index, slice) else acc.age_hist[index].sum(axis=0)
        nulls = rows - s.known - left_out(index, "age")
        return AgeSummary(rows, nulls, s.known, s.mean, s.std, s.min, s.max, tuple(int(v) for v in hist))

    def axis(spread: Spread, rows: int, left: int) -> AxisSummary:
        return AxisSummary(rows - spread.known - left, spread.known, spread.mean, spread.std, spread.min, spread.max)

    def va_summary(index: int | slice) -> ValenceArousalSummary:
        rows = group_rows(index)
        return ValenceArousalSummary(
            rows,
            axis(acc.valence.summary(index), rows, left_out(index, "valence")),
            axis(acc.arousal.summary(index), rows, left_out(index, "arousal")),
        )

    lm = Landmarks(rows=acc.lm_n, mean=None, std=None)
    if acc.lm_n:
        mean = acc.lm_sum / acc.lm_n
        std = np.sqrt(np.maximum(acc.lm_sq / acc.lm_n - mean * mean, 0.0))
        lm = Landmarks(rows=acc.lm_n, mean=_points(mean), std=_points(std))

    split_nulls = {split: acc.split_nulls[split] for split in splits}
    split_left_out = {split: acc.split_left_out[split] for split in splits}
    total_left_out = sum(split_left_out.values(), np.zeros(len(RANGED_COLUMNS), dtype=np.int64))
    total_nulls = sum(split_nulls.values(), np.zeros(len(NULL_COLUMNS), dtype=np.int64))
    info = source or SourceInfo(kind="rows", name="")
    return StatsSummary(
        version=STATS_VERSION,
        source=SourceSummary(info.kind, info.name, tuple(info.configs), dict(info.bad_records), dict(info.notes)),
        labels=Labels(
            classes=CLASS_GROUPS,
            subsets=SUBSET_GROUPS,
            soft_classes=SOFT_CLASSES,
            genders=GENDER_GROUPS,
            races=RACE_GROUPS,
            age_bins=AGE_BIN_LABELS,
            age_bin_edges=AGE_BIN_EDGES,
            null_columns=NULL_COLUMNS,
        ),
        splits=tuple(splits),
        rows=Rows({split: acc.split_rows[split] for split in splits}, sum(acc.split_rows.values())),
        counts={
            split: {
                gname: {sname: int(acc.split_counts[split][gi, si]) for si, sname in enumerate(SUBSET_GROUPS)}
                for gi, gname in enumerate(CLASS_GROUPS)
            }
            for split in splits
        },
        agreement=agreement,
        soft_label_mean={
            gname: SoftLabelMean(
                rows=int(acc.soft_n[gi]),
                normalised=tuple((acc.soft_norm[gi] / acc.soft_n[gi]).tolist()) if acc.soft_n[gi] else None,
                raw=tuple((acc.soft_raw[gi] / acc.soft_n[gi]).tolist()) if acc.soft_n[gi] else None,
            )
            for gi, gname in enumerate(CLASS_GROUPS)
        },
        age=Ages(
            overall=age_summary(slice(None)),
            by_class={gname: age_summary(gi) for gi, gname in enumerate(CLASS_GROUPS)},
            histogram_by_gender={
                name: tuple(int(v) for v in acc.age_hist[:, k, :].sum(axis=0)) for k, name in enumerate(GENDER_GROUPS)
            },
        ),
        gender=Demographics(
            overall=_demographic(
                acc.gender_counts.sum(0), acc.gender_prob.sum(0), acc.gender_prob_n.sum(), GENDER_GROUPS, GENDERS
            ),
            by_class={
                gname: _demographic(
                    acc.gender_counts[gi], acc.gender_prob[gi], acc.gender_prob_n[gi], GENDER_GROUPS, GENDERS
                )
                for gi, gname in enumerate(CLASS_GROUPS)
            },
        ),
        race=Demographics(
            overall=_demographic(
                acc.race_counts.sum(0), acc.race_prob.sum(0), acc.race_prob_n.sum(), RACE_GROUPS, RACES
            ),
            by_class={
                gname: _demographic(acc.race_counts[gi], acc.race_prob[gi], acc.race_prob_n[gi], RACE_GROUPS, RACES)
                for gi, gname in enumerate(CLASS_GROUPS)
            },
        ),
        valence_arousal=ValenceArousal(
            overall=va_summary(slice(None)),
            by_class={gname: va_summary(gi) for gi, gname in enumerate(CLASS_GROUPS)},
            density=Density(
                bins=VA_BINS,
                range=(-1.0, 1.0),
                by_class={
                    gname: tuple(tuple(int(v) for v in row) for row in acc.va_hist[gi])
                    for gi, gname in enumerate(CLASS_GROUPS)
                },
            ),
        ),
        nulls=Nulls(
            columns=NULL_COLUMNS,
            by_split={
                split: {c: int(v) for c, v in zip(NULL_COLUMNS, split_nulls[split], strict=False)} for split in splits
            },
            total={c: int(v) for c, v in zip(NULL_COLUMNS, total_nulls, strict=False)},
        ),
        landmarks=lm,
        out_of_range=OutOfRange(
            columns=RANGED_COLUMNS,
            ranges={c: SUMMARY_RANGES[c] for c in RANGED_COLUMNS},
            by_split={
                split: {c: int(v) for c, v in zip(RANGED_COLUMNS, split_left_out[split], strict=False)}
                for split in splits
            },
            by_class={
                c: {gname: int(acc.left_out[gi, k]) for gi, gname in enumerate(CLASS_GROUPS)}
                for k, c in enumerate(RANGED_COLUMNS)
            },
            total={c: int(v) for c, v in zip(RANGED_COLUMNS, total_left_out, strict=False)},
        ),
    )
