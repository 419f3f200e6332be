"""Evaluation metrics for AffectNet+: plain functions over tensors.

Classification is scored against the **human label**. ``pred`` may be class indices
(``N``) or scores/logits (``N x C``, the arg-max is taken). Rows whose label is ``-1``
(null) or not below the number of classes (``C``, or ``num_classes``) are left out, so
8-class logits are scored on codes 0..7 only.

* :func:`accuracy`: fraction correct.
* :func:`mean_class_accuracy`: mean over the classes among the scored labels of the
  fraction of that class's rows predicted right (balanced accuracy, "mean class
  accuracy" / "average accuracy" in FER papers).
* :func:`macro_f1`: mean of per-class ``F1 = 2 TP / (2 TP + FP + FN)`` over the classes
  that occur among the scored rows' labels or predictions (scikit-learn's default).
* :func:`group_report`: both, per group, and the largest gap between groups. Groups for
  gender and race are the **most probable** category of the row's estimated
  probabilities (rows whose probabilities are null are left out).
* :func:`classification_report`: overall, per subset, per gender and per race group.

Soft labels: :func:`kl_divergence` and :func:`js_divergence` between distributions
(natural log, mean over rows; make distributions from raw scores with
:func:`~affectnetplus_hf.torch.losses.to_distribution`). Valence / arousal:
:func:`rmse` and :func:`ccc` (Lin's concordance correlation coefficient) over the rows
whose target is not ``NaN``; both are differentiable (``1 - ccc`` is a common loss).

Scalar functions return 0-dim float tensors (``NaN`` when no row is scored); the
reports return nested dicts of Python floats and ints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..core.demographics import most_probable
from ..core.schema import GENDERS, RACES, SUBSETS

__all__ = [
    "accuracy",
    "ccc",
    "classification_report",
    "group_report",
    "js_divergence",
    "kl_divergence",
    "macro_f1",
    "mean_class_accuracy",
    "rmse",
]


def _scored(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int | None
) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    if pred.dim() == 2:
        if num_classes is None:
            num_classes = pred.shape[1]
        pred = pred.argmax(dim=1)
    elif pred.dim() != 1:
        raise ValueError(f"pred must be class indices (N) or scores (N x C), got shape {tuple(pred.shape)}")
    target = target.to(pred.device).long()
    if target.shape != pred.shape:
        raise ValueError(f"pred has {pred.shape[0]} rows, target {tuple(target.shape)}")
    keep = target >= 0
    if num_classes is not None:
        keep &= target < num_classes
    return pred[keep].long(), target[keep], num_classes


def accuracy(pred: torch.Tensor, target: torch.Tensor, *, num_classes: int | None = None) -> torch.Tensor:
    """Fraction of scored rows where the predicted class equals the human label."""
    p, t, _ = _scored(pred, target, num_classes)
    if t.numel() == 0:
        return torch.tensor(float("nan"))
    return (p == t).double().mean()


def mean_class_accuracy(pred: torch.Tensor, target: torch.Tensor, *, num_classes: int | None = None) -> torch.Tensor:
    """Unweighted mean over the classes present among the scored labels of each class's accuracy (recall)."""
    p, t, _ = _scored(pred, target, num_classes)
    if t.numel() == 0:
        return torch.tensor(float("nan"))
    size = int(torch.maximum(p.max(), t.max()).item()) + 1
    right = torch.bincount(t[p == t], minlength=size).double()
    total = torch.bincount(t, minlength=size).double()
    present = total > 0
    return (right[present] / total[present]).mean()


def macro_f1(pred: torch.Tensor, target: torch.Tensor, *, num_classes: int | None = None) -> torch.Tensor:
    """Unweighted mean F1 over the classes present among the scored labels or predictions."""
    p, t, _ = _scored(pred, target, num_classes)
    if t.numel() == 0:
        return torch.tensor(float("nan"))
    size = int(torch.maximum(p.max(), t.max()).item()) + 1
    tp = torch.bincount(t[p == t], minlength=size).double()
    pred_count = torch.bincount(p, minlength=size).double()
    true_count = torch.bincount(t, minlength=size).double()
    present = (pred_count + true_count) > 0
    f1 = 2 * tp[present] / (pred_count[present] + true_count[present])
    return f1.mean()


def _summary(pred, target, num_classes) -> dict:
    p, t, _ = _scored(pred, target, num_classes)
    return {
        "n": int(t.numel()),
        "accuracy": float(accuracy(pred, target, num_classes=num_classes)),
        "macro_f1": float(macro_f1(pred, target, num_classes=num_classes)),
    }


def group_report(
    pred: torch.Tensor,
    target: torch.Tensor,
    groups: torch.Tensor,
    names: Sequence[str],
    *,
    num_classes: int | None = None,
    min_size: int = 1,
) -> dict:
    """Accuracy and macro-F1 per group, and the largest gap between groups.

    ``groups``: ``N`` group indices (``-1`` = no group) or ``N x G`` probabilities (each
    row's group is its most probable one; rows with any ``NaN`` have none). Groups with
    fewer than ``min_size`` scored rows are reported but left out of the gap.

    Returns ``{"groups": {name: {"n", "accuracy", "macro_f1"}}, "gap": {"accuracy",
    "macro_f1", "accuracy_groups": (best, worst), "macro_f1_groups": (best, worst)}}``;
    gaps are ``NaN`` with fewer than two groups.
    """
    if groups.dim() == 2:
        if groups.shape[1] != len(names):
            raise ValueError(f"{groups.shape[1]} group probabilities per row but {len(names)} names")
        index = torch.from_numpy(most_probable(groups.detach().cpu().double().numpy()))  # float64: exact for any float
    else:
        index = groups.long()
    index = index.to(target.device)
    report: dict = {"groups": {}, "gap": {}}
    for g, name in enumerate(names):
        rows = index == g
        report["groups"][name] = _summary(pred[rows.to(pred.device)], target[rows], num_classes)
    for metric in ("accuracy", "macro_f1"):
        ranked = [
            (summary[metric], name)
            for name, summary in report["groups"].items()
            if summary["n"] >= min_size and summary[metric] == summary[metric]
        ]
        if len(ranked) < 2:
            report["gap"][metric] = float("nan")
            report["gap"][f"{metric}_groups"] = None
            continue
        best, worst = max(ranked), min(ranked)
        report["gap"][metric] = best[0] - worst[0]
        report["gap"][f"{metric}_groups"] = (best[1], worst[1])
    return report


def classification_report(
    pred: torch.Tensor,
    human_label: torch.Tensor,
    *,
    subset: torch.Tensor | None = None,
    gender: torch.Tensor | None = None,
    race: torch.Tensor | None = None,
    num_classes: int | None = None,
    min_group_size: int = 1,
) -> dict:
    """``{"overall", "subset": {easy, challenging, difficult}, "gender": group_report,
    "race": group_report}``; parts whose inputs are not given are left out.

    ``subset``: ``N`` codes (``-1`` null). ``gender`` / ``race``: ``N x 2`` / ``N x 6``
    probabilities in schema order (:data:`GENDERS`, :data:`RACES`).
    """
    report: dict = {"overall": _summary(pred, human_label, num_classes)}
    if subset is not None:
        subset = subset.to(human_label.device)
        report["subset"] = {
            name: _summary(pred[(subset == code).to(pred.device)], human_label[subset == code], num_classes)
            for code, name in enumerate(SUBSETS)
        }
    if gender is not None:
        report["gender"] = group_report(
            pred, human_label, gender, GENDERS, num_classes=num_classes, min_size=min_group_size
        )
    if race is not None:
        report["race"] = group_report(pred, human_label, race, RACES, num_classes=num_classes, min_size=min_group_size)
    return report


def _check_dist(p: torch.Tensor, q: torch.Tensor) -> None:
    if p.shape != q.shape or p.dim() != 2:
        raise ValueError(f"expected two N x C distributions of one shape, got {tuple(p.shape)} and {tuple(q.shape)}")


def kl_divergence(p: torch.Tensor, q: torch.Tensor, *, eps: float = 1e-12) -> torch.Tensor:
    """Mean over rows of ``KL(p || q) = sum p log(p / q)`` (nats); ``q`` is clamped at ``eps``."""
    _check_dist(p, q)
    p, q = p.double(), q.double()
    return (torch.xlogy(p, p) - p * torch.log(q.clamp_min(eps))).sum(dim=1).mean()


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the Jensen-Shannon divergence (nats, between 0 and ln 2)."""
    _check_dist(p, q)
    p, q = p.double(), q.double()
    m = (p + q) / 2
    kl_pm = (torch.xlogy(p, p) - torch.xlogy(p, m)).sum(dim=1)
    kl_qm = (torch.xlogy(q, q) - torch.xlogy(q, m)).sum(dim=1)
    return ((kl_pm + kl_qm) / 2).mean()


def _valid(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    keep = ~torch.isnan(target)
    return pred[keep].double(), target[keep].double()


def rmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Root mean squared error over entries whose target is not ``NaN``."""
    p, t = _valid(pred, target)
    if t.numel() == 0:
        return torch.tensor(float("nan"), dtype=torch.float64)
    return torch.sqrt(((p - t) ** 2).mean())


def ccc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lin's concordance correlation coefficient over entries whose target is not ``NaN``:
    ``2 cov(p, t) / (var p + var t + (mean p - mean t)^2)`` with population (1/n) moments."""
    p, t = _valid(pred, target)
    if t.numel() == 0:
        return torch.tensor(float("nan"), dtype=torch.float64)
    mp, mt = p.mean(), t.mean()
    vp, vt = ((p - mp) ** 2).mean(), ((t - mt) ** 2).mean()
    cov = ((p - mp) * (t - mt)).mean()
    return 2 * cov / (vp + vt + (mp - mt) ** 2)
