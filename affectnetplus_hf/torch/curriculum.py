"""Curriculum by data-complexity subset: which subsets a batch may draw from, by epoch or by step.

AffectNet+ sorts every image into ``easy``, ``challenging`` or ``difficult``
(:data:`~affectnetplus_hf.core.schema.SUBSETS`). A :class:`Curriculum` is a list of stages,
each a set of subsets, and the epoch (``by="epoch"``) or loader step (``by="step"``) at
which each stage after the first begins. The default is the usual easy-to-hard schedule::

    Curriculum(starts=(2, 4))        # epochs 0-1 easy, 2-3 easy + challenging, 4.. all

Rows whose subset is null are drawn only in a stage that lists ``None`` (the last stage
of the default schedule, "all", does). ``make_loader(..., curriculum=...)`` applies the
schedule to map-style and streaming data, together with ``balanced=`` and resuming:

* ``by="epoch"``: epoch ``e`` draws from the rows of the stage of ``e`` (an epoch is
  shorter while fewer subsets are allowed);
* ``by="step"``: every epoch has the length of a full epoch, and batch ``s`` (counted
  over the whole run, across epochs) draws from the stage of ``s``. Streaming data is
  read in order, so rows of a subset not yet allowed are passed over for that epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from ..core.choices import CurriculumBy, check_choice
from ..core.schema import SUBSETS

__all__ = ["DEFAULT_STAGES", "Curriculum"]

#: easy -> easy + challenging -> all (``None``: rows without a subset).
DEFAULT_STAGES: tuple[tuple[str | None, ...], ...] = (
    ("easy",),
    ("easy", "challenging"),
    (*SUBSETS, None),
)


@dataclass(frozen=True)
class Curriculum:
    """Stages of allowed subsets and where each begins (see the module docstring).

    Args:
        starts: the epoch / step at which stages 2, 3, ... begin (increasing, one fewer
            than the stages).
        stages: tuples of subset names (``None`` = null subset); default easy -> easy +
            challenging -> all.
        by: ``"epoch"`` or ``"step"``.
    """

    starts: tuple[int, ...]
    stages: tuple[tuple[str | None, ...], ...] = DEFAULT_STAGES
    by: CurriculumBy = "epoch"

    def __post_init__(self):
        if isinstance(self.starts, (str, bytes)) or not hasattr(self.starts, "__iter__"):
            raise TypeError(
                f"starts must be a sequence of epochs / steps, e.g. (2, 4), got {self.starts!r} (Curriculum.parse reads 'epoch:2,4')"
            )
        object.__setattr__(self, "starts", tuple(int(s) for s in self.starts))
        object.__setattr__(self, "stages", tuple(tuple(stage) for stage in self.stages))
        check_choice("by", self.by, CurriculumBy)
        if len(self.starts) != len(self.stages) - 1:
            raise ValueError(
                f"{len(self.stages)} stages need {len(self.stages) - 1} start points, got {len(self.starts)}: {self.starts}"
            )
        if any(b <= a for a, b in zip(self.starts, self.starts[1:], strict=False)) or (
            self.starts and self.starts[0] < 1
        ):
            raise ValueError(f"start points must be increasing and >= 1, got {self.starts}")
        for stage in self.stages:
            unknown = [s for s in stage if s is not None and s not in SUBSETS]
            if unknown or not stage:
                raise ValueError(f"a stage lists subsets from {list(SUBSETS)} or None (no subset), got {stage!r}")

    @classmethod
    def parse(cls, text: str) -> Curriculum:
        """``"epoch:2,4"`` or ``"step:100,200"``: the default stages starting there."""
        by, _, starts = text.partition(":")
        try:
            return cls(
                tuple(int(s) for s in starts.split(",") if s), by=cast(CurriculumBy, by.strip())
            )  # checked by __post_init__
        except ValueError as exc:
            raise ValueError(f"curriculum {text!r}: expected 'epoch:E1,E2' or 'step:S1,S2' ({exc})") from None

    def stage_at(self, position: int) -> int:
        """Index of the stage that holds epoch / step ``position``."""
        return sum(1 for start in self.starts if position >= start)

    def stage_codes(self, stage: int) -> tuple[int, ...]:
        """Subset codes stage ``stage`` allows (``-1`` = null subset)."""
        return codes(self.stages[stage])

    def codes_at(self, position: int) -> tuple[int, ...]:
        """Allowed subset codes at epoch / step ``position``."""
        return self.stage_codes(self.stage_at(position))


def codes(stage: Sequence[str | None]) -> tuple[int, ...]:
    """Subset names -> codes as the batches hold them (``-1`` for ``None``)."""
    return tuple(-1 if name is None else SUBSETS.index(name) for name in stage)
