"""resample: subsets with a target race / gender / age-band distribution, shortfalls reported."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from affectnetplus_hf.core.schema import RACES  # noqa: E402
from affectnetplus_hf.torch.groups import NO_GROUP, UNCERTAIN, dataset_groups  # noqa: E402
from affectnetplus_hf.torch.resample import resample  # noqa: E402
from tests.support.torch_support import rows_dataset  # noqa: E402


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    return rows_dataset(tmp_path_factory.mktemp("resample"), n=48, faults=["null_numbers"])


def groups_of(n_per_group):
    return torch.tensor([g for g, n in enumerate(n_per_group) for _ in range(n)], dtype=torch.int64)


def test_balanced_cuts_every_group_to_the_smallest_and_is_seeded():
    groups = torch.cat([groups_of([10, 4, 7, 20, 5, 9]), torch.tensor([NO_GROUP, UNCERTAIN, UNCERTAIN])])
    a = resample(groups, "race", "balanced", seed=1)
    assert a.counts == {name: 4 for name in RACES} and len(a.indices) == 24 and not a.shortfall
    assert len(set(a.indices.tolist())) == 24 and all(groups[i] >= 0 for i in a.indices)
    assert a.excluded == {"null": 1, "below_min_probability": 2}
    assert (resample(groups, "race", seed=1).indices == a.indices).all()
    assert (resample(groups, "race", seed=2).indices != a.indices).any()


def test_a_size_a_group_cannot_meet_is_reported_not_duplicated(caplog):
    groups = groups_of([10, 4, 7, 20, 5, 9])
    short = resample(groups, "race", "balanced", size=36)
    assert short.wanted == {name: 6 for name in RACES}
    assert short.shortfall == {"indian": 2, "middle_eastern": 1}
    assert len(short.indices) == 33 and len(set(short.indices.tolist())) == 33 and short.repeated == 0
    assert "short by 2" in caplog.text and "SHORT by 2" in short.summary()
    filled = resample(groups, "race", "balanced", size=36, replacement=True)
    assert filled.counts == {name: 6 for name in RACES} and filled.repeated == 3 and not filled.shortfall
    # shares by dict (normalised, missing groups 0) and the largest-remainder split
    shares = resample(groups, "race", {"white": 2, "asian": 1}, size=10)
    assert shares.wanted["white"] == 7 and shares.wanted["asian"] == 3 and shares.counts["black"] == 0
    with pytest.raises(ValueError, match="unknown groups"):
        resample(groups, "race", {"martian": 1})


def test_on_a_dataset_with_another_datasets_distribution(train):
    races = dataset_groups(train, "race")
    # the null_numbers fault nulls the age and one gender probability of a row
    assert (dataset_groups(train, "gender") == NO_GROUP).sum() == 1 and (
        dataset_groups(train, "age") == NO_GROUP
    ).sum() == 1
    picked = resample(train, "race", train, seed=0)  # a dataset's own mix: every eligible row fits
    assert sum(picked.counts.values()) == int((races >= 0).sum()) and not picked.shortfall
    subset = picked.dataset()
    assert sorted(subset["image_id"]) == sorted(train.select(picked.indices.tolist())["image_id"])
    gender = resample(train, "gender", "balanced", seed=0, min_probability=0.7)
    assert gender.excluded["below_min_probability"] == int(
        (dataset_groups(train, "gender", min_probability=0.7) == UNCERTAIN).sum()
    )
    assert gender.counts["female"] == gender.counts["male"]
    ages = resample(train, "age", "balanced", size=20, replacement=True, seed=0)
    assert sum(ages.counts.values()) + sum(ages.shortfall.values()) == 20 and ages.excluded["null"] == 1


def test_a_group_without_rows_is_reported_short_not_an_empty_subset(caplog):
    """Balanced by age band on data with no child: the other bands still give a balanced
    subset, and the empty bands are reported short (the subset is not silently empty)."""
    groups = groups_of([0, 4, 7, 0, 5, 9])
    picked = resample(groups, "race", "balanced", seed=0)
    assert picked.counts == {"asian": 0, "indian": 4, "black": 4, "white": 0, "middle_eastern": 4, "latino_hispanic": 4}
    assert picked.shortfall == {"asian": 4, "white": 4} and "short by 4" in caplog.text
    nobody = resample(torch.full((5,), UNCERTAIN), "race", "balanced")
    assert len(nobody.indices) == 0 and nobody.excluded["below_min_probability"] == 5
    assert "no row belongs to a group the target asks for" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 10.5}, "size must be a whole number of rows"),
        ({"size": "10"}, "size must be a whole number of rows"),
        ({"min_probability": 1.5}, r"min_probability must be in \[0, 1\]"),
        ({"target": 0.5}, "target must be 'balanced', a dict of shares or a dataset, got float"),
    ],
)
def test_wrong_arguments_are_named(train, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        resample(train, "race", **kwargs)
