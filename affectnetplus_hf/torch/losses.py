"""Soft-target losses with an explicit choice of how raw scores become a distribution.

AffectNet+'s ``soft_label`` holds one score per class and the scores do **not** sum to 1
(sums seen from 1.4 to 2.2). A soft-target loss needs a distribution, and there is more
than one honest way to get one, so every function here takes ``normalize=`` and has no
default for it:

``"sum"``      divide by the row sum (a row of zeros becomes uniform);
``"softmax"``  ``softmax(scores / temperature)``;
``"none"``     the target already is a distribution (e.g. after a renormalising
               :class:`~affectnetplus_hf.torch.views.ClassView`, or mixup of such).

Predictions are logits ``N x C``; targets ``N x C``. Reductions: ``"mean"`` over rows,
``"sum"`` or ``"none"`` (``N``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "NORMALIZATIONS",
    "SoftTargetCrossEntropy",
    "SoftTargetKLDiv",
    "soft_cross_entropy",
    "soft_kl_div",
    "to_distribution",
]

NORMALIZATIONS: tuple[str, ...] = ("sum", "softmax", "none")
_REDUCTIONS = ("mean", "sum", "none")


def _check(normalize: str, temperature: float, reduction: str | None = None) -> None:
    if normalize not in NORMALIZATIONS:
        raise ValueError(
            f"normalize must be one of {list(NORMALIZATIONS)} (how raw soft-label scores become a distribution), got {normalize!r}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if reduction is not None and reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(_REDUCTIONS)}, got {reduction!r}")


def to_distribution(scores: torch.Tensor, normalize: str, temperature: float = 1.0) -> torch.Tensor:
    """Rows of ``scores`` (``N x C``) as probability distributions, by ``normalize``."""
    _check(normalize, temperature)
    scores = scores.float()
    if normalize == "none":
        return scores
    if normalize == "softmax":
        return torch.softmax(scores / temperature, dim=-1)
    scores = scores.clamp_min(0)
    total = scores.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(scores, 1.0 / scores.shape[-1])
    return torch.where(total > 0, scores / total.clamp_min(torch.finfo(scores.dtype).tiny), uniform)


def soft_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, *, normalize: str, temperature: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """``-sum_c p_c log softmax(logits)_c`` with ``p = to_distribution(target, normalize, temperature)``
    (``F.cross_entropy`` with probability targets)."""
    _check(normalize, temperature, reduction)
    if logits.shape != target.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must have the same shape N x C"
        )
    p = to_distribution(target, normalize, temperature).to(logits.dtype)
    return F.cross_entropy(logits, p, reduction=reduction)  # probability targets


def soft_kl_div(
    logits: torch.Tensor, target: torch.Tensor, *, normalize: str, temperature: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """``KL(p || softmax(logits)) = sum_c p_c (log p_c - log q_c)``, ``0 log 0 = 0`` (``F.kl_div``).

    Equals :func:`soft_cross_entropy` minus the target's entropy: same gradient, but 0 at
    a perfect fit, so its value reads as a distance.
    """
    _check(normalize, temperature, reduction)
    if logits.shape != target.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must have the same shape N x C"
        )
    p = to_distribution(target, normalize, temperature).to(logits.dtype)
    log_q = F.log_softmax(logits, dim=-1)
    if reduction == "none":
        return F.kl_div(log_q, p, reduction="none").sum(dim=-1)
    return F.kl_div(log_q, p, reduction="batchmean" if reduction == "mean" else "sum")


class SoftTargetCrossEntropy(nn.Module):
    """Module form of :func:`soft_cross_entropy`; ``normalize`` is required."""

    def __init__(self, *, normalize: str, temperature: float = 1.0, reduction: str = "mean"):
        super().__init__()
        _check(normalize, temperature, reduction)
        self.normalize, self.temperature, self.reduction = normalize, temperature, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_cross_entropy(
            logits, target, normalize=self.normalize, temperature=self.temperature, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}, temperature={self.temperature}, reduction={self.reduction!r}"


class SoftTargetKLDiv(SoftTargetCrossEntropy):
    """Module form of :func:`soft_kl_div`; ``normalize`` is required."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_kl_div(
            logits, target, normalize=self.normalize, temperature=self.temperature, reduction=self.reduction
        )
