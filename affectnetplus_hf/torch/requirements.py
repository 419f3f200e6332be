"""What a torch tool needs of a dataset, and a clear refusal when its release does not have it.

The three releases share one schema, but a column a release lacks is null in every row:
the original AffectNet releases have no complexity ``subset`` (curriculum), no ``gender`` /
``race`` / ``age`` (fairness, resampling), and 2017's ``automatic`` config has no
``human_label`` (views, balanced sampling). A tool given such a column would silently train
on nothing or report empty groups; :func:`require_values` turns that into one
``ValueError`` naming the column and the release.
"""

from __future__ import annotations

__all__ = ["release_name", "require_values"]

_NEEDED_BY = {
    "subset": "a curriculum (complexity subsets)",
    "human_label": "class views, balanced sampling and the metrics (human labels)",
    "gender": "fairness and resampling by gender (estimated demographics)",
    "race": "fairness and resampling by race (estimated demographics)",
    "age": "fairness and resampling by age (estimated demographics)",
}


def _nulls(dataset, column: str) -> tuple[int, int]:
    """``(null count, rows)`` of ``column`` in a map-style ``datasets.Dataset`` (Arrow metadata, no scan)."""
    table = (
        dataset.with_format("arrow")[column]
        if getattr(dataset, "_indices", None) is not None
        else dataset.data.column(column)
    )
    return table.null_count, len(table)


def release_name(dataset) -> str:
    """Which release a dataset's rows come from, told by the columns only some releases fill."""
    columns = set(dataset.column_names)

    def filled(column):
        if column not in columns:
            return False
        nulls, rows = _nulls(dataset, column)
        return nulls < rows

    if filled("face_box") or filled("auto_label"):
        return "AffectNet 2017"
    if "soft_label" in columns and not filled("soft_label") and not filled("subset"):
        return "the 8-label AffectNet release"
    return "AffectNet+"


def require_values(dataset, column: str, purpose: str | None = None) -> None:
    """Raise ``ValueError`` when ``column`` is absent from, or null in every row of, a non-empty
    map-style ``dataset``, naming the column, what needs it and the release."""
    if not hasattr(dataset, "data") or not hasattr(dataset, "column_names") or len(dataset) == 0:
        return
    purpose = purpose or _NEEDED_BY.get(column, "this tool")
    if column in dataset.column_names:
        nulls, rows = _nulls(dataset, column)
        if nulls < rows:
            return
        found = f"its {column!r} column is null in all {rows:,} rows"
    else:
        found = f"it has no {column!r} column"
    release = release_name(dataset)
    hint = ""
    if column == "human_label" and "auto_label" in dataset.column_names:
        hint = " (AffectNet 2017's automatic list holds a model's label in 'auto_label', not a human one)"
    raise ValueError(
        f"{purpose} needs the {column!r} column, and this dataset ({release}) lacks it: {found}{hint}. "
        f"{release} does not provide {column!r}; use a release that does (AffectNet+) or leave this option out"
    )
