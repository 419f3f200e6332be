"""Shared-memory transport of a collated batch (worker -> main process)."""

from __future__ import annotations

import pickle

import pytest

torch = pytest.importorskip("torch")

from affectnetplus_hf.torch.shared_memory import Packed, allocate, new_shared_storage  # noqa: E402


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
