"""Values of the original AffectNet releases (the 2017 CSV lists, the 8-label ``.npy`` files) as
schema values: one parser of each field, shared by :mod:`.original` and :mod:`.eightlabel`.

The rules are AffectNet+'s (:mod:`.reader`): the valence/arousal sentinel ``-2`` becomes null;
a valence or arousal that is not a finite number becomes null with a note; a value outside
its documented range is kept and noted; an expression that is not a code makes the record
bad. Landmarks that are not exactly 136 finite numbers make the record bad too: in these
releases they are one field of a CSV line or one file, so a wrong count means the line or
file was cut or garbled (the record cannot be read whole).

Images: the 2017 release has JPEG and PNG files (kept byte for byte, never re-encoded); a
JPEG is checked as AffectNet+'s are (end-of-image marker after the last scan), a PNG must
end with its ``IEND`` chunk.
"""

from __future__ import annotations

import numpy as np

from ..core.schema import EXPRESSIONS, NUM_LANDMARKS
from .reader import DOCUMENTED_RANGES, MAX_IMAGE_BYTES, RANGE_SLACK, _check_image, _image_kind, _read_file
from .reader import _decode_problem as _reader_decode_problem

__all__ = ["ValueProblem", "check_full_image", "expression_code", "landmarks", "scalar", "short", "va_value"]

_F32_MAX = float(np.finfo(np.float32).max)
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"


class ValueProblem(ValueError):
    """A field that cannot be read; its message says what was expected and found."""


def short(value) -> str:
    """A value as a report shows it: ``repr``, at most 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def scalar(text: str) -> float:
    """A finite float32 number from text; :class:`ValueProblem` otherwise (never an overflow:
    ``float`` of any digit string is bounded work)."""
    try:
        number = float(text.strip())
    except (ValueError, TypeError, AttributeError):
        raise ValueProblem(f"expected a number, found {short(text)}") from None
    if not -_F32_MAX <= number <= _F32_MAX:  # NaN, inf, 1e400
        raise ValueProblem(f"expected a finite number, found {short(text)}")
    return number


def expression_code(text: str) -> int:
    """An expression code 0..10 from text (``'3'``, ``'3.0'``); :class:`ValueProblem` otherwise."""
    try:
        number = scalar(text)
    except ValueProblem:
        number = None
    if number is None or not number.is_integer() or not 0 <= number < len(EXPRESSIONS):
        raise ValueProblem(f"expression: expected a code 0..{len(EXPRESSIONS) - 1}, found {short(text)}")
    return int(number)


def va_value(text, column: str, notes: list[tuple[str, str]]) -> float | None:
    """Valence or arousal: null for ``-2`` and for an empty field; null with a note when it is not
    a finite number; kept with a note when outside [-1, 1]."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        number = scalar(text)
    except ValueProblem as exc:
        notes.append((column, f"{exc}; stored null"))
        return None
    if abs(number + 2.0) < 1e-6:
        return None
    low, high = DOCUMENTED_RANGES[column]
    if not low - RANGE_SLACK <= number <= high + RANGE_SLACK:
        notes.append(
            (column, f"outside the documented range [{low:g}, {high:g}]: {number:g}; kept as released (check the file)")
        )
    return number


def landmarks(values) -> np.ndarray:
    """68 x 2 float32 from 136 numbers or numeric strings (x1, y1, x2, y2, ...); :class:`ValueProblem`
    naming the count or the first value that is not a finite number."""
    values = list(values)
    if len(values) != 2 * NUM_LANDMARKS:
        raise ValueProblem(f"landmarks: expected 136 numbers (68 x, y pairs), found {len(values)}")
    out = np.empty(2 * NUM_LANDMARKS, dtype=np.float32)
    for i, value in enumerate(values):
        try:
            out[i] = scalar(value if isinstance(value, str) else str(value))
        except ValueProblem as exc:
            raise ValueProblem(f"landmarks: number {i + 1} of 136: {exc}") from None
    return out.reshape(NUM_LANDMARKS, 2)


def read_image(path, check: str, too_large: str) -> tuple[bytes, str | None, str | None]:
    """An original release's image file, read whole and checked: ``(bytes, problem, note)``.
    ``problem`` (unreadable, over :data:`MAX_IMAGE_BYTES` -- ``too_large`` says why that is too
    large for the release --, or not a whole JPEG/PNG) makes the record bad; ``note`` keeps it."""
    try:
        data, size = _read_file(path, MAX_IMAGE_BYTES)
    except OSError as exc:
        return b"", f"cannot read file: {exc.strerror or exc}; check the file's permissions or re-extract it", None
    if data is None:
        return b"", f"image file too large: {size} bytes{too_large}; not read: re-extract it", None
    problem, note = check_full_image(data, check)
    return data, problem, note


def check_full_image(data: bytes, check: str) -> tuple[str | None, str | None]:
    """``(problem, note)`` for the bytes of an original release's image (JPEG or PNG, any size)."""
    if not data:
        return "image file is empty (0 bytes); re-extract it", None
    note = None
    if data.startswith(_PNG):
        end = data.rfind(b"IEND")
        if end < 0 or len(data) < end + 8:
            return (
                f"PNG cut short: no IEND chunk at its end ({len(data)} bytes); the file was truncated: re-extract it",
                None,
            )
        if data[end + 8 :].strip(b"\x00"):
            note = f"{len(data) - end - 8} bytes after the PNG's IEND chunk; kept as released (decoders ignore them)"
    elif data.startswith(_JPEG_SOI):
        problem, note = _check_image(data, "markers")
        if problem:
            return problem, None
    else:
        kind = _image_kind(data)
        found = f"a {kind} image" if kind else f"bytes {data[:8].hex(' ')}"
        return f"not a JPEG or PNG: expected an image of the release, found {found}; re-extract it", None
    if check == "decode":
        problem = _decode_problem(data)
        if problem:
            return problem, None
    return None, note


def _decode_problem(data: bytes) -> str | None:
    return _reader_decode_problem(data, kind="image", size_hint="")
