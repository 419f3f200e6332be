"""Worker side: AffectNet+ rows -> one batch of uint8 images and annotation tensors.

:class:`JpegCollator` is a DataLoader ``collate_fn``. It takes rows as stored (the image
as JPEG bytes, i.e. a dataset read with ``Image(decode=False)``) and returns a dict:

================  =========================  ==========================================
key               shape, dtype               content
================  =========================  ==========================================
``image``         ``N x 3 x H x W`` uint8    RGB pixels (``output="pixels"``); by default
                                             in ``torch.channels_last`` memory layout
``soft_label``    ``N x 8`` float32          raw released scores (do not sum to 1)
``human_label``   ``N`` int64                expression code, ``-1`` where null
``subset``        ``N`` int64                0 easy, 1 challenging, 2 difficult, ``-1`` null
``valence``       ``N`` float32              ``NaN`` where null
``arousal``       ``N`` float32              ``NaN`` where null
``age``           ``N`` float32              ``NaN`` where null
``*_valid``       ``N`` bool                 ``valence_valid``, ``arousal_valid``,
                                             ``age_valid``: not null
``gender``        ``N x 2`` float32          probabilities, order :data:`~affectnetplus_hf.schema.GENDERS`
``race``          ``N x 6`` float32          probabilities, order :data:`~affectnetplus_hf.schema.RACES`
``head_pose``     ``N x 3`` float32          yaw, pitch, roll (:data:`~affectnetplus_hf.schema.POSE_ANGLES`)
``landmarks``     ``N x 68 x 2`` float32     ``(x, y)`` pixel-index coordinates of the
                                             returned image (moved with any resize)
``image_id``      ``list[str]``
================  =========================  ==========================================

Struct and list columns are ``NaN`` wherever the row (or one member) is null. The keys and
member orders are derived from :data:`affectnetplus_hf.schema.FEATURES`; a column missing
from the input is missing from the batch, and ``landmarks_29`` (variable length) is not
collated.

``output="jpeg"`` skips decoding and returns the encoded bytes instead, for decoding on
the GPU (:class:`~affectnetplus_hf.torch.device.DevicePrefetcher` does it with
``torchvision.io.decode_jpeg(device="cuda")`` when torchvision and CUDA are present):
``jpeg_data`` (all images' bytes concatenated, uint8), ``jpeg_offsets`` (``N + 1`` int64;
image ``i`` is ``jpeg_data[offsets[i]:offsets[i+1]]``) and ``image_size`` (``N x 2``
int64, height and width as encoded); landmarks then stay in the encoded image's frame.

Input: a list of row dicts (what a DataLoader gives by default), a dict of column lists,
or a ``pyarrow.Table`` (the fast path :func:`~affectnetplus_hf.torch.loader.make_loader`
uses: whole columns become arrays without Python objects per value). Inside a
DataLoader worker the image batch is allocated in shared memory and each JPEG is
decoded straight into its slot, so the batch crosses to the main process without a copy.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

import datasets

from ..errors import BadRecordError
from ..schema import FEATURES
from . import geometry
from .decoders import get_decoder

__all__ = ["BATCH_KEYS", "JpegCollator", "Rows", "annotation_arrays", "select_rows"]

_SKIPPED = ("landmarks_29",)
_LIST_FEATURES = tuple(getattr(datasets, name) for name in ("Sequence", "List", "LargeList") if hasattr(datasets, name))


def _kind(feature) -> str:
    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.ClassLabel):
        return "label"
    if isinstance(feature, datasets.Value):
        return "string" if feature.dtype == "string" else "float"
    if isinstance(feature, dict):
        return "struct"
    if isinstance(feature, datasets.Array2D):
        return "array2d"
    if isinstance(feature, _LIST_FEATURES) and (getattr(feature, "length", -1) or -1) > 0:
        return "vector"
    return "skip"


#: column name -> (kind, member names or shape) for every collated schema column
_PLAN: dict[str, tuple[str, Any]] = {}
for _name, _feature in FEATURES.items():
    _k = _kind(_feature)
    if _k == "skip" or _name in _SKIPPED:
        continue
    if _k == "struct":
        _PLAN[_name] = (_k, tuple(_feature))
    elif _k == "array2d":
        _PLAN[_name] = (_k, tuple(_feature.shape))
    elif _k == "vector":
        _PLAN[_name] = (_k, (_feature.length,))
    else:
        _PLAN[_name] = (_k, None)

#: Float scalar columns that may be null get a ``<name>_valid`` mask.
_MASKED = tuple(name for name, (kind, _) in _PLAN.items() if kind == "float")

#: Every key a pixel batch can hold, in schema order (masks after their column).
BATCH_KEYS: tuple[str, ...] = tuple(
    key for name in _PLAN for key in ((name, f"{name}_valid") if name in _MASKED else (name,))
)

_OUTPUTS = ("pixels", "jpeg")
_MEMORY_FORMATS = ("channels_last", "contiguous")


def _in_worker() -> bool:
    return torch.utils.data.get_worker_info() is not None


def _parse_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be None, an int or (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return h, w


class JpegCollator:
    """Collate AffectNet+ rows into a batch dict (see the module docstring for the keys).

    Args:
        size: ``None`` (keep the encoded size; every image of a batch must share it), an
            int or ``(height, width)``: resize to it (JPEG DCT scaling while decoding,
            then bilinear), moving the landmarks with the pixels.
        decoder: ``"auto"`` (fastest installed) or a name from
            :data:`~affectnetplus_hf.torch.decoders.DECODERS`.
        output: ``"pixels"`` (decode here) or ``"jpeg"`` (return the encoded bytes).
        memory_format: ``"channels_last"`` (default: each image decoded straight into the
            batch, no transpose; ``image`` is a ``N x 3 x H x W`` view with
            ``channels_last`` strides, the layout convolutions prefer on GPU) or
            ``"contiguous"`` (plain NCHW, one transpose copy per image).
        view: a :class:`~affectnetplus_hf.torch.views.ClassView` applied to each batch
            (7- or 8-class task: other rows dropped before decoding, soft label reduced).
        reuse_memory: in DataLoader workers, reuse each worker's shared-memory batch
            storages once the main process has freed every tensor of the batch that used
            them (see :class:`_Pool`), instead of mapping fresh memory for every batch.
            Fresh memory is costly (page faults; on virtual machines often more than
            the decoding itself). Tensors a training loop keeps are never overwritten.
            In a worker, the batch's tensors travel wrapped and become plain tensors when
            the main process unpickles them: leave it off if your own ``collate_fn``
            post-processes this collator's output inside the worker.
            :func:`~affectnetplus_hf.torch.loader.make_loader` turns it on.
        pool_size: storages per worker in that pool (more are allocated fresh when all
            are held).
    """

    def __init__(
        self,
        size=None,
        *,
        decoder: str = "auto",
        output: str = "pixels",
        memory_format: str = "channels_last",
        view=None,
        reuse_memory: bool = False,
        pool_size: int = 6,
    ):
        self.size = _parse_size(size)
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {list(_OUTPUTS)}, got {output!r}")
        if memory_format not in _MEMORY_FORMATS:
            raise ValueError(f"memory_format must be one of {list(_MEMORY_FORMATS)}, got {memory_format!r}")
        if output == "jpeg" and self.size is not None:
            raise ValueError("size applies to decoded pixels; with output='jpeg' pass size to DevicePrefetcher instead")
        self.decoder = get_decoder(decoder)
        self.output = output
        self.memory_format = memory_format
        self.view = view
        self.reuse_memory = bool(reuse_memory)
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.pool_size = int(pool_size)

    def __repr__(self) -> str:
        return (
            f"JpegCollator(size={self.size}, decoder={self.decoder.name!r}, output={self.output!r}, "
            f"memory_format={self.memory_format!r}, view={self.view!r}, reuse_memory={self.reuse_memory})"
        )

    # ------------------------------------------------------------------ entry point
    def __call__(self, batch) -> dict:
        if isinstance(batch, Rows):
            arrays, lists, images, n = dict(batch.arrays), dict(batch.lists), batch.images, batch.num_rows
        else:
            arrays, lists, images, n = annotation_arrays(batch)
        if self.view is not None:
            n, images = self._apply_view(n, arrays, lists, images)
        ids = lists.get("image_id") or [str(i) for i in range(n)]
        raws = [_as_bytes(image, image_id) for image, image_id in zip(images, ids)] if images is not None else None
        # Without a target size, only the first image's header is read: every other image
        # is decoded straight into its slot, and one of another size is caught there.
        headers = None
        if raws is not None and (self.size is not None or self.output == "jpeg"):
            headers = [self._header(raw, image_id) for raw, image_id in zip(raws, ids)]

        specs: dict[str, tuple[torch.dtype, tuple[int, ...]]] = {}
        hw = None
        if raws is not None and self.output == "jpeg":
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum([len(raw) for raw in raws], out=offsets[1:])
            arrays["jpeg_offsets"] = offsets
            arrays["image_size"] = np.asarray(headers, dtype=np.int64).reshape(n, 2)
            specs["jpeg_data"] = (torch.uint8, (int(offsets[-1]),))
        elif raws is not None:
            hw = self.size or (self._header(raws[0], ids[0]) if n else (0, 0))
            h, w = hw
            specs["image"] = (torch.uint8, (n, h, w, 3) if self.memory_format == "channels_last" else (n, 3, h, w))
            if "landmarks" in arrays and headers and any(hdr != hw for hdr in headers):
                src = np.asarray(headers, dtype=np.float32).reshape(n, 2)
                arrays["landmarks"] = geometry.resize_points(arrays["landmarks"], (src[:, 0:1], src[:, 1:2]), (float(h), float(w)))
        for key, array in arrays.items():
            specs[key] = (_TORCH_DTYPES[array.dtype.type], array.shape)

        tensors, storage, release = self._allocate(specs)
        for key, array in arrays.items():
            tensors[key].numpy()[...] = array
        if "jpeg_data" in tensors:
            flat = tensors["jpeg_data"].numpy()
            for i, raw in enumerate(raws):
                flat[offsets[i] : offsets[i + 1]] = np.frombuffer(raw, dtype=np.uint8)
        if hw is not None:
            self._decode(raws, headers, ids, hw, tensors["image"])
            if self.memory_format == "channels_last":
                tensors["image"] = tensors["image"].permute(0, 3, 1, 2)

        out = _ordered_batch(tensors, lists)
        if self.reuse_memory and _in_worker():
            return _Packed(out, storage, release)
        return out

    def _apply_view(self, n, arrays, lists, images):
        """Drop rows the view does not keep (before decoding them) and reduce the soft label."""
        from .views import _reduce_soft

        view = self.view
        if "human_label" in arrays:
            table = view.label_map().numpy()
            labels = arrays["human_label"]
            known = (labels >= 0) & (labels < table.size)
            mapped = np.where(known, table[np.clip(labels, 0, table.size - 1)], -1)
            keep = mapped >= 0
            if view.keep_unlabeled:
                keep |= labels < 0
            arrays["human_label"] = mapped
            if not keep.all():
                rows = np.flatnonzero(keep)
                for key in arrays:
                    arrays[key] = arrays[key][rows]
                for key in lists:
                    lists[key] = [lists[key][i] for i in rows]
                if images is not None:
                    images = [images[i] for i in rows]
                n = len(rows)
        if "soft_label" in arrays:
            arrays["soft_label"] = _reduce_soft(torch.from_numpy(arrays["soft_label"]), view).numpy()
        return n, images

    # ------------------------------------------------------------------ memory
    def _allocate(self, specs: dict[str, tuple[torch.dtype, tuple[int, ...]]]):
        """Tensors for ``specs``, all views of one storage: in a worker, a shared-memory
        storage (reused from the worker's pool when ``reuse_memory``), else ordinary memory.
        Returns ``(tensors, storage, release)``; ``release`` is ``(counts, slot)`` for pooled memory."""
        layout, total = {}, 0
        for key, (dtype, shape) in specs.items():
            itemsize = torch.empty((), dtype=dtype).element_size()
            total = -(-total // _ALIGN) * _ALIGN
            layout[key] = (dtype, shape, total // itemsize)
            total += math.prod(shape) * itemsize
        release = None
        if not _in_worker():
            storage = torch.UntypedStorage(max(total, 1))
        elif self.reuse_memory:
            storage, release = _pool(self.pool_size).acquire(total)
        else:
            storage = torch.UntypedStorage._new_shared(max(total, 1))
        tensors = {
            key: torch.empty(0, dtype=dtype).set_(storage, offset, shape) for key, (dtype, shape, offset) in layout.items()
        }
        return tensors, storage, release

    # ------------------------------------------------------------------ images
    def _header(self, raw: bytes, image_id: str) -> tuple[int, int]:
        try:
            return tuple(self.decoder.header(raw))
        except Exception as exc:  # PIL raises several types for garbage
            raise _bad_image(image_id, exc) from exc

    def _decode(self, raws, headers, ids, hw, buffer: torch.Tensor) -> None:
        h, w = hw
        channels_last = self.memory_format == "channels_last"
        slots = buffer.numpy()
        scratch = None if channels_last else np.empty((h, w, 3), dtype=np.uint8)
        for i, (raw, image_id) in enumerate(zip(raws, ids)):
            try:
                if headers is None or headers[i] == hw:
                    target = slots[i] if channels_last else scratch
                    self.decoder.decode(raw, out=target)
                else:
                    target = _resize(self.decoder.decode(raw, min_size=hw), h, w)
                if not channels_last:
                    np.copyto(slots[i], target.transpose(2, 0, 1))
                elif target is not slots[i]:
                    slots[i] = target
            except Exception as exc:
                if headers is None:
                    hi, wi = self._header(raw, image_id)
                    if (hi, wi) != hw:
                        raise ValueError(
                            f"image {image_id!r} is {wi}x{hi} but the batch's first image is {w}x{h}; "
                            "images of one batch must share a size: pass size=(height, width) to JpegCollator / make_loader"
                        ) from None
                raise _bad_image(image_id, exc) from exc


_ALIGN = 64
_TORCH_DTYPES = {np.float32: torch.float32, np.int64: torch.int64, np.bool_: torch.bool, np.uint8: torch.uint8}
_OUTPUT_ORDER = ("image", "jpeg_data", "jpeg_offsets", "image_size", *BATCH_KEYS)


# ---------------------------------------------------------------------- worker memory pool
class _Pool:
    """Shared-memory batch storages of one worker process, reused once the main process
    has let go of every tensor of the batch that last used them.

    ``counts[slot]`` (shared memory) is 1 from the moment the worker fills the slot until
    the receiving process frees the batch's storage: :func:`_unpack` sets a finaliser on
    it, which fires only when no tensor of the batch, nor any view of one, is left. A
    slot is reused only at 0, so a batch that the training loop keeps is never
    overwritten; when every slot is held, a fresh storage is used instead.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.counts = torch.zeros(capacity, dtype=torch.int32).share_memory_()
        self.storages: list[torch.UntypedStorage | None] = [None] * capacity
        self.pid = os.getpid()

    def acquire(self, nbytes: int):
        counts = self.counts.numpy()
        for slot in range(self.capacity):
            if counts[slot] == 0:
                storage = self.storages[slot]
                if storage is None or storage.nbytes() < nbytes:
                    storage = self.storages[slot] = torch.UntypedStorage._new_shared(max(nbytes, 1))
                counts[slot] = 1
                return storage, (self.counts, slot)
        return torch.UntypedStorage._new_shared(max(nbytes, 1)), None


_POOLS: dict[int, _Pool] = {}


def _pool(capacity: int) -> _Pool:
    pool = _POOLS.get(os.getpid())
    if pool is None:
        _POOLS.clear()  # pools inherited from a parent through fork belong to the parent
        pool = _POOLS[os.getpid()] = _Pool(capacity)
    return pool


def _release(counts: torch.Tensor, slot: int) -> None:
    counts[slot] = 0


class _Packed:
    """A batch on its way from a worker: one storage holding every tensor, sent once
    (one file descriptor per batch instead of one per tensor), and rebuilt as the plain
    batch dict by :func:`_unpack` in the receiving process."""

    __slots__ = ("batch", "storage", "release")

    def __init__(self, batch: dict, storage: torch.UntypedStorage, release):
        self.batch, self.storage, self.release = batch, storage, release

    def __reduce__(self):
        whole = torch.empty(0, dtype=torch.uint8).set_(self.storage)
        layout, lists = [], {}
        base = self.storage.data_ptr()
        for key, value in self.batch.items():
            if isinstance(value, torch.Tensor) and value.untyped_storage().data_ptr() == base:
                layout.append((key, value.dtype, tuple(value.shape), value.stride(), value.storage_offset()))
            else:
                lists[key] = value
        return _unpack, (whole, layout, lists, self.release)


def _unpack(whole: torch.Tensor, layout: list, lists: dict, release) -> dict:
    """Runs in the receiving process while unpickling: the batch dict, its tensors views of
    ``whole``'s storage. For pooled memory, the worker's slot is released when that
    storage is freed, i.e. once no tensor of the batch (nor any view of one) is left."""
    storage = whole.untyped_storage()
    tensors = {
        key: torch.empty(0, dtype=dtype).set_(storage, offset, shape, stride) for key, dtype, shape, stride, offset in layout
    }
    if release is not None:
        weakref.finalize(storage, _release, *release)
    return _ordered_batch(tensors, lists)


def _ordered_batch(tensors: dict, lists: dict) -> dict[str, Any]:
    """The batch dict in its documented key order (:data:`_OUTPUT_ORDER`), then any other key."""
    batch: dict[str, Any] = {}
    for key in (*_OUTPUT_ORDER, *tensors, *lists):
        if key in batch:
            continue
        if key in tensors:
            batch[key] = tensors[key]
        elif key in lists:
            batch[key] = lists[key]
    return batch


class Rows:
    """Rows already converted to collated form (what ``make_loader``'s map-style path hands
    the collator): ``arrays`` name -> NumPy array with the batch's rows first, ``lists``
    (``image_id``), ``images`` (bytes-like JPEGs, or ``{"bytes", "path"}`` dicts)."""

    __slots__ = ("arrays", "lists", "images", "num_rows")

    def __init__(self, arrays: dict, lists: dict, images: list | None, num_rows: int):
        self.arrays, self.lists, self.images, self.num_rows = arrays, lists, images, num_rows


def annotation_arrays(batch) -> tuple[dict[str, np.ndarray], dict[str, list], list | None, int]:
    """Convert rows / columns / an Arrow table into collated arrays (no image decoding).

    Returns ``(arrays, lists, images, n)``: ``arrays`` maps each batch key but ``image``
    to a NumPy array in its batch dtype and shape (nulls as ``-1`` / ``NaN``, masks
    added), ``lists`` holds ``image_id``, ``images`` the encoded images (``None`` when
    there is no ``image`` column).
    """
    columns, n = _to_columns(batch)
    arrays: dict[str, np.ndarray] = {}
    lists: dict[str, list] = {}
    for name, (kind, spec) in _PLAN.items():
        if name not in columns or kind == "image":
            continue
        column = columns[name]
        if kind == "string":
            lists[name] = [str(v) for v in _pylist(column)]
        elif kind == "label":
            arrays[name] = _labels(column)
        elif kind == "float":
            arrays[name] = _floats(column)
            arrays[f"{name}_valid"] = ~np.isnan(arrays[name])
        elif kind == "struct":
            arrays[name] = _struct(column, spec, n)
        else:  # vector, array2d
            arrays[name] = _fixed(column, spec, n, name)
    images = _image_bytes(columns["image"]) if "image" in columns else None
    return arrays, lists, images, n


def _bad_image(image_id: str, exc: Exception) -> BadRecordError:
    return BadRecordError(
        f"image_id {image_id!r}",
        f"cannot decode the image ({type(exc).__name__}: {exc}); the stored JPEG bytes are damaged: "
        "re-export the release or drop this row (dataset.filter)",
    )


def _resize(array: np.ndarray, h: int, w: int) -> np.ndarray:
    if array.shape[:2] == (h, w):
        return array
    from PIL import Image

    return np.asarray(Image.fromarray(array).resize((w, h), Image.BILINEAR))


# ---------------------------------------------------------------------- input shapes
def _to_columns(batch) -> tuple[dict[str, Any], int]:
    """name -> pyarrow Array or Python list, and the row count."""
    import pyarrow as pa

    if isinstance(batch, (pa.Table, pa.RecordBatch)):
        columns = {}
        for name in batch.column_names:
            column = batch.column(name)
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            columns[name] = column
        return columns, batch.num_rows
    if isinstance(batch, Mapping):
        columns = dict(batch)
        n = len(next(iter(columns.values()))) if columns else 0
        return columns, n
    if isinstance(batch, Sequence):
        rows = list(batch)
        if rows and not isinstance(rows[0], Mapping):
            raise TypeError(
                f"JpegCollator expects rows as dicts (a datasets.Dataset row), got {type(rows[0]).__name__}; "
                "read the dataset with datasets and cast_column('image', Image(decode=False))"
            )
        names = [name for name in rows[0] if name in _PLAN] if rows else []
        return {name: [row.get(name) for row in rows] for name in names}, len(rows)
    raise TypeError(f"JpegCollator expects a list of rows, a dict of columns or a pyarrow.Table, got {type(batch).__name__}")


def _is_arrow(column) -> bool:
    import pyarrow as pa

    return isinstance(column, pa.Array)


def _pylist(column) -> list:
    return column.to_pylist() if _is_arrow(column) else list(column)


def _labels(column) -> np.ndarray:
    if _is_arrow(column):
        import pyarrow.compute as pc

        return np.array(pc.fill_null(column, -1).to_numpy(zero_copy_only=False), dtype=np.int64)  # a writable copy
    return np.fromiter((-1 if v is None else int(v) for v in column), dtype=np.int64, count=len(column))


def _floats(column) -> np.ndarray:
    if _is_arrow(column):
        values = column.to_numpy(zero_copy_only=False)
        return np.array(values, dtype=np.float32)  # nulls are NaN already for float arrays
    return np.fromiter((math.nan if v is None else float(v) for v in column), dtype=np.float32, count=len(column))


def _struct(column, members: tuple[str, ...], n: int) -> np.ndarray:
    out = np.full((n, len(members)), np.nan, dtype=np.float32)
    if _is_arrow(column):
        fields = {column.type.field(i).name: arr for i, arr in enumerate(column.flatten())}
        for j, member in enumerate(members):
            if member in fields:
                out[:, j] = fields[member].to_numpy(zero_copy_only=False)
        return out
    for i, value in enumerate(column):
        if value is None:
            continue
        if isinstance(value, Mapping):
            for j, member in enumerate(members):
                v = value.get(member)
                if v is not None:
                    out[i, j] = v
        else:  # already a sequence in member order (e.g. numpy-formatted rows)
            out[i] = np.asarray(value, dtype=np.float32)
    return out


def _fixed(column, shape: tuple[int, ...], n: int, name: str) -> np.ndarray:
    size = math.prod(shape)
    out = np.full((n, *shape), np.nan, dtype=np.float32)
    if _is_arrow(column):
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(column, pa.ExtensionArray):
            column = column.storage
        valid = column.is_valid().to_numpy(zero_copy_only=False) if column.null_count else None
        if valid is not None:
            column = column.filter(pc.is_valid(column))
        values = column
        while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type) or pa.types.is_large_list(values.type):
            values = values.flatten()
        flat = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32)
        rows = len(column)
        if flat.size != rows * size:
            raise ValueError(f"column {name!r}: expected {size} numbers per row {shape}, found {flat.size} for {rows} rows")
        if valid is None:
            out[...] = flat.reshape(n, *shape)
        else:
            out[valid] = flat.reshape(rows, *shape)
        return out
    for i, value in enumerate(column):
        if value is None:
            continue
        array = np.asarray(value, dtype=np.float32)
        if array.size != size:
            raise ValueError(f"column {name!r} row {i}: expected {size} numbers {shape}, found {array.size}")
        out[i] = array.reshape(shape)
    return out


def _image_bytes(column) -> list:
    if _is_arrow(column):
        import pyarrow as pa

        if pa.types.is_struct(column.type):
            names = [column.type.field(i).name for i in range(column.type.num_fields)]
            fields = dict(zip(names, column.flatten()))
            data = fields["bytes"].to_pylist()
            if "path" in fields and any(d is None for d in data):
                paths = fields["path"].to_pylist()
                data = [d if d is not None else {"bytes": None, "path": p} for d, p in zip(data, paths)]
            return data
        return column.to_pylist()
    return list(column)


def _as_bytes(image, image_id: str) -> bytes:
    if isinstance(image, (bytes, bytearray, memoryview)):
        return image
    if isinstance(image, Mapping):
        if image.get("bytes") is not None:
            return image["bytes"]
        if image.get("path"):
            with open(image["path"], "rb") as handle:
                return handle.read()
    from PIL import Image

    if isinstance(image, Image.Image):
        raise TypeError(
            f"image {image_id!r} arrived decoded (a PIL image): the collator decodes JPEG bytes itself. "
            "Read the dataset with dataset.cast_column('image', datasets.Image(decode=False))"
        )
    raise TypeError(f"image {image_id!r}: expected JPEG bytes or {{'bytes': ..., 'path': ...}}, got {type(image).__name__}")


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
