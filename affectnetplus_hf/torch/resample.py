"""Re-sample a training set to a chosen race, gender or age-band distribution.

Racial-bias studies train on subsets whose demographic mix is set on purpose (balanced,
or like another population). :func:`resample` picks the rows::

    picked = resample(train, "race", "balanced", seed=0)
    print(picked.summary())
    loader = make_loader(picked.dataset(), 64)

The target is ``"balanced"`` (equal shares), a dict of shares by group name (missing
groups get 0; shares are normalised), or another ``datasets.Dataset`` whose distribution
is copied. A row's group is its most probable estimated group
(:mod:`~affectnetplus_hf.torch.groups`); rows whose estimate is null, or below
``min_probability``, are left out and counted.

Without ``size`` the subset is the largest one that meets the target exactly without
repeating a row (for ``"balanced"``: every group cut to the smallest one), over the groups
that have rows: a group the target asks for that has no row at all is reported short by
its share (else one empty age band would make the whole subset empty). With
``size``, each group is asked for its share of it (largest remainders, so the shares
sum to ``size``); a group with too few rows gives all it has and the shortfall is
reported in :attr:`Resampled.shortfall`, never made up by repeating rows, unless
``replacement=True``: then a short group gives all its rows once and draws the rest
with replacement (a group with no row at all stays short). Deterministic for a seed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from .groups import AGE_BAND_EDGES, NO_GROUP, UNCERTAIN, dataset_groups, group_names

__all__ = ["Resampled", "resample", "target_shares"]

logger = logging.getLogger(__name__)


@dataclass
class Resampled:
    """The chosen rows and an account of how well they meet the target."""

    indices: np.ndarray  #: ``int64`` row indices into the source dataset, ascending
    attribute: str
    target: dict[str, float]  #: share per group, summing to 1
    wanted: dict[str, int]  #: rows asked of each group
    counts: dict[str, int]  #: rows taken from each group (repeats included)
    available: dict[str, int]  #: eligible rows of each group in the source
    shortfall: dict[str, int]  #: groups that could not give what was asked: rows missing
    repeated: int  #: rows drawn a second time or more (only with ``replacement=True``)
    excluded: dict[str, int] = field(default_factory=dict)  #: ``"null"``, ``"below_min_probability"``
    source: object = field(default=None, repr=False)

    def dataset(self):
        """The source dataset's chosen rows (``Dataset.select``: an index mapping, no copy)."""
        if self.source is None:
            raise ValueError("resampled from group indices, not a dataset: select the rows yourself with .indices")
        return self.source.select(self.indices.tolist())

    @property
    def shares(self) -> dict[str, float]:
        """Achieved share of each group."""
        total = sum(self.counts.values())
        return {name: (count / total if total else 0.0) for name, count in self.counts.items()}

    def summary(self) -> str:
        lines = [f"resampled by {self.attribute}: {len(self.indices)} rows"]
        for name in self.target:
            lines.append(
                f"  {name:<16} target {self.target[name]:6.1%}  wanted {self.wanted[name]:6d}  "
                f"taken {self.counts[name]:6d} of {self.available[name]:6d} available"
                + (f"  SHORT by {self.shortfall[name]}" if name in self.shortfall else "")
            )
        if self.repeated:
            lines.append(f"  {self.repeated} rows drawn again (replacement=True)")
        for reason, count in self.excluded.items():
            if count:
                lines.append(f"  left out: {count} rows ({reason.replace('_', ' ')})")
        return "\n".join(lines)


def target_shares(target, names: tuple[str, ...], groups_of=None) -> dict[str, float]:
    """``"balanced"``, a dict of shares, or a dataset (via ``groups_of(dataset)``) -> share per group."""
    if isinstance(target, str):
        if target != "balanced":
            raise ValueError(f"target must be 'balanced', a dict of shares or a dataset, got {target!r}")
        return {name: 1.0 / len(names) for name in names}
    if isinstance(target, Mapping):
        unknown = sorted(set(target) - set(names))
        if unknown:
            raise ValueError(f"unknown groups {unknown}; groups are {list(names)}")
        values = {name: float(target.get(name, 0.0)) for name in names}
        if any(v < 0 for v in values.values()) or sum(values.values()) <= 0:
            raise ValueError(f"shares must be >= 0 and not all 0, got {dict(target)}")
        total = sum(values.values())
        return {name: v / total for name, v in values.items()}
    if groups_of is None or not hasattr(target, "column_names"):
        raise TypeError(f"target must be 'balanced', a dict of shares or a dataset, got {type(target).__name__}")
    groups = groups_of(target)
    counts = torch.bincount(groups[groups >= 0], minlength=len(names)).tolist()
    if not sum(counts):
        raise ValueError("the target dataset has no row with a known group")
    return {name: c / sum(counts) for name, c in zip(names, counts, strict=False)}


def _largest_remainder(size: int, shares: list[float]) -> list[int]:
    exact = [size * s for s in shares]
    base = [int(np.floor(v)) for v in exact]
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[: size - sum(base)]:
        base[i] += 1
    return base


def resample(
    source,
    attribute: str,
    target="balanced",
    *,
    size: int | None = None,
    seed: int = 0,
    min_probability: float | None = None,
    replacement: bool = False,
    age_edges: tuple[int, ...] = AGE_BAND_EDGES,
) -> Resampled:
    """Rows of ``source`` (a ``datasets.Dataset``, or an ``int64`` tensor of group indices)
    whose ``attribute`` (``"race"``, ``"gender"``, ``"age"``) distribution meets ``target``
    (see the module docstring)."""
    names = group_names(attribute, age_edges)
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0):
        raise ValueError(f"size must be a whole number of rows >= 0 (or None), got {size!r}")
    if min_probability is not None and not 0 <= min_probability <= 1:
        raise ValueError(f"min_probability must be in [0, 1] (or None), got {min_probability!r}")

    def groups_of(dataset):
        return dataset_groups(dataset, attribute, min_probability=min_probability, age_edges=age_edges)

    groups = groups_of(source) if hasattr(source, "column_names") else torch.as_tensor(source).long()
    shares = target_shares(target, names, groups_of)
    share = list(shares.values())  # in group order
    excluded = {"null": int((groups == NO_GROUP).sum()), "below_min_probability": int((groups == UNCERTAIN).sum())}
    members = [torch.nonzero(groups == g).flatten().numpy() for g in range(len(names))]
    available = [m.size for m in members]
    positive = [i for i, s in enumerate(share) if s > 0]
    if size is None:
        if replacement:
            size = sum(available)
        else:  # the largest exact subset, over the groups that have rows (an empty group is reported short)
            stocked = [i for i in positive if available[i]]
            size = min((int(np.floor(available[i] / share[i] + 1e-9)) for i in stocked), default=0)
    size = int(size)
    wanted = _largest_remainder(size, share)
    rng = np.random.default_rng(seed)
    picked, counts, shortfall, repeated = [], {}, {}, 0
    for g, name in enumerate(names):
        rows, want = members[g], wanted[g]
        if want <= rows.size:
            take = rng.choice(rows, size=want, replace=False) if want else rows[:0]
        elif replacement and rows.size:
            take = np.concatenate([rows, rng.choice(rows, size=want - rows.size, replace=True)])
            repeated += want - rows.size
        else:
            take = rows
            shortfall[name] = want - rows.size
        picked.append(take)
        counts[name] = int(take.size)
    indices = np.sort(np.concatenate(picked).astype(np.int64)) if picked else np.zeros(0, dtype=np.int64)
    if not any(available[i] for i in positive):
        logger.warning(
            "resample by %s: no row belongs to a group the target asks for (%s rows left out: %s); the subset is empty",
            attribute,
            sum(excluded.values()),
            ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in excluded.items()),
        )
    elif shortfall:
        logger.warning(
            "resample by %s: too few rows to meet the target in %s (pass replacement=True to draw rows again, or a smaller size)",
            attribute,
            ", ".join(f"{name} (short by {missing})" for name, missing in shortfall.items()),
        )
    return Resampled(
        indices=indices,
        attribute=attribute,
        target=shares,
        wanted=dict(zip(names, wanted, strict=False)),
        counts=counts,
        available=dict(zip(names, available, strict=False)),
        shortfall=shortfall,
        repeated=repeated,
        excluded=excluded,
        source=source if hasattr(source, "column_names") else None,
    )
