"""Read one AffectNet+ record (an image and its JSON) into a row of :data:`FEATURES` columns.

This is the only parser of the release's files: the builder, the export, ``verify``,
``stats`` over a raw release and the loading script all call :func:`read_record` or
:func:`iter_rows`.

What is tolerated, and how (see ``shared/affectnetplus-format.md`` for the facts):

* JSON with a UTF-8 BOM, UTF-16 with a BOM, CRLF line ends;
* key spellings: keys match case-insensitively with space, ``-`` and ``_`` ignored, so
  ``meta-data``/``Metadata`` and ``middle eastern``/``middle_eastern`` are the same key;
* numbers: ints where floats are expected, numeric strings, ``null``; ``NaN`` becomes null;
  the valence/arousal sentinel ``-2`` becomes null;
* optional metadata (age, gender, race, pose, landmarks, valence, arousal) that is missing
  becomes null. Present but of an unexpected shape, it becomes null *and* a
  :class:`Note` names the file, the field and what was found, so nothing disappears
  without a trace. Keys the schema does not know are noted the same way.

What makes a record *bad* (a :class:`BadRecord`, skipped and reported, or raised with
``on_bad="error"``): no image, no annotation, two files for one stem, an empty or
truncated JPEG (no end-of-image marker), an image that is neither JPEG nor another format
PIL recognises, unparseable JSON or JSON that is not an object, a soft label that is not 8
numbers, a human label or subset outside its codes.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import BadRecordError
from .layout import RecordFiles
from .schema import EXPRESSIONS, GENDERS, NUM_LANDMARKS, NUM_SOFT_CLASSES, POSE_ANGLES, RACES, SUBSETS

__all__ = [
    "BadRecord",
    "reason_class",
    "Note",
    "ReadResult",
    "iter_rows",
    "read_record",
]

OnBad = Literal["skip", "error"]
CheckImages = Literal["markers", "decode"]

_SENTINEL = -2.0
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
    """The kind of a bad-record reason, for counting: its text before the first ':' or ';'
    (reasons are written ``"<kind>: <details>; <what to do>"``)."""
    return reason.split(":", 1)[0].split(";", 1)[0].strip()


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be read whole: it is not written, it is reported."""

    part: str
    image_id: str
    path: str
    reason: str

    def to_report(self) -> dict:
        return {"kind": "bad_record", "part": self.part, "image_id": self.image_id, "path": self.path, "reason": self.reason}

    def error(self) -> BadRecordError:
        return BadRecordError(self.path, self.reason)


@dataclass(frozen=True)
class Note:
    """Something in a written record that was not carried over as found (the record is kept)."""

    part: str
    image_id: str
    path: str
    field: str
    reason: str

    def to_report(self) -> dict:
        return {
            "kind": "note",
            "part": self.part,
            "image_id": self.image_id,
            "path": self.path,
            "field": self.field,
            "reason": self.reason,
        }


@dataclass
class ReadResult:
    """The outcome of reading one record: a row or a bad record, plus notes."""

    row: dict | None = None
    bad: BadRecord | None = None
    notes: list[Note] = field(default_factory=list)


class _Bad(Exception):
    pass


class _Context:
    __slots__ = ("files", "notes")

    def __init__(self, files: RecordFiles):
        self.files = files
        self.notes: list[Note] = []

    def note(self, name: str, reason: str) -> None:
        files = self.files
        self.notes.append(Note(files.part, files.image_id, str(files.annotation), name, reason))


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (bytes, bytearray)) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(value: Any) -> float | None:
    """A float from a JSON number or numeric string; None for null/NaN; raises ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise ValueError
    return None if math.isnan(number) else number


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


def _optional_number(ctx: _Context, meta: dict, name: str, sentinel: bool = False) -> float | None:
    value = meta.get(name)
    try:
        number = _number(value)
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
    numbers is also read, in ``keys`` order (head pose only: ``[yaw, pitch, roll]``)."""
    value = meta.get(name)
    if value is None:
        return None
    if list_order and isinstance(value, (list, tuple)) and len(value) == len(keys):
        value = dict(zip(keys, value))
    if not isinstance(value, dict):
        ctx.note(column, f"expected an object with keys {', '.join(keys)}, found {_describe(value)}; stored null")
        return None
    # Fast path, taken by every well-formed file: the expected keys, plain numbers.
    fast = _FAST_STRUCT_KEYS[keys]
    if len(value) == len(keys) and set(map(type, value.values())) <= _PLAIN_NUMBER:
        try:
            struct = {fast[raw]: v for raw, v in value.items()}
        except KeyError:
            pass
        else:
            total = sum(struct.values())
            if len(struct) == len(keys) and total == total:  # total != total: a NaN among them
                return struct
    wanted = {_key(k): k for k in keys}
    struct = dict.fromkeys(keys)
    for raw_key, raw_value in value.items():
        target = wanted.get(_key(str(raw_key)))
        if target is None:
            ctx.note(column, f"unknown key {raw_key!r} ignored (expected {', '.join(keys)})")
            continue
        try:
            struct[target] = _number(raw_value)
        except (ValueError, TypeError):
            ctx.note(column, f"{raw_key}: expected a number, found {_describe(raw_value)}; stored null")
    return struct


_PLAIN_NUMBER = frozenset((int, float))


#: struct keys -> {release spelling or schema spelling: schema key}, for the fast path.
_FAST_STRUCT_KEYS = {
    keys: {**{k: k for k in keys}, **{k.replace("_", " "): k for k in keys}} for keys in (GENDERS, RACES, POSE_ANGLES)
}


def _flat_numbers(value: Any) -> list[float | None]:
    """A flat list of numbers from a flat or nested JSON list (None for null/NaN)."""
    if not isinstance(value, (list, tuple)):
        raise ValueError
    # Fast path, taken by every well-formed file: plain ints/floats (no bool), no NaN.
    if set(map(type, value)) <= _PLAIN_NUMBER:
        total = sum(value)
        if total == total:
            return list(value)
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
    # Fast path, taken by every well-formed file: 136 plain numbers, no NaN.
    if type(value) is list and len(value) == 2 * NUM_LANDMARKS and set(map(type, value)) <= _PLAIN_NUMBER:
        points = np.asarray(value, dtype=np.float32)
        if not np.isnan(points.sum()):
            return points.reshape(NUM_LANDMARKS, 2)
    try:
        flat = _flat_numbers(value)
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
    except (ValueError, TypeError):
        ctx.note("landmarks_29", f"expected a list of numbers, found {_describe(value)}; stored null")
        return None
    if any(v is None for v in flat):
        ctx.note("landmarks_29", "expected a list of numbers, found nulls in it; stored null")
        return None
    return flat


def _check_image(data: bytes, check: CheckImages) -> str | None:
    """Why these bytes are not a usable image, or ``None`` when they are."""
    if not data:
        return "image file is empty (0 bytes); re-extract it from the release zip"
    if data[:3] == b"\xff\xd8\xff":
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return (
                f"JPEG cut short: no end-of-image marker (FF D9) after {len(data)} bytes; "
                "the file was truncated (an interrupted download or extraction): re-extract it"
            )
        if check == "markers":
            return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if check == "decode":
                image.load()
            else:
                image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"not a readable image (expected a JPEG, starts with {data[:4].hex(' ')}): {exc}"
    return None


def _parse_json(data: bytes) -> Any:
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8")
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        text = data.decode("utf-8")
    return json.loads(text)


_SPELLINGS: dict[int, dict[str, str | None]] = {}  # id(known table) -> raw key -> target


def _normalize_keys(ctx: _Context, obj: dict, known: dict[str, str], where: str) -> dict:
    spellings = _SPELLINGS.setdefault(id(known), {})
    out: dict[str, Any] = {}
    for raw_key, value in obj.items():
        try:
            name = spellings[raw_key]
        except KeyError:
            name = known.get(_key(str(raw_key)))
            if len(spellings) < 1_000:
                spellings[raw_key] = name
        if name is None:
            ctx.note(where, f"unknown key {raw_key!r} ignored")
            continue
        out[name] = value
    return out


def read_record(files: RecordFiles, check_images: CheckImages = "markers") -> ReadResult:
    """Read one record. Never raises for bad data: returns a :class:`ReadResult`.

    ``row`` holds the :data:`FEATURES` columns with ``image`` as ``{"bytes", "path"}``
    (the file's bytes unchanged, ``path`` its file name) and ``landmarks`` as a
    ``68 x 2`` float32 numpy array (or None); every other value is a plain Python value.
    """
    ctx = _Context(files)

    def bad(path: Any, reason: str) -> ReadResult:
        return ReadResult(bad=BadRecord(files.part, files.image_id, str(path), reason))

    if files.duplicates:
        others = ", ".join(p.name for p in files.duplicates)
        return bad(files.path, f"more than one file for id {files.image_id!r} ({others} as well); keep one")
    if files.image is None:
        return bad(files.annotation, "image missing: no images/<id>.jpg for this annotation; re-extract the image")
    if files.annotation is None:
        return bad(files.image, "annotation missing: no annotations/<id>.json for this image; re-extract it")
    try:
        image_bytes = files.image.read_bytes()
        json_bytes = files.annotation.read_bytes()
    except OSError as exc:
        return bad(exc.filename or files.path, f"cannot read file: {exc.strerror or exc}")

    problem = _check_image(image_bytes, check_images)
    if problem:
        return bad(files.image, problem)
    try:
        document = _parse_json(json_bytes)
    except (UnicodeDecodeError, ValueError) as exc:
        size = len(json_bytes)
        return bad(files.annotation, f"annotation is not valid JSON: {exc} (the file has {size} bytes); re-extract it")
    if not isinstance(document, dict):
        return bad(files.annotation, f"expected a JSON object, found {type(document).__name__}")

    try:
        row = _row(ctx, document, image_bytes)
    except _Bad as exc:
        return bad(files.annotation, str(exc))
    return ReadResult(row=row, notes=ctx.notes)


def _row(ctx: _Context, document: dict, image_bytes: bytes) -> dict:
    files = ctx.files
    top = _normalize_keys(ctx, document, _TOP_KEYS, "annotation")

    soft = top.get("soft_label")
    try:
        soft_label = _flat_numbers(soft)
    except (ValueError, TypeError):
        raise _Bad(f"soft-label: expected {NUM_SOFT_CLASSES} numbers, found {_describe(soft)}") from None
    if len(soft_label) != NUM_SOFT_CLASSES or any(v is None for v in soft_label):
        raise _Bad(f"soft-label: expected {NUM_SOFT_CLASSES} numbers, found {_describe(soft)}")

    raw_label = top.get("human_label")
    try:
        human_label = _code(raw_label, _EXPRESSION_CODES, len(EXPRESSIONS))
    except (ValueError, TypeError):
        raise _Bad(f"human-label: expected a code 0..{len(EXPRESSIONS) - 1} or null, found {_describe(raw_label)}") from None
    if human_label is None and files.part != "unlabeled":
        ctx.note("human_label", "human-label is null in a human-annotated part; stored null")

    raw_subset = top.get("subset")
    try:
        subset = _code(raw_subset, _SUBSET_CODES, len(SUBSETS))
    except (ValueError, TypeError):
        raise _Bad(f"subset: expected 0 (easy), 1 (challenging), 2 (difficult) or null, found {_describe(raw_subset)}") from None

    meta_raw = top.get("meta")
    if meta_raw is None:
        meta: dict = {}
    elif isinstance(meta_raw, dict):
        meta = _normalize_keys(ctx, meta_raw, _META_KEYS, "meta-data")
    else:
        ctx.note("meta-data", f"expected an object, found {_describe(meta_raw)}; metadata stored null")
        meta = {}

    return {
        "image": {"bytes": image_bytes, "path": files.image.name},
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
    }


def iter_rows(
    records: Iterable[RecordFiles],
    on_bad: OnBad = "skip",
    check_images: CheckImages = "markers",
) -> Iterator[ReadResult]:
    """Read records in order. With ``on_bad="error"`` the first bad record raises
    :class:`~affectnetplus_hf.errors.BadRecordError`; otherwise bad records are yielded
    as results whose ``bad`` is set, for the caller to report."""
    if on_bad not in ("skip", "error"):
        raise ValueError(f"on_bad must be 'skip' or 'error', got {on_bad!r}")
    for files in records:
        result = read_record(files, check_images)
        if result.bad is not None and on_bad == "error":
            raise result.bad.error()
        yield result
