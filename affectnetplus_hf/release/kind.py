"""Which release a folder holds, decided once, and the one way every stage reads it.

:func:`open_release` looks at the folder given (and up to two levels below it) for each of
the three releases this package reads (:data:`~affectnetplus_hf.core.configs.RELEASE_KINDS`):

* AffectNet+: ``human_annotated/`` or ``no_human_annotated/`` (:mod:`.layout`, :mod:`.reader`);
* AffectNet 2017: ``Manually_Annotated_file_lists/``, ``Manually_Annotated_Images/`` or their
  ``Automatically_`` twins, or a wrapper of them (:mod:`.original`);
* the 8-label release: ``train_set/`` or ``val_set/`` holding ``images/`` or ``annotations/``
  (:mod:`.eightlabel`).

Exactly one must match: none raises :class:`~affectnetplus_hf.errors.ReleaseNotFoundError`
with one message saying what was looked for; two or more name each one found. The
:class:`FoundRelease` it returns lists each part's records, and :func:`iter_rows` reads
records of any kind with the reader of their kind (a record's type says which).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.configs import AFFECTNET_8LABELS, AFFECTNET_2017, AFFECTNET_PLUS
from ..core.releases import ReleaseInfo, release_info
from ..errors import ReleaseNotFoundError
from . import eightlabel, original
from .layout import (
    IgnoredFile,
    RecordFiles,
    RecordList,
    _check_root,
    _iter_dirs,
    _locate_root,
    find_release,
    list_records,
)
from .reader import ReadBatch, ReadResult, read_batches, read_record, table_of_rows

__all__ = ["FoundRelease", "iter_batches", "iter_rows", "open_release", "read_any"]


@dataclass
class FoundRelease:
    """A release on disk: its kind, root, parts (name -> the folder or list shown in reports)
    and every folder its files are read from."""

    kind: str
    root: Path
    parts: dict[str, Path]
    folders: tuple[Path, ...]
    _lister: Callable[[str], tuple[Sequence[Any], list[IgnoredFile]]] = field(repr=False)

    @property
    def info(self) -> ReleaseInfo:
        return release_info(self.kind)

    @property
    def title(self) -> str:
        return self.info.title

    def list_records(self, part: str) -> tuple[Sequence[Any], list[IgnoredFile]]:
        """The records of ``part`` in reading order, and the files and folders not read."""
        return self._lister(part)


def _plus(root: Path | None) -> FoundRelease:
    release = find_release(root)
    folders = [release.root] + [
        p for part in release.parts.values() for p in (part.path, part.images_dir, part.annotations_dir) if p
    ]
    return FoundRelease(
        AFFECTNET_PLUS,
        release.root,
        {n: p.path for n, p in release.parts.items()},
        tuple(folders),
        lambda name: list_records(release.parts[name]),
    )


def _eight(root: Path) -> FoundRelease:
    parts = eightlabel.find_parts(root)
    if not parts:
        raise ReleaseNotFoundError(
            f"{root}: holds no part of the 8-label release; looked for train_set/ and val_set/, each with images/ "
            "and annotations/. Extract them there and run again."
        )
    folders = [root] + [p for part in parts.values() for p in (part.path, part.images_dir, part.annotations_dir) if p]
    return FoundRelease(
        AFFECTNET_8LABELS,
        root,
        {n: p.path for n, p in parts.items()},
        tuple(folders),
        lambda name: eightlabel.list_records(parts[name]),
    )


def _original(root: Path) -> FoundRelease:
    parts, ignored_lists = original.find_parts(root)
    if not parts:
        raise ReleaseNotFoundError(
            f"{root}: holds AffectNet 2017 folders but no list; looked for Manually_Annotated_file_lists/training.csv, "
            "validation.csv and Automatically_Annotated_file_lists/automatically_annotated.csv (up to three levels "
            "below). Extract the file lists too and run again."
        )
    listed: dict[str, tuple[list, list[IgnoredFile]]] = {}

    def lister(name: str):
        if not listed:  # the lists share images folders: listed together, once
            listed.update(original.list_release(parts, ignored_lists))
        return listed[name]

    folders = [root] + [p for part in parts.values() for p in (part.path.parent, part.images_dir) if p]
    return FoundRelease(AFFECTNET_2017, root, {n: p.path for n, p in parts.items()}, tuple(folders), lister)


def _locate(root: Path, test: Callable[[Path], bool], depth: int = 2) -> list[Path]:
    """The shallowest folders at or below ``root`` (``depth`` levels) for which ``test`` holds."""
    if test(root):
        return [root]
    if depth == 0:
        return []
    return [
        hit for child in _iter_dirs(root) if not child.name.startswith(".") for hit in _locate(child, test, depth - 1)
    ]


def _not_found(root: Path) -> ReleaseNotFoundError:
    looked = "; ".join(
        f"{release_info(kind).title}: {release_info(kind).layout}"
        for kind in (AFFECTNET_PLUS, AFFECTNET_2017, AFFECTNET_8LABELS)
    )
    return ReleaseNotFoundError(
        f"{root}: no AffectNet release found (no AffectNet+ part found, nor an AffectNet 2017 or 8-label one) at this "
        f"folder or up to two levels below it. Looked for {looked}. Folder names match in any case, with space, '-' "
        "and '_' alike. Pass the folder you extracted one release into."
    )


def open_release(root: str | os.PathLike | None) -> FoundRelease:
    """The release under ``root``: which of the three kinds it is, and its parts.

    Raises :class:`ReleaseNotFoundError` when ``root`` is missing or not a folder (the message of
    :func:`~.layout.find_release`), holds no release (one message naming what was looked for),
    or holds releases of more than one kind (naming each).
    """
    if root is None:
        return _plus(root)  # find_release's message: no folder given, and how to get the data
    root = Path(root).expanduser().absolute()
    _check_root(root)
    found: dict[str, list[Path]] = {}
    plus = _locate_root(root)  # raises for two AffectNet+ releases
    if plus is not None:
        found[AFFECTNET_PLUS] = [plus]
    for kind, test in ((AFFECTNET_2017, original.is_root), (AFFECTNET_8LABELS, eightlabel.is_root)):
        hits = _locate(root, test)
        if hits:
            found[kind] = hits
    if not found:
        try:
            find_release(root)  # the folders that could not be listed, when some hide a release
        except ReleaseNotFoundError as exc:
            if "could not be read" in str(exc):
                raise
        raise _not_found(root)
    if len(found) > 1 or any(len(hits) > 1 for hits in found.values()):
        listed = "; ".join(
            f"{release_info(kind).title} at {', '.join(str(h) for h in hits)}" for kind, hits in found.items()
        )
        raise ReleaseNotFoundError(
            f"{root}: holds more than one release ({listed}); expected one. Pass the folder of the release you mean."
        )
    kind, (where,) = next(iter(found.items()))
    if kind == AFFECTNET_PLUS:
        return _plus(root)
    return _original(where) if kind == AFFECTNET_2017 else _eight(where)


#: record type -> the reader of its kind
_READERS: dict[type, Callable[..., ReadResult]] = {
    RecordFiles: read_record,
    original.CsvRow: original.read_record,
    eightlabel.NpyRecord: eightlabel.read_record,
}


def read_any(record, check_images: str = "markers") -> ReadResult:
    """Read one record of any kind with its kind's reader."""
    return _READERS[type(record)](record, check_images)


def iter_rows(records: Iterable, on_bad: str = "skip", check_images: str = "markers") -> Iterator[ReadResult]:
    """:func:`.reader.iter_rows` for records of any kind: with ``on_bad="error"`` the first bad
    record raises :class:`~affectnetplus_hf.errors.BadRecordError`; otherwise bad records are
    yielded as results whose ``bad`` is set."""
    if on_bad not in ("skip", "error"):
        raise ValueError(f"on_bad must be 'skip' or 'error', got {on_bad!r}")
    for record in records:
        result = _READERS[type(record)](record, check_images)
        if result.bad is not None and on_bad == "error":
            raise result.bad.error()
        yield result


def iter_batches(
    records: Sequence, on_bad: str = "skip", check_images: str = "markers", batch_size: int = 500
) -> Iterator[ReadBatch]:
    """:func:`iter_rows` for records of any kind, ``batch_size`` at a time, each batch's rows
    as one Arrow table (:class:`~.reader.ReadBatch`): AffectNet+ records by
    :func:`~.reader.read_batches`, any other kind's rows converted by
    :func:`~.reader.table_of_rows`."""
    if isinstance(records, RecordList) or all(type(record) is RecordFiles for record in records):
        yield from read_batches(records, on_bad, check_images, batch_size)  # type: ignore[arg-type]
        return
    results = iter_rows(records, on_bad, check_images)
    while True:
        chunk = list(itertools.islice(results, batch_size))
        if not chunk:
            return
        yield ReadBatch(
            table_of_rows([r.row for r in chunk if r.row is not None]),
            [r.bad for r in chunk if r.bad is not None],
            [note for r in chunk for note in r.notes],
            len(chunk),
        )
