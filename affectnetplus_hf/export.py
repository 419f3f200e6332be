"""Export a raw AffectNet+ release to a self-contained no-code Parquet dataset folder.

Layout of ``OUT`` (default ``./affectnet_plus``, so ``load_dataset("affectnet_plus")``
works from its parent)::

    OUT/README.md                       dataset card: YAML configs + dataset_info + gating
    OUT/export_info.json                fingerprint, counts, the package version
    OUT/data/<fingerprint>/<part>/<subset>-SSSSS-of-NNNNN.parquet

``part`` is ``train``, ``validation`` or ``unlabeled``; ``subset`` is ``easy``,
``challenging``, ``difficult`` or ``nosubset`` (rows whose file has no subset). Each row
is stored once; configs are globs over these shared files (``all`` = every file of a
part, ``easy`` = the ``easy-*`` files, ...). Every (part, subset) has the same shard
count as its part, so a part's shards line up for distributed reading; see
:func:`auto_num_shards` for the rule.

Guarantees:

* **Same input, same bytes.** Records are read in natural id order and cut into shards by
  position, independent of ``num_proc``; Parquet is written through ``datasets``'
  ``ParquetWriter`` (features kept in the Arrow metadata).
* **No half exports.** Everything is written into a hidden staging folder beside ``OUT``
  and moved into place at the end; an interrupted export leaves ``OUT`` as it was.
* **No stale cache.** ``datasets`` caches a local folder by its name and YAML ``configs``,
  not by its files (datasets issues #6465, #2956): rewriting the Parquet under the same
  YAML would keep serving old rows. The data folder is therefore named after a
  fingerprint of the exported bytes, and the YAML's ``data_files`` name it, so any change
  of content changes the configs and with them the cache key.
* **Every record accounted for.** Records read = records written + records reported; bad
  records, notes and files that are not records go to ``<OUT>.report.jsonl`` beside the
  folder (never inside it: the report holds local paths and the folder may be published).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._parallel import report_progress, run_jobs
from .errors import ExportError, NothingToExportError
from .layout import PARTS, RecordFiles, find_release, list_records
from .reader import iter_rows, reason_class
from .schema import COLUMN_NAMES, EXPRESSIONS, FEATURES, SUBSETS

__all__ = [
    "DEFAULT_SHARD_RECORDS",
    "EXPORT_INFO_FILE",
    "NO_SUBSET",
    "ExportResult",
    "auto_num_shards",
    "export",
    "load_export_info",
    "report_path_for",
]

#: Target records per shard of a part before rounding (about 80 MB of JPEGs). Shards are also
#: the export's unit of parallel work, so this bounds how many processes a small part can use.
DEFAULT_SHARD_RECORDS = 10_000
#: Shard counts above 1 are rounded up to a multiple of this (see auto_num_shards).
SHARD_MULTIPLE = 8
#: File name of the subset partition holding rows whose file has no subset.
NO_SUBSET = "nosubset"
EXPORT_INFO_FILE = "export_info.json"
_ROW_GROUP = 500  # rows per Parquet row group (~4 MB of 8 KB JPEGs): small for random access, large enough that streaming is not dominated by per-group overhead
_FORMAT_VERSION = 1

_PARTITIONS = (*SUBSETS, NO_SUBSET)


def auto_num_shards(num_records: int, shard_records: int = DEFAULT_SHARD_RECORDS) -> int:
    """Shards for a part of ``num_records``.

    ``ceil(num_records / shard_records)``, and when that is above 1, rounded up to a
    multiple of 8 so that world sizes x DataLoader workers of 1, 2, 4 and 8 divide it and
    every rank and worker streams whole shards (the full train part gets 48 shards, the
    unlabeled part 56, validation 1).
    """
    if shard_records < 1:
        raise ValueError(f"shard_records must be >= 1, got {shard_records}")
    shards = max(1, math.ceil(num_records / shard_records))
    if shards > 1:
        shards = math.ceil(shards / SHARD_MULTIPLE) * SHARD_MULTIPLE
    return shards


def report_path_for(out_dir: str | os.PathLike) -> Path:
    """Where the report of an export into ``out_dir`` goes: ``<out_dir>.report.jsonl`` beside it."""
    out_dir = Path(out_dir).resolve()
    return out_dir.with_name(out_dir.name + ".report.jsonl")


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
    #: part -> expression name (or "null") -> subset name (or "null") -> rows written
    class_subset_counts: dict = field(default_factory=dict)
    #: bad-record reason class -> count
    bad_reasons: dict = field(default_factory=dict)

    def reconciliation(self) -> str:
        balanced = "OK" if self.read == self.written + self.bad else "MISMATCH"
        return (
            f"records read {self.read} = written {self.written} + reported bad {self.bad} [{balanced}]"
            + (f"; {self.notes} notes on written records" if self.notes else "")
            + (f"; {self.ignored_files} files that are not records ignored" if self.ignored_files else "")
        )


# ----------------------------------------------------------------------------- workers


def _partition_path(staging: Path, part: str, partition: str, shard: int, num_shards: int) -> Path:
    return staging / "data" / part / f"{partition}-{shard:05d}-of-{num_shards:05d}.parquet"


def _to_table(columns: dict[str, list]):
    """Columns of python values -> an Arrow table in the exact schema of FEATURES.

    Built column by column with the schema's own Arrow types (the Array2D landmarks from
    their storage type), which is several times faster than inferring through
    ``datasets``' typed sequences; ``ParquetWriter.write_table`` then checks it against
    the features it writes.
    """
    import pyarrow as pa

    schema = _arrow_schema()
    arrays = []
    for field_ in schema:
        values = columns[field_.name]
        if isinstance(field_.type, pa.ExtensionType):  # landmarks: 68 x 2 float32 arrays or None
            arrays.append(pa.ExtensionArray.from_storage(field_.type, _points_storage(values, field_.type.storage_type)))
        else:
            arrays.append(pa.array(values, type=field_.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _points_storage(values: list, storage_type):
    """``list<list<float>>`` storage of an Array2D column from ``(rows, cols)`` arrays, nulls kept."""
    import numpy as np
    import pyarrow as pa

    present = [v for v in values if v is not None]
    rows_per_item, cols = present[0].shape if present else (0, 0)
    flat = np.concatenate([np.asarray(v, dtype=np.float32).reshape(-1) for v in present]) if present else np.zeros(0, np.float32)
    inner = pa.ListArray.from_arrays(pa.array(np.arange(0, flat.size + 1, max(cols, 1), dtype=np.int32)), pa.array(flat))
    lengths = np.array([rows_per_item if v is not None else 0 for v in values], dtype=np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    mask = pa.array([v is None for v in values]) if len(present) < len(values) else None
    return pa.ListArray.from_arrays(offsets, inner, type=storage_type, mask=mask)


_SCHEMA = None


def _arrow_schema():
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = FEATURES.arrow_schema
    return _SCHEMA


def _empty_columns() -> dict[str, list]:
    return {name: [] for name in COLUMN_NAMES}


def _export_shard(job: tuple) -> dict:
    """Read one shard's records and write one Parquet file per subset partition present."""
    from datasets.arrow_writer import ParquetWriter

    from .stats import StatsAccumulator

    staging, part, shard, num_shards, records, on_bad, check_images = job
    stats = StatsAccumulator()  # the card's statistics, gathered in the same pass
    writers: dict[str, ParquetWriter] = {}
    buffers: dict[str, dict[str, list]] = defaultdict(_empty_columns)
    counts: Counter = Counter()
    class_subset: Counter = Counter()
    bad: list[dict] = []
    notes: list[dict] = []
    pending = 0

    def flush(partition: str) -> None:
        columns = buffers[partition]
        if not columns["image_id"]:
            return
        writer = writers.get(partition)
        if writer is None:
            path = _partition_path(Path(staging), part, partition, shard, num_shards)
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = writers[partition] = ParquetWriter(features=FEATURES, path=str(path), writer_batch_size=_ROW_GROUP)
        writer.write_table(_to_table(columns))
        buffers[partition] = _empty_columns()

    for result in iter_rows(records, on_bad=on_bad, check_images=check_images):
        notes.extend(note.to_report() for note in result.notes)
        if result.bad is not None:
            bad.append(result.bad.to_report())
        else:
            row = result.row
            stats.add_row(part, row)
            subset = row["subset"]
            partition = SUBSETS[subset] if subset is not None else NO_SUBSET
            columns = buffers[partition]
            for name in COLUMN_NAMES:
                columns[name].append(row[name])
            counts[partition] += 1
            label = row["human_label"]
            class_subset[(EXPRESSIONS[label] if label is not None else "null", SUBSETS[subset] if subset is not None else "null")] += 1
            if len(columns["image_id"]) >= _ROW_GROUP:
                flush(partition)
        pending += 1
        if pending >= 256:
            report_progress(pending)
            pending = 0
    for partition in list(buffers):
        flush(partition)
    for writer in writers.values():
        writer.finalize()
    report_progress(pending)
    return {
        "part": part,
        "shard": shard,
        "read": len(records),
        "counts": dict(counts),
        "class_subset": [[k[0], k[1], v] for k, v in class_subset.items()],
        "bad": bad,
        "notes": notes,
        "stats": stats,
    }


def _write_empty(path: Path) -> None:
    from datasets.arrow_writer import ParquetWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    ParquetWriter(features=FEATURES, path=str(path), writer_batch_size=_ROW_GROUP).finalize()


# ----------------------------------------------------------------------------- driver


def _chunks(records: list[RecordFiles], num_shards: int) -> list[list[RecordFiles]]:
    size, extra = divmod(len(records), num_shards)
    chunks, start = [], 0
    for index in range(num_shards):
        stop = start + size + (1 if index < extra else 0)
        chunks.append(records[start:stop])
        start = stop
    return chunks


def _fingerprint(data_root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(data_root.rglob("*.parquet")):
        digest.update(path.relative_to(data_root).as_posix().encode())
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest() if hasattr(hashlib, "file_digest") else hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:16]


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is not a folder; expected a folder to export into. Choose another OUT.")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / EXPORT_INFO_FILE).is_file():
        raise ExportError(
            f"{out_dir}: folder is not empty and holds no {EXPORT_INFO_FILE}, so it is not an earlier "
            "export of this package; refusing to overwrite it. Choose an empty or new OUT folder."
        )


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``staging`` with two renames (the old folder is removed after)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        out_dir.rename(old)
    staging.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_export_info(out_dir: str | os.PathLike) -> dict:
    """The ``export_info.json`` of an exported folder; :class:`ExportError` if there is none."""
    path = Path(out_dir) / EXPORT_INFO_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(
            f"{path}: not found; expected a folder written by `affectnetplus export`. Export the release first."
        ) from None


def export(
    raw_dir: str | os.PathLike,
    out_dir: str | os.PathLike = "affectnet_plus",
    *,
    num_proc: int = 1,
    shard_records: int = DEFAULT_SHARD_RECORDS,
    num_shards: int | None = None,
    on_bad: str = "skip",
    check_images: str = "markers",
    progress: bool = True,
    on_progress: Callable[[int], None] | None = None,
    card_plots: bool = True,
) -> ExportResult:
    """Export the release under ``raw_dir`` to the dataset folder ``out_dir``.

    Args:
        raw_dir: the folder the release was extracted into (any part may be missing).
        out_dir: the dataset folder to (re)write; an earlier export there is replaced whole.
        num_proc: worker processes (the output bytes do not depend on it).
        shard_records: target records per shard before rounding (see :func:`auto_num_shards`).
        num_shards: force this many shards per part instead.
        on_bad: ``"skip"`` (report bad records and go on) or ``"error"`` (stop at the first,
            raising :class:`~affectnetplus_hf.errors.BadRecordError`; nothing is written).
        check_images: ``"markers"`` (JPEG start/end markers, fast) or ``"decode"`` (full decode).
        progress: show a progress bar.
        card_plots: draw the statistics plots into ``OUT/stats/*.png`` and link them from the
            card (needs matplotlib, the ``stats`` extra; without it they are skipped with a
            printed note). The card's statistics tables are written either way.

    Raises :class:`~affectnetplus_hf.errors.NothingToExportError` when no record can be
    written (none found, or every one bad), after writing the report; ``out_dir`` is left
    as it was.
    """
    from .card import render_card

    if on_bad not in ("skip", "error"):
        raise ValueError(f"on_bad must be 'skip' or 'error', got {on_bad!r}")
    if check_images not in ("markers", "decode"):
        raise ValueError(f"check_images must be 'markers' or 'decode', got {check_images!r}")
    if num_proc < 1:
        raise ValueError(f"num_proc must be >= 1, got {num_proc}")
    if num_shards is not None and num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")

    release = find_release(raw_dir)
    out_dir = Path(out_dir).resolve()
    _check_target(out_dir)
    report_path = report_path_for(out_dir)

    ignored_lines: list[dict] = []
    jobs = []
    shard_counts: dict[str, int] = {}
    total = 0
    staging = out_dir.with_name(f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    for part_name in PARTS:
        part = release.parts.get(part_name)
        if part is None:
            continue
        records, ignored = list_records(part)
        ignored_lines += [{"kind": "ignored_file", "part": i.part, "path": str(i.path), "reason": i.reason} for i in ignored]
        shards = num_shards or auto_num_shards(len(records), shard_records)
        shard_counts[part_name] = shards
        total += len(records)
        for index, chunk in enumerate(_chunks(records, shards)):
            jobs.append((str(staging), part_name, index, shards, chunk, on_bad, check_images))

    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="rec", desc="export", disable=not progress)
    try:
        staging.mkdir(parents=True)

        def advance(n: int) -> None:
            bar.update(n)
            if on_progress:
                on_progress(n)

        results = run_jobs(_export_shard, jobs, num_proc, advance)
        bar.close()
        result, report_lines = _finish(staging, release, results, shard_counts, ignored_lines, out_dir, report_path)
        if result.written == 0:  # datasets cannot load a split of zero rows: report, keep OUT as it was
            _write_report(report_path, report_lines)
            raise _nothing_to_export(release, result, out_dir)
        stats_section = _card_stats_section(results, staging, card_plots)
        (staging / "README.md").write_text(render_card(load_export_info(staging), local_name=out_dir.name, stats_section=stats_section))
        _swap_into_place(staging, out_dir)
        _write_report(report_path, report_lines)
    finally:
        bar.close()
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return result


def _nothing_to_export(release, result: ExportResult, out_dir: Path) -> NothingToExportError:
    kept = f"{out_dir} was left as it was" if out_dir.exists() else f"{out_dir} was not created"
    if result.read == 0:
        found = f"the parts found ({', '.join(release.parts)}) hold no record (no images/<id>.jpg, no annotations/<id>.json)"
    else:
        found = f"all {result.read} records are bad"
    return NothingToExportError(
        f"{release.root}: nothing to export: {found}; {kept}. Every bad record and every file that is not a "
        f"record is listed in {result.report_path}: fix or re-extract those files and run again.",
        read=result.read,
        bad=result.bad,
        report_path=str(result.report_path),
    )


def _card_stats_section(results: list[dict], staging: Path, plots: bool) -> str:
    """The card's statistics (headline tables as Markdown) from the shards' accumulators,
    with the plots drawn into ``staging/stats/`` when ``plots`` (see :mod:`.stats.card`)."""
    from .stats import StatsAccumulator, card_section, write_card_plots

    accumulator = StatsAccumulator()
    for r in results:  # in job order: parts in PARTS order, shards in order (see run_jobs)
        accumulator.merge(r["stats"])
    stats = accumulator.result()
    return card_section(stats, write_card_plots(stats, staging) if plots else {})


def _finish(staging, release, results, shard_counts, ignored_lines, out_dir, report_path) -> tuple[ExportResult, list[dict]]:
    """Fill empty shards, fingerprint and move the data, write ``export_info.json``.

    ``results`` are in job order. Returns the result and the report's lines, which the
    caller writes only once the export is in place.
    """
    partition_counts: dict[str, Counter] = defaultdict(Counter)
    class_subset: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    read = 0
    bad_lines: list[dict] = []
    note_lines: list[dict] = []
    for r in results:
        read += r["read"]
        partition_counts[r["part"]].update(r["counts"])
        for label, subset, n in r["class_subset"]:
            class_subset[r["part"]][label][subset] += n
        bad_lines += r["bad"]
        note_lines += r["notes"]

    # Every partition that has rows in a part gets all of the part's shards (some may be
    # empty), so a config's shards line up with its part's. A partition with no rows at all
    # gets no file, and the card leaves that split out of the config (an empty split does
    # not load); a part with no good record keeps one empty file so it still loads.
    partitions_by_part: dict[str, list[str]] = {}
    for part, shards in shard_counts.items():
        partitions = partitions_by_part[part] = [p for p in _PARTITIONS if partition_counts[part].get(p)] or [NO_SUBSET]
        for partition in partitions:
            for shard in range(shards):
                path = _partition_path(staging, part, partition, shard, shards)
                if not path.exists():
                    _write_empty(path)

    fingerprint = _fingerprint(staging / "data")
    final_data = staging / "data" / fingerprint
    final_data.mkdir()
    for part in shard_counts:
        (staging / "data" / part).rename(final_data / part)

    written = sum(sum(c.values()) for c in partition_counts.values())
    result = ExportResult(
        out_dir=out_dir,
        report_path=report_path,
        fingerprint=fingerprint,
        read=read,
        written=written,
        bad=len(bad_lines),
        notes=len(note_lines),
        ignored_files=len(ignored_lines),
        partition_counts={p: {k: c[k] for k in _PARTITIONS if c.get(k)} for p, c in partition_counts.items()},
        class_subset_counts={p: {k: dict(v) for k, v in d.items()} for p, d in class_subset.items()},
        bad_reasons=dict(Counter(reason_class(line["reason"]) for line in bad_lines)),
    )
    if result.read != result.written + result.bad:  # pragma: no cover - an invariant of the loop above
        raise ExportError(f"internal error: {result.reconciliation()}")

    from . import __version__

    info = {
        "format_version": _FORMAT_VERSION,
        "package_version": __version__,
        "fingerprint": fingerprint,
        "data_dir": f"data/{fingerprint}",
        "parts": {
            part: {
                "num_shards": shard_counts[part],
                "partitions": partitions_by_part[part],
                "rows": result.partition_counts.get(part, {}),
            }
            for part in shard_counts
        },
        "class_subset_counts": result.class_subset_counts,
        "records": {"read": result.read, "written": result.written, "bad": result.bad, "notes": result.notes},
    }
    (staging / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    summary = {"kind": "summary", **info["records"], "ignored_files": len(ignored_lines), "source": str(release.root)}
    return result, [*bad_lines, *note_lines, *ignored_lines, summary]


def _write_report(report_path: Path, lines: list[dict]) -> None:
    tmp_report = report_path.with_name(report_path.name + ".tmp")
    with open(tmp_report, "w") as handle:
        for line in lines:
            handle.write(json.dumps(line, sort_keys=True) + "\n")
    os.replace(tmp_report, report_path)
