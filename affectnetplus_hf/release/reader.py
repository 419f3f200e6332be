"""Read one AffectNet+ record (an image and its JSON) into a row of :data:`FEATURES` columns.

This is the only parser of the release's files: the builder, ``stats`` over a raw release
and the loading script call :func:`read_record` or :func:`iter_rows`; the export and
``verify`` call :func:`read_batches`, the same records read a batch at a time into one Arrow
table (well-formed ones straight into columns; held equal to :func:`iter_rows`).

Reading one record never raises for bad data (see :func:`read_record`): every input ends
as a row, a row plus :class:`Note` s, or a :class:`BadRecord`, each naming the file.

What is tolerated, and how (see ``shared/affectnetplus-format.md`` for the facts):

* JSON with a UTF-8 BOM, UTF-16 with a BOM, CRLF line ends;
* key spellings: keys match case-insensitively with space, ``-`` and ``_`` ignored, so
  ``meta-data``/``Metadata`` and ``middle eastern``/``middle_eastern`` are the same key;
* a key given twice (the same spelling twice, or two spellings of one key): equal values
  are read once; an empty value (``null``, ``{}``, ``[]``, ``""``) gives way to the other;
  two objects are merged key by key; two different values make an optional field null and
  a label field (human label, soft label, subset) a bad record. Each case is noted;
* numbers: ints where floats are expected, numeric strings, ``null``; the valence/arousal
  sentinel ``-2`` becomes null. A number that is not finite in float32 (``NaN``,
  ``Infinity``, ``1e400``, an integer of 400 digits) becomes null with a note, and makes the
  record bad in the soft label, which is required;
* optional metadata (age, gender, race, pose, landmarks, valence, arousal) that is missing
  becomes null. Present but of an unexpected shape (a gender object without ``male``, or
  ``{}``), it becomes null *and* a :class:`Note` names the file, the field and what was
  found. Keys the schema does not know are noted the same way;
* values outside their documented range (:data:`DOCUMENTED_RANGES`: valence 5.0, age -40,
  a probability of 9) are kept as released and noted, never clamped;
* bytes after a JPEG's end-of-image marker are kept as released (decoders ignore them);
  non-zero ones are noted.

What makes a record *bad* (a :class:`BadRecord`, skipped and reported, or raised with
``on_bad="error"``): no image, no annotation, two files for one stem, a file that cannot
be read or is far larger than any AffectNet+ file, an empty or truncated JPEG (no
end-of-image marker after the last scan), an image that is not a JPEG (a PNG, GIF, WEBP
... saved as ``.jpg``: the ``image`` column holds the release's JPEG bytes and is never
re-encoded), with ``check_images="decode"`` a JPEG that does not decode or is above PIL's
decompression-bomb limit, unparseable JSON (also nested too deeply to parse), JSON that is
not an object, a soft label that is not 8 finite numbers, a human label or subset outside
its codes or given twice with different values.

Should anything else go wrong inside the reader (a bug), the record is reported as bad
with the reason class :data:`UNEXPECTED` and the run goes on.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import operator
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.choices import CheckImages, OnBad, check_choice
from ..core.configs import UNLABELED_PART
from ..core.schema import EXPRESSIONS, GENDERS, NUM_LANDMARKS, NUM_SOFT_CLASSES, POSE_ANGLES, RACES, SUBSETS
from ..errors import BadRecordError
from .layout import RecordFiles

__all__ = [
    "DOCUMENTED_RANGES",
    "MAX_ANNOTATION_BYTES",
    "MAX_IMAGE_BYTES",
    "RANGE_SLACK",
    "UNEXPECTED",
    "BadRecord",
    "reason_class",
    "Note",
    "ReadResult",
    "iter_rows",
    "read_record",
]

logger = logging.getLogger(__name__)

#: Column -> (low, high) of the values the format documents. A finite value outside by more
#: than :data:`RANGE_SLACK` is kept as released and noted (valence/arousal: [-1, 1]; age:
#: years; probabilities and scores: [0, 1]).
DOCUMENTED_RANGES: dict[str, tuple[float, float]] = {
    "valence": (-1.0, 1.0),
    "arousal": (-1.0, 1.0),
    "age": (0.0, 120.0),
    "gender": (0.0, 1.0),
    "race": (0.0, 1.0),
    "soft_label": (0.0, 1.0),
}
#: Rounding of the release's 2-decimal values (a last probability written as ``1 - sum`` of
#: the others can be -0.01): values outside a range by at most this much are not noted.
RANGE_SLACK = 0.01
#: Files above these sizes are reported, not read: AffectNet+ annotations are about 2 KB and
#: images 224 x 224 JPEGs of about 8 KB, so such a file is not one of the release's.
MAX_ANNOTATION_BYTES = 16 * 2**20
MAX_IMAGE_BYTES = 64 * 2**20
#: Reason class of a record that hit a bug in the reader (reported, so the run goes on).
UNEXPECTED = "unexpected reader error"

_SENTINEL = -2.0
_F32_MAX = float(np.finfo(np.float32).max)
_DELETE = str.maketrans("", "", " -_\t")


_KEY_CACHE: dict[str, str] = {}


def _key(name: str) -> str:
    """Key as compared: lower case without space, '-', '_' (memoised: keys repeat in every file)."""
    key = _KEY_CACHE.get(name)
    if key is None:
        key = name.lower().translate(_DELETE)
        if len(_KEY_CACHE) < 10_000:  # bounded: a release with random keys cannot grow it forever
            _KEY_CACHE[name] = key
    return key


_TOP_KEYS = {"humanlabel": "human_label", "softlabel": "soft_label", "subset": "subset", "metadata": "meta"}
_TOP_REQUIRED = frozenset(("human_label", "soft_label", "subset"))  # two different values: bad record
_META_KEYS = {
    "age": "age",
    "valence": "valence",
    "arousal": "arousal",
    "gender": "gender",
    "race": "race",
    "pose": "pose",
    "headpose": "pose",
    "landmark68": "landmarks",
    "landmarks68": "landmarks",
    "landmark29": "landmarks_29",
    "landmarks29": "landmarks_29",
}
_EXPRESSION_CODES = {_key(name): code for code, name in enumerate(EXPRESSIONS)}
_SUBSET_CODES = {_key(name): code for code, name in enumerate(SUBSETS)}


def reason_class(reason: str) -> str:
    """The kind of a bad-record or note reason, for counting, so that the values found do
    not split a kind. Reasons are written ``"<kind>: <details>; <what to do>"`` or
    ``"expected X, found Y; stored null"``: the kind is the text before the first ':', ';'
    or ', found '. Where that text is one word, a field (``"subset: two different values
    (0 and 2); ..."``), the kind is the field and its detail up to ' (', ';' or ', found '
    (``"subset: two different values"``)."""
    before, colon, rest = reason.partition(":")
    head = before.split(";", 1)[0].split(", found ", 1)[0].strip()
    if not colon or " " in head or ";" in before:
        return head
    detail = re.split(r";|, found | \(", rest, maxsplit=1)[0].strip()
    return f"{head}: {detail}" if detail else head


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be read whole: it is not written, it is reported."""

    part: str
    image_id: str
    path: str
    reason: str
    #: the line of the list (AffectNet 2017's CSV) that names the record; None for releases without lists
    line: int | None = None

    def to_report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "kind": "bad_record",
            "part": self.part,
            "image_id": self.image_id,
            "path": self.path,
            "reason": self.reason,
        }
        if self.line is not None:
            report["line"] = self.line
        return report

    @property
    def where(self) -> str:
        """The path, and ``:line`` when a list's line names the record: how a report shows it."""
        return self.path if self.line is None else f"{self.path}:{self.line}"

    def error(self) -> BadRecordError:
        return BadRecordError(self.where, self.reason)


@dataclass(frozen=True)
class Note:
    """Something in a written record that was not carried over as found (the record is kept)."""

    part: str
    image_id: str
    path: str
    field: str
    reason: str
    #: the line of the list (AffectNet 2017's CSV) that names the record; None for releases without lists
    line: int | None = None

    def to_report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "kind": "note",
            "part": self.part,
            "image_id": self.image_id,
            "path": self.path,
            "field": self.field,
            "reason": self.reason,
        }
        if self.line is not None:
            report["line"] = self.line
        return report


@dataclass
class ReadResult:
    """The outcome of reading one record: a row or a bad record, plus notes."""

    row: dict | None = None
    bad: BadRecord | None = None
    notes: list[Note] = field(default_factory=list)


class _Bad(Exception):
    pass


class _NonFinite(ValueError):
    """A number that is not finite as float32: NaN, +-Infinity, 1e400, 10**400, 1e39."""


class _Context:
    __slots__ = ("files", "notes")

    def __init__(self, files: RecordFiles):
        self.files = files
        self.notes: list[Note] = []

    def note(self, name: str, reason: str) -> None:
        files = self.files
        self.notes.append(Note(files.part, files.image_id, str(files.annotation), name, reason))


# ----------------------------------------------------------------------------- JSON values


class _Repeated(dict):
    """A JSON object in which a key appears more than once (a plain ``dict`` keeps only
    the last); ``pairs`` holds every (key, value) in file order."""

    __slots__ = ("pairs",)
    pairs: list[tuple[str, Any]]


def _object(pairs: list[tuple[str, Any]]) -> dict:
    """``object_pairs_hook`` of the parser: a plain dict, or a :class:`_Repeated` one."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        obj = _Repeated(obj)
        obj.pairs = pairs
    return obj


def _items(obj: dict) -> Iterable[tuple[Any, Any]]:
    return obj.pairs if type(obj) is _Repeated else obj.items()


class _Constant(float):
    """A JSON ``NaN``, ``Infinity`` or ``-Infinity`` literal, told apart from a number too
    large for a float (``1e400``, which the parser also turns into infinity) so that a note
    quotes what the file says."""


def _constant(name: str) -> float:
    """``parse_constant`` of the parser (called only for the three literals)."""
    return _Constant(name)


def _brief(value: Any, depth: int = 0, width: int = 6) -> str:
    """A short JSON-like spelling of a value, bounded in depth and width (never recursing far)."""
    if isinstance(value, dict):
        if depth >= 2:
            return "{...}" if value else "{}"
        items = list(_items(value))
        shown = min(width, 4)
        inner = ", ".join(f"{json.dumps(str(k))}: {_brief(v, depth + 1, width)}" for k, v in items[:shown])
        return "{" + inner + (f", ... ({len(items)} keys)" if len(items) > shown else "") + "}"
    if isinstance(value, (list, tuple)):
        if depth >= 2:
            return "[...]" if value else "[]"
        inner = ", ".join(_brief(v, depth + 1, width) for v in value[:width])
        return "[" + inner + (f", ... ({len(value)} items)" if len(value) > width else "") + "]"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:37] + "...")
    if type(value) is int and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, float) and not math.isfinite(value):
        if value != value:
            return "NaN"
        if type(value) is _Constant:
            return "Infinity" if value > 0 else "-Infinity"
        return (
            "a number too large for a float (1e400 or beyond)"
            if value > 0
            else "a negative number too large for a float (-1e400 or beyond)"
        )
    if isinstance(value, (bool, int, float)) or value is None:
        return json.dumps(value)
    return repr(value)[:40]


def _describe(value: Any) -> str:
    """:func:`_brief`, with fewer items shown until it fits in 80 characters."""
    for width in (6, 3, 1):
        text = _brief(value, width=width)
        if len(text) <= 80:
            return text
    return text[:77] + "..."


#: What a JSON document is, by its Python type, for "expected a JSON object, found ...".
_JSON_KINDS = {
    list: "a JSON array",
    str: "a JSON string",
    bool: "a JSON true/false",
    int: "a JSON number",
    float: "a JSON number",
    _Constant: "a JSON number",
    type(None): "JSON null",
}


def _number(value: Any) -> float | None:
    """A float from a JSON number or numeric string; None for null.

    Raises :class:`_NonFinite` for a value that is not a finite float32 (NaN, Infinity,
    1e400, a 400-digit integer) and ``ValueError`` for anything that is not a number.
    """
    if value is None:
        return None
    kind = type(value)
    if kind is float or kind is int:
        number = value
    elif isinstance(value, str):
        number = float(value.strip())  # ValueError for a non-numeric string
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    else:
        raise ValueError
    if not -_F32_MAX <= number <= _F32_MAX:  # false for NaN; exact for ints of any size
        raise _NonFinite
    return float(number)


def _code(value: Any, names: dict[str, int], count: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and _key(value) in names:
        return names[_key(value)]
    number = _number(value)
    if number is None:
        return None
    if not number.is_integer() or not 0 <= number < count:
        raise ValueError
    return int(number)


def _plain_finite(values: Any) -> bool:
    """True for a non-empty list of plain ints/floats (no bool) all within float32's range:
    the fast path, taken by every well-formed file."""
    return (
        bool(values)
        and set(map(type, values)) <= _PLAIN_NUMBER
        and -_F32_MAX <= min(values)
        and max(values) <= _F32_MAX
    )


def _optional_number(ctx: _Context, meta: dict, name: str, sentinel: bool = False) -> float | None:
    value = meta.get(name)
    try:
        number = _number(value)
    except _NonFinite:
        ctx.note(name, f"expected a finite number, found {_describe(value)}; stored null")
        return None
    except (ValueError, TypeError):
        ctx.note(name, f"expected a number or null, found {_describe(value)}; stored null")
        return None
    if sentinel and number is not None and abs(number - _SENTINEL) < 1e-6:
        return None
    return number


def _optional_struct(
    ctx: _Context, meta: dict, name: str, column: str, keys: tuple[str, ...], list_order: bool = False
) -> dict | None:
    """A struct column from a JSON object; with ``list_order`` a list of ``len(keys)``
    numbers is also read, in ``keys`` order (head pose only: ``[yaw, pitch, roll]``).

    A key missing from the object is null in the struct (noted); an object with none of
    the keys (``{}``) makes the column null (noted)."""
    value = meta.get(name)
    if value is None:
        return None
    if list_order and isinstance(value, (list, tuple)) and len(value) == len(keys):
        value = dict(zip(keys, value, strict=False))
    if not isinstance(value, dict):
        ctx.note(column, f"expected an object with keys {', '.join(keys)}, found {_describe(value)}; stored null")
        return None
    # Fast path, taken by every well-formed file: the expected keys, plain finite numbers.
    fast = _FAST_STRUCT_KEYS[keys]
    if type(value) is dict and len(value) == len(keys) and _plain_finite(list(value.values())):
        try:
            plain = {fast[raw]: float(v) for raw, v in value.items()}
        except KeyError:
            pass
        else:
            if len(plain) == len(keys):
                return plain
    wanted = {_key(k): k for k in keys}
    struct: dict[str, float | None] = dict.fromkeys(keys)
    found: dict[str, Any] = {}
    for raw_key, raw_value in _items(value):
        target = wanted.get(_key(str(raw_key)))
        if target is None:
            ctx.note(column, f"unknown key {raw_key!r} ignored (expected {', '.join(keys)})")
            continue
        if target in found:
            if found[target] == raw_value:
                ctx.note(column, f"key {raw_key!r} given twice with the same value; read once")
                continue
            ctx.note(
                column,
                f"{target}: two different values ({_describe(found[target])} and {_describe(raw_value)}); stored null",
            )
            struct[target] = None
            continue
        found[target] = raw_value
        try:
            struct[target] = _number(raw_value)
        except _NonFinite:
            ctx.note(column, f"{raw_key}: expected a finite number, found {_describe(raw_value)}; stored null")
        except (ValueError, TypeError):
            ctx.note(column, f"{raw_key}: expected a number, found {_describe(raw_value)}; stored null")
    if not found:
        ctx.note(column, f"expected an object with keys {', '.join(keys)}, found {_describe(value)}; stored null")
        return None
    missing = [k for k in keys if k not in found]
    if missing:
        ctx.note(column, f"missing key(s) {', '.join(missing)} (expected {', '.join(keys)}); stored null for them")
    return struct


_PLAIN_NUMBER = frozenset((int, float))


#: struct keys -> {release spelling or schema spelling: schema key}, for the fast path.
_FAST_STRUCT_KEYS = {
    keys: {**{k: k for k in keys}, **{k.replace("_", " "): k for k in keys}} for keys in (GENDERS, RACES, POSE_ANGLES)
}


def _flat_numbers(value: Any) -> list[float | None]:
    """A flat list of numbers from a flat or one-level nested JSON list (None for null).

    Raises :class:`_NonFinite` for a non-finite number and ``ValueError`` for anything else
    that is not a number."""
    if not isinstance(value, (list, tuple)):
        raise ValueError
    if _plain_finite(value):
        return list(map(float, value))  # floats: Arrow refuses ints above 2**24 in a float32 column
    flat: list[float | None] = []
    for item in value:
        if isinstance(item, (list, tuple)):
            flat.extend(_number(v) for v in item)
        else:
            flat.append(_number(item))
    return flat


def _landmarks(ctx: _Context, meta: dict) -> np.ndarray | None:
    """68 x 2 float32 array (x, y per row) from the flat 136-number list, or None."""
    value = meta.get("landmarks")
    if value is None:
        return None
    # Fast path, taken by every well-formed file: 136 plain finite numbers.
    if type(value) is list and len(value) == 2 * NUM_LANDMARKS and _plain_finite(value):
        return np.asarray(value, dtype=np.float32).reshape(NUM_LANDMARKS, 2)
    try:
        flat = _flat_numbers(value)
    except _NonFinite:
        ctx.note(
            "landmarks",
            f"expected 136 finite numbers (68 x, y pairs), found a non-finite one in {_describe(value)}; stored null",
        )
        return None
    except (ValueError, TypeError):
        ctx.note("landmarks", f"expected 136 numbers (68 x, y pairs), found {_describe(value)}; stored null")
        return None
    if len(flat) != 2 * NUM_LANDMARKS or any(v is None for v in flat):
        ctx.note(
            "landmarks",
            f"expected 136 numbers (68 x, y pairs), found {len(flat)} values"
            + (" with nulls" if any(v is None for v in flat) else "")
            + "; stored null",
        )
        return None
    return np.asarray(flat, dtype=np.float32).reshape(NUM_LANDMARKS, 2)


def _landmarks_29(ctx: _Context, meta: dict) -> list[float] | None:
    value = meta.get("landmarks_29")
    if value is None:
        return None
    try:
        flat = _flat_numbers(value)
    except _NonFinite:
        ctx.note("landmarks_29", f"expected finite numbers, found a non-finite one in {_describe(value)}; stored null")
        return None
    except (ValueError, TypeError):
        ctx.note("landmarks_29", f"expected a list of numbers, found {_describe(value)}; stored null")
        return None
    numbers = [v for v in flat if v is not None]
    if len(numbers) != len(flat):
        ctx.note("landmarks_29", "expected a list of numbers, found nulls in it; stored null")
        return None
    return numbers


def _note_ranges(ctx: _Context, row: dict) -> None:
    """Note every finite value outside :data:`DOCUMENTED_RANGES` (the value is kept)."""
    for column, (low, high) in DOCUMENTED_RANGES.items():
        low, high, value = low - RANGE_SLACK, high + RANGE_SLACK, row[column]
        if value is None:
            continue
        if isinstance(value, dict):
            outside = {k: v for k, v in value.items() if v is not None and not low <= v <= high}
        elif isinstance(value, list):
            outside = {str(i): v for i, v in enumerate(value) if not low <= v <= high}
        else:
            outside = {} if low <= value <= high else {"": value}
        if outside:
            found = ", ".join(f"{k} {v:g}" if k else f"{v:g}" for k, v in outside.items())
            low, high = DOCUMENTED_RANGES[column]
            ctx.note(
                column, f"outside the documented range [{low:g}, {high:g}]: {found}; kept as released (check the file)"
            )


# ----------------------------------------------------------------------------- images

_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
_JPEG_SOS = b"\xff\xda"
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
)


def _image_kind(data: bytes) -> str | None:
    """The format of image bytes that are not a JPEG, from their signature (None if unknown)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return "HEIF/AVIF"
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    return None


def _check_image(data: bytes, check: CheckImages) -> tuple[str | None, str | None]:
    """``(problem, note)``: why these bytes are not a usable JPEG (or None), and a remark on
    a usable one (or None)."""
    if not data:
        return "image file is empty (0 bytes); re-extract it from the release zip", None
    if not data.startswith(_JPEG_SOI):
        kind = _image_kind(data)
        if kind:
            return (
                f"not a JPEG: the file holds a {kind} image although named .jpg; the image column holds "
                "the release's JPEG bytes and this package never re-encodes: re-extract it, or convert it to JPEG yourself",
                None,
            )
        return (
            f"not an image: expected a JPEG (starting FF D8 FF), found bytes {data[:8].hex(' ')}; re-extract it",
            None,
        )
    note = None
    if not data.endswith(_JPEG_EOI):
        # The end-of-image marker is the last FF D9 after the last start-of-scan FF DA (FF D9
        # cannot occur inside scan data; one before the scan belongs to an embedded thumbnail);
        # anything after it is padding that decoders ignore.
        eoi = data.rfind(_JPEG_EOI)
        sos = data.rfind(_JPEG_SOS)
        if sos < 0 or eoi < sos:
            return (
                f"JPEG cut short: no end-of-image marker (FF D9) after its image data ({len(data)} bytes); "
                "the file was truncated (an interrupted download or extraction): re-extract it",
                None,
            )
        trailing = data[eoi + 2 :]
        if trailing.strip(b"\x00"):
            note = f"{len(trailing)} bytes after the JPEG end-of-image marker; kept as released (decoders ignore them)"
    if check == "decode":
        problem = _decode_problem(data)
        if problem:
            return problem, None
    return None, note


_OBJECT_AT = re.compile(r" <[\w.]+ object at 0x[0-9a-fA-F]+>")


def _decode_problem(
    data: bytes, kind: str = "JPEG", size_hint: str = " (AffectNet+ crops are 224 x 224)"
) -> str | None:
    """Why ``data`` does not decode (a full Pillow decode, bomb-checked), or ``None``; the one
    check every release's reader uses (``kind`` and ``size_hint`` word it for the release)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return (
            f"image too large to decode safely: {exc}{size_hint}; "
            "not decoded: re-extract it, or remove it if it is not from the release"
        )
    except Exception as exc:  # PIL raises many types for garbage (OSError, SyntaxError, struct.error, ...)
        # "cannot identify image file <_io.BytesIO object at 0x...>": the address left out, same input same words
        said = _OBJECT_AT.sub("", str(exc))
        return f"{kind} does not decode: {type(exc).__name__}: {said}; re-extract it"
    return None


# ----------------------------------------------------------------------------- reading


try:  # a C parser, about 8x faster than json with hooks; the tolerant path below stays the reference
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency; the loading script may run without it
    _fast_loads = None  # type: ignore[assignment]

#: bytes -> b"0" for an ASCII digit, b" " otherwise: ``_LONG_DIGITS in data.translate(_DIGITS)``
#: finds a run of 19 digits, which an integer beyond 64 bits needs (orjson reads those as floats).
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_DIGITS = b"0" * 19
_FAST_MAX_BRACKETS = 100  # an AffectNet+ annotation has 5 objects and 3 lists


def _objects_and_keys(value: Any) -> tuple[int, int]:
    """Objects and keys in ``value``, not looking inside lists."""
    objects, keys = 1, len(value)
    for item in value.values():
        if type(item) is dict:
            inner = _objects_and_keys(item)
            objects, keys = objects + inner[0], keys + inner[1]
    return objects, keys


def _parse_fast(data: bytes) -> Any:
    """``data`` parsed by orjson when the result is provably what :func:`_parse_json`'s
    tolerant path gives, else ``None`` (the caller then takes that path).

    orjson keeps the last of a repeated key silently, reads integers beyond 64 bits as
    floats, and refuses a BOM, UTF-16, ``NaN``/``Infinity``, ``1e400`` and lone surrogates.
    The refusals fall back by raising; the rest is ruled out from the bytes: every object of
    the text has its ``{`` and every key its ``:`` outside strings, so when the bytes hold no
    more ``{`` than the parsed document has objects outside lists, and no more ``:`` than it
    has keys, no object sits in a list and no key was dropped; no run of 19 digits means
    no integer that orjson would turn into a float; and at most :data:`_FAST_MAX_BRACKETS`
    brackets mean no nesting deep enough for the reference path's "nested too deeply"
    (orjson reads 1,000 levels).
    """
    if _fast_loads is None:
        return None
    try:
        document = _fast_loads(data)
    except ValueError:  # orjson.JSONDecodeError
        return None
    if type(document) is not dict or _LONG_DIGITS in data.translate(_DIGITS):
        return None
    objects, keys = _objects_and_keys(document)
    if data.count(b"{") != objects or data.count(b":") != keys or data.count(b"[") + objects > _FAST_MAX_BRACKETS:
        return None
    return document


def _parse_json(data: bytes) -> Any:
    document = _parse_fast(data)
    if document is not None:
        return document
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8")
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        text = data.decode("utf-8")
    return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)


def _read_file(path, limit: int) -> tuple[bytes | None, int]:
    """The file's bytes and size; ``None`` for the bytes when it is larger than ``limit``.
    (``os.read`` into one buffer of the file's size: no buffered file object, no copy.)"""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            return None, size
        data = os.read(fd, size + 1)
        if len(data) != size:  # a short read, or the file changed since fstat: read on to its end
            chunks = [data]
            while chunks[-1]:
                chunks.append(os.read(fd, 1 << 20))
            data = b"".join(chunks)
        return data, len(data)
    finally:
        os.close(fd)


def _is_empty(value: Any) -> bool:
    """``null``, ``{}``, ``[]`` or ``""``: a value that gives way to a non-empty one of the same key."""
    return value is None or (isinstance(value, (dict, list, str)) and not value)


def _normalize_keys(
    ctx: _Context, obj: dict, known: dict[str, str], where: str, required: frozenset = frozenset()
) -> dict:
    """``obj``'s keys mapped to schema names; unknown keys noted and dropped; a name given
    twice resolved as the module docstring says (``required`` names: two different values
    raise :class:`_Bad`)."""
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for raw_key, value in _items(obj):
        name = known.get(_key(str(raw_key)))
        if name is None:
            ctx.note(where, f"unknown key {raw_key!r} ignored")
            continue
        if name not in spelled:
            spelled[name] = raw_key
            out[name] = value
            continue
        first_key, first = spelled[name], out.get(name)
        twice = (
            f"key {first_key!r} given twice"
            if first_key == raw_key
            else f"{first_key!r} and {raw_key!r} both given (one key)"
        )
        if first == value:
            ctx.note(where, f"{twice} with the same value; read once")
        elif _is_empty(value):
            ctx.note(where, f"{twice}; the empty one ({_describe(value)}) was ignored")
        elif _is_empty(first):
            ctx.note(where, f"{twice}; the empty one ({_describe(first)}) was ignored")
            out[name] = value
        elif isinstance(first, dict) and isinstance(value, dict):
            merged = _Repeated({**first, **value})
            merged.pairs = [*_items(first), *_items(value)]
            out[name] = merged
            ctx.note(where, f"{twice}; the two objects were merged")
        elif name in required:
            raise _Bad(
                f"{first_key}: two different values ({_describe(first)} and {_describe(value)} under {raw_key!r}); "
                "keep one of them in the file"
            )
        else:
            ctx.note(where, f"{twice} with different values ({_describe(first)}, {_describe(value)}); stored null")
            out[name] = None
    return out


def read_record(files: RecordFiles, check_images: CheckImages = "markers") -> ReadResult:
    """Read one record. Never raises for bad data: returns a :class:`ReadResult`.

    ``row`` holds the :data:`FEATURES` columns with ``image`` as ``{"bytes", "path"}``
    (the file's bytes unchanged, ``path`` its file name) and ``landmarks`` as a
    ``68 x 2`` float32 numpy array (or None); every other value is a plain Python value.
    Only ``MemoryError`` and ``KeyboardInterrupt``-like exceptions escape; an error that is
    a bug of this module makes the record bad with reason class :data:`UNEXPECTED`.
    """
    return _guarded(files, _read_record, files, check_images)


def _guarded(files: RecordFiles, read: Any, *args: Any) -> ReadResult:
    """``read(*args)``, a step of reading ``files``, with :func:`read_record`'s promise: a
    record too deeply nested, or one that hits a bug here, comes back as a bad record."""
    try:
        return read(*args)
    except RecursionError:
        return _bad_result(
            files,
            files.annotation or files.path,
            "annotation nested too deeply: its lists or objects nest hundreds of levels deep, which no "
            "AffectNet+ annotation does; re-extract it",
        )
    except MemoryError:
        raise
    except Exception as exc:
        logger.debug("unexpected error reading %s", files.path, exc_info=True)
        return _bad_result(
            files,
            files.path,
            f"{UNEXPECTED}: {type(exc).__name__}: {exc}; the record is left out so the run goes on. "
            "Please report this file to the affectnetplus-hf maintainers",
        )


def _bad_result(files: RecordFiles, path: Any, reason: str) -> ReadResult:
    return ReadResult(bad=BadRecord(files.part, files.image_id, str(path), reason))


def _read_record(files: RecordFiles, check_images: CheckImages) -> ReadResult:
    def bad(path: Any, reason: str) -> ReadResult:
        return _bad_result(files, path, reason)

    if files.duplicates:
        others = ", ".join(p.name for p in files.duplicates)
        return bad(files.path, f"more than one file for id {files.image_id!r} ({others} as well); keep one")
    if files.image is None:
        if files.unreadable:
            return bad(files.annotation, f"image missing: {files.unreadable}")
        return bad(files.annotation, "image missing: no images/<id>.jpg for this annotation; re-extract the image")
    if files.annotation is None:
        if files.unreadable:
            return bad(files.image, f"annotation missing: {files.unreadable}")
        return bad(files.image, "annotation missing: no annotations/<id>.json for this image; re-extract it")
    path = files.image
    try:
        image_bytes, size = _read_file(path, MAX_IMAGE_BYTES)
        if image_bytes is None:
            return bad(
                path,
                f"image file too large: {size} bytes (AffectNet+ images are 224 x 224 JPEGs of about 8 KB); not read: re-extract it",
            )
        path = files.annotation
        json_bytes, size = _read_file(path, MAX_ANNOTATION_BYTES)
        if json_bytes is None:
            return bad(
                path,
                f"annotation file too large: {size} bytes (AffectNet+ annotations are about 2 KB); not read: re-extract it",
            )
    except OSError as exc:
        return bad(
            exc.filename or path,
            f"cannot read file: {exc.strerror or exc}; check the file's permissions or re-extract it",
        )

    return _from_bytes(files, image_bytes, json_bytes, _check_image(image_bytes, check_images))


def _from_bytes(
    files: RecordFiles, image_bytes: bytes, json_bytes: bytes, checked: tuple[str | None, str | None]
) -> ReadResult:
    """The rest of :func:`_read_record`, from the files' bytes and :func:`_check_image`'s
    verdict on the image."""
    ctx = _Context(files)

    def bad(path: Any, reason: str) -> ReadResult:
        return _bad_result(files, path, reason)

    image = files.image
    assert image is not None  # a record with both files (see _read_record)
    problem, image_note = checked
    if problem:
        return bad(image, problem)
    if not json_bytes.strip():
        spaces = f", {len(json_bytes)} bytes of white space" if json_bytes else ""
        return bad(
            files.annotation,
            f"annotation file is empty (no JSON{spaces}); expected a JSON object: re-extract it from the release zip",
        )
    try:
        document = _parse_json(json_bytes)
    except (UnicodeDecodeError, ValueError) as exc:
        size = len(json_bytes)
        if "integer string conversion" in str(exc):  # Python's limit on digits (sys.int_max_str_digits)
            return bad(
                files.annotation,
                f"annotation holds an integer of thousands of digits, which no AffectNet+ annotation does (the file has {size} bytes); re-extract it",
            )
        return bad(files.annotation, f"annotation is not valid JSON: {exc} (the file has {size} bytes); re-extract it")
    if not isinstance(document, dict):
        kind = _JSON_KINDS.get(type(document), type(document).__name__)
        return bad(
            files.annotation,
            f"annotation is not a JSON object: expected {{...}}, found {kind} {_describe(document)}; re-extract it",
        )

    try:
        row = _fast_row(files, document, image_bytes, image) or _row(ctx, document, image_bytes, image)
    except _Bad as exc:
        return bad(files.annotation, str(exc))
    if image_note:
        ctx.notes.insert(0, Note(files.part, files.image_id, str(image), "image", image_note))
    return ReadResult(row=row, notes=ctx.notes)


def _label_code(ctx: _Context, raw: Any, names: dict[str, int], count: int, column: str, expected: str) -> int | None:
    try:
        return _code(raw, names, count)
    except _NonFinite:
        ctx.note(column, f"expected {expected}, found {_describe(raw)} (not a finite number); stored null")
        return None
    except (ValueError, TypeError):
        raise _Bad(
            f"{column.replace('_', '-')}: expected {expected}, found {_describe(raw)}; fix or re-extract the file"
        ) from None


def _row(ctx: _Context, document: dict, image_bytes: bytes, image: Path) -> dict:
    files = ctx.files
    top = _normalize_keys(ctx, document, _TOP_KEYS, "annotation", _TOP_REQUIRED)

    soft = top.get("soft_label")
    try:
        soft_label = _flat_numbers(soft)
    except _NonFinite:
        raise _Bad(
            f"soft-label: expected {NUM_SOFT_CLASSES} finite numbers, found {_describe(soft)}; fix or re-extract the file"
        ) from None
    except (ValueError, TypeError):
        raise _Bad(
            f"soft-label: expected {NUM_SOFT_CLASSES} numbers, found {_describe(soft)}; fix or re-extract the file"
        ) from None
    if len(soft_label) != NUM_SOFT_CLASSES or any(v is None for v in soft_label):
        raise _Bad(
            f"soft-label: expected {NUM_SOFT_CLASSES} numbers, found {_describe(soft)}; fix or re-extract the file"
        )

    human_label = _label_code(
        ctx,
        top.get("human_label"),
        _EXPRESSION_CODES,
        len(EXPRESSIONS),
        "human_label",
        f"a code 0..{len(EXPRESSIONS) - 1} or null",
    )
    if human_label is None and files.part != UNLABELED_PART:
        ctx.note("human_label", "human-label is null in a human-annotated part; stored null")
    subset = _label_code(
        ctx,
        top.get("subset"),
        _SUBSET_CODES,
        len(SUBSETS),
        "subset",
        "a subset code 0..2 (0 easy, 1 challenging, 2 difficult) or null",
    )

    meta_raw = top.get("meta")
    if meta_raw is None:
        meta: dict = {}
    elif isinstance(meta_raw, dict):
        meta = _normalize_keys(ctx, meta_raw, _META_KEYS, "meta-data")
    else:
        ctx.note("meta-data", f"expected an object, found {_describe(meta_raw)}; metadata stored null")
        meta = {}

    row = {
        "image": {"bytes": image_bytes, "path": image.name},
        "image_id": files.image_id,
        "human_label": human_label,
        "soft_label": soft_label,
        "subset": subset,
        "valence": _optional_number(ctx, meta, "valence", sentinel=True),
        "arousal": _optional_number(ctx, meta, "arousal", sentinel=True),
        "age": _optional_number(ctx, meta, "age"),
        "gender": _optional_struct(ctx, meta, "gender", "gender", GENDERS),
        "race": _optional_struct(ctx, meta, "race", "race", RACES),
        "head_pose": _optional_struct(ctx, meta, "pose", "head_pose", POSE_ANGLES, list_order=True),
        "landmarks": _landmarks(ctx, meta),
        "landmarks_29": _landmarks_29(ctx, meta),
        "face_box": None,  # AffectNet+ images are face crops: no box in a full image
        "auto_label": None,  # AffectNet+ has no model-predicted expression column
    }
    _note_ranges(ctx, row)
    return row


#: The release's own spellings, the only ones :func:`_fast_row` reads (meta key -> column).
_FAST_TOP = frozenset(("human-label", "soft-label", "subset", "meta-data"))
_FAST_META = {
    "age": "age",
    "valence": "valence",
    "arousal": "arousal",
    "gender": "gender",
    "race": "race",
    "pose": "head_pose",
    "landmark-68": "landmarks",
    "landmark-29": "landmarks_29",
}
_FAST_RANGES = {column: (low - RANGE_SLACK, high + RANGE_SLACK) for column, (low, high) in DOCUMENTED_RANGES.items()}


def _fast_number(value: Any, column: str) -> float | None:
    """A plain finite number inside its documented range (or null) as :func:`_row` stores it;
    raises ``_Bad`` (meaning: not this path) for anything :func:`_row` would note."""
    if value is None:
        return None
    if type(value) is not float and type(value) is not int:
        raise _Bad
    number = float(value)
    if column in ("valence", "arousal") and abs(number - _SENTINEL) < 1e-6:
        return None
    low, high = _FAST_RANGES[column]
    if not low <= number <= high:  # false for NaN and the infinities too
        raise _Bad
    return number


def _fast_struct(value: Any, keys: tuple[str, ...], column: str) -> dict | None:
    if value is None:
        return None
    if type(value) is not dict or len(value) != len(keys):
        raise _Bad
    fast = _FAST_STRUCT_KEYS[keys]
    low, high = _FAST_RANGES.get(column, (-_F32_MAX, _F32_MAX))
    struct = {}
    for raw, v in value.items():
        if (type(v) is not float and type(v) is not int) or not low <= v <= high:  # false for NaN too
            raise _Bad
        struct[fast[raw]] = float(v)  # KeyError: an unknown key
    if len(struct) != len(keys):
        raise _Bad
    return struct


def _fast_row(files: RecordFiles, document: dict, image_bytes: bytes, image: Path) -> dict | None:
    """The row :func:`_row` makes of a well-formed annotation in the release's own spelling,
    made without its per-key normalisation; ``None`` when :func:`_row` could note anything
    or find the record bad (then it runs). ``tests/test_reader_fast_paths.py`` holds both
    to the same rows."""
    try:
        if type(document) is not dict or document.keys() != _FAST_TOP:
            return None
        meta = document["meta-data"]
        if type(meta) is not dict:
            return None
        fields = {_FAST_META[key]: value for key, value in meta.items()}  # KeyError: a key spelled otherwise
        human_label, soft, subset = document["human-label"], document["soft-label"], document["subset"]
        if not (type(human_label) is int and 0 <= human_label < len(EXPRESSIONS)) and not (
            human_label is None and files.part == UNLABELED_PART
        ):
            return None
        if not (subset is None or (type(subset) is int and 0 <= subset < len(SUBSETS))):
            return None
        if type(soft) is not list or len(soft) != NUM_SOFT_CLASSES or not _plain_finite(soft):
            return None
        low, high = _FAST_RANGES["soft_label"]
        if not low <= min(soft) <= max(soft) <= high:
            return None
        landmarks = fields.get("landmarks")
        if landmarks is not None:
            if type(landmarks) is not list or len(landmarks) != 2 * NUM_LANDMARKS or not _plain_finite(landmarks):
                return None
            landmarks = np.asarray(landmarks, dtype=np.float32).reshape(NUM_LANDMARKS, 2)
        landmarks_29 = fields.get("landmarks_29")
        if landmarks_29 is not None:
            if type(landmarks_29) is not list or not _plain_finite(landmarks_29):
                return None
            landmarks_29 = list(map(float, landmarks_29))
        pose = fields.get("head_pose")
        if type(pose) is list and len(pose) == len(POSE_ANGLES):
            pose = dict(zip(POSE_ANGLES, pose, strict=False))
        return {
            "image": {"bytes": image_bytes, "path": image.name},
            "image_id": files.image_id,
            "human_label": human_label,
            "soft_label": list(map(float, soft)),
            "subset": subset,
            "valence": _fast_number(fields.get("valence"), "valence"),
            "arousal": _fast_number(fields.get("arousal"), "arousal"),
            "age": _fast_number(fields.get("age"), "age"),
            "gender": _fast_struct(fields.get("gender"), GENDERS, "gender"),
            "race": _fast_struct(fields.get("race"), RACES, "race"),
            "head_pose": _fast_struct(pose, POSE_ANGLES, "head_pose"),
            "landmarks": landmarks,
            "landmarks_29": landmarks_29,
            "face_box": None,
            "auto_label": None,
        }
    except (_Bad, KeyError, OverflowError):  # OverflowError: float() of an integer of hundreds of digits
        return None


def iter_rows(
    records: Iterable[RecordFiles],
    on_bad: OnBad = "skip",
    check_images: CheckImages = "markers",
) -> Iterator[ReadResult]:
    """Read records in order. With ``on_bad="error"`` the first bad record raises
    :class:`~affectnetplus_hf.errors.BadRecordError`; otherwise bad records are yielded
    as results whose ``bad`` is set, for the caller to report."""
    check_choice("on_bad", on_bad, OnBad)
    check_choice("check_images", check_images, CheckImages)
    for files in records:
        result = read_record(files, check_images)
        if result.bad is not None and on_bad == "error":
            raise result.bad.error()
        yield result


# ----------------------------------------------------------------------------- batches


@dataclass
class ReadBatch:
    """Records read together by :func:`read_batches`."""

    #: the good records' rows, in record order: a ``pyarrow.Table`` of every :data:`FEATURES`
    #: column in schema order, with the schema's Arrow types
    table: Any
    #: the bad records, and the notes on good ones, in record order
    bad: list[BadRecord]
    notes: list[Note]
    #: records read: good and bad
    read: int


def read_batches(
    records: Iterable[RecordFiles],
    on_bad: OnBad = "skip",
    check_images: CheckImages = "markers",
    batch_size: int = 500,
) -> Iterator[ReadBatch]:
    """:func:`iter_rows` ``batch_size`` records at a time, each batch's rows as one Arrow
    table: what the export writes.

    A well-formed annotation in the release's own spelling is read straight into columns,
    with no row of its own and no ``Path`` (a :class:`~.layout.RecordList` hands out its
    paths as text), and its numbers are converted and checked for the whole batch at once
    (:func:`~affectnetplus_hf.core.columns.arrow_table`). Any other record, and one whose
    numbers are not all plain and within range, is read by :func:`read_record`'s path. The
    rows, notes and bad records are the ones :func:`iter_rows` gives
    (``tests/test_reader_batches.py`` holds them equal). With ``on_bad="error"`` the first
    bad record raises :class:`~affectnetplus_hf.errors.BadRecordError`.
    """
    from .layout import RecordList

    check_choice("on_bad", on_bad, OnBad)
    check_choice("check_images", check_images, CheckImages)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    part = records.part if isinstance(records, RecordList) else ""
    items: Iterable[Any] = records.paths() if isinstance(records, RecordList) else records
    batch = _Batch(check_images)
    for item in items:
        if type(item) is tuple:
            image_id, image, annotation = item
            batch.add(part, image_id, image, annotation, image_id + ".jpg", None)
        elif item.duplicates or item.image is None or item.annotation is None:
            batch.add_result(read_record(item, check_images))
        else:
            batch.add(item.part, item.image_id, str(item.image), str(item.annotation), item.image.name, item)
        if batch.size >= batch_size:
            yield batch.finish(on_bad)
            batch = _Batch(check_images)
    if batch.size:
        yield batch.finish(on_bad)


def table_of_rows(rows: list[dict]) -> Any:
    """Rows as :func:`read_record` gives them -> the ``pyarrow.Table`` :func:`read_batches` gives."""
    from ..core.columns import _arrow_schema, arrow_table, rows_to_arrow
    from ..core.schema import COLUMN_NAMES

    if not rows:
        return arrow_table({}, 0)
    import pyarrow as pa

    table = rows_to_arrow(rows, COLUMN_NAMES)
    return pa.Table.from_arrays(table.columns, schema=_arrow_schema())


#: The release's spelling of the struct columns' keys (schema order), and a struct's values read
#: in that order; a null struct is one tuple of nulls per column, told apart by identity.
_GENDER_KEYS, _RACE_KEYS, _POSE_KEYS = (
    frozenset(GENDERS),
    frozenset(("asian", "indian", "black", "white", "middle eastern", "latino hispanic")),
    frozenset(POSE_ANGLES),
)
_GENDER_VALUES = operator.itemgetter(*GENDERS)
_RACE_VALUES = operator.itemgetter("asian", "indian", "black", "white", "middle eastern", "latino hispanic")
_POSE_VALUES = operator.itemgetter(*POSE_ANGLES)
_NULL_GENDER, _NULL_RACE, _NULL_POSE = ((None,) * len(GENDERS), (None,) * len(RACES), (None,) * len(POSE_ANGLES))
_META_NAMES = frozenset(_FAST_META)


class _Batch:
    """The records of one :func:`read_batches` batch as they are read: the columns of those
    read straight into columns, and the results of the others by position."""

    def __init__(self, check_images: CheckImages):
        self.check_images = check_images
        self.size = 0
        self.results: dict[int, ReadResult] = {}  # position -> result, for records not in the columns
        # the records in the columns: their positions, and what their row is made from should their numbers be off
        self.positions: list[int] = []
        self.sources: list[tuple] = []
        self.image_notes: dict[int, Note] = {}
        self.rows: list[tuple] = []  # their values, one tuple each (see _columns), made columns in _arrays

    def add_result(self, result: ReadResult) -> None:
        self.results[self.size] = result
        self.size += 1

    def add(self, part: str, image_id: str, image: str, annotation: str, name: str, files: RecordFiles | None) -> None:
        """Read one record whose two files were listed; into the columns when it can be."""
        position = self.size
        self.size += 1
        try:
            image_bytes, _ = _read_file(image, MAX_IMAGE_BYTES)
            json_bytes, _ = _read_file(annotation, MAX_ANNOTATION_BYTES)
            if image_bytes is None or json_bytes is None:
                raise _Bad  # too large: read_record words it
            checked = _check_image(image_bytes, self.check_images)
        except Exception:  # noqa: BLE001 - read_record reads it again and says what is wrong
            files = files or RecordFiles(part, image_id, Path(image), Path(annotation))
            self.results[position] = read_record(files, self.check_images)
            return
        document = None
        if not checked[0] and _fast_loads is not None:
            try:
                document = _fast_loads(json_bytes)
            except ValueError:  # orjson.JSONDecodeError: the tolerant parser decides
                pass
        source = (part, image_id, image, annotation, files, image_bytes, json_bytes, checked)
        if type(document) is not dict or not self._columns(part, image_id, name, image_bytes, json_bytes, document):
            self.results[position] = self._read(source)
            return
        self.positions.append(position)
        self.sources.append(source)
        if checked[1]:
            self.image_notes[position] = Note(part, image_id, image, "image", checked[1])

    def _columns(self, part: str, image_id: str, name: str, image: bytes, data: bytes, document: dict) -> bool:
        """Add the record to the columns when orjson's ``document`` is what the tolerant
        parser gives (see :func:`_parse_fast`), has exactly the release's keys, and every
        value is a number, or null where :func:`_fast_row` takes null, in lists and objects
        of the right shape (whether the numbers are plain and within range is checked for
        the batch); ``False`` (nothing added) otherwise.

        The bytes rule out what the document cannot show. As many ``{`` as it has objects,
        ``:`` as it has keys and ``"`` as twice its keys: no key dropped (given twice), no
        object elsewhere, no string value; as many ``[`` as it has lists where they belong:
        none elsewhere (in a list, as a number); no ``true``/``false``: no boolean; no run of
        19 digits: no integer orjson reads as a float."""
        if document.keys() != _FAST_TOP:
            return False
        meta = document["meta-data"]
        if type(meta) is not dict or not meta.keys() <= _META_NAMES:
            return False
        human, soft, subset = document["human-label"], document["soft-label"], document["subset"]
        if type(human) is int and 0 <= human < len(EXPRESSIONS):
            pass
        elif human is None and part == UNLABELED_PART:
            human = -1
        else:
            return False
        if subset is None:
            subset = -1
        elif not (type(subset) is int and 0 <= subset < len(SUBSETS)):
            return False
        if type(soft) is not list or len(soft) != NUM_SOFT_CLASSES:
            return False
        landmarks, landmarks_29 = meta.get("landmark-68"), meta.get("landmark-29")
        if landmarks is not None and (type(landmarks) is not list or len(landmarks) != 2 * NUM_LANDMARKS):
            return False
        if landmarks_29 is not None and (type(landmarks_29) is not list or not landmarks_29):
            return False
        lists = 1 + (landmarks is not None) + (landmarks_29 is not None)
        objects, keys = 2, len(_FAST_TOP) + len(meta)
        gender, race, pose = meta.get("gender"), meta.get("race"), meta.get("pose")
        if gender is None:
            gender = _NULL_GENDER
        elif type(gender) is dict and gender.keys() == _GENDER_KEYS:
            objects, keys, gender = objects + 1, keys + len(GENDERS), _GENDER_VALUES(gender)
        else:
            return False
        if race is None:
            race = _NULL_RACE
        elif type(race) is dict and race.keys() == _RACE_KEYS:
            objects, keys, race = objects + 1, keys + len(RACES), _RACE_VALUES(race)
        else:
            return False
        if pose is None:
            pose = _NULL_POSE
        elif type(pose) is dict and pose.keys() == _POSE_KEYS:
            objects, keys, pose = objects + 1, keys + len(POSE_ANGLES), _POSE_VALUES(pose)
        elif type(pose) is list and len(pose) == len(POSE_ANGLES):
            lists += 1
        else:
            return False
        if (
            data.count(b"{") != objects
            or data.count(b":") != keys
            or data.count(b'"') != 2 * keys
            or data.count(b"[") != lists
            or b"true" in data
            or b"false" in data
            or _LONG_DIGITS in data.translate(_DIGITS)
        ):
            return False
        self.rows.append(
            (
                image_id,
                image,
                name,
                human,
                subset,
                soft,
                landmarks,
                landmarks_29,
                gender,
                race,
                pose,
                meta.get("age"),
                meta.get("valence"),
                meta.get("arousal"),
            )
        )
        return True

    def _read(self, source: tuple) -> ReadResult:
        """The record's result by :func:`read_record`'s path, from the bytes already read."""
        part, image_id, image, annotation, files, image_bytes, json_bytes, checked = source
        files = files or RecordFiles(part, image_id, Path(image), Path(annotation))
        return _guarded(files, _from_bytes, files, image_bytes, json_bytes, checked)

    def finish(self, on_bad: OnBad) -> ReadBatch:
        """The batch's table, bad records and notes (the first bad record raised, with ``on_bad="error"``)."""
        import pyarrow as pa

        from ..core.columns import arrow_table

        fast = None
        if self.positions:
            try:
                columns, ok = self._arrays()
            except (TypeError, ValueError, OverflowError):  # a number NumPy does not take: read each record alone
                columns, ok = {}, np.zeros(len(self.positions), dtype=bool)
            for index in np.flatnonzero(~ok):
                position = self.positions[index]
                self.image_notes.pop(position, None)
                self.results[position] = self._read(self.sources[index])
            if ok.all():
                fast = arrow_table(columns, len(ok))
            elif ok.any():
                fast = arrow_table(_rows_where(columns, ok), int(ok.sum()))
        kept = [p for p in self.positions if p not in self.results]
        slow = sorted(p for p, result in self.results.items() if result.row is not None)
        if not slow:
            table = fast if fast is not None else table_of_rows([])
        else:
            rows = table_of_rows([self.results[p].row for p in slow])  # type: ignore[misc]
            table = rows if fast is None else pa.concat_tables([fast, rows])
            if kept:
                table = table.take(np.argsort(np.array(kept + slow), kind="stable"))
        bad: list[BadRecord] = []
        notes: list[Note] = []
        for position in range(self.size):
            result = self.results.get(position)
            if result is None:
                note = self.image_notes.get(position)
                if note is not None:
                    notes.append(note)
                continue
            notes += result.notes
            if result.bad is not None:
                if on_bad == "error":
                    raise result.bad.error()
                bad.append(result.bad)
        return ReadBatch(table, bad, notes, self.size)

    def _arrays(self) -> tuple[dict[str, Any], np.ndarray]:
        """The columns in :func:`~affectnetplus_hf.core.columns.arrow_table`'s forms, and which
        rows :func:`_fast_row` would make as they are: every number plain, finite in float32
        and within its documented range (:data:`_FAST_RANGES`; the valence/arousal sentinel
        is null). ``TypeError``/``ValueError`` for a value NumPy does not read as a number."""
        f64 = np.float64
        size = len(self.positions)
        ids, images, names, human, subset, soft_lists, landmarks, landmarks_29, *structs, age, valence, arousal = map(
            list, zip(*self.rows, strict=True)
        )
        soft = np.array(soft_lists, dtype=f64)
        low, high = _FAST_RANGES["soft_label"]
        ok = np.asarray(((soft >= low) & (soft <= high)).all(axis=1))
        columns: dict[str, Any] = {
            "image": (images, names),
            "image_id": ids,
            "human_label": human,
            "subset": subset,
            "soft_label": (soft, np.zeros(size, dtype=bool)),
        }
        points = np.full((size, NUM_LANDMARKS, 2), np.nan)
        null = np.array([v is None for v in landmarks], dtype=bool)
        if not null.all():
            present = np.array([v for v in landmarks if v is not None], dtype=f64)
            ok[~null] &= (np.abs(present) <= _F32_MAX).all(axis=1)
            points[~null] = present.reshape(-1, NUM_LANDMARKS, 2)
        columns["landmarks"] = (points, null)
        null = np.array([v is None for v in landmarks_29], dtype=bool)
        lengths = np.array([0 if v is None else len(v) for v in landmarks_29], dtype=np.int64)
        flat = np.array(list(itertools.chain.from_iterable(v for v in landmarks_29 if v is not None)), dtype=f64)
        if flat.size:  # rows that are not null have a value each, so their starts are distinct
            off = np.add.reduceat((~(np.abs(flat) <= _F32_MAX)).astype(np.int64), (np.cumsum(lengths) - lengths)[~null])
            ok[~null] &= off == 0
        columns["landmarks_29"] = (flat, lengths, null)
        for column, none, values in zip(
            ("gender", "race", "head_pose"), (_NULL_GENDER, _NULL_RACE, _NULL_POSE), structs, strict=True
        ):
            array = np.array(values, dtype=f64)  # a null member -> NaN, outside every range
            null = np.array([v is none for v in values], dtype=bool)
            low, high = _FAST_RANGES.get(column, (-_F32_MAX, _F32_MAX))
            ok &= null | ((array >= low) & (array <= high)).all(axis=1)
            columns[column] = (array, null)
        for column, values in (("valence", valence), ("arousal", arousal), ("age", age)):
            array = np.array(values, dtype=f64)  # null -> NaN (JSON has no NaN the parser takes)
            if column != "age":
                array[np.abs(array - _SENTINEL) < 1e-6] = np.nan
            low, high = _FAST_RANGES[column]
            ok &= np.isnan(array) | ((array >= low) & (array <= high))
            columns[column] = array
        return columns, ok


def _rows_where(columns: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
    """The rows ``keep`` of :meth:`_Batch._arrays`' columns."""

    def take(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value[keep]
        return list(itertools.compress(value, keep))

    out: dict[str, Any] = {}
    for name, value in columns.items():
        if name == "landmarks_29":
            flat, lengths, null = value
            starts = np.cumsum(lengths) - lengths
            flat = np.concatenate(
                [flat[s : s + n] for s, n, k in zip(starts, lengths, keep, strict=True) if k] or [flat[:0]]
            )
            out[name] = (flat, lengths[keep], null[keep])
        elif isinstance(value, tuple):
            out[name] = tuple(take(v) for v in value)
        else:
            out[name] = take(value)
    return out
