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
``gender``        ``N x 2`` float32          probabilities, order :data:`~affectnetplus_hf.core.schema.GENDERS`
``race``          ``N x 6`` float32          probabilities, order :data:`~affectnetplus_hf.core.schema.RACES`
``head_pose``     ``N x 3`` float32          yaw, pitch, roll (:data:`~affectnetplus_hf.core.schema.POSE_ANGLES`)
``landmarks``     ``N x 68 x 2`` float32     ``(x, y)`` pixel-index coordinates of the
                                             returned image (moved with any resize)
``image_id``      ``list[str]``
``skipped``       ``list[SkippedRow]``       only with ``on_bad="skip"``: the rows left
                                             out of this batch (``make_loader`` moves
                                             them to ``loader.skipped``)
================  =========================  ==========================================

Struct and list columns are ``NaN`` wherever the row (or one member) is null. The keys and
member orders are derived from :data:`affectnetplus_hf.core.schema.FEATURES`; a column missing
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
uses). Annotations become arrays through :mod:`affectnetplus_hf.core.columns` (rows and
column lists are converted to Arrow first, so every input takes one path); the batch's
keys and order come from :mod:`.batch_plan`. Inside a DataLoader worker the batch is
allocated in shared memory (:mod:`.shared_memory`) and each JPEG is decoded straight
into its slot, so the batch crosses to the main process without a copy.

A row whose image cannot be used is a bad row: bytes that do not decode, null bytes (a
file path is never read in their place: ``{"bytes": None, "path": "x.jpg"}`` would
otherwise read ``./x.jpg`` from the working directory), a header that declares more than
:data:`~affectnetplus_hf.torch.decoders.MAX_IMAGE_PIXELS` pixels. With ``on_bad="error"``
(default) the first one raises :class:`~affectnetplus_hf.errors.BadImageError` naming the
row; with ``on_bad="skip"`` it is left out of the batch (which then holds fewer rows) and
listed under ``skipped``. With ``crop="face"``, a row whose ``face_box`` is null or empty
is a bad row too (reason ``"no face_box: ..."``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch

from ..core.choices import Crop, MemoryFormat, OnBad, Output, check_choice, choices_of
from ..core.columns import annotation_arrays as core_annotation_arrays
from ..core.columns import rows_to_arrow, whole_array
from ..errors import BadImageError
from . import geometry
from .batch_plan import BATCH_KEYS, COLLATED_COLUMNS, MASKED_COLUMNS, TORCH_DTYPES, ordered_batch, select_rows
from .decoders import Encoded, get_decoder
from .shared_memory import Packed, allocate, in_worker

__all__ = ["BATCH_KEYS", "ON_BAD", "JpegCollator", "Rows", "SkippedRow", "annotation_arrays", "select_rows"]

_ANNOTATIONS = tuple(name for name in COLLATED_COLUMNS if name != "image")

#: What the collator / loader does with a row whose image cannot be used (the values of :data:`~affectnetplus_hf.core.choices.OnBad`).
ON_BAD: tuple[str, ...] = choices_of(OnBad)


class SkippedRow(NamedTuple):
    """A row left out of a batch because its image cannot be used (``on_bad="skip"``).

    ``row``: its index in the dataset given to ``make_loader`` (``None`` where not known:
    streaming, or rows handed to the collator directly); ``image_id`` (``None`` without
    that column); ``reason``: what is wrong with the image."""

    row: int | None
    image_id: str | None
    reason: str


class _BadImage(Exception):
    """This row's image cannot be used; the message is the reason."""


def row_name(row: int | None, image_id: str | None) -> str:
    """``"row 17 (image_id 'x')"``, or the part of it that is known."""
    if row is not None and image_id is not None:
        return f"row {row} (image_id {image_id!r})"
    if row is not None:
        return f"row {row}"
    return f"image_id {image_id!r}" if image_id is not None else "a row"


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
            them (see :class:`~affectnetplus_hf.torch.shared_memory.Pool`), instead of mapping fresh memory for every batch.
            Fresh memory is costly (page faults; on virtual machines often more than
            the decoding itself). Tensors a training loop keeps are never overwritten.
            In a worker, the batch's tensors travel wrapped and become plain tensors when
            the main process unpickles them: leave it off if your own ``collate_fn``
            post-processes this collator's output inside the worker.
            :func:`~affectnetplus_hf.torch.loader.make_loader` turns it on.
        pool_size: storages per worker in that pool (more are allocated fresh when all
            are held).
        on_bad: a row whose image cannot be used (see the module docstring): ``"error"``
            raises :class:`~affectnetplus_hf.errors.BadImageError` naming it, ``"skip"``
            leaves it out of the batch and lists it under the batch's ``skipped`` key
            (a list of :class:`SkippedRow`; present, maybe empty, in every batch).
        crop: ``None`` (the image as stored) or ``"face"``: cut each full image to its
            ``face_box`` (the AffectNet 2017 release's box, in full-image pixels), grown by
            ``crop_margin`` x its width / height on every side, and resize it to ``size``
            (required). The image is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that
            keeps the box at least ``size``; parts of a grown box outside the image are
            black. Landmarks move with the crop; ``face_box`` stays in full-image pixels.
            A row whose ``face_box`` is null or empty is a bad row (``on_bad``).
        crop_margin: fraction of the box's width and height added on each side (``0.0``:
            the box exactly; ``0.25``: a box 1.5 times as wide and high).
    """

    def __init__(
        self,
        size=None,
        *,
        decoder: str = "auto",
        output: Output = "pixels",
        memory_format: MemoryFormat = "channels_last",
        view=None,
        reuse_memory: bool = False,
        pool_size: int = 6,
        on_bad: OnBad = "error",
        crop: Crop | None = None,
        crop_margin: float = 0.0,
    ):
        self.size = _parse_size(size)
        check_choice("on_bad", on_bad, OnBad)
        self.on_bad: OnBad = on_bad
        check_choice("output", output, Output)
        check_choice("memory_format", memory_format, MemoryFormat)
        if output == "jpeg" and self.size is not None:
            raise ValueError("size applies to decoded pixels; with output='jpeg' pass size to DevicePrefetcher instead")
        if crop is not None:
            check_choice("crop", crop, Crop)
            if self.size is None:
                raise ValueError("crop='face' needs a size: pass size=S (or (height, width)) to resize every face to")
            if output == "jpeg":
                raise ValueError("crop='face' applies to decoded pixels; it does not combine with output='jpeg'")
        try:
            margin = float(crop_margin)
        except (TypeError, ValueError):
            raise ValueError(
                f"crop_margin must be a number (a fraction of the box, e.g. 0.1), got {crop_margin!r}"
            ) from None
        if not (margin >= 0.0 and math.isfinite(margin)):
            raise ValueError(f"crop_margin must be a fraction >= 0 of the box, got {crop_margin!r}")
        self.crop: Crop | None = crop
        self.crop_margin = margin
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
            f"memory_format={self.memory_format!r}, view={self.view!r}, reuse_memory={self.reuse_memory}, on_bad={self.on_bad!r}"
            + (f", crop={self.crop!r}, crop_margin={self.crop_margin})" if self.crop is not None else ")")
        )

    # ------------------------------------------------------------------ entry point
    def __call__(self, batch) -> dict | Packed:
        """The batch dict; in a DataLoader worker with ``reuse_memory``, a :class:`~affectnetplus_hf.torch.shared_memory.Packed`
        that the main process receives as that dict."""
        rows = None
        if isinstance(batch, Rows):
            arrays, lists, images, n, rows = (
                dict(batch.arrays),
                dict(batch.lists),
                batch.images,
                batch.num_rows,
                batch.row_numbers,
            )
        else:
            arrays, lists, images, n = annotation_arrays(batch)
        if self.view is not None:
            n, images, rows = self._apply_view(n, arrays, lists, images, rows)
        skipped: list[SkippedRow] = []
        raws = headers = None
        first_hw = (0, 0)
        if images is not None:
            raws, headers, first_hw, bad = self._read(images, lists.get("image_id"), rows)
            if self.crop is not None:
                for i, reason in self._boxless(arrays, n).items():
                    bad.setdefault(i, reason)
            if bad:  # dropped before anything is allocated
                keep = self._bad_rows(bad, n, lists.get("image_id"), rows, skipped)
                n, (raws, headers, rows) = _take(keep, arrays, lists, raws, headers, rows)

        specs: dict[str, tuple[torch.dtype, tuple[int, ...]]] = {}
        hw = None
        if raws is not None and self.output == "jpeg":
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum([len(raw) for raw in raws], out=offsets[1:])
            arrays["jpeg_offsets"] = offsets
            arrays["image_size"] = np.asarray(headers, dtype=np.int64).reshape(n, 2)
            specs["jpeg_data"] = (torch.uint8, (int(offsets[-1]),))
        elif raws is not None:
            hw = self.size or first_hw
            h, w = hw
            specs["image"] = (torch.uint8, (n, h, w, 3) if self.memory_format == "channels_last" else (n, 3, h, w))
            if self.crop is not None:
                boxes = self._boxes(arrays["face_box"])
                if "landmarks" in arrays:
                    moved = arrays["landmarks"] - boxes[:, None, :2]
                    box_hw = (boxes[:, 3:4] - boxes[:, 1:2], boxes[:, 2:3] - boxes[:, 0:1])
                    arrays["landmarks"] = geometry.resize_points(moved, box_hw, (float(h), float(w))).astype(np.float32)
            elif "landmarks" in arrays and headers and any(hdr != hw for hdr in headers):
                src = np.asarray(headers, dtype=np.float32).reshape(n, 2)
                arrays["landmarks"] = geometry.resize_points(
                    arrays["landmarks"], (src[:, 0:1], src[:, 1:2]), (float(h), float(w))
                )
        for key, array in arrays.items():
            specs[key] = (TORCH_DTYPES[array.dtype.type], array.shape)

        tensors, storage, release = allocate(specs, reuse_memory=self.reuse_memory, pool_size=self.pool_size)
        for key, array in arrays.items():
            tensors[key].numpy()[...] = array
        if raws is not None and "jpeg_data" in tensors:
            flat = tensors["jpeg_data"].numpy()
            for i, raw in enumerate(raws):
                flat[offsets[i] : offsets[i + 1]] = np.frombuffer(raw, dtype=np.uint8)
        if hw is not None:
            if self.crop is not None:
                failed = self._decode_faces(raws, headers, lists.get("image_id"), rows, boxes, tensors["image"])
            else:
                failed = self._decode(raws, headers, lists.get("image_id"), rows, hw, tensors["image"])
            if failed:  # rows that did not decode (on_bad="skip"): move the others up, in place
                keep = self._bad_rows(failed, n, lists.get("image_id"), rows, skipped)
                index = torch.tensor(keep, dtype=torch.int64)
                for key, tensor in tensors.items():
                    tensor[: len(keep)] = tensor.index_select(0, index)
                    tensors[key] = tensor[: len(keep)]
                lists = {key: [values[i] for i in keep] for key, values in lists.items()}
            if self.memory_format == "channels_last":
                tensors["image"] = tensors["image"].permute(0, 3, 1, 2)

        if self.on_bad == "skip":
            lists["skipped"] = skipped
        out = ordered_batch(tensors, lists)
        if self.reuse_memory and in_worker():
            return Packed(out, storage, release)
        return out

    def _read(self, images, ids, rows):
        """``(raws, headers, first_hw, bad)``: each row's bytes (``None`` where bad), each
        row's ``(height, width)`` where every header is needed (a target size, or
        ``output="jpeg"``; else ``None``: only the first usable image's header is read, as
        ``first_hw``), and ``{position: reason}`` of the rows found bad."""
        raws, bad = [], {}
        for i, image in enumerate(images):
            if isinstance(image, (bytes, memoryview)):  # the common cases, without naming the row
                raws.append(image)
                continue
            try:
                raws.append(_as_bytes(image, row_name(rows[i] if rows is not None else None, ids[i] if ids else None)))
            except _BadImage as exc:
                raws.append(None)
                bad[i] = str(exc)
        every = self.size is not None or self.output == "jpeg"
        headers: list = [None] * len(raws)
        first_hw = None
        for i, raw in enumerate(raws):
            if raw is None:
                continue
            try:
                headers[i] = tuple(self.decoder.header(raw))
            except Exception as exc:  # PIL raises several types for garbage
                bad[i] = _reason(exc)
                continue
            first_hw = first_hw or headers[i]
            if not every:
                break
        return raws, (headers if every else None), first_hw or (0, 0), bad

    def _bad_rows(self, bad: dict, n: int, ids, rows, skipped: list) -> list[int]:
        """Raise for the first bad row (``on_bad="error"``), or note them all in ``skipped``
        and return the positions of the other rows of the ``n``."""
        names = [(rows[i] if rows is not None else None, ids[i] if ids else None) for i in sorted(bad)]
        if self.on_bad == "error":
            (row, image_id), reason = names[0], bad[min(bad)]
            raise BadImageError(
                f'{row_name(row, image_id)}: {reason}. To go on without such rows, pass on_bad="skip" to make_loader '
                "(or JpegCollator): they are left out of the batches and listed in loader.skipped; or remove the row "
                "from the dataset (dataset.filter) or re-export the release.",
                row=row,
                image_id=image_id,
                reason=reason,
            )
        skipped.extend(
            SkippedRow(row, image_id, bad[i]) for (row, image_id), i in zip(names, sorted(bad), strict=False)
        )
        return [i for i in range(n) if i not in bad]

    def _apply_view(self, n, arrays, lists, images, rows):
        """Drop rows the view does not keep (before decoding them) and reduce the soft label."""
        view = self.view
        if "human_label" in arrays:
            mapped, keep = view.map_labels(torch.from_numpy(arrays["human_label"]))
            arrays["human_label"] = mapped.numpy()
            if not bool(keep.all()):
                n, (images, rows) = _take(keep.nonzero().flatten().tolist(), arrays, lists, images, rows)
        if "soft_label" in arrays:
            arrays["soft_label"] = view.soft_targets(torch.from_numpy(arrays["soft_label"])).numpy()
        return n, images, rows

    # ------------------------------------------------------------------ face crops
    def _boxless(self, arrays: dict, n: int) -> dict[int, str]:
        """``{position: reason}`` of the rows without a usable ``face_box`` (``crop="face"``)."""
        if "face_box" not in arrays:
            raise ValueError(
                "crop='face' needs the face_box column (AffectNet 2017's face_x, face_y, face_width, face_height); "
                "these rows have none. AffectNet+ and the 8-label release are face crops already: use crop=None"
            )
        box = arrays["face_box"]
        missing = np.flatnonzero(np.isnan(box).any(axis=1) | (box[:, 2:] <= 0).any(axis=1))
        reason = "no face_box: crop='face' needs one and this row's face_box is null or empty"
        if n and len(missing) == n:
            reason += "; no row of this batch has one: releases of face crops (AffectNet+, the 8-label release) need crop=None"
        return {int(i): reason for i in missing}

    def _boxes(self, face_box: np.ndarray) -> np.ndarray:
        """``N x 4`` crop boxes ``(x0, y0, x1, y1)`` in full-image pixel-edge coordinates, margin added."""
        x, y, bw, bh = (face_box[:, k].astype(np.float64) for k in range(4))
        mx, my = self.crop_margin * bw, self.crop_margin * bh
        return np.stack([x - mx, y - my, x + bw + mx, y + bh + my], axis=1)

    def _decode_faces(self, raws, headers, ids, rows, boxes: np.ndarray, buffer: torch.Tensor) -> dict[int, str]:
        """Decode each image at a reduced DCT scale, cut its box and resize it into its slot
        of ``buffer``; ``{position: reason}`` of those that did not decode, as :meth:`_decode`."""
        from PIL import Image

        assert self.size is not None  # crop="face" requires it
        h, w = self.size
        channels_last = self.memory_format == "channels_last"
        slots = buffer.numpy()
        failed: dict[int, str] = {}
        for i, raw in enumerate(raws):
            full_h, full_w = headers[i]
            x0, y0, x1, y1 = boxes[i]
            # the smallest DCT scale at which the box still covers size x size pixels
            wanted = (math.ceil(full_h * h / (y1 - y0)), math.ceil(full_w * w / (x1 - x0)))
            try:
                decoded = self.decoder.decode(raw, min_size=(min(wanted[0], full_h), min(wanted[1], full_w)))
            except Exception as exc:
                failed[i] = _reason(exc)
                if self.on_bad == "error":
                    self._bad_rows(failed, len(raws), ids, rows, [])
                continue
            s = 1.0 / _dct_factor(full_w, decoded.shape[1])
            ix0, iy0, ix1, iy1 = math.floor(x0 * s), math.floor(y0 * s), math.ceil(x1 * s), math.ceil(y1 * s)
            region = Image.fromarray(decoded).crop((ix0, iy0, ix1, iy1))  # black outside the image
            face = region.resize(
                (w, h), Image.Resampling.BILINEAR, box=(x0 * s - ix0, y0 * s - iy0, x1 * s - ix0, y1 * s - iy0)
            )
            slots[i] = np.asarray(face) if channels_last else np.asarray(face).transpose(2, 0, 1)
        return failed

    # ------------------------------------------------------------------ images
    def _decode(self, raws, headers, ids, rows, hw, buffer: torch.Tensor) -> dict[int, str]:
        """Decode every image into its slot of ``buffer``; ``{position: reason}`` of those
        that did not decode (``on_bad="skip"``; with ``"error"`` the first one raises)."""
        h, w = hw
        channels_last = self.memory_format == "channels_last"
        slots = buffer.numpy()
        scratch = None if channels_last else np.empty((h, w, 3), dtype=np.uint8)
        failed: dict[int, str] = {}
        direct: dict = {}  # source size -> whether DCT scaling alone gives hw (a batch has few sizes)
        for i, raw in enumerate(raws):
            try:
                slot = slots[i]  # one view: `target is slot` below means "already in place"
                source = None if headers is None else headers[i]  # read and checked by _read
                straight = source is None or source == hw or direct.get(source)
                if straight is None:
                    assert source is not None
                    straight = direct[source] = self.decoder.scaled_shape(source, hw) == hw
                if straight:
                    # at the wanted size as encoded, or after DCT scaling: straight into the slot
                    target = slot if channels_last else scratch
                    self.decoder.decode(raw, out=target, min_size=None if source == hw else hw, hw=source)
                else:  # DCT-scaled as far as the size allows, then resized the rest of the way
                    target = _resize(
                        self.decoder.decode(raw, min_size=hw, hw=source), h, w, slot if channels_last else None
                    )
                if not channels_last:
                    assert target is not None  # the scratch array, or the resized one
                    np.copyto(slot, target.transpose(2, 0, 1))
                elif target is not slot:
                    slot[...] = target
            except Exception as exc:
                reason = _reason(exc)
                if headers is None:  # its header was not read: another size, or a bad header
                    try:
                        hi, wi = self.decoder.header(raw)
                    except Exception as header_exc:
                        reason = _reason(header_exc)
                    else:
                        if (hi, wi) != hw:
                            raise ValueError(
                                f"image {ids[i] if ids else i!r} is {wi}x{hi} but the batch's first image is {w}x{h}; images of "
                                "one batch must share a size: pass size=(height, width) to JpegCollator / make_loader"
                            ) from None
                failed[i] = reason
                if self.on_bad == "error":
                    self._bad_rows(failed, len(raws), ids, rows, [])
        return failed


class Rows:
    """Rows already converted to collated form (what ``make_loader``'s map-style path hands
    the collator): ``arrays`` name -> NumPy array with the batch's rows first, ``lists``
    (``image_id``), ``images`` (bytes-like JPEGs, or ``{"bytes", "path"}`` dicts),
    ``row_numbers`` (each row's index in the user's dataset, to name a bad row; or ``None``)."""

    __slots__ = ("arrays", "lists", "images", "num_rows", "row_numbers")

    def __init__(
        self, arrays: dict, lists: dict, images: list | None, num_rows: int, row_numbers: list[int] | None = None
    ):
        self.arrays, self.lists, self.images, self.num_rows = arrays, lists, images, num_rows
        self.row_numbers = row_numbers


def annotation_arrays(batch) -> tuple[dict[str, np.ndarray], dict[str, list], list | None, int]:
    """Convert rows / columns / an Arrow table into collated arrays (no image decoding).

    Returns ``(arrays, lists, images, n)``: ``arrays`` maps each batch key but ``image``
    to a NumPy array in its batch dtype and shape (nulls as ``-1`` / ``NaN``, masks
    added), ``lists`` holds ``image_id``, ``images`` the encoded images (``None`` when
    there is no ``image`` column).
    """
    import pyarrow as pa

    if isinstance(batch, (pa.Table, pa.RecordBatch)):
        table = batch
        images = _image_bytes(whole_array(batch.column("image"))) if "image" in batch.column_names else None
    elif isinstance(batch, Mapping):
        table = rows_to_arrow(batch, _ANNOTATIONS)
        images = list(batch["image"]) if "image" in batch else None
    elif isinstance(batch, Sequence):
        rows = list(batch)
        if rows and not isinstance(rows[0], Mapping):
            raise TypeError(
                f"JpegCollator expects rows as dicts (a datasets.Dataset row), got {type(rows[0]).__name__}; "
                "read the dataset with datasets and cast_column('image', Image(decode=False))"
            )
        table = rows_to_arrow(rows, _ANNOTATIONS)
        images = [row.get("image") for row in rows] if rows and "image" in rows[0] else None
    else:
        raise TypeError(
            f"JpegCollator expects a list of rows, a dict of columns or a pyarrow.Table, got {type(batch).__name__}"
        )
    converted, lists = core_annotation_arrays(table.select([n for n in table.column_names if n in COLLATED_COLUMNS]))
    lists = {key: [str(v) for v in values] for key, values in lists.items()}
    arrays: dict[str, np.ndarray] = {}
    for name in COLLATED_COLUMNS:
        if name in converted:
            arrays[name] = converted[name]
            if name in MASKED_COLUMNS:
                arrays[f"{name}_valid"] = ~np.isnan(converted[name])
    return arrays, lists, images, table.num_rows


def _reason(exc: Exception) -> str:
    """Why an image cannot be used, from the decoder's error."""
    from .decoders import ImageTooLargeError

    if isinstance(exc, (ImageTooLargeError, _BadImage)):
        return str(exc)
    return f"the image does not decode ({type(exc).__name__}: {exc}); its stored bytes are damaged"


def _take(keep: list[int], arrays: dict, lists: dict, *sequences):
    """Keep the rows at positions ``keep`` of ``arrays`` / ``lists`` (in place) and of each
    of ``sequences`` (lists or ``None``); returns ``(len(keep), sequences)``."""
    for key in arrays:
        arrays[key] = arrays[key][keep]
    for key in lists:
        lists[key] = [lists[key][i] for i in keep]
    return len(keep), tuple(None if seq is None else [seq[i] for i in keep] for seq in sequences)


def _dct_factor(full: int, decoded: int) -> int:
    """The DCT scale denominator (1, 2, 4 or 8) that turned ``full`` pixels into ``decoded``
    (libjpeg rounds up: ``decoded = ceil(full / factor)``)."""
    for factor in (1, 2, 4, 8):
        if decoded == -(-full // factor):
            return factor
    return 1 if decoded == full else max(1, round(full / decoded))


def _resize(array: np.ndarray, h: int, w: int, out: np.ndarray | None = None) -> np.ndarray:
    """``array`` (``H x W x 3`` uint8) resized to ``h x w`` (into ``out`` when given, an
    ``h x w x 3`` C-contiguous uint8 array): bilinear with antialiasing, the filter of
    Pillow's ``Image.resize(BILINEAR)``, through torch's uint8 kernel (written to match
    Pillow: within 2 levels of it; about 4x faster than the Pillow build measured). Torch's
    public ``interpolate`` returns NCHW, which costs a transpose back to HWC; its kernel is
    called with the channels-last output directly where this torch has it."""
    if array.shape[:2] == (h, w):
        return array
    pixels = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).unsqueeze(0)  # channels_last strides
    if out is None:
        out = np.empty((h, w, 3), dtype=np.uint8)
    result = torch.from_numpy(out).permute(2, 0, 1).unsqueeze(0)
    global _AA_KERNEL
    if _AA_KERNEL is not None:
        try:
            _AA_KERNEL(pixels, (h, w), False, None, None, out=result)
            return out
        except (TypeError, RuntimeError):  # another torch's signature: the public path from now on
            _AA_KERNEL = None
    from torch.nn.functional import interpolate

    result.copy_(interpolate(pixels, size=(h, w), mode="bilinear", antialias=True, align_corners=False))
    return out


#: torch's antialiased bilinear kernel with an ``out=`` argument (private; ``None`` where absent).
_AA_KERNEL = getattr(getattr(torch._C, "_nn", None), "_upsample_bilinear2d_aa", None)


def _image_bytes(column) -> list:
    """The encoded images of an Arrow ``image`` column: bytes, or ``{"bytes": None, "path"}``."""
    import pyarrow as pa

    if pa.types.is_struct(column.type):
        names = [column.type.field(i).name for i in range(column.type.num_fields)]
        fields = dict(zip(names, column.flatten(), strict=False))
        data = fields["bytes"].to_pylist()
        if "path" in fields and any(d is None for d in data):
            paths = fields["path"].to_pylist()
            data = [d if d is not None else {"bytes": None, "path": p} for d, p in zip(data, paths, strict=False)]
        return data
    return column.to_pylist()


def _as_bytes(image, name: str) -> Encoded:
    """The encoded image; raises ``_BadImage`` for null bytes (the path beside them is
    never read: a relative one would be read from the working directory)."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return image
    if isinstance(image, Mapping) and "bytes" in image:
        if image["bytes"] is not None:
            return image["bytes"]
        raise _BadImage(
            f"the image has no bytes (null; path {image.get('path')!r}); the loader reads images only from the "
            "dataset's bytes, never from a file path"
        )
    if image is None:
        raise _BadImage("the image is null")
    from PIL import Image

    if isinstance(image, Image.Image):
        raise TypeError(
            f"{name}: the image arrived decoded (a PIL image): the collator decodes JPEG bytes itself. "
            "Read the dataset with dataset.cast_column('image', datasets.Image(decode=False))"
        )
    raise TypeError(
        f"{name}: expected JPEG bytes or {{'bytes': ..., 'path': ...}} as the image, got {type(image).__name__}"
    )
