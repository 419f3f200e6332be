"""Stream a pushed export back through the Hub-compatible server with the real datasets client.

Every config gives exactly FEATURES and the local export's rows (image bytes included, by
sha256); shuffling with set_epoch gives a new reproducible order per epoch; state_dict
resumes without losing or repeating a row; a DataLoader with 2 workers reads each row once.
"""

from __future__ import annotations

import datasets
import pytest

from affectnetplus_hf.core.schema import FEATURES
from tests.support.hub_fixtures import row_key

pytestmark = pytest.mark.slow

CONFIGS = ("all", "easy", "challenging", "difficult", "unlabeled")


def _raw_images(ds):
    return ds.cast_column("image", datasets.Image(decode=False))


def _ids(ds) -> list[str]:
    return [row["image_id"] for row in ds]


def _stream_ids(repo_id: str, config: str = "all", split: str = "train"):
    return datasets.load_dataset(repo_id, config, split=split, streaming=True).select_columns(["image_id"])


def _ranged_reads(server) -> int:
    return sum(1 for method, path, status in server.log if method == "GET" and "/resolve/" in path and status == 206)


def test_every_config_streams_exact_features_and_the_local_rows(pushed, hf_cache):
    server, repo_id, folder = pushed
    compared = 0
    for config in CONFIGS:
        local = datasets.load_dataset(str(folder), config)
        remote = datasets.load_dataset(repo_id, config, streaming=True)
        assert set(remote) == set(local), config
        for split in local:
            assert remote[split].features == FEATURES, (config, split)
            got = [row_key(row) for row in _raw_images(remote[split])]
            want = [row_key(row) for row in _raw_images(local[split])]
            assert got == want, (config, split)
            compared += len(want)
    assert compared > 0
    assert _ranged_reads(server) > 0  # the Parquet really came over HTTP, by byte ranges


def test_decoded_images_arrive_as_224_rgb(pushed):
    _, repo_id, _ = pushed
    row = next(iter(datasets.load_dataset(repo_id, "easy", split="train", streaming=True)))
    assert row["image"].size == (224, 224) and row["image"].mode == "RGB"
    assert len(row["landmarks"]) == 68 and len(row["landmarks"][0]) == 2


def test_shuffle_and_set_epoch_give_a_new_reproducible_order_each_epoch(pushed, monkeypatch):
    _, repo_id, _ = pushed
    # datasets 5.2 ends every pass over shuffled Parquet shards with a 5 s sleep (a PyArrow
    # thread-shutdown workaround, apache/arrow#45214); the passes here finish their threads.
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0.05, raising=False)  # none before 5
    in_order = _ids(_stream_ids(repo_id))

    def epochs(seed: int) -> list[list[str]]:
        shuffled = _stream_ids(repo_id).shuffle(seed=seed, buffer_size=8)
        out = []
        for epoch in range(3):
            shuffled.set_epoch(epoch)
            out.append(_ids(shuffled))
        return out

    first = epochs(seed=0)
    assert all(sorted(order) == sorted(in_order) for order in first)  # a permutation every epoch
    assert len({tuple(order) for order in first}) == 3  # a different order each epoch
    assert first[0] != in_order
    assert epochs(seed=0) == first  # and the same orders again for the same seed
    assert epochs(seed=1) != first


@pytest.mark.parametrize("stop_after", [1, 5, -1])
def test_state_dict_resumes_without_losing_or_repeating_a_row(pushed, stop_after):
    _, repo_id, _ = pushed
    everything = _ids(_stream_ids(repo_id))
    stop_after = stop_after % len(everything)

    ds = _stream_ids(repo_id)
    iterator = iter(ds)
    head = [next(iterator)["image_id"] for _ in range(stop_after)]
    state = ds.state_dict()

    resumed = _stream_ids(repo_id)
    resumed.load_state_dict(state)
    tail = _ids(resumed)
    assert head + tail == everything


def _collate_ids(batch: list[dict]) -> list[str]:
    return [row["image_id"] for row in batch]


def test_dataloader_with_two_workers_reads_every_row_exactly_once(pushed):
    torch = pytest.importorskip("torch")
    server, repo_id, _ = pushed
    for config in ("all", "easy"):
        ds = _stream_ids(repo_id, config)
        expected = _ids(ds)
        assert ds.num_shards >= 2
        loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, collate_fn=_collate_ids)
        got = [image_id for batch in loader for image_id in batch]
        assert sorted(got) == sorted(expected), config
        assert len(got) == len(set(got)), config


def test_features_parse_back_from_the_pushed_card(pushed):
    _, repo_id, _ = pushed
    for config in CONFIGS:
        builder = datasets.load_dataset_builder(repo_id, config)
        assert builder.info.features == FEATURES, config


def test_a_private_repo_cannot_be_streamed_without_a_token(pushed, monkeypatch):
    _, repo_id, _ = pushed
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(Exception) as err:
        next(iter(datasets.load_dataset(repo_id, "all", split="train", streaming=True)))
    assert "doesn't exist on the Hub or cannot be accessed" in str(err.value) or "401" in str(err.value)


def test_remote_stream_helper_takes_a_repo_id(pushed):
    from affectnetplus_hf.hub.remote import stream

    _, repo_id, folder = pushed
    ds = stream(repo_id, "easy", split="train")
    assert ds.features == FEATURES
    assert _ids(ds) == _ids(_stream_ids(repo_id, "easy")) and _ids(ds)
    assert _ids(stream(f"hf://datasets/{repo_id}", "easy", split="train")) == _ids(ds)
    assert _ids(stream(str(folder), "easy", split="train")) == _ids(ds)  # a local export folder


def test_stats_from_a_repo_id_equal_stats_from_the_local_folder(pushed):
    """`affectnetplus stats my-lab/affectnet_plus` reads the Hub copy and finds the same numbers."""
    from affectnetplus_hf.stats import compute_stats

    server, repo_id, folder = pushed
    remote = compute_stats(repo_id)
    local = compute_stats(str(folder))
    assert remote["counts"] == local["counts"]
    assert remote["agreement"] == local["agreement"]
    assert sum(n for split in remote["counts"].values() for cls in split.values() for n in cls.values()) == 36
