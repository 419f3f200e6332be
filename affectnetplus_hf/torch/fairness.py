"""Fairness of an expression classifier across race, gender and age band, with bootstrap intervals.

:func:`fairness_report` takes predictions, human labels and the rows' demographic
estimates (a collated batch's ``race``, ``gender``, ``age``, concatenated over the
evaluation set) and gives, for each attribute:

* per group: rows, accuracy and macro-F1 (as :mod:`~affectnetplus_hf.torch.metrics`
  computes them);
* **demographic parity**: per expression class ``c`` (one-vs-rest), the selection rate
  ``P(pred = c | group)``; the *difference* is the largest minus the smallest rate over
  the groups, the *ratio* the smallest over the largest (fairlearn's
  ``demographic_parity_difference`` / ``_ratio`` with ``method="between_groups"``);
* **equalized odds difference**: per class ``c`` (one-vs-rest), the larger of the
  between-group differences of the true-positive rate and of the false-positive rate
  (fairlearn's ``equalized_odds_difference``, ``agg="worst_case"``; as there, a rate
  with nothing to count, e.g. the true-positive rate of a group without a row of the
  class, counts as 0, which makes small groups look unequal).

The per-class values are under ``per_class``; the headline value is the worst class
(largest difference, smallest ratio). Each value has a percentile bootstrap interval
(``n_boot`` resamples of the scored rows with replacement, seeded): rows are redrawn
and every statistic recomputed from the resampled confusion matrices, so the interval
includes group sizes varying. The gaps are maxima over groups (and classes), whose
bootstrap distribution lies above the point value when groups are close: read a
gap's interval as "how large the gap can look", not as centred on the value.

Rows are scored as in :mod:`~affectnetplus_hf.torch.metrics` (human label known and
below the number of classes); for each attribute, rows without a group (null estimate,
or below ``min_probability``) are left out of that attribute's table and counted under
``"left_out"``. Groups with fewer than ``min_group_size`` scored rows are listed but
left out of the parity and odds statistics, and so is a group that a bootstrap
resample happens to leave without rows. A statistic without a defined value (a parity
ratio when no group predicts the class: 0 / 0) is ``NaN``, and the worst class is taken
over the defined ones.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .groups import AGE_BAND_EDGES, group_index, group_names

__all__ = ["fairness_report", "format_fairness"]

_STATS = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")


def _confusions(group: torch.Tensor, target: torch.Tensor, pred: torch.Tensor, weights: torch.Tensor, groups: int, classes: int) -> torch.Tensor:
    """``B x G x C x C`` counts (true x predicted) for ``B`` row weightings (``B x N``)."""
    key = (group * classes + target) * classes + pred
    size = groups * classes * classes
    out = torch.zeros(weights.shape[0], size, dtype=torch.float64)
    out.scatter_add_(1, key.expand(weights.shape[0], -1), weights)
    return out.view(-1, groups, classes, classes)


def _statistics(conf: torch.Tensor, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """From ``B x G x C x C`` confusions: per-group accuracy / macro-F1 (``B x G``) and the
    per-class parity / odds statistics over the groups in ``keep`` (``B x C``)."""
    n = conf.sum(dim=(2, 3))  # B x G
    diag = torch.diagonal(conf, dim1=2, dim2=3)  # B x G x C
    true = conf.sum(dim=3)  # B x G x C (rows with label c)
    predicted = conf.sum(dim=2)  # B x G x C (rows predicted c)
    accuracy = diag.sum(dim=2) / n
    present = (true + predicted) > 0
    f1 = torch.where(present, 2 * diag / (true + predicted).clamp_min(1e-300), torch.zeros_like(diag))
    macro_f1 = f1.sum(dim=2) / present.sum(dim=2)
    rows = n.unsqueeze(2).expand_as(diag)
    selection = predicted / rows  # B x G x C; NaN for a group without rows (left out of the spreads)
    negatives = rows - true
    # a rate with nothing to count (a group without a positive / negative row of the class) is
    # 0, as fairlearn's true_positive_rate / false_positive_rate give it (zero_division=0)
    tpr = torch.where(true > 0, diag / true.clamp_min(1), torch.zeros_like(diag))
    fpr = torch.where(negatives > 0, (predicted - diag) / negatives.clamp_min(1), torch.zeros_like(diag))
    empty = (rows == 0)
    tpr, fpr = tpr.masked_fill(empty, math.nan), fpr.masked_fill(empty, math.nan)
    sel = selection[:, keep]
    out = {
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "demographic_parity_difference": _spread(sel),
        "demographic_parity_ratio": _amin(sel) / _amax(sel),
        "equalized_odds_difference": torch.maximum(_spread(tpr[:, keep]), _spread(fpr[:, keep])),
    }
    return out


def _nan_extreme(x: torch.Tensor, dim: int, largest: bool) -> torch.Tensor:
    """Max (``largest``) or min over ``dim``, ignoring ``NaN``; ``NaN`` where none is left
    (also over an empty ``dim``)."""
    if x.shape[dim] == 0:
        shape = list(x.shape)
        del shape[dim]
        return torch.full(shape, math.nan, dtype=x.dtype)
    filled = torch.where(torch.isnan(x), torch.full_like(x, -math.inf if largest else math.inf), x)
    out = filled.amax(dim=dim) if largest else filled.amin(dim=dim)
    return torch.where(torch.isinf(out), torch.full_like(out, math.nan), out)


def _amax(x: torch.Tensor) -> torch.Tensor:
    """Max over the group axis (1), ignoring ``NaN`` (groups without rows); ``NaN`` if none is left
    (also when no group is kept at all)."""
    return _nan_extreme(x, 1, largest=True)


def _amin(x: torch.Tensor) -> torch.Tensor:
    return _nan_extreme(x, 1, largest=False)


def _spread(x: torch.Tensor) -> torch.Tensor:
    """Max minus min over the group axis (1), over the groups that have rows."""
    return _amax(x) - _amin(x)


def _worst(values: torch.Tensor, name: str) -> torch.Tensor:
    """Worst class over the defined ones: the largest difference, the smallest ratio."""
    return _nan_extreme(values, -1, largest=not name.endswith("ratio"))


def _interval(samples: torch.Tensor, confidence: float) -> tuple[float, float]:
    finite = samples[~torch.isnan(samples)]
    if finite.numel() == 0:
        return (math.nan, math.nan)
    alpha = (1 - confidence) / 2
    q = torch.quantile(finite, torch.tensor([alpha, 1 - alpha], dtype=finite.dtype))
    return (float(q[0]), float(q[1]))


def _entry(point: torch.Tensor, samples: torch.Tensor, confidence: float) -> dict:
    return {"value": float(point), "ci": _interval(samples, confidence)}


def fairness_report(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    race: torch.Tensor | None = None,
    gender: torch.Tensor | None = None,
    age: torch.Tensor | None = None,
    num_classes: int | None = None,
    class_names: tuple[str, ...] | None = None,
    min_probability: float | None = None,
    min_group_size: int = 1,
    age_edges: tuple[int, ...] = AGE_BAND_EDGES,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """The fairness table by race, gender and age band (see the module docstring).

    Args:
        pred: class indices (``N``) or scores (``N x C``: arg-max, ``C`` classes).
        target: human labels (``-1`` null).
        race, gender: ``N x 6`` / ``N x 2`` probabilities (schema order). age: ``N`` years.
        num_classes: classes scored (default: ``C`` of the scores, else 8).
        class_names: names for ``per_class`` (default: the expression names).
        n_boot: bootstrap resamples (``0``: no intervals).

    Returns ``{attribute: {"groups": {name: {"n", "accuracy", "macro_f1"}},
    "demographic_parity_difference": {"value", "ci", "per_class": {name: {"value", "ci"}}},
    "demographic_parity_ratio": ..., "equalized_odds_difference": ..., "left_out": int}}``
    for each attribute given; values are Python floats, intervals ``(low, high)``.
    """
    from ..core.schema import EXPRESSIONS

    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.dim() not in (1, 2) or target.dim() != 1 or len(pred) != len(target):
        raise ValueError(
            f"pred must be N class indices or N x C scores and target N labels; got pred of shape {tuple(pred.shape)} "
            f"and target of shape {tuple(target.shape)}"
        )
    if pred.dim() == 2:
        num_classes = num_classes or pred.shape[1]
        pred = pred.argmax(dim=1)
    num_classes = num_classes or 8
    names = tuple(class_names) if class_names is not None else EXPRESSIONS[:num_classes]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    pred, target = pred.long().cpu(), target.long().cpu()
    scored = (target >= 0) & (target < num_classes)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    generator = torch.Generator().manual_seed(seed)
    report: dict = {}
    for attribute, values in (("race", race), ("gender", gender), ("age", age)):
        if values is None:
            continue
        values = torch.as_tensor(values)
        if len(values) != len(target):
            raise ValueError(f"{attribute} has {len(values)} rows, the predictions {len(target)}: pass the same rows' values")
        groups_all = group_index(values.cpu(), attribute, min_probability=min_probability, age_edges=age_edges)
        rows = scored & (groups_all >= 0)
        g, t, p = groups_all[rows], target[rows], pred[rows].clamp(0, num_classes - 1)
        bad = pred[rows] != p
        if bool(bad.any()):
            raise ValueError(f"predicted classes must be in [0, {num_classes}), found {sorted(set(pred[rows][bad].tolist()))[:5]}")
        group_list = group_names(attribute, age_edges)
        count = len(group_list)
        ones = torch.ones(1, g.numel(), dtype=torch.float64)
        point_conf = _confusions(g, t, p, ones, count, num_classes)
        sizes = point_conf.sum(dim=(2, 3))[0]
        keep = sizes >= max(min_group_size, 1)
        point = _statistics(point_conf, keep)
        if n_boot > 0 and g.numel():
            draws = torch.randint(g.numel(), (n_boot, g.numel()), generator=generator)
            weights = torch.zeros(n_boot, g.numel(), dtype=torch.float64)
            weights.scatter_add_(1, draws, torch.ones(n_boot, g.numel(), dtype=torch.float64))
            boot = _statistics(_confusions(g, t, p, weights, count, num_classes), keep)
        else:
            boot = {key: torch.full((1, *value.shape[1:]), math.nan, dtype=torch.float64) for key, value in point.items()}
        table: dict[str, Any] = {"groups": {}, "left_out": int((scored & (groups_all < 0)).sum())}
        for k, name in enumerate(group_list):
            table["groups"][name] = {
                "n": int(sizes[k]),
                "accuracy": _entry(point["accuracy"][0, k], boot["accuracy"][:, k], confidence),
                "macro_f1": _entry(point["macro_f1"][0, k], boot["macro_f1"][:, k], confidence),
            }
        for stat in _STATS:
            table[stat] = {
                **_entry(_worst(point[stat][0], stat), _worst(boot[stat], stat), confidence),
                "per_class": {name: _entry(point[stat][0, c], boot[stat][:, c], confidence) for c, name in enumerate(names)},
            }
        report[attribute] = table
    return report


def format_fairness(report: dict) -> str:
    """The report as text: one block per attribute, a line per group, then the gaps."""

    def fmt(entry):
        low, high = entry["ci"]
        return f"{entry['value']:.3f} [{low:.3f}, {high:.3f}]"

    lines = []
    for attribute, table in report.items():
        lines.append(f"  {attribute} (left out: {table['left_out']} rows without a group)")
        for name, row in table["groups"].items():
            if row["n"]:
                lines.append(f"    {name:<16} n={row['n']:5d}  accuracy={fmt(row['accuracy'])}  macro-F1={fmt(row['macro_f1'])}")
        for stat in _STATS:
            lines.append(f"    {stat.replace('_', ' '):<32} {fmt(table[stat])}  (worst class)")
    return "\n".join(lines)
