"""Result shaping: the accumulator's sums -> the plain (JSON-serialisable) statistics dict.

Only ints, floats, strings, lists, dicts and ``None``; ``json.dumps`` writes it as is.
Definitions of every number: :mod:`.compute`.
"""

from __future__ import annotations

import math

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

__all__ = ["summarize"]

_G, _S = len(CLASS_GROUPS), len(SUBSET_GROUPS)


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


def _demographic(counts: np.ndarray, prob: np.ndarray, prob_n: int, groups, keys) -> dict:
    rows = int(counts.sum())
    known = rows - int(counts[-1])
    return {
        "rows": rows,
        "counts": {name: int(c) for name, c in zip(groups, counts)},
        "shares": {name: (int(c) / known if known else None) for name, c in zip(groups[:-1], counts[:-1])},
        "probability_rows": int(prob_n),
        "mean_probability": {k: (float(v) / prob_n if prob_n else None) for k, v in zip(keys, prob)},
    }


def summarize(acc, source: SourceInfo | None = None) -> dict:
    """The sums of ``acc`` (a :class:`~.accumulate.StatsAccumulator`, pending rows already
    added) as plain data, described by ``source``."""
    splits = acc.splits()
    all_counts = sum(acc.split_counts.values(), np.zeros((_G, _S), dtype=np.int64))
    class_rows = all_counts.sum(axis=1)

    cells = {
        (gi, si): _agreement_cell(acc.ent_n[gi, si], acc.ent_sum[gi, si], acc.ent_sq[gi, si], acc.rank_counts[gi, si])
        for gi in range(_G)
        for si in range(_S)
    }
    for (gi, si), cell in cells.items():
        cell["rows"] = int(all_counts[gi, si])

    def marginal(index) -> dict:
        cell = _agreement_cell(
            acc.ent_n[index].sum(), acc.ent_sum[index].sum(), acc.ent_sq[index].sum(),
            acc.rank_counts[index].reshape(-1, NUM_SOFT_CLASSES).sum(axis=0),
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

    def left_out(index, name: str) -> int:
        return int(acc.left_out[index, RANGED_COLUMNS.index(name)].sum())

    def age_summary(index) -> dict:
        summary = acc.age.summary(index)
        rows = int(class_rows.sum() if isinstance(index, slice) else class_rows[index])
        hist = acc.age_hist.sum(axis=(0, 1)) if isinstance(index, slice) else acc.age_hist[index].sum(axis=0)
        nulls = rows - summary["known"] - left_out(index, "age")
        return {"rows": rows, "nulls": nulls, **summary, "histogram": [int(v) for v in hist]}

    def va_summary(index) -> dict:
        rows = int(class_rows.sum() if isinstance(index, slice) else class_rows[index])
        out = {"rows": rows}
        for name, moments in (("valence", acc.valence), ("arousal", acc.arousal)):
            summary = moments.summary(index)
            out[name] = {"nulls": rows - summary["known"] - left_out(index, name), **summary}
        return out

    lm = None
    if acc.lm_n:
        mean = acc.lm_sum / acc.lm_n
        std = np.sqrt(np.maximum(acc.lm_sq / acc.lm_n - mean * mean, 0.0))
        lm = {"mean": mean.tolist(), "std": std.tolist()}

    split_nulls = {split: acc.split_nulls[split] for split in splits}
    split_left_out = {split: acc.split_left_out[split] for split in splits}
    total_left_out = sum(split_left_out.values(), np.zeros(len(RANGED_COLUMNS), dtype=np.int64))
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
        "rows": {**{split: acc.split_rows[split] for split in splits}, "total": sum(acc.split_rows.values())},
        "counts": {
            split: {
                gname: {sname: int(acc.split_counts[split][gi, si]) for si, sname in enumerate(SUBSET_GROUPS)}
                for gi, gname in enumerate(CLASS_GROUPS)
            }
            for split in splits
        },
        "agreement": agreement,
        "soft_label_mean": {
            gname: {
                "rows": int(acc.soft_n[gi]),
                "normalised": (acc.soft_norm[gi] / acc.soft_n[gi]).tolist() if acc.soft_n[gi] else None,
                "raw": (acc.soft_raw[gi] / acc.soft_n[gi]).tolist() if acc.soft_n[gi] else None,
            }
            for gi, gname in enumerate(CLASS_GROUPS)
        },
        "age": {
            "overall": age_summary(slice(None)),
            "by_class": {gname: age_summary(gi) for gi, gname in enumerate(CLASS_GROUPS)},
            "histogram_by_gender": {
                name: [int(v) for v in acc.age_hist[:, k, :].sum(axis=0)] for k, name in enumerate(GENDER_GROUPS)
            },
        },
        "gender": {
            "overall": _demographic(acc.gender_counts.sum(0), acc.gender_prob.sum(0), acc.gender_prob_n.sum(), GENDER_GROUPS, GENDERS),
            "by_class": {
                gname: _demographic(acc.gender_counts[gi], acc.gender_prob[gi], acc.gender_prob_n[gi], GENDER_GROUPS, GENDERS)
                for gi, gname in enumerate(CLASS_GROUPS)
            },
        },
        "race": {
            "overall": _demographic(acc.race_counts.sum(0), acc.race_prob.sum(0), acc.race_prob_n.sum(), RACE_GROUPS, RACES),
            "by_class": {
                gname: _demographic(acc.race_counts[gi], acc.race_prob[gi], acc.race_prob_n[gi], RACE_GROUPS, RACES)
                for gi, gname in enumerate(CLASS_GROUPS)
            },
        },
        "valence_arousal": {
            "overall": va_summary(slice(None)),
            "by_class": {gname: va_summary(gi) for gi, gname in enumerate(CLASS_GROUPS)},
            "density": {
                "bins": VA_BINS,
                "range": [-1.0, 1.0],
                "by_class": {gname: acc.va_hist[gi].tolist() for gi, gname in enumerate(CLASS_GROUPS)},
            },
        },
        "nulls": {
            "columns": list(NULL_COLUMNS),
            "by_split": {split: {c: int(v) for c, v in zip(NULL_COLUMNS, split_nulls[split])} for split in splits},
            "total": {c: int(v) for c, v in zip(NULL_COLUMNS, total_nulls)},
        },
        "landmarks": {"rows": acc.lm_n, **(lm or {"mean": None, "std": None})},
        "out_of_range": {
            "columns": list(RANGED_COLUMNS),
            "ranges": {c: list(SUMMARY_RANGES[c]) for c in RANGED_COLUMNS},
            "by_split": {split: {c: int(v) for c, v in zip(RANGED_COLUMNS, split_left_out[split])} for split in splits},
            "by_class": {c: {gname: int(acc.left_out[gi, k]) for gi, gname in enumerate(CLASS_GROUPS)} for k, c in enumerate(RANGED_COLUMNS)},
            "total": {c: int(v) for c, v in zip(RANGED_COLUMNS, total_left_out)},
        },
    }

