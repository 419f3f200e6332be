"""Device side: prefetch collated batches onto the device, convert, normalise and augment there.

:class:`DevicePrefetcher` wraps a DataLoader of :class:`~affectnetplus_hf.torch.collate.JpegCollator`
batches. While the model works on batch ``k``, batch ``k + 1`` is already being copied
(``non_blocking`` from pinned memory) on a side CUDA stream, created once per prefetcher,
and converted on the device: ``uint8 -> float``, then ``(x - 255 * mean) / (255 * std)``
(so ``mean``/``std`` are given on the usual 0..1 scale), then the optional batched
:class:`~affectnetplus_hf.torch.augment.BatchAugment`. The main stream waits for the side
stream before a batch is handed out, and every tensor is marked as used by the main
stream (``record_stream``) so its memory is not reused too early.

On the CPU device (tests, machines without a GPU) the same steps run synchronously; on
any device an empty loader yields nothing.

Batches made with ``output="jpeg"`` are decoded here: on CUDA with
``torchvision.io.decode_jpeg(device=...)`` when torchvision is installed, otherwise on
the CPU with the package's decoder and then copied. ``size`` resizes them (bilinear,
antialiased) and moves the landmarks alike.

Each yielded batch is the collated dict with ``image`` as ``N x 3 x H x W`` float on the
device (``channels_last`` memory layout unless ``memory_format="contiguous"``), all other
tensors on the device, and ``image_id`` unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F

from ..core.choices import MemoryFormat, check_choice
from . import geometry
from .collate import _parse_size
from .decoders import get_decoder

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DevicePrefetcher",
    "decode_jpeg_batch",
    "normalize_images",
    "resolve_device",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
_HOST_ONLY = ("jpeg_data", "jpeg_offsets")


def resolve_device(device: torch.device | str | None = "auto") -> torch.device:
    """``device`` as a ``torch.device``; ``"auto"`` or ``None`` is CUDA when available, else the CPU
    (``torch.device`` itself refuses ``"auto"``)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def normalize_images(
    image: torch.Tensor, mean255: torch.Tensor, inv_std255: torch.Tensor, dtype=torch.float32
) -> torch.Tensor:
    """``(image - mean255) * inv_std255`` in ``dtype``; ``mean255``/``inv_std255`` are ``1 x C x 1 x 1``."""
    return (image.to(dtype) - mean255) * inv_std255


def _torchvision_decode():
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except Exception:  # torchvision missing, or built against another torch
        return None
    return lambda pieces, device: decode_jpeg(pieces, mode=ImageReadMode.RGB, device=device)


def decode_jpeg_batch(
    batch: dict, device: torch.device, size: tuple[int, int] | None = None, decoder: str = "auto"
) -> tuple[torch.Tensor, dict]:
    """Decode a ``output="jpeg"`` batch on ``device``: returns ``(float image 0..255, batch)``
    with ``landmarks`` moved to the output size. Uses torchvision's GPU decoder on CUDA
    when available, else the CPU decoder."""
    data, offsets = batch["jpeg_data"], batch["jpeg_offsets"].tolist()
    pieces = [data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    images: list[torch.Tensor]
    gpu = _torchvision_decode() if device.type == "cuda" else None
    if gpu is not None:
        images = list(gpu(pieces, device))
    else:
        cpu = get_decoder(decoder)
        images = [
            torch.from_numpy(cpu.decode(p.numpy().tobytes())).permute(2, 0, 1).to(device, non_blocking=True)
            for p in pieces
        ]
    sizes = batch["image_size"].to(torch.float32)
    if size is None:
        shapes = {tuple(img.shape[1:]) for img in images}
        if len(shapes) > 1:
            raise ValueError(
                f"images of one batch differ in size {sorted(shapes)}; pass size=(height, width) to DevicePrefetcher"
            )
        out = torch.stack(images).float() if images else torch.empty(0, 3, 0, 0, device=device)
        return out, batch
    h, w = size
    resized = []
    for img in images:
        img = img.float()[None]
        if tuple(img.shape[2:]) != (h, w):
            img = F.interpolate(img, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        resized.append(img)
    out = torch.cat(resized) if resized else torch.empty(0, 3, h, w, device=device)
    batch = dict(batch)
    if "landmarks" in batch and len(images):
        lm = batch["landmarks"]
        src = sizes.to(lm.device)
        batch["landmarks"] = geometry.resize_points(lm, (src[:, 0:1], src[:, 1:2]), (float(h), float(w)))
    return out, batch


class DevicePrefetcher:
    """Iterate ``loader``'s batches on ``device``, converted, normalised and augmented.

    Args:
        loader: an iterable of collated batch dicts (usually :func:`make_loader`'s).
        device: where batches go: ``"cuda"``, ``"cuda:1"``, ``"cpu"``, a ``torch.device``, or
            ``"auto"`` (the default, also ``None``): CUDA when available, else the CPU. Move the
            model to :attr:`device` so that one script runs on either machine.
        mean, std: per-channel normalisation on the 0..1 scale (scaled by 255 here).
        augment: a callable ``batch -> batch`` run on the device after normalisation,
            e.g. :class:`~affectnetplus_hf.torch.augment.BatchAugment`.
        size: output size for ``output="jpeg"`` batches (decoded here).
        memory_format: ``"channels_last"`` (default) or ``"contiguous"`` for ``image``.
        dtype: floating dtype of ``image`` (``torch.float32``; ``torch.float16`` /
            ``torch.bfloat16`` halve the memory traffic).
        decoder: CPU decoder for ``output="jpeg"`` batches when GPU decoding is unavailable.
    """

    def __init__(
        self,
        loader: Iterable[dict],
        device: torch.device | str | None = "auto",
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        augment=None,
        size: int | tuple[int, int] | None = None,
        memory_format: MemoryFormat = "channels_last",
        dtype: torch.dtype = torch.float32,
        decoder: str = "auto",
    ):
        self.loader = loader
        self.device = resolve_device(device)
        if len(mean) != len(std):
            raise ValueError(f"mean and std need one value per channel, got {len(mean)} and {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        check_choice("memory_format", memory_format, MemoryFormat)
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating dtype, got {dtype}")
        self.memory_format = memory_format
        self.dtype = dtype
        self.augment = augment
        self.size = _parse_size(size)
        self.decoder = decoder
        self.mean255 = (torch.tensor(mean, dtype=dtype) * 255).view(1, -1, 1, 1).to(self.device)
        self.inv_std255 = (
            (1.0 / (torch.tensor(std, dtype=torch.float64) * 255)).to(dtype).view(1, -1, 1, 1).to(self.device)
        )
        # One side stream for the whole life of the prefetcher (never one per batch).
        self.stream = torch.cuda.Stream(device=self.device) if self.device.type == "cuda" else None

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[dict]:
        iterator = iter(self.loader)
        upcoming = self._load(iterator)
        while upcoming is not None:
            if self.stream is not None:
                current = torch.cuda.current_stream(self.device)
                current.wait_stream(self.stream)
                for value in upcoming.values():
                    if isinstance(value, torch.Tensor) and value.device.type == "cuda":
                        value.record_stream(current)
            batch = upcoming
            upcoming = self._load(iterator)
            yield batch

    def _load(self, iterator: Iterator[dict]) -> dict | None:
        try:
            raw = next(iterator)
        except StopIteration:
            return None
        context = torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()
        with context:
            return self.prepare(raw)

    def prepare(self, raw: dict) -> dict:
        """One batch: to the device, decode if encoded, float + normalise, augment."""
        batch = {
            key: value.to(self.device, non_blocking=True)
            if isinstance(value, torch.Tensor) and key not in _HOST_ONLY
            else value
            for key, value in raw.items()
        }
        if "jpeg_data" in batch:
            image, batch = decode_jpeg_batch(batch, self.device, self.size, self.decoder)
            for key in _HOST_ONLY:
                batch.pop(key, None)
        else:
            image = batch["image"]
        if image.dim() != 4 or image.shape[1] != self.mean255.shape[1]:
            raise ValueError(f"image must be N x {self.mean255.shape[1]} x H x W, got {tuple(image.shape)}")
        image = normalize_images(image, self.mean255, self.inv_std255, self.dtype)
        batch["image"] = image.contiguous(
            memory_format=torch.channels_last if self.memory_format == "channels_last" else torch.contiguous_format
        )
        if self.augment is not None:
            batch = self.augment(batch)
            if self.memory_format == "channels_last":
                batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        return batch
