"""Find the parts of an extracted AffectNet+ release and pair images with annotations.

The folder rules live here and nowhere else:

* a release has up to three *parts*: ``human_annotated/train_set`` (part ``train``),
  ``human_annotated/validation_set`` (part ``validation``) and ``no_human_annotated``
  (part ``unlabeled``), each with sibling ``images/`` and ``annotations/`` folders;
* folder names match case-insensitively with space, ``-`` and ``_`` treated alike
  (``Human Annotated/Train Set/Images`` is the same folder as
  ``human_annotated/train_set/images``);
* the root may be the release itself or a folder that wraps it (an extra level made by
  the unzip tool, up to two levels deep);
* any subset of parts may be present (a partial extraction is normal);
* a *record* is a file stem seen in ``images/`` (``.jpg``/``.jpeg``, any case) or in
  ``annotations/`` (``.json``); a stem present on one side only is still a record, and the
  reader reports it as bad. Other files are not records: they are returned as
  :class:`IgnoredFile` so the report can list them;
* folders that are not read are listed the same way, with the reason: a second spelling of
  a part (``train/`` beside ``train_set/``: only the first spelling in ``_PART_PATHS`` is
  read), an unknown folder beside the parts or inside a part (``test_set/``, ``old/``),
  and an entry that cannot be followed (a symbolic-link loop, a broken mount). Those found
  beside the parts are attached to the part they name, else to the first part present;
* a file name that is not valid UTF-8 cannot be stored as an ``image_id``: the file is
  listed, not read (rename it). Stems are compared in Unicode NFC form, so an image and an
  annotation whose names differ only in Unicode normalisation (macOS NFD) still pair;
* records come in :func:`natural_key` order, a total order: the same listing whatever the
  file system's order or ``PYTHONHASHSEED`` (``7``, ``07`` and ``007`` always in that order).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import overload

import numpy as np

from ..core.configs import HUMAN_PARTS, PARTS  # part names, in the order they are processed and reported
from ..core.schema import MANUAL_DOWNLOAD_INSTRUCTIONS
from ..errors import ReleaseNotFoundError

__all__ = [
    "PARTS",
    "IgnoredFile",
    "Part",
    "RecordFiles",
    "RecordList",
    "find_release",
    "list_records",
    "natural_key",
    "normalize_name",
]


# Each part: the chain of normalized folder names that leads to it from the release root.
# Several spellings per level are accepted; the first is the release's own.
_PART_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "train": (("humanannotated",), ("trainset", "train")),
    "validation": (("humanannotated",), ("validationset", "valset", "validation", "val")),
    "unlabeled": (("nohumanannotated",),),
}
_IMAGES_DIR = ("images", "image", "imgs")
_ANNOTATIONS_DIR = ("annotations", "annotation", "labels")
_IMAGE_SUFFIXES = (".jpg", ".jpeg")
_ANNOTATION_SUFFIX = ".json"
_ROOT_MARKERS = ("humanannotated", "nohumanannotated")
_NORMALIZE = re.compile(r"[\s_\-]+")


def normalize_name(name: str) -> str:
    """Folder name as compared: lower case, without spaces, ``-`` or ``_``."""
    return _NORMALIZE.sub("", name).lower()


def natural_key(stem: str) -> tuple:
    """Sort key: ASCII-digit stems numerically (2 before 10; ``7``, ``07``, ``007`` in that
    order), then every other stem (``²``, ``a1``) by its text. A total order, so the record
    order never depends on a set's or the file system's order."""
    if stem.isascii() and stem.isdigit():
        digits = stem.lstrip("0") or "0"
        return (0, len(digits), digits, len(stem), stem)  # numeric order without int(): no digit-count limit
    return (1, 0, "", 0, stem)


@dataclass(frozen=True)
class Part:
    """One part of the release on disk; ``ignored`` lists the folders beside or inside it
    that are not read (with the reason), which :func:`list_records` reports."""

    name: str
    path: Path
    images_dir: Path | None
    annotations_dir: Path | None
    ignored: tuple = ()


@dataclass(frozen=True)
class RecordFiles:
    """The files of one record; either path may be ``None`` when that file is missing.

    ``duplicates`` lists further files with the same stem (``0.jpg`` and ``0.JPEG``, or
    ``0.json`` and ``0.JSON``), which make the record ambiguous.
    """

    part: str
    image_id: str
    image: Path | None
    annotation: Path | None
    duplicates: tuple[Path, ...] = ()
    #: why the missing file is missing when its folder could not be listed or followed
    #: (``"images/ cannot be listed (Permission denied)"``); empty otherwise
    unreadable: str = ""

    @property
    def path(self) -> Path:
        """The path that best names this record in a report."""
        return self.annotation or self.image  # type: ignore[return-value]


@dataclass(frozen=True)
class IgnoredFile:
    """A file or folder of the release that is not read, and why."""

    part: str
    path: Path
    reason: str


@dataclass
class Release:
    """The parts found under a root, by part name, in :data:`PARTS` order."""

    root: Path
    parts: dict[str, Part] = field(default_factory=dict)


_NOT_FOLLOWED = (
    "cannot be followed ({error}): a symbolic-link loop or a broken link or mount; not read. Fix or remove it"
)
_NOT_LISTED = "folder cannot be listed ({error}); nothing in it is read. Check its permissions (ls -ld) and run again"


def _unlistable(folder: Path) -> str | None:
    """Why ``folder`` cannot be listed (``"Permission denied"``), or None when it can."""
    try:
        with os.scandir(folder):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _list_dirs(folder: Path) -> tuple[list[Path], list[tuple[Path, str]], str | None]:
    """The sub-folders of ``folder`` (symbolic links followed), the entries that cannot be
    followed, with the error, and why ``folder`` cannot be listed (None when it can; then
    nothing else is given)."""
    dirs: list[Path] = []
    broken: list[tuple[Path, str]] = []
    try:
        listing = os.scandir(folder)
    except OSError as exc:
        return [], [], exc.strerror or str(exc)
    try:
        with listing as entries:
            for entry in entries:
                try:
                    if entry.is_dir():
                        dirs.append(Path(entry.path))
                except OSError as exc:
                    broken.append((Path(entry.path), exc.strerror or str(exc)))
    except OSError:  # a listing cut short: what was listed is kept
        pass
    dirs.sort()
    broken.sort()
    return dirs, broken, None


def _children_by_name(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in _list_dirs(folder)[0]:
        found.setdefault(normalize_name(path.name), []).append(path)
    return found


def _descend(folder: Path, choices: tuple[str, ...]) -> Path | None:
    children = _children_by_name(folder)
    for choice in choices:
        matches = children.get(choice, [])
        if len(matches) > 1:
            names = ", ".join(sorted(repr(m.name) for m in matches))
            raise ReleaseNotFoundError(
                f"{folder}: found several folders that all mean {choice!r} ({names}); expected one. "
                "Merge them into one folder (they are the same folder spelled differently) and retry."
            )
        if matches:
            return matches[0]
    return None


def _find_part(root: Path, name: str) -> Part | None:
    folder = root
    for level in _PART_PATHS[name]:
        child = _descend(folder, level)
        if child is None:
            return None
        folder = child
    images = _descend(folder, _IMAGES_DIR)
    annotations = _descend(folder, _ANNOTATIONS_DIR)
    if images is None and annotations is None:
        return None
    used = {p for p in (images, annotations) if p is not None}
    ignored = _unread_entries(folder, used, name, {c: n for n, c in _part_folder_names()}, "images/ and annotations/")
    return Part(name, folder, images, annotations, tuple(ignored))


def _part_folder_names() -> list[tuple[str, str]]:
    """(what, normalized spelling) of the folders inside a part."""
    return [("images", c) for c in _IMAGES_DIR] + [("annotations", c) for c in _ANNOTATIONS_DIR]


def _unread_entries(
    folder: Path, used: set[Path], part: str, meanings: dict[str, str], expected: str, layout: str = "AffectNet+"
) -> list[IgnoredFile]:
    """The sub-folders of ``folder`` not in ``used``, and its entries that cannot be followed,
    as :class:`IgnoredFile` (``meanings``: normalized folder name -> what it would mean)."""
    dirs, broken, unlisted = _list_dirs(folder)
    ignored = [IgnoredFile(part, path, _NOT_FOLLOWED.format(error=error)) for path, error in broken]
    if unlisted:
        ignored.append(IgnoredFile(part, folder, _NOT_LISTED.format(error=unlisted)))
    for path in dirs:
        if path in used:
            continue
        meaning = meanings.get(normalize_name(path.name))
        error = _unlistable(path)
        if error:
            reason = _NOT_LISTED.format(error=error)
        elif path.name.startswith("."):
            reason = "hidden folder (name starts with '.'); not read"
        elif meaning:
            taken = next((u.name for u in sorted(used) if meanings.get(normalize_name(u.name)) == meaning), None)
            reason = (
                f"another folder for {meaning}"
                + (f" beside {taken!r}, which was read" if taken else "")
                + "; only one is read: merge the two folders (or remove this one) and run again"
            )
        else:
            reason = f"not a folder of the {layout} layout (expected {expected}); not read"
        ignored.append(IgnoredFile(part, path, reason))
    return ignored


def _release_level_ignored(root: Path, parts: dict[str, Part]) -> list[IgnoredFile]:
    """Folders beside the parts that are not read: in the release root and in ``human_annotated``."""
    first = next(iter(parts))
    part_dirs = {p.path for p in parts.values()}
    ignored: list[IgnoredFile] = []
    top_meanings = {"humanannotated": "the human-annotated parts", "nohumanannotated": "part unlabeled"}
    human = _descend(root, ("humanannotated",))
    top_used = {p for p in (human, _descend(root, ("nohumanannotated",))) if p is not None}
    ignored += _unread_entries(root, top_used, first, top_meanings, "human_annotated/ and no_human_annotated/")
    if human is not None:
        part_named = {c: name for name in HUMAN_PARTS for c in _PART_PATHS[name][1]}  # spelling -> part
        meanings = {c: f"part {name}" for c, name in part_named.items()}
        used = {p for p in part_dirs if p.parent == human}
        for item in _unread_entries(human, used, first, meanings, "train_set/ and validation_set/"):
            named = part_named.get(normalize_name(item.path.name))
            ignored.append(IgnoredFile(named if named in parts else first, item.path, item.reason))
    return ignored


def _looks_like_release(folder: Path) -> bool:
    return any(marker in _children_by_name(folder) for marker in _ROOT_MARKERS)


def _locate_root(root: Path, depth: int = 2) -> Path | None:
    if _looks_like_release(root):
        return root
    if depth == 0:
        return None
    hits = [p for p in (_locate_root(child, depth - 1) for child in _iter_dirs(root)) if p]
    if len(hits) > 1:
        listed = ", ".join(str(h) for h in hits)
        raise ReleaseNotFoundError(
            f"{root}: contains more than one AffectNet+ release ({listed}); expected one. "
            "Pass the folder of the release you mean."
        )
    return hits[0] if hits else None


def _iter_dirs(folder: Path) -> list[Path]:
    return _list_dirs(folder)[0]


def _check_root(root: Path) -> None:
    """Raise :class:`ReleaseNotFoundError` with its own message when ``root`` is not a folder."""
    try:
        mode = root.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            found = "is a symbolic link that loops (Too many levels of symbolic links)"
        elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
            found = "no such folder"
        else:
            found = f"cannot be read ({exc.strerror or exc})"
        raise ReleaseNotFoundError(
            f"{root}: {found}; expected the folder you extracted AffectNet+ into.\n\n" + MANUAL_DOWNLOAD_INSTRUCTIONS
        ) from None
    if stat.S_ISDIR(mode):
        error = _unlistable(root)
        if error:
            raise ReleaseNotFoundError(
                f"{root}: folder cannot be listed ({error}); expected the folder you extracted AffectNet+ "
                "into, readable by you: check its permissions (ls -ld) and run again"
            )
        return
    if stat.S_ISREG(mode):
        hint = (
            " (a zip or tar archive: extract it first, then pass the folder)"
            if root.suffix.lower() in (".zip", ".tar", ".gz", ".tgz", ".7z")
            else ""
        )
        raise ReleaseNotFoundError(
            f"{root}: is a file, not a folder{hint}; expected the folder you extracted AffectNet+ into.\n\n"
            + MANUAL_DOWNLOAD_INSTRUCTIONS
        )
    raise ReleaseNotFoundError(
        f"{root}: is not a folder (a device, pipe or socket); expected the folder you extracted AffectNet+ into."
    )


def _unlistable_below(root: Path, depth: int = 3) -> list[tuple[Path, str]]:
    """The folders up to ``depth`` levels below ``root`` that cannot be listed, with why:
    what hides a release's parts when none is found."""
    found: list[tuple[Path, str]] = []
    for child in _iter_dirs(root):
        error = _unlistable(child)
        if error:
            found.append((child, error))
        elif depth > 1:
            found += _unlistable_below(child, depth - 1)
    return found


def find_release(root: str | os.PathLike | None) -> Release:
    """Return the parts present under ``root`` (made absolute, so every path found is).

    Raises :class:`ReleaseNotFoundError` (a ``FileNotFoundError``) when ``root`` is missing,
    is not a folder, or holds no part; the message says what was looked for and how to get
    the data.
    """
    if root is None:
        raise ReleaseNotFoundError(
            "No AffectNet+ folder was given (data_dir is None); expected the folder you "
            "extracted the release into.\n\n" + MANUAL_DOWNLOAD_INSTRUCTIONS
        )
    # absolute (links kept as named): the paths in a report must still name the files when it
    # is read from another folder (an export's report lives inside OUT)
    root = Path(root).expanduser().absolute()
    _check_root(root)
    located = _locate_root(root)
    release = Release(root=located or root)
    if located is not None:
        for name in PARTS:
            part = _find_part(located, name)
            if part is not None:
                release.parts[name] = part
    if release.parts:
        beside = _release_level_ignored(release.root, release.parts)  # each names the part it joins
        for name, part in release.parts.items():
            extra = [i for i in beside if i.part == name]
            if extra:
                release.parts[name] = replace(part, ignored=(*extra, *part.ignored))
    if not release.parts:
        blocked = _unlistable_below(root)
        if blocked:
            listed = "; ".join(f"{path}: {_NOT_LISTED.format(error=error)}" for path, error in blocked[:5])
            raise ReleaseNotFoundError(f"{root}: no AffectNet+ part could be read; {listed}")
        raise ReleaseNotFoundError(
            f"{root}: no AffectNet+ part found; looked for human_annotated/train_set, "
            "human_annotated/validation_set and no_human_annotated (each with images/ and "
            "annotations/), at this folder and up to two levels below it.\n\n" + MANUAL_DOWNLOAD_INSTRUCTIONS
        )
    return release


def _scan(folder: Path | None, part: str, suffixes: tuple[str, ...], ignored: list[IgnoredFile], odd: dict[str, str]):
    """:func:`_scan_names` with every stem's files as a list of paths (the 8-label release's lister)."""
    names, error = _scan_names(folder, part, suffixes, ignored, odd)
    return {stem: [folder / name for name in _names(found, stem, suffixes[0])] for stem, found in names.items()}, error  # type: ignore[operator]


def _scan_names(
    folder: Path | None,
    part: str,
    suffixes: tuple[str, ...],
    ignored: list[IgnoredFile],
    odd: dict[str, str],
    numbers: array | None = None,
):
    """stem (NFC) -> the record file's name in ``folder`` (``None`` for the usual
    ``<stem><suffixes[0]>``, so that a listing of the full release stays small; a list when
    there are several), and why the folder cannot be listed (or ""); everything else into
    ``ignored``. An entry named like a record file that is not one (a folder ``7.json/``, a
    broken link) also goes into ``odd`` (stem -> why), so its record's reason can name it.

    With ``numbers``, a usual name whose stem is a number (:func:`_number_stem`) goes there,
    as that number, instead: 8 bytes, not a dict entry and a string (see :func:`_pair_numbers`)."""
    by_stem: dict[str, str | list[str] | None] = {}
    usual_suffix = suffixes[0][1:]
    if folder is None:
        return by_stem, ""
    try:
        listing = os.scandir(folder)
    except OSError as exc:
        ignored.append(IgnoredFile(part, folder, _NOT_LISTED.format(error=exc.strerror or exc)))
        return by_stem, f"{folder} cannot be listed ({exc.strerror or exc}): check its permissions and run again"
    with listing:
        for entry in listing:
            name = entry.name
            if name.startswith("."):
                ignored.append(IgnoredFile(part, Path(entry.path), "hidden file (name starts with '.')"))
                continue
            try:
                regular = entry.is_file()
            except OSError as exc:
                path = Path(entry.path)
                ignored.append(IgnoredFile(part, path, _NOT_FOLLOWED.format(error=exc.strerror or exc)))
                _note_odd(
                    odd, name, suffixes, f"{path} cannot be followed ({exc.strerror or exc}): fix it and run again"
                )
                continue
            if not regular:
                path = Path(entry.path)
                if entry.is_symlink() and not os.path.exists(entry.path):
                    reason = "broken symbolic link (its target does not exist); not read. Fix or remove it"
                    _note_odd(odd, name, suffixes, f"{path} is a broken symbolic link: fix it and run again")
                else:
                    reason = "not a regular file (a folder, device or pipe); not read"
                    _note_odd(
                        odd,
                        name,
                        suffixes,
                        f"{path} is not a regular file (a folder, device or pipe): replace it with the file and run again",
                    )
                ignored.append(IgnoredFile(part, path, reason))
                continue
            stem, dot, suffix = name.rpartition(".")
            if not dot or ("." + suffix.lower()) not in suffixes:
                expected = " or ".join(suffixes)
                ignored.append(IgnoredFile(part, Path(entry.path), f"unexpected file type (expected {expected})"))
                continue
            key = stem
            if not stem.isascii():
                try:
                    stem.encode("utf-8")
                except UnicodeEncodeError:
                    ignored.append(
                        IgnoredFile(
                            part,
                            Path(entry.path),
                            "file name is not valid UTF-8, so it cannot be an image_id; not read. Rename the file (and its pair) and run again",
                        )
                    )
                    continue
                key = _stem_key(stem)
            value = None if suffix == usual_suffix and key is stem else name
            if value is None and numbers is not None and _number_stem(stem):
                numbers.append(int(stem))
                continue
            if key in by_stem:  # a second file for this stem
                by_stem[key] = [*_names(by_stem[key], key, suffixes[0]), name]
            else:
                by_stem[key] = value
    return by_stem, ""


def _stem_key(stem: str) -> str:
    """The form records are paired by: NFC, so a macOS (NFD) name pairs with its twin."""
    return stem if stem.isascii() else unicodedata.normalize("NFC", stem)


def _note_odd(odd: dict[str, str], name: str, suffixes: tuple[str, ...], why: str) -> None:
    stem, dot, suffix = name.rpartition(".")
    if dot and "." + suffix.lower() in suffixes:
        odd.setdefault(_stem_key(stem), why)


def list_records(part: Part) -> tuple[RecordList, list[IgnoredFile]]:
    """Pair ``images/<id>.jpg`` with ``annotations/<id>.json`` by stem.

    Returns the records in :func:`natural_key` order (deterministic whatever the file
    system's listing order or the hash seed) and what is not read: the files that are not
    records and the part's ``ignored`` folders.
    """
    ignored: list[IgnoredFile] = list(part.ignored)
    odd_images: dict[str, str] = {}
    odd_annotations: dict[str, str] = {}
    image_numbers, annotation_numbers = array("q"), array("q")
    images, images_error = _scan_names(part.images_dir, part.name, _IMAGE_SUFFIXES, ignored, odd_images, image_numbers)
    annotations, annotations_error = _scan_names(
        part.annotations_dir, part.name, (_ANNOTATION_SUFFIX,), ignored, odd_annotations, annotation_numbers
    )
    paired = _pair_numbers(images, image_numbers, annotations, annotation_numbers)
    del image_numbers, annotation_numbers
    followed = [i for i in part.ignored if i.path.parent == part.path and i.reason.startswith("cannot be followed")]
    for what, found, names in (
        ("images", part.images_dir, _IMAGES_DIR),
        ("annotations", part.annotations_dir, _ANNOTATIONS_DIR),
    ):
        if found is not None:
            continue
        if any(normalize_name(i.path.name) in names for i in followed):
            error = (
                f"{part.path}/{what} cannot be followed (a symbolic-link loop or a broken link): fix it and run again"
            )
        else:
            error = (
                f"{part.path} has no {what}/ folder (a partial extraction?): extract the part's {what} and run again"
            )
        if what == "images":
            images_error = error
        else:
            annotations_error = error
    items: list[str | RecordFiles] = []
    stems = _natural_sorted(images.keys() | annotations.keys())
    for stem in stems:
        image, annotation = images.get(stem, _ABSENT), annotations.get(stem, _ABSENT)
        if image is None and annotation is None:
            items.append(stem)  # the usual record, <stem>.jpg and <stem>.json: made into RecordFiles when read
            continue
        image_paths = sorted(part.images_dir / n for n in _names(image, stem, _IMAGE_SUFFIXES[0]))  # type: ignore[operator]
        annotation_paths = sorted(part.annotations_dir / n for n in _names(annotation, stem, _ANNOTATION_SUFFIX))  # type: ignore[operator]
        items.append(
            RecordFiles(
                part=part.name,
                image_id=stem,
                image=image_paths[0] if image_paths else None,
                annotation=annotation_paths[0] if annotation_paths else None,
                duplicates=tuple(image_paths[1:] + annotation_paths[1:]),
                unreadable=(
                    (odd_images.get(stem) or images_error)
                    if not image_paths
                    else (odd_annotations.get(stem) or annotations_error)
                    if not annotation_paths
                    else ""
                ),
            )
        )
    ignored.sort(key=lambda item: str(item.path))
    if not len(paired):
        return RecordList(part.name, part.images_dir, part.annotations_dir, items), ignored
    # the other records among the numbered ones, in natural_key order: a number's key orders by its value
    after = [int(stem) if _number_stem(stem.lstrip("0") or "0") else _NUMBER_LIMIT for stem in stems]
    where = np.searchsorted(paired, np.array(after, dtype=np.int64), side="right")  # "7" before "07" before "8"
    coded = np.insert(paired, where, -1 - np.arange(len(items), dtype=np.int64))
    return RecordList(part.name, part.images_dir, part.annotations_dir, coded, items), ignored


#: Stems of numbered records have at most this many digits (their numbers fit int64).
_NUMBER_DIGITS = 18
_NUMBER_LIMIT = 10**_NUMBER_DIGITS  # above every such number


def _number_stem(stem: str) -> bool:
    """A stem that is a number as ``str(int)`` writes it (``"7"``, not ``"07"``) of at most
    :data:`_NUMBER_DIGITS` digits: AffectNet+'s ids. Its natural order is its number's."""
    return stem.isdigit() and stem.isascii() and len(stem) <= _NUMBER_DIGITS and (stem[0] != "0" or stem == "0")


def _pair_numbers(images: dict, image_numbers: array, annotations: dict, annotation_numbers: array) -> np.ndarray:
    """The numbers (sorted) of the records whose image and annotation both have the usual
    name and no other file (:func:`_scan_names`' ``numbers``); every other number is put back
    into its folder's dict as the usual name (``None``, or added to the names found for its
    stem), so that :func:`list_records` makes its record as it makes any other. (The
    numbers are sorted in place and matched by binary search: a few arrays of 8 bytes a
    record, for a part of half a million.)"""
    a, b = (
        np.frombuffer(numbers, dtype=np.int64) if numbers else np.zeros(0, np.int64)
        for numbers in (image_numbers, annotation_numbers)
    )
    a.sort()
    b.sort()
    in_b = _among(a, b)
    paired = a[in_b]
    named = [int(stem) for stem in (*images, *annotations) if _number_stem(stem)]
    if named:
        paired = paired[~_among(paired, np.sort(np.array(named, dtype=np.int64)))]
    for numbers, by_stem, suffix in ((a, images, _IMAGE_SUFFIXES[0]), (b, annotations, _ANNOTATION_SUFFIX)):
        if len(numbers) == len(paired):
            continue  # every number paired
        for number in numbers[~_among(numbers, paired)].tolist():
            stem = str(number)
            by_stem[stem] = [*_names(by_stem[stem], stem, suffix), stem + suffix] if stem in by_stem else None
    return paired


def _among(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``bool``: which of ``values`` are in ``sorted_set`` (sorted, unique)."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    index = np.searchsorted(sorted_set, values)
    index[index == len(sorted_set)] = 0
    return sorted_set[index] == values


_ABSENT = ""  # no file for this stem, in list_records (None there is the usual name)


def _names(found: str | list[str] | None, stem: str, suffix: str) -> list[str]:
    """The file names a :func:`_scan_names` value stands for."""
    if found is None:
        return [stem + suffix]
    if isinstance(found, list):
        return found
    return [found] if found else []


def _natural_sorted(stems) -> list[str]:
    """``sorted(stems, key=natural_key)``; without a key per stem when every stem is a
    number written without leading zeros (AffectNet+'s ids), whose natural order is by
    length, then by text."""
    ordered = sorted(stems)
    if all(stem.isdigit() and stem.isascii() and (stem[0] != "0" or stem == "0") for stem in ordered):
        ordered.sort(key=len)  # stable: by length, then by text
        return ordered
    return sorted(ordered, key=natural_key)


class RecordList(Sequence[RecordFiles]):
    """A part's records in reading order, as :func:`list_records` returns them: a sequence
    of :class:`RecordFiles` that holds only the id of a usual record (``<id>.jpg`` and
    ``<id>.json``) and makes its :class:`RecordFiles` when asked for it, so that the listing
    of the full release (960,000 records) stays small, and small to send to a worker. A
    slice is a ``RecordList`` too.

    The ids are a list of ``str`` and :class:`RecordFiles`, or, when numbered ids
    (:func:`_number_stem`) are among them, an ``int64`` array: an id ``>= 0`` is that
    numbered record, ``-1 - k`` the ``k``-th of ``others`` (8 bytes a record)."""

    __slots__ = ("part", "images_dir", "annotations_dir", "_items", "_others")

    def __init__(
        self,
        part: str,
        images_dir: Path | None,
        annotations_dir: Path | None,
        items: list[str | RecordFiles] | np.ndarray,
        others: list[str | RecordFiles] | None = None,
    ):
        self.part, self.images_dir, self.annotations_dir = part, images_dir, annotations_dir
        self._items, self._others = items, others

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> RecordFiles: ...

    @overload
    def __getitem__(self, index: slice) -> RecordList: ...

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self._record(self._decode(self._items[index]))
        items, others = self._items[index], self._others
        if others is not None:  # keep only the others of the slice, renumbered
            coded = items < 0
            others = [others[-1 - k] for k in items[coded].tolist()]
            items = items.copy()
            items[coded] = -1 - np.arange(len(others), dtype=np.int64)
        return RecordList(self.part, self.images_dir, self.annotations_dir, items, others)

    def __iter__(self) -> Iterator[RecordFiles]:
        return map(self._record, self._entries())

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Sequence)
            and len(self) == len(other)
            and all(a == b for a, b in zip(self, other, strict=False))
        )

    def __repr__(self) -> str:
        return f"RecordList({self.part!r}, {len(self)} records)"

    def paths(self) -> Iterator[tuple[str, str, str] | RecordFiles]:
        """The records in order, a usual one as ``(image_id, image path, annotation path)``
        strings (the ``str`` of its :class:`RecordFiles` paths, made without a ``Path``: the
        export's hot loop), any other as its :class:`RecordFiles`."""
        if not len(self._items):
            return
        images, annotations = str(self.images_dir) + os.sep, str(self.annotations_dir) + os.sep
        image_suffix = _IMAGE_SUFFIXES[0]
        for item in self._entries():
            if type(item) is str:
                yield item, images + item + image_suffix, annotations + item + _ANNOTATION_SUFFIX
            else:
                yield item  # type: ignore[misc]

    def _entries(self) -> Iterator[str | RecordFiles]:
        """The items in order: the id of a usual record, else its RecordFiles."""
        if self._others is None:
            return iter(self._items)
        return map(self._decode, self._items.tolist())  # type: ignore[union-attr]

    def _decode(self, item):
        if self._others is None:
            return item
        item = int(item)
        return str(item) if item >= 0 else self._others[-1 - item]

    def _record(self, item: str | RecordFiles) -> RecordFiles:
        if type(item) is not str:
            return item  # type: ignore[return-value]
        images, annotations = self.images_dir, self.annotations_dir
        assert images is not None and annotations is not None  # a part with records has both folders
        return RecordFiles(
            self.part, item, images / (item + _IMAGE_SUFFIXES[0]), annotations / (item + _ANNOTATION_SUFFIX)
        )
