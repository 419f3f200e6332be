"""The 8-label AffectNet release: find its parts, list its records, read one into a schema row.

Layout (``shared/affectnet-original-format.md``)::

    train_set/images/<n>.jpg           224 x 224 face crops
    train_set/annotations/<n>_exp.npy  expression code as a string array ('3'), 0..7
    train_set/annotations/<n>_val.npy  valence ('-0.176'), _aro.npy arousal
    train_set/annotations/<n>_lnd.npy  136 numbers (x1, y1, ...) in crop pixels
    val_set/...                        the same (part ``validation``)

Folder names match as AffectNet+'s do (case, space, ``-``, ``_`` alike; the release may sit
up to two levels below the folder given). A *record* is a stem ``<n>`` seen as an image or as
any of its four ``.npy`` files. It is bad without its image or its ``_exp.npy``, or when a
file cannot be read whole (an ``.npy`` that is not one, holds Python objects, or declares
more values than a few thousand: its header is read first, so a forged shape costs nothing),
when the expression is not a code, or when the landmarks are not 136 finite numbers. A
missing ``_val``/``_aro``/``_lnd`` file, or a valence that is not a number, gives a null and
a note. Codes 8..10 (not in this release) are kept and noted. ``.npy`` files are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.configs import HUMAN_PARTS
from ..errors import ReleaseNotFoundError
from .layout import IgnoredFile, _descend, _scan, _unread_entries, natural_key, normalize_name
from .reader import UNEXPECTED, BadRecord, Note, ReadResult
from .values import ValueProblem, expression_code, landmarks, read_image, short, va_value

__all__ = ["EightLabelPart", "NpyRecord", "find_parts", "is_root", "list_records", "read_record"]

logger = logging.getLogger(__name__)

LAYOUT = "8-label AffectNet"
#: part -> accepted spellings of its folder (normalized), the release's own first
PART_DIRS: dict[str, tuple[str, ...]] = {
    "train": ("trainset", "train"),
    "validation": ("valset", "validationset", "validation", "val"),
}
_IMAGES_DIR = ("images", "image", "imgs")
_ANNOTATIONS_DIR = ("annotations", "annotation", "labels")
_IMAGE_SUFFIXES = (".jpg", ".jpeg")
#: the four files of a record, by the suffix of their stem, in reading order
FIELDS = ("exp", "val", "aro", "lnd")
#: An 8-label .npy holds a few hundred bytes; larger files are reported, not read.
MAX_NPY_BYTES = 1 << 20
#: No 8-label .npy holds more values than the 136 landmarks; a header declaring more is refused.
MAX_NPY_VALUES = 4096
EXPRESSION_CODES = 8  # the release's codes: 0..7


@dataclass(frozen=True)
class EightLabelPart:
    """One part on disk (``train_set`` or ``val_set``) and what beside or in it is not read."""

    name: str
    path: Path
    images_dir: Path | None
    annotations_dir: Path | None
    ignored: tuple = ()


@dataclass(frozen=True, slots=True)
class NpyRecord:
    """The files of one record; names relative to the part's folders (shared, so a record is small)."""

    part: str
    image_id: str
    images_dir: Path | None
    annotations_dir: Path | None
    image: str | None
    #: (field, file name) of the ``.npy`` files present, in :data:`FIELDS` order
    arrays: tuple[tuple[str, str], ...]
    duplicates: tuple[str, ...] = ()
    unreadable: str = ""

    def array_path(self, field: str) -> Path | None:
        for name, file in self.arrays:
            if name == field and self.annotations_dir is not None:  # always set where arrays are
                return self.annotations_dir / file
        return None

    @property
    def path(self) -> Path:
        """The file that best names the record in a report: its ``_exp.npy``, else its image, else any file."""
        exp = self.array_path("exp")
        if exp is not None:
            return exp
        if self.image is not None and self.images_dir is not None:
            return self.images_dir / self.image
        assert self.annotations_dir is not None  # a record has an image or an annotation file
        return self.annotations_dir / self.arrays[0][1]


# ----------------------------------------------------------------------------- layout


def _part_folder(root: Path, name: str) -> Path | None:
    return _descend(root, PART_DIRS[name])


def is_root(folder: Path) -> bool:
    """True when ``folder`` holds a part folder (``train_set``/``val_set``...) with ``images/`` or
    ``annotations/`` in it, and is not AffectNet+'s ``human_annotated`` (whose parts look alike)."""
    if normalize_name(folder.name) == "humanannotated":
        return False
    for name in HUMAN_PARTS:
        try:
            part = _part_folder(folder, name)
            if part is not None and (_descend(part, _IMAGES_DIR) or _descend(part, _ANNOTATIONS_DIR)):
                return True
        except ReleaseNotFoundError:  # two spellings of one folder: a release, said so when read
            return True
    return False


def find_parts(root: Path) -> dict[str, EightLabelPart]:
    """The parts under the release root ``root`` (in :data:`HUMAN_PARTS` order), with the folders
    beside them that are not read attached to the first part."""
    parts: dict[str, EightLabelPart] = {}
    for name in HUMAN_PARTS:
        folder = _part_folder(root, name)
        if folder is None:
            continue
        images, annotations = _descend(folder, _IMAGES_DIR), _descend(folder, _ANNOTATIONS_DIR)
        if images is None and annotations is None:
            continue
        meanings = {**{c: "images" for c in _IMAGES_DIR}, **{c: "annotations" for c in _ANNOTATIONS_DIR}}
        used = {p for p in (images, annotations) if p is not None}
        ignored = _unread_entries(folder, used, name, meanings, "images/ and annotations/", LAYOUT)
        parts[name] = EightLabelPart(name, folder, images, annotations, tuple(ignored))
    if parts:
        first = next(iter(parts))
        meanings = {c: f"part {name}" for name in HUMAN_PARTS for c in PART_DIRS[name]}
        beside = _unread_entries(
            root, {p.path for p in parts.values()}, first, meanings, "train_set/ and val_set/", LAYOUT
        )
        part = parts[first]
        parts[first] = EightLabelPart(
            part.name, part.path, part.images_dir, part.annotations_dir, (*beside, *part.ignored)
        )
    return parts


def list_records(part: EightLabelPart) -> tuple[list[NpyRecord], list[IgnoredFile]]:
    """Records by stem in natural order, and what is not read (other files, unknown ``.npy``
    names, the part's ignored folders)."""
    ignored: list[IgnoredFile] = list(part.ignored)
    odd_images: dict[str, str] = {}
    odd_arrays: dict[str, str] = {}
    images, images_error = _scan(part.images_dir, part.name, _IMAGE_SUFFIXES, ignored, odd_images)
    files, arrays_error = _scan(part.annotations_dir, part.name, (".npy",), ignored, odd_arrays)
    if part.images_dir is None:
        images_error = (
            f"{part.path} has no images/ folder (a partial extraction?): extract the part's images and run again"
        )
    if part.annotations_dir is None:
        arrays_error = f"{part.path} has no annotations/ folder (a partial extraction?): extract the part's annotations and run again"
    by_stem: dict[str, dict[str, list[Path]]] = {}
    for stem, paths in files.items():
        image_id, sep, field = stem.rpartition("_")
        field = field.lower()
        if not sep or field not in FIELDS or not image_id:
            for path in paths:
                ignored.append(
                    IgnoredFile(
                        part.name,
                        path,
                        "unexpected file name (expected <n>_exp.npy, <n>_val.npy, <n>_aro.npy or <n>_lnd.npy); not read",
                    )
                )
            continue
        by_stem.setdefault(image_id, {}).setdefault(field, []).extend(paths)
    records = []
    for stem in sorted(images.keys() | by_stem.keys(), key=natural_key):
        image_paths = sorted(images.get(stem, []))
        found = by_stem.get(stem, {})
        duplicates = [p.name for p in image_paths[1:]]
        arrays = []
        for field in FIELDS:
            paths = sorted(found.get(field, []))
            if paths:
                arrays.append((field, paths[0].name))
                duplicates += [p.name for p in paths[1:]]
        unreadable = ""
        if not image_paths:
            unreadable = odd_images.get(stem) or images_error
        elif "exp" not in found:
            unreadable = odd_arrays.get(f"{stem}_exp") or arrays_error
        records.append(
            NpyRecord(
                part.name,
                stem,
                part.images_dir,
                part.annotations_dir,
                image_paths[0].name if image_paths else None,
                tuple(arrays),
                tuple(duplicates),
                unreadable,
            )
        )
    ignored.sort(key=lambda item: str(item.path))
    return records, ignored


# ----------------------------------------------------------------------------- reading


class _Bad(Exception):
    def __init__(self, path, reason: str):
        super().__init__(reason)
        self.path = path
        self.reason = reason


def load_npy(path: Path) -> np.ndarray:
    """The array in ``path``, read with ``allow_pickle=False`` after its header says it is small;
    :class:`ValueProblem` naming what is wrong otherwise."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_NPY_BYTES:
            raise ValueProblem(f"file too large: {size} bytes (an 8-label .npy holds a few hundred bytes); not read")
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueProblem(
                    f"npy format version {version[0]}.{version[1]}, which the 8-label release does not use; not read"
                )
        except ValueProblem:
            raise
        except Exception as exc:  # not an .npy: numpy raises ValueError, SyntaxError, EOFError ...
            raise ValueProblem(f"not a .npy file ({type(exc).__name__}: {str(exc)[:80]}); re-extract it") from None
        if dtype.hasobject:
            raise ValueProblem(
                "holds Python objects (it needs pickle, which is never loaded); expected numbers or strings: re-extract it"
            )
        count = math.prod(shape)
        if count > MAX_NPY_VALUES:
            raise ValueProblem(f"declares shape {short(shape)} ({count} values); expected at most 136: not read")
        if count * dtype.itemsize > size:
            raise ValueProblem(
                f"cut short: its header declares {count * dtype.itemsize} bytes of data, the file has {size} in all; re-extract it"
            )
        handle.seek(0)
        try:
            return np.lib.format.read_array(handle, allow_pickle=False)
        except Exception as exc:
            raise ValueProblem(
                f"cannot be read as .npy ({type(exc).__name__}: {str(exc)[:80]}); re-extract it"
            ) from None


def _text(array: np.ndarray) -> str:
    """The one value of a 0-d or 1-element array, as text."""
    if array.size != 1:
        raise ValueProblem(f"expected one value, found an array of shape {array.shape}")
    item = array.reshape(-1)[0]
    if isinstance(item, bytes):
        return item.decode("utf-8", "replace")
    return str(item)


def read_record(record: NpyRecord, check_images: str = "markers") -> ReadResult:
    """Read one record; never raises for bad data (see the module docstring)."""
    try:
        return _read(record, check_images)
    except _Bad as exc:
        return ReadResult(bad=BadRecord(record.part, record.image_id, str(exc.path), exc.reason))
    except MemoryError:
        raise
    except Exception as exc:
        logger.debug("unexpected error reading %s", record.path, exc_info=True)
        return ReadResult(
            bad=BadRecord(
                record.part,
                record.image_id,
                str(record.path),
                f"{UNEXPECTED}: {type(exc).__name__}: {exc}; the record is left out so the run goes on. "
                "Please report this file to the affectnetplus-hf maintainers",
            )
        )


def _read(record: NpyRecord, check_images: str) -> ReadResult:
    n = record.image_id
    if record.duplicates:
        raise _Bad(record.path, f"more than one file for id {n!r} ({', '.join(record.duplicates)} as well); keep one")
    if record.image is None or record.images_dir is None:
        raise _Bad(
            record.path,
            f"image missing: {record.unreadable or f'no images/{n}.jpg for these annotations; re-extract the image'}",
        )
    image_path = record.images_dir / record.image
    exp_path = record.array_path("exp")
    if exp_path is None:
        raise _Bad(
            image_path,
            f"annotation missing: {record.unreadable or f'no annotations/{n}_exp.npy (the expression) for this image; re-extract it'}",
        )
    notes: list[Note] = []

    def note(path, field: str, reason: str) -> None:
        notes.append(Note(record.part, n, str(path), field, reason))

    data, problem, image_note = read_image(image_path, check_images, " (8-label images are 224 x 224 JPEGs)")
    if problem:
        raise _Bad(image_path, problem)
    if image_note:
        note(image_path, "image", image_note)

    arrays: dict[str, np.ndarray] = {}
    for field, _ in record.arrays:
        path = record.array_path(field)
        assert path is not None  # field is one of the record's arrays
        try:
            arrays[field] = load_npy(path)
        except ValueProblem as exc:
            raise _Bad(path, f"unreadable .npy: {exc}") from None
        except OSError as exc:
            raise _Bad(
                path, f"cannot read file: {exc.strerror or exc}; check the file's permissions or re-extract it"
            ) from None

    try:
        code = expression_code(_text(arrays["exp"]))
    except ValueProblem as exc:
        reason = str(exc) if str(exc).startswith("expression") else f"expression: {exc}"
        raise _Bad(exp_path, f"{reason}; fix or re-extract the file") from None
    if code >= EXPRESSION_CODES:
        note(
            exp_path,
            "human_label",
            f"code {code} is outside this release's codes 0..{EXPRESSION_CODES - 1}; kept as released (check the file)",
        )

    values: dict[str, float | None] = {}
    for field, column in (("val", "valence"), ("aro", "arousal")):
        path = record.array_path(field)
        if path is None:
            note(image_path, column, f"no annotations/{n}_{field}.npy; stored null")
            values[column] = None
            continue
        found: list[tuple[str, str]] = []
        try:
            text = _text(arrays[field])
        except ValueProblem as exc:
            found.append((column, f"{exc}; stored null"))
            text = None
        values[column] = va_value(text, column, found)
        for name, reason in found:
            note(path, name, reason)

    points = None
    lnd_path = record.array_path("lnd")
    if lnd_path is None:
        note(image_path, "landmarks", f"no annotations/{n}_lnd.npy; stored null")
    else:
        try:
            points = landmarks(arrays["lnd"].reshape(-1).tolist())
        except ValueProblem as exc:
            raise _Bad(lnd_path, f"{exc}; fix or re-extract the file") from None

    row = {
        "image": {"bytes": data, "path": record.image},
        "image_id": n,
        "human_label": code,
        "soft_label": None,
        "subset": None,
        "valence": values["valence"],
        "arousal": values["arousal"],
        "age": None,
        "gender": None,
        "race": None,
        "head_pose": None,
        "landmarks": points,
        "landmarks_29": None,
        "face_box": None,
        "auto_label": None,
    }
    return ReadResult(row=row, notes=notes)
