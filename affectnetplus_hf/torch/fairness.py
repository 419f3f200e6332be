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
(largest difference, smallest ratio).

**Intervals.** Each value has an :class:`Interval` (``"ci"``): a BCa (bias-corrected and
accelerated) bootstrap interval over ``n_boot`` resamples of the scored rows with
replacement, seeded with ``seed`` (``numpy.random.default_rng``). Every statistic is
recomputed from each resample's confusion matrices, so the interval includes group sizes
varying. BCa, not the plain percentile interval, because the gaps are maxima and minima
over groups (and classes), whose resamples drift away from the estimate when groups are
close or small: the percentile interval of such a gap can lie wholly above its own
estimate. BCa's bias correction and acceleration are those of
``scipy.stats.bootstrap(method="BCa")`` (a test checks it against scipy on the same
resamples). scipy is not called: it would recompute every statistic once per left-out row,
a cost that grows with the rows squared, where here the resamples and the left-out rows are
taken per (group, label, prediction) cell, which gives the same numbers.

Every interval holds its estimate (``low <= value <= high``). Where BCa cannot be used
(the estimate lies below or above every resample, or outside BCa's own interval; a
leave-one-out value is undefined; every resample gives the same value) the interval is the
percentile one, stretched to the estimate where needed, its ``method`` says
``"percentile"`` and its ``note`` says why; ``note`` also counts resamples in which the
statistic has no value (a group left without rows, a 0 / 0 ratio), which are left out.
:func:`format_fairness` prints the method, resamples and seed in its first line and the
notes under the table. An estimate whose interval needed such a fallback is not a
measurement to lean on: more rows, or a larger ``min_group_size``, are the remedy.

What no interval here fixes: a gap among groups whose true rates are close is a maximum of
nearly tied values, biased upward, and its intervals hold the true gap less often than
their level says. BCa's ends rest on the outer resamples: use ``n_boot`` of 1000 or more.

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
from dataclasses import dataclass

import numpy as np
import torch

from .groups import AGE_BAND_EDGES, group_index, group_names

__all__ = ["Interval", "fairness_report", "format_fairness"]

_STATS = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")


_CHUNK = 1 << 20  # confusion cells held at once (resamples, or left-out cells, x cells)


@dataclass(frozen=True)
class Interval:
    """A confidence interval and how it was made.

    ``method``: ``"BCa"`` (bias-corrected and accelerated bootstrap), ``"percentile"``
    (the fallback where BCa cannot be used; ``note`` says why) or ``"none"`` (no interval:
    ``low`` and ``high`` are ``NaN``, e.g. ``n_boot=0`` or a statistic without a value).
    ``confidence``: the level (0.95). ``n_resamples`` and ``seed``: the bootstrap's.
    ``note``: what a reader must know before trusting it, or ``None``.

    An interval holds its estimate: ``low <= value <= high`` wherever it has a value. It
    unpacks and indexes as the ``(low, high)`` tuple the report gave before.
    """

    low: float
    high: float
    method: str
    confidence: float
    n_resamples: int
    seed: int
    note: str | None = None

    def __iter__(self):
        return iter((self.low, self.high))

    def __getitem__(self, index):
        return (self.low, self.high)[index]

    def __len__(self) -> int:
        return 2


def _columns(stats: dict[str, torch.Tensor]) -> torch.Tensor:
    """The statistics of :func:`_statistics` as one ``B x S`` matrix: accuracy per group,
    macro-F1 per group, then for each of ``_STATS`` its per-class values and the worst class."""
    parts = [stats["accuracy"], stats["macro_f1"]]
    for name in _STATS:
        parts += [stats[name], _worst(stats[name], name).unsqueeze(1)]
    return torch.cat(parts, dim=1)


def _resampled(
    cell: torch.Tensor, shape: tuple[int, int, int], keep: torch.Tensor, n_boot: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Columns (:func:`_columns`) of the rows whose (group, label, prediction) cell is
    ``cell``: the point values (``S``), ``n_boot`` bootstrap resamples (``n_boot x S``),
    and the leave-one-out values per occupied cell (``K x S``) with the rows in each (``K``).

    Every statistic depends on the rows only through the counts per cell, so drawing ``n``
    rows with replacement is drawing the cell counts from a multinomial with the cells'
    shares, and leaving out any row of a cell gives the same counts: both cost the number of
    occupied cells (at most groups x classes x classes), not the number of rows."""
    size = shape[0] * shape[1] * shape[2]
    counts = torch.bincount(cell, minlength=size).double()
    point = _columns(_statistics(counts.view(1, *shape), keep))[0]
    n = cell.numel()
    if n == 0:  # every statistic is NaN: nothing to resample
        return point, point.expand(n_boot, -1), point.new_empty(0, point.numel()), counts[:0]
    occupied = counts.nonzero().squeeze(1)
    rows = counts[occupied]
    shares = (rows / n).numpy()
    boot, jack = [point.new_empty(0, point.numel())], [point.new_empty(0, point.numel())]
    step = max(1, _CHUNK // size)
    for start in range(0, n_boot, step):
        resampled = counts.new_zeros(min(step, n_boot - start), size)
        resampled[:, occupied] = torch.from_numpy(rng.multinomial(n, shares, size=len(resampled))).double()
        boot.append(_columns(_statistics(resampled.view(-1, *shape), keep)))
    for part in occupied.split(step):
        left = counts.repeat(len(part), 1)
        left[torch.arange(len(part)), part] -= 1
        jack.append(_columns(_statistics(left.view(-1, *shape), keep)))
    return point, torch.cat(boot), torch.cat(jack), rows


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
    empty = rows == 0
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


def _quantile(ordered: torch.Tensor, count: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Per column ``s``: the ``q[s]`` quantile of the first ``count[s]`` values of column ``s``
    of ``ordered`` (sorted ascending), linearly interpolated (numpy's and scipy's default)."""
    last = (count - 1).clamp_min(0)
    position = torch.nan_to_num(q, nan=0.0).clamp(0, 1) * last
    below = position.floor().long()
    above = torch.minimum(below + 1, last)
    low, high = ordered.gather(0, below.unsqueeze(0))[0], ordered.gather(0, above.unsqueeze(0))[0]
    return torch.where(high == low, low, low + (position - below) * (high - low))


def _intervals(
    point: torch.Tensor,
    boot: torch.Tensor,
    jack: torch.Tensor,
    rows: torch.Tensor,
    confidence: float,
    seed: int,
    gaps: torch.Tensor,
) -> list[Interval]:
    """One :class:`Interval` per column: BCa from the bootstrap (``B x S``) and the
    leave-one-out values (``K x S``, ``rows`` rows each), else the percentile interval
    holding the estimate, with a note (see the module docstring). ``gaps``: the columns
    that are maxima / minima over groups (named in the note when BCa fails)."""
    n_boot = boot.shape[0]
    if n_boot == 0:
        return [Interval(math.nan, math.nan, "none", confidence, 0, seed, "no resamples (n_boot=0)")] * point.numel()
    alpha = (1 - confidence) / 2
    defined = ~torch.isnan(boot)
    count = defined.sum(0)
    ordered = torch.where(defined, boot, math.inf).sort(dim=0).values
    below, ties = (boot < point).sum(0), (boot == point).sum(0)
    # bias correction z0 and acceleration a as in Efron & Tibshirani (1993) 14.3, 15.4 and scipy.stats.bootstrap
    z0 = torch.special.ndtri((2 * below + ties).double() / (2 * count.clamp_min(1)))  # ties count half
    weights = rows.unsqueeze(1)
    spread = (weights * jack).sum(0) / rows.sum() - jack
    squares = (weights * spread**2).sum(0)
    accel = (weights * spread**3).sum(0) / (6 * squares**1.5)
    levels = []
    for z in torch.special.ndtri(torch.tensor([alpha, 1 - alpha], dtype=torch.float64)):
        levels.append(torch.special.ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z))))
    usable = torch.isfinite(z0) & torch.isfinite(accel) & torch.isfinite(levels[0]) & torch.isfinite(levels[1])
    bca = [_quantile(ordered, count, level) for level in levels]
    percentile = [_quantile(ordered, count, torch.full_like(point, q)) for q in (alpha, 1 - alpha)]
    undefined_jack = torch.isnan(jack).any(0)
    out = []
    for s in range(point.numel()):
        value, defined_s = float(point[s]), int(count[s])
        if math.isnan(value) or defined_s == 0:
            note = None if math.isnan(value) else "no resample has a value"
            out.append(Interval(math.nan, math.nan, "none", confidence, n_boot, seed, note))
            continue
        low, high = float(bca[0][s]), float(bca[1][s])
        notes = []
        if float(ordered[0, s]) == float(ordered[defined_s - 1, s]):
            method, low, high = "percentile", float(ordered[0, s]), float(ordered[0, s])
            notes.append("every resample gave the same value: the interval has no width")
        elif bool(usable[s]) and low <= value <= high:
            method = "BCa"
        else:
            method, low, high = "percentile", float(percentile[0][s]), float(percentile[1][s])
            above_share = 1 - (int(below[s]) + int(ties[s])) / defined_s
            drift = bool(gaps[s])  # the estimate sits at an edge of the resamples, as a gap's does
            if bool(undefined_jack[s]):
                why, drift = "leaving out one row leaves the statistic without a value", False
            elif float(squares[s]) == 0:
                why, drift = "leaving out any one row gives the same value", False
            elif int(below[s]) + int(ties[s]) == 0:
                why = "the estimate is below every resample"
            elif int(below[s]) == defined_s:
                why = "the estimate is above every resample"
            elif not bool(usable[s]):
                why = "its bias correction or acceleration is undefined"
            else:
                side = f"below {above_share:.1%}" if above_share > 0.5 else f"above {int(below[s]) / defined_s:.1%}"
                why = f"its interval [{float(bca[0][s]):.3f}, {float(bca[1][s]):.3f}] misses the estimate, which is {side} of resamples"
            if drift:
                why += " (a gap over groups drifts away from its estimate in resamples when groups are close or small)"
            notes.append(f"BCa not usable: {why}; percentile interval shown")
        if not low <= value <= high:
            low, high = min(low, value), max(high, value)
            notes[-1] += ", stretched to hold the estimate"
        if defined_s < n_boot:
            notes.append(
                f"{n_boot - defined_s} of {n_boot} resamples had no value (a group without rows, or 0 / 0) and were left out"
            )
        out.append(Interval(low, high, method, confidence, n_boot, seed, "; ".join(notes) or None))
    return out


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
        n_boot: bootstrap resamples of the scored rows (``0``: no intervals).
        confidence: the intervals' level. seed: seeds the resamples (same seed, same intervals).

    Returns ``{attribute: {"groups": {name: {"n", "accuracy", "macro_f1"}},
    "demographic_parity_difference": {"value", "ci", "per_class": {name: {"value", "ci"}}},
    "demographic_parity_ratio": ..., "equalized_odds_difference": ..., "left_out": int}}``
    for each attribute given; values are Python floats, ``ci`` an :class:`Interval` (BCa,
    or percentile with a ``note``; it unpacks as ``low, high``).
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
    if n_boot < 0:
        raise ValueError(f"n_boot must be 0 (no intervals) or a number of resamples, got {n_boot}")
    rng = np.random.default_rng(seed)
    report: dict = {}
    for attribute, values in (("race", race), ("gender", gender), ("age", age)):
        if values is None:
            continue
        values = torch.as_tensor(values)
        if len(values) != len(target):
            raise ValueError(
                f"{attribute} has {len(values)} rows, the predictions {len(target)}: pass the same rows' values"
            )
        groups_all = group_index(values.cpu(), attribute, min_probability=min_probability, age_edges=age_edges)
        rows = scored & (groups_all >= 0)
        g, t, p = groups_all[rows], target[rows], pred[rows].clamp(0, num_classes - 1)
        bad = pred[rows] != p
        if bool(bad.any()):
            raise ValueError(
                f"predicted classes must be in [0, {num_classes}), found {sorted(set(pred[rows][bad].tolist()))[:5]}"
            )
        group_list = group_names(attribute, age_edges)
        shape = (len(group_list), num_classes, num_classes)
        cell = (g * num_classes + t) * num_classes + p
        sizes = torch.bincount(g, minlength=len(group_list))
        keep = sizes >= max(min_group_size, 1)
        point, boot, jack, jack_rows = _resampled(cell, shape, keep, n_boot, rng)
        count = len(group_list)
        gaps = torch.arange(point.numel()) >= 2 * count
        intervals = _intervals(point, boot, jack, jack_rows, confidence, seed, gaps)
        entries = [
            {"value": value, "ci": ci} for value, ci in zip(point.tolist(), intervals, strict=False)
        ]  # in _columns' order
        table: dict = {
            "groups": {
                name: {"n": int(sizes[k]), "accuracy": entries[k], "macro_f1": entries[count + k]}
                for k, name in enumerate(group_list)
            },
            "left_out": int((scored & (groups_all < 0)).sum()),
        }
        for i, stat in enumerate(_STATS):
            first = 2 * count + i * (num_classes + 1)
            table[stat] = {
                **entries[first + num_classes],
                "per_class": dict(zip(names, entries[first : first + num_classes], strict=False)),
            }
        report[attribute] = table
    return report


def format_fairness(report: dict) -> str:
    """The report as text: a first line with the intervals' method, resamples and seed, one
    block per attribute (a line per group, then the gaps' worst class), and under it the
    notes that marked intervals (``*1``, ``*2``...) refer to."""
    notes: dict[str, int] = {}
    seen: list[Interval] = []

    def fmt(entry):
        ci = entry["ci"]
        seen.append(ci)
        text = f"{entry['value']:.3f}"
        if ci.method != "none":
            text += f" [{ci.low:.3f}, {ci.high:.3f}]"
        if ci.note and ci.n_resamples:
            text += f" *{notes.setdefault(ci.note, len(notes) + 1)}"
        return text

    lines = []
    for attribute, table in report.items():
        lines.append(f"  {attribute} (left out: {table['left_out']} rows without a group)")
        for name, row in table["groups"].items():
            if row["n"]:
                lines.append(
                    f"    {name:<16} n={row['n']:5d}  accuracy={fmt(row['accuracy'])}  macro-F1={fmt(row['macro_f1'])}"
                )
        for stat in _STATS:
            lines.append(f"    {stat.replace('_', ' '):<32} {fmt(table[stat])}  (worst class)")
    if not seen:
        return "\n".join(lines)
    first = seen[0]
    if first.n_resamples == 0:
        header = "  no intervals (n_boot=0)"
    else:
        header = (
            f"  intervals: {first.confidence * 100:g}% BCa bootstrap (bias-corrected and accelerated), "
            f"{first.n_resamples} resamples of the scored rows, seed {first.seed}"
        )
        if notes:
            header += "; *N: see the notes below"
    lines.insert(0, header)
    if notes:
        lines.append("  notes:")
        lines.extend(f"    *{number} {note}" for note, number in notes.items())
    return "\n".join(lines)
