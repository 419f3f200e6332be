"""Shared-memory transport of a batch from a DataLoader worker to the main process.

Every tensor of a batch is a view of one storage (:func:`allocate`). In a worker that
storage lives in shared memory, so the batch crosses to the main process without a
copy; :class:`Packed` sends the one storage once (one file descriptor per batch instead
of one per tensor) and :func:`unpack` rebuilds the batch dict on the other side. With
``reuse_memory``, each worker keeps a small :class:`Pool` of storages and reuses one
only once the main process has let go of every tensor that used it.
"""

from __future__ import annotations

import math
import os
import weakref

import torch

from .batch_plan import ordered_batch

__all__ = ["Packed", "Pool", "allocate", "in_worker", "new_shared_storage", "unpack"]

#: Byte alignment of each tensor inside the batch's storage.
_ALIGN = 64


def in_worker() -> bool:
    """Whether this runs in a DataLoader worker process."""
    return torch.utils.data.get_worker_info() is not None


def new_shared_storage(nbytes: int) -> torch.UntypedStorage:
    """A storage of ``nbytes`` (at least 1) in shared memory, through torch's public API."""
    return torch.UntypedStorage(max(nbytes, 1)).share_memory_()


def allocate(specs: dict[str, tuple[torch.dtype, tuple[int, ...]]], *, reuse_memory: bool, pool_size: int):
    """Tensors for ``specs`` (key -> dtype, shape), all views of one storage: in a worker, a
    shared-memory storage (from the worker's :class:`Pool` when ``reuse_memory``), else
    ordinary memory. Returns ``(tensors, storage, release)``; ``release`` is
    ``(counts, slot)`` for pooled memory, else ``None``."""
    layout, total = {}, 0
    for key, (dtype, shape) in specs.items():
        itemsize = torch.empty((), dtype=dtype).element_size()
        total = -(-total // _ALIGN) * _ALIGN
        layout[key] = (dtype, shape, total // itemsize)
        total += math.prod(shape) * itemsize
    release = None
    if not in_worker():
        storage = torch.UntypedStorage(max(total, 1))
    elif reuse_memory:
        storage, release = _pool(pool_size).acquire(total)
    else:
        storage = new_shared_storage(total)
    # torch's stub wants a stride with an offset; Tensor.set_ takes none (contiguous) as well
    tensors = {}
    for key, (dtype, shape, offset) in layout.items():
        tensors[key] = torch.empty(0, dtype=dtype).set_(storage, offset, shape)  # type: ignore[call-overload]
    return tensors, storage, release


class Pool:
    """Shared-memory batch storages of one worker process, reused once the main process
    has let go of every tensor of the batch that last used them.

    ``counts[slot]`` (shared memory) is 1 from the moment the worker fills the slot until
    the receiving process frees the batch's storage: :func:`unpack` sets a finaliser on
    it, which fires only when no tensor of the batch, nor any view of one, is left. A
    slot is reused only at 0, so a batch that the training loop keeps is never
    overwritten; when every slot is held, a fresh storage is used instead.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.counts = torch.zeros(capacity, dtype=torch.int32).share_memory_()
        self.storages: list[torch.UntypedStorage | None] = [None] * capacity
        self.pid = os.getpid()

    def acquire(self, nbytes: int):
        counts = self.counts.numpy()
        for slot in range(self.capacity):
            if counts[slot] == 0:
                storage = self.storages[slot]
                if storage is None or storage.nbytes() < nbytes:
                    storage = self.storages[slot] = new_shared_storage(nbytes)
                counts[slot] = 1
                return storage, (self.counts, slot)
        return new_shared_storage(nbytes), None


_POOLS: dict[int, Pool] = {}


def _pool(capacity: int) -> Pool:
    pool = _POOLS.get(os.getpid())
    if pool is None:
        _POOLS.clear()  # pools inherited from a parent through fork belong to the parent
        pool = _POOLS[os.getpid()] = Pool(capacity)
    return pool


def _release(counts: torch.Tensor, slot: int) -> None:
    counts[slot] = 0


class Packed:
    """A batch on its way from a worker: one storage holding every tensor, sent once
    (one file descriptor per batch instead of one per tensor), and rebuilt as the plain
    batch dict by :func:`unpack` in the receiving process."""

    __slots__ = ("batch", "storage", "release")

    def __init__(self, batch: dict, storage: torch.UntypedStorage, release):
        self.batch, self.storage, self.release = batch, storage, release

    def __reduce__(self):
        whole = torch.empty(0, dtype=torch.uint8).set_(self.storage)
        layout, lists = [], {}
        base = self.storage.data_ptr()
        for key, value in self.batch.items():
            if isinstance(value, torch.Tensor) and value.untyped_storage().data_ptr() == base:
                layout.append((key, value.dtype, tuple(value.shape), value.stride(), value.storage_offset()))
            else:
                lists[key] = value
        return unpack, (whole, layout, lists, self.release)


def unpack(whole: torch.Tensor, layout: list, lists: dict, release) -> dict:
    """Runs in the receiving process while unpickling: the batch dict, its tensors views of
    ``whole``'s storage. For pooled memory, the worker's slot is released when that
    storage is freed, i.e. once no tensor of the batch (nor any view of one) is left."""
    storage = whole.untyped_storage()
    tensors = {
        key: torch.empty(0, dtype=dtype).set_(storage, offset, shape, stride)
        for key, dtype, shape, stride, offset in layout
    }
    if release is not None:
        weakref.finalize(storage, _release, *release)
    return ordered_batch(tensors, lists)
