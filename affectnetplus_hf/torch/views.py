"""7-class and 8-class views: keep some expression codes, renormalise the soft label, remap the label.

AffectNet+ has 11 human-label codes (:data:`~affectnetplus_hf.core.schema.EXPRESSIONS`) and an
8-score soft label (codes 0..7). The usual tasks keep codes 0..7 (8 classes: validation
has 4,000 images) or 0..6 (7 classes, no contempt: 3,500). A :class:`ClassView` says which
codes are kept and in which order; applying it

* drops rows whose human label is not kept (null labels included, unless
  ``keep_unlabeled``: then they stay with label ``-1``),
* keeps only the kept codes' soft-label scores, in view order, and with
  ``renormalize=True`` (default) divides them by their sum, so that the soft label of the
  view is a distribution over its classes (a row whose kept scores are all 0 becomes
  uniform),
* remaps ``human_label`` from the code to its index in the view (identity for the 7- and
  8-class views, whose codes are a prefix).

:func:`view_batch` applies a view to a collated batch (what ``make_loader(view=...)`` does
in the workers, without touching the stored dataset); :func:`view_dataset` to a
``datasets.Dataset`` or ``IterableDataset`` (``filter`` + ``map``; for a map-style dataset
that writes a cache file holding the kept rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..core.schema import EXPRESSIONS, NUM_SOFT_CLASSES
from .batch_plan import select_rows
from .losses import to_distribution

__all__ = ["EIGHT_CLASS", "SEVEN_CLASS", "ClassView", "class_view", "view_batch", "view_dataset"]


@dataclass(frozen=True)
class ClassView:
    """Kept expression codes, in the order of the view's class indices."""

    codes: tuple[int, ...]
    renormalize: bool = True
    keep_unlabeled: bool = False

    def __post_init__(self):
        codes = tuple(int(c) for c in self.codes)
        object.__setattr__(self, "codes", codes)
        if not codes:
            raise ValueError("a ClassView needs at least one expression code")
        bad = [c for c in codes if not 0 <= c < NUM_SOFT_CLASSES]
        if bad:
            raise ValueError(
                f"codes {bad} have no soft-label score; a view keeps codes 0..{NUM_SOFT_CLASSES - 1} "
                f"({', '.join(EXPRESSIONS[:NUM_SOFT_CLASSES])})"
            )
        if len(set(codes)) != len(codes):
            raise ValueError(f"codes repeat: {codes}")

    @property
    def num_classes(self) -> int:
        return len(self.codes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(EXPRESSIONS[c] for c in self.codes)

    def label_map(self) -> torch.Tensor:
        """``int64[len(EXPRESSIONS)]``: code -> view index, ``-1`` for dropped codes."""
        table = torch.full((len(EXPRESSIONS),), -1, dtype=torch.int64)
        table[list(self.codes)] = torch.arange(len(self.codes))
        return table

    def map_labels(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The class filter of the view, the only one: ``(mapped, keep)`` for human-label
        codes ``labels`` (``int64``, ``-1`` where null, any device).

        ``mapped`` is each code's index in the view (``-1`` for codes the view drops and
        for null); ``keep`` is ``True`` for rows the view keeps: a kept code, or a null
        label when ``keep_unlabeled``.
        """
        table = self.label_map().to(labels.device)
        known = (labels >= 0) & (labels < table.numel())
        mapped = torch.where(known, table[labels.clamp(0, table.numel() - 1)], torch.full_like(labels, -1))
        keep = mapped >= 0
        if self.keep_unlabeled:
            keep = keep | (labels < 0)
        return mapped, keep

    def soft_targets(self, soft: torch.Tensor) -> torch.Tensor:
        """The kept codes' soft-label scores (``N x num_classes``), in view order, renormalised
        by :func:`~affectnetplus_hf.torch.losses.to_distribution` (``normalize="sum"``) when
        ``renormalize``."""
        kept = soft[:, list(self.codes)]
        return to_distribution(kept, "sum") if self.renormalize else kept


#: Codes 0..7: neutral, happy, sad, surprise, fear, disgust, anger, contempt.
EIGHT_CLASS = ClassView(tuple(range(8)))
#: Codes 0..6: the 8-class view without contempt.
SEVEN_CLASS = ClassView(tuple(range(7)))


def class_view(
    classes: int | Sequence[int | str] | ClassView, *, renormalize: bool = True, keep_unlabeled: bool = False
) -> ClassView:
    """``7``, ``8``, a list of codes or expression names, or a ClassView (returned as is)."""
    if isinstance(classes, ClassView):
        return classes
    if isinstance(classes, int):
        if classes not in (7, 8):
            raise ValueError(f"classes must be 7, 8 or a list of codes/names, got {classes}")
        codes: Sequence[int | str] = range(classes)
    else:
        codes = classes
    resolved = []
    for c in codes:
        if isinstance(c, str):
            if c not in EXPRESSIONS:
                raise ValueError(f"unknown expression {c!r}; valid: {list(EXPRESSIONS[:NUM_SOFT_CLASSES])}")
            c = EXPRESSIONS.index(c)
        resolved.append(int(c))
    return ClassView(tuple(resolved), renormalize=renormalize, keep_unlabeled=keep_unlabeled)


def view_batch(batch: dict, view: ClassView | int) -> dict:
    """The batch seen through ``view``: rows with other labels dropped (see module docs)."""
    view = class_view(view)
    out = dict(batch)
    labels = batch.get("human_label")
    if labels is not None:
        mapped, keep = view.map_labels(labels)
        out["human_label"] = mapped
        if not bool(keep.all()):
            out = select_rows(out, keep)
    if "soft_label" in out:
        out["soft_label"] = view.soft_targets(out["soft_label"])
    return out


def view_dataset(dataset, view: ClassView | int):
    """A ``datasets.Dataset`` / ``IterableDataset`` seen through ``view``.

    ``human_label`` becomes a ``ClassLabel`` over the view's names and ``soft_label`` a
    list of ``view.num_classes`` floats. Map-style datasets are filtered (an index mapping)
    and mapped (a cache file with the kept rows, images included); for training prefer
    ``make_loader(dataset, ..., view=view)``, which applies the view per batch.
    """
    import datasets

    from .requirements import require_values

    view = class_view(view)
    require_values(dataset, "human_label")

    def codes(labels) -> torch.Tensor:
        return torch.tensor([-1 if label is None else label for label in labels], dtype=torch.int64)

    def keep(labels):
        return view.map_labels(codes(labels))[1].tolist()

    def remap(soft_labels, labels):
        soft = view.soft_targets(torch.tensor(soft_labels, dtype=torch.float32).reshape(len(labels), -1))
        mapped = view.map_labels(codes(labels))[0].tolist()
        return {
            "soft_label": soft.tolist(),
            "human_label": [None if label is None else m for label, m in zip(labels, mapped, strict=False)],
        }

    features = dataset.features.copy() if dataset.features is not None else None
    kwargs = {}
    if features is not None:
        features["soft_label"] = datasets.Sequence(datasets.Value("float32"), length=view.num_classes)
        features["human_label"] = datasets.ClassLabel(names=list(view.names))
        kwargs["features"] = features
    filtered = dataset.filter(keep, input_columns="human_label", batched=True)
    return filtered.map(remap, input_columns=["soft_label", "human_label"], batched=True, **kwargs)
