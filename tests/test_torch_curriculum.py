"""Curriculum by complexity subset through make_loader: by epoch and by step, map-style and
streaming, with balanced= and a distributed rank; and the batch plan it runs on."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from affectnetplus_hf.torch import Curriculum, EpochPlan, make_loader  # noqa: E402
from tests.support.torch_support import exported  # noqa: E402

EASY, CHALLENGING, DIFFICULT = 0, 1, 2


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return exported(tmp_path_factory.mktemp("curriculum"), n=18)


@pytest.fixture(scope="module")
def train(export_dir):
    return datasets.load_dataset(str(export_dir), "all", split="train", cache_dir=str(export_dir.parent / "cache"))


def subsets_per_epoch(loader, epochs):
    return [[set(batch["subset"].tolist()) for batch in loader] for _ in range(epochs)]


def test_schedule_and_parsing():
    c = Curriculum((2, 4))
    assert [c.stage_at(e) for e in range(6)] == [0, 0, 1, 1, 2, 2]
    assert c.codes_at(0) == (EASY,) and c.codes_at(3) == (EASY, CHALLENGING) and c.codes_at(9) == (0, 1, 2, -1)
    assert Curriculum.parse("step:100,200") == Curriculum((100, 200), by="step")
    with pytest.raises(ValueError, match="start points"):
        Curriculum((3, 2))
    with pytest.raises(ValueError, match="stage"):
        Curriculum((1,), stages=(("easy",), ("hardest",)))
    with pytest.raises(ValueError, match="epoch:E1,E2"):
        Curriculum.parse("sometimes:1")


@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
def test_epoch_curriculum(export_dir, train, streaming):
    data = datasets.load_dataset(str(export_dir), "all", split="train", streaming=True) if streaming else train
    loader = make_loader(data, 4, num_workers=0, size=32, seed=0, curriculum=Curriculum((1, 2)))
    epochs = [[batch for batch in loader] for _ in range(3)]
    subsets = [torch.cat([b["subset"] for b in epoch]) for epoch in epochs]
    counts = torch.bincount(torch.tensor(train["subset"]), minlength=3)
    assert set(subsets[0].tolist()) == {EASY} and len(subsets[0]) == counts[EASY]
    assert set(subsets[1].tolist()) == {EASY, CHALLENGING} and len(subsets[1]) == counts[EASY] + counts[CHALLENGING]
    assert sorted(i for b in epochs[2] for i in b["image_id"]) == sorted(train["image_id"])


def test_step_curriculum_with_balanced_draws(train):
    loader = make_loader(
        train, 3, num_workers=0, size=32, seed=1, balanced=True, curriculum=Curriculum((2, 4), by="step")
    )
    epochs = subsets_per_epoch(loader, 2)
    assert len(epochs[0]) == len(epochs[1]) == 6  # every epoch as long as a full one, every batch full
    steps = [s for epoch in epochs for s in epoch]
    assert all(s == {EASY} for s in steps[:2])
    assert all(s <= {EASY, CHALLENGING} for s in steps[2:4])
    assert set().union(*steps[4:]) > {EASY, CHALLENGING}
    assert loader.steps == 12


def test_plan_deals_rows_to_ranks_like_a_distributed_sampler():
    plans = [EpochPlan(11, 2, seed=5, rank=r, world_size=3) for r in range(3)]
    rows = [[i for batch in plan for i in batch] for plan in plans]
    assert all(len(r) == 4 for r in rows)  # 11 rows padded to 12
    assert set(i for r in rows for i in r) == set(range(11))
    dropped = [
        [i for batch in EpochPlan(11, 2, seed=5, rank=r, world_size=3, drop_last=True) for i in batch] for r in range(3)
    ]
    assert all(len(r) == 2 for r in dropped) and len({i for r in dropped for i in r}) == 6
    plan = EpochPlan(10, 4, seed=1)
    it = iter(plan)
    first = next(it)
    state = it.state_dict()
    again = iter(plan)
    again.load_state_dict(state)
    assert [first, *again] == [b.tolist() for b in plan.batches(0)]  # resumed at the second batch
    plan.set_epoch(1)
    assert [list(b) for b in plan] != [list(b) for b in EpochPlan(10, 4, seed=1)]


def test_curriculum_given_as_text_or_of_the_wrong_type(train):
    """``make_loader(curriculum="epoch:1,2")`` reads the text form (as ``--curriculum`` does);
    anything else that is not a Curriculum is named at once, not when a worker first plans."""
    by_text = make_loader(train, 4, num_workers=0, size=16, seed=0, curriculum="epoch:1,2")
    by_object = make_loader(train, 4, num_workers=0, size=16, seed=0, curriculum=Curriculum((1, 2)))
    assert [b["image_id"] for b in by_text] == [b["image_id"] for b in by_object]
    with pytest.raises(TypeError, match="curriculum must be a Curriculum or a string"):
        make_loader(train, 4, num_workers=0, curriculum=(1, 2))
    with pytest.raises(TypeError, match=r"starts must be a sequence of epochs / steps, e\.g\. \(2, 4\), got 2"):
        Curriculum(2)
