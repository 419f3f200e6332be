"""Tables of the statistics (:class:`~.summary.StatsSummary`, or its plain data): CSV and Markdown.

Each :class:`Table` has a file-safe ``name``, a title, a sentence saying what its
numbers mean, typed columns and rows of plain values. CSV carries full precision (shares
as fractions 0..1, empty cells for undefined values); Markdown rounds for reading
(shares as percentages, ``–`` for undefined values). The same tables feed
``report.html`` and the dataset card.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.configs import NULL_LABEL, NULL_SUBSET
from .summary import AgeSummary, AgreementCell, AxisSummary, Demographics, StatsSummary

__all__ = [
    "ALL",
    "Column",
    "Table",
    "build_tables",
    "format_value",
    "left_out_sentence",
    "left_out_table",
    "left_out_total",
    "present_classes",
    "table_by_name",
    "table_file",
    "to_csv",
    "to_markdown",
    "write_tables",
]

#: Label of the row that sums or pools every group.
ALL = "all"


def table_file(name: str, suffix: str) -> str:
    """Where :func:`write_tables` writes table ``name`` as ``suffix`` (``.csv`` / ``.md``),
    relative to the output folder: ``tables/<name><suffix>``."""
    return f"tables/{name}{suffix}"


@dataclass(frozen=True)
class Column:
    """A table column: ``kind`` is ``text``, ``int``, ``float`` or ``share`` (a fraction 0..1)."""

    name: str
    kind: str = "int"


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    rows: tuple[tuple, ...]

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]


def _cols(*spec: str) -> tuple[Column, ...]:
    """``"name:kind"`` strings (kind defaults to int) -> columns."""
    out = []
    for item in spec:
        name, _, kind = item.partition(":")
        out.append(Column(name, kind or "int"))
    return tuple(out)


_AGREEMENT_COLUMNS = (
    "rows",
    "entropy_rows",
    "mean_entropy_bits:float",
    "std_entropy_bits:float",
    "ranked",
    "top1_rate:share",
    "mean_rank:float",
)


def _agreement_values(cell: AgreementCell) -> tuple:
    return (
        cell.rows,
        cell.entropy_rows,
        cell.mean_entropy,
        cell.std_entropy,
        cell.ranked,
        cell.top1_rate,
        cell.mean_rank,
    )


def present_classes(stats: StatsSummary | Mapping[str, Any]) -> list[str]:
    """The classes with at least one row in some split, in class order (tables and plots leave the others out)."""
    s = StatsSummary.of(stats)
    return [name for name in s.labels.classes if any(sum(s.counts[split][name].values()) for split in s.splits)]


def _counts(s: StatsSummary) -> Table:
    subsets = s.labels.subsets
    rows = []
    for split in s.splits:
        per_class = s.counts[split]
        totals = dict.fromkeys(subsets, 0)
        for name in s.labels.classes:
            cells = per_class[name]
            if sum(cells.values()) == 0:
                continue
            rows.append((split, name, *(cells[k] for k in subsets), sum(cells.values())))
            for k in subsets:
                totals[k] += cells[k]
        rows.append((split, ALL, *(totals[k] for k in subsets), sum(totals.values())))
    return Table(
        "counts",
        "Rows per split, class and subset",
        f"Rows of each split by human label ({NULL_LABEL}: null human label) and data-complexity subset "
        f"({NULL_SUBSET}: null subset); classes without rows in a split are left out.",
        _cols("split:text", "class:text", *subsets, "total"),
        tuple(rows),
    )


def _agreement_by_subset(s: StatsSummary) -> Table:
    agreement = s.agreement
    return Table(
        "agreement_by_subset",
        "Soft-label agreement with the human label, per subset",
        "Entropy (bits) of the soft label normalised to sum 1, over every row with a soft label; top-1 rate "
        "and mean rank (1 = the soft label's largest score) of the human label, over rows whose human label "
        "is 0..7 (ranked).",
        _cols("subset:text", *_AGREEMENT_COLUMNS),
        tuple(
            (name, *_agreement_values(agreement.by_subset[name]))
            for name in s.labels.subsets
            if agreement.by_subset[name].rows
        )
        + ((ALL, *_agreement_values(agreement.overall)),),
    )


def _agreement_by_class(s: StatsSummary) -> Table:
    agreement = s.agreement
    return Table(
        "agreement_by_class",
        "Soft-label agreement with the human label, per class",
        "As per subset, grouped by human label; none, uncertain and non_face are not in the soft label, so "
        "they have no rank.",
        _cols("class:text", *_AGREEMENT_COLUMNS),
        tuple((name, *_agreement_values(agreement.by_class[name])) for name in present_classes(s))
        + ((ALL, *_agreement_values(agreement.overall)),),
    )


def _agreement_by_class_subset(s: StatsSummary) -> Table:
    cells = s.agreement.by_class_subset
    return Table(
        "agreement_by_class_subset",
        "Soft-label agreement with the human label, per class and subset",
        "As per subset, for each (class, subset) cell with rows.",
        _cols("class:text", "subset:text", *_AGREEMENT_COLUMNS),
        tuple(
            (name, k, *_agreement_values(cells[name][k]))
            for name in present_classes(s)
            for k in s.labels.subsets
            if cells[name][k].rows
        ),
    )


def _soft_label_mean(s: StatsSummary) -> Table:
    soft = s.soft_label_mean
    return Table(
        "soft_label_mean",
        "Mean normalised soft label per human class",
        "Each row: the mean over that class's rows of the soft label divided by its sum (a row sums to 1); "
        "the diagonal is how much of the soft label falls on the human label.",
        _cols("class:text", "rows", *(f"{c}:float" for c in s.labels.soft_classes)),
        tuple(
            (name, soft[name].rows, *normalised) for name in present_classes(s) if (normalised := soft[name].normalised)
        ),
    )


def _age_rows(s: StatsSummary) -> list[tuple[str, AgeSummary]]:
    return [(ALL, s.age.overall)] + [(name, s.age.by_class[name]) for name in present_classes(s)]


def _age(s: StatsSummary) -> Table:
    return Table(
        "age",
        "Estimated age per class",
        "Age in years: rows, rows with an age (known), nulls, mean, spread (population std), min and max.",
        _cols("class:text", "rows", "known", "nulls", "mean:float", "std:float", "min:float", "max:float"),
        tuple((name, a.rows, a.known, a.nulls, a.mean, a.std, a.min, a.max) for name, a in _age_rows(s)),
    )


def _age_distribution(s: StatsSummary) -> Table:
    return Table(
        "age_distribution",
        "Age distribution per class",
        "Rows per 10-year age band (rows with an age).",
        _cols("class:text", *_decade_labels(s.labels.age_bin_edges)),
        tuple((name, *_decades(a.histogram)) for name, a in _age_rows(s)),
    )


def _demographic_table(
    s: StatsSummary, key: str, title: str, block: Demographics, groups: tuple[str, ...], with_means: bool
) -> Table:
    keys = groups[:-1]
    items = [(ALL, block.overall)] + [(name, block.by_class[name]) for name in present_classes(s)]
    return Table(
        key,
        f"{title} per class",
        f"Rows per estimated {key} group (the largest probability; unknown where any probability is null or out of range)"
        f" and share of the rows with a known group" + (", and mean probability." if with_means else "."),
        _cols(
            "class:text",
            "rows",
            *groups,
            *(f"{g}_share:share" for g in keys),
            *(f"mean_p_{g}:float" for g in keys if with_means),
        ),
        tuple(
            (
                name,
                d.rows,
                *(d.counts[g] for g in groups),
                *(d.shares[g] for g in keys),
                *(d.mean_probability[g] for g in keys if with_means),
            )
            for name, d in items
        ),
    )


def _gender(s: StatsSummary) -> Table:
    return _demographic_table(s, "gender", "Gender", s.gender, s.labels.genders, with_means=True)


def _race(s: StatsSummary) -> Table:
    # race's six mean probabilities are in stats.json and the card
    return _demographic_table(s, "race", "Race", s.race, s.labels.races, with_means=False)


def _axis_values(a: AxisSummary) -> tuple:
    return (a.known, a.nulls, a.mean, a.std, a.min, a.max)


def _valence_arousal(s: StatsSummary) -> Table:
    va = s.valence_arousal
    items = [(ALL, va.overall)] + [(name, va.by_class[name]) for name in present_classes(s)]
    va_cols = [
        f"{axis}_{m}" + (":float" if m not in ("known", "nulls") else "")
        for axis in ("valence", "arousal")
        for m in ("known", "nulls", "mean", "std", "min", "max")
    ]
    return Table(
        "valence_arousal",
        "Valence and arousal per class",
        "Mean and spread (population std) of valence and arousal in [-1, 1]; nulls include AffectNet's -2 "
        "'not applicable' sentinel.",
        _cols("class:text", "rows", *va_cols),
        tuple((name, d.rows, *_axis_values(d.valence), *_axis_values(d.arousal)) for name, d in items),
    )


def _nulls(s: StatsSummary) -> Table:
    nulls, total_rows = s.nulls, s.rows.total
    return Table(
        "nulls",
        "Null values per column",
        "Null values per split; a struct field (gender.male) counts where it or its struct is null. The image "
        "column is not read by statistics.",
        _cols("column:text", *s.splits, "total", "share:share"),
        tuple(
            (
                c,
                *(nulls.by_split[split][c] for split in s.splits),
                nulls.total[c],
                nulls.total[c] / total_rows if total_rows else None,
            )
            for c in nulls.columns
        ),
    )


def left_out_total(stats: StatsSummary | Mapping[str, Any]) -> dict[str, int]:
    """Column -> values left out of the statistics for being outside their range (only columns with some)."""
    return {c: n for c, n in StatsSummary.of(stats).out_of_range.total.items() if n}


def left_out_sentence(stats: StatsSummary | Mapping[str, Any]) -> str:
    """One sentence naming the values left out for being outside their range, or ``""`` when none were."""
    summary = StatsSummary.of(stats)
    total = left_out_total(summary)
    if not total:
        return ""
    ranges = summary.out_of_range.ranges
    listed = ", ".join(f"{c} {n:,} (outside [{ranges[c][0]:g}, {ranges[c][1]:g}])" for c, n in total.items())
    return (
        f"{_count(sum(total.values()), 'value')} outside their documented range {'was' if sum(total.values()) == 1 else 'were'} "
        "left out of these statistics and plots: "
        f"{listed}. The data keeps them as released."
    )


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def left_out_table(stats: StatsSummary | Mapping[str, Any]) -> Table | None:
    """The values left out for being outside their range, per split (None when there are none)."""
    s = StatsSummary.of(stats)
    total = left_out_total(s)
    if not total:
        return None
    block = s.out_of_range
    return Table(
        "out_of_range",
        "Values left out: outside their documented range",
        "Values outside their column's documented range (a whole vector when one of its values is), kept in the "
        "data as released but left out of every number and plot above, like nulls (not counted as nulls).",
        _cols("column:text", "low:float", "high:float", *s.splits, "total"),
        tuple((c, *block.ranges[c], *(block.by_split[split][c] for split in s.splits), n) for c, n in total.items()),
    )


def _landmarks(s: StatsSummary) -> Table | None:
    lm = s.landmarks
    if lm.mean is None or lm.std is None:
        return None
    return Table(
        "landmarks",
        "Mean landmark shape",
        f"Mean and spread (population std) of each iBUG-68 point in pixels of the 224 x 224 crop, over "
        f"{lm.rows} rows with landmarks.",
        _cols("point", "mean_x:float", "mean_y:float", "std_x:float", "std_y:float"),
        tuple((i, *mean, *std) for i, (mean, std) in enumerate(zip(lm.mean, lm.std, strict=False))),
    )


#: One builder per table, in report order; a builder returns ``None`` when its table has nothing to show.
_BUILDERS: tuple[Callable[[StatsSummary], Table | None], ...] = (
    _counts,
    _agreement_by_subset,
    _agreement_by_class,
    _agreement_by_class_subset,
    _soft_label_mean,
    _age,
    _age_distribution,
    _gender,
    _race,
    _valence_arousal,
    _nulls,
    left_out_table,
    _landmarks,
)


def build_tables(stats: StatsSummary | Mapping[str, Any]) -> list[Table]:
    """Every table, in report order, of a :class:`~.summary.StatsSummary` or its plain data."""
    summary = StatsSummary.of(stats)
    return [table for build in _BUILDERS if (table := build(summary)) is not None]


def _decade_labels(edges: tuple[int, ...]) -> list[str]:
    last = edges[-1]
    return [f"{a}-{a + 9}" for a in range(0, last, 10)] + [f"{last}+"]


def _decades(histogram: tuple[int, ...]) -> list[int]:
    """5-year bins (the last open) -> 10-year bands (the last open)."""
    body, last = histogram[:-1], histogram[-1]
    return [sum(body[i : i + 2]) for i in range(0, len(body), 2)] + [last]


def table_by_name(tables: list[Table], name: str) -> Table:
    for table in tables:
        if table.name == name:
            return table
    raise KeyError(f"no table {name!r}; tables: {[t.name for t in tables]}")


def _csv_cell(value, kind: str) -> str:
    if value is None:
        return ""
    if kind in ("float", "share"):
        return format(float(value), ".6g")
    return str(value)


def format_value(value, kind: str) -> str:
    """A value for reading: ``–`` when undefined, shares as percentages, floats rounded."""
    if value is None:
        return "–"
    if kind == "share":
        return f"{100 * value:.1f}%"
    if kind == "float":
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    if kind == "int":
        return f"{value:,}"
    return str(value)


def _md_cell(value, kind: str) -> str:
    return format_value(value, kind).replace("|", "\\|")


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow([_csv_cell(v, c.kind) for v, c in zip(row, table.columns, strict=False)])
    return buffer.getvalue()


def to_markdown(table: Table, heading: str | None = "###", describe: bool = True) -> str:
    """The table in GitHub Markdown, with a heading line and its description unless turned off."""
    lines = []
    if heading:
        lines += [f"{heading} {table.title}", ""]
    if describe:
        lines += [table.description, ""]
    lines.append("| " + " | ".join(table.header) + " |")
    lines.append("|" + "|".join("---" if c.kind == "text" else "---:" for c in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_md_cell(v, c.kind) for v, c in zip(row, table.columns, strict=False)) + " |")
    return "\n".join(lines) + "\n"


def write_tables(stats: StatsSummary | Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write ``tables/<name>.csv`` and ``tables/<name>.md`` for every table, and
    ``tables.md`` with all of them; returns the paths written."""
    out_dir = Path(out_dir)
    written = []
    tables = build_tables(stats)
    for table in tables:
        for suffix, text in ((".csv", to_csv(table)), (".md", to_markdown(table))):
            path = out_dir / table_file(table.name, suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    combined = out_dir / "tables.md"
    combined.write_text("# AffectNet+ statistics\n\n" + "\n".join(to_markdown(t) for t in tables), encoding="utf-8")
    written.append(combined)
    return written
