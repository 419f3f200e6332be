"""Streaming sums of AffectNet+ rows: :class:`StatsAccumulator`.

It takes batches of rows (``split``, a ``pyarrow.Table``) and keeps only fixed-size
NumPy sums, so memory does not grow with the number of rows; accumulators of disjoint
row sets :meth:`~StatsAccumulator.merge` (one per worker, then merged). Columns become
arrays through :mod:`affectnetplus_hf.core.columns`, the package's one Arrow -> NumPy
conversion; rows in hand are converted to Arrow first, so every source takes one path.
:meth:`~StatsAccumulator.result` hands the sums to :func:`.summary.summarize`.
Definitions of every number: :mod:`.compute`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..core.columns import annotation_arrays, null_masks
from ..core.demographics import NO_GROUP, most_probable
from ..core.schema import EXPRESSIONS, GENDERS, NUM_LANDMARKS, NUM_SOFT_CLASSES, RACES, SUBSETS
from .groups import (
    AGE_BIN_LABELS,
    AGE_BIN_WIDTH,
    CLASS_GROUPS,
    GENDER_GROUPS,
    NULL_COLUMNS,
    RACE_GROUPS,
    RANGED_COLUMNS,
    SPLIT_ORDER,
    STRUCT_MEMBERS,
    SUBSET_GROUPS,
    SUMMARY_RANGES,
    SUMMARY_SLACK,
    VA_BINS,
)
from .sources import BATCH_SIZE, STATS_COLUMNS, SourceInfo, arrow_of_columns, arrow_of_rows, batched_rows
from .summary import Spread, StatsSummary, summarize

__all__ = ["Moments", "StatsAccumulator"]

_G, _S = len(CLASS_GROUPS), len(SUBSET_GROUPS)
_NA = len(AGE_BIN_LABELS)


class Moments:
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

    def merge(self, other: Moments) -> None:
        self.n += other.n
        self.sum += other.sum
        self.sq += other.sq
        np.minimum(self.min, other.min, out=self.min)
        np.maximum(self.max, other.max, out=self.max)

    def summary(self, index: int | slice) -> Spread:
        """The spread of group ``index`` (``slice(None)`` = all groups together)."""
        if isinstance(index, slice):
            n, s, q = int(self.n.sum()), float(self.sum.sum()), float(self.sq.sum())
            lo, hi = float(self.min.min()), float(self.max.max())
        else:
            n, s, q = int(self.n[index]), float(self.sum[index]), float(self.sq[index])
            lo, hi = float(self.min[index]), float(self.max[index])
        if n == 0:
            return Spread(known=0, mean=None, std=None, min=None, max=None)
        mean = s / n
        return Spread(known=n, mean=mean, std=math.sqrt(max(q / n - mean * mean, 0.0)), min=lo, max=hi)


class StatsAccumulator:
    """Fixed-size sums over any number of rows; :meth:`result` turns them into plain data
    (:func:`.summary.summarize`).

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
        # values outside SUMMARY_RANGES, left out of everything below
        self.split_left_out: dict[str, np.ndarray] = {}  # split -> (len(RANGED_COLUMNS),)
        self.left_out = np.zeros((_G, len(RANGED_COLUMNS)), dtype=np.int64)
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
        self.valence = Moments()
        self.arousal = Moments()
        self.va_hist = np.zeros((_G, VA_BINS, VA_BINS), dtype=np.int64)
        # age, gender, race
        self.age = Moments()
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
        pending.append(
            {name: row[name] for name in STATS_COLUMNS if name in row}
        )  # not the image bytes (arrow_of_rows checks the rest)
        if len(pending) >= self.batch_size:
            self._flush(split)

    def _flush(self, split: str | None = None) -> None:
        for name in [split] if split is not None else list(self._pending):
            rows = self._pending.pop(name, None)
            if rows:
                self.update(name, arrow_of_rows(rows))

    def __getstate__(self) -> dict:
        self._flush()
        return self.__dict__.copy()

    def update_rows(self, split: str, rows: Iterable[dict], batch_size: int = BATCH_SIZE) -> None:
        """Add row dicts (schema columns) of ``split``."""
        for columns in batched_rows(rows, batch_size):
            self.update(split, columns)

    def update(self, split: str, columns: Any) -> None:
        """Add one batch: a ``pyarrow.Table`` with the :data:`STATS_COLUMNS`, or a dict
        ``{name: list of values}`` over them (converted to Arrow first: one path for both)."""
        table = columns if hasattr(columns, "num_rows") else arrow_of_columns(columns)
        if table.num_rows == 0:
            return
        table = table.select(list(STATS_COLUMNS))
        values, _ = annotation_arrays(table, dtype=np.float64)
        null = null_masks(table)
        size = table.num_rows
        g = np.where(values["human_label"] < 0, len(EXPRESSIONS), values["human_label"])  # null -> the no-label group
        s = np.where(values["subset"] < 0, len(SUBSETS), values["subset"])
        soft, soft_null = values["soft_label"], null["soft_label"]
        valence, arousal, age = values["valence"], values["arousal"], values["age"]
        gender, race = values["gender"], values["race"]
        landmarks, lm_null = values["landmarks"], null["landmarks"]

        # rows, counts, nulls per split
        self.split_rows[split] = self.split_rows.get(split, 0) + size
        counts = self.split_counts.setdefault(split, np.zeros((_G, _S), dtype=np.int64))
        np.add.at(counts, (g, s), 1)
        nulls = {
            "image_id": int(null["image_id"].sum()),
            "human_label": int((g == len(EXPRESSIONS)).sum()),
            "soft_label": int(soft_null.sum()),
            "subset": int((s == len(SUBSETS)).sum()),
            "valence": int(np.isnan(valence).sum()),
            "arousal": int(np.isnan(arousal).sum()),
            "age": int(np.isnan(age).sum()),
            "landmarks": int(lm_null.sum()),
            "landmarks_29": int(null["landmarks_29"].sum()),
        }
        for name, members in STRUCT_MEMBERS.items():
            nulls[name] = int(null[name].sum())
            for j, key in enumerate(members):
                nulls[f"{name}.{key}"] = int(np.isnan(values[name][:, j]).sum())
        for name in STATS_COLUMNS:  # any other column (auto_label): its nulls as stored
            nulls.setdefault(name, int(null[name].sum()))
        split_nulls = self.split_nulls.setdefault(split, np.zeros(len(NULL_COLUMNS), dtype=np.int64))
        split_nulls += np.array([nulls[c] for c in NULL_COLUMNS], dtype=np.int64)

        # a value outside its column's range (1e30, an infinity) is left out of every number below,
        # as a null is, and counted: sums, bins and plots stay within the documented ranges
        ranged = {
            "valence": valence,
            "arousal": arousal,
            "age": age,
            "gender": gender,
            "race": race,
            "soft_label": soft,
            "landmarks": landmarks,
        }
        left_out = self.split_left_out.setdefault(split, np.zeros(len(RANGED_COLUMNS), dtype=np.int64))
        for k, name in enumerate(RANGED_COLUMNS):
            array, (low, high) = ranged[name], SUMMARY_RANGES[name]
            with np.errstate(invalid="ignore"):
                outside = (array < low - SUMMARY_SLACK) | (array > high + SUMMARY_SLACK)  # NaN (null) is neither
            if outside.ndim > 1:
                outside = np.asarray(outside.reshape(size, -1).any(axis=1))
            if outside.any():
                ranged[name] = np.where(outside.reshape((size,) + (1,) * (array.ndim - 1)), np.nan, array)
                left_out[k] += int(outside.sum())
                np.add.at(self.left_out[:, k], g[outside], 1)
        valence, arousal, age, gender, race, soft, landmarks = (
            ranged[name] for name in ("valence", "arousal", "age", "gender", "race", "soft_label", "landmarks")
        )

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
    def _groups(
        probs: np.ndarray, counts: np.ndarray, prob_sum: np.ndarray, prob_n: np.ndarray, g: np.ndarray
    ) -> np.ndarray:
        group = most_probable(probs)
        complete = group != NO_GROUP
        group[~complete] = probs.shape[1]  # the last column: unknown
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
            self.split_left_out.setdefault(split, np.zeros(len(RANGED_COLUMNS), dtype=np.int64))
            self.split_left_out[split] += other.split_left_out[split]
        for name in (
            "ent_n", "ent_sum", "ent_sq", "rank_counts", "soft_n", "soft_norm", "soft_raw", "va_hist",
            "age_hist", "gender_counts", "gender_prob_n", "gender_prob", "race_counts", "race_prob_n",
            "race_prob", "lm_sum", "lm_sq", "left_out",
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

    def summary(self, source: SourceInfo | None = None) -> StatsSummary:
        """Everything, typed (see :mod:`.compute` for definitions)."""
        self._flush()
        return summarize(self, source)

    def result(self, source: SourceInfo | None = None) -> dict[str, Any]:
        """Everything as plain data: :meth:`summary` as :meth:`~.summary.StatsSummary.to_json`."""
        return self.summary(source).to_json()
