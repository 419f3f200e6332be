"""Compute statistics of a source and write everything: JSON, tables, plots, ``report.html``.

Layout of ``out_dir``::

    stats.json                  every number (the plain data of compute_stats)
    tables.md                   every table in Markdown, one file
    tables/<name>.csv, .md      one table per file
    plots/<name>.png            the plots (when matplotlib is installed)
    report.html                 one offline page with the tables and the plots
    stats_manifest.json         every file above with its size and sha256: what stats wrote

**Nothing of yours is overwritten.** ``DIR`` may hold other files; a file the statistics
write is replaced only when ``stats_manifest.json`` (written by this package, with its
marker) lists it with the bytes it still has: written by an earlier run and not changed
since. A file of that name that is yours, or one you edited, stops the run before anything
is written (:class:`~affectnetplus_hf.errors.StatsError`, naming the files). Files of an
earlier run that this run does not write (plots, after ``--no-plots``) are removed when
unchanged. The files are written into a hidden folder inside ``DIR`` first and moved into
place one by one, each whole; one run at a time writes into ``DIR`` (a lock on the folder).
The manifest records that hidden folder (name, device, inode) while a run writes, so the next
run removes the folder a killed run left, and only that folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.export_files import FileRecord, file_record, manifest_entry
from ..core.identity import identity, is_same_folder
from ..errors import StatsError
from .compute import compute_summary
from .plots import MissingPlotDependency, draw_plots
from .report import write_report
from .summary import StatsSummary
from .tables import write_tables

__all__ = ["MANIFEST_FILE", "StatsOutput", "check_out_dir", "write_stats", "write_stats_files"]

log = logging.getLogger(__name__)

#: The record of the files a run of the statistics wrote into its folder.
MANIFEST_FILE = "stats_manifest.json"
_MARK = "affectnetplus-hf stats"
#: Files every run writes: checked before the statistics are computed (:func:`check_out_dir`).
_ALWAYS = ("stats.json", "tables.md", "report.html")


@dataclass
class StatsOutput:
    """What :func:`write_stats` wrote."""

    out_dir: Path
    #: The plain data written to ``stats.json`` (:meth:`~.summary.StatsSummary.to_json`).
    stats: dict[str, Any]
    json_path: Path
    report_path: Path
    tables: list[Path] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    #: Why plots are missing, when they are (e.g. matplotlib not installed).
    plot_note: str | None = None


def _read_manifest(out_dir: Path) -> dict[str, FileRecord]:
    """What an earlier run wrote into ``out_dir`` (nothing when it has no manifest); a
    ``stats_manifest.json`` that is not ours is a file of yours, reported as a conflict."""
    path = out_dir / MANIFEST_FILE
    if not os.path.lexists(path):
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("generator") != _MARK:
            raise ValueError("not ours")
        return {str(rel): FileRecord(int(r["size"]), str(r["sha256"])) for rel, r in doc["files"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        raise _refuse(out_dir, [MANIFEST_FILE]) from None


def _write_manifest(out_dir: Path, files: Mapping[str, dict], staging: Path, *, writing: bool) -> None:
    """Replace ``stats_manifest.json`` in one rename (written inside ``staging`` first): ``files`` with their
    records and, while the run is ``writing``, the ``staging`` folder's name, device and inode (the proof
    :func:`_remove_left_staging` acts on when the run was killed)."""
    doc: dict[str, Any] = {"generator": _MARK, "version": 1, "files": dict(files)}
    if writing:
        st = os.lstat(staging)
        doc["staging"] = {"name": staging.name, **identity(st)}
    (staging / MANIFEST_FILE).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staging / MANIFEST_FILE, out_dir / MANIFEST_FILE)


def _remove_left_staging(out_dir: Path) -> None:
    """Remove the hidden folder a killed run left in ``out_dir``, when the manifest names it and it is
    still that folder (same device and inode): a folder of yours with a name like it is never touched."""
    try:
        entry = json.loads((out_dir / MANIFEST_FILE).read_text(encoding="utf-8"))["staging"]
        name, ident = str(entry["name"]), (int(entry["dev"]), int(entry["ino"]))
    except (OSError, ValueError, TypeError, KeyError):
        return
    if not name.startswith(".affectnetplus-stats-") or "/" in name or os.sep in name:
        return
    folder = out_dir / name
    if is_same_folder(folder, *ident):
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)


def _ours(path: Path, record: FileRecord | None) -> bool:
    """Whether ``path`` is a plain file with the bytes ``record`` says an earlier run wrote."""
    if record is None or path.is_symlink() or not path.is_file() or path.stat().st_size != record.size:
        return False
    return file_record(path).sha256 == record.sha256


def _conflicts(out_dir: Path, rels: Iterable[str], previous: dict[str, FileRecord]) -> list[str]:
    """The paths of ``rels`` that a write into ``out_dir`` would replace but that are not
    ours: a file there (or a folder, or a file where a folder is needed) we did not write."""
    found = []
    for rel in rels:
        path = out_dir / rel
        parents = [p for p in Path(rel).parents if p != Path(".")]
        blocked = [p.as_posix() for p in parents if os.path.lexists(out_dir / p) and not (out_dir / p).is_dir()]
        if blocked:
            found.extend(blocked)
        elif os.path.lexists(path) and not _ours(path, previous.get(rel)):
            found.append(rel)
    return sorted(set(found))


def _refuse(out_dir: Path, conflicts: list[str]) -> StatsError:
    shown = ", ".join(conflicts[:8]) + (f", ... ({len(conflicts)} in all)" if len(conflicts) > 8 else "")
    return StatsError(
        f"{out_dir}: holds files that `affectnetplus stats` did not write there, or that changed since it "
        f"did ({shown}); the statistics would overwrite them, so nothing was written. Move those files out of "
        f"{out_dir}, or choose another output folder (--out)."
    )


def check_out_dir(out_dir: str | Path) -> None:
    """:class:`StatsError` now, before any work, when ``out_dir`` is not a folder the statistics
    may write into: a file, or a folder holding a file of yours with the name of one that every
    run writes (``stats.json``, ``tables.md``, ``report.html``). The tables and plots are
    checked again once they are known (:func:`write_stats_files`)."""
    out_dir = Path(out_dir)
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise StatsError(
            f"{out_dir}: exists and is not a folder; expected a folder for the statistics. Choose another --out."
        )
    if out_dir.is_dir():
        conflicts = _conflicts(out_dir, _ALWAYS, _read_manifest(out_dir))
        if conflicts:
            raise _refuse(out_dir, conflicts)


@contextlib.contextmanager
def _one_writer(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder itself (no lock file: nothing added to your folder);
    the kernel drops it when the process ends. Where ``fcntl`` is missing, no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StatsError(
                f"{out_dir}: another `affectnetplus stats` is writing into this folder; wait for it to finish, "
                "or choose another output folder (--out). Nothing was written."
            ) from None
        yield
    finally:
        os.close(fd)


def _write_into(
    stats: StatsSummary, folder: Path, plots: bool, embed: bool, echo: Callable[[str], object]
) -> StatsOutput:
    json_path = folder / "stats.json"
    plain = stats.to_json()
    json_path.write_text(json.dumps(plain, separators=(",", ":")) + "\n", encoding="utf-8")
    tables = write_tables(stats, folder)
    drawn: dict[str, Path] = {}
    note = None
    if plots:
        try:
            drawn = draw_plots(stats, folder / "plots")
        except MissingPlotDependency as exc:
            note = f"Plots skipped: {exc}"
            echo(note)
    else:
        note = "Plots were turned off (--no-plots)."
    report = write_report(stats, folder, drawn, embed=embed, plot_note=note)
    return StatsOutput(folder, plain, json_path, report, tables, drawn, note)


def write_stats_files(
    stats: StatsSummary | Mapping[str, Any],
    out_dir: str | Path,
    *,
    plots: bool = True,
    embed: bool = True,
    echo: Callable[[str], object] = log.warning,
) -> StatsOutput:
    """Write the files for ``stats`` (already computed, typed or plain) into ``out_dir``, replacing only
    files an earlier run wrote there and nobody changed since (see the module's notes).

    Without matplotlib, plots are skipped with a note (via ``echo``; default: a logged warning) and
    everything else is written.

    Raises:
        StatsError: ``out_dir`` holds a file of yours (or one you edited) where a file of the
            statistics goes, or another run is writing into it; nothing was written.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    summary = StatsSummary.of(stats)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _one_writer(out_dir):
        previous = _read_manifest(out_dir)
        had_manifest = os.path.lexists(out_dir / MANIFEST_FILE)
        previous_files = {rel: r.to_json() for rel, r in previous.items()}
        _remove_left_staging(out_dir)
        staging = Path(tempfile.mkdtemp(prefix=".affectnetplus-stats-", dir=out_dir))  # ours: made here, removed below
        try:
            _write_manifest(out_dir, previous_files, staging, writing=True)
            # a kill from here on leaves a folder the next run proves ours
            staged = _write_into(summary, staging, plots, embed, echo)
            rels = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
            conflicts = _conflicts(out_dir, rels, previous)
            if conflicts:
                raise _refuse(out_dir, conflicts)
            records = manifest_entry(staging, rels)
            for rel in rels:
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, out_dir / rel)
            for rel, record in previous.items():  # an earlier run's file this run did not write (its plots, say)
                if rel not in records and _ours(out_dir / rel, record):
                    (out_dir / rel).unlink()
                    if (out_dir / rel).parent != out_dir:
                        with contextlib.suppress(OSError):
                            (out_dir / rel).parent.rmdir()  # only when empty
            _write_manifest(out_dir, records, staging, writing=False)
        except BaseException:
            with contextlib.suppress(OSError):  # the manifest as it was: no record of a folder about to go
                if had_manifest:
                    _write_manifest(out_dir, previous_files, staging, writing=False)
                else:
                    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def moved(path: Path) -> Path:
        return out_dir / path.relative_to(staging)

    return StatsOutput(
        out_dir,
        staged.stats,
        moved(staged.json_path),
        moved(staged.report_path),
        [moved(p) for p in staged.tables],
        {name: moved(p) for name, p in staged.plots.items()},
        staged.plot_note,
    )


def write_stats(
    source: Any,
    out_dir: str | Path,
    *,
    splits: Iterable[str] | None = None,
    plots: bool = True,
    embed: bool = True,
    progress: bool = True,
    echo: Callable[[str], object] = log.warning,
) -> StatsOutput:
    """:func:`~.compute.compute_summary` of ``source``, then :func:`write_stats_files`."""
    stats = compute_summary(source, splits=splits, progress=progress)
    return write_stats_files(stats, out_dir, plots=plots, embed=embed, echo=echo)
