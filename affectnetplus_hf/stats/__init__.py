"""Statistics of AffectNet+: streaming counts -> plain data -> tables, plots, ``report.html``.

::

    from affectnetplus_hf.stats import compute_stats, write_stats

    stats = compute_stats("affectnet_plus")           # exported folder, repo id or raw release
    stats["agreement"]["by_subset"]["easy"]["top1_rate"]  # plain data, as in stats.json
    compute_summary("affectnet_plus").agreement.by_subset["easy"].top1_rate  # the same, typed
    write_stats("affectnet_plus", "stats_out")        # stats.json, tables/, plots/, report.html

Only the plotting path imports matplotlib (the ``stats`` extra); numbers, tables and the
report work without it. Definitions of every number: :mod:`affectnetplus_hf.stats.compute`.
"""

from .card import CARD_PLOTS_DIR, card_section, write_card_plots
from .compute import StatsAccumulator, compute_stats, compute_summary
from .plots import PLOTS, MissingPlotDependency, draw_plots, plots_available
from .report import render_html, write_report
from .sources import STATS_COLUMNS, iter_batches
from .summary import StatsSummary
from .tables import Table, build_tables, to_csv, to_markdown, write_tables
from .write import StatsOutput, write_stats, write_stats_files

__all__ = [
    "CARD_PLOTS_DIR",
    "PLOTS",
    "STATS_COLUMNS",
    "MissingPlotDependency",
    "StatsAccumulator",
    "StatsOutput",
    "StatsSummary",
    "Table",
    "build_tables",
    "card_section",
    "compute_stats",
    "compute_summary",
    "draw_plots",
    "iter_batches",
    "plots_available",
    "render_html",
    "to_csv",
    "to_markdown",
    "write_card_plots",
    "write_report",
    "write_stats",
    "write_stats_files",
    "write_tables",
]
