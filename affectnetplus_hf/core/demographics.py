"""Demographic groups of rows: the most probable race / gender, and age bands (NumPy, no torch).

AffectNet+ carries *estimated* race and gender probabilities and an estimated age, not
self-reported identities. A row's group is its **most probable** race / gender (the first
one on a tie), and its age band the band its estimated age falls in
(:data:`AGE_BAND_EDGES`, the bands of FairFace-style studies). A row whose estimate is
null (or has a null member, ``NaN``) gets :data:`NO_GROUP`; with ``min_probability``, a
row whose most probable group has a lower probability gets :data:`UNCERTAIN`.

The one definition of "the row's group": the statistics count rows by it
(:mod:`affectnetplus_hf.stats.accumulate`, which names :data:`NO_GROUP` ``unknown``), and
the PyTorch resampler, fairness report and per-group metrics use it through
:mod:`affectnetplus_hf.torch.groups`.
"""

from __future__ import annotations

import numpy as np

from .schema import GENDERS, RACES

__all__ = [
    "AGE_BAND_EDGES",
    "ATTRIBUTES",
    "NO_GROUP",
    "UNCERTAIN",
    "age_band_names",
    "age_bands",
    "group_codes",
    "group_names",
    "most_probable",
]

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
    return (*(f"{a}-{b - 1}" for a, b in zip(edges, edges[1:], strict=False)), f"{edges[-1]}+")


def group_names(attribute: str, age_edges: tuple[int, ...] = AGE_BAND_EDGES) -> tuple[str, ...]:
    """Group names of ``attribute`` in index order."""
    if attribute == "race":
        return RACES
    if attribute == "gender":
        return GENDERS
    if attribute == "age":
        return age_band_names(age_edges)
    raise ValueError(f"attribute must be one of {list(ATTRIBUTES)}, got {attribute!r}")


def most_probable(probabilities: np.ndarray, min_probability: float | None = None) -> np.ndarray:
    """``int64 (N,)``: the column of each row's largest probability (the first on a tie);
    :data:`NO_GROUP` where the row has a ``NaN``, :data:`UNCERTAIN` where the largest is
    below ``min_probability``."""
    probabilities = np.asarray(probabilities)
    null = np.isnan(probabilities).any(axis=1)
    filled = np.where(null[:, None], -1.0, probabilities) if null.any() else probabilities
    index = np.argmax(filled, axis=1).astype(np.int64)
    if min_probability is not None:
        index[~null & (filled.max(axis=1, initial=-np.inf) < min_probability)] = UNCERTAIN
    index[null] = NO_GROUP
    return index


def age_bands(ages: np.ndarray, edges: tuple[int, ...] = AGE_BAND_EDGES) -> np.ndarray:
    """``int64 (N,)``: the band of ``edges`` each age falls in (``edges[i] <= age < edges[i + 1]``);
    :data:`NO_GROUP` where the age is ``NaN`` or below ``edges[0]``."""
    ages = np.asarray(ages, dtype=np.float64)
    index = np.searchsorted(np.asarray(edges[1:], dtype=np.float64), ages, side="right").astype(np.int64)
    index[np.isnan(ages) | (ages < edges[0])] = NO_GROUP
    return index


def group_codes(
    values: np.ndarray,
    attribute: str,
    *,
    min_probability: float | None = None,
    age_edges: tuple[int, ...] = AGE_BAND_EDGES,
) -> np.ndarray:
    """``int64 (N,)`` group per row: race / gender ``N x G`` probabilities -> :func:`most_probable`;
    age ``N`` years -> :func:`age_bands`. A wrong shape raises ``ValueError`` naming it."""
    names = group_names(attribute, age_edges)
    values = np.asarray(values)
    if attribute == "age":
        if values.ndim != 1:
            raise ValueError(f"age: expected N ages, got shape {tuple(values.shape)}")
        return age_bands(values, age_edges)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(
            f"{attribute}: expected N x {len(names)} probabilities ({', '.join(names)}), got shape {tuple(values.shape)}"
        )
    return most_probable(values, min_probability)
