"""Demographic groups of rows: race, gender and age band, from the release's estimates.

AffectNet+ carries *estimated* race and gender probabilities and an estimated age, not
self-reported identities. A row's group is its **most probable** race / gender, and its
age band the band its estimated age falls in (:data:`AGE_BAND_EDGES`, the bands of
FairFace-style studies). With ``min_probability``, a row whose most probable group has
a lower probability gets :data:`UNCERTAIN` instead; a row whose estimate is null (or
has a null member) gets :data:`NO_GROUP`. The resampler and the fairness report leave
both out, and count them.

Groups come from a ``datasets.Dataset`` (read through Arrow, no image decoded) with
:func:`dataset_groups`, or from tensors (a collated batch's ``race`` / ``gender`` /
``age``) with :func:`group_index`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..schema import GENDERS, RACES

__all__ = ["AGE_BAND_EDGES", "ATTRIBUTES", "NO_GROUP", "UNCERTAIN", "age_band_names", "dataset_groups", "group_index", "group_names"]

#: The attributes rows are grouped by (the batch / dataset column of each: ``race``, ``gender``, ``age``).
ATTRIBUTES: tuple[str, ...] = ("race", "gender", "age")

#: Lower edges of the age bands in years: 0-2, 3-9, 10-19, ..., 60-69, 70+.
AGE_BAND_EDGES: tuple[int, ...] = (0, 3, 10, 20, 30, 40, 50, 60, 70)

#: Group index of a row whose estimate is null.
NO_GROUP = -1
#: Group index of a row whose most probable group is below ``min_probability``.
UNCERTAIN = -2


def age_band_names(edges: tuple[int, ...] = AGE_BAND_EDGES) -> tuple[str, ...]:
    """``("0-2", "3-9", ..., "70+")`` for ``edges``."""
    if list(edges) != sorted(set(edges)) or not edges:
        raise ValueError(f"age band edges must increase, got {edges}")
    return (*(f"{a}-{b - 1}" for a, b in zip(edges, edges[1:])), f"{edges[-1]}+")


def group_names(attribute: str, age_edges: tuple[int, ...] = AGE_BAND_EDGES) -> tuple[str, ...]:
    """Group names of ``attribute`` in index order."""
    if attribute == "race":
        return RACES
    if attribute == "gender":
        return GENDERS
    if attribute == "age":
        return age_band_names(age_edges)
    raise ValueError(f"attribute must be one of {list(ATTRIBUTES)}, got {attribute!r}")


def group_index(
    values: torch.Tensor,
    attribute: str,
    *,
    min_probability: float | None = None,
    age_edges: tuple[int, ...] = AGE_BAND_EDGES,
) -> torch.Tensor:
    """``int64`` group per row: race / gender ``N x G`` probabilities -> the most probable
    group; age ``N`` years -> its band. :data:`NO_GROUP` where null (``NaN``),
    :data:`UNCERTAIN` where the top probability is below ``min_probability``."""
    names = group_names(attribute, age_edges)
    values = torch.as_tensor(values)
    if attribute == "age":
        if values.dim() != 1:
            raise ValueError(f"age: expected N ages, got shape {tuple(values.shape)}")
        ages = values.double()
        edges = torch.tensor(age_edges[1:], dtype=torch.float64)
        index = torch.bucketize(ages, edges, right=True)
        return torch.where(torch.isnan(ages) | (ages < age_edges[0]), torch.full_like(index, NO_GROUP), index)
    if values.dim() != 2 or values.shape[1] != len(names):
        raise ValueError(f"{attribute}: expected N x {len(names)} probabilities ({', '.join(names)}), got shape {tuple(values.shape)}")
    top, index = values.float().nan_to_num(-1.0).max(dim=1)
    index = torch.where(torch.isnan(values).any(dim=1), torch.full_like(index, NO_GROUP), index)
    if min_probability is not None:
        index = torch.where((index >= 0) & (top < min_probability), torch.full_like(index, UNCERTAIN), index)
    return index


def dataset_groups(
    dataset,
    attribute: str,
    *,
    min_probability: float | None = None,
    age_edges: tuple[int, ...] = AGE_BAND_EDGES,
) -> torch.Tensor:
    """:func:`group_index` of every row of a ``datasets.Dataset`` (its ``race`` / ``gender``
    / ``age`` column read as Arrow and converted by :mod:`affectnetplus_hf.columns`, as
    the collator converts it)."""
    from ..columns import float_values, struct_values

    names = group_names(attribute, age_edges)  # validates the attribute
    if attribute not in dataset.column_names:
        raise KeyError(f"dataset has no {attribute!r} column; columns: {dataset.column_names}")
    column = dataset.select_columns([attribute]).with_format("arrow")[:].column(attribute)
    values = float_values(column) if attribute == "age" else struct_values(column, names)
    return group_index(torch.from_numpy(np.ascontiguousarray(values)), attribute, min_probability=min_probability, age_edges=age_edges)
