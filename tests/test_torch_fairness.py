"""fairness_report against fairlearn on the same predictions, and its bootstrap intervals."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from affectnetplus_hf.core.schema import EXPRESSIONS, RACES  # noqa: E402
from affectnetplus_hf.torch import accuracy, macro_f1  # noqa: E402
from affectnetplus_hf.torch.fairness import fairness_report, format_fairness  # noqa: E402
from affectnetplus_hf.torch.groups import NO_GROUP, UNCERTAIN, group_index  # noqa: E402


def synthetic(n=600, classes=8, seed=0):
    """Predictions right 60% of the time, more often for some races; every group has every class."""
    g = torch.Generator().manual_seed(seed)
    target = torch.arange(n) % classes
    race_index = (torch.arange(n) // classes) % len(RACES)
    right = torch.rand(n, generator=g) < 0.4 + 0.08 * race_index
    pred = torch.where(right, target, torch.randint(classes, (n,), generator=g))
    race = torch.rand(n, len(RACES), generator=g) * 0.2
    race[torch.arange(n), race_index] = 1.0
    race = race / race.sum(dim=1, keepdim=True)
    gender = torch.rand(n, 2, generator=g)
    gender = gender / gender.sum(dim=1, keepdim=True)
    age = torch.rand(n, generator=g) * 80
    return pred, target, race, gender, age


def test_numbers_equal_fairlearn():
    fairlearn = pytest.importorskip("fairlearn.metrics")
    pred, target, race, gender, age = synthetic()
    target[:5] = -1  # null labels are not scored
    report = fairness_report(pred, target, race=race, gender=gender, age=age, n_boot=0)
    scored = target >= 0
    for attribute, values in (("race", race), ("gender", gender), ("age", age)):
        groups = group_index(values, attribute)[scored].numpy()
        y, p = target[scored].numpy(), pred[scored].numpy()
        table = report[attribute]
        for c, name in enumerate(EXPRESSIONS[:8]):
            yt, yp = (y == c).astype(int), (p == c).astype(int)
            expected = {
                "demographic_parity_difference": fairlearn.demographic_parity_difference(
                    yt, yp, sensitive_features=groups
                ),
                "demographic_parity_ratio": fairlearn.demographic_parity_ratio(yt, yp, sensitive_features=groups),
                "equalized_odds_difference": fairlearn.equalized_odds_difference(yt, yp, sensitive_features=groups),
            }
            for stat, value in expected.items():
                assert table[stat]["per_class"][name]["value"] == pytest.approx(value, abs=1e-6), (
                    attribute,
                    name,
                    stat,
                )
        for stat in ("demographic_parity_difference", "equalized_odds_difference"):
            assert table[stat]["value"] == pytest.approx(
                max(v["value"] for v in table[stat]["per_class"].values()), abs=1e-12
            )
        ratio = table["demographic_parity_ratio"]
        assert ratio["value"] == pytest.approx(min(v["value"] for v in ratio["per_class"].values()), abs=1e-12)
        # per group accuracy and macro-F1 are the metrics module's, on the group's rows
        frame = fairlearn.MetricFrame(
            metrics={"acc": lambda a, b: (a == b).mean()}, y_true=y, y_pred=p, sensitive_features=groups
        )
        for k, value in frame.by_group["acc"].items():
            name = table_name(attribute, k)
            assert table["groups"][name]["accuracy"]["value"] == pytest.approx(value, abs=1e-6)
            rows = torch.from_numpy(groups == k)
            assert table["groups"][name]["macro_f1"]["value"] == pytest.approx(
                float(macro_f1(pred[scored][rows], target[scored][rows])), abs=1e-9
            )
            assert table["groups"][name]["n"] == int(rows.sum())
    assert float(accuracy(pred, target)) > 0  # sanity of the synthetic data


def table_name(attribute, index):
    from affectnetplus_hf.torch.groups import group_names

    return group_names(attribute)[index]


def test_bootstrap_intervals_hold_the_value_and_are_seeded():
    pred, target, race, gender, age = synthetic(seed=1)
    a = fairness_report(pred, target, race=race, n_boot=200, seed=3)
    b = fairness_report(pred, target, race=race, n_boot=200, seed=3)
    c = fairness_report(pred, target, race=race, n_boot=200, seed=4)
    assert a == b and a != c
    for _name, row in a["race"]["groups"].items():
        low, high = row["accuracy"]["ci"]
        assert low <= row["accuracy"]["value"] <= high and high - low < 0.5
    gap = a["race"]["demographic_parity_difference"]
    # a gap is a maximum over groups: its resamples sit above the point value, yet the
    # (bias-corrected) interval holds it
    assert 0 <= gap["ci"][0] <= gap["value"] <= gap["ci"][1] <= 1
    assert "race" in format_fairness(a) and "equalized odds difference" in format_fairness(a)


def test_rows_without_a_group_are_left_out_and_counted():
    pred, target, race, gender, age = synthetic(n=64)
    race[:4] = float("nan")
    age[4:6] = float("nan")
    report = fairness_report(pred, target, race=race, age=age, n_boot=0, min_probability=None)
    assert report["race"]["left_out"] == 4 and report["age"]["left_out"] == 2
    assert sum(row["n"] for row in report["race"]["groups"].values()) == 60
    probs = torch.tensor([[0.5, 0.5], [0.9, 0.1], [float("nan"), 0.2]])
    assert group_index(probs, "gender", min_probability=0.6).tolist() == [UNCERTAIN, 0, NO_GROUP]
    assert group_index(torch.tensor([1.0, 2.9, 3.0, 69.5, 70.0, float("nan")]), "age").tolist() == [
        0,
        0,
        1,
        7,
        8,
        NO_GROUP,
    ]


def test_small_groups_follow_fairlearn_conventions():
    """A group without a positive row of a class has a true-positive rate of 0, as in fairlearn."""
    fairlearn = pytest.importorskip("fairlearn.metrics")
    import numpy as np

    target = torch.tensor([1, 0, 1, 0, 0, 0, 0, 0])
    pred = torch.tensor([1, 0, 0, 1, 1, 0, 0, 0])
    gender = torch.tensor([[0.9, 0.1]] * 4 + [[0.2, 0.8]] * 4)
    report = fairness_report(pred, target, gender=gender, num_classes=2, n_boot=50)
    groups = np.array([0] * 4 + [1] * 4)
    for c, name in enumerate(EXPRESSIONS[:2]):
        y, p = (target.numpy() == c).astype(int), (pred.numpy() == c).astype(int)
        assert report["gender"]["equalized_odds_difference"]["per_class"][name]["value"] == pytest.approx(
            fairlearn.equalized_odds_difference(y, p, sensitive_features=groups), abs=1e-6
        )
    assert not math.isnan(report["gender"]["equalized_odds_difference"]["ci"][0])


def test_no_row_with_a_group_gives_nan_statistics_not_a_traceback():
    """Every demographic estimate null (or no row at all): the rows are counted as left out
    and every statistic is NaN (no group to compare), as for an empty evaluation set."""
    pred, target, race, gender, age = synthetic(n=40)
    report = fairness_report(pred, target, race=torch.full_like(race, float("nan")), n_boot=20)
    table = report["race"]
    assert table["left_out"] == 40 and all(row["n"] == 0 for row in table["groups"].values())
    for stat in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"):
        assert math.isnan(table[stat]["value"])
    assert "left out: 40" in format_fairness(report)
    empty = fairness_report(pred[:0], target[:0], race=race[:0], n_boot=20)
    assert math.isnan(empty["race"]["demographic_parity_difference"]["value"]) and empty["race"]["left_out"] == 0


def test_arrays_are_accepted_and_mismatched_lengths_named():
    pred, target, race, gender, age = synthetic(n=48)
    as_tensors = fairness_report(pred, target, race=race, age=age, n_boot=0)
    assert fairness_report(pred.numpy(), target.tolist(), race=race.numpy(), age=age.numpy(), n_boot=0) == as_tensors
    with pytest.raises(ValueError, match="race has 47 rows, the predictions 48"):
        fairness_report(pred, target, race=race[:-1], n_boot=0)
    with pytest.raises(ValueError, match=r"target of shape \(47,\)"):
        fairness_report(pred, target[:-1], race=race, n_boot=0)
