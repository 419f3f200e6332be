"""Class-balanced sampling: the human-annotated train set's class counts differ 35x.

:func:`class_balanced_weights` gives each row the weight ``count[label] ** -power``
(``power=1``: every class is drawn equally often; ``0.5``: square-root balancing; ``0``:
no balancing). Rows with no label (``-1``), or a label not below ``num_classes`` when it
is given (e.g. 8 to train on codes 0..7 only), get weight 0 and are never drawn.
:func:`balanced_sampler` wraps the weights in a ``WeightedRandomSampler``.

Labels come from a tensor / sequence, or straight from a ``datasets.Dataset``'s
``human_label`` column (read through Arrow, without decoding an image).
"""

from __future__ import annotations

import torch
from torch.utils.data import WeightedRandomSampler

__all__ = ["balanced_sampler", "class_balanced_weights", "class_counts", "labels_of"]


def labels_of(source, column: str = "human_label") -> torch.Tensor:
    """``int64`` labels (``-1`` for null) from a tensor, a sequence, or a ``datasets.Dataset``."""
    if isinstance(source, torch.Tensor):
        return source.long()
    if hasattr(source, "with_format") and hasattr(source, "column_names"):
        if not hasattr(source, "__len__"):
            raise TypeError("class-balanced weights need a map-style dataset (a streaming dataset has no row count)")
        if column not in source.column_names:
            raise KeyError(f"dataset has no {column!r} column; columns: {source.column_names}")
        from ..core.columns import COLUMN_KINDS, label_codes
        from .requirements import require_values

        require_values(source, column)

        kind, num_classes = COLUMN_KINDS.get(column, (None, None))
        array = source.with_format("arrow")[column]
        return torch.from_numpy(label_codes(array, num_classes if kind == "label" else None, column))
    return torch.tensor([-1 if v is None else int(v) for v in source], dtype=torch.int64)


def class_counts(labels, num_classes: int | None = None) -> torch.Tensor:
    """Rows per class (``int64``), ignoring ``-1`` and labels not below ``num_classes``."""
    labels = labels_of(labels)
    valid = labels[(labels >= 0) & ((labels < num_classes) if num_classes is not None else True)]
    size = num_classes if num_classes is not None else (int(valid.max()) + 1 if valid.numel() else 0)
    return torch.bincount(valid, minlength=size)


def class_balanced_weights(labels, *, num_classes: int | None = None, power: float = 1.0) -> torch.Tensor:
    """``float64`` weight per row: ``count[label] ** -power``, 0 for unlabeled / excluded rows."""
    if power < 0:
        raise ValueError(f"power must be >= 0, got {power}")
    labels = labels_of(labels)
    counts = class_counts(labels, num_classes).double()
    valid = (labels >= 0) & (labels < counts.numel())
    weights = torch.zeros(labels.shape[0], dtype=torch.float64)
    weights[valid] = counts[labels[valid]].pow(-power)
    if not bool(valid.any()):
        raise ValueError("no row has a usable label: nothing to sample (is this the unlabeled part?)")
    return weights


def balanced_sampler(
    labels,
    *,
    num_classes: int | None = None,
    power: float = 1.0,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> WeightedRandomSampler:
    """A ``WeightedRandomSampler`` (with replacement) over :func:`class_balanced_weights`;
    ``num_samples`` defaults to the number of labelled rows."""
    weights = class_balanced_weights(labels, num_classes=num_classes, power=power)
    if num_samples is None:
        num_samples = int((weights > 0).sum())
    # torch's stub says Sequence[float]; the sampler takes a Tensor as well (torch.as_tensor)
    return WeightedRandomSampler(weights, num_samples=num_samples, replacement=True, generator=generator)  # type: ignore[arg-type]
