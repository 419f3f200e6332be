"""``report.html``: one page with every table and plot, readable offline.

The page has no scripts, fonts, stylesheets or images from elsewhere: CSS is inline and,
by default, each plot is embedded as a ``data:image/png;base64`` URI, so the one file can
be mailed or opened anywhere. Each figure also names (``data-file`` and a link in its
caption) the PNG file written beside the report, ``plots/<name>.png``. With
``embed=False`` the ``<img>`` tags point at those files instead (a smaller page that must
stay next to its ``plots/`` folder).
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.configs import NULL_LABEL, NULL_SUBSET
from .plots import PLOTS, Plot
from .summary import StatsSummary
from .tables import Table, build_tables, format_value, left_out_sentence, table_by_name, table_file

__all__ = ["render_html", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:1.5rem 2rem 4rem;background:#fff}
h1{margin-top:0}h2{border-bottom:2px solid #e0e0e0;padding-bottom:.2rem;margin-top:2.5rem}
h3{margin-bottom:.3rem}p.desc{color:#555;margin:.2rem 0 .6rem;font-size:.92rem}
table{border-collapse:collapse;font-size:.85rem;margin-bottom:1rem;display:block;overflow-x:auto}
th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;white-space:nowrap}
th{background:#f3f3f3;text-align:left;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.all td{font-weight:600;border-top:1px solid #bbb}
figure{margin:1rem 0 2rem}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9rem}nav ul{columns:2;font-size:.95rem}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:.5rem .8rem}
dl.defs dt{font-weight:600;margin-top:.4rem}dl.defs dd{margin-left:1.2rem;color:#444}
code{background:#f3f3f3;padding:0 .2rem}
"""

# (section title, anchor, [("table", name) | ("plot", name)])
_SECTIONS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("Rows per split, class and subset", "counts", (("plot", "class_subset"), ("table", "counts"))),
    (
        "Soft labels and the human label",
        "soft-labels",
        (
            ("plot", "soft_label_confusion"),
            ("table", "agreement_by_subset"),
            ("table", "agreement_by_class"),
            ("table", "agreement_by_class_subset"),
            ("table", "soft_label_mean"),
        ),
    ),
    ("Valence and arousal", "valence-arousal", (("plot", "valence_arousal"), ("table", "valence_arousal"))),
    (
        "Age, gender and race",
        "demographics",
        (
            ("plot", "age_by_gender"),
            ("table", "age"),
            ("table", "age_distribution"),
            ("table", "gender"),
            ("plot", "race_by_class"),
            ("table", "race"),
        ),
    ),
    ("Landmarks", "landmarks", (("plot", "landmarks_mean_shape"), ("table", "landmarks"))),
    ("Null values and values left out", "nulls", (("table", "nulls"), ("table", "out_of_range"))),
)

_DEFINITIONS = (
    ("class", f"the human label's name, or <code>{NULL_LABEL}</code> where it is null (the unlabeled part)."),
    ("subset", f"the released data-complexity subset, or <code>{NULL_SUBSET}</code> where it is null."),
    ("normalised soft label", "the 8 released scores divided by their sum (the release's scores do not sum to 1)."),
    ("entropy", "Shannon entropy of the normalised soft label, in bits (0 = one class, at most 3)."),
    (
        "rank of the human label",
        "1 + the number of soft-label scores strictly greater than the human class's score; only for human "
        "labels 0..7 (none, uncertain and non_face have no soft-label score). Top-1 rate = share with rank 1.",
    ),
    (
        "gender / race group",
        "the key with the largest estimated probability; unknown where any probability is null or out of range.",
    ),
    (
        "left out",
        "a value outside its documented range (valence and arousal [-1, 1], age [0, 120], probabilities and scores "
        "[0, 1], landmarks [-224, 448] pixels; 0.01 of slack) is kept in the data but left out of every number and "
        "plot, like a null, and counted in the table of values left out.",
    ),
    ("spread", "population standard deviation."),
)


def _table_html(table: Table, heading: str = "h3") -> str:
    head = "".join(f"<th>{html.escape(c.name)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cls = ' class="all"' if row and row[0] == "all" else ""
        cells = "".join(
            f"<td{'' if c.kind == 'text' else ' class=num'}>{html.escape(format_value(v, c.kind))}</td>"
            for v, c in zip(row, table.columns, strict=False)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    csv = html.escape(table_file(table.name, ".csv"))  # written beside the report by write_tables
    return (
        f'<{heading} id="table-{table.name}">{html.escape(table.title)}</{heading}>\n'
        f'<p class="desc">{html.escape(table.description)} '
        f'<a href="{csv}">{csv}</a></p>\n'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _figure_html(plot: Plot, path: Path | None, report_dir: Path, embed: bool) -> str:
    if path is None:
        return f'<p class="note">Plot <em>{html.escape(plot.title)}</em> was not drawn.</p>'
    relative = Path(os.path.relpath(path, report_dir)).as_posix()
    if embed:
        src = "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
    else:
        src = html.escape(relative)
    return (
        f'<figure id="plot-{plot.name}"><img src="{src}" alt="{html.escape(plot.title)}" data-file="{html.escape(relative)}">'
        f'<figcaption>{html.escape(plot.caption)} <a href="{html.escape(relative)}">{html.escape(relative)}</a></figcaption></figure>'
    )


def render_html(
    stats: StatsSummary | Mapping[str, Any],
    plots: Mapping[str, Path] | None = None,
    report_dir: str | Path = ".",
    *,
    embed: bool = True,
    plot_note: str | None = None,
) -> str:
    """The report page as a string.

    ``plots`` maps plot names (:data:`~.plots.PLOTS`) to PNG files; paths in the page are
    relative to ``report_dir`` (where the page will be written). ``plot_note`` is shown
    where plots are missing (for example: matplotlib is not installed).
    """
    plots = dict(plots or {})
    report_dir = Path(report_dir)
    summary = StatsSummary.of(stats)
    tables = build_tables(summary)
    names = {t.name for t in tables}
    by_name = {p.name: p for p in PLOTS}
    source = summary.source
    rows = summary.rows

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>AffectNet+ statistics</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>AffectNet+ statistics</h1>",
        f"<p>Source: <code>{html.escape(str(source.name))}</code> ({html.escape(source.kind)}"
        + (f"; configs {html.escape(', '.join(source.configs))}" if source.configs else "")
        + "). Rows: "
        + ", ".join(f"{html.escape(s)} {rows.by_split[s]:,}" for s in summary.splits)
        + f"; total {rows.total:,}.</p>",
    ]
    bad = source.bad_records
    if any(bad.values()):
        parts.append(
            '<p class="note">Bad records skipped (not counted here): '
            + ", ".join(f"{html.escape(k)} {v:,}" for k, v in bad.items() if v)
            + ". Run <code>affectnetplus verify</code> on the release for the list.</p>"
        )
    left_out = left_out_sentence(summary)
    if left_out:
        parts.append(f'<p class="note">{html.escape(left_out)} <a href="#table-out_of_range">Which, per split</a>.</p>')
    if plot_note and not plots:
        parts.append(f'<p class="note">{html.escape(plot_note)}</p>')
    parts.append(
        "<nav><ul>"
        + "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for t, a, _ in _SECTIONS)
        + '<li><a href="#definitions">Definitions</a></li></ul></nav>'
    )
    for title, anchor, items in _SECTIONS:
        parts.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>')
        for kind, name in items:
            if kind == "table":
                if name in names:
                    parts.append(_table_html(table_by_name(tables, name)))
            elif name in plots or plot_note is None:
                parts.append(_figure_html(by_name[name], plots.get(name), report_dir, embed))
    parts.append('<h2 id="definitions">Definitions</h2><dl class="defs">')
    parts += [f"<dt>{html.escape(term)}</dt><dd>{text}</dd>" for term, text in _DEFINITIONS]
    parts.append("</dl>")
    from .._version import __version__

    parts.append(
        f'<p class="desc">Written by affectnetplus-hf {html.escape(__version__)} (<code>affectnetplus stats</code>). Full numbers: <a href="stats.json">stats.json</a>.</p>'
    )
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def write_report(
    stats: StatsSummary | Mapping[str, Any],
    out_dir: str | Path,
    plots: Mapping[str, Path] | None = None,
    *,
    embed: bool = True,
    plot_note: str | None = None,
) -> Path:
    """Write ``out_dir/report.html`` (see :func:`render_html`) and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_html(stats, plots, out_dir, embed=embed, plot_note=plot_note), encoding="utf-8")
    return path
