"""The statistics section of the dataset card, and its plots beside the card.

For an export (``OUT/README.md``)::

    plots = write_card_plots(stats, OUT)          # OUT/stats/*.png; {} without matplotlib
    section = card_section(stats, plots)          # Markdown, starts with "## Statistics"

The Hub renders the Markdown tables and the images (links relative to the card).
The section holds the headline tables only (soft-label agreement per subset and per
class, valence/arousal per class, gender and race overall); the per-class and subset
counts are in the card already, and ``affectnetplus stats`` writes every table.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.export_files import STATS_DIR
from .plots import PLOTS, MissingPlotDependency, draw_plots
from .summary import StatsSummary
from .tables import Column, Table, build_tables, left_out_sentence, table_by_name, to_markdown

__all__ = ["CARD_PLOTS_DIR", "card_section", "write_card_plots"]

#: Folder of the card's plots, relative to the exported folder.
CARD_PLOTS_DIR = STATS_DIR

log = logging.getLogger(__name__)


def write_card_plots(
    stats: StatsSummary | Mapping[str, Any],
    export_dir: str | os.PathLike[str],
    subdir: str = CARD_PLOTS_DIR,
    echo: Callable[[str], object] = log.warning,
) -> dict[str, str]:
    """Draw the plots into ``export_dir/subdir`` and return ``{plot name: path relative to
    export_dir}`` (POSIX, for Markdown links). Without matplotlib nothing is drawn: a note goes
    to ``echo`` (default: a logged warning) and ``{}`` is returned, so an export never fails for want of plots."""
    try:
        drawn = draw_plots(stats, Path(export_dir) / subdir)
    except MissingPlotDependency as exc:
        echo(f"dataset card: plots skipped ({exc}); the card keeps its tables.")
        return {}
    return {name: f"{subdir}/{path.name}" for name, path in drawn.items()}


def _demographics_table(stats: StatsSummary) -> Table:
    labels = stats.labels
    rows: list[tuple[str, str, int, float | None, float | None]] = []
    for key, groups, overall in (
        ("gender", labels.genders, stats.gender.overall),
        ("race", labels.races, stats.race.overall),
    ):
        for group in groups[:-1]:
            rows.append((key, group, overall.counts[group], overall.shares[group], overall.mean_probability[group]))
        rows.append((key, "unknown", overall.counts["unknown"], None, None))
    return Table(
        "demographics",
        "Estimated gender and race, all rows",
        "Rows per group (the largest estimated probability), share of the rows with a known group, and mean probability.",
        (
            Column("attribute", "text"),
            Column("group", "text"),
            Column("rows"),
            Column("share", "share"),
            Column("mean_probability", "float"),
        ),
        tuple(rows),
    )


def _short_va(table: Table) -> Table:
    keep = ("class", "rows", "valence_mean", "valence_std", "arousal_mean", "arousal_std", "valence_nulls")
    index = [table.header.index(name) for name in keep]
    return Table(
        table.name,
        table.title,
        "Mean and spread (population std) of valence and arousal in [-1, 1]; nulls include the -2 'not applicable' sentinel.",
        tuple(table.columns[i] for i in index),
        tuple(tuple(row[i] for i in index) for row in table.rows),
    )


def card_section(
    stats: StatsSummary | Mapping[str, Any], plots: Mapping[str, str] | None = None, heading: str = "##"
) -> str:
    """Markdown for the card: a ``Statistics`` heading, headline tables and the plots.

    ``plots`` maps plot names to paths relative to the card (what :func:`write_card_plots`
    returns); only those are linked, so a link never points at a missing file.
    """
    plots = dict(plots or {})
    summary = StatsSummary.of(stats)
    tables = build_tables(summary)
    sub = heading + "#"
    parts = [
        f"{heading} Statistics",
        "",
        f"Computed over {summary.rows.total:,} rows ("
        + ", ".join(f"{s} {summary.rows.by_split[s]:,}" for s in summary.splits)
        + "). The soft label is normalised to sum 1 before its entropy (bits) is taken; the rank of the human "
        "label (1 = the soft label's top class) is defined for human labels 0..7 only. Demographic groups are the "
        "largest estimated probability. Run `affectnetplus stats` on this folder for every table and an offline "
        "`report.html`.",
        "",
    ]
    left_out = left_out_sentence(summary)
    if left_out:
        parts += [left_out, ""]
    for table in (
        table_by_name(tables, "agreement_by_subset"),
        table_by_name(tables, "agreement_by_class"),
        _short_va(table_by_name(tables, "valence_arousal")),
        _demographics_table(summary),
    ):
        parts.append(to_markdown(table, heading=sub))
    shown = [p for p in PLOTS if p.name in plots]
    if shown:
        parts.append(f"{sub} Plots\n")
        for plot in shown:
            parts.append(f"**{plot.title}.** {plot.caption}\n\n![{plot.title}]({plots[plot.name]})\n")
    return "\n".join(parts).rstrip() + "\n"
