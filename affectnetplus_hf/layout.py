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
  :class:`IgnoredFile` so the report can list them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ReleaseNotFoundError
from .schema import MANUAL_DOWNLOAD_INSTRUCTIONS

__all__ = [
    "PARTS",
    "IgnoredFile",
    "Part",
    "RecordFiles",
    "find_release",
    "list_records",
    "natural_key",
    "normalize_name",
]

#: Part names in the order they are processed and reported.
PARTS: tuple[str, ...] = ("train", "validation", "unlabeled")

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
    """Sort key that orders integer stems numerically (2 before 10) and others after them."""
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


@dataclass(frozen=True)
class Part:
    """One part of the release on disk."""

    name: str
    path: Path
    images_dir: Path | None
    annotations_dir: Path | None


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

    @property
    def path(self) -> Path:
        """The path that best names this record in a report."""
        return self.annotation or self.image  # type: ignore[return-value]


@dataclass(frozen=True)
class IgnoredFile:
    """A file or folder inside ``images/`` or ``annotations/`` that is not a record."""

    part: str
    path: Path
    reason: str


@dataclass
class Release:
    """The parts found under a root, by part name, in :data:`PARTS` order."""

    root: Path
    parts: dict[str, Part] = field(default_factory=dict)


def _children_by_name(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir():
            found.setdefault(normalize_name(entry.name), []).append(Path(entry.path))
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
    folder: Path | None = root
    for level in _PART_PATHS[name]:
        folder = _descend(folder, level)
        if folder is None:
            return None
    images = _descend(folder, _IMAGES_DIR)
    annotations = _descend(folder, _ANNOTATIONS_DIR)
    if images is None and annotations is None:
        return None
    return Part(name, folder, images, annotations)


def _looks_like_release(folder: Path) -> bool:
    return any(marker in _children_by_name(folder) for marker in _ROOT_MARKERS)


def _locate_root(root: Path, depth: int = 2) -> Path | None:
    if _looks_like_release(root):
        return root
    if depth == 0:
        return None
    hits = [p for p in (_locate_root(child, depth - 1) for child in sorted(_iter_dirs(root))) if p]
    if len(hits) > 1:
        listed = ", ".join(str(h) for h in hits)
        raise ReleaseNotFoundError(
            f"{root}: contains more than one AffectNet+ release ({listed}); expected one. "
            "Pass the folder of the release you mean."
        )
    return hits[0] if hits else None


def _iter_dirs(folder: Path):
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_dir()]
    except OSError:
        return []


def find_release(root: str | os.PathLike | None) -> Release:
    """Return the parts present under ``root``.

    Raises :class:`ReleaseNotFoundError` (a ``FileNotFoundError``) when ``root`` is missing,
    is not a folder, or holds no part; the message says what was looked for and how to get
    the data.
    """
    if root is None:
        raise ReleaseNotFoundError(
            "No AffectNet+ folder was given (data_dir is None); expected the folder you "
            "extracted the release into.\n\n" + MANUAL_DOWNLOAD_INSTRUCTIONS
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ReleaseNotFoundError(
            f"{root}: no such folder; expected the folder you extracted AffectNet+ into.\n\n"
            + MANUAL_DOWNLOAD_INSTRUCTIONS
        )
    located = _locate_root(root)
    release = Release(root=located or root)
    if located is not None:
        for name in PARTS:
            part = _find_part(located, name)
            if part is not None:
                release.parts[name] = part
    if not release.parts:
        raise ReleaseNotFoundError(
            f"{root}: no AffectNet+ part found; looked for human_annotated/train_set, "
            "human_annotated/validation_set and no_human_annotated (each with images/ and "
            "annotations/), at this folder and up to two levels below it.\n\n"
            + MANUAL_DOWNLOAD_INSTRUCTIONS
        )
    return release


def _scan(folder: Path | None, part: str, suffixes: tuple[str, ...], ignored: list[IgnoredFile]):
    by_stem: dict[str, list[Path]] = {}
    if folder is None:
        return by_stem
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            path = Path(entry.path)
            if name.startswith("."):
                ignored.append(IgnoredFile(part, path, "hidden file (name starts with '.')"))
                continue
            if not entry.is_file():
                ignored.append(IgnoredFile(part, path, "not a regular file"))
                continue
            stem, dot, suffix = name.rpartition(".")
            if not dot or ("." + suffix.lower()) not in suffixes:
                expected = " or ".join(suffixes)
                ignored.append(IgnoredFile(part, path, f"unexpected file type (expected {expected})"))
                continue
            by_stem.setdefault(stem, []).append(path)
    return by_stem


def list_records(part: Part) -> tuple[list[RecordFiles], list[IgnoredFile]]:
    """Pair ``images/<id>.jpg`` with ``annotations/<id>.json`` by stem.

    Returns the records in natural stem order (deterministic whatever the file system's
    listing order) and the files that are not records.
    """
    ignored: list[IgnoredFile] = []
    images = _scan(part.images_dir, part.name, _IMAGE_SUFFIXES, ignored)
    annotations = _scan(part.annotations_dir, part.name, (_ANNOTATION_SUFFIX,), ignored)
    records = []
    for stem in sorted(images.keys() | annotations.keys(), key=natural_key):
        image_paths = sorted(images.get(stem, []))
        annotation_paths = sorted(annotations.get(stem, []))
        records.append(
            RecordFiles(
                part=part.name,
                image_id=stem,
                image=image_paths[0] if image_paths else None,
                annotation=annotation_paths[0] if annotation_paths else None,
                duplicates=tuple(image_paths[1:] + annotation_paths[1:]),
            )
        )
    ignored.sort(key=lambda item: str(item.path))
    return records, ignored
