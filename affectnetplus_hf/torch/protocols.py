"""The standard AffectNet evaluation protocols, named: AffectNet-7 and AffectNet-8.

Both score a model on a release's **validation** split with its human labels, keeping the
codes ``0..6`` (AffectNet-7: no contempt) or ``0..7`` (AffectNet-8); other codes and null
labels are left out. The metrics papers report on them are accuracy, mean class accuracy
(balanced accuracy) and macro F1; :func:`evaluate_protocol` returns all three.

The published validation counts are 500 per class (AffectNet 2017 and AffectNet+) and
500 per class with 499 contempt in the 8-label release. :func:`evaluate_protocol`
warns when the labels it is given match none of these (or not the one of ``release``):
a subset, a filtered or a wrongly split validation set gives numbers not comparable with
published ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import MappingProxyType

import torch

from ..core.configs import AFFECTNET_8LABELS, AFFECTNET_2017, AFFECTNET_PLUS, RELEASE_KINDS
from ..core.releases import RELEASES
from ..core.schema import EXPRESSIONS
from .metrics import accuracy, macro_f1, mean_class_accuracy
from .views import EIGHT_CLASS, SEVEN_CLASS, ClassView

__all__ = [
    "EXPECTED_VALIDATION_COUNTS",
    "PROTOCOLS",
    "Protocol",
    "ProtocolCountWarning",
    "evaluate_protocol",
    "get_protocol",
]


@dataclass(frozen=True)
class Protocol:
    """One named protocol: the split scored and the class view kept."""

    name: str
    title: str
    split: str
    view: ClassView

    @property
    def num_classes(self) -> int:
        return self.view.num_classes


PROTOCOLS = MappingProxyType(
    {
        "affectnet7": Protocol("affectnet7", "AffectNet-7", "validation", SEVEN_CLASS),
        "affectnet8": Protocol("affectnet8", "AffectNet-8", "validation", EIGHT_CLASS),
    }
)

#: Release kind -> published validation count per expression code ``0..7`` (a tuple
#: indexed by code), from :data:`affectnetplus_hf.core.releases.RELEASES`.
EXPECTED_VALIDATION_COUNTS = MappingProxyType(
    {
        kind: tuple(RELEASES[kind].published_counts["validation"][name] for name in EXPRESSIONS[:8])
        for kind in (AFFECTNET_PLUS, AFFECTNET_2017, AFFECTNET_8LABELS)
    }
)


class ProtocolCountWarning(UserWarning):
    """The labels scored under a protocol are not a published validation set's."""


def get_protocol(name: str | Protocol) -> Protocol:
    """The :class:`Protocol` called ``name`` (``"affectnet7"``, ``"affectnet8"``; ``"AffectNet-8"`` works too)."""
    if isinstance(name, Protocol):
        return name
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; valid: {list(PROTOCOLS)}")
    return PROTOCOLS[key]


def evaluate_protocol(
    pred, target, protocol: str | Protocol = "affectnet8", *, release: str | None = None, check_counts: bool = True
) -> dict:
    """Score ``pred`` against the human labels ``target`` under a named protocol.

    Args:
        pred: class indices (``N``) or scores (``N x C``, ``C`` = the protocol's classes: slice
            an 8-class model's logits ``[:, :7]`` for AffectNet-7).
        target: ``N`` human-label codes of the validation rows (``-1`` null); codes outside the
            protocol's classes are left out.
        protocol: ``"affectnet7"`` or ``"affectnet8"``.
        release: the release kind the rows come from (``"affectnet_plus"``, ``"affectnet_2017"``,
            ``"affectnet_8labels"``): the counts are checked against its published ones. ``None``:
            against every release's.
        check_counts: warn (:class:`ProtocolCountWarning`) when the kept labels' per-class counts
            are not the published ones.

    Returns ``{"protocol", "n", "accuracy", "mean_class_accuracy", "macro_f1", "counts"}``
    (Python floats and ints; ``counts`` per class, in view order).
    """
    spec = get_protocol(protocol)
    if release is not None and release not in RELEASE_KINDS:
        raise ValueError(f"unknown release kind {release!r}; valid: {list(RELEASE_KINDS)}")
    pred, target = torch.as_tensor(pred), torch.as_tensor(target).long()
    c = spec.num_classes
    if pred.dim() == 2 and pred.shape[1] != c:
        raise ValueError(
            f"{spec.title} scores {c} classes but pred has {pred.shape[1]} scores per row; "
            f"pass class indices or scores for codes 0..{c - 1} (e.g. logits[:, :{c}])"
        )
    kept = (target >= 0) & (target < c)
    counts = torch.bincount(target[kept], minlength=c).tolist()
    if check_counts:
        _check_counts(spec, counts, release)
    return {
        "protocol": spec.title,
        "n": int(kept.sum()),
        "accuracy": float(accuracy(pred, target, num_classes=c)),
        "mean_class_accuracy": float(mean_class_accuracy(pred, target, num_classes=c)),
        "macro_f1": float(macro_f1(pred, target, num_classes=c)),
        "counts": counts,
    }


def _check_counts(spec: Protocol, counts: list[int], release: str | None) -> None:
    kinds = [release] if release is not None else list(EXPECTED_VALIDATION_COUNTS)
    expected = {kind: list(EXPECTED_VALIDATION_COUNTS[kind][: spec.num_classes]) for kind in kinds}
    if any(counts == want for want in expected.values()):
        return
    wants = "; ".join(f"{kind}: {want}" for kind, want in expected.items())
    warnings.warn(
        f"{spec.title}: the validation labels count {counts} per class (codes 0..{spec.num_classes - 1}), "
        f"not the published {wants}. Scores on another set are not comparable with published {spec.title} numbers: "
        "evaluate the whole validation split",
        ProtocolCountWarning,
        stacklevel=3,
    )
