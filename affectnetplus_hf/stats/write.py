"""Compute statistics of a source and write everything: JSON, tables, plots, ``report.html``.

Layout of ``out_dir``::

    stats.json                  every number (the plain data of compute_stats)
    tables.md                   every table in Markdown, one file
    tables/<name>.csv, .md      one table per file
    plots/<name>.png            the plots (when matplotlib is installed)
    report.html                 one offline page with the tables and the plots
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compute import compute_stats
from .plots import MissingPlotDependency, draw_plots
from .report import write_report
from .tables import write_tables

__all__ = ["StatsOutput", "write_stats", "write_stats_files"]

log = logging.getLogger(__name__)


@dataclass
class StatsOutput:
    """What :func:`write_stats` wrote."""

    out_dir: Path
    stats: dict
    json_path: Path
    report_path: Path
    tables: list[Path] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    #: Why plots are missing, when they are (e.g. matplotlib not installed).
    plot_note: str | None = None


def write_stats_files(stats: dict, out_dir: str | Path, *, plots: bool = True, embed: bool = True, echo=log.warning) -> StatsOutput:
    """Write the files for ``stats`` (already computed) into ``out_dir``.

    Without matplotlib, plots are skipped with a note (via ``echo``; default: a logged warning) and
    everything else is written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "stats.json"
    json_path.write_text(json.dumps(stats, separators=(",", ":")) + "\n", encoding="utf-8")
    tables = write_tables(stats, out_dir)
    drawn: dict[str, Path] = {}
    note = None
    if plots:
        try:
            drawn = draw_plots(stats, out_dir / "plots")
        except MissingPlotDependency as exc:
            note = f"Plots skipped: {exc}"
            echo(note)
    else:
        note = "Plots were turned off (--no-plots)."
    report = write_report(stats, out_dir, drawn, embed=embed, plot_note=note)
    return StatsOutput(out_dir, stats, json_path, report, tables, drawn, note)


def write_stats(
    source: Any,
    out_dir: str | Path,
    *,
    splits: Iterable[str] | None = None,
    plots: bool = True,
    embed: bool = True,
    progress: bool = True,
    echo=log.warning,
) -> StatsOutput:
    """:func:`~.compute.compute_stats` of ``source``, then :func:`write_stats_files`."""
    stats = compute_stats(source, splits=splits, progress=progress)
    return write_stats_files(stats, out_dir, plots=plots, embed=embed, echo=echo)
