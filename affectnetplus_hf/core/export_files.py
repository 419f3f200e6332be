"""Every fact about an exported folder's layout, and the manifest of the files an export owns.

An export of AffectNet+ into ``OUT`` is::

    OUT/README.md                 the dataset card (YAML configs name the shards below)
    OUT/export_info.json          fingerprint, counts, and the manifest ("files")
    OUT/export_report.jsonl       bad records, notes, ignored files, summary (local only)
    OUT/stats/<plot>.png          the card's plots (when drawn)
    OUT/data/<fingerprint>/<part>/<partition>-SSSSS-of-NNNNN.parquet

and, beside ``OUT`` in its parent, while or after an export runs::

    .OUT.lock                     held by the export that is writing OUT
    .OUT.journal.json             the folders below that an export created, each with its
                                  device and inode (present only while there are some)
    .OUT.tmp-<hex>/               staging folder of a running (or killed) export
    .OUT.old-<hex>/               the previous export, between the two renames of a swap
                                  on a filesystem without an atomic exchange

These names are for people reading a folder listing, never proof: an export touches a
folder beside ``OUT`` only when the journal recorded it, with the same inode, when that
export created or moved it (:mod:`~affectnetplus_hf.exporter.swap`).

**The manifest.** ``export_info.json["files"]`` maps every published file of the export
(the card, the plots, the shards; POSIX paths relative to ``OUT``) to its ``size`` and
``sha256``; ``generator`` (:data:`GENERATOR`) and ``format_version`` say which package wrote
it, in which layout (:func:`marker_problem`). The export owns exactly these, plus
``export_info.json`` itself and the report (:func:`owned_paths`): a re-export replaces only
those, a push publishes only the manifest's files and deletes on the Hub only shards and
plots that the previously published manifest lists with the content they still have, and
only when that manifest carries the marker. Every other file in ``OUT`` or in a Hub repo
belongs to the user.

The report lives inside ``OUT`` so that it moves with the folder when an export is swapped
into place (it can never describe another export); its summary line also names the
fingerprint (:func:`check_report`). It holds local paths, so it is not in the manifest and
``affectnetplus push`` never uploads it.

This module is a leaf (it imports only the error types), read by the export, the push, the
streaming reader, the statistics and the card.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExportError

__all__ = [
    "CARD_FILE",
    "DATA_DIR",
    "FORMAT1_PLOTS",
    "FORMAT_VERSION",
    "GENERATOR",
    "INFO_FILE",
    "REPORT_FILE",
    "SHARD_SUFFIX",
    "STATS_DIR",
    "FileRecord",
    "check_files",
    "check_report",
    "data_dir_for",
    "file_record",
    "is_shard_path",
    "journal_path",
    "lock_path",
    "manifest",
    "manifest_entry",
    "marker_problem",
    "old_folder",
    "owned_paths",
    "read_info",
    "read_report",
    "shard_glob",
    "shard_name",
    "shard_paths",
    "staging_folder",
    "unexported_report_path",
]

#: The dataset card, at the root of the folder.
CARD_FILE = "README.md"
#: Fingerprint, counts and the manifest of the export.
INFO_FILE = "export_info.json"
#: The export's report: one JSON object per line, the summary last. Never published.
REPORT_FILE = "export_report.jsonl"
#: Folder of the Parquet shards; the shards of one export sit in ``DATA_DIR/<fingerprint>/``.
DATA_DIR = "data"
#: Folder of the card's plots.
STATS_DIR = "stats"
#: File-name ending of a shard.
SHARD_SUFFIX = ".parquet"
#: Version of the ``export_info.json`` layout: 2 added the manifest (``files``), 3 the
#: ``generator`` marker (:data:`GENERATOR`).
FORMAT_VERSION = 3
#: ``export_info.json["generator"]``: the package that wrote it. With ``format_version`` it is what
#: tells a manifest (or a push's record) of this package from another tool's file of the same shape.
GENERATOR = "affectnetplus-hf"
#: The first format whose ``export_info.json`` carries :data:`GENERATOR`.
_MARKED_SINCE = 3
#: The card's plots an export of format 1 (before the manifest) drew into ``STATS_DIR``. That
#: format is frozen, so this list is a fact of history, not of the current plotting code: it
#: lets a re-export or a push replace those plots instead of taking them for the user's files.
FORMAT1_PLOTS = (
    "class_subset_counts.png",
    "valence_arousal_density.png",
    "soft_label_confusion.png",
    "age_by_gender.png",
    "race_by_class.png",
    "landmarks_mean_shape.png",
)


# ----------------------------------------------------------------------------- shards


def data_dir_for(fingerprint: str) -> str:
    """The folder (relative to ``OUT``) holding the shards of the export with ``fingerprint``."""
    return f"{DATA_DIR}/{fingerprint}"


def shard_name(partition: str, shard: int, num_shards: int) -> str:
    """``<partition>-SSSSS-of-NNNNN.parquet``: the file name of one shard of a partition."""
    return f"{partition}-{shard:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"


def shard_glob(data_dir: str, part: str, num_shards: int | None, partition: str | None = None) -> str:
    """The ``data_files`` glob of a part's shards (all partitions, or one) for the card's configs.

    It matches only names :func:`shard_name` writes for that part's shard count
    (``easy-[0-9][0-9][0-9][0-9][0-9]-of-00008.parquet``), never a ``.parquet`` of yours in the
    same folder. Above 100,000 shards the index has no fixed width, and without a count (an
    ``export_info.json`` built by hand) neither has the count: those become ``[0-9]*``."""
    digits = "[0-9]" * 5 if num_shards is not None and num_shards <= 100_000 else "[0-9]*"
    count = f"{num_shards:05d}" if num_shards is not None else "[0-9]*"
    return f"{data_dir}/{part}/{partition or '*'}-{digits}-of-{count}{SHARD_SUFFIX}"


_SHARD_PATH = re.compile(
    rf"{DATA_DIR}/[0-9a-f]{{16}}/[a-z0-9_]+/[a-z0-9_]+-[0-9]{{5}}-of-[0-9]{{5}}{re.escape(SHARD_SUFFIX)}"
)


def is_shard_path(rel: str) -> bool:
    """Whether ``rel`` has the shape of a shard path an export writes
    (``data/<16 hex>/<part>/<partition>-SSSSS-of-NNNNN.parquet``). A shape is never proof that
    a file is ours; it only rules out files no export ever writes (``data/mine.parquet``)."""
    return _SHARD_PATH.fullmatch(rel) is not None


def shard_paths(info: dict) -> list[str]:
    """Every shard of an export, relative to its root, from its ``export_info.json`` dict.

    ``<data_dir>/<part>/<partition>-SSSSS-of-NNNNN.parquet`` for each part, partition and shard.
    Raises :class:`ExportError` when ``info`` lacks what an export writes.
    """
    try:
        data_dir = info["data_dir"].strip("/")
        return [
            f"{data_dir}/{part}/{shard_name(partition, shard, spec['num_shards'])}"
            for part, spec in info["parts"].items()
            for partition in spec["partitions"]
            for shard in range(spec["num_shards"])
        ]
    except (KeyError, TypeError, AttributeError) as err:
        raise ExportError(
            f"{INFO_FILE}: lacks {err}; expected data_dir and parts with num_shards and partitions, as written "
            "by `affectnetplus export`. Re-run the export."
        ) from None


# ----------------------------------------------------------------------------- the manifest


@dataclass(frozen=True)
class FileRecord:
    """Size and sha256 of one file of an export."""

    size: int
    sha256: str

    def to_json(self) -> dict:
        return {"size": self.size, "sha256": self.sha256}


def file_record(path: str | os.PathLike) -> FileRecord:
    """Size and sha256 of the file at ``path`` (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return FileRecord(size, digest.hexdigest())


def manifest_entry(root: str | os.PathLike, rels: Iterable[str]) -> dict[str, dict]:
    """The ``files`` value of ``export_info.json`` for the files ``rels`` under ``root``."""
    return {rel: file_record(Path(root) / rel).to_json() for rel in sorted(rels)}


def manifest(info: dict) -> dict[str, FileRecord]:
    """repo path -> :class:`FileRecord` of the published files an ``export_info.json`` lists.

    An export written before the manifest existed (format 1) lists no sizes; for it this is
    the card and the shards with ``FileRecord(-1, "")`` (known to be ours, content unknown).
    """
    files = info.get("files")
    if isinstance(files, dict):
        try:
            return {rel: FileRecord(int(rec["size"]), str(rec["sha256"])) for rel, rec in files.items()}
        except (KeyError, TypeError, ValueError):
            raise ExportError(f"{INFO_FILE}: its `files` entries lack size or sha256; re-run the export.") from None
    return {rel: FileRecord(-1, "") for rel in (CARD_FILE, *shard_paths(info))}


def owned_paths(info: dict) -> set[str]:
    """Every path (relative to ``OUT``) the export described by ``info`` wrote: its manifest,
    ``export_info.json`` and the report (and, for a format-1 export, which lists no plots, the
    plots that format drew: :data:`FORMAT1_PLOTS`). Nothing else in ``OUT`` is the export's."""
    owned = {*manifest(info), INFO_FILE, REPORT_FILE}
    if not isinstance(info.get("files"), dict):
        owned |= {f"{STATS_DIR}/{name}" for name in FORMAT1_PLOTS}
    return owned


def marker_problem(info: object) -> str | None:
    """Why ``info`` (a parsed ``export_info.json``, or a push's record of the same shape) is not
    one this package wrote in a format it reads; None when it is.

    Ours means: ``generator`` is :data:`GENERATOR`, ``format_version`` is an integer from 3 (the
    first format with the marker) to :data:`FORMAT_VERSION`, and ``files`` maps paths to size and
    sha256. A format-1 or format-2 file (written before the marker) is not ours by this test.
    """
    if not isinstance(info, dict):
        return "not a JSON object"
    if "generator" not in info:
        return f"it lacks the generator marker {GENERATOR!r} that this package writes"
    if info["generator"] != GENERATOR:
        return f"its generator is {info['generator']!r}, not {GENERATOR!r}"
    version = info.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < _MARKED_SINCE:
        return f"its format_version is {version!r}; expected an integer from {_MARKED_SINCE} to {FORMAT_VERSION}"
    if version > FORMAT_VERSION:
        return f"its format_version {version} is newer than this version of {GENERATOR} reads ({FORMAT_VERSION}); upgrade it"
    if not isinstance(info.get("files"), dict):
        return "it lists no files with sizes and sha256"
    try:
        manifest(info)
    except ExportError:
        return "its `files` entries lack size or sha256"
    return None


def read_info(folder: str | os.PathLike) -> dict:
    """The ``export_info.json`` of the exported ``folder``; :class:`ExportError` if absent or unreadable."""
    path = Path(folder) / INFO_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(
            f"{path}: not found; expected a folder written by `affectnetplus export`. Export the release first."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(f"{path}: not valid JSON ({err}); re-run `affectnetplus export` to rewrite it.") from None
    if not isinstance(info, dict) or "fingerprint" not in info or "parts" not in info:
        raise ExportError(
            f"{path}: not the export_info.json of an export (no fingerprint or parts); re-run the export."
        )
    return info


def check_files(folder: str | os.PathLike, info: dict) -> list[str]:
    """One line per manifest file of ``folder`` that is missing or whose size or sha256 differ.

    Empty when every file is exactly as the export wrote it. Sizes are compared first, so
    a truncated file is found without reading it.
    """
    root = Path(folder)
    problems = []
    for rel, expected in sorted(manifest(info).items()):
        path = root / rel
        if not path.is_file():
            problems.append(f"{path}: missing, but {INFO_FILE} lists it")
            continue
        if expected.size < 0:
            continue
        size = path.stat().st_size
        if size != expected.size:
            problems.append(f"{path}: {size} bytes, but {INFO_FILE} lists {expected.size}")
        elif file_record(path).sha256 != expected.sha256:
            problems.append(f"{path}: its sha256 differs from the one {INFO_FILE} lists (changed after the export)")
    return problems


# ----------------------------------------------------------------------------- the report


def read_report(folder: str | os.PathLike) -> list[dict]:
    """The lines of the report in ``folder`` (the summary last)."""
    path = Path(folder) / REPORT_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_report(folder: str | os.PathLike) -> list[dict]:
    """The report of ``folder``, checked to describe the export in it (same fingerprint).

    Raises :class:`ExportError` when the report is missing or names another fingerprint.
    """
    info = read_info(folder)
    try:
        lines = read_report(folder)
    except FileNotFoundError:
        raise ExportError(f"{Path(folder) / REPORT_FILE}: not found; re-run the export to write it.") from None
    summary = lines[-1] if lines else {}
    if summary.get("kind") != "summary" or summary.get("fingerprint") != info["fingerprint"]:
        raise ExportError(
            f"{Path(folder) / REPORT_FILE}: describes export {summary.get('fingerprint')!r}, but the folder holds "
            f"{info['fingerprint']!r}; re-run the export to rewrite both."
        )
    return lines


# ----------------------------------------------------------------------------- beside OUT


def lock_path(out_dir: Path) -> Path:
    """The lock file an export into ``out_dir`` holds while it runs."""
    return out_dir.with_name(f".{out_dir.name}.lock")


def unexported_report_path(out_dir: Path) -> Path:
    """Where the report of a run that exported nothing goes (every record bad, or none found):
    ``<OUT>.report.jsonl`` beside ``OUT``, because ``OUT`` is left as it was and the report
    inside it belongs to the export it holds. A later successful export does not remove it."""
    out_dir = Path(out_dir)
    return out_dir.with_name(f"{out_dir.name}.report.jsonl")


def staging_folder(out_dir: Path, token: str) -> Path:
    """The hidden folder an export writes into before it is swapped into place."""
    return out_dir.with_name(f".{out_dir.name}.tmp-{token}")


def old_folder(out_dir: Path, token: str) -> Path:
    """Where the previous export waits between the two renames of a non-atomic swap."""
    return out_dir.with_name(f".{out_dir.name}.old-{token}")


def journal_path(out_dir: Path) -> Path:
    """The record of the folders beside ``out_dir`` that exports created (see :mod:`~affectnetplus_hf.exporter.swap`)."""
    return out_dir.with_name(f".{out_dir.name}.journal.json")
