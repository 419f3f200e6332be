"""``make_loader``: a DataLoader that feeds AffectNet+ to PyTorch at the decoder's speed.

For a ``datasets.Dataset`` (map-style), each worker receives a list of row indices,
fetches those rows as one Arrow table (``with_format("arrow")``: no per-value Python
objects, no image decoding by ``datasets``) and collates it with
:class:`~affectnetplus_hf.torch.collate.JpegCollator`, which decodes every JPEG straight
into a shared-memory batch. For a ``datasets.IterableDataset`` (streaming), each worker
reads its own shards as Arrow record batches, re-cut to ``batch_size`` rows; when the
shards do not spread evenly over the workers (fewer shards than workers, or 3 on 2),
every worker reads the stream and decodes every ``num_workers``-th batch, so no worker
idles. Any other dataset of row dicts gets the
ordinary DataLoader with the collator as ``collate_fn``.

Images may be stored with ``Image()`` or ``Image(decode=False)``: the fast paths read
the bytes from Arrow either way. (Reading rows yourself, cast to ``Image(decode=False)``
first, so that ``datasets`` does not decode images the collator decodes again.)

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
from collections.abc import Iterator

import torch
from torch.utils.data import BatchSampler, DataLoader, IterableDataset, RandomSampler, Sampler, SequentialSampler

from .collate import JpegCollator
from .views import ClassView, class_view

__all__ = ["ArrowBatches", "StreamBatches", "default_num_workers", "make_loader"]

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

    def __init__(self, dataset):
        import numpy as np

        from .collate import annotation_arrays

        self.num_rows = len(dataset)
        names = _columns(dataset)
        table = dataset.data.table
        mapping = getattr(dataset, "_indices", None)  # set by select/shuffle/filter: dataset row -> table row
        rows = None if mapping is None else np.asarray(mapping.column(0).to_numpy(), dtype=np.int64)
        # (``_indices`` is private to datasets but has held the row mapping since 1.x)
        notes = table.select([n for n in names if n != "image"])
        arrays, lists, _, _ = annotation_arrays(notes)
        if rows is not None:
            arrays = {key: value[rows] for key, value in arrays.items()}
            lists = {key: [value[i] for i in rows] for key, value in lists.items()}
        # shared memory: workers map these instead of copying them (any start method)
        self.arrays = {key: torch.from_numpy(np.ascontiguousarray(value)).share_memory_() for key, value in arrays.items()}
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
        self._data = dataset.data  # datasets' table wrapper: a memory-mapped one pickles as its file path
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
                fields = dict(zip(names, chunk.flatten()))
                data_array, paths = fields["bytes"], fields.get("path")
            else:
                data_array, paths = chunk, None
            offset_type = np.int64 if pa.types.is_large_binary(data_array.type) else np.int32
            _, offsets_buffer, data_buffer = data_array.buffers()[:3]
            offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[data_array.offset : data_array.offset + len(data_array) + 1]
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
            for c, i in zip(chunks.tolist(), locals_.tolist()):
                offsets, data, valid, paths = self._buffers[c]
                if valid is not None and not valid[i]:
                    images.append({"bytes": None, "path": paths[i].as_py() if paths is not None else None})
                else:
                    images.append(data[offsets[i] : offsets[i + 1]])
        return Rows(arrays, lists, images, int(wanted.size))

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
    ``num_workers``-th batch. ``set_epoch`` reaches
    persistent workers too (the epoch lives in shared memory)."""

    def __init__(self, dataset, batch_size: int, drop_last: bool = False, labels: tuple[int, ...] | None = None, keep_unlabeled: bool = False):
        columns = _columns(dataset) if dataset.column_names else None
        self.dataset = dataset.select_columns(columns) if columns else dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.labels = labels
        self.keep_unlabeled = keep_unlabeled
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    def _tables(self, dataset) -> Iterator:
        import pyarrow as pa
        import pyarrow.compute as pc

        pending: list = []
        rows = 0
        for table in dataset.with_format("arrow").iter(batch_size=self.batch_size):
            if self.labels is not None:
                column = table.column("human_label")
                keep = pc.fill_null(pc.is_in(column, value_set=pa.array(self.labels, pa.int64())), False)
                if self.keep_unlabeled:
                    keep = pc.or_(keep, pc.is_null(column))
                table = table.filter(keep)
                if table.num_rows == 0:
                    continue
            pending.append(table)
            rows += table.num_rows
            while rows >= self.batch_size:
                whole = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
                yield whole.slice(0, self.batch_size)
                rest = whole.slice(self.batch_size)
                pending, rows = ([rest] if rest.num_rows else []), rest.num_rows
        if rows and not self.drop_last:
            yield pa.concat_tables(pending) if len(pending) > 1 else pending[0]

    def __iter__(self) -> Iterator:
        dataset = self.dataset
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(int(self._epoch))
        info = torch.utils.data.get_worker_info()
        if info is None or info.num_workers == 1:
            yield from self._tables(dataset)
            return
        shards = getattr(dataset, "num_shards", 1)
        if _shards_balance(shards, info.num_workers):
            yield from self._tables(dataset.shard(num_shards=info.num_workers, index=info.id, contiguous=False))
            return
        if info.id == 0:
            logger.info(
                "streaming dataset has %d shard(s) for %d workers: each worker reads the stream and decodes every %d-th batch",
                shards,
                info.num_workers,
                info.num_workers,
            )
        for position, table in enumerate(self._tables(dataset)):
            if position % info.num_workers == info.id:
                yield table


def _is_hf_map(dataset) -> bool:
    try:
        import datasets
    except ImportError:
        return False
    return isinstance(dataset, datasets.Dataset)


def _is_hf_stream(dataset) -> bool:
    try:
        import datasets
    except ImportError:
        return False
    return isinstance(dataset, datasets.IterableDataset)


def make_loader(
    dataset,
    batch_size: int,
    *,
    shuffle: bool | None = None,
    num_workers: int | None = None,
    size: int | tuple[int, int] | None = None,
    decoder: str = "auto",
    output: str = "pixels",
    memory_format: str = "channels_last",
    view: int | ClassView | None = None,
    balanced: bool | float = False,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = None,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    collator: JpegCollator | None = None,
    multiprocessing_context=None,
) -> DataLoader:
    """A DataLoader of collated AffectNet+ batches (see :mod:`affectnetplus_hf.torch.collate` for the keys).

    Args:
        dataset: ``datasets.Dataset``, ``datasets.IterableDataset`` (streaming), or any
            torch dataset of row dicts.
        batch_size: rows per batch.
        shuffle: map-style: reshuffle every epoch (default ``True`` unless a ``sampler`` or
            ``balanced`` is given). Streaming: ``True`` shuffles shards and a buffer of
            ``shuffle_buffer`` rows (``dataset.shuffle``), differently each epoch once you
            call ``loader.dataset.set_epoch(epoch)``; default ``False``.
        num_workers: decoding processes (default: the usable CPU cores, at most 8; ``0``
            decodes in the main process).
        size, decoder, output, memory_format: passed to :class:`JpegCollator`.
        view: keep only these classes (``7``, ``8`` or a ClassView); batches stay full.
        balanced: draw map-style rows class-balanced (``True`` = power 1, or a power).
        sampler: a row sampler for map-style datasets (indices into ``dataset`` after
            ``view``); excludes ``shuffle`` and ``balanced``.
        drop_last: drop a last, smaller batch.
        pin_memory: page-locked batches for fast, asynchronous GPU copies (default: when
            CUDA is available).
        persistent_workers: keep workers between epochs (default: when ``num_workers > 0``).
        prefetch_factor: batches each worker prepares ahead (torch's default, 2).
        seed: seeds the shuffling (map-style ``RandomSampler`` / streaming ``shuffle``).
        collator: use this collator instead of building one from the arguments above.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    num_workers = default_num_workers() if num_workers is None else int(num_workers)
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if sampler is not None and (shuffle or balanced):
        raise ValueError("pass either sampler or shuffle/balanced, not both")
    view_obj = class_view(view) if view is not None else None
    if collator is None:
        collator = JpegCollator(size, decoder=decoder, output=output, memory_format=memory_format, reuse_memory=True)
    if view_obj is not None and collator.view is None:
        collator = copy.copy(collator)
        collator.view = view_obj  # reduces soft labels (and drops rows the fast paths have not filtered)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    loader_kwargs = dict(
        num_workers=num_workers,
        collate_fn=collator,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        multiprocessing_context=multiprocessing_context,
    )
    if num_workers > 0:
        loader_kwargs["persistent_workers"] = True if persistent_workers is None else persistent_workers
        if prefetch_factor is not None:
            loader_kwargs["prefetch_factor"] = prefetch_factor

    if _is_hf_map(dataset):
        if view_obj is not None:
            from .sampling import labels_of

            labels = labels_of(dataset)
            keep = torch.isin(labels, torch.tensor(view_obj.codes))
            if view_obj.keep_unlabeled:
                keep |= labels < 0
            dataset = dataset.select(keep.nonzero().flatten().tolist())
        if sampler is None:
            if balanced:
                from .sampling import balanced_sampler

                power = 1.0 if balanced is True else float(balanced)
                sampler = balanced_sampler(dataset, power=power, generator=generator)
            elif (shuffle is None or shuffle) and len(dataset) > 0:
                sampler = RandomSampler(range(len(dataset)), generator=generator)
            else:
                sampler = SequentialSampler(range(len(dataset)))
        batches = BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last)
        return DataLoader(ArrowBatches(dataset), batch_size=None, sampler=batches, **loader_kwargs)

    if _is_hf_stream(dataset):
        if sampler is not None or balanced:
            raise ValueError("sampler and balanced need a map-style dataset; a streaming dataset is read in order")
        if shuffle:
            dataset = dataset.shuffle(seed=seed, buffer_size=shuffle_buffer)
        stream = StreamBatches(
            dataset,
            batch_size,
            drop_last=drop_last,
            labels=view_obj.codes if view_obj is not None else None,
            keep_unlabeled=view_obj is not None and view_obj.keep_unlabeled,
        )
        return DataLoader(stream, batch_size=None, **loader_kwargs)

    if balanced:
        raise ValueError("balanced needs a datasets.Dataset (its human_label column); build a sampler with balanced_sampler()")
    if isinstance(dataset, IterableDataset):
        return DataLoader(dataset, batch_size=batch_size, drop_last=drop_last, **loader_kwargs)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=(shuffle is None or shuffle) if sampler is None else False,
        sampler=sampler,
        drop_last=drop_last,
        generator=generator,
        **loader_kwargs,
    )
