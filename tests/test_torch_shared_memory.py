"""Shared-memory transport of a collated batch (worker -> main process)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from multiprocessing.reduction import ForkingPickler

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch.multiprocessing")  # registers torch's shared-memory pickling with ForkingPickler

from affectnetplus_hf.torch import shared_memory  # noqa: E402
from affectnetplus_hf.torch.shared_memory import Packed, Pool, allocate, new_shared_storage  # noqa: E402


def test_new_shared_storage_lives_in_shared_memory():
    storage = new_shared_storage(1000)
    assert storage.is_shared() and storage.nbytes() == 1000, f"torch {torch.__version__}"
    assert new_shared_storage(0).nbytes() == 1  # an empty batch still gets a storage


def test_allocate_gives_aligned_views_of_one_storage():
    tensors, storage, release = allocate(
        {"a": (torch.uint8, (3,)), "b": (torch.float32, (2, 2)), "c": (torch.int64, (5,))},
        reuse_memory=False,
        pool_size=1,
    )
    assert release is None
    assert {t.untyped_storage().data_ptr() for t in tensors.values()} == {storage.data_ptr()}
    assert [t.storage_offset() * t.element_size() % 64 for t in tensors.values()] == [0, 0, 0]
    assert tensors["b"].shape == (2, 2) and tensors["c"].dtype == torch.int64


def test_packed_batch_unpickles_as_the_plain_batch_in_order():
    tensors, storage, _ = allocate(
        {"subset": (torch.int64, (2,)), "image": (torch.uint8, (2, 3))}, reuse_memory=False, pool_size=1
    )
    tensors["subset"].copy_(torch.tensor([0, 2]))
    tensors["image"].fill_(7)
    batch = pickle.loads(pickle.dumps(Packed({**tensors, "image_id": ["a", "b"]}, storage, None)))
    assert list(batch) == ["image", "image_id", "subset"]  # schema order, whatever order they were packed in
    assert batch["subset"].tolist() == [0, 2] and int(batch["image"].sum()) == 42 and batch["image_id"] == ["a", "b"]


def _slot_batch(pool: Pool, values: list[int]):
    storage, release = pool.acquire(64)
    tensor = torch.empty(0, dtype=torch.int64).set_(storage, 0, (len(values),))  # type: ignore[call-overload]
    tensor.copy_(torch.tensor(values))
    return Packed({"subset": tensor}, storage, release)


def test_a_pool_slot_crosses_once_and_is_reused_only_when_the_batch_is_freed():
    """The receiving process maps a slot's storage from the first batch in it; later batches in
    that slot send only its number, and still arrive with their own values."""
    pool = Pool(2)
    sent = ForkingPickler.dumps(_slot_batch(pool, [1, 2]))
    assert b"rebuild_storage" in bytes(sent)  # the storage travels with the first batch in a slot
    received = pickle.loads(sent)
    assert received["subset"].tolist() == [1, 2] and pool.counts.tolist() == [1, 0]
    kept = received["subset"][1:]  # a view keeps the whole batch
    del received
    assert pool.counts.tolist() == [1, 0]
    second = _slot_batch(pool, [3, 4])  # slot 0 is held: slot 1
    assert pickle.loads(ForkingPickler.dumps(second))["subset"].tolist() == [3, 4]  # freed at once
    assert pool.counts.tolist() == [1, 0] and kept.tolist() == [2]
    del kept
    assert pool.counts.tolist() == [0, 0]
    sent = ForkingPickler.dumps(_slot_batch(pool, [5, 6]))  # slot 0 again: by number
    assert b"rebuild_storage" not in bytes(sent)
    assert pickle.loads(sent)["subset"].tolist() == [5, 6]


def test_a_slot_number_without_its_storage_is_refused_by_name():
    pool = Pool(1)
    pickle.loads(ForkingPickler.dumps(_slot_batch(pool, [1])))
    shared_memory._MAPPED.pop(pool.token)
    with pytest.raises(RuntimeError, match=f"DataLoader worker {os.getpid()} refers to its pool"):
        pickle.loads(ForkingPickler.dumps(_slot_batch(pool, [2])))


def test_storages_of_exited_workers_are_unmapped():
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(process.stdout)
    shared_memory._MAPPED["gone"] = shared_memory._Mapped(gone, torch.zeros(1, dtype=torch.int32))
    shared_memory._MAPPED["here"] = shared_memory._Mapped(os.getpid(), torch.zeros(1, dtype=torch.int32))
    shared_memory.forget_exited()
    assert "gone" not in shared_memory._MAPPED and "here" in shared_memory._MAPPED
    del shared_memory._MAPPED["here"]
