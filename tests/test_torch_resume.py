"""Resuming make_loader mid-epoch in a new process yields exactly the rows of an uninterrupted run.

A first process records every case's uninterrupted ``image_id`` batches, saving the
loader's ``state_dict()`` on the way after batch k of epoch e; a second process loads it and yields
the rest. Map-style and streaming, with and without workers, ``view=``, ``balanced=``,
a curriculum, a distributed rank, a random seed (kept in the state), and states taken
before the first batch (workers already started) or after the last batch of an epoch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchdata")

from tests.support.torch_support import exported  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    {
        "name": "map",
        "streaming": False,
        "batch_size": 5,
        "epochs": 2,
        "stop": [1, 1],
        "kwargs": {"num_workers": 0, "seed": 3},
    },
    {
        "name": "map_workers_view_balanced",
        "streaming": False,
        "batch_size": 3,
        "epochs": 2,
        "stop": [0, 2],
        "kwargs": {"num_workers": 2, "seed": 4, "view": 8, "balanced": True},
    },
    {
        "name": "map_no_seed_rank1",
        "streaming": False,
        "batch_size": 2,
        "epochs": 2,
        "stop": [1, 2],
        "kwargs": {"num_workers": 0, "rank": 1, "world_size": 2},
    },
    {
        "name": "map_step_curriculum",
        "streaming": False,
        "batch_size": 4,
        "epochs": 2,
        "stop": [0, 2],
        "kwargs": {"num_workers": 2, "seed": 5, "balanced": True, "curriculum": "step:2,4"},
    },
    {"name": "stream", "streaming": True, "batch_size": 3, "epochs": 2, "stop": [1, 2], "kwargs": {"num_workers": 0}},
    {
        "name": "stream_workers_view",
        "streaming": True,
        "batch_size": 2,
        "epochs": 1,
        "stop": [0, 3],
        "kwargs": {"num_workers": 2, "view": 8},
    },
    {
        "name": "stream_shuffle_curriculum",
        "streaming": True,
        "batch_size": 2,
        "epochs": 2,
        "stop": [1, 1],
        "kwargs": {"num_workers": 2, "shuffle": True, "seed": 1, "shuffle_buffer": 4, "curriculum": "epoch:1"},
    },
    {
        "name": "stream_rank0",
        "streaming": True,
        "batch_size": 2,
        "epochs": 1,
        "stop": [0, 1],
        "kwargs": {"num_workers": 0, "rank": 0, "world_size": 2},
    },
    # state_dict() before the first batch (a checkpoint at step 0) starts the workers early;
    # batch 5 is read after iter() began the epoch
    {
        "name": "stream_workers_state_first",
        "streaming": True,
        "batch_size": 2,
        "epochs": 2,
        "stop": [0, 5],
        "state_first": True,
        "kwargs": {"num_workers": 2},
    },
    {
        "name": "map_workers_state_first_last_batch",
        "streaming": False,
        "batch_size": 5,
        "epochs": 2,
        "stop": [0, 3],
        "state_first": True,
        "kwargs": {"num_workers": 2, "seed": 6},
    },
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    export = exported(root, n=12)
    cases = root / "cases.json"
    for case in CASES:  # a two-stage curriculum: easy, then all
        if "curriculum" in case["kwargs"] and case["kwargs"]["curriculum"] == "epoch:1":
            case["kwargs"]["curriculum"] = "epoch:1,2"
    cases.write_text(json.dumps(CASES))
    states = root / "states"
    states.mkdir()
    out = {}
    for mode in ("stop", "resume"):
        target = root / f"{mode}.json"
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tests" / "support" / "torch_resume_run.py"),
                str(export),
                str(cases),
                mode,
                str(target),
                str(states),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        out[mode] = json.loads(target.read_text())
    return out


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_resumed_run_yields_the_rows_of_an_uninterrupted_run(runs, case):
    name = case["name"]
    full = runs["stop"][name]["full"]
    rest, decoded = runs["resume"][name]["rest"], runs["resume"][name]["decoded"]
    stop_epoch, stop_batch = case["stop"]
    # the resumed process yields exactly what the uninterrupted run yielded after the stop
    assert rest[0] == full[stop_epoch][stop_batch:]
    assert rest[1:] == full[stop_epoch + 1 :]
    assert any(batch for epoch in rest for batch in epoch)
    # and decoded only those batches: the ones before the stop were passed over undecoded
    yielded = [batch for epoch in rest for batch in epoch]
    assert sorted(map(tuple, decoded)) == sorted(map(tuple, yielded))
    if case.get("state_first"):  # a state taken before any batch resumes the whole run
        assert runs["resume"][name]["from_start"] == full


def test_epochs_differ_and_cover_the_split(runs):
    full = runs["stop"]["map"]["full"]
    first, second = ([i for batch in epoch for i in batch] for epoch in full)
    assert sorted(first) == sorted(second) and len(first) == 12 and first != second
    ranks = runs["stop"]["map_no_seed_rank1"]["full"][0]
    assert len([i for batch in ranks for i in batch]) == 6  # half the rows


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    import datasets

    root = tmp_path_factory.mktemp("seedless")
    return datasets.load_dataset(str(exported(root, n=12)), "all", split="train", cache_dir=str(root / "cache"))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_seedless_loader_resumed_at_an_epoch_end_keeps_its_seed(train, num_workers):
    """The usual checkpoint, after an epoch's last batch, of a loader without ``seed=``: the
    next epochs resume with the seed the loader drew (kept in the state), not a new one."""

    def loader():
        from affectnetplus_hf.torch import make_loader

        return make_loader(train, 5, num_workers=num_workers, size=16)

    first = loader()
    list(first)  # epoch 0, to its end
    state = first.state_dict()
    following = [[b["image_id"] for b in first] for _ in range(2)]
    resumed = loader()
    resumed.load_state_dict(state)
    assert [[b["image_id"] for b in resumed] for _ in range(2)] == following
