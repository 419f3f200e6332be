"""Demographic groups of rows as tensors: race, gender and age band, from the release's estimates.

The definitions (a row's most probable race / gender, its age band, :data:`NO_GROUP` and
:data:`UNCERTAIN`) are :mod:`affectnetplus_hf.core.demographics`, shared with the statistics;
this module gives them as ``int64`` tensors. The resampler and the fairness report leave
rows of :data:`NO_GROUP` and :data:`UNCERTAIN` out, and count them.

Groups come from a ``datasets.Dataset`` (read through Arrow, no image decoded) with
:func:`dataset_groups`, or from tensors (a collated batch's ``race`` / ``gender`` /
``age``) with :func:`group_index`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.demographics import (
    AGE_BAND_EDGES,
    ATTRIBUTES,
    NO_GROUP,
    UNCERTAIN,
    age_band_names,
    group_codes,
    group_names,
)

__all__ = [
    "AGE_BAND_EDGES",
    "ATTRIBUTES",
    "NO_GROUP",
    "UNCERTAIN",
    "age_band_names",
    "dataset_groups",
    "group_index",
    "group_names",
]


def group_index(
    values: torch.Tensor,
    attribute: str,
    *,
    min_probability: float | None = None,
    age_edges: tuple[int, ...] = AGE_BAND_EDGES,
) -> torch.Tensor:
    """``int64`` group per row, on the device of ``values``: race / gender ``N x G``
    probabilities -> the most probable group; age ``N`` years -> its band (see
    :func:`affectnetplus_hf.core.demographics.group_codes`). :data:`NO_GROUP` where null
    (``NaN``), :data:`UNCERTAIN` where the top probability is below ``min_probability``."""
    values = torch.as_tensor(values)
    host = values.detach().cpu()
    array = (host.double() if attribute == "age" else host.float()).numpy()
    codes = group_codes(array, attribute, min_probability=min_probability, age_edges=age_edges)
    return torch.from_numpy(codes).to(values.device)


def dataset_groups(
    dataset,
    attribute: str,
    *,
    min_probability: float | None = None,
    age_edges: tuple[int, ...] = AGE_BAND_EDGES,
) -> torch.Tensor:
    """:func:`group_index` of every row of a ``datasets.Dataset`` (its ``race`` / ``gender``
    / ``age`` column read as Arrow and converted by :mod:`affectnetplus_hf.core.columns`, as
    the collator converts it)."""
    from ..core.columns import float_values, struct_values

    names = group_names(attribute, age_edges)  # validates the attribute
    if attribute not in dataset.column_names:
        raise KeyError(f"dataset has no {attribute!r} column; columns: {dataset.column_names}")
    from .requirements import require_values

    require_values(dataset, attribute)
    column = dataset.select_columns([attribute]).with_format("arrow")[:].column(attribute)
    values = float_values(column) if attribute == "age" else struct_values(column, names)
    return group_index(
        torch.from_numpy(np.ascontiguousarray(values)), attribute, min_probability=min_probability, age_edges=age_edges
    )
