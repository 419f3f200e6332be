"""Multi-task loss over every head AffectNet+ annotates, each masked where its target is null.

:class:`MultiTaskLoss` takes the model's outputs as a dict (keys below, any subset) and a
collated batch, and returns the weighted total and each head's loss::

    criterion = MultiTaskLoss(normalize="sum", balancing="ema")
    total, parts = criterion({"expression": logits, "valence": v, "arousal": a}, batch)

==============  =====================  ============================================  ===========================
head            output                 loss                                          rows used
==============  =====================  ============================================  ===========================
``expression``  ``N x C`` logits       soft cross-entropy on ``soft_label``          soft label not ``NaN``
                                       (``normalize=`` as in :mod:`.losses`)
``valence``     ``N``                  ``1 - CCC`` (``va_loss="ccc"``) or MSE        ``valence_valid``
``arousal``     ``N``                  the same                                      ``arousal_valid``
``landmarks``   ``N x 68 x 2`` pixels  mean point distance / inter-ocular distance  landmarks all finite
                                       (outer eye corners, :data:`~affectnetplus_hf.core.landmarks.OUTER_EYE_CORNERS`)
``age``         ``N`` years            smooth L1 of ``(pred - age) / age_scale``      ``age_valid``
``gender``      ``N x 2`` logits       soft cross-entropy on the probabilities      probabilities not ``NaN``
``race``        ``N x 6`` logits       the same                                      probabilities not ``NaN``
``head_pose``   ``N x 3``              MSE over yaw, pitch, roll                      pose not ``NaN``
==============  =====================  ============================================  ===========================

A head whose batch has no usable row contributes ``0 * output.sum()``: a zero loss
with a zero (never ``NaN``) gradient, and it does not move the balancing state.

Balancing (``balancing=``):

* ``"fixed"``: ``sum w_h L_h`` with ``weights`` (default 1 each);
* ``"uncertainty"``: homoscedastic uncertainty weighting (Kendall, Gal and Cipolla,
  CVPR 2018), ``sum exp(-s_h) L_h + s_h`` with a learned ``s_h = log sigma_h^2`` per head
  (``nn.Parameter``: give the criterion's parameters to the optimiser);
* ``"ema"``: each loss divided by an exponential moving average of its own observed
  magnitude (``decay``), so every head contributes about 1 whatever its units; the
  averages are updated in training mode only.

:meth:`MultiTaskLoss.current_weights` gives the weight each head's loss is multiplied by
now, for logging. The balancing state (``log_vars`` / ``ema``) lives in parameters and
buffers: ``state_dict()`` saves it and ``load_state_dict()`` restores it, with the
model's or on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.landmarks import OUTER_EYE_CORNERS  # re-exported: the multi-task API names it
from .losses import soft_cross_entropy
from .metrics import ccc

__all__ = ["BALANCINGS", "HEADS", "OUTER_EYE_CORNERS", "MultiTaskLoss"]

#: Every head, in the order of the batch keys they are trained on.
HEADS: tuple[str, ...] = ("expression", "valence", "arousal", "landmarks", "age", "gender", "race", "head_pose")
BALANCINGS: tuple[str, ...] = ("fixed", "uncertainty", "ema")


def _zero(output: torch.Tensor) -> torch.Tensor:
    return output.sum() * 0.0


class MultiTaskLoss(nn.Module):
    """Masked per-head losses and their balancing (see the module docstring).

    Args:
        heads: the heads to train (default: all of :data:`HEADS`); ``forward`` needs an
            output for each.
        normalize: how ``soft_label`` becomes a distribution (``"sum"``, ``"softmax"``,
            ``"none"``: see :func:`~affectnetplus_hf.torch.losses.to_distribution`); required
            when ``expression`` is a head.
        va_loss: ``"ccc"`` or ``"mse"`` for valence and arousal.
        balancing: ``"fixed"``, ``"uncertainty"`` or ``"ema"``.
        weights: fixed weight per head (``"fixed"``; default 1), also multiplied into the
            other balancings as a prior.
        decay: EMA decay (``"ema"``).
        age_scale: years per unit of the age loss.
    """

    # buffers and parameters, registered in __init__ (log_vars: "uncertainty" only; ema, ema_steps: "ema" only)
    prior: torch.Tensor
    log_vars: nn.Parameter
    ema: torch.Tensor
    ema_steps: torch.Tensor

    def __init__(
        self,
        heads: Sequence[str] = HEADS,
        *,
        normalize: str | None = None,
        va_loss: str = "ccc",
        balancing: str = "fixed",
        weights: Mapping[str, float] | None = None,
        decay: float = 0.99,
        age_scale: float = 10.0,
    ):
        super().__init__()
        heads = (heads,) if isinstance(heads, str) else tuple(heads)
        unknown = [h for h in heads if h not in HEADS]
        if unknown or not heads:
            raise ValueError(f"heads must be a non-empty subset of {list(HEADS)}, got {list(heads)}")
        if "expression" in heads and normalize is None:
            raise ValueError(
                "the expression head needs normalize= ('sum', 'softmax' or 'none'): how raw soft-label scores become a distribution"
            )
        if va_loss not in ("ccc", "mse"):
            raise ValueError(f"va_loss must be 'ccc' or 'mse', got {va_loss!r}")
        if balancing not in BALANCINGS:
            raise ValueError(f"balancing must be one of {list(BALANCINGS)}, got {balancing!r}")
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        weights = dict(weights or {})
        extra = sorted(set(weights) - set(heads))
        if extra:
            raise ValueError(f"weights for heads not trained: {extra}")
        self.heads = heads
        self.normalize = normalize
        self.va_loss = va_loss
        self.balancing = balancing
        self.decay = float(decay)
        self.age_scale = float(age_scale)
        self.register_buffer("prior", torch.tensor([float(weights.get(h, 1.0)) for h in heads]))
        if balancing == "uncertainty":
            self.log_vars = nn.Parameter(torch.zeros(len(heads)))
        if balancing == "ema":
            self.register_buffer("ema", torch.ones(len(heads)))
            self.register_buffer("ema_steps", torch.zeros(len(heads), dtype=torch.int64))

    def extra_repr(self) -> str:
        return (
            f"heads={self.heads}, normalize={self.normalize!r}, va_loss={self.va_loss!r}, balancing={self.balancing!r}"
        )

    # ------------------------------------------------------------------ per head
    def head_loss(self, head: str, output: torch.Tensor, batch: Mapping) -> tuple[torch.Tensor, int]:
        """``(loss, rows used)`` of one head; ``rows used == 0`` gives a zero loss with zero gradient."""
        _check_shape(head, output, batch)
        target = batch[_TARGET_KEYS[head]]
        if head in ("valence", "arousal", "age"):
            rows = batch.get(f"{head}_valid", ~torch.isnan(target))
            used = int(rows.sum())
            if used == 0 or (head != "age" and self.va_loss == "ccc" and used < 2):
                return _zero(output), 0
            p, t = output[rows].float(), target[rows].float()
            if head == "age":
                return F.smooth_l1_loss(p / self.age_scale, t / self.age_scale), used
            if self.va_loss == "ccc":
                return 1 - ccc(p, t).to(p.dtype), used
            return F.mse_loss(p, t), used
        # the other heads use the rows whose whole target is known
        rows = torch.isfinite(target).flatten(1).all(dim=1) if head == "landmarks" else ~torch.isnan(target).any(dim=1)
        used = int(rows.sum())
        if used == 0:
            return _zero(output), 0
        if head == "expression":
            assert self.normalize is not None  # __init__ requires it with the expression head
            return soft_cross_entropy(output[rows], target[rows], normalize=self.normalize), used
        if head in ("gender", "race"):
            return soft_cross_entropy(output[rows], target[rows], normalize="sum"), used
        p, t = output[rows].float(), target[rows].float()
        if head == "landmarks":
            left, right = OUTER_EYE_CORNERS
            interocular = (t[:, left] - t[:, right]).norm(dim=-1).clamp_min(1.0)
            return ((p - t).norm(dim=-1).mean(dim=1) / interocular).mean(), used
        return F.mse_loss(p, t), used  # head_pose

    # ------------------------------------------------------------------ total
    def forward(self, outputs: Mapping[str, torch.Tensor], batch: Mapping) -> tuple[torch.Tensor, dict[str, float]]:
        """``(total, {head: loss value})``; a head without usable rows reports ``nan``."""
        missing = [h for h in self.heads if h not in outputs]
        if missing:
            raise KeyError(f"no model output for heads {missing}; outputs: {sorted(outputs)}")
        losses, used = [], []
        for head in self.heads:
            loss, rows = self.head_loss(head, outputs[head], batch)
            losses.append(loss)
            used.append(rows > 0)
        stacked = torch.stack([loss.float() for loss in losses])
        present = torch.tensor(used, device=stacked.device)
        if self.balancing == "ema" and self.training:
            with torch.no_grad():
                seen = present & (self.ema_steps > 0)
                first = present & (self.ema_steps == 0)
                observed = stacked.detach().abs()
                self.ema.copy_(torch.where(seen, self.decay * self.ema + (1 - self.decay) * observed, self.ema))
                self.ema.copy_(torch.where(first, observed.clamp_min(1e-8), self.ema))
                self.ema_steps += present.long()
        weights = self._weights().to(stacked.device)
        total = (weights * stacked).sum()
        if self.balancing == "uncertainty":
            total = total + (self.log_vars * present.float()).sum()  # the s_h term only where the head has data
        parts = {
            head: (float(loss.detach()) if ok else float("nan"))
            for head, loss, ok in zip(self.heads, losses, used, strict=False)
        }
        return total, parts

    def _weights(self) -> torch.Tensor:
        if self.balancing == "uncertainty":
            return self.prior * torch.exp(-self.log_vars)
        if self.balancing == "ema":
            return self.prior / self.ema.clamp_min(1e-8)
        return self.prior

    def current_weights(self) -> dict[str, float]:
        """The factor each head's loss is multiplied by now."""
        return {head: float(w) for head, w in zip(self.heads, self._weights().detach(), strict=False)}


#: The batch key each head is trained on (its output has that key's shape; ``expression``: ``N x C`` logits).
_TARGET_KEYS = {
    "expression": "soft_label",
    "valence": "valence",
    "arousal": "arousal",
    "landmarks": "landmarks",
    "age": "age",
    "gender": "gender",
    "race": "race",
    "head_pose": "head_pose",
}


def _check_shape(head: str, output, batch: Mapping) -> None:
    """One clear message for a head's output that cannot be compared with its target."""
    key = _TARGET_KEYS[head]
    if key not in batch:
        raise KeyError(f"the {head} head trains on the batch's {key!r}, which this batch lacks (keys: {sorted(batch)})")
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"the {head} output must be a tensor, got {type(output).__name__}")
    target = batch[key]
    if output.shape != target.shape:
        raise ValueError(
            f"the {head} output has shape {tuple(output.shape)}; its target {key!r} has shape {tuple(target.shape)} "
            f"(expected {_EXPECTED[head]})"
        )


_EXPECTED = {
    "expression": "N x C logits",
    "valence": "N values",
    "arousal": "N values",
    "landmarks": "N x 68 x 2 pixels",
    "age": "N years",
    "gender": "N x 2 logits",
    "race": "N x 6 logits",
    "head_pose": "N x 3 (yaw, pitch, roll)",
}
