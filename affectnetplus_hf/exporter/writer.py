"""Export a raw AffectNet+ release to a self-contained no-code Parquet dataset folder.

The folder's layout (file names, shard naming, the fingerprint folder, the manifest) is
described and owned by :mod:`~affectnetplus_hf.core.export_files`; in short ``OUT/README.md``,
``OUT/export_info.json`` (with the manifest), ``OUT/export_report.jsonl``, ``OUT/stats/`` and
``OUT/data/<fingerprint>/<part>/<partition>-SSSSS-of-NNNNN.parquet``.

``part`` is ``train``, ``validation`` or ``unlabeled``; ``partition`` is ``easy``,
``challenging``, ``difficult`` or :data:`~affectnetplus_hf.core.configs.NULL_SUBSET` (rows whose
file has no subset). Each row is stored once; configs are globs over these shared files
(``all`` = every file of a part, ``easy`` = the ``easy-*`` files, ...). Every (part,
partition) has the same shard count as its part, so a part's shards line up for distributed
reading; see :func:`auto_num_shards` for the rule.

Guarantees:

* **Same input, same bytes.** Records are read in natural id order and cut into shards by
  position, independent of ``num_proc``; Parquet is written through ``datasets``'
  ``ParquetWriter`` (features kept in the Arrow metadata).
* **Old or new, whole; nothing of yours lost.** Everything is written into a hidden staging
  folder beside ``OUT``; files in ``OUT`` that the previous export did not write are carried
  into it, and it replaces ``OUT`` in one atomic exchange (see :mod:`~affectnetplus_hf.exporter.swap`). The
  report is inside the folder, so it always describes the export beside it. A lock keeps a
  second export into the same ``OUT`` out; leftovers of killed runs are removed by the next,
  which acts only on folders its journal proves an export created (never by name).
* **No stale cache.** ``datasets`` caches a local folder by its name and YAML ``configs``,
  not by its files (datasets issues #6465, #2956): rewriting the Parquet under the same
  YAML would keep serving old rows. The data folder is therefore named after a
  fingerprint of the exported bytes, and the YAML's ``data_files`` name it, so any change
  of content changes the configs and with them the cache key.
* **Every record accounted for.** Records read = records written + records reported; bad
  records, notes and files that are not records go to ``OUT/export_report.jsonl`` (local
  paths: it is not in the manifest, so ``affectnetplus push`` never publishes it).

Progress and notes go to the ``affectnetplus_hf.exporter.writer`` logger and the optional
``on_progress`` callback; nothing is printed (the progress bar aside).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.choices import CheckImages, OnBad, check_choice
from ..core.columns import label_codes, label_subset_counts
from ..core.configs import AFFECTNET_PLUS, NULL_SUBSET, SUBSET_NAMES
from ..core.export_files import (
    CARD_FILE,
    FORMAT_VERSION,
    GENERATOR,
    INFO_FILE,
    REPORT_FILE,
    data_dir_for,
    file_record,
    manifest_entry,
    read_info,
    shard_name,
    staging_folder,
    unexported_report_path,
)
from ..core.parallel import MAX_NUM_PROC, report_progress, run_jobs, sigint_deferred
from ..core.schema import FEATURES
from ..errors import AffectNetPlusError, ExportError, NothingToExportError
from ..release.kind import FoundRelease, iter_batches, open_release
from ..release.reader import reason_class
from .swap import (
    carry,
    claim,
    edited_files,
    export_lock,
    filesystem_error,
    recover,
    remove_staging,
    reserve,
    retire,
    swap,
    unclaim,
    user_files,
)

if TYPE_CHECKING:
    from ..stats import StatsAccumulator

__all__ = [
    "DEFAULT_SHARD_RECORDS",
    "MAX_NUM_SHARDS",
    "ExportResult",
    "ShardJob",
    "auto_num_shards",
    "export",
    "report_path_for",
]

log = logging.getLogger(__name__)

#: Target records per shard of a part before rounding (about 80 MB of JPEGs). Shards are also
#: the export's unit of parallel work, so this bounds how many processes a small part can use.
DEFAULT_SHARD_RECORDS = 10_000
#: Shard counts above 1 are rounded up to a multiple of this (see auto_num_shards).
SHARD_MULTIPLE = 8
#: Most shards per part, asked for or derived (a multiple of SHARD_MULTIPLE). A part also never
#: gets more shards than it has records: each shard is a job and up to four files.
MAX_NUM_SHARDS = 10_000
_ROW_GROUP = 500  # rows per Parquet row group (~4 MB of 8 KB JPEGs): small for random access, large enough that streaming is not dominated by per-group overhead

_PARTITIONS = SUBSET_NAMES  # a shard file per subset, and one for rows without


def auto_num_shards(num_records: int, shard_records: int = DEFAULT_SHARD_RECORDS) -> int:
    """Shards for a part of ``num_records``.

    ``ceil(num_records / shard_records)``, and when that is above 1, rounded up to a
    multiple of 8 so that world sizes x DataLoader workers of 1, 2, 4 and 8 divide it and
    every rank and worker streams whole shards (the full train part gets 48 shards, the
    unlabeled part 56, validation 1); at most :data:`MAX_NUM_SHARDS`. (The export also
    gives a part at most one shard per record.)
    """
    if shard_records < 1:
        raise ValueError(f"shard_records must be >= 1, got {shard_records}")
    shards = max(1, math.ceil(num_records / shard_records))
    if shards > 1:
        shards = math.ceil(shards / SHARD_MULTIPLE) * SHARD_MULTIPLE
    return min(shards, MAX_NUM_SHARDS)


def _part_shards(part: str, num_records: int, num_shards: int | None, shard_records: int) -> int:
    """Shards of a part: ``num_shards`` or :func:`auto_num_shards`, at most one per record."""
    shards = num_shards or auto_num_shards(num_records, shard_records)
    if shards > max(1, num_records):
        if num_shards:
            log.info(
                "%s: %d records, so %d shards instead of the %d asked (at most one per record)",
                part,
                num_records,
                max(1, num_records),
                num_shards,
            )
        shards = max(1, num_records)
    return shards


def report_path_for(out_dir: str | os.PathLike) -> Path:
    """Where the report of an export into ``out_dir`` is: inside it, so it moves with the export."""
    return Path(out_dir).resolve() / REPORT_FILE


@dataclass
class ExportResult:
    """What an export wrote and what it reported."""

    out_dir: Path
    report_path: Path
    fingerprint: str
    read: int = 0
    written: int = 0
    bad: int = 0
    notes: int = 0
    ignored_files: int = 0
    #: part -> subset partition -> rows written
    partition_counts: dict = field(default_factory=dict)
    #: part -> expression name (or NULL_LABEL) -> subset name (or NULL_SUBSET) -> rows written
    class_subset_counts: dict = field(default_factory=dict)
    #: bad-record reason class -> count
    bad_reasons: dict = field(default_factory=dict)
    #: paths in ``out_dir`` (relative, POSIX) that no export wrote: yours, carried into the new export
    kept_files: list = field(default_factory=list)
    #: the kind of release exported (:data:`~affectnetplus_hf.core.configs.RELEASE_KINDS`)
    release: str = AFFECTNET_PLUS

    def reconciliation(self) -> str:
        balanced = "OK" if self.read == self.written + self.bad else "MISMATCH"
        return (
            f"records read {self.read} = written {self.written} + reported bad {self.bad} [{balanced}]"
            + (f"; {self.notes} notes on written records" if self.notes else "")
            + (f"; {self.ignored_files} files that are not records ignored" if self.ignored_files else "")
        )


# ----------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class ShardJob:
    """One unit of an export's parallel work: the records of one shard of one part."""

    staging: str
    part: str
    shard: int
    num_shards: int
    records: Sequence  # of the release kind's record type (see release.kind)
    on_bad: OnBad
    check_images: CheckImages


@dataclass(frozen=True)
class ShardResult:
    """What one shard job hands back to the driver (pickled, from a worker process)."""

    part: str
    shard: int
    #: records of the shard read (written + bad)
    read: int
    #: subset partition -> size and sha256 of its Parquet file (:meth:`~..core.export_files.FileRecord.to_json`)
    files: dict[str, dict[str, Any]]
    #: subset partition -> rows written
    counts: dict[str, int]
    #: (class name, subset partition) -> rows written
    class_subset: dict[tuple[str, str], int]
    #: the report's lines for bad records and for notes on written ones
    bad: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    #: the card's statistics of the rows written (``None`` once added to the export's, see run_jobs' ``on_result``)
    stats: StatsAccumulator | None


_UNFINGERPRINTED = "_pending"  # shards are written here, then moved into data/<fingerprint>/


def _partition_path(staging: Path, part: str, partition: str, shard: int, num_shards: int) -> Path:
    return staging / data_dir_for(_UNFINGERPRINTED) / part / shard_name(partition, shard, num_shards)


def _export_shard(job: ShardJob) -> ShardResult:
    """Read one shard's records and write one Parquet file per subset partition present.

    Records are read in batches (:func:`~..release.kind.iter_batches`, one Arrow table
    each), whose rows are split by partition; a partition's rows are written in row groups
    of :data:`_ROW_GROUP`, so only the rows short of a whole group wait in memory."""
    import numpy as np
    import pyarrow as pa
    from datasets.arrow_writer import ParquetWriter

    from ..stats import StatsAccumulator

    staging, part, shard, num_shards, records = job.staging, job.part, job.shard, job.num_shards, job.records
    stats = StatsAccumulator()  # the card's statistics, gathered in the same pass
    writers: dict[str, ParquetWriter] = {}
    waiting: dict[str, list] = defaultdict(list)  # partition -> tables of rows not yet written
    counts: Counter[str] = Counter()
    class_subset: Counter[tuple[str, str]] = Counter()
    bad: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []

    def write(partition: str, table) -> None:
        writer = writers.get(partition)
        if writer is None:
            path = _partition_path(Path(staging), part, partition, shard, num_shards)
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = writers[partition] = ParquetWriter(features=FEATURES, path=str(path), writer_batch_size=_ROW_GROUP)
        writer.write_table(table)  # row groups of _ROW_GROUP rows; the writer checks the schema's types
        stats.update(part, table)  # the card's statistics from the same Arrow batch: one conversion

    def add(partition: str, table) -> None:
        tables = waiting[partition]
        tables.append(table)
        rows = sum(t.num_rows for t in tables)
        whole = rows - rows % _ROW_GROUP
        if whole:
            joined = pa.concat_tables(tables)
            write(partition, joined.slice(0, whole))
            waiting[partition] = [joined.slice(whole)] if rows > whole else []

    try:
        for batch in iter_batches(records, on_bad=job.on_bad, check_images=job.check_images, batch_size=_ROW_GROUP):
            notes.extend(note.to_report() for note in batch.notes)
            bad.extend(record.to_report() for record in batch.bad)
            table = batch.table
            if table.num_rows:
                class_subset.update(label_subset_counts(table))
                subsets = label_codes(table.column("subset"), None, "subset")
                subsets[subsets < 0] = len(_PARTITIONS) - 1  # null: the last partition
                sizes = np.bincount(subsets, minlength=len(_PARTITIONS))
                if np.count_nonzero(sizes) > 1:  # the rows by partition, each in record order
                    table = table.take(np.argsort(subsets, kind="stable"))
                start = 0
                for code in np.flatnonzero(sizes):
                    partition, size = _PARTITIONS[code], int(sizes[code])
                    counts[partition] += size
                    add(partition, table.slice(start, size))
                    start += size
            report_progress(batch.read)
        for partition, tables in waiting.items():
            if tables:
                write(partition, pa.concat_tables(tables))
        for writer in writers.values():
            writer.finalize()
    except BaseException:
        for writer in writers.values():
            _abandon(writer)
        raise
    files = {  # hashed here, in the workers, once: the fingerprint and the manifest are made from these
        partition: file_record(_partition_path(Path(staging), part, partition, shard, num_shards)).to_json()
        for partition in writers
    }
    return ShardResult(part, shard, len(records), files, dict(counts), dict(class_subset), bad, notes, stats)


def _abandon(writer) -> None:
    """Close a ``datasets`` ParquetWriter after a failure (a full disk) without a second error.

    Left open, pyarrow's writer retries its close when garbage-collected and prints an
    "Exception ignored" traceback from the worker; ``datasets``' ``close`` swallows that
    error now. The half-written file goes with the staging folder.
    """
    try:
        writer.close()
    except Exception:  # pragma: no cover - datasets' close already swallows pyarrow's error
        pass


def _write_empty(path: Path) -> None:
    from datasets.arrow_writer import ParquetWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = ParquetWriter(features=FEATURES, path=str(path), writer_batch_size=_ROW_GROUP)
    try:
        writer.finalize()
    except BaseException:
        _abandon(writer)
        raise


# ----------------------------------------------------------------------------- driver


def _chunks(records: Sequence, num_shards: int) -> list[Sequence]:
    size, extra = divmod(len(records), num_shards)
    chunks, start = [], 0
    for index in range(num_shards):
        stop = start + size + (1 if index < extra else 0)
        chunks.append(records[start:stop])
        start = stop
    return chunks


def _fingerprint(records: dict[str, dict]) -> str:
    """16 hex digits of the sha256 over every shard's path (relative to its data folder) and sha256."""
    digest = hashlib.sha256()
    for rel in sorted(records, key=lambda r: Path(r).parts):
        digest.update(rel.encode())
        digest.update(bytes.fromhex(records[rel]["sha256"]))
    return digest.hexdigest()[:16]


def _out_path(out_dir: str | bytes | os.PathLike) -> Path:
    """``out_dir`` (a bytes path too) made absolute; :class:`ExportError` at once, before any
    work, when that path is not valid UTF-8: the card and the report name the folder, and
    they are UTF-8 text."""
    path = Path(os.fsdecode(out_dir)).resolve()
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise ExportError(
            f"{shown}: the export folder's path is not valid UTF-8 (the dataset card and the report name it, and "
            "they are UTF-8 text); choose an OUT whose name, and the names of the folders above it, are UTF-8. "
            "Nothing was written."
        ) from None
    return path


def _check_target(out_dir: Path) -> dict | None:
    """The previous export's ``export_info.json`` in ``out_dir`` (None when there is none);
    :class:`ExportError` when ``out_dir`` is not a folder an export may replace."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(
            f"{out_dir}: exists and is not a folder; expected a folder to export into. Choose another OUT."
        )
    if not out_dir.is_dir():
        return None
    if not (out_dir / INFO_FILE).is_file():
        if any(out_dir.iterdir()):
            raise ExportError(
                f"{out_dir}: folder is not empty and holds no {INFO_FILE}, so it is not an earlier export of this "
                "package; refusing to overwrite it. Choose an empty or new OUT folder."
            )
        return None
    try:
        return read_info(out_dir)
    except ExportError as err:
        raise ExportError(
            f"{err} Without it the files of the earlier export in {out_dir} cannot be told from yours, so "
            "nothing was changed: move your own files out of that folder and delete it, or choose another OUT."
        ) from None


def _check_release_location(release: FoundRelease, out_dir: Path) -> None:
    """Refuse an ``OUT`` that holds the release (or part of it), or that lies inside a part's files."""
    roots = [release.root.resolve()] + [Path(p).resolve() for p in release.folders]
    for folder in roots:
        if folder.is_relative_to(out_dir):
            raise ExportError(
                f"{folder}: the release is inside the export folder {out_dir}; an export replaces that folder, so it "
                f"refuses to run there. Move the release out of {out_dir} (for example next to it, in {out_dir.parent}) "
                "or choose another OUT. Nothing was changed."
            )
        if out_dir.is_relative_to(folder) and folder != release.root.resolve():
            raise ExportError(
                f"{out_dir}: the export folder is inside the release's folder {folder}; choose an OUT outside the "
                "release (for example beside it). Nothing was changed."
            )


def export(
    raw_dir: str | os.PathLike,
    out_dir: str | bytes | os.PathLike = "affectnet_plus",
    *,
    num_proc: int = 1,
    shard_records: int = DEFAULT_SHARD_RECORDS,
    num_shards: int | None = None,
    on_bad: OnBad = "skip",
    check_images: CheckImages = "markers",
    progress: bool = True,
    on_progress: Callable[[int], None] | None = None,
    card_plots: bool = True,
) -> ExportResult:
    """Export the release under ``raw_dir`` to the dataset folder ``out_dir``.

    ``out_dir`` must be new, empty, or an earlier export. An earlier export's files (those
    its manifest lists) are replaced; any other file in it is kept in the new folder, files
    written into it while the export runs included (a file with the name of one the export
    writes stops the export first, naming it), and so does a card or plot of the earlier
    export that you edited since (its sha256 differs from the manifest). An ``out_dir`` that
    holds the release, or whose path is not valid UTF-8, is refused before any work.

    Args:
        raw_dir: the folder the release was extracted into (any part may be missing).
        out_dir: the dataset folder to (re)write.
        num_proc: worker processes (the output bytes do not depend on it).
        shard_records: target records per shard before rounding (see :func:`auto_num_shards`).
        num_shards: this many shards per part instead (1 to :data:`MAX_NUM_SHARDS`; a part with
            fewer records gets one shard per record).
        on_bad: ``"skip"`` (report bad records and go on) or ``"error"`` (stop at the first,
            raising :class:`~affectnetplus_hf.errors.BadRecordError`; nothing is written).
        check_images: ``"markers"`` (JPEG start/end markers, fast) or ``"decode"`` (full decode).
        progress: show a progress bar.
        on_progress: called with the number of records just finished.
        card_plots: draw the statistics plots into ``OUT/stats/*.png`` and link them from the
            card (needs matplotlib, the ``stats`` extra; without it they are skipped with a
            logged note). The card's statistics tables are written either way.

    Raises:
        ExportError: ``out_dir`` may not be replaced (not an export, holds the release,
            another export is writing it, a file of yours has a name the export writes), or
            the disk refused (no space, read-only, permission denied): one line naming
            ``out_dir``; the previous export there is unchanged.
        NothingToExportError: no record can be written (none found, or every one bad); the
            report is written beside ``out_dir`` (:func:`~affectnetplus_hf.core.export_files.unexported_report_path`,
            since ``out_dir`` is left as it was and its own report belongs to its export).
    """
    check_choice("on_bad", on_bad, OnBad)
    check_choice("check_images", check_images, CheckImages)
    if num_proc < 1:
        raise ValueError(f"num_proc must be >= 1, got {num_proc}")
    if num_shards is not None and not 1 <= num_shards <= MAX_NUM_SHARDS:
        raise ValueError(f"num_shards: expected shards per part from 1 to {MAX_NUM_SHARDS:,}, got {num_shards}")
    if num_proc > MAX_NUM_PROC:
        raise ValueError(f"num_proc: expected worker processes from 1 to {MAX_NUM_PROC}, got {num_proc}")

    out_dir = _out_path(out_dir)
    release = open_release(raw_dir)
    log.info("found %s release at %s (parts: %s)", release.title, release.root, ", ".join(release.parts))
    _check_release_location(release, out_dir)
    _check_target(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with export_lock(out_dir):
            recover(out_dir)
            previous = _check_target(out_dir)
            _refuse_edited(out_dir, previous)
            options = _Options(
                num_proc, shard_records, num_shards, on_bad, check_images, progress, on_progress, card_plots
            )
            return _export_locked(release, out_dir, previous, options)
    except AffectNetPlusError:
        raise
    except OSError as err:
        raise filesystem_error(err, out_dir) from None


def _refuse_edited(out_dir: Path, previous: dict | None) -> None:
    """:class:`ExportError` when you changed the previous export's card or plots (see
    :func:`~affectnetplus_hf.exporter.swap.edited_files`): a re-export would replace your changes."""
    edited = edited_files(out_dir, previous)
    if edited:
        raise ExportError(
            f"{out_dir / edited[0]}: changed since the export wrote it ({len(edited)} such: {', '.join(edited[:5])}); "
            "a re-export writes these files anew, so your changes would be lost. Copy them elsewhere, then delete "
            f"those files from {out_dir} and export again. Nothing was changed."
        )


def _step(name: str) -> None:
    """A named point of an export; does nothing (tests replace it to stop a run exactly there)."""


@dataclass(frozen=True)
class _Options:
    """How to export, as :func:`export` took it (its arguments of the same names, checked)."""

    num_proc: int
    shard_records: int
    num_shards: int | None
    on_bad: OnBad
    check_images: CheckImages
    progress: bool
    on_progress: Callable[[int], None] | None
    card_plots: bool


def _export_locked(release: FoundRelease, out_dir: Path, previous_info: dict | None, options: _Options) -> ExportResult:
    """The export proper, under the lock: stage, carry the user's files, swap, clean up.

    Your files in ``OUT`` are listed just before the swap, not at the start, so a file you
    write into ``OUT`` while the export runs is carried too (see :mod:`~affectnetplus_hf.exporter.swap`)."""
    from tqdm.auto import tqdm

    from ..stats import StatsAccumulator

    token = uuid.uuid4().hex[:16]
    staging = staging_folder(out_dir, token)
    ignored_lines: list[dict] = []
    jobs: list[ShardJob] = []
    shard_counts: dict[str, int] = {}
    total = 0
    for part_name in release.info.parts:
        if part_name not in release.parts:
            continue
        records, ignored = release.list_records(part_name)
        ignored_lines += [
            {"kind": "ignored_file", "part": i.part, "path": str(i.path), "reason": i.reason} for i in ignored
        ]
        shards = _part_shards(part_name, len(records), options.num_shards, options.shard_records)
        shard_counts[part_name] = shards
        total += len(records)
        for index, chunk in enumerate(_chunks(records, shards)):
            jobs.append(ShardJob(str(staging), part_name, index, shards, chunk, options.on_bad, options.check_images))

    bar = tqdm(total=total, unit="rec", desc="export", disable=not options.progress)
    swapped = False
    created = None
    previous: Path | None = None  # where the swap left the previous export
    result: ExportResult | None = None
    try:
        reserve(out_dir, staging)  # a kill right after the mkdir leaves an empty folder the next export removes
        staging.mkdir()
        created = os.lstat(staging)
        _step("staging_created")
        claim(out_dir, staging, "staging", created)  # from here on a kill leaves a folder the next export proves ours

        def advance(n: int) -> None:
            bar.update(n)
            if options.on_progress:
                options.on_progress(n)

        stats = StatsAccumulator()  # the card's statistics: each shard's added as it comes, not kept

        def fold(result: ShardResult) -> ShardResult:
            # in job order (see run_jobs): parts in PARTS order, shards in order
            stats.merge(result.stats)  # type: ignore[arg-type]
            return replace(result, stats=None)

        results = run_jobs(_export_shard, jobs, options.num_proc, advance, fold)
        bar.close()
        _step("shards_written")
        result, info, report_lines = _finish(staging, release, results, shard_counts, ignored_lines, out_dir)
        if result.written == 0:  # datasets cannot load a split of zero rows: report, keep OUT as it was
            result.report_path = unexported_report_path(out_dir)
            _write_report(result.report_path, report_lines)
            raise _nothing_to_export(release, result, out_dir)
        _write_card_and_manifest(staging, info, stats, out_dir.name, options.card_plots)
        _write_report(staging / REPORT_FILE, report_lines)
        _step("staged")
        _refuse_edited(out_dir, previous_info)  # again: you may have edited the card while the export ran
        keep = user_files(out_dir, previous_info)  # now, not at the start: files written meanwhile are yours too
        if keep:
            log.info("keeping %d file(s) in %s that the previous export did not write", len(keep), out_dir)
        carry(out_dir, staging, keep)
        _step("before_swap")
        previous = swap(staging, out_dir, token)
        swapped = True  # the staging path now holds the previous export (or nothing)
        _step("after_swap")
        result.kept_files = keep  # with the files carried in late, added below
        return result
    finally:  # also on Ctrl-C: the staging folder, or after the swap the previous export, goes now
        bar.close()
        with sigint_deferred():  # a Ctrl-C now (another one, say) waits for this to finish, then stops the export
            if swapped:
                _retire_previous(out_dir, staging, previous, result)
            elif created is None:  # it was never created: only its reserve record is left
                with contextlib.suppress(OSError, ExportError):
                    unclaim(out_dir, staging)
            elif staging.exists():  # never a folder we did not create
                try:
                    if os.path.samestat(os.lstat(staging), created):
                        remove_staging(staging)
                    else:  # interrupted right after the exchange: the previous export is there now
                        retire(staging, out_dir)
                    unclaim(out_dir, staging)
                except (OSError, ExportError) as err:  # never hide the error that brought us here
                    log.warning("could not remove the staging folder %s: %s; the next export removes it", staging, err)


def _retire_previous(out_dir: Path, staging: Path, previous: Path | None, result: ExportResult | None) -> None:
    """After the swap: clear the previous export out of the way (files written into OUT late
    are carried into the new export) and drop the journal's records of both folders."""
    moved: list[str] = []
    if previous is not None:
        try:
            moved, _ = retire(previous, out_dir)
            unclaim(out_dir, previous)
        except OSError as err:  # the new export is in place: a leftover is not a failure
            log.warning("could not remove %s, the previous export: %s; the next export tries again", previous, err)
    unclaim(out_dir, staging, "staging")  # the new export is OUT now
    if result is not None:
        result.kept_files = sorted({*result.kept_files, *moved})


def _write_card_and_manifest(
    staging: Path, info: dict, stats: StatsAccumulator, local_name: str, card_plots: bool
) -> None:
    """The card (with its statistics and plots), then ``export_info.json`` with the manifest of
    every file written: the shards (hashed by the workers), the plots and the card."""
    from .card import render_card

    stats_section, plots = _card_stats_section(stats, staging, card_plots)
    (staging / CARD_FILE).write_text(
        render_card(info, local_name=local_name, stats_section=stats_section, root=staging), encoding="utf-8"
    )
    files = dict(info.pop("_shard_files"))
    files.update(manifest_entry(staging, [*plots, CARD_FILE]))
    info["files"] = dict(sorted(files.items()))
    (staging / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _nothing_to_export(release, result: ExportResult, out_dir: Path) -> NothingToExportError:
    kept = f"{out_dir} was left as it was" if out_dir.exists() else f"{out_dir} was not created"
    if result.read == 0:
        found = f"the parts found ({', '.join(release.parts)}) hold no record" + (
            " (no images/<id>.jpg, no annotations/<id>.json)" if release.kind == AFFECTNET_PLUS else ""
        )
    else:
        found = f"all {result.read} records are bad"
    return NothingToExportError(
        f"{release.root}: nothing to export: {found}; {kept}. Every bad record and every file that is not a "
        f"record is listed in {result.report_path}: fix or re-extract those files and run again.",
        read=result.read,
        bad=result.bad,
        report_path=str(result.report_path),
    )


def _card_stats_section(accumulator: StatsAccumulator, staging: Path, plots: bool) -> tuple[str, list[str]]:
    """The card's statistics (headline tables as Markdown) from the shards' accumulators, added
    up, with the plots drawn into ``staging/stats/`` when ``plots`` (see :mod:`.stats.card`),
    and the plots' paths relative to ``staging``."""
    from ..stats import card_section, write_card_plots

    stats = accumulator.summary()
    drawn = write_card_plots(stats, staging, echo=log.warning) if plots else {}
    return card_section(stats, drawn), sorted(drawn.values())


def _finish(
    staging, release, results: list[ShardResult], shard_counts, ignored_lines, out_dir
) -> tuple[ExportResult, dict, list[dict]]:
    """Fill empty shards, fingerprint and move the data; the result, ``export_info`` (its
    shards' manifest under the private key ``_shard_files``) and the report's lines.

    ``results`` are in job order.
    """
    partition_counts: dict[str, Counter] = defaultdict(Counter)
    class_subset: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    read = 0
    bad_lines: list[dict] = []
    note_lines: list[dict] = []
    shard_files: dict[str, dict] = {}  # path relative to the data folder -> size and sha256
    for r in results:
        read += r.read
        partition_counts[r.part].update(r.counts)
        for (label, subset), n in r.class_subset.items():
            class_subset[r.part][label][subset] += n
        bad_lines += r.bad
        note_lines += r.notes
        for partition, record in r.files.items():
            shard_files[f"{r.part}/{shard_name(partition, r.shard, shard_counts[r.part])}"] = record

    # Every partition that has rows in a part gets all of the part's shards (some may be
    # empty), so a config's shards line up with its part's. A partition with no rows at all
    # gets no file, and the card leaves that split out of the config (an empty split does
    # not load); a part with no good record keeps one empty file so it still loads.
    partitions_by_part: dict[str, list[str]] = {}
    for part, shards in shard_counts.items():
        partitions = partitions_by_part[part] = [p for p in _PARTITIONS if partition_counts[part].get(p)] or [
            NULL_SUBSET
        ]
        for partition in partitions:
            for shard in range(shards):
                path = _partition_path(staging, part, partition, shard, shards)
                if not path.exists():
                    _write_empty(path)
                    shard_files[f"{part}/{shard_name(partition, shard, shards)}"] = file_record(path).to_json()

    fingerprint = _fingerprint(shard_files)
    data_dir = data_dir_for(fingerprint)
    (staging / data_dir_for(_UNFINGERPRINTED)).rename(staging / data_dir)

    written = sum(sum(c.values()) for c in partition_counts.values())
    result = ExportResult(
        out_dir=out_dir,
        report_path=out_dir / REPORT_FILE,
        fingerprint=fingerprint,
        read=read,
        written=written,
        bad=len(bad_lines),
        notes=len(note_lines),
        ignored_files=len(ignored_lines),
        partition_counts={p: {k: c[k] for k in _PARTITIONS if c.get(k)} for p, c in partition_counts.items()},
        class_subset_counts={p: {k: dict(v) for k, v in d.items()} for p, d in class_subset.items()},
        bad_reasons=dict(Counter(reason_class(line["reason"]) for line in bad_lines)),
        release=release.kind,
    )
    if result.read != result.written + result.bad:  # pragma: no cover - an invariant of the loop above
        raise ExportError(f"internal error: {result.reconciliation()}")

    from .._version import __version__

    records = {"read": result.read, "written": result.written, "bad": result.bad, "notes": result.notes}
    info = {
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "release": release.kind,
        "fingerprint": fingerprint,
        "data_dir": data_dir,
        "parts": {
            part: {
                "num_shards": shard_counts[part],
                "partitions": partitions_by_part[part],
                "rows": result.partition_counts.get(part, {}),
            }
            for part in shard_counts
        },
        "class_subset_counts": result.class_subset_counts,
        "records": records,
        "_shard_files": {f"{data_dir}/{rel}": record for rel, record in shard_files.items()},
    }
    summary = {
        "kind": "summary",
        **records,
        "ignored_files": len(ignored_lines),
        "source": str(release.root),
        "fingerprint": fingerprint,
    }
    return result, info, [*bad_lines, *note_lines, *ignored_lines, summary]


def _write_report(report_path: Path, lines: list[dict]) -> None:
    with open(report_path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, sort_keys=True) + "\n")
