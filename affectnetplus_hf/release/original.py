"""AffectNet as first released (2017): find its lists and images, list its rows, read one row.

Layout (``shared/affectnet-original-format.md``)::

    Manually_Annotated_file_lists/training.csv, validation.csv       parts train, validation
    Manually_Annotated_Images/<subdir>/<file>.jpg|.jpeg|.JPG|.png
    Automatically_Annotated_file_lists/automatically_annotated.csv   part automatic
    Automatically_Annotated_Images/<subdir>/<file>

Each list and images folder may sit up to three levels below the release root, inside any
wrapper (``Manually_Annotated/Manually_Annotated_Images/``); names match as AffectNet+'s do
(case, space, ``-``, ``_`` alike). A list is a CSV with a header row naming
``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
expression, valence, arousal`` (in that order when the header is missing).

A *record* is one non-empty line of a list. Listing reads every list once, keeping per line
only its offset, length and image path (memory grows with the number of lines, never with
a line's length: a line longer than :data:`MAX_LINE_BYTES` is a bad record); reading a
record reads its line again. A record is bad, with the list, its line number and the reason,
when its line is not 9 CSV fields, its image is missing, cut short or not a JPEG or PNG, its
expression is not a code 0..10, its landmarks are not 136 finite numbers, or its path is also
on another line with another expression (every such line is bad; a line that repeats an
earlier one's path and expression is bad and the earlier one kept). A face box that is not
four whole numbers is null with a note. An image that no list names is reported as ignored,
never a row. A second header line is reported as ignored.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.configs import AUTOMATIC_PART
from ..errors import ReleaseNotFoundError
from .layout import IgnoredFile, _children_by_name, _list_dirs, normalize_name
from .reader import UNEXPECTED, BadRecord, Note, ReadResult
from .values import ValueProblem, expression_code, landmarks, read_image, scalar, short, va_value

__all__ = ["CsvRow", "OriginalPart", "find_parts", "is_root", "list_release", "read_record"]

logger = logging.getLogger(__name__)

#: The list's columns in the documented order, normalized as headers are compared.
COLUMNS = (
    "subdirectoryfilepath",
    "facex",
    "facey",
    "facewidth",
    "faceheight",
    "faciallandmarks",
    "expression",
    "valence",
    "arousal",
)
#: Lines longer than this are not parsed (a real line has about 1.3 KB).
MAX_LINE_BYTES = 64 * 1024
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_INT32 = 2**31

#: kind of images -> (normalized list folder, normalized images folder)
_FOLDERS = {
    "manual": ("manuallyannotatedfilelists", "manuallyannotatedimages"),
    "automatic": ("automaticallyannotatedfilelists", "automaticallyannotatedimages"),
}
#: part -> (kind of images, accepted normalized stems of its CSV)
_LISTS = {
    "train": ("manual", ("training", "train")),
    "validation": ("manual", ("validation", "val")),
    AUTOMATIC_PART: ("automatic", ("automaticallyannotated", "automatic")),
}
_MARKERS = {name for pair in _FOLDERS.values() for name in pair} | {"manuallyannotated", "automaticallyannotated"}


@dataclass(frozen=True)
class OriginalPart:
    """One list and the images folder its paths are relative to (None when not found)."""

    name: str
    path: Path  # the CSV
    images_dir: Path | None
    images_name: str  # the folder the paths are relative to, as the release spells it


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One line of a list: where it is, and its image (an absolute path) when found."""

    part: str
    image_id: str
    csv: Path
    line: int
    offset: int
    length: int
    #: the index of each of :data:`COLUMNS` in a line (shared by the rows of one list)
    columns: tuple[int, ...]
    image: str | None
    #: why the row is bad before it is read ("" when it is to be read)
    problem: str = ""

    @property
    def path(self) -> Path:
        return self.csv


# ----------------------------------------------------------------------------- layout


def is_root(folder: Path) -> bool:
    """True when ``folder`` holds a list folder, an images folder or their wrapper."""
    return any(name in _MARKERS for name in _children_by_name(folder))


def _find_below(root: Path, name: str, depth: int = 3) -> Path | None:
    """The one folder normalized to ``name`` within ``depth`` levels below ``root`` (the
    shallowest); not descending into images folders. Two at one level raise."""
    level = [root]
    for _ in range(depth):
        found: list[Path] = []
        nxt: list[Path] = []
        for folder in level:
            for path in _list_dirs(folder)[0]:
                key = normalize_name(path.name)
                if key == name:
                    found.append(path)
                elif not path.name.startswith(".") and key not in (
                    "manuallyannotatedimages",
                    "automaticallyannotatedimages",
                ):
                    nxt.append(path)
        if len(found) > 1:
            listed = ", ".join(str(p) for p in found)
            raise ReleaseNotFoundError(
                f"{root}: found several folders that all mean {name!r} ({listed}); expected one. "
                "Keep one (merge them) and run again."
            )
        if found:
            return found[0]
        level = nxt
    return None


def _find_list(folder: Path, stems: tuple[str, ...]) -> Path | None:
    try:
        entries = sorted(Path(e.path) for e in os.scandir(folder) if e.name.lower().endswith(".csv"))
    except OSError:
        return None
    by_stem: dict[str, list[Path]] = {}
    for path in entries:
        by_stem.setdefault(normalize_name(path.stem), []).append(path)
    for stem in stems:
        if stem in by_stem:
            if len(by_stem[stem]) > 1:
                listed = ", ".join(p.name for p in by_stem[stem])
                raise ReleaseNotFoundError(
                    f"{folder}: several lists mean {stem!r} ({listed}); expected one. Keep one and run again."
                )
            return by_stem[stem][0]
    return None


def find_parts(root: Path) -> tuple[dict[str, OriginalPart], list[IgnoredFile]]:
    """The parts under the release root ``root``, and what in the list folders is not read."""
    parts: dict[str, OriginalPart] = {}
    ignored: list[IgnoredFile] = []
    folders = {
        kind: (_find_below(root, lists), _find_below(root, images)) for kind, (lists, images) in _FOLDERS.items()
    }
    for part, (kind, stems) in _LISTS.items():
        lists, images = folders[kind]
        path = _find_list(lists, stems) if lists is not None else None
        if path is not None:
            parts[part] = OriginalPart(part, path, images, images.name if images else _FOLDERS[kind][1])
    if parts:
        used = {p.path for p in parts.values()}
        first = next(iter(parts))
        for lists, _ in folders.values():
            if lists is None:
                continue
            try:
                entries = sorted(os.scandir(lists), key=lambda e: e.name)
            except OSError as exc:
                ignored.append(
                    IgnoredFile(first, lists, f"folder cannot be listed ({exc.strerror or exc}); check its permissions")
                )
                continue
            for entry in entries:
                path = Path(entry.path)
                if path not in used:
                    ignored.append(
                        IgnoredFile(
                            first,
                            path,
                            "not a list of the AffectNet 2017 release (expected training.csv, validation.csv or automatically_annotated.csv); not read",
                        )
                    )
    return parts, ignored


# ----------------------------------------------------------------------------- listing


@dataclass
class _Images:
    """The image files of one images folder: relative POSIX path -> found; case-folded lookup on demand."""

    folder: Path
    files: set[str] = field(default_factory=set)
    folded: dict[str, str] | None = None
    named: set[str] = field(default_factory=set)

    def resolve(self, rel: str) -> str | None:
        if rel in self.files:
            return rel
        if self.folded is None:
            self.folded = {}
            for name in self.files:
                self.folded.setdefault(name.lower(), name)
        return self.folded.get(rel.lower())


def _scan_images(folder: Path, part: str, ignored: list[IgnoredFile]) -> _Images:
    images = _Images(folder)

    def take(path: Path, rel: str) -> None:
        if path.name.startswith("."):
            ignored.append(IgnoredFile(part, path, "hidden file (name starts with '.')"))
        elif path.suffix.lower() not in _IMAGE_SUFFIXES:
            ignored.append(IgnoredFile(part, path, f"unexpected file type (expected {', '.join(_IMAGE_SUFFIXES)})"))
        else:
            images.files.add(rel)

    try:
        top = list(os.scandir(folder))
    except OSError as exc:
        ignored.append(
            IgnoredFile(
                part,
                folder,
                f"folder cannot be listed ({exc.strerror or exc}); nothing in it is read. Check its permissions",
            )
        )
        return images
    for entry in top:
        try:
            is_dir = entry.is_dir()
        except OSError as exc:
            ignored.append(IgnoredFile(part, Path(entry.path), f"cannot be followed ({exc.strerror or exc}); not read"))
            continue
        if not is_dir:
            take(Path(entry.path), entry.name)
            continue
        try:
            inner = list(os.scandir(entry.path))
        except OSError as exc:
            ignored.append(
                IgnoredFile(
                    part, Path(entry.path), f"folder cannot be listed ({exc.strerror or exc}); nothing in it is read"
                )
            )
            continue
        for item in inner:
            try:
                regular = item.is_file()
            except OSError:
                regular = False
            if regular:
                take(Path(item.path), f"{entry.name}/{item.name}")
            else:
                ignored.append(
                    IgnoredFile(part, Path(item.path), "not an image file of the layout (<subdir>/<file>); not read")
                )
    return images


def _lines(handle):
    """``(line number, offset, raw bytes or None when too long)`` of each line of a binary file."""
    offset = 0
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        start = offset
        offset += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line, in bounded reads
                raw = handle.readline(MAX_LINE_BYTES)
                offset += len(raw)
            yield number, start, offset - start, None
            continue
        yield number, start, len(raw), raw


def _fields(raw: bytes) -> list[str]:
    """The CSV fields of one line (UnicodeDecodeError / csv.Error for a garbled line)."""
    text = raw.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    if '"' not in text:  # every line of the release: no quoting, so a split is the CSV parse
        return text.split(",") if text else []
    return next(csv.reader([text], strict=True), [])


def _columns_of(header: list[str]) -> tuple[int, ...] | None:
    """Column indexes from a header row, or None when ``header`` is not one."""
    names = [normalize_name(h) for h in header]
    if not names or names[0] != COLUMNS[0] and COLUMNS[0] not in names:
        return None
    if any(c not in names for c in COLUMNS):
        return None
    return tuple(names.index(c) for c in COLUMNS)


def _list_part(part: OriginalPart, images: _Images | None, ignored: list[IgnoredFile]) -> list[CsvRow]:
    rows: list[CsvRow] = []
    columns: tuple[int, ...] = tuple(range(len(COLUMNS)))
    width = len(COLUMNS)
    seen: dict[str, list[int]] = {}  # folded path -> indexes into rows
    labels: list[str] = []  # expression text per row, for duplicates
    first = True
    try:
        handle = open(part.path, "rb")
    except OSError as exc:
        ignored.append(
            IgnoredFile(part.name, part.path, f"list cannot be read ({exc.strerror or exc}); check its permissions")
        )
        return rows

    def row(at: tuple[int, int, int], image_id: str = "", image: str | None = None, problem: str = "") -> None:
        """One row for the line ``at`` (number, byte offset, length), its label filled in later."""
        rows.append(CsvRow(part.name, image_id, part.path, *at, columns, image, problem))
        labels.append("")

    with handle:
        for number, offset, length, raw in _lines(handle):
            if raw is not None and not raw.strip():
                continue

            at = (number, offset, length)  # where the line is, for its row
            if raw is None:
                row(
                    at,
                    problem=f"malformed CSV line: longer than {MAX_LINE_BYTES} bytes (a line has about 1.3 KB); fix the list or re-extract it",
                )
                continue
            try:
                fields = _fields(raw)
            except (UnicodeDecodeError, csv.Error) as exc:
                row(at, problem=f"malformed CSV line: {type(exc).__name__}: {exc}; fix the list or re-extract it")
                first = False
                continue
            header = (
                _columns_of(fields) if first or any(f[:1] in "sS" for f in fields[:1]) else None
            )  # cheap: data lines start with a digit
            if header is not None:
                if first:
                    columns, width = header, len(fields)
                else:
                    ignored.append(
                        IgnoredFile(part.name, part.path, f"line {number}: a header line again; not a record")
                    )
                first = False
                continue
            first = False
            image_id = fields[columns[0]].strip() if len(fields) > columns[0] else ""
            rel = image_id.replace("\\", "/").lstrip("./") if image_id else ""
            found = images.resolve(rel) if images is not None and rel else None
            if found is not None and images is not None:
                images.named.add(found)  # named by a line, even a bad one: not an unlisted image
            if len(fields) != width:
                row(
                    at,
                    image_id,
                    problem=f"malformed CSV line: expected {width} comma-separated fields, found {len(fields)}; fix the list or re-extract it",
                )
                continue
            if images is not None and found is not None:
                row(at, image_id, str(images.folder / found))
            elif not rel:
                row(at, image_id, problem="malformed CSV line: subDirectory_filePath is empty; fix the list")
            else:
                where = (
                    f"{images.folder}/{rel}"
                    if images is not None
                    else f"{part.images_name}/{rel} (no {part.images_name}/ folder was found: extract it beside the lists)"
                )
                row(at, image_id, problem=f"image missing: {where} does not exist; re-extract the image")
            labels[-1] = fields[columns[6]].strip()
            seen.setdefault(rel.lower(), []).append(len(rows) - 1)
    for indexes in seen.values():
        if len(indexes) < 2:
            continue
        lines = [rows[i].line for i in indexes]
        same = len({labels[i] for i in indexes}) == 1
        for k, i in enumerate(indexes):
            old = rows[i]
            others = ", ".join(str(n) for n in lines if n != old.line)
            if same and k == 0:
                continue
            if same:
                problem = f"duplicate: line {lines[0]} names the same path with the same expression, and is kept; remove this line"
            else:
                problem = (
                    f"duplicated path with another label: line(s) {others} name the same image with another expression "
                    f"({', '.join(repr(labels[j]) for j in indexes)}); keep one line in the list"
                )
            if not old.problem or old.problem.startswith("image missing"):
                rows[i] = CsvRow(
                    old.part, old.image_id, old.csv, old.line, old.offset, old.length, old.columns, old.image, problem
                )
    return rows


def list_release(
    parts: dict[str, OriginalPart], ignored_lists: list[IgnoredFile]
) -> dict[str, tuple[list[CsvRow], list[IgnoredFile]]]:
    """Every part's rows and what is not read, listed together: the images folder is shared by
    ``train`` and ``validation``, and an image is ignored only when no list names it."""
    out: dict[str, tuple[list[CsvRow], list[IgnoredFile]]] = {}
    scanned: dict[Path, tuple[_Images, list[str]]] = {}
    for name, part in parts.items():
        ignored = [i for i in ignored_lists if i.part == name]
        images = None
        if part.images_dir is not None:
            if part.images_dir not in scanned:
                scanned[part.images_dir] = (_scan_images(part.images_dir, name, ignored), [])
            images, readers = scanned[part.images_dir]
            readers.append(name)
        out[name] = (_list_part(part, images, ignored), ignored)
    for images, readers in scanned.values():
        lists = ", ".join(parts[r].path.name for r in readers)
        ignored = out[readers[0]][1]
        for rel in sorted(images.files - images.named):
            ignored.append(
                IgnoredFile(readers[0], images.folder / rel, f"image named by no list read ({lists}); not a row")
            )
    for _, ignored in out.values():
        ignored.sort(key=lambda item: str(item.path))
    return out


# ----------------------------------------------------------------------------- reading


class _Bad(Exception):
    def __init__(self, path, reason: str):
        super().__init__(reason)
        self.path = path
        self.reason = reason


def read_record(record: CsvRow, check_images: str = "markers") -> ReadResult:
    """Read one line and its image; never raises for bad data (see the module docstring)."""
    try:
        return _read(record, check_images)
    except _Bad as exc:
        return ReadResult(bad=BadRecord(record.part, record.image_id, str(exc.path), exc.reason, record.line))
    except MemoryError:
        raise
    except Exception as exc:
        logger.debug("unexpected error reading %s line %d", record.csv, record.line, exc_info=True)
        return ReadResult(
            bad=BadRecord(
                record.part,
                record.image_id,
                str(record.csv),
                f"{UNEXPECTED}: {type(exc).__name__}: {exc}; the record is left out so the run goes on. "
                "Please report this line to the affectnetplus-hf maintainers",
                record.line,
            )
        )


def _face_box(fields: list[str], columns: tuple[int, ...], notes: list[tuple[str, str]]) -> dict | None:
    texts = [fields[columns[i]] for i in (1, 2, 3, 4)]
    if not any(t.strip() for t in texts):
        notes.append(("face_box", "face_x, face_y, face_width, face_height are empty; stored null"))
        return None
    try:
        numbers = [scalar(t) for t in texts]
    except ValueProblem:
        numbers = None
    if numbers is None or not all(v.is_integer() and -_INT32 <= v < _INT32 for v in numbers):
        notes.append(
            ("face_box", f"expected 4 whole numbers (x, y, width, height), found {short(','.join(texts))}; stored null")
        )
        return None
    return dict(zip(("x", "y", "width", "height"), map(int, numbers), strict=False))


def _read(record: CsvRow, check_images: str) -> ReadResult:
    if record.problem or record.image is None:  # a row without a problem has its image
        raise _Bad(record.csv, record.problem or "image missing: the line names no image; fix the list")
    try:
        with open(record.csv, "rb") as handle:
            handle.seek(record.offset)
            raw = handle.read(record.length)
    except OSError as exc:
        raise _Bad(record.csv, f"cannot read the list: {exc.strerror or exc}; check its permissions") from None
    try:
        fields = _fields(raw)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _Bad(
            record.csv, f"malformed CSV line: {type(exc).__name__}: {exc} (the list changed since it was listed?)"
        ) from None
    columns = record.columns
    if len(fields) <= max(columns) or fields[columns[0]].strip() != record.image_id:
        raise _Bad(record.csv, "the line changed since the list was read; run again")

    try:
        code = expression_code(fields[columns[6]])
    except ValueProblem as exc:
        raise _Bad(record.csv, f"{exc}; fix the list or re-extract it") from None
    found: list[tuple[str, str]] = []
    face_box = _face_box(fields, columns, found)
    marks_text = fields[columns[5]].strip().rstrip(";")
    points = None
    if not marks_text:
        found.append(("landmarks", "facial_landmarks is empty; stored null"))
    else:
        try:
            points = landmarks(marks_text.split(";"))
        except ValueProblem as exc:
            raise _Bad(record.csv, f"{exc}; fix the list or re-extract it") from None
    valence = va_value(fields[columns[7]], "valence", found)
    arousal = va_value(fields[columns[8]], "arousal", found)

    image_path = Path(record.image)
    data, problem, image_note = read_image(image_path, check_images, ", more than any AffectNet image")
    if problem:
        raise _Bad(image_path, problem)

    notes = [Note(record.part, record.image_id, str(record.csv), name, reason, record.line) for name, reason in found]
    if image_note:
        notes.insert(0, Note(record.part, record.image_id, str(image_path), "image", image_note, record.line))
    automatic = record.part == AUTOMATIC_PART
    row = {
        "image": {"bytes": data, "path": image_path.name},
        "image_id": record.image_id,
        "human_label": None if automatic else code,
        "soft_label": None,
        "subset": None,
        "valence": valence,
        "arousal": arousal,
        "age": None,
        "gender": None,
        "race": None,
        "head_pose": None,
        "landmarks": points,
        "landmarks_29": None,
        "face_box": face_box,
        "auto_label": code if automatic else None,
    }
    return ReadResult(row=row, notes=notes)
