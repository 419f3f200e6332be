"""JPEG bytes -> ``H x W x 3`` uint8 RGB arrays, with the fastest decoder installed.

Decoders, fastest first as measured on 224 x 224 face crops (see docs/performance.md, "PyTorch loader"):

``simplejpeg``  libjpeg-turbo through ``simplejpeg`` (a dependency of the ``torch`` extra);
                decodes straight into a caller's buffer, no extra copy.
``turbojpeg``   libjpeg-turbo through ``PyTurboJPEG`` (optional; needs the system
                ``libturbojpeg``).
``pil-draft``   Pillow, asking the JPEG decoder to scale by 1/2, 1/4 or 1/8 while decoding
                when a smaller output is wanted (``Image.draft``).
``pil``         Pillow, plain full decode. Always there; the fallback.

``"auto"`` picks the first one importable. Whatever is picked, an image that the fast
path refuses (not a JPEG, CMYK, ...) is decoded by Pillow and converted to RGB, so the
choice changes speed, never which images load.

Decoding with a ``min_size`` lets libjpeg scale by 1/2, 1/4 or 1/8 during decoding
(``DCT scaling``) to the smallest of those sizes not below ``min_size``; the caller resizes
the rest of the way. Only these power-of-two factors are used: libjpeg-turbo's other
scalings (3/8, 5/8, ...) use slow generic IDCTs and cost more than a full decode
(measured: 5/8 of a 224 x 224 face crop took 1.8x the time of decoding it whole). All
decoders here are single-threaded: parallelism comes from DataLoader workers.

Every decoder reads the image's header before it decodes (or sizes a buffer for) it, and
refuses an image whose header declares more than :data:`MAX_IMAGE_PIXELS` pixels with
:class:`ImageTooLargeError`: a damaged or hostile header (20000 x 20000) never makes a
worker allocate gigabytes.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Sequence

import numpy as np

__all__ = [
    "DECODERS",
    "MAX_IMAGE_PIXELS",
    "Decoder",
    "Encoded",
    "ImageTooLargeError",
    "available_decoders",
    "dct_factor",
    "get_decoder",
    "measure_decoders",
]

#: Decoder names, in the order ``"auto"`` tries them.
DECODERS: tuple[str, ...] = ("simplejpeg", "turbojpeg", "pil-draft", "pil")

#: The most pixels (height x width) an image may declare: 8192 x 8192, 192 MiB of RGB.
#: AffectNet+ images are face crops of at most a few thousand pixels a side; a header
#: beyond this is damaged (or hostile) and the image is refused before anything is allocated.
MAX_IMAGE_PIXELS: int = 8192 * 8192


#: What a decoder reads: an encoded image's bytes, or a zero-copy view of them (the
#: loader hands out views of the dataset's memory-mapped Arrow buffers).
Encoded = bytes | bytearray | memoryview


class ImageTooLargeError(ValueError):
    """An image's header declares more than :data:`MAX_IMAGE_PIXELS` pixels."""


def _checked(h: int, w: int) -> tuple[int, int]:
    if h * w > MAX_IMAGE_PIXELS:
        raise ImageTooLargeError(
            f"the image header declares {w}x{h} = {h * w:,} pixels, more than the decoders' limit "
            f"MAX_IMAGE_PIXELS = {MAX_IMAGE_PIXELS:,} (affectnetplus_hf.torch.decoders); the header is damaged"
        )
    return h, w


def dct_factor(hw: tuple[int, int], min_size: tuple[int, int] | None) -> int:
    """The largest of 8, 4, 2 (else 1) that an ``hw = (height, width)`` image can be shrunk
    by while decoding and stay at least ``min_size`` on both sides (libjpeg's scaled size is
    ``ceil(side / factor)``)."""
    if min_size is None:
        return 1
    for factor in (8, 4, 2):
        if -(-hw[0] // factor) >= min_size[0] and -(-hw[1] // factor) >= min_size[1]:
            return factor
    return 1


class Decoder:
    """One decoding backend. ``decode(data, out=None, min_size=None) -> H x W x 3 uint8``.

    ``out``: an ``H x W x 3`` uint8 C-contiguous array to decode into (sizes must match the
    decoded image); returned filled. ``min_size``: ``(height, width)``; decode at the
    largest power-of-two DCT factor (:func:`dct_factor`) that keeps the image at least that
    size (the result may be larger than ``min_size``; :meth:`scaled_shape` says how large).
    ``hw``: the image's ``(height, width)`` as :meth:`header` returned it, when the caller
    has read it already (it is not read again; a wrong one makes the decode fail, never
    overrun ``out``). ``header`` and ``decode`` raise :class:`ImageTooLargeError` for an
    image that declares more than :data:`MAX_IMAGE_PIXELS` pixels, before decoding any of it.
    """

    name = "pil"

    def scaled_shape(self, hw: tuple[int, int], min_size: tuple[int, int] | None) -> tuple[int, int] | None:
        """``(height, width)`` that ``decode(..., min_size=min_size)`` returns for an image of
        ``hw``, or ``None`` where only decoding tells (Pillow's ``draft``)."""
        return hw

    def header(self, data: Encoded) -> tuple[int, int]:
        """``(height, width)`` of the encoded image, without decoding it (checked against
        :data:`MAX_IMAGE_PIXELS`)."""
        return _checked(*self._header(data))

    def _header(self, data: Encoded) -> tuple[int, int]:
        from PIL import Image

        with warnings.catch_warnings():  # Pillow's own, higher limit: warns from 89M pixels, refuses from 179M
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                with Image.open(io.BytesIO(data)) as image:
                    return image.height, image.width
            except Image.DecompressionBombError as exc:
                raise ImageTooLargeError(
                    f"{exc}; the decoders' limit is MAX_IMAGE_PIXELS = {MAX_IMAGE_PIXELS:,} pixels"
                ) from None

    def decode(
        self, data: Encoded, out: np.ndarray | None = None, min_size: tuple[int, int] | None = None, *, hw=None
    ) -> np.ndarray:
        if hw is None:
            self.header(data)
        return _into(_pil_decode(data, min_size if self.name == "pil-draft" else None), out)

    def __repr__(self) -> str:
        return f"Decoder({self.name!r})"

    def __reduce__(self):  # DataLoader workers get a fresh decoder by name
        return get_decoder, (self.name,)


def _pil_decode(data: Encoded, min_size: tuple[int, int] | None, factor: int = 1) -> np.ndarray:
    """Pillow: with ``min_size``, let the JPEG decoder pick its own scale (``draft``); with
    ``factor``, shrink by exactly that (to ``ceil(side / factor)``, as libjpeg-turbo would)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        _checked(image.height, image.width)
        if min_size is not None and image.format == "JPEG":
            image.draft("RGB", (min_size[1], min_size[0]))
        if image.mode != "RGB":
            image = image.convert("RGB")
        if factor > 1:
            image = image.reduce(factor)
        return np.asarray(image)


def _into(array: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return array
    if out.shape != array.shape:
        raise ValueError(
            f"decoded image is {array.shape[1]}x{array.shape[0]}, the output slot is {out.shape[1]}x{out.shape[0]}"
        )
    out[...] = array
    return out


class _PilDraft(Decoder):
    name = "pil-draft"

    def scaled_shape(self, hw, min_size):
        return hw if min_size is None else None


class _Scaling(Decoder):
    """A libjpeg-turbo decoder: scales by exactly :func:`dct_factor`."""

    def scaled_shape(self, hw, min_size):
        factor = dct_factor(hw, min_size)
        return (-(-hw[0] // factor), -(-hw[1] // factor))


class _SimpleJpeg(_Scaling):
    name = "simplejpeg"

    def __init__(self):
        import simplejpeg

        self._sj = simplejpeg

    def _header(self, data: Encoded) -> tuple[int, int]:
        try:
            h, w, _, _ = self._sj.decode_jpeg_header(data)
        except ValueError:
            return super()._header(data)
        return h, w

    def decode(self, data, out=None, min_size=None, *, hw=None):
        h, w = hw or self.header(data)
        kwargs = {}
        factor = dct_factor((h, w), min_size)
        if factor > 1:  # exactly ceil(side / factor): simplejpeg picks the smallest eighth-scale not below it
            kwargs = {"min_height": -(-h // factor), "min_width": -(-w // factor)}
        try:
            if out is not None:
                array = self._sj.decode_jpeg(data, colorspace="RGB", buffer=out, **kwargs)
                if array.shape != out.shape:
                    raise ValueError(
                        f"decoded image is {array.shape[1]}x{array.shape[0]}, the output slot is {out.shape[1]}x{out.shape[0]}"
                    )
                return out
            return self._sj.decode_jpeg(data, colorspace="RGB", **kwargs)
        except ValueError as exc:
            if "output slot" in str(exc):
                raise
            # not a JPEG, or one libjpeg-turbo cannot convert to RGB (CMYK): Pillow can, at the same scale
            return _into(_pil_decode(data, None, factor), out)


class _TurboJpeg(_Scaling):
    name = "turbojpeg"

    def __init__(self):
        from turbojpeg import TJPF_RGB, TurboJPEG

        self._tj = TurboJPEG()
        self._rgb = TJPF_RGB

    def _header(self, data):
        try:
            w, h, _, _ = self._tj.decode_header(data)
        except OSError:
            return super()._header(data)
        return h, w

    def decode(self, data, out=None, min_size=None, *, hw=None):
        h, w = hw or self.header(data)
        try:
            factor = dct_factor((h, w), min_size)
            scaling = (1, factor) if factor > 1 else None
            array = self._tj.decode(data, pixel_format=self._rgb, scaling_factor=scaling)
        except OSError:
            array = _pil_decode(data, None, factor)
        return _into(array, out)


_FACTORIES = {"simplejpeg": _SimpleJpeg, "turbojpeg": _TurboJpeg, "pil-draft": _PilDraft, "pil": Decoder}
_CACHE: dict[str, Decoder] = {}


def get_decoder(name: str = "auto") -> Decoder:
    """The decoder called ``name`` (one of :data:`DECODERS`), or the fastest installed for ``"auto"``."""
    if name == "auto":
        for candidate in DECODERS:
            try:
                return get_decoder(candidate)
            except ImportError:
                continue
    if name not in _FACTORIES:
        raise ValueError(f"decoder must be 'auto' or one of {list(DECODERS)}, got {name!r}")
    if name not in _CACHE:
        try:
            _CACHE[name] = _FACTORIES[name]()
        except (ImportError, OSError, RuntimeError) as exc:  # PyTurboJPEG raises RuntimeError without libturbojpeg
            raise ImportError(
                f"JPEG decoder {name!r} is not usable here ({exc}); install it "
                "(simplejpeg: pip install simplejpeg; turbojpeg: pip install PyTurboJPEG and the system libturbojpeg) "
                "or use decoder='auto'"
            ) from exc
    return _CACHE[name]


def available_decoders() -> list[str]:
    """Names of the decoders that work in this environment, in :data:`DECODERS` order."""
    names = []
    for name in DECODERS:
        try:
            get_decoder(name)
        except ImportError:
            continue
        names.append(name)
    return names


def measure_decoders(
    jpegs: Sequence[bytes], names: Sequence[str] | None = None, min_seconds: float = 1.0, min_size=None
) -> dict[str, float]:
    """Single-core images per second of each decoder over ``jpegs`` (decoded into a
    reused buffer where the decoder supports it), at least ``min_seconds`` each."""
    rates: dict[str, float] = {}
    for name in names or available_decoders():
        decoder = get_decoder(name)
        first = decoder.decode(jpegs[0], min_size=min_size)
        buffer = np.empty_like(first)
        same = all(decoder.header(j) == decoder.header(jpegs[0]) for j in jpegs[:32]) and min_size is None
        count, start = 0, time.perf_counter()
        while True:
            for data in jpegs:
                decoder.decode(data, out=buffer if same else None, min_size=min_size)
            count += len(jpegs)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        rates[name] = count / elapsed
    return rates
