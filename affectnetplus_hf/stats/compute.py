"""Streaming statistics of AffectNet+ rows, returned as plain (JSON-serialisable) data.

:class:`StatsAccumulator` takes batches of rows (``split``, ``{column: list}``) and keeps
only fixed-size numpy sums, so memory does not grow with the number of rows;
accumulators of disjoint row sets :meth:`~StatsAccumulator.merge` (one per worker, then
merged). :func:`compute_stats` runs one over a source (see :mod:`.sources`) and returns
:meth:`~StatsAccumulator.result`, a dict of ints, floats, strings, lists, dicts and
``None``; ``json.dumps`` writes it as is.

Definitions (what each number means):

* **class** of a row: its ``human_label`` name (``EXPRESSIONS``), or ``no_label`` where
  the human label is null (the unlabeled part). **subset**: ``easy`` / ``challenging`` /
  ``difficult``, or ``no_subset`` where null.
* **normalised soft label**: the 8 released scores divided by their sum (they do not sum
  to 1). Rows whose scores sum to 0 or less are left out of soft-label numbers.
* **entropy**: Shannon entropy of the normalised soft label in bits (0 = all mass on one
  class, at most ``log2(8) = 3``).
* **rank of the human label**: ``1 + number of soft-label scores strictly greater than the
  score of the human class``; defined only for human labels 0..7 (``none``,
  ``uncertain`` and ``non_face`` are not in the soft label). Ties count in the human
  label's favour. **top-1 rate** = share of ranked rows with rank 1.
* **demographic group** (gender, race): the key of the largest probability (ties go to
  the first key in ``GENDERS`` / ``RACES`` order); ``unknown`` where the struct or any of
  its probabilities is null.
* **age bins**: 5 years wide, ``[0, 5), [5, 10), ..., [95, 100)`` and ``100+``; ages
  below 0 fall in the first bin.
* **valence-arousal density**: a 40 x 40 histogram over ``[-1, 1]^2`` (valence along the
  first index, arousal along the second), values outside clipped into the edge bins;
  rows where either is null are left out.
* **spread**: population standard deviation (``ddof=0``).
* **null counts**: per split and column; a struct field (``gender.male``) counts as null
  where it or its whole struct is null. ``image`` is not read, so not counted.
* **landmarks**: mean and standard deviation of each of the 68 points' ``x`` and ``y``
  (pixels in the 224 x 224 crop), over rows that have landmarks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import AffectNetPlusError
from ..schema import EXPRESSIONS, GENDERS, NUM_LANDMARKS, NUM_SOFT_CLASSES, POSE_ANGLES, RACES, SUBSETS
from .sources import BATCH_SIZE, STATS_COLUMNS, SourceInfo, describe_source, iter_batches

__all__ = [
    "AGE_BIN_EDGES",
    "AGE_BIN_LABELS",
    "CLASS_GROUPS",
    "GENDER_GROUPS",
    "NO_LABEL",
    "NO_SUBSET",
    "NULL_COLUMNS",
    "RACE_GROUPS",
    "SOFT_CLASSES",
    "SPLIT_ORDER",
    "STATS_VERSION",
    "SUBSET_GROUPS",
    "UNKNOWN",
    "VA_BINS",
    "StatsAccumulator",
    "compute_stats",
]

STATS_VERSION = 1
NO_LABEL = "no_label"
NO_SUBSET = "no_subset"
UNKNOWN = "unknown"
#: Row groups by human label: the 11 expressions, then rows without a human label.
CLASS_GROUPS: tuple[str, ...] = (*EXPRESSIONS, NO_LABEL)
SUBSET_GROUPS: tuple[str, ...] = (*SUBSETS, NO_SUBSET)
SOFT_CLASSES: tuple[str, ...] = EXPRESSIONS[:NUM_SOFT_CLASSES]
GENDER_GROUPS: tuple[str, ...] = (*GENDERS, UNKNOWN)
RACE_GROUPS: tuple[str, ...] = (*RACES, UNKNOWN)
AGE_BIN_WIDTH = 5
AGE_BIN_EDGES: tuple[int, ...] = tuple(range(0, 101, AGE_BIN_WIDTH))  # 0, 5, ..., 100
AGE_BIN_LABELS: tuple[str, ...] = (*(f"{a}-{a + AGE_BIN_WIDTH - 1}" for a in AGE_BIN_EDGES[:-1]), f"{AGE_BIN_EDGES[-1]}+")
VA_BINS = 40
#: Split names in report order; other split names follow in the order first seen.
SPLIT_ORDER: tuple[str, ...] = ("train", "validation", "unlabeled")

_STRUCTS = {"gender": GENDERS, "race": RACES, "head_pose": POSE_ANGLES}
#: Columns and struct fields whose nulls are counted, in table order.
NULL_COLUMNS: tuple[str, ...] = tuple(
    item
    for name in STATS_COLUMNS
    for item in ((name, *(f"{name}.{key}" for key in _STRUCTS[name])) if name in _STRUCTS else (name,))
)

_G, _S = len(CLASS_GROUPS), len(SUBSET_GROUPS)
_NA = len(AGE_BIN_LABELS)


# ----------------------------------------------------------------------------- batch -> arrays


def _codes(values: list, count: int, column: str) -> np.ndarray:
    """Class codes; null -> ``count`` (the "no ..." group)."""
    null = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    out = np.fromiter((count if v is None else v for v in values), dtype=np.int64, count=len(values))
    bad = ~null & ((out < 0) | (out >= count))
    if bad.any():
        raise AffectNetPlusError(
            f"{column}: expected codes 0..{count - 1} or null, found {values[int(np.argmax(bad))]!r}"
        )
    return out


def _floats(values: list) -> np.ndarray:
    return np.fromiter((np.nan if v is None else v for v in values), dtype=np.float64, count=len(values))


def _struct(values: list, keys: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(values (B, K) with NaN for null fields, struct_is_null (B,))``."""
    out = np.full((len(values), len(keys)), np.nan)
    null = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        if value is None:
            null[i] = True
            continue
        for j, key in enumerate(keys):
            number = value.get(key)
            if number is not None:
                out[i, j] = number
    return out, null


def _fixed(values: list, shape: tuple[int, ...], column: str, ids: list) -> tuple[np.ndarray, np.ndarray]:
    """``(values (B, *shape) with NaN rows for null, is_null (B,))``."""
    null = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    out = np.full((len(values), *shape), np.nan)
    if not null.all():
        present = [v for v in values if v is not None]
        try:
            array = np.asarray(present, dtype=np.float64)
        except (ValueError, TypeError):
            array = None
        if array is None or array.shape[1:] != shape:
            for value, image_id in zip(values, ids):
                if value is not None and np.shape(value) != shape:
                    raise AffectNetPlusError(
                        f"row {image_id!r}: {column} has shape {np.shape(value)}; expected {shape} or null"
                    )
            array = np.asarray(present, dtype=np.float64)  # pragma: no cover - shapes were all fine
        out[~null] = array
    return out, null


class _Batch:
    """One batch as numpy arrays: codes with the "no ..." group for null, NaN for null numbers."""

    __slots__ = (
        "size", "g", "s", "soft", "soft_null", "valence", "arousal", "age", "gender", "gender_null",
        "race", "race_null", "pose", "pose_null", "landmarks", "lm_null", "image_id_nulls", "lm29_nulls",
    )  # fmt: skip

    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, value)


def _batch_from_columns(columns: dict[str, list]) -> _Batch:
    ids = columns["image_id"]
    soft, soft_null = _fixed(columns["soft_label"], (NUM_SOFT_CLASSES,), "soft_label", ids)
    gender, gender_null = _struct(columns["gender"], GENDERS)
    race, race_null = _struct(columns["race"], RACES)
    pose, pose_null = _struct(columns["head_pose"], POSE_ANGLES)
    landmarks, lm_null = _fixed(columns["landmarks"], (NUM_LANDMARKS, 2), "landmarks", ids)
    return _Batch(
        size=len(ids),
        g=_codes(columns["human_label"], len(EXPRESSIONS), "human_label"),
        s=_codes(columns["subset"], len(SUBSETS), "subset"),
        soft=soft,
        soft_null=soft_null,
        valence=_floats(columns["valence"]),
        arousal=_floats(columns["arousal"]),
        age=_floats(columns["age"]),
        gender=gender,
        gender_null=gender_null,
        race=race,
        race_null=race_null,
        pose=pose,
        pose_null=pose_null,
        landmarks=landmarks,
        lm_null=lm_null,
        image_id_nulls=sum(v is None for v in ids),
        lm29_nulls=sum(v is None for v in columns["landmarks_29"]),
    )


class _NotFast(Exception):
    """An Arrow column of an unexpected type: fall back to Python values."""


def _arrow_null(array) -> np.ndarray:
    return array.is_null().to_numpy(zero_copy_only=False).astype(bool)


def _arrow_codes(array, count: int, column: str) -> np.ndarray:
    import pyarrow as pa

    if not pa.types.is_integer(array.type):
        raise _NotFast
    null = _arrow_null(array)
    out = array.fill_null(count).to_numpy(zero_copy_only=False).astype(np.int64)
    bad = ~null & ((out < 0) | (out >= count))
    if bad.any():
        raise AffectNetPlusError(f"{column}: expected codes 0..{count - 1} or null, found {int(out[np.argmax(bad)])}")
    return out


def _arrow_floats(array) -> np.ndarray:
    import pyarrow as pa

    if not (pa.types.is_floating(array.type) or pa.types.is_integer(array.type)):
        raise _NotFast
    return array.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _arrow_struct(array, keys: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa

    if not pa.types.is_struct(array.type) or any(array.type.get_field_index(k) < 0 for k in keys):
        raise _NotFast
    fields = {array.type.field(i).name: child for i, child in enumerate(array.flatten())}  # parent nulls applied
    out = np.column_stack([_arrow_floats(fields[k]) for k in keys]) if len(array) else np.zeros((0, len(keys)))
    return out, _arrow_null(array)


def _arrow_fixed(array, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Nested (fixed or variable) lists of numbers, e.g. the Array2D landmarks' storage."""
    import pyarrow as pa

    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    null = _arrow_null(array)
    values = array
    for length in shape:
        if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type) or pa.types.is_fixed_size_list(values.type)):
            raise _NotFast
        if values.null_count:
            values = values.filter(values.is_valid())
        lengths = pa.compute.list_value_length(values).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != length).any():
            raise _NotFast  # a ragged row: the Python path names it
        values = values.flatten()
    out = np.full((len(array), *shape), np.nan)
    flat = _arrow_floats(values)
    out[~null] = flat.reshape(-1, *shape)
    return out, null


def _batch_from_arrow(table) -> _Batch:
    """The same batch from an Arrow table (``datasets``' ``arrow`` format): no Python objects per row."""
    import pyarrow.compute  # noqa: F401  (pa.compute)

    column = {name: table.column(name).combine_chunks() for name in STATS_COLUMNS}
    try:
        soft, soft_null = _arrow_fixed(column["soft_label"], (NUM_SOFT_CLASSES,))
        gender, gender_null = _arrow_struct(column["gender"], GENDERS)
        race, race_null = _arrow_struct(column["race"], RACES)
        pose, pose_null = _arrow_struct(column["head_pose"], POSE_ANGLES)
        landmarks, lm_null = _arrow_fixed(column["landmarks"], (NUM_LANDMARKS, 2))
        return _Batch(
            size=table.num_rows,
            g=_arrow_codes(column["human_label"], len(EXPRESSIONS), "human_label"),
            s=_arrow_codes(column["subset"], len(SUBSETS), "subset"),
            soft=soft,
            soft_null=soft_null,
            valence=_arrow_floats(column["valence"]),
            arousal=_arrow_floats(column["arousal"]),
            age=_arrow_floats(column["age"]),
            gender=gender,
            gender_null=gender_null,
            race=race,
            race_null=race_null,
            pose=pose,
            pose_null=pose_null,
            landmarks=landmarks,
            lm_null=lm_null,
            image_id_nulls=column["image_id"].null_count,
            lm29_nulls=column["landmarks_29"].null_count,
        )
    except _NotFast:
        return _batch_from_columns(table.select(list(STATS_COLUMNS)).to_pydict())


# ----------------------------------------------------------------------------- accumulator


class _Moments:
    """n, sum, sum of squares, min, max of a value per class group (vectorised)."""

    __slots__ = ("n", "sum", "sq", "min", "max")

    def __init__(self, shape: tuple[int, ...] = (_G,)):
        self.n = np.zeros(shape, dtype=np.int64)
        self.sum = np.zeros(shape)
        self.sq = np.zeros(shape)
        self.min = np.full(shape, np.inf)
        self.max = np.full(shape, -np.inf)

    def add(self, groups: np.ndarray, values: np.ndarray) -> None:
        keep = ~np.isnan(values)
        g, v = groups[keep], values[keep]
        np.add.at(self.n, g, 1)
        np.add.at(self.sum, g, v)
        np.add.at(self.sq, g, v * v)
        np.minimum.at(self.min, g, v)
        np.maximum.at(self.max, g, v)

    def merge(self, other: _Moments) -> None:
        self.n += other.n
        self.sum += other.sum
        self.sq += other.sq
        np.minimum(self.min, other.min, out=self.min)
        np.maximum(self.max, other.max, out=self.max)

    def summary(self, index: Any) -> dict:
        """Plain summary of group ``index`` (``slice(None)`` = all groups together)."""
        if isinstance(index, slice):
            n, s, q = int(self.n.sum()), float(self.sum.sum()), float(self.sq.sum())
            lo, hi = float(self.min.min()), float(self.max.max())
        else:
            n, s, q = int(self.n[index]), float(self.sum[index]), float(self.sq[index])
            lo, hi = float(self.min[index]), float(self.max[index])
        if n == 0:
            return {"known": 0, "mean": None, "std": None, "min": None, "max": None}
        mean = s / n
        return {"known": n, "mean": mean, "std": math.sqrt(max(q / n - mean * mean, 0.0)), "min": lo, "max": hi}


class StatsAccumulator:
    """Fixed-size sums over any number of rows; :meth:`result` turns them into plain data.

    Feed it with :meth:`update` (a batch of columns), :meth:`update_rows` (row dicts) or
    :meth:`add_row` (one row dict at a time, e.g. ``ReadResult.row`` from the reader, buffered
    into batches of ``batch_size``); the ``image`` key of a row is ignored. Pending rows are
    added before :meth:`result`, :meth:`merge` and pickling (so an accumulator can be
    returned from a worker process).
    """

    def __init__(self, batch_size: int = BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._pending: dict[str, list[dict]] = {}
        self.split_rows: dict[str, int] = {}
        self.split_counts: dict[str, np.ndarray] = {}  # split -> (G, S)
        self.split_nulls: dict[str, np.ndarray] = {}  # split -> (len(NULL_COLUMNS),)
        # soft label, per (class, subset)
        self.ent_n = np.zeros((_G, _S), dtype=np.int64)
        self.ent_sum = np.zeros((_G, _S))
        self.ent_sq = np.zeros((_G, _S))
        self.rank_counts = np.zeros((_G, _S, NUM_SOFT_CLASSES), dtype=np.int64)
        # mean soft label per class
        self.soft_n = np.zeros(_G, dtype=np.int64)
        self.soft_norm = np.zeros((_G, NUM_SOFT_CLASSES))
        self.soft_raw = np.zeros((_G, NUM_SOFT_CLASSES))
        # valence / arousal
        self.valence = _Moments()
        self.arousal = _Moments()
        self.va_hist = np.zeros((_G, VA_BINS, VA_BINS), dtype=np.int64)
        # age, gender, race
        self.age = _Moments()
        self.age_hist = np.zeros((_G, len(GENDER_GROUPS), _NA), dtype=np.int64)
        self.gender_counts = np.zeros((_G, len(GENDER_GROUPS)), dtype=np.int64)
        self.gender_prob_n = np.zeros(_G, dtype=np.int64)
        self.gender_prob = np.zeros((_G, len(GENDERS)))
        self.race_counts = np.zeros((_G, len(RACE_GROUPS)), dtype=np.int64)
        self.race_prob_n = np.zeros(_G, dtype=np.int64)
        self.race_prob = np.zeros((_G, len(RACES)))
        # landmarks
        self.lm_n = 0
        self.lm_sum = np.zeros((NUM_LANDMARKS, 2))
        self.lm_sq = np.zeros((NUM_LANDMARKS, 2))

    # -- feeding

    def add_row(self, split: str, row: dict) -> None:
        """Add one row dict of ``split`` (buffered; see the class docstring)."""
        pending = self._pending.setdefault(split, [])
        pending.append({name: row[name] for name in STATS_COLUMNS})  # not the image bytes
        if len(pending) >= self.batch_size:
            self._flush(split)

    def _flush(self, split: str | None = None) -> None:
        from .sources import _columns_of_rows

        for name in [split] if split is not None else list(self._pending):
            rows = self._pending.pop(name, None)
            if rows:
                self.update(name, _columns_of_rows(rows))

    def __getstate__(self) -> dict:
        self._flush()
        return self.__dict__.copy()

    def update_rows(self, split: str, rows: Iterable[dict], batch_size: int = BATCH_SIZE) -> None:
        """Add row dicts (schema columns) of ``split``."""
        from .sources import _batched_rows

        for columns in _batched_rows(rows, batch_size):
            self.update(split, columns)

    def update(self, split: str, columns: Any) -> None:
        """Add one batch: a dict ``{name: list of values}`` over :data:`STATS_COLUMNS`, or a
        ``pyarrow.Table`` with those columns (the fast path, no Python object per row)."""
        if isinstance(columns, dict):
            if not columns["image_id"]:
                return
            batch = _batch_from_columns(columns)
        else:
            if columns.num_rows == 0:
                return
            batch = _batch_from_arrow(columns)
        size, g, s = batch.size, batch.g, batch.s
        soft, soft_null = batch.soft, batch.soft_null
        valence, arousal, age = batch.valence, batch.arousal, batch.age
        gender, gender_null = batch.gender, batch.gender_null
        race, race_null = batch.race, batch.race_null
        pose, pose_null = batch.pose, batch.pose_null
        landmarks, lm_null = batch.landmarks, batch.lm_null

        # rows, counts, nulls per split
        self.split_rows[split] = self.split_rows.get(split, 0) + size
        counts = self.split_counts.setdefault(split, np.zeros((_G, _S), dtype=np.int64))
        np.add.at(counts, (g, s), 1)
        nulls = {
            "image_id": batch.image_id_nulls,
            "human_label": int((g == len(EXPRESSIONS)).sum()),
            "soft_label": int(soft_null.sum()),
            "subset": int((s == len(SUBSETS)).sum()),
            "valence": int(np.isnan(valence).sum()),
            "arousal": int(np.isnan(arousal).sum()),
            "age": int(np.isnan(age).sum()),
            "landmarks": int(lm_null.sum()),
            "landmarks_29": batch.lm29_nulls,
        }
        for name, (values, null) in {"gender": (gender, gender_null), "race": (race, race_null), "head_pose": (pose, pose_null)}.items():
            nulls[name] = int(null.sum())
            for j, key in enumerate(_STRUCTS[name]):
                nulls[f"{name}.{key}"] = int(np.isnan(values[:, j]).sum())
        split_nulls = self.split_nulls.setdefault(split, np.zeros(len(NULL_COLUMNS), dtype=np.int64))
        split_nulls += np.array([nulls[c] for c in NULL_COLUMNS], dtype=np.int64)

        # soft label: normalise, entropy, rank of the human label
        total = soft.sum(axis=1)
        valid = ~soft_null & ~np.isnan(total) & (total > 0)
        if valid.any():
            p = soft[valid] / total[valid, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
            entropy = terms.sum(axis=1)
            gv, sv = g[valid], s[valid]
            np.add.at(self.ent_n, (gv, sv), 1)
            np.add.at(self.ent_sum, (gv, sv), entropy)
            np.add.at(self.ent_sq, (gv, sv), entropy * entropy)
            np.add.at(self.soft_n, gv, 1)
            np.add.at(self.soft_norm, gv, p)
            np.add.at(self.soft_raw, gv, soft[valid])
        ranked = ~soft_null & (g < NUM_SOFT_CLASSES) & ~np.isnan(soft).any(axis=1)
        if ranked.any():
            sr, gr = soft[ranked], g[ranked]
            own = sr[np.arange(len(gr)), gr]
            rank = (sr > own[:, None]).sum(axis=1)  # 0-based
            np.add.at(self.rank_counts, (gr, s[ranked], rank), 1)

        # valence / arousal
        self.valence.add(g, valence)
        self.arousal.add(g, arousal)
        both = ~np.isnan(valence) & ~np.isnan(arousal)
        if both.any():
            vi = np.clip(np.floor((valence[both] + 1.0) / 2.0 * VA_BINS), 0, VA_BINS - 1).astype(np.int64)
            ai = np.clip(np.floor((arousal[both] + 1.0) / 2.0 * VA_BINS), 0, VA_BINS - 1).astype(np.int64)
            np.add.at(self.va_hist, (g[both], vi, ai), 1)

        # demographics
        gender_group = self._groups(gender, self.gender_counts, self.gender_prob, self.gender_prob_n, g)
        self._groups(race, self.race_counts, self.race_prob, self.race_prob_n, g)
        self.age.add(g, age)
        known_age = ~np.isnan(age)
        if known_age.any():
            bins = np.clip(np.floor(age[known_age] / AGE_BIN_WIDTH), 0, _NA - 1).astype(np.int64)
            np.add.at(self.age_hist, (g[known_age], gender_group[known_age], bins), 1)

        # landmarks
        present = ~lm_null & ~np.isnan(landmarks).any(axis=(1, 2))
        if present.any():
            points = landmarks[present]
            self.lm_n += int(present.sum())
            self.lm_sum += points.sum(axis=0)
            self.lm_sq += (points * points).sum(axis=0)

    @staticmethod
    def _groups(probs: np.ndarray, counts: np.ndarray, prob_sum: np.ndarray, prob_n: np.ndarray, g: np.ndarray) -> np.ndarray:
        complete = ~np.isnan(probs).any(axis=1)
        group = np.full(len(probs), probs.shape[1], dtype=np.int64)  # unknown
        group[complete] = np.argmax(probs[complete], axis=1)
        np.add.at(counts, (g, group), 1)
        np.add.at(prob_n, g[complete], 1)
        np.add.at(prob_sum, g[complete], probs[complete])
        return group

    def merge(self, other: StatsAccumulator) -> StatsAccumulator:
        """Add the sums of ``other`` (rows disjoint from this one's); returns ``self``."""
        self._flush()
        other._flush()
        for split, n in other.split_rows.items():
            self.split_rows[split] = self.split_rows.get(split, 0) + n
            self.split_counts.setdefault(split, np.zeros((_G, _S), dtype=np.int64))
            self.split_counts[split] += other.split_counts[split]
            self.split_nulls.setdefault(split, np.zeros(len(NULL_COLUMNS), dtype=np.int64))
            self.split_nulls[split] += other.split_nulls[split]
        for name in (
            "ent_n", "ent_sum", "ent_sq", "rank_counts", "soft_n", "soft_norm", "soft_raw", "va_hist",
            "age_hist", "gender_counts", "gender_prob_n", "gender_prob", "race_counts", "race_prob_n",
            "race_prob", "lm_sum", "lm_sq",
        ):  # fmt: skip
            getattr(self, name).__iadd__(getattr(other, name))
        self.lm_n += other.lm_n
        for name in ("valence", "arousal", "age"):
            getattr(self, name).merge(getattr(other, name))
        return self

    # -- results

    def splits(self) -> list[str]:
        known = [s for s in SPLIT_ORDER if s in self.split_rows]
        return known + [s for s in self.split_rows if s not in SPLIT_ORDER]

    @staticmethod
    def _agreement_cell(ent_n, ent_sum, ent_sq, rank_counts) -> dict:
        ent_n, ent_sum, ent_sq = int(ent_n), float(ent_sum), float(ent_sq)
        ranks = [int(v) for v in rank_counts]
        ranked = sum(ranks)
        mean_entropy = ent_sum / ent_n if ent_n else None
        return {
            "entropy_rows": ent_n,
            "mean_entropy": mean_entropy,
            "std_entropy": math.sqrt(max(ent_sq / ent_n - mean_entropy**2, 0.0)) if ent_n else None,
            "ranked": ranked,
            "top1": ranks[0],
            "top1_rate": ranks[0] / ranked if ranked else None,
            "mean_rank": sum((k + 1) * c for k, c in enumerate(ranks)) / ranked if ranked else None,
            "rank_counts": ranks,
        }

    def _demographic(self, counts: np.ndarray, prob: np.ndarray, prob_n: int, groups, keys) -> dict:
        rows = int(counts.sum())
        known = rows - int(counts[-1])
        return {
            "rows": rows,
            "counts": {name: int(c) for name, c in zip(groups, counts)},
            "shares": {name: (int(c) / known if known else None) for name, c in zip(groups[:-1], counts[:-1])},
            "probability_rows": int(prob_n),
            "mean_probability": {k: (float(v) / prob_n if prob_n else None) for k, v in zip(keys, prob)},
        }

    def result(self, source: SourceInfo | None = None) -> dict:
        """Everything as plain data (see the module docstring for definitions)."""
        self._flush()
        splits = self.splits()
        all_counts = sum(self.split_counts.values(), np.zeros((_G, _S), dtype=np.int64))
        class_rows = all_counts.sum(axis=1)

        cells = {
            (gi, si): self._agreement_cell(self.ent_n[gi, si], self.ent_sum[gi, si], self.ent_sq[gi, si], self.rank_counts[gi, si])
            for gi in range(_G)
            for si in range(_S)
        }
        for (gi, si), cell in cells.items():
            cell["rows"] = int(all_counts[gi, si])

        def marginal(index) -> dict:
            cell = self._agreement_cell(
                self.ent_n[index].sum(), self.ent_sum[index].sum(), self.ent_sq[index].sum(),
                self.rank_counts[index].reshape(-1, NUM_SOFT_CLASSES).sum(axis=0),
            )  # fmt: skip
            cell["rows"] = int(all_counts[index].sum())
            return cell

        agreement = {
            "overall": marginal((slice(None), slice(None))),
            "by_subset": {name: marginal((slice(None), si)) for si, name in enumerate(SUBSET_GROUPS)},
            "by_class": {name: marginal((gi, slice(None))) for gi, name in enumerate(CLASS_GROUPS)},
            "by_class_subset": {
                gname: {sname: cells[(gi, si)] for si, sname in enumerate(SUBSET_GROUPS)} for gi, gname in enumerate(CLASS_GROUPS)
            },
        }

        def age_summary(index) -> dict:
            summary = self.age.summary(index)
            rows = int(class_rows.sum() if isinstance(index, slice) else class_rows[index])
            hist = self.age_hist.sum(axis=(0, 1)) if isinstance(index, slice) else self.age_hist[index].sum(axis=0)
            return {"rows": rows, "nulls": rows - summary["known"], **summary, "histogram": [int(v) for v in hist]}

        def va_summary(index) -> dict:
            rows = int(class_rows.sum() if isinstance(index, slice) else class_rows[index])
            out = {"rows": rows}
            for name, moments in (("valence", self.valence), ("arousal", self.arousal)):
                summary = moments.summary(index)
                out[name] = {"nulls": rows - summary["known"], **summary}
            return out

        lm = None
        if self.lm_n:
            mean = self.lm_sum / self.lm_n
            std = np.sqrt(np.maximum(self.lm_sq / self.lm_n - mean * mean, 0.0))
            lm = {"mean": mean.tolist(), "std": std.tolist()}

        split_nulls = {split: self.split_nulls[split] for split in splits}
        total_nulls = sum(split_nulls.values(), np.zeros(len(NULL_COLUMNS), dtype=np.int64))
        info = source or SourceInfo(kind="rows", name="")
        return {
            "version": STATS_VERSION,
            "source": {
                "kind": info.kind,
                "name": info.name,
                "configs": list(info.configs),
                "bad_records": dict(info.bad_records),
                "notes": dict(info.notes),
            },
            "labels": {
                "classes": list(CLASS_GROUPS),
                "subsets": list(SUBSET_GROUPS),
                "soft_classes": list(SOFT_CLASSES),
                "genders": list(GENDER_GROUPS),
                "races": list(RACE_GROUPS),
                "age_bins": list(AGE_BIN_LABELS),
                "age_bin_edges": list(AGE_BIN_EDGES),
                "null_columns": list(NULL_COLUMNS),
            },
            "splits": splits,
            "rows": {**{split: self.split_rows[split] for split in splits}, "total": sum(self.split_rows.values())},
            "counts": {
                split: {
                    gname: {sname: int(self.split_counts[split][gi, si]) for si, sname in enumerate(SUBSET_GROUPS)}
                    for gi, gname in enumerate(CLASS_GROUPS)
                }
                for split in splits
            },
            "agreement": agreement,
            "soft_label_mean": {
                gname: {
                    "rows": int(self.soft_n[gi]),
                    "normalised": (self.soft_norm[gi] / self.soft_n[gi]).tolist() if self.soft_n[gi] else None,
                    "raw": (self.soft_raw[gi] / self.soft_n[gi]).tolist() if self.soft_n[gi] else None,
                }
                for gi, gname in enumerate(CLASS_GROUPS)
            },
            "age": {
                "overall": age_summary(slice(None)),
                "by_class": {gname: age_summary(gi) for gi, gname in enumerate(CLASS_GROUPS)},
                "histogram_by_gender": {
                    name: [int(v) for v in self.age_hist[:, k, :].sum(axis=0)] for k, name in enumerate(GENDER_GROUPS)
                },
            },
            "gender": {
                "overall": self._demographic(self.gender_counts.sum(0), self.gender_prob.sum(0), self.gender_prob_n.sum(), GENDER_GROUPS, GENDERS),
                "by_class": {
                    gname: self._demographic(self.gender_counts[gi], self.gender_prob[gi], self.gender_prob_n[gi], GENDER_GROUPS, GENDERS)
                    for gi, gname in enumerate(CLASS_GROUPS)
                },
            },
            "race": {
                "overall": self._demographic(self.race_counts.sum(0), self.race_prob.sum(0), self.race_prob_n.sum(), RACE_GROUPS, RACES),
                "by_class": {
                    gname: self._demographic(self.race_counts[gi], self.race_prob[gi], self.race_prob_n[gi], RACE_GROUPS, RACES)
                    for gi, gname in enumerate(CLASS_GROUPS)
                },
            },
            "valence_arousal": {
                "overall": va_summary(slice(None)),
                "by_class": {gname: va_summary(gi) for gi, gname in enumerate(CLASS_GROUPS)},
                "density": {
                    "bins": VA_BINS,
                    "range": [-1.0, 1.0],
                    "by_class": {gname: self.va_hist[gi].tolist() for gi, gname in enumerate(CLASS_GROUPS)},
                },
            },
            "nulls": {
                "columns": list(NULL_COLUMNS),
                "by_split": {split: {c: int(v) for c, v in zip(NULL_COLUMNS, split_nulls[split])} for split in splits},
                "total": {c: int(v) for c, v in zip(NULL_COLUMNS, total_nulls)},
            },
            "landmarks": {"rows": self.lm_n, **(lm or {"mean": None, "std": None})},
        }


def compute_stats(
    source: Any,
    *,
    splits: Iterable[str] | None = None,
    progress: bool = False,
    batch_size: int = BATCH_SIZE,
) -> dict:
    """Statistics of ``source`` as plain data, reading it once, streaming.

    ``source``: an exported folder, a Hub repo id (``owner/name``), a raw release folder,
    a ``datasets.Dataset`` / ``IterableDataset`` / ``DatasetDict``, or a mapping
    ``split -> iterable of row dicts`` (see :mod:`.sources`). ``splits`` keeps only those
    splits. The result's keys and definitions are described in this module's docstring;
    ``result["source"]`` says what was read (and, for a raw release, how many bad records
    were skipped per split).
    """
    kind, value = describe_source(source)
    info = SourceInfo(kind=kind, name=str(value) if kind != "rows" else type(value).__name__)
    accumulator = StatsAccumulator()
    for split, columns in iter_batches(source, info, splits=splits, batch_size=batch_size, progress=progress):
        accumulator.update(split, columns)
    return accumulator.result(info)
