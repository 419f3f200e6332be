"""``make_loader``: a resumable DataLoader that feeds AffectNet+ to PyTorch at the decoder's speed.

The loader is a :class:`ResumableLoader`, a ``torchdata`` ``StatefulDataLoader`` that
counts epochs: ``state_dict()`` / ``load_state_dict()`` resume mid-epoch, in another
process, with exactly the rows an uninterrupted run yields, and nothing skipped is decoded.

For a ``datasets.Dataset`` (map-style), the batches of an epoch are a
:class:`~affectnetplus_hf.torch.epoch_plan.EpochPlan` (shuffle, class-balanced draws,
curriculum, ranks; resumed by recomputing the plan); each worker receives a list of row
indices, gathers those rows from Arrow (no per-value Python objects, no image decoding
by ``datasets``) and collates them with
:class:`~affectnetplus_hf.torch.collate.JpegCollator`, which decodes every JPEG straight
into a shared-memory batch. For a ``datasets.IterableDataset`` (streaming), each worker
reads its own shards as Arrow record batches, re-cut to ``batch_size`` rows; a stream
whose files do not spread evenly over the readers is first resharded by Parquet row
group; when the shards still do not spread evenly (fewer shards than workers, or 3 on
2), every worker reads the stream and decodes every ``num_workers``-th batch, so no
worker idles. A resumed stream worker passes over the batches it had yielded as Arrow
tables. Any other dataset of row dicts gets the ordinary (stateful) DataLoader with the
collator as ``collate_fn``.

Images may be stored with ``Image()`` or ``Image(decode=False)``: the fast paths read
the bytes from Arrow either way. (Reading rows yourself, cast to ``Image(decode=False)``
first, so that ``datasets`` does not decode images the collator decodes again.)

A state records the settings it depends on (the dataset's fingerprint, batch size, ranks,
view, curriculum, balancing, shuffle and seed, ``drop_last``; for streaming also
``num_workers``); ``load_state_dict`` refuses a state of another configuration with
:class:`~affectnetplus_hf.errors.ResumeMismatchError`, naming each setting that differs.
A map-style state resumes with any ``num_workers``: the epoch's plan does not depend on
them.

With ``on_bad="skip"``, rows whose image cannot be used (damaged or null bytes, a header
beyond :data:`~affectnetplus_hf.torch.decoders.MAX_IMAGE_PIXELS`; with ``crop="face"``, a
null or empty ``face_box``) are left out and
listed in ``loader.skipped``; the following rows fill their place, so every batch but
an epoch's last is full (see :func:`make_loader`).

``view`` (7, 8, or a :class:`~affectnetplus_hf.torch.views.ClassView`) keeps only rows
whose human label the view keeps, before batching (batches stay full), and reduces the
soft label. ``balanced=True`` (or a power, see
:func:`~affectnetplus_hf.torch.sampling.class_balanced_weights`) draws map-style rows
class-balanced, with replacement.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import datasets
import torch
from torch.utils.data import IterableDataset, Sampler
from torchdata.stateful_dataloader import StatefulDataLoader

from ..core.choices import Crop, MemoryFormat, OnBad, Output, check_choice
from ..core.columns import label_codes
from ..core.schema import EXPRESSIONS, SUBSETS
from ..errors import ResumeMismatchError
from .batch_plan import batch_rows, concat_batches, slice_rows
from .collate import JpegCollator, SkippedRow, row_name
from .curriculum import Curriculum
from .epoch_plan import EpochPlan
from .shared_memory import forget_exited
from .views import ClassView, class_view

__all__ = [
    "ArrowBatches",
    "ResumableLoader",
    "StreamBatches",
    "arrow_table",
    "default_num_workers",
    "make_loader",
    "row_mapping",
]

logger = logging.getLogger(__name__)

_NOT_COLLATED = ("landmarks_29",)


def default_num_workers() -> int:
    """CPU cores available to this process, at most 8 (decoding scales with cores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _columns(dataset) -> list[str]:
    return [name for name in dataset.column_names if name not in _NOT_COLLATED]


# ---------------------------------------------------------------------- datasets internals
# ``datasets`` has no public way to read a Dataset's row mapping (set by select, shuffle,
# filter) or to hand its Arrow table to another process as a file path. Each use is
# wrapped here, once; tests/test_torch_loader.py fails naming the datasets version when
# either stops working.


def _datasets_version() -> str:
    import datasets

    return datasets.__version__


def row_mapping(dataset):
    """``int64`` table row of every dataset row (``None``: the identity), from the private
    ``Dataset._indices`` Arrow table (held the mapping from datasets 1.x to at least 5.x)."""
    import numpy as np

    if not hasattr(dataset, "_indices"):
        raise RuntimeError(
            f"datasets {_datasets_version()} has no Dataset._indices (the row mapping of select/shuffle/filter) that "
            "affectnetplus_hf.torch.loader.row_mapping reads: call dataset.flatten_indices() first, or use a datasets "
            "version this package supports"
        )
    mapping = dataset._indices
    if mapping is None:
        return None
    return np.asarray(mapping.column(0).to_numpy(), dtype=np.int64)


def arrow_table(dataset):
    """``dataset.data``: datasets' table wrapper, whose ``.table`` is the Arrow table. A
    memory-mapped one pickles as its file path (datasets' ``MemoryMappedTable``), so
    workers map the file instead of receiving the data through a pipe."""
    data = dataset.data
    if not hasattr(data, "table"):
        raise RuntimeError(
            f"datasets {_datasets_version()}: Dataset.data has no .table (the Arrow table) that "
            "affectnetplus_hf.torch.loader.arrow_table reads; use a datasets version this package supports"
        )
    return data


class ArrowBatches(torch.utils.data.Dataset):
    """Map-style: ``batches[list_of_indices]`` -> :class:`~affectnetplus_hf.torch.collate.Rows`
    of those rows of a ``datasets.Dataset``, for :class:`JpegCollator`.

    Made once, in the main process: every annotation column is converted to its batch
    form for the whole dataset (one vectorised pass over Arrow, about 650 bytes a row,
    held in shared memory so every worker maps the same copy), and for each row the
    place of its JPEG bytes in the dataset's memory-mapped Arrow buffers. A batch is then
    a NumPy gather of the annotations plus zero-copy views of the JPEG bytes: no Arrow
    compute calls, no Python object per value.
    """

    def __init__(self, dataset, row_numbers=None):
        """``row_numbers``: ``int64`` index, in the user's dataset, of each row of ``dataset``
        (a view's selection of it), to name a bad row; default the identity."""
        import numpy as np

        from .collate import annotation_arrays

        self.num_rows = len(dataset)
        self.row_numbers = (
            None if row_numbers is None else torch.as_tensor(row_numbers, dtype=torch.int64).share_memory_()
        )
        names = _columns(dataset)
        self._data = arrow_table(dataset)  # pickles as its file path when memory-mapped
        table = self._data.table
        rows = row_mapping(dataset)
        notes = table.select([n for n in names if n != "image"])
        arrays, lists, _, _ = annotation_arrays(notes)
        if rows is not None:
            arrays = {key: value[rows] for key, value in arrays.items()}
            lists = {key: [value[i] for i in rows] for key, value in lists.items()}
        # shared memory: workers map these instead of copying them (any start method)
        self.arrays = {
            key: torch.from_numpy(np.ascontiguousarray(value)).share_memory_() for key, value in arrays.items()
        }
        self.ids = np.asarray(lists["image_id"]) if "image_id" in lists else None
        self.has_images = "image" in names
        if self.has_images:
            column = table.column("image")
            lengths = [len(chunk) for chunk in column.chunks]
            starts = np.cumsum([0] + lengths)
            table_rows = np.arange(len(table), dtype=np.int64) if rows is None else rows
            chunk = np.searchsorted(starts, table_rows, side="right") - 1
            self.image_chunk = torch.from_numpy(chunk.astype(np.int32)).share_memory_()
            self.image_local = torch.from_numpy((table_rows - starts[chunk]).astype(np.int64)).share_memory_()
        self._buffers = None

    def __len__(self) -> int:
        return self.num_rows

    def _image_buffers(self):
        """Per Arrow chunk of the image column: (offsets, data memoryview, paths) views."""
        import numpy as np
        import pyarrow as pa

        buffers = []
        for chunk in self._data.table.column("image").chunks:
            if pa.types.is_struct(chunk.type):
                names = [chunk.type.field(i).name for i in range(chunk.type.num_fields)]
                fields = dict(zip(names, chunk.flatten(), strict=False))
                data_array, paths = fields["bytes"], fields.get("path")
            else:
                data_array, paths = chunk, None
            offset_type = np.int64 if pa.types.is_large_binary(data_array.type) else np.int32
            _, offsets_buffer, data_buffer = data_array.buffers()[:3]
            offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[
                data_array.offset : data_array.offset + len(data_array) + 1
            ]
            data = memoryview(data_buffer).cast("B") if data_buffer is not None else memoryview(b"")
            valid = None if data_array.null_count == 0 else data_array.is_valid().to_numpy(zero_copy_only=False)
            buffers.append((offsets, data, valid, paths))
        return buffers

    def __getitem__(self, indices):
        import numpy as np

        from .collate import Rows

        if isinstance(indices, int):
            indices = [indices]
        wanted = np.asarray(indices, dtype=np.int64)
        if wanted.size and (wanted.min() < -self.num_rows or wanted.max() >= self.num_rows):
            raise IndexError(f"row index out of range for a dataset of {self.num_rows} rows")
        wanted = np.where(wanted < 0, wanted + self.num_rows, wanted)
        arrays = {key: value.numpy()[wanted] for key, value in self.arrays.items()}
        lists = {"image_id": self.ids[wanted].tolist()} if self.ids is not None else {}
        images = None
        if self.has_images:
            if self._buffers is None:
                self._buffers = self._image_buffers()
            images = []
            chunks, locals_ = self.image_chunk.numpy()[wanted], self.image_local.numpy()[wanted]
            for c, i in zip(chunks.tolist(), locals_.tolist(), strict=False):
                offsets, data, valid, paths = self._buffers[c]
                if valid is not None and not valid[i]:
                    images.append({"bytes": None, "path": paths[i].as_py() if paths is not None else None})
                else:
                    images.append(data[offsets[i] : offsets[i + 1]])
        numbers = self.row_numbers.numpy()[wanted] if self.row_numbers is not None else wanted
        return Rows(arrays, lists, images, int(wanted.size), numbers.tolist())

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_buffers"] = None  # memoryviews do not pickle; rebuilt in each worker
        return state


def _shards_balance(shards: int, workers: int, tolerance: float = 0.1) -> bool:
    """Whether giving each worker whole shards leaves the busiest worker at most
    ``tolerance`` above an even share (3 shards on 2 workers: 2 vs 1.5, no)."""
    if shards < workers:
        return False
    return -(-shards // workers) / (shards / workers) <= 1 + tolerance


class StreamBatches(IterableDataset):
    """Streaming: Arrow tables of ``batch_size`` rows from a ``datasets.IterableDataset``,
    split between DataLoader workers: whole shards per worker when they spread evenly
    (within 10%), otherwise every worker reads the stream and decodes every
    ``num_workers``-th batch.

    ``set_epoch`` reaches persistent workers too (the epoch lives in shared memory).
    ``Stateful``: the state of a worker's copy is its epoch and the batches it has
    yielded; a copy that loads it reads its part of the stream again and passes over
    that many batches as Arrow tables (no image is decoded) before yielding the next.
    With a :class:`~affectnetplus_hf.torch.curriculum.Curriculum`, rows whose subset the
    stage of the coming batch does not allow are passed over."""

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool = False,
        view: ClassView | None = None,
        curriculum: Curriculum | None = None,
    ):
        columns = _columns(dataset) if dataset.column_names else None
        self.dataset = dataset.select_columns(columns) if columns else dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.view = view
        self.curriculum = curriculum
        # shared with the workers: epoch, batches the run yielded before it, and a count of
        # set_epoch calls (a worker's count of yielded batches belongs to the pass it began in)
        self._epoch = torch.zeros(3, dtype=torch.int64).share_memory_()
        self._pass = -1
        self._yielded = 0
        self._resume: dict | None = None

    def set_epoch(self, epoch: int, step_base: int = 0) -> None:
        self._epoch[0], self._epoch[1] = int(epoch), int(step_base)
        self._epoch[2] += 1

    def state_dict(self) -> dict:
        current = self._pass == int(self._epoch[2])  # else the next pass has not begun here yet
        return {"epoch": int(self._epoch[0]), "yielded": self._yielded if current else 0}

    def load_state_dict(self, state: dict) -> None:
        self._resume = dict(state)

    def _tables(self, dataset, epoch: int, codes_for) -> Iterator:
        """``codes_for(k)``: subset codes batch ``k`` may hold (``None``: any)."""
        import numpy as np
        import pyarrow as pa

        pending: list = []
        rows = 0
        emitted = 0
        arrow = dataset.with_format("arrow")
        if hasattr(arrow, "set_epoch"):  # after with_format/shard: datasets' copies start at epoch 0
            arrow.set_epoch(epoch)
        for table in arrow.iter(batch_size=self.batch_size):
            keep = None  # NumPy mask of the rows to keep
            if self.view is not None:  # the view's one class filter, on this table's labels
                labels = label_codes(table.column("human_label"), len(EXPRESSIONS), "human_label")
                keep = self.view.map_labels(torch.from_numpy(labels))[1].numpy()
            allowed_subsets = codes_for(emitted)
            if allowed_subsets is not None:
                allowed = np.isin(label_codes(table.column("subset"), len(SUBSETS), "subset"), allowed_subsets)
                keep = allowed if keep is None else keep & allowed
            if keep is not None:
                table = table.filter(pa.array(keep))
                if table.num_rows == 0:
                    continue
            pending.append(table)
            rows += table.num_rows
            while rows >= self.batch_size:
                whole = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
                yield whole.slice(0, self.batch_size)
                emitted += 1
                rest = whole.slice(self.batch_size)
                pending, rows = ([rest] if rest.num_rows else []), rest.num_rows
        if rows and not self.drop_last:
            yield pa.concat_tables(pending) if len(pending) > 1 else pending[0]

    def _parts(self, epoch: int, step_base: int) -> Iterator:
        """This worker's tables of the epoch."""
        dataset = self.dataset
        info = torch.utils.data.get_worker_info()
        workers, me = (1, 0) if info is None else (info.num_workers, info.id)
        curriculum = self.curriculum

        def codes_for(position, stride=workers, offset=me):
            if curriculum is None:
                return None
            return curriculum.codes_at(epoch if curriculum.by == "epoch" else step_base + position * stride + offset)

        if workers == 1:
            yield from self._tables(dataset, epoch, codes_for)
            return
        shards = getattr(dataset, "num_shards", 1)
        if _shards_balance(shards, workers):
            yield from self._tables(dataset.shard(num_shards=workers, index=me, contiguous=False), epoch, codes_for)
            return
        if me == 0:
            logger.info(
                "streaming dataset has %d shard(s) for %d workers: each worker reads the stream and decodes every %d-th batch",
                shards,
                workers,
                workers,
            )
        for position, table in enumerate(self._tables(dataset, epoch, lambda k: codes_for(k, 1, 0))):
            if position % workers == me:
                yield table

    def __iter__(self) -> Iterator:
        epoch, step_base, self._pass = (int(v) for v in self._epoch.tolist())
        resume, self._resume = self._resume, None
        skip = 0
        if resume is not None and int(resume["epoch"]) == epoch:
            skip = int(resume["yielded"])
        self._yielded = 0
        for table in self._parts(epoch, step_base):
            self._yielded += 1
            if self._yielded > skip:
                yield table


class ResumableLoader(StatefulDataLoader):
    """A ``torchdata`` ``StatefulDataLoader`` that also counts epochs.

    Every ``iter(loader)`` starts the next epoch (the first is 0; :meth:`set_epoch` picks
    one), and the loader tells its batch plan / stream which, so a reshuffle, a
    curriculum stage and a resume all agree on it. ``state_dict()`` after batch ``k`` of
    an epoch, loaded into a loader built the same way (any process), makes its next
    ``iter()`` yield batches ``k + 1, k + 2, ...`` of that epoch, holding exactly the rows
    an uninterrupted run yields; a state taken at the end of an epoch resumes at the next.

    ``config`` (set by :func:`make_loader`): the settings a state records and
    ``load_state_dict`` checks. ``refill``: ``(batch_size, drop_last)`` when the collator
    skips bad rows (``on_bad="skip"``): batches that came short are topped up with the
    following rows. ``skipped``: the :class:`~affectnetplus_hf.torch.collate.SkippedRow`
    of every row skipped in the current epoch (kept in the state; emptied when the next
    epoch begins).
    """

    def __init__(
        self,
        dataset,
        *,
        epoch_target=None,
        config: dict | None = None,
        refill: tuple[int, bool] | None = None,
        **kwargs,
    ):
        with warnings.catch_warnings():  # torchdata 0.11 calls a torch API that torch 2.13 deprecates
            warnings.filterwarnings("ignore", message="'set_vital' is deprecated", category=UserWarning)
            super().__init__(dataset, **kwargs)
        self._epoch_target = epoch_target
        self._config = dict(config or {})
        self._refill = refill
        self.skipped: list[SkippedRow] = []
        self.epoch = 0
        self._step_base = 0  # batches yielded in the epochs before this one
        self._yielded = 0  # batches yielded in this epoch
        self._begun = False
        self._resuming = False
        self._prepared = False  # state_dict() began the epoch and made its iterator; iter() reuses it
        # refill: rows held back from the last batch pulled, the state from before that pull, and
        # (resumed) how many rows of the next batch pulled were handed out before the state
        self._carry: int = 0
        self._carry_state: dict | None = None
        self._keep_last: int | None = None
        self._push()

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next ``iter()`` yields (the epoch a loaded state resumes keeps its place)."""
        if self._resuming and int(epoch) == self.epoch:
            return
        if self._prepared or self._resuming:  # an iterator (or a loaded state) for another epoch
            super().load_state_dict({})  # torchdata's way to drop it (a new one is made by iter())
        self.epoch, self._begun, self._resuming, self._prepared = int(epoch), False, False, False
        self._carry, self._carry_state, self._keep_last = 0, None, None
        self._push()

    @property
    def steps(self) -> int:
        """Batches yielded since the run began (across epochs, resumes included)."""
        return self._step_base + self._yielded

    def stamped(self, key: str = "loader_state"):
        """One epoch of batches, each carrying under ``key`` the ``state_dict()`` that resumes
        right after it. A prefetcher (:class:`~affectnetplus_hf.torch.device.DevicePrefetcher`)
        pulls batches ahead of the training step, so the loader's own state is ahead of the
        model; checkpoint the state of the batch the model last trained on instead."""
        for batch in self:
            batch[key] = self.state_dict()
            yield batch

    def _push(self, start: int = 0) -> None:
        if self._epoch_target is not None:
            self._epoch_target.set_epoch(self.epoch, self._step_base)
        if start and isinstance(self._epoch_target, EpochPlan):  # resumed: the plan skips what was yielded
            self._epoch_target.start_at(start)

    def _begin(self) -> None:
        """Start the next epoch (or the resumed one) and tell the plan / stream, before any
        worker starts on it."""
        start = 0
        if self._resuming:
            self._resuming = False
            start = self._yielded
        else:
            if self._begun:
                self.epoch += 1
            self._step_base += self._yielded
            self._yielded = 0
            self.skipped = []
            self._carry, self._carry_state, self._keep_last = 0, None, None
        self._begun = True
        self._push(start)

    def _get_iterator(self):
        iterator = super()._get_iterator()
        if self.num_workers > 0:  # once its workers have ended, unmap their pools' storages
            weakref.finalize(iterator, forget_exited)
        return iterator

    def __iter__(self):
        if self._prepared:  # state_dict() made this epoch's iterator already (and began the epoch)
            self._prepared = False
        else:
            self._begin()
        return _Counted(super().__iter__(), self)

    def state_dict(self) -> dict:
        """The loader's place: resumes right after the last batch handed out (see the class
        docstring). Plain Python values and torchdata's own state only, so it saves with
        ``torch.save`` and loads with ``torch.load(..., weights_only=True)``."""
        if self._carry_state is not None:  # rows held back from the last batch pulled: resume from before that pull
            state = copy.deepcopy(self._carry_state)
            state[_STATE_KEY]["carry"] = self._carry
            state[_STATE_KEY]["skipped"] = [list(row) for row in self.skipped]  # that batch's skips included
            return state
        state = self._snapshot()
        if self._keep_last is not None:  # a loaded state's held-back rows, not pulled again yet
            state[_STATE_KEY]["carry"] = self._keep_last
        return state

    def _snapshot(self) -> dict:
        if self._iterator is None:
            # StatefulDataLoader makes the epoch's iterator here, and its workers may start
            # reading at once: begin the epoch first, as iter() would, and let iter() reuse it
            self._begin()
            self._prepared = True
        state = super().state_dict()
        state[_STATE_KEY] = {
            "epoch": self.epoch,
            "step_base": self._step_base,
            "yielded": self._yielded,
            "config": copy.deepcopy(self._config),
            "skipped": [list(row) for row in self.skipped],
        }
        if isinstance(self._epoch_target, EpochPlan):  # also where torchdata's own state is not loaded (an epoch's end)
            state[_STATE_KEY]["seed"] = self._epoch_target.seed
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Resume from ``state`` (a ``state_dict()`` of a loader built the same way).

        Raises :class:`~affectnetplus_hf.errors.ResumeMismatchError` naming every setting
        in which the state's loader differs from this one (see the module docstring).
        ``strict=False`` warns instead and resumes anyway (for the same data read from
        another place: the files of a streaming dataset moved); a streaming state taken
        with another ``num_workers`` is refused even then.
        """
        if not isinstance(state, dict):
            raise TypeError(
                f"expected the dict that make_loader's loader.state_dict() returned, got {type(state).__name__}"
            )
        state = copy.deepcopy(state)  # the caller's state stays as it was (it may be saved, or loaded again)
        mine = state.pop(_STATE_KEY, None)
        if mine is None:
            raise ValueError(
                f"not a state of make_loader's loader: it has no {_STATE_KEY!r} entry (keys: {sorted(state)})"
            )
        self._check(mine.get("config"), strict)
        own_plan = isinstance(self._epoch_target, EpochPlan)  # resumed from the plan, not from torchdata's state
        self._carry, self._carry_state, self._keep_last = 0, None, None
        self.skipped = [SkippedRow(*row) for row in mine.get("skipped", [])]
        if state.get("_iterator_finished", False):
            self.epoch, self._step_base = int(mine["epoch"]) + 1, int(mine["step_base"]) + int(mine["yielded"])
            self._yielded, self._begun, self._resuming, self._prepared = 0, False, False, False
            super().load_state_dict({})
        else:
            self.epoch, self._step_base, self._yielded = (
                int(mine["epoch"]),
                int(mine["step_base"]),
                int(mine["yielded"]),
            )
            self._begun, self._resuming, self._prepared = True, True, False
            self._keep_last = int(mine["carry"]) if mine.get("carry") else None
            super().load_state_dict({} if own_plan else state)
        if "seed" in mine and own_plan:  # a seedless loader's drawn seed
            self._epoch_target.load_state_dict(
                {"seed": mine["seed"], "epoch": self.epoch, "step_base": self._step_base}
            )
        self._push()

    def _check(self, theirs: dict | None, strict: bool) -> None:
        """Refuse (or, not ``strict``, warn about) a state whose loader was configured otherwise."""
        if theirs is None:
            warnings.warn(
                "this loader state was saved by an older affectnetplus-hf that did not record the loader's settings: "
                "it is resumed unchecked; make sure the dataset, batch size, ranks, view and seed are those it was taken with",
                UserWarning,
                stacklevel=3,
            )
            return
        ours = self._config
        differences = [
            (key, ours.get(key), theirs.get(key))
            for key in dict.fromkeys([*ours, *theirs])
            if ours.get(key) != theirs.get(key)
        ]
        if not differences:
            return
        lines = "\n".join(
            f"  {key}: this loader has {mine!r}, the state was taken with {found!r}" for key, mine, found in differences
        )
        workers = [d for d in differences if d[0] == "num_workers"]
        if workers:
            lines += (
                "\n(this kind of loader's state holds each worker's place in its share of the data, so it resumes only "
                f"with the same num_workers: build this loader with num_workers={workers[0][2]!r})"
            )
        message = (
            "this loader state was taken from a loader configured otherwise; resuming from it would repeat or skip rows:\n"
            f"{lines}\nBuild the loader with the settings the state was taken with, or start without load_state_dict."
        )
        if strict or workers:
            raise ResumeMismatchError(
                message
                + ("" if workers else " (load_state_dict(state, strict=False) resumes anyway, at your own risk.)"),
                differences,
            )
        warnings.warn(message + " Resumed anyway (strict=False).", UserWarning, stacklevel=3)

    def _note_skipped(self, rows: list) -> None:
        for skipped in rows:
            self.skipped.append(SkippedRow(*skipped))
            logger.warning("make_loader: skipped %s: %s", row_name(skipped[0], skipped[1]), skipped[2])


_STATE_KEY = "affectnetplus"


class _Counted:
    """The loader's iterator, counting the batches it pulls; with ``refill``, it hands
    out the good rows of those batches re-cut to full batches."""

    def __init__(self, inner, loader: ResumableLoader):
        self._inner, self._loader = inner, loader
        self._pending: list[dict] = []  # refill: rows pulled, not handed out yet
        self._rows = 0
        self._exhausted = False

    def __iter__(self):
        return self

    def __next__(self):
        loader = self._loader
        if loader._refill is None:
            batch = next(self._inner)
            loader._yielded += 1
            return batch
        return self._next_full(*loader._refill)

    def _next_full(self, size: int, drop_last: bool) -> dict:
        """The next ``size`` good rows. Every pulled batch holds at most ``size`` rows, so
        the rows held back after a cut all come from the last batch pulled: the state from
        before that pull, plus their count, is where a resumed loader picks up."""
        loader = self._loader
        if self._exhausted:
            loader._carry, loader._carry_state = 0, None
            raise StopIteration
        last_before = None
        while self._rows < size:
            before = loader._snapshot() if self._rows else None  # only then can rows be held back
            try:
                batch = next(self._inner)
            except StopIteration:
                self._exhausted = True
                held, self._pending, self._rows = self._pending, [], 0
                if held and not drop_last:
                    # the state from before this pull resumes to the (empty) rest of the epoch, as after any last batch
                    loader._carry, loader._carry_state = 0, copy.deepcopy(before)
                    return concat_batches(held)
                loader._carry, loader._carry_state = 0, None
                raise
            loader._yielded += 1
            skipped = batch.pop("skipped", [])
            n = batch_rows(batch)
            if loader._keep_last is None:
                loader._note_skipped(skipped)
            else:  # resumed: this batch's first rows were handed out before the state, its skips noted
                batch, n, loader._keep_last = (
                    slice_rows(batch, max(n - loader._keep_last, 0)),
                    min(n, loader._keep_last),
                    None,
                )
            if n:
                self._pending.append(batch)
                self._rows += n
                last_before = before
        whole = concat_batches(self._pending)
        rest = self._rows - size
        if rest:
            out, self._pending, self._rows = slice_rows(whole, 0, size), [slice_rows(whole, size)], rest
            loader._carry, loader._carry_state = rest, copy.deepcopy(last_before)
        else:
            out, self._pending, self._rows = whole, [], 0
            loader._carry, loader._carry_state = 0, None
        return out

    def __len__(self) -> int:
        return len(self._inner)


_Kind = Literal["map", "stream", "torch"]


def _kind(dataset) -> _Kind:
    """Which kind of dataset ``make_loader`` was given, decided once: ``"map"`` (a
    ``datasets.Dataset``), ``"stream"`` (a ``datasets.IterableDataset``) or ``"torch"``
    (anything else: a torch dataset of row dicts)."""
    if isinstance(dataset, datasets.Dataset):
        return "map"
    if isinstance(dataset, datasets.IterableDataset):
        return "stream"
    return "torch"


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: as given, else torch.distributed's when initialised, else ``(0, 1)``."""
    if rank is None and world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1
    if rank is None or world_size is None:
        raise ValueError(f"pass both rank and world_size, or neither (got rank={rank}, world_size={world_size})")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
    return int(rank), int(world_size)


@dataclass
class _Settings:
    """``make_loader``'s arguments, checked and settled, for the builder of the dataset's kind."""

    batch_size: int
    shuffle: bool | None
    sampler: Sampler | None
    balanced: float | None  # the power of class-balanced draws; None: not balanced
    curriculum: Curriculum | None
    view: ClassView | None
    drop_last: bool
    shuffle_buffer: int
    seed: int | None
    rank: int
    world_size: int
    num_workers: int
    config: dict[str, Any]  # what a state records; each builder adds the keys of its kind
    refill: tuple[int, bool] | None
    loader_kwargs: dict[str, Any]  # the DataLoader arguments every kind passes


def make_loader(
    dataset,
    batch_size: int,
    *,
    shuffle: bool | None = None,
    num_workers: int | None = None,
    size: int | tuple[int, int] | None = None,
    decoder: str = "auto",
    output: Output = "pixels",
    memory_format: MemoryFormat = "channels_last",
    crop: Crop | None = None,
    crop_margin: float = 0.0,
    view: int | ClassView | None = None,
    balanced: bool | float = False,
    curriculum: Curriculum | str | None = None,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = None,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    collator: JpegCollator | None = None,
    multiprocessing_context=None,
    on_bad: OnBad | None = None,
) -> ResumableLoader:
    """A resumable DataLoader of collated AffectNet+ batches (see
    :mod:`affectnetplus_hf.torch.collate` for the keys): a :class:`ResumableLoader`, i.e. a
    ``torchdata.stateful_dataloader.StatefulDataLoader`` whose ``state_dict()`` /
    ``load_state_dict()`` resume mid-epoch without decoding the batches already seen.

    Args:
        dataset: ``datasets.Dataset``, ``datasets.IterableDataset`` (streaming), or any
            torch dataset of row dicts.
        batch_size: rows per batch (per rank).
        shuffle: map-style: a seeded reshuffle every epoch (default ``True`` unless a
            ``sampler`` or ``balanced`` is given). Streaming: ``True`` shuffles shards and
            a buffer of ``shuffle_buffer`` rows (``dataset.shuffle``), differently each
            epoch; default ``False``.
        num_workers: decoding processes (default: the usable CPU cores, at most 8; ``0``
            decodes in the main process).
        size, decoder, output, memory_format: passed to :class:`JpegCollator`.
        crop, crop_margin: passed to :class:`JpegCollator`: ``crop="face"`` cuts full
            images (AffectNet 2017) to their ``face_box`` (grown by ``crop_margin`` of its
            width / height on each side) and resizes them to ``size``; a row without a box
            is a bad row (``on_bad``).
        view: keep only these classes (``7``, ``8`` or a ClassView); batches stay full.
        balanced: draw map-style rows class-balanced (``True`` = power 1, or a power).
        curriculum: a :class:`~affectnetplus_hf.torch.curriculum.Curriculum` of
            complexity subsets by epoch or step (map-style and streaming), or its
            text form (``"epoch:2,4"``, see :meth:`Curriculum.parse`).
        sampler: a row sampler for map-style datasets (indices into ``dataset`` after
            ``view``); excludes ``shuffle``, ``balanced`` and ``curriculum``, and resumes
            only as well as the sampler does.
        drop_last: drop a last, smaller batch.
        pin_memory: page-locked batches for fast, asynchronous GPU copies (default: when
            CUDA is available).
        persistent_workers: keep workers between epochs (default: when ``num_workers > 0``).
        prefetch_factor: batches each worker prepares ahead (torch's default, 2).
        seed: seeds the shuffling and balanced draws (map-style: default a random seed,
            kept in the loader's state; streaming: ``dataset.shuffle``'s seed, which a
            resumed loader and every rank need: without it, a warning).
        rank, world_size: this process's share of a distributed run (default: from
            ``torch.distributed`` when it is initialised). Map-style: rows dealt like
            ``DistributedSampler``; streaming: ``datasets.distributed.split_dataset_by_node``.
        collator: use this collator instead of building one from the arguments above.
        on_bad: a row whose image cannot be used (bytes that do not decode, null bytes, a
            header beyond :data:`~affectnetplus_hf.torch.decoders.MAX_IMAGE_PIXELS`
            pixels; with ``crop="face"``, a null or empty ``face_box``): ``"error"``
            (default, or the ``collator``'s) stops with
            :class:`~affectnetplus_hf.errors.BadImageError` naming the row; ``"skip"``
            leaves it out, logs a warning and lists it in ``loader.skipped`` (a
            :class:`~affectnetplus_hf.torch.collate.SkippedRow` ``(row, image_id, reason)``
            each; the current epoch's, kept in the loader's state). The following rows
            take the skipped rows' places, so batches stay full: only an epoch's last
            batch is smaller (with ``drop_last``, its rows are dropped), and an epoch may
            hold fewer batches than ``len(loader)``. In a distributed run, a rank that
            skipped rows may so end an epoch one batch early.

    A state records the dataset's fingerprint and the settings above that decide which
    rows each batch holds; ``load_state_dict`` refuses a state of another configuration
    (:class:`~affectnetplus_hf.errors.ResumeMismatchError`). Map-style, it resumes with
    any ``num_workers``; streaming (and other datasets), only with the same.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    num_workers = default_num_workers() if num_workers is None else int(num_workers)
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if sampler is not None and (shuffle or balanced or curriculum is not None):
        raise ValueError("pass either sampler or shuffle/balanced/curriculum, not both")
    if not isinstance(balanced, (bool, int, float)):
        raise TypeError(f"balanced must be True/False or a power (a number, 1 = fully balanced), got {balanced!r}")
    if isinstance(curriculum, str):
        curriculum = Curriculum.parse(curriculum)
    elif curriculum is not None and not isinstance(curriculum, Curriculum):
        raise TypeError(
            f"curriculum must be a Curriculum or a string like 'epoch:2,4' / 'step:100,200', got {type(curriculum).__name__}"
        )
    if on_bad is not None:
        check_choice("on_bad", on_bad, OnBad)
    rank, world_size = _distributed(rank, world_size)
    view_obj = class_view(view) if view is not None else None
    if collator is None:
        collator = JpegCollator(
            size,
            decoder=decoder,
            output=output,
            memory_format=memory_format,
            reuse_memory=True,
            on_bad=on_bad or "error",
            crop=crop,
            crop_margin=crop_margin,
        )
    if view_obj is not None and collator.view is None:
        collator = copy.copy(collator)
        collator.view = view_obj  # reduces soft labels (and drops rows the fast paths have not filtered)
    if on_bad is not None and getattr(collator, "on_bad", "error") != on_bad:
        collator = copy.copy(collator)
        collator.on_bad = on_bad
    kind = _kind(dataset)
    power = None if not balanced else (1.0 if balanced is True else float(balanced))
    config: dict[str, Any] = {
        "dataset": _identity(dataset, kind),  # as given: before the view's selection, resharding or shuffling
        "batch_size": batch_size,
        "drop_last": bool(drop_last),
        "rank": rank,
        "world_size": world_size,
        "view": repr(view_obj) if view_obj is not None else None,
        "curriculum": repr(curriculum) if curriculum is not None else None,
        "balanced": power,
        "seed": None if seed is None else int(seed),
        "num_workers": num_workers,
    }
    loader_kwargs: dict[str, Any] = dict(
        num_workers=num_workers,
        collate_fn=collator,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        multiprocessing_context=multiprocessing_context,
    )
    if num_workers > 0:
        loader_kwargs["persistent_workers"] = True if persistent_workers is None else persistent_workers
        if prefetch_factor is not None:
            loader_kwargs["prefetch_factor"] = prefetch_factor
    settings = _Settings(
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        balanced=power,
        curriculum=curriculum,
        view=view_obj,
        drop_last=drop_last,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        rank=rank,
        world_size=world_size,
        num_workers=num_workers,
        config=config,
        refill=(batch_size, drop_last) if getattr(collator, "on_bad", "error") == "skip" else None,
        loader_kwargs=loader_kwargs,
    )
    if kind == "map":
        return _map_loader(dataset, settings)
    if kind == "stream":
        return _stream_loader(dataset, settings)
    return _torch_loader(dataset, settings)


def _map_loader(dataset: datasets.Dataset, s: _Settings) -> ResumableLoader:
    """A ``datasets.Dataset``: each batch a list of row indices, drawn by an
    :class:`EpochPlan` (or the user's sampler) and gathered from Arrow by :class:`ArrowBatches`."""
    from .sampling import labels_of

    kept = None
    if s.view is not None:
        _, keep = s.view.map_labels(labels_of(dataset))
        kept = keep.nonzero().flatten()
        dataset = dataset.select(kept.tolist())
    if s.sampler is not None:
        if s.world_size > 1:
            raise ValueError("with rank/world_size the loader deals the rows itself; pass no sampler")
        from torch.utils.data import BatchSampler

        s.config["sampler"] = _type_name(s.sampler)
        return ResumableLoader(
            ArrowBatches(dataset, kept),
            batch_size=None,
            sampler=BatchSampler(s.sampler, s.batch_size, s.drop_last),
            config=s.config,
            refill=s.refill,
            **s.loader_kwargs,
        )
    shuffle = s.shuffle is None or bool(s.shuffle)
    s.config["shuffle"] = shuffle
    del s.config["num_workers"]  # the plan is the same whoever fetches it
    plan = EpochPlan(
        len(dataset),
        s.batch_size,
        shuffle=shuffle,
        labels=labels_of(dataset) if s.balanced is not None else None,
        balanced_power=s.balanced,
        subsets=labels_of(dataset, "subset") if s.curriculum is not None else None,
        curriculum=s.curriculum,
        drop_last=s.drop_last,
        seed=s.seed,
        rank=s.rank,
        world_size=s.world_size,
    )
    return ResumableLoader(
        ArrowBatches(dataset, kept),
        batch_size=None,
        sampler=plan,
        epoch_target=plan,
        config=s.config,
        refill=s.refill,
        # a state resumes from the plan, never from torchdata's snapshots: take none after the first
        snapshot_every_n_steps=_NO_SNAPSHOTS,
        **s.loader_kwargs,
    )


#: torchdata's snapshot interval for loaders that resume from their own plan (torchdata
#: otherwise serialises the sampler's and every worker's state with each batch).
_NO_SNAPSHOTS = 2**62


def _stream_loader(dataset: datasets.IterableDataset, s: _Settings) -> ResumableLoader:
    """A ``datasets.IterableDataset``: resharded to spread over the readers, shuffled,
    split between ranks, and read as Arrow batches by :class:`StreamBatches`."""
    if s.sampler is not None or s.balanced is not None:
        raise ValueError("sampler and balanced need a map-style dataset; a streaming dataset is read in order")
    shuffle = bool(s.shuffle)
    s.config["shuffle"] = shuffle
    s.config["shuffle_buffer"] = int(s.shuffle_buffer) if shuffle else None
    dataset = _reshard(dataset, s.world_size * max(s.num_workers, 1))
    if shuffle:
        if s.seed is None:
            warnings.warn(
                "make_loader: a streaming shuffle without seed= draws its seed at random, so a loader that resumes "
                "from a state (or another rank) reads the stream in another order; pass seed= to resume exactly",
                UserWarning,
                stacklevel=3,  # make_loader's caller
            )
        dataset = dataset.shuffle(seed=s.seed, buffer_size=s.shuffle_buffer)
    if s.world_size > 1:
        from datasets.distributed import split_dataset_by_node

        dataset = split_dataset_by_node(dataset, rank=s.rank, world_size=s.world_size)
    stream = StreamBatches(dataset, s.batch_size, drop_last=s.drop_last, view=s.view, curriculum=s.curriculum)
    return ResumableLoader(
        stream, batch_size=None, epoch_target=stream, config=s.config, refill=s.refill, **s.loader_kwargs
    )


def _torch_loader(dataset, s: _Settings) -> ResumableLoader:
    """Any other dataset of row dicts: the ordinary (stateful) DataLoader, the collator as ``collate_fn``."""
    if s.balanced is not None or s.curriculum is not None:
        raise ValueError(
            "balanced and curriculum need a datasets.Dataset (its human_label / subset columns); "
            "build a sampler with balanced_sampler()"
        )
    if isinstance(dataset, IterableDataset):
        return ResumableLoader(
            dataset, batch_size=s.batch_size, drop_last=s.drop_last, config=s.config, refill=s.refill, **s.loader_kwargs
        )
    generator = torch.Generator().manual_seed(s.seed) if s.seed is not None else None
    s.config["shuffle"] = bool(s.shuffle is None or s.shuffle) if s.sampler is None else False
    s.config["sampler"] = _type_name(s.sampler) if s.sampler is not None else None
    return ResumableLoader(
        dataset,
        batch_size=s.batch_size,
        shuffle=s.config["shuffle"],
        sampler=s.sampler,
        drop_last=s.drop_last,
        generator=generator,
        config=s.config,
        refill=s.refill,
        **s.loader_kwargs,
    )


def _type_name(value) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _identity(dataset, kind: _Kind) -> str:
    """What a state checks the dataset by, cheaply, as one readable line.

    Map-style: the rows and ``datasets``' fingerprint (which changes with the data and
    every transform, not with the cache folder). Streaming: name, config, split, rows as
    the dataset's info says, shards, and a hash of where the data is read from (the data
    files, or the shards of ``to_iterable_dataset``) and of the transforms on top.
    Other datasets: type and length."""
    if kind == "map":
        return f"datasets.Dataset of {len(dataset)} rows, fingerprint {getattr(dataset, '_fingerprint', None)}"
    if kind == "stream":
        chain, base, source = [], None, getattr(dataset, "_ex_iterable", None)
        while source is not None:
            chain.append(type(source).__name__)
            base, source = source, getattr(source, "ex_iterable", None)
        try:
            from datasets.fingerprint import Hasher

            data = Hasher.hash((chain, getattr(base, "kwargs", None)))
        except Exception:  # something that does not hash (a generator's arguments): checked by the rest
            data = "unknown"
        info, split = dataset.info, dataset.split
        split_info = (info.splits or {}).get(str(split)) if split is not None and info.splits else None
        rows = f"{split_info.num_examples} rows" if split_info is not None else "rows unknown"
        return (
            f"datasets.IterableDataset {info.dataset_name!r} config {info.config_name!r} split {str(split) if split else None!r} "
            f"({rows}), {dataset.num_shards} shards, data {data}"
        )
    try:
        length = f"{len(dataset)} rows"
    except TypeError:
        length = "length unknown"
    return f"{_type_name(dataset)} of {length}"


def _reshard(dataset, readers: int):
    """Split the shards further (by Parquet row group, ``IterableDataset.reshard``) when the
    files do not spread evenly over ``readers`` (ranks x workers); the stream as is otherwise."""
    if readers <= 1 or _shards_balance(getattr(dataset, "num_shards", 1), readers) or not hasattr(dataset, "reshard"):
        return dataset
    try:
        finer = dataset.reshard()
    except NotImplementedError:  # a format datasets cannot split
        return dataset
    return finer if finer.num_shards > dataset.num_shards else dataset
