"""The epoch plan of a map-style loader: which rows each batch of an epoch holds, resumable.

:class:`EpochPlan` is the loader's batch sampler. The batches of epoch ``e`` are a pure
function of ``(seed, e, rank, world_size)`` (and, for a step curriculum, of the number
of batches the run had yielded before the epoch): a seeded permutation
(``shuffle``), a seeded class-balanced draw with replacement (``balanced``), or the
rows in order, restricted to the rows a :class:`~affectnetplus_hf.torch.curriculum.Curriculum`
allows, then dealt to the ranks of a distributed run like ``DistributedSampler`` does
(row ``i`` of the epoch's order goes to rank ``i % world_size``; the order is padded by
repeating its start so that every rank has as many rows, or cut with ``drop_last``).

Its iterator is ``Stateful`` (``state_dict`` / ``load_state_dict``, the protocol of
``torchdata.stateful_dataloader``): its state is the epoch and the number of batches
handed out, so a resumed iterator recomputes the epoch's plan and starts at the next
batch; no skipped batch is fetched or decoded. :meth:`EpochPlan.start_at` does the same
from outside (what :class:`~affectnetplus_hf.torch.loader.ResumableLoader` uses: the
plan does not depend on how many workers fetch it, so a state resumes with any
``num_workers``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from .curriculum import Curriculum

__all__ = ["EpochPlan", "derived_seed"]


def derived_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (``numpy.random.SeedSequence``): one per (seed, epoch, ...)."""
    # int() before the shift: numpy < 2 refuses uint64 >> (python int), which it casts to int64
    return (
        int(np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]).generate_state(1, dtype=np.uint64)[0])
        >> 1
    )


class EpochPlan(Sampler[list[int]]):
    """Batches of row indices for one rank, epoch after epoch (see the module docstring).

    Args:
        num_rows: rows of the (map-style) dataset.
        batch_size: rows per batch.
        shuffle: a seeded permutation per epoch (else rows in order).
        labels: ``int64`` human label per row; given with ``balanced_power``, rows are drawn
            class-balanced with replacement (weights from
            :func:`~affectnetplus_hf.torch.sampling.class_balanced_weights` over the rows the
            epoch may draw from), as many draws as those rows have labels.
        balanced_power: see :func:`~affectnetplus_hf.torch.sampling.class_balanced_weights`.
        subsets: ``int64`` subset code per row (``-1`` null), needed with ``curriculum``.
        curriculum: restricts each epoch / step to the subsets of its stage.
        drop_last: drop the last, smaller batch (and the rows that do not deal evenly to the ranks).
        seed: seeds every draw (default: a random seed, kept in the state).
        rank, world_size: this process's share of a distributed run.
    """

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        labels: torch.Tensor | None = None,
        balanced_power: float | None = None,
        subsets: torch.Tensor | None = None,
        curriculum: Curriculum | None = None,
        drop_last: bool = False,
        seed: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        if balanced_power is not None and labels is None:
            raise ValueError("balanced sampling needs the human labels")
        if curriculum is not None and subsets is None:
            raise ValueError("a curriculum needs the subset of every row (the dataset's subset column)")
        self.num_rows = int(num_rows)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.labels = labels
        self.balanced_power = balanced_power
        self.subsets = subsets
        self.curriculum = curriculum
        self.drop_last = bool(drop_last)
        self.seed = int(torch.empty((), dtype=torch.int64).random_().item()) if seed is None else int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        self.step_base = 0
        self._start = 0  # the batch of this epoch its iterators begin at (start_at)
        self._cached: tuple[tuple[int, int], list[np.ndarray]] | None = None  # len() and iter() of one epoch plan once

    # ------------------------------------------------------------------ epochs
    def set_epoch(self, epoch: int, step_base: int = 0) -> None:
        """The epoch the next ``iter()`` plans, and the batches the run yielded before it."""
        self.epoch, self.step_base = int(epoch), int(step_base)
        self._start = 0

    def start_at(self, batch: int) -> None:
        """Iterators of this epoch (until the next :meth:`set_epoch`) begin at ``batch``
        (the number of its batches already handed out)."""
        self._start = int(batch)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "step_base": self.step_base}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.epoch, self.step_base = int(state["seed"]), int(state["epoch"]), int(state["step_base"])
        self._cached = None

    def __iter__(self) -> Iterator[list[int]]:
        iterator = _PlanIterator(self, self.epoch, self.step_base)
        iterator.yielded = self._start
        return iterator

    def __len__(self) -> int:
        return len(self.batches(self.epoch, self.step_base))

    # ------------------------------------------------------------------ the plan
    def _pool(self, codes: tuple[int, ...] | None) -> np.ndarray:
        """Rows whose subset code is one of ``codes`` (``None``: every row)."""
        if codes is None:
            return np.arange(self.num_rows, dtype=np.int64)
        assert self.subsets is not None  # __init__: a curriculum comes with the subsets
        return torch.isin(self.subsets, torch.tensor(codes, dtype=torch.int64)).nonzero().flatten().numpy()

    def _order(self, pool: np.ndarray, length: int | None, *seed_parts: int) -> np.ndarray:
        """The epoch's row order over ``pool``: ``length`` rows (default: one pass)."""
        generator = torch.Generator().manual_seed(derived_seed(self.seed, *seed_parts))
        if pool.size == 0:
            return pool
        if self.balanced_power is not None:
            from .sampling import class_balanced_weights

            assert self.labels is not None  # __init__: balanced sampling comes with the labels
            weights = class_balanced_weights(self.labels[torch.from_numpy(pool)], power=self.balanced_power)
            draws = int((weights > 0).sum()) if length is None else length
            picked = torch.multinomial(weights, draws, replacement=True, generator=generator)
            return pool[picked.numpy()]
        if self.shuffle:
            order = pool[torch.randperm(pool.size, generator=generator).numpy()]
        else:
            order = pool
        if length is not None and length != order.size:
            order = np.resize(order, length)  # repeat the pass cyclically
        return order

    def _deal(self, order: np.ndarray) -> np.ndarray:
        """This rank's rows of the epoch's order."""
        if self.world_size == 1:
            return order
        if self.drop_last:
            order = order[: order.size // self.world_size * self.world_size]
        elif order.size % self.world_size:
            order = np.resize(order, -(-order.size // self.world_size) * self.world_size)
        return order[self.rank :: self.world_size]

    def batches(self, epoch: int, step_base: int = 0) -> list[np.ndarray]:
        """This rank's batches of ``epoch`` (``step_base``: batches yielded before it, for a step curriculum)."""
        key = (int(epoch), int(step_base))
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, self._plan(*key))
        return self._cached[1]

    def _plan(self, epoch: int, step_base: int) -> list[np.ndarray]:
        b = self.batch_size
        if self.curriculum is None or self.curriculum.by == "epoch":
            stage, codes = -1, None  # -1: no curriculum
            if self.curriculum is not None:
                stage = self.curriculum.stage_at(epoch)
                codes = self.curriculum.stage_codes(stage)
            rows = self._deal(self._order(self._pool(codes), None, epoch, stage))
            cut = rows.size // b * b if self.drop_last else rows.size
            return [rows[i : i + b] for i in range(0, cut, b)]
        # step curriculum: every batch full; the epoch is as long as a pass over all stages' rows
        stages = range(len(self.curriculum.stages))
        full = self._pool(tuple({code for s in stages for code in self.curriculum.stage_codes(s)})).size
        per_rank = full // self.world_size if self.drop_last else -(-full // self.world_size)
        count = per_rank // b if self.drop_last else -(-per_rank // b)
        span = b * self.world_size
        orders: dict[int, np.ndarray] = {}
        out = []
        for k in range(count):
            stage = self.curriculum.stage_at(step_base + k)
            if stage not in orders:
                orders[stage] = self._order(self._pool(self.curriculum.stage_codes(stage)), count * span, epoch, stage)
            order = orders[stage]
            if order.size == 0:
                raise ValueError(f"curriculum stage {self.curriculum.stages[stage]} has no rows in this dataset")
            out.append(order[k * span : (k + 1) * span][self.rank :: self.world_size])
        return out


class _PlanIterator(Iterator[list[int]]):
    """One epoch of a :class:`EpochPlan`; ``Stateful``: ``{"epoch", "step_base", "yielded"}``."""

    def __init__(self, plan: EpochPlan, epoch: int, step_base: int):
        self.plan = plan
        self.epoch, self.step_base = epoch, step_base
        self.plan_batches = plan.batches(epoch, step_base)
        self.yielded = 0

    def __iter__(self):
        return self

    def __next__(self) -> list[int]:
        if self.yielded >= len(self.plan_batches):
            raise StopIteration
        batch = self.plan_batches[self.yielded]
        self.yielded += 1
        return batch.tolist()

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step_base": self.step_base, "yielded": self.yielded}

    def load_state_dict(self, state: dict) -> None:
        epoch, step_base = int(state["epoch"]), int(state["step_base"])
        if (epoch, step_base) != (self.epoch, self.step_base):
            self.epoch, self.step_base = epoch, step_base
            self.plan_batches = self.plan.batches(epoch, step_base)
        self.yielded = int(state["yielded"])
