"""A ``map_batches`` function that decodes a Ray batch exactly as ``make_loader`` does.

It is :class:`~affectnetplus_hf.torch.collate.JpegCollator` (the collator of
:func:`~affectnetplus_hf.torch.make_loader`) applied to the Arrow batch Ray hands it, with its
tensors returned as NumPy arrays: the same decoder, resize, landmark moves, nulls (``-1`` /
``NaN`` and the ``*_valid`` masks) and class views, so an image is the same uint8 array here as
in a ``make_loader`` batch built with the same options.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DecodeBatch"]


class DecodeBatch:
    """``ds.map_batches(DecodeBatch(size=224), batch_format="pyarrow")``: rows of an export ->
    the collated columns (see :mod:`affectnetplus_hf.torch.collate` for the keys).

    ``image`` becomes ``N x 3 x H x W`` uint8 (C-contiguous), ``image_id`` a string column, the
    annotations the collator's arrays. Columns the collator does not collate (``landmarks_29``,
    ``face_box``, ``auto_label``) are left out. A row whose image cannot be decoded raises
    :class:`~affectnetplus_hf.errors.BadImageError` naming its ``image_id``, which fails the Ray
    job: every row comes out, or the job stops and says which one did not.

    Args:
        size: ``None`` (keep the encoded size; every image of a batch must share it), an int
            or ``(height, width)``.
        decoder: ``"auto"`` (fastest installed on the worker) or a name from
            :data:`~affectnetplus_hf.torch.decoders.DECODERS`.
        view: ``7``, ``8`` or a :class:`~affectnetplus_hf.torch.views.ClassView`: keep only
            that task's rows (others are dropped, so a batch may shrink) and reduce the soft label.

    An instance is a plain function to Ray (it runs in tasks, no actor pool needed); it builds
    its collator on first use, on the worker, so it pickles small and needs ``torch`` only
    where it runs.
    """

    def __init__(self, size: int | tuple[int, int] | None = None, *, decoder: str = "auto", view=None):
        self.size, self.decoder, self.view = size, decoder, view
        self._collator = None

    def __getstate__(self) -> dict:
        return {"size": self.size, "decoder": self.decoder, "view": self.view, "_collator": None}

    def _collate(self, table):
        if self._collator is None:
            from ..torch.collate import JpegCollator
            from ..torch.views import class_view

            view = class_view(self.view) if self.view is not None else None
            self._collator = JpegCollator(self.size, decoder=self.decoder, memory_format="contiguous", view=view)
        return self._collator(table)

    def __call__(self, batch) -> dict[str, np.ndarray]:
        import pyarrow as pa

        if not isinstance(batch, pa.Table):
            raise TypeError(
                f'DecodeBatch expects an Arrow batch, got {type(batch).__name__}: pass batch_format="pyarrow" to map_batches'
            )
        out = {}
        for key, value in self._collate(batch).items():
            if key == "image_id":
                out[key] = np.asarray(value, dtype=object)
            else:
                out[key] = np.ascontiguousarray(value.numpy())
        return out
