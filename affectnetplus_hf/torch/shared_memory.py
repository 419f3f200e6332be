"""Shared-memory transport of a batch from a DataLoader worker to the main process.

Every tensor of a batch is a view of one storage (:func:`allocate`). In a worker that
storage lives in shared memory, so the batch crosses to the main process without a
copy; :class:`Packed` sends the one storage once (one file descriptor per batch instead
of one per tensor) and :func:`unpack` rebuilds the batch dict on the other side. With
``reuse_memory``, each worker keeps a small :class:`Pool` of storages and reuses one
only once the main process has let go of every tensor that used it; a pool's storage
crosses once, and later batches in it send only its slot number (:func:`unpack_pooled`).
"""

from __future__ import annotations

import math
import os
import weakref

import numpy as np
import torch

from .batch_plan import ordered_batch

__all__ = ["Packed", "Pool", "allocate", "forget_exited", "in_worker", "new_shared_storage", "unpack", "unpack_pooled"]

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
    ``(pool, slot)`` for pooled memory, else ``None``."""
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
    """Shared-memory batch storages of one worker process, reused once the receiving process
    has let go of every tensor of the batch that last used them.

    ``counts[slot]`` (shared memory) is 1 from the moment the worker fills the slot until
    the receiving process frees the batch: :func:`unpack_pooled` sets a finaliser on the
    batch's own view of the slot, which fires only when no tensor of the batch, nor any
    view of one, is left. A slot is reused only at 0, so a batch that the training loop
    keeps is never overwritten; when every slot is held, a fresh storage is used instead.

    Each slot's storage (and ``counts``) crosses to the receiving process once, with the
    first batch that uses it (a file descriptor passed over a socket costs a connection
    and a handshake on both sides); later batches in that slot send only
    ``(token, slot, generation)``, and the receiver maps them from :data:`_MAPPED`. That
    is safe because a slot is reused only after the receiver released it, i.e. after it
    unpickled the batch that carried the storage.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.counts = torch.zeros(capacity, dtype=torch.int32).share_memory_()
        self.storages: list[torch.UntypedStorage | None] = [None] * capacity
        self.generations = [0] * capacity  # bumped whenever a slot gets a new storage
        self.sent = [False] * capacity  # whether the slot's current storage has crossed
        self.counts_sent = False
        self.pid = os.getpid()
        self.token = os.urandom(8).hex()  # pids are reused; a pool's token is not

    def acquire(self, nbytes: int):
        counts = self.counts.numpy()
        for slot in range(self.capacity):
            if counts[slot] == 0:
                storage = self.storages[slot]
                if storage is None or storage.nbytes() < nbytes:
                    storage = self.storages[slot] = new_shared_storage(nbytes)
                    self.generations[slot] += 1
                    self.sent[slot] = False
                counts[slot] = 1
                return storage, (self, slot)
        return new_shared_storage(nbytes), None

    def handle(self, slot: int) -> tuple:
        """What a batch in ``slot`` sends: the storage and ``counts`` only the first time."""
        storage = self.storages[slot]
        assert storage is not None  # acquired
        whole = None if self.sent[slot] else torch.empty(0, dtype=torch.uint8).set_(storage)
        counts = None if self.counts_sent else self.counts
        self.sent[slot] = self.counts_sent = True
        return self.token, self.pid, slot, self.generations[slot], whole, counts


_POOLS: dict[int, Pool] = {}


def _pool(capacity: int) -> Pool:
    pool = _POOLS.get(os.getpid())
    if pool is None:
        _POOLS.clear()  # pools inherited from a parent through fork belong to the parent
        pool = _POOLS[os.getpid()] = Pool(capacity)
    return pool


def _release(counts: np.ndarray, slot: int) -> None:
    counts[slot] = 0


class _Mapped:
    """The receiving side of one worker's :class:`Pool`: its ``counts`` and each slot's
    ``(generation, storage as a uint8 array)``, mapped once."""

    __slots__ = ("pid", "counts", "slots")

    def __init__(self, pid: int, counts: torch.Tensor):
        self.pid, self.counts = pid, counts.numpy()  # a NumPy view: the cheapest store
        self.slots: dict[int, tuple[int, np.ndarray]] = {}


#: Pool token -> its mapped storages, in the receiving process. Entries of workers that have
#: exited are dropped by :func:`forget_exited` (a new pool's first batch, and
#: :class:`~affectnetplus_hf.torch.loader.ResumableLoader` when an iterator's workers end).
_MAPPED: dict[str, _Mapped] = {}
if hasattr(os, "register_at_fork"):  # a forked worker receives no batches: it need not keep these mapped
    os.register_at_fork(after_in_child=_MAPPED.clear)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process reuses the pid: not our worker, but harmless to keep
        return True
    return True


def forget_exited() -> None:
    """Unmap the pool storages of worker processes that have exited."""
    for token, mapped in list(_MAPPED.items()):
        if mapped.pid != os.getpid() and not _alive(mapped.pid):
            _MAPPED.pop(token, None)


class Packed:
    """A batch on its way from a worker: one storage holding every tensor, sent once
    (one file descriptor per batch instead of one per tensor; for a pooled slot, once per
    slot), and rebuilt as the plain batch dict by :func:`unpack` / :func:`unpack_pooled`
    in the receiving process."""

    __slots__ = ("batch", "storage", "release")

    def __init__(self, batch: dict, storage: torch.UntypedStorage, release):
        self.batch, self.storage, self.release = batch, storage, release

    def __reduce__(self):
        layout, lists = [], {}
        base = self.storage.data_ptr()
        for key, value in self.batch.items():
            if isinstance(value, torch.Tensor) and value.untyped_storage().data_ptr() == base:
                layout.append((key, value.dtype, tuple(value.shape), value.stride(), value.storage_offset()))
            else:
                lists[key] = value
        if self.release is not None:
            pool, slot = self.release
            return unpack_pooled, (pool.handle(slot), layout, lists)
        whole = torch.empty(0, dtype=torch.uint8).set_(self.storage)
        return unpack, (whole, layout, lists)


def _views(storage, layout: list) -> dict:
    return {
        key: torch.empty(0, dtype=dtype).set_(storage, offset, shape, stride)
        for key, dtype, shape, stride, offset in layout
    }


def unpack(whole: torch.Tensor, layout: list, lists: dict) -> dict:
    """Runs in the receiving process while unpickling: the batch dict, its tensors views of
    ``whole``'s storage."""
    return ordered_batch(_views(whole.untyped_storage(), layout), lists)


def unpack_pooled(handle: tuple, layout: list, lists: dict) -> dict:
    """Runs in the receiving process while unpickling a batch of a pool slot: the batch
    dict, its tensors views of the slot's storage (mapped the first time, from
    :data:`_MAPPED` after). They share one NumPy view of the slot made for this batch
    alone; the slot is released to the worker when that view is freed, i.e. once no
    tensor of the batch (nor any view of one) is left."""
    token, pid, slot, generation, storage, counts = handle
    mapped = _MAPPED.get(token)
    if mapped is None:
        if counts is None:
            raise RuntimeError(_LOST.format(what="its pool", pid=pid))
        forget_exited()
        mapped = _MAPPED[token] = _Mapped(pid, counts)
    if storage is not None:
        mapped.slots[slot] = (generation, storage.numpy())
    entry = mapped.slots.get(slot)
    if entry is None or entry[0] != generation:
        raise RuntimeError(_LOST.format(what=f"slot {slot}'s storage", pid=pid))
    view = entry[1][:]  # this batch's own array: its finaliser releases the slot
    weakref.finalize(view, _release, mapped.counts, slot)
    return ordered_batch(_views(torch.from_numpy(view).untyped_storage(), layout), lists)


_LOST = (
    "a batch from DataLoader worker {pid} refers to {what}, which was sent with an earlier batch that this process "
    "did not receive; batches of a JpegCollator(reuse_memory=True) must all be unpickled by the one process their "
    "worker sends them to"
)
