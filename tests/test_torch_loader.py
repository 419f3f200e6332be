"""make_loader over the exported dataset (map-style and streaming, 2 workers) and the prefetcher."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from affectnetplus_hf.torch import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    BatchAugment,
    DevicePrefetcher,
    JpegCollator,
    make_loader,
)
from tests.support.torch_support import exported, pil_decode  # noqa: E402


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return exported(tmp_path_factory.mktemp("export"), n=12, faults={"train": ["null_numbers", "missing_pose"]})


@pytest.fixture(scope="module")
def train(export_dir):
    return datasets.load_dataset(str(export_dir), "all", split="train", cache_dir=str(export_dir.parent / "hf-cache"))


def ids_of(loader) -> list[str]:
    return [image_id for batch in loader for image_id in batch["image_id"]]


def test_map_style_loader_with_two_workers(train):
    loader = make_loader(train, 5, num_workers=2, seed=0)
    assert len(loader) == 3
    epochs = [list(loader), list(loader)]  # persistent workers: a second epoch works
    for batches in epochs:
        assert sorted(i for b in batches for i in b["image_id"]) == sorted(train["image_id"])
        assert [b["image"].shape[0] for b in batches] == [5, 5, 2]
        for b in batches:
            assert b["image"].dtype == torch.uint8 and b["image"].shape[1:] == (3, 224, 224)
            assert b["soft_label"].shape == (b["image"].shape[0], 8)
    assert [b["image_id"] for b in epochs[0]] != [b["image_id"] for b in epochs[1]]  # reshuffled
    # same seed, same order; the pixels and labels are those of the rows named
    again = make_loader(train, 5, num_workers=0, seed=0)
    first = next(iter(again))
    assert first["image_id"] == epochs[0][0]["image_id"]
    by_id = {row["image_id"]: row for row in train.cast_column("image", datasets.Image(decode=False))}
    for k, image_id in enumerate(first["image_id"]):
        row = by_id[image_id]
        assert first["human_label"][k].item() == row["human_label"]
        pixels = torch.from_numpy(pil_decode(row["image"]["bytes"])).permute(2, 0, 1).int()
        assert (first["image"][k].int() - pixels).abs().max() <= 1


def test_streaming_loader_with_two_workers(export_dir, train):
    stream = datasets.load_dataset(
        str(export_dir), "all", split="train", streaming=True, cache_dir=str(export_dir.parent / "hf-cache")
    )
    assert stream.num_shards >= 2
    loader = make_loader(stream, 4, num_workers=2)
    assert sorted(ids_of(loader)) == sorted(train["image_id"])
    # fewer shards than workers: every worker reads, each decodes its share, none twice
    one_shard = train.to_iterable_dataset(num_shards=1)
    assert sorted(ids_of(make_loader(one_shard, 4, num_workers=2))) == sorted(train["image_id"])
    # shards that spread evenly: each worker reads only its own
    four = train.to_iterable_dataset(num_shards=4)
    assert sorted(ids_of(make_loader(four, 2, num_workers=2))) == sorted(train["image_id"])
    # a view filters before batching: full batches of kept classes only
    seven = list(make_loader(stream, 4, num_workers=2, view=7))
    labels = [label for b in seven for label in b["human_label"].tolist()]
    expected = [label for label in train["human_label"] if label is not None and label < 7]
    assert sorted(labels) == sorted(expected)
    assert all(b["soft_label"].shape[1] == 7 for b in seven)


def test_whole_shards_only_when_they_spread_evenly():
    from affectnetplus_hf.torch.loader import _shards_balance

    assert _shards_balance(4, 2) and _shards_balance(72, 8) and _shards_balance(21, 2)
    assert not _shards_balance(3, 2) and not _shards_balance(1, 2) and not _shards_balance(9, 2)


def test_view_and_balanced_sampling_on_map_style(train):
    loader = make_loader(train, 4, num_workers=0, view=8, seed=1)
    labels = [label for b in loader for label in b["human_label"].tolist()]
    assert sorted(labels) == sorted(label for label in train["human_label"] if label is not None and label < 8)
    assert all(b["image"].shape[0] == 4 for b in list(loader)[:-1])
    balanced = make_loader(train, 6, num_workers=0, view=8, balanced=True, seed=1)
    drawn = [label for b in balanced for label in b["human_label"].tolist()]
    assert len(drawn) == len(labels) and all(0 <= label < 8 for label in drawn)


def test_kept_batches_are_never_overwritten(train):
    """Workers reuse batch memory only once every tensor of a batch is gone."""
    loader = make_loader(train, 2, num_workers=2, seed=3)
    kept, copies = [], []
    for epoch in range(4):
        for i, batch in enumerate(loader):
            if epoch == 0 and i < 3:
                kept.append((batch["image"][:1], batch["landmarks"]))  # views keep the memory
                copies.append((batch["image"][:1].clone(), batch["landmarks"].clone()))
    for (image, landmarks), (image_copy, landmarks_copy) in zip(kept, copies, strict=False):
        assert torch.equal(image, image_copy)
        assert torch.equal(landmarks.nan_to_num(), landmarks_copy.nan_to_num())


def test_worker_batches_match_the_main_process_while_slots_are_reused(train):
    """Each worker sends a pool slot's memory once, then only its number: every batch still
    holds its own rows, as decoding in the main process gives them."""
    workers = make_loader(train, 2, num_workers=2, seed=4, size=32)
    alone = make_loader(train, 2, num_workers=0, seed=4, size=32)
    for _ in range(3):  # 18 batches: more than the workers' pool slots
        for got, want in zip(workers, alone, strict=True):
            assert got["image_id"] == want["image_id"]
            assert torch.equal(got["image"], want["image"]) and torch.equal(got["subset"], want["subset"])


def test_prefetcher_on_cpu_normalises(train):
    loader = make_loader(train, 4, num_workers=0, shuffle=False)
    raw = next(iter(loader))
    out = next(iter(DevicePrefetcher(loader, "cpu")))
    assert out["image"].dtype == torch.float32 and out["image"].device.type == "cpu"
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(out["image"], (raw["image"].float() / 255 - mean) / std, atol=1e-5)
    assert out["image_id"] == raw["image_id"]
    assert torch.equal(out["human_label"], raw["human_label"])
    assert len(DevicePrefetcher(loader, "cpu")) == len(loader)


def test_prefetcher_on_an_empty_loader(train):
    assert list(DevicePrefetcher([], "cpu")) == []
    empty = make_loader(train.select([]), 4, num_workers=0)
    assert list(DevicePrefetcher(empty, "cpu", augment=BatchAugment(seed=0))) == []


def test_jpeg_output_decoded_by_the_prefetcher(train):
    pixels = make_loader(train, 4, num_workers=0, shuffle=False)
    encoded = make_loader(train, 4, num_workers=0, shuffle=False, output="jpeg")
    a = next(iter(DevicePrefetcher(pixels, "cpu")))
    b = next(iter(DevicePrefetcher(encoded, "cpu")))
    assert torch.allclose(a["image"], b["image"]) and "jpeg_data" not in b
    c = next(iter(DevicePrefetcher(encoded, "cpu", size=112)))
    assert c["image"].shape == (4, 3, 112, 112)
    assert torch.allclose(c["landmarks"], (a["landmarks"] + 0.5) / 2 - 0.5, equal_nan=True)


def test_seeded_augmentation_is_reproducible(train):
    loader = make_loader(train, 6, num_workers=0, shuffle=False)

    def run(seed):
        return [b for b in DevicePrefetcher(loader, "cpu", augment=BatchAugment(seed=seed, erase_p=0.5))]

    first, second, other = run(5), run(5), run(6)
    for a, b in zip(first, second, strict=False):
        assert torch.equal(a["image"], b["image"])
        assert torch.equal(a["landmarks"].nan_to_num(), b["landmarks"].nan_to_num())
    assert any(not torch.equal(a["image"], c["image"]) for a, c in zip(first, other, strict=False))


def test_collator_in_a_plain_dataloader(train):
    """The collator also works as the collate_fn of an ordinary DataLoader over rows."""
    rows = train.cast_column("image", datasets.Image(decode=False))
    loader = torch.utils.data.DataLoader(rows, batch_size=4, num_workers=2, collate_fn=JpegCollator(size=64))
    batches = list(loader)
    assert sorted(i for b in batches for i in b["image_id"]) == sorted(train["image_id"])
    assert all(b["image"].shape[1:] == (3, 64, 64) for b in batches)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_prefetcher_on_cuda_matches_cpu(train):
    loader = make_loader(train, 4, num_workers=2, shuffle=False)  # pinned batches when CUDA is there
    prefetcher = DevicePrefetcher(loader, "cuda", augment=BatchAugment(seed=0))
    stream = prefetcher.stream
    on_gpu = list(prefetcher)
    assert prefetcher.stream is stream  # one side stream for the prefetcher's life
    on_cpu = list(DevicePrefetcher(loader, "cpu"))
    assert len(on_gpu) == len(on_cpu)
    for a, b in zip(on_gpu, on_cpu, strict=False):
        assert a["image"].is_cuda and a["image"].dtype == torch.float32
        assert a["image_id"] == b["image_id"]
        assert torch.equal(a["human_label"].cpu(), b["human_label"])
    plain = list(DevicePrefetcher(loader, "cuda"))
    assert torch.allclose(plain[0]["image"].cpu(), on_cpu[0]["image"], atol=1e-5)
    encoded = make_loader(train, 4, num_workers=0, shuffle=False, output="jpeg")
    decoded = next(iter(DevicePrefetcher(encoded, "cuda")))  # torchvision's GPU decoder when installed
    assert (decoded["image"].cpu() - on_cpu[0]["image"]).abs().mean() < 0.05


def test_datasets_internals_the_loader_reads(train):
    """row_mapping and arrow_table wrap the two datasets internals the map-style path needs;
    if a datasets release changes them, this fails naming the version."""
    import pickle

    from affectnetplus_hf.torch.loader import ArrowBatches, arrow_table, row_mapping

    version = datasets.__version__
    picked = train.shuffle(seed=1).select([5, 0, 3])
    mapping = row_mapping(picked)
    assert mapping is not None, f"datasets {version}: Dataset._indices no longer holds the row mapping"
    table = arrow_table(picked).table
    assert table.column("image_id").take(mapping).to_pylist() == picked["image_id"], (
        f"datasets {version}: row mapping changed meaning"
    )
    assert row_mapping(train) is None
    # a memory-mapped table pickles as its file path: workers do not receive the images through a pipe
    size = len(pickle.dumps(ArrowBatches(picked)))
    assert size < arrow_table(train).table.nbytes / 4, (
        f"datasets {version}: the Arrow table pickles by value ({size} bytes)"
    )


def test_streaming_workers_read_only_their_own_row_groups(tmp_path, train):
    """One Parquet file of 4 row groups, 2 workers: the stream is resharded by row group and
    each worker reads its own 2 (no worker reads the whole file). ``datasets`` < 5 has no
    ``IterableDataset.reshard``: there each worker reads the file and keeps every other batch,
    and the batches are the same."""
    from affectnetplus_hf.torch.loader import _reshard

    path = tmp_path / "one.parquet"
    train.cast_column("image", datasets.Image(decode=False)).to_parquet(str(path), batch_size=3)
    stream = datasets.load_dataset("parquet", data_files=str(path), split="train", streaming=True)
    shards = 4 if hasattr(stream, "reshard") else 1
    assert stream.num_shards == 1
    assert _reshard(stream, 2).num_shards == shards and _reshard(stream, 1) is stream
    loader = make_loader(stream, 3, num_workers=2, size=32)
    assert loader.dataset.dataset.num_shards == shards
    batches = list(loader)
    assert sorted(i for b in batches for i in b["image_id"]) == sorted(train["image_id"])
    # whole row groups per worker: batches alternate between the workers' groups, in order
    groups = [train["image_id"][k : k + 3] for k in range(0, 12, 3)]
    assert [b["image_id"] for b in batches] == [groups[0], groups[1], groups[2], groups[3]]


def test_a_state_resumes_alike_twice_and_a_wrong_state_is_named(export_dir):
    """A state kept (to save, or to resume from again) still says where it was taken; something
    that is not a loader state gets a message naming what was expected."""
    import copy

    def stream_loader():
        stream = datasets.load_dataset(
            str(export_dir), "all", split="train", streaming=True, cache_dir=str(export_dir.parent / "hf-cache")
        )
        return make_loader(stream, 2, num_workers=2, size=16)

    loader = stream_loader()
    batches = iter(loader)
    next(batches)
    state = loader.state_dict()
    kept = copy.deepcopy(state)
    rest = [b["image_id"] for b in batches]
    for _ in range(2):  # the same state object resumes alike twice
        again = stream_loader()
        again.load_state_dict(state)
        assert [b["image_id"] for b in again] == rest
        assert state == kept
    with pytest.raises(TypeError, match="expected the dict that make_loader's loader.state_dict"):
        again.load_state_dict([("epoch", 0)])


def test_balanced_of_the_wrong_type_is_named(train):
    with pytest.raises(TypeError, match=r"balanced must be True/False or a power .*got 'yes'"):
        make_loader(train, 4, num_workers=0, balanced="yes")


def test_a_seedless_streaming_shuffle_warns_that_it_cannot_resume(export_dir):
    stream = datasets.load_dataset(
        str(export_dir), "all", split="train", streaming=True, cache_dir=str(export_dir.parent / "hf-cache")
    )
    with pytest.warns(UserWarning, match="streaming shuffle without seed= draws its seed at random"):
        make_loader(stream, 4, num_workers=0, shuffle=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_loader(stream, 4, num_workers=0, shuffle=True, seed=0)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_set_epoch_after_a_state_taken_before_the_first_batch(train, num_workers):
    """``state_dict()`` before any batch makes the epoch's iterator; a ``set_epoch`` after it
    still picks the epoch the next ``iter()`` yields."""
    direct = make_loader(train, 5, num_workers=num_workers, seed=2, size=16)
    direct.set_epoch(3)
    checkpointed = make_loader(train, 5, num_workers=num_workers, seed=2, size=16)
    checkpointed.state_dict()
    checkpointed.set_epoch(3)
    assert [b["image_id"] for b in checkpointed] == [b["image_id"] for b in direct]
    assert checkpointed.epoch == 3
