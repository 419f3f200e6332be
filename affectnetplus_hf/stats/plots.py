"""PNG plots of the statistics (:class:`~.summary.StatsSummary`), drawn with matplotlib (the ``stats`` extra).

matplotlib is imported only inside :func:`draw_plots`, and only its object-oriented API
is used (``Figure`` + the Agg canvas): no ``pyplot``, no global backend switch, so drawing
works on a machine without a display and does not disturb a notebook's backend.

Plots (file name -> what it shows), in :data:`PLOTS` order:

* ``class_subset_counts.png``: rows per class, stacked by subset, one panel per split;
* ``valence_arousal_density.png``: the valence-arousal density of each class in its colour;
* ``soft_label_confusion.png``: mean normalised soft label (columns) per human class (rows);
* ``age_by_gender.png``: age histogram per estimated gender;
* ``race_by_class.png``: estimated race composition of each class;
* ``landmarks_mean_shape.png``: the mean iBUG-68 shape with one-std ellipses per point.

Every axis has fixed limits from the documented ranges and every histogram fixed bins (made
by the accumulator), never limits or bins from the data's min and max; values outside the
ranges are left out before they get here (:data:`~.groups.SUMMARY_RANGES`), so drawing
takes the same time whatever the values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.configs import NULL_SUBSET
from ..core.landmarks import IBUG68_CONTOURS
from .groups import SUMMARY_RANGES
from .summary import StatsSummary
from .tables import ALL, present_classes

__all__ = ["PLOTS", "MissingPlotDependency", "Plot", "draw_plots", "plots_available"]

_INSTALL_HINT = "pip install 'affectnetplus-hf[stats]'  (or: pip install matplotlib)"


class MissingPlotDependency(ImportError):
    """matplotlib is not installed: plots cannot be drawn (tables and numbers still can)."""


@dataclass(frozen=True)
class Plot:
    name: str
    file: str
    title: str
    caption: str
    draw: Callable[[StatsSummary], Any]


def plots_available() -> bool:
    """Whether matplotlib can be imported (without importing it twice when it is)."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _margins(figure, left=0.8, right=0.2, top=0.5, bottom=0.6, hspace=None, wspace=None) -> None:
    """Fixed margins in inches (a layout engine would cost a second full draw per figure)."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=hspace,
        wspace=wspace,
    )


def _within(value: float | None, low: float, high: float) -> bool:
    """``value`` is a number in ``[low, high]`` (not None, not NaN, not infinite)."""
    return value is not None and low <= value <= high


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


# One strong colour per class group (codes 0..10, then NULL_LABEL): tab10, then two darker tones.
_CLASS_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#636363",
)  # fmt: skip


def _class_colours(classes: Iterable[str], all_classes: tuple[str, ...]) -> dict[str, str]:
    return {name: _CLASS_PALETTE[all_classes.index(name) % len(_CLASS_PALETTE)] for name in classes}


_SUBSET_COLOURS = {"easy": "#4caf50", "challenging": "#ff9800", "difficult": "#e53935", NULL_SUBSET: "#9e9e9e"}
_GENDER_COLOURS = {"female": "#d81b60", "male": "#1e88e5", "unknown": "#9e9e9e"}


def _draw_class_subset(stats: StatsSummary):
    splits = stats.splits or ("(none)",)
    figure = _figure(max(6.0, 0.55 * len(stats.labels.classes) + 2), 3.0 * len(splits) + 0.4)
    axes = figure.subplots(len(splits), 1, squeeze=False)[:, 0]
    _margins(figure, left=0.9, top=0.75, bottom=0.9, hspace=0.5)
    subsets = stats.labels.subsets
    for ax, split in zip(axes, splits, strict=False):
        counts: Mapping[str, Mapping[str, int]] = stats.counts.get(split, {})
        classes = [c for c in stats.labels.classes if c in counts and any(counts[c].values())]
        if not classes:
            _no_data(ax, f"{split}: no rows")
            continue
        bottom = [0] * len(classes)
        for subset in subsets:
            values = [counts[c][subset] for c in classes]
            if not any(values):
                continue
            ax.bar(classes, values, bottom=bottom, label=subset, color=_SUBSET_COLOURS.get(subset))
            bottom = [b + v for b, v in zip(bottom, values, strict=False)]
        ax.set_title(f"{split}: {sum(bottom):,} rows", fontsize=10)
        ax.set_ylabel("rows")
        ax.tick_params(axis="x", labelrotation=35)
        ax.legend(fontsize=8, frameon=False)
    figure.suptitle("Rows per class and subset")
    return figure


def _draw_va_density(stats: StatsSummary):
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap, LogNorm, to_rgb

    density = stats.valence_arousal.density
    lo, hi = density.range
    classes = [c for c in present_classes(stats) if sum(map(sum, density.by_class[c]))]
    if not classes:
        figure = _figure(5, 4)
        _margins(figure)
        _no_data(figure.subplots(), "no rows with both valence and arousal")
        figure.suptitle("Valence-arousal density per class")
        return figure
    colours = _class_colours(classes, stats.labels.classes)
    columns = min(4, len(classes))
    rows = math.ceil(len(classes) / columns)
    figure = _figure(2.5 * columns + 0.8, 2.6 * rows + 0.9)
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).ravel()
    _margins(figure, left=0.7, right=0.15, top=0.6, bottom=0.6, hspace=0.25, wspace=0.12)
    for ax in axes[len(classes) :]:
        ax.set_visible(False)
    by_class = stats.valence_arousal.by_class
    for index, (ax, name) in enumerate(zip(axes, classes, strict=False)):
        hist = np.asarray(density.by_class[name], dtype=float)
        colour = to_rgb(colours[name])
        tint = tuple(0.8 + 0.2 * c for c in colour)  # a pale shade for a single row, full colour at the peak
        cmap = LinearSegmentedColormap.from_list(name, [tint, colour]).with_extremes(bad=(1, 1, 1, 0))
        shown = np.ma.masked_equal(hist.T, 0)  # rows = arousal, columns = valence
        norm = LogNorm(vmin=1, vmax=hist.max()) if hist.max() > 1 else None
        ax.imshow(
            shown,
            origin="lower",
            extent=(lo, hi, lo, hi),
            cmap=cmap,
            norm=norm,
            vmin=None if norm else 0,
            vmax=None if norm else 1,
            aspect="equal",
            interpolation="nearest",
        )
        mean_v, mean_a = by_class[name].valence.mean, by_class[name].arousal.mean
        if _within(mean_v, lo, hi) and _within(mean_a, lo, hi):  # a mark outside would stretch the shared axes
            ax.plot([mean_v], [mean_a], marker="+", color="black", markersize=10)
        ax.axhline(0, color="0.85", lw=0.6)
        ax.axvline(0, color="0.85", lw=0.6)
        ax.set_title(f"{name} ({int(hist.sum()):,})", fontsize=9, color=colours[name])
        if index % columns == 0:
            ax.set_ylabel("arousal", fontsize=8)
        if index + columns >= len(classes):
            ax.set_xlabel("valence", fontsize=8)
            ax.tick_params(labelbottom=True)
        ax.tick_params(labelsize=7)
    figure.suptitle("Valence-arousal density per class (log colour; + = mean)")
    return figure


def _draw_confusion(stats: StatsSummary):
    import numpy as np

    soft = stats.soft_label_mean
    classes = [c for c in present_classes(stats) if soft[c].normalised]
    columns = stats.labels.soft_classes
    figure = _figure(8, 0.45 * max(len(classes), 4) + 2)
    ax = figure.subplots()
    _margins(figure, left=1.9, right=1.1, top=0.4, bottom=1.1)
    if not classes:
        _no_data(ax)
        return figure
    matrix = np.array([soft[c].normalised for c in classes])
    image = ax.imshow(matrix, cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(len(columns)), columns, rotation=35, ha="right")
    ax.set_yticks(range(len(classes)), [f"{c} ({soft[c].rows:,})" for c in classes])
    ax.set_xlabel("soft-label class")
    ax.set_ylabel("human label (rows)")
    limit = matrix.max()
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                f"{matrix[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if matrix[i, j] < 0.6 * limit else "black",
            )
    colorbar_ax = figure.add_axes(
        (
            1 - 0.95 / figure.get_size_inches()[0],
            ax.get_position().y0,
            0.18 / figure.get_size_inches()[0],
            ax.get_position().height,
        )
    )
    figure.colorbar(image, cax=colorbar_ax, label="mean share of the soft label")
    ax.set_title("Mean normalised soft label per human class")
    return figure


def _draw_age(stats: StatsSummary):
    edges = stats.labels.age_bin_edges
    width = edges[1] - edges[0]
    lefts = list(edges[:-1]) + [edges[-1]]
    figure = _figure(7, 3.6)
    ax = figure.subplots()
    _margins(figure, left=0.7, top=0.4, bottom=0.6)
    histograms = stats.age.histogram_by_gender
    groups = [g for g in stats.labels.genders if sum(histograms[g])]
    if not groups:
        _no_data(ax, "no rows with an age")
        return figure
    bar = width / len(groups)
    for k, group in enumerate(groups):
        ax.bar(
            [x + k * bar for x in lefts],
            histograms[group],
            width=bar,
            align="edge",
            label=f"{group} ({sum(histograms[group]):,})",
            color=_GENDER_COLOURS.get(group),
        )
    ax.set_xticks(list(edges) + [edges[-1] + width], [str(e) for e in edges] + [""], fontsize=7)
    ax.set_xlabel(f"estimated age (years; {width}-year bins, last bin {edges[-1]}+)")
    ax.set_ylabel("rows")
    ax.legend(title="estimated gender", fontsize=8, frameon=False)
    ax.set_title("Age by estimated gender")
    return figure


def _draw_race(stats: StatsSummary):
    from matplotlib import colormaps

    race = stats.race
    keys = stats.labels.races[:-1]
    items = [(ALL, race.overall)] + [(c, race.by_class[c]) for c in present_classes(stats)]
    items = [(name, d) for name, d in items if any(v is not None for v in d.shares.values())]
    figure = _figure(8, 0.42 * max(len(items), 4) + 1.9)
    ax = figure.subplots()
    _margins(figure, left=1.6, top=0.4, bottom=1.3)
    if not items:
        _no_data(ax, "no rows with race probabilities")
        return figure
    cmap = colormaps["Set2"]
    names = [f"{name} ({d.rows - d.counts['unknown']:,})" for name, d in items][::-1]
    left = [0.0] * len(items)
    for k, key in enumerate(keys):
        values = [100 * (d.shares[key] or 0.0) for _, d in items][::-1]
        ax.barh(names, values, left=left, color=cmap(k), label=key)
        for y, (x0, v) in enumerate(zip(left, values, strict=False)):
            if v >= 7:
                ax.text(x0 + v / 2, y, f"{v:.0f}", ha="center", va="center", fontsize=7)
        left = [a + b for a, b in zip(left, values, strict=False)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of rows with a known estimated race (largest probability)")
    ax.legend(
        ncols=6,
        fontsize=8,
        frameon=False,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.5 / (figure.get_size_inches()[1] - 1.7)),
    )
    ax.set_title("Estimated race composition per class")
    return figure


def _draw_landmarks(stats: StatsSummary):
    from matplotlib.patches import Ellipse

    lm = stats.landmarks
    figure = _figure(5, 5.2)
    ax = figure.subplots()
    _margins(figure, left=0.7, top=0.4, bottom=0.6)
    if lm.mean is None or lm.std is None:
        _no_data(ax, "no rows with landmarks")
        return figure
    mean, std = lm.mean, lm.std
    low, high = SUMMARY_RANGES["landmarks"]
    if not all(_within(v, low, high) for p in mean for v in p) or not all(
        _within(v, 0, high - low) for p in std for v in p
    ):
        _no_data(ax, "landmarks outside the crop's range")  # stats from elsewhere: never draw a huge shape
        return figure
    for (x, y), (sx, sy) in zip(mean, std, strict=False):
        ax.add_patch(Ellipse((x, y), 2 * sx, 2 * sy, facecolor="#1e88e5", alpha=0.18, edgecolor="none"))
    for first, stop, closed in IBUG68_CONTOURS:
        if stop > len(mean):
            continue
        seq = mean[first:stop] + ((mean[first],) if closed else ())
        ax.plot([p[0] for p in seq], [p[1] for p in seq], color="0.25", lw=1)
    ax.scatter([p[0] for p in mean], [p[1] for p in mean], s=6, color="#0d47a1", zorder=3)
    ax.set_xlim(0, 224)
    ax.set_ylim(224, 0)  # image frame: origin top-left, y down
    ax.set_aspect("equal")
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    ax.set_title(f"Mean landmark shape ({lm.rows:,} rows; ellipses: 1 std)", fontsize=10)
    return figure


#: Every plot, in report order.
PLOTS: tuple[Plot, ...] = (
    Plot(
        "class_subset",
        "class_subset_counts.png",
        "Rows per class and subset",
        "Rows per human label, stacked by data-complexity subset, one panel per split.",
        _draw_class_subset,
    ),
    Plot(
        "valence_arousal",
        "valence_arousal_density.png",
        "Valence-arousal density per class",
        "Each class's rows in the valence-arousal plane (40 x 40 bins, log colour), its mean marked +.",
        _draw_va_density,
    ),
    Plot(
        "soft_label_confusion",
        "soft_label_confusion.png",
        "Soft-label confusion",
        "Mean soft label (normalised to sum 1) for the rows of each human label: how annotators' single label and the soft label agree.",
        _draw_confusion,
    ),
    Plot(
        "age_by_gender",
        "age_by_gender.png",
        "Age by gender",
        "Estimated age, 5-year bins, per estimated gender (largest probability).",
        _draw_age,
    ),
    Plot(
        "race_by_class",
        "race_by_class.png",
        "Race composition per class",
        "Share of each estimated race (largest probability) among the rows of each class.",
        _draw_race,
    ),
    Plot(
        "landmarks_mean_shape",
        "landmarks_mean_shape.png",
        "Mean landmark shape",
        "Mean position of the 68 iBUG points in the 224 x 224 crop; ellipses span one standard deviation in x and y.",
        _draw_landmarks,
    ),
)


def draw_plots(
    stats: StatsSummary | Mapping[str, Any], out_dir: str | Path, names: Iterable[str] | None = None
) -> dict[str, Path]:
    """Draw the plots (all, or those ``names``) into ``out_dir`` as PNG; returns ``{name: path}``.

    Raises :class:`MissingPlotDependency` when matplotlib is not installed.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingPlotDependency(f"plots need matplotlib, which is not installed: {_INSTALL_HINT}") from exc
    wanted = set(names) if names is not None else None
    known = {p.name for p in PLOTS}
    if wanted is not None and wanted - known:
        raise ValueError(f"unknown plot(s) {sorted(wanted - known)}; valid: {sorted(known)}")
    summary = StatsSummary.of(stats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for plot in PLOTS:
        if wanted is not None and plot.name not in wanted:
            continue
        figure = plot.draw(summary)
        path = out_dir / plot.file
        figure.savefig(path, format="png", dpi=100)
        written[plot.name] = path
    return written
