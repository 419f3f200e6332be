"""Stream an export from its files over plain HTTP and other fsspec URLs, and refuse servers without Range."""

from __future__ import annotations

import re

import datasets
import fsspec
import pytest

from affectnetplus_hf.core.schema import FEATURES
from affectnetplus_hf.errors import PublishError
from affectnetplus_hf.hub.remote import (
    card_metadata,
    check_range_support,
    config_data_files,
    is_repo_id,
    read_card_configs,
    shard_paths,
    shard_plan,
    stream,
)
from tests.support.hub_fixtures import row_key
from tests.support.hub_server import NoRangeServer, RangeFileServer

CONFIGS = ("all", "easy", "challenging", "difficult", "unlabeled")


def _raw_images(ds):
    return ds.cast_column("image", datasets.Image(decode=False))


def _keys(ds) -> list[tuple]:
    return [row_key(row) for row in _raw_images(ds)]


@pytest.mark.slow
def test_every_config_streams_over_http_with_exact_features_and_rows(exported, hf_cache):
    with RangeFileServer(exported) as server:
        for config in CONFIGS:
            local = datasets.load_dataset(str(exported), config)
            remote = stream(f"{server.url}/", config)
            assert set(remote) == set(local), config
            for split in local:
                assert remote[split].features == FEATURES
                assert _keys(remote[split]) == _keys(local[split]), (config, split)
        ranged = [r for r in server.requests if r[0] == "GET" and r[2] and r[1].endswith(".parquet")]
        assert ranged  # Parquet was read by byte ranges, not whole files


def test_a_server_without_range_support_gets_a_clear_error(exported):
    with NoRangeServer(exported) as server:
        with pytest.raises(PublishError, match="does not support HTTP Range"):
            stream(server.url, "easy", split="train")
        shard = config_data_files(server.url, "easy")["train"][0]
        with pytest.raises(PublishError, match="206 Partial Content"):
            check_range_support(shard)
    with RangeFileServer(exported) as server:
        check_range_support(config_data_files(server.url, "easy")["train"][0])  # no error


def test_missing_folder_and_unknown_config_are_named(exported):
    with RangeFileServer(exported) as server:
        with pytest.raises(PublishError, match="README.md: not found"):
            stream(f"{server.url}/nothing-here", "all")
        with pytest.raises(PublishError, match="expected one of"):
            config_data_files(server.url, "happy")
        with pytest.raises(PublishError, match="HTTP 404"):
            check_range_support(f"{server.url}/data/none.parquet")


@pytest.mark.slow
def test_any_fsspec_url_works_memory_and_file(exported, hf_cache):
    memory = fsspec.filesystem("memory")
    for path in exported.rglob("*"):
        if path.is_file():
            memory.pipe(f"/exports/affectnet_plus/{path.relative_to(exported).as_posix()}", path.read_bytes())
    try:
        local = datasets.load_dataset(str(exported), "difficult", split="validation")
        for source in ("memory://exports/affectnet_plus", exported.as_uri()):
            remote = stream(source, "difficult", split="validation")
            assert remote.features == FEATURES
            assert _keys(remote) == _keys(local), source
    finally:
        memory.rm("/exports", recursive=True)


def test_data_files_come_from_export_info_not_from_listing(exported):
    import json

    info = json.loads((exported / "export_info.json").read_text())
    configs = read_card_configs((exported / "README.md").read_text())
    assert set(configs) == set(CONFIGS)
    files = config_data_files(str(exported), "easy")
    everything = set(shard_paths(info))
    for split, urls in files.items():
        rels = [u[len(str(exported)) + 1 :] for u in urls]
        assert set(rels) <= everything
        assert all("/easy-" in r for r in rels)
        part = "validation" if split == "validation" else "train"
        assert len(rels) == info["parts"][part]["num_shards"]


def test_card_configs_are_read_as_load_dataset_reads_them():
    card = (
        "\ufeff---\nconfigs:\n- config_name: all\n  data_files:\n  - split: train\n    path: data/x/train/*.parquet\n"
        "  - split: validation\n    path: [a.parquet, b.parquet]\n- config_name: one\n  data_files: data/*.parquet\n"
        "extra_gated_prompt: read the licence\n---\n# AffectNet+\n"
    )
    assert read_card_configs(card) == {
        "all": {"train": ["data/x/train/*.parquet"], "validation": ["a.parquet", "b.parquet"]},
        "one": {"train": ["data/*.parquet"]},  # a bare pattern is the train split, as in datasets
    }
    assert card_metadata(card)["extra_gated_prompt"] == "read the licence"


@pytest.mark.parametrize(
    "card, message",
    [
        ("# a card without a header\n", "no YAML header"),
        ("---\n- a\n- b\n---\n", "not a readable mapping"),
        ("---\nlicense: [unclosed\n---\n", "not a readable mapping"),
        ("---\nlicense: other\n---\n", "has no `configs`"),
        (
            "---\nconfigs:\n- data_files: data/*.parquet\n---\n",
            "`configs` are not valid (Each config must include `config_name`",
        ),
    ],
)
def test_a_card_that_is_not_the_exports_is_refused_with_one_message(card, message):
    with pytest.raises(PublishError, match=re.escape(message)) as err:
        read_card_configs(card, "somewhere/README.md")
    assert str(err.value).startswith("somewhere/README.md: ") and "expected the card written by the export" in str(
        err.value
    )


def test_repo_ids_and_paths_are_told_apart(exported, monkeypatch):
    assert is_repo_id("my-lab/affectnet_plus")
    assert not is_repo_id("https://host/x")
    assert not is_repo_id("a/b/c")
    monkeypatch.chdir(exported.parent)
    assert not is_repo_id(f"{exported.name}/data")  # an existing local path wins


@pytest.mark.parametrize(
    "shards, world, workers, ok, by_shard, idle",
    [
        (24, 1, 0, True, True, 0),
        (24, 2, 4, True, True, 0),
        (24, 8, 3, True, True, 0),
        (24, 5, 1, False, False, 0),  # every rank would read every shard
        (2, 2, 2, False, True, 1),  # one shard per rank, two workers: one idles
        (32, 4, 8, True, True, 0),
    ],
)
def test_shard_plan(shards, world, workers, ok, by_shard, idle):
    plan = shard_plan(shards, world, workers)
    assert (plan.ok, plan.by_shard, plan.idle_workers) == (ok, by_shard, idle)
    advice = plan.advice()
    assert ("balanced" in advice) == ok
    if not by_shard:
        assert "every rank reads every shard" in advice
    with pytest.raises(ValueError, match="world_size"):
        shard_plan(8, 0)
