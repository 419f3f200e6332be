"""The collated batch's plan: which keys it has, in which order, in which dtype; and picking rows of it.

Derived from :data:`affectnetplus_hf.core.columns.COLUMN_KINDS` (itself derived from the
schema), so a column added to the schema appears here without an edit. The collator
(:mod:`.collate`) fills batches by this plan; the shared-memory transport
(:mod:`.shared_memory`) rebuilds them in this order; :func:`select_rows` picks rows of
one, every key alike, and :func:`concat_batches` joins batches row-wise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..core.columns import COLUMN_KINDS

__all__ = [
    "BATCH_KEYS",
    "COLLATED_COLUMNS",
    "MASKED_COLUMNS",
    "OUTPUT_ORDER",
    "TORCH_DTYPES",
    "batch_rows",
    "concat_batches",
    "ordered_batch",
    "select_rows",
    "slice_rows",
]

#: Schema columns the collator returns (``landmarks_29``, of variable length, is not collated).
COLLATED_COLUMNS: tuple[str, ...] = tuple(name for name, (kind, _) in COLUMN_KINDS.items() if kind != "list")

#: Float scalar columns that may be null get a ``<name>_valid`` mask.
MASKED_COLUMNS: tuple[str, ...] = tuple(name for name, (kind, _) in COLUMN_KINDS.items() if kind == "float")

#: Every key a pixel batch can hold, in schema order (masks after their column).
BATCH_KEYS: tuple[str, ...] = tuple(
    key for name in COLLATED_COLUMNS for key in ((name, f"{name}_valid") if name in MASKED_COLUMNS else (name,))
)

#: The order of a batch dict's keys: images (or the encoded bytes) first, then :data:`BATCH_KEYS`.
OUTPUT_ORDER: tuple[str, ...] = ("image", "jpeg_data", "jpeg_offsets", "image_size", *BATCH_KEYS)

#: NumPy scalar type -> torch dtype of the batch's tensors.
TORCH_DTYPES = {np.float32: torch.float32, np.int64: torch.int64, np.bool_: torch.bool, np.uint8: torch.uint8}


def ordered_batch(tensors: dict, lists: dict) -> dict[str, Any]:
    """The batch dict in its documented key order (:data:`OUTPUT_ORDER`), then any other key."""
    batch: dict[str, Any] = {}
    for key in (*OUTPUT_ORDER, *tensors, *lists):
        if key in batch:
            continue
        if key in tensors:
            batch[key] = tensors[key]
        elif key in lists:
            batch[key] = lists[key]
    return batch


def select_rows(batch: dict, keep) -> dict:
    """The rows ``keep`` (a bool mask or an index tensor) of a collated batch, every key alike
    (tensors, ``image_id`` and the ``jpeg_data``/``jpeg_offsets`` pair)."""
    keep = torch.as_tensor(keep)
    index = keep.nonzero().flatten() if keep.dtype == torch.bool else keep.long()
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if key in ("jpeg_data", "jpeg_offsets"):
            continue
        if isinstance(value, torch.Tensor):
            out[key] = value.index_select(0, index.to(value.device))
        elif isinstance(value, list):
            out[key] = [value[i] for i in index.tolist()]
        else:
            out[key] = value
    if "jpeg_data" in batch:
        offsets = batch["jpeg_offsets"].tolist()
        pieces = [batch["jpeg_data"][offsets[i] : offsets[i + 1]] for i in index.tolist()]
        lengths = torch.tensor([0] + [len(p) for p in pieces], dtype=torch.int64)
        out["jpeg_data"] = torch.cat(pieces) if pieces else torch.empty(0, dtype=torch.uint8)
        out["jpeg_offsets"] = torch.cumsum(lengths, 0)
    return out


def batch_rows(batch: dict) -> int:
    """Rows of a collated batch (``image_id``'s length, else the first tensor's)."""
    if "image_id" in batch:
        return len(batch["image_id"])
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and key not in ("jpeg_data", "jpeg_offsets"):
            return int(value.shape[0])
    raise ValueError(f"cannot tell the rows of a batch with keys {sorted(batch)}")


def concat_batches(batches: list[dict]) -> dict:
    """The rows of ``batches`` (collated batches with the same keys), in order, as one batch:
    tensors joined along dim 0 (keeping ``channels_last`` and pinned memory), lists
    joined, ``jpeg_data``/``jpeg_offsets`` re-offset. One batch is returned as is."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        values = [batch[key] for batch in batches]
        if key == "jpeg_offsets":
            ends = torch.cumsum(torch.tensor([0] + [int(v[-1]) for v in values[:-1]], dtype=torch.int64), 0)
            out[key] = torch.cat([values[0]] + [v[1:] + end for v, end in zip(values[1:], ends[1:], strict=False)])
        elif isinstance(value, torch.Tensor):
            joined = torch.cat(values)
            if (
                value.dim() == 4
                and value.is_contiguous(memory_format=torch.channels_last)
                and not value.is_contiguous()
            ):
                joined = joined.contiguous(memory_format=torch.channels_last)
            out[key] = joined.pin_memory() if value.is_pinned() else joined
        elif isinstance(value, list):
            out[key] = [item for v in values for item in v]
        else:
            out[key] = value
    return out


def slice_rows(batch: dict, start: int, stop: int | None = None) -> dict:
    """Rows ``start:stop`` (non-negative) of a collated batch, every key alike; tensors are views."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if key in ("jpeg_data", "jpeg_offsets"):
            offsets = batch["jpeg_offsets"][start : None if stop is None else stop + 1]
            out[key] = value[int(offsets[0]) : int(offsets[-1])] if key == "jpeg_data" else offsets - offsets[0]
        elif isinstance(value, (torch.Tensor, list)):
            out[key] = value[start:stop]
        else:
            out[key] = value
    return out
