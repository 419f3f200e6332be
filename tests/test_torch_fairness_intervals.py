"""The fairness report's intervals: BCa as scipy computes it, each holding its estimate or
saying why not, stated in the printed table, and covering a known disparity ~95% of the time."""

from __future__ import annotations

import math
import re
import types

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from affectnetplus_hf.core.schema import EXPRESSIONS, RACES  # noqa: E402
from affectnetplus_hf.torch import fairness  # noqa: E402
from affectnetplus_hf.torch.fairness import Interval, fairness_report, format_fairness  # noqa: E402

STATS = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")


def entries(report):
    """(where, value, Interval) for every interval of a report."""
    for attribute, table in report.items():
        for group, row in table["groups"].items():
            for metric in ("accuracy", "macro_f1"):
                yield (attribute, group, metric), row[metric]["value"], row[metric]["ci"]
        for stat in STATS:
            yield (attribute, stat, "worst"), table[stat]["value"], table[stat]["ci"]
            for name, entry in table[stat]["per_class"].items():
                yield (attribute, stat, name), entry["value"], entry["ci"]


def one_hot(group, width):
    probabilities = torch.zeros(len(group), width)
    probabilities[torch.arange(len(group)), group] = 1.0
    return probabilities


def test_intervals_state_method_resamples_and_seed_and_unpack_as_before():
    g = torch.Generator().manual_seed(0)
    n = 300
    target = torch.randint(4, (n,), generator=g)
    pred = torch.where(torch.rand(n, generator=g) < 0.6, target, torch.randint(4, (n,), generator=g))
    race = one_hot(torch.randint(3, (n,), generator=g), len(RACES))
    report = fairness_report(pred, target, race=race, num_classes=4, n_boot=300, seed=5)
    for where, value, ci in entries(report):
        assert isinstance(ci, Interval), where
        assert (ci.n_resamples, ci.seed, ci.confidence) == (300, 5, 0.95), where
        if math.isnan(value):
            assert ci.method == "none"
            continue
        assert ci.method in ("BCa", "percentile"), where
        low, high = ci  # the tuple the report gave before
        assert (low, high) == (ci[0], ci[1]) == (ci.low, ci.high) and low <= value <= high, where
    methods = [ci.method for _, value, ci in entries(report) if not math.isnan(value)]
    assert methods.count("BCa") > len(methods) // 2
    text = format_fairness(report)
    assert text.splitlines()[0].startswith(
        "  intervals: 95% BCa bootstrap (bias-corrected and accelerated), 300 resamples of the scored rows, seed 5"
    )


def test_bca_equals_scipy_on_the_same_resamples():
    """The hand-made BCa (leave-one-out values taken once per (group, label, prediction) cell)
    gives scipy.stats.bootstrap's BCa interval on the same bootstrap distribution, where
    scipy leaves out each row in turn."""
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    n, groups, classes = 150, 3, 3
    group = torch.randint(groups, (n,), generator=g)
    target = torch.randint(classes, (n,), generator=g)
    pred = torch.where(
        torch.rand(n, generator=g) < 0.5 + 0.1 * group, target, torch.randint(classes, (n,), generator=g)
    )
    cell = (group * classes + target) * classes + pred
    shape, keep = (groups, classes, classes), torch.ones(groups, dtype=torch.bool)
    point, boot, jack, rows = fairness._resampled(cell, shape, keep, 300, np.random.default_rng(1))
    ours = fairness._intervals(point, boot, jack, rows, 0.95, 1, torch.zeros(point.numel(), dtype=torch.bool))
    size = groups * classes * classes

    def statistic(index, axis=-1):
        index = torch.from_numpy(np.array(index))
        flat = index.reshape(-1, index.shape[-1])
        keys = cell[flat] + torch.arange(flat.shape[0]).unsqueeze(1) * size
        counts = torch.bincount(keys.reshape(-1), minlength=flat.shape[0] * size).double().view(-1, *shape)
        return fairness._columns(fairness._statistics(counts, keep)).T.reshape(-1, *index.shape[:-1]).numpy()

    assert not torch.isnan(boot).any()
    result = stats.bootstrap(
        (np.arange(n),),
        statistic,
        n_resamples=0,
        vectorized=True,
        method="BCa",
        bootstrap_result=types.SimpleNamespace(bootstrap_distribution=boot.T.numpy()),
    )
    compared = 0
    for s, ci in enumerate(ours):
        if ci.method == "BCa":
            assert ci.low == pytest.approx(result.confidence_interval.low[s], abs=1e-12), s
            assert ci.high == pytest.approx(result.confidence_interval.high[s], abs=1e-12), s
            compared += 1
    assert compared >= len(ours) - 2


def test_the_readme_case_a_gap_below_every_resample_is_flagged_not_printed_as_if_fine():
    """Nine age bands with exactly the same selection rate: the parity difference is 0, every
    resample's is above it (BCa has nothing to correct with). The interval holds 0, says it is
    the percentile one, and the printed table marks it and prints the reason."""
    bands = torch.tensor([1, 5, 15, 25, 35, 45, 55, 65, 75], dtype=torch.float64)
    age = bands.repeat_interleave(12)
    target = torch.arange(len(age)) % 2
    pred = (torch.arange(len(age)) // 2) % 2  # in every band: 6 rows predicted 1, 6 predicted 0
    report = fairness_report(pred, target, age=age, num_classes=2, n_boot=200, seed=0)
    gap = report["age"]["demographic_parity_difference"]
    assert gap["value"] == 0.0
    ci = gap["ci"]
    assert ci.method == "percentile" and ci.low == 0.0 < ci.high
    assert (
        ci.note.startswith("BCa not usable: the estimate is below every resample")
        and "stretched to hold the estimate" in ci.note
    )
    text = format_fairness(report)
    line = next(line for line in text.splitlines() if "demographic parity difference" in line)
    mark = re.search(r"0\.000 \[0\.000, [01]\.\d{3}\] \*(\d+)", line)
    assert mark, line
    assert f"    *{mark.group(1)} BCa not usable: the estimate is below every resample" in text
    assert "see the notes below" in text.splitlines()[0]


def test_no_interval_excludes_its_estimate_and_every_fallback_says_why():
    """Many small random datasets (ties, single rows, a group with every row right, classes no
    group predicts, NaN statistics): no interval leaves out its estimate, neither in the result
    nor as printed, and every interval that is not BCa carries a note."""
    rng = torch.Generator().manual_seed(20)
    seen = {"BCa": 0, "percentile": 0, "none": 0, "same value": 0, "below every": 0, "left out": 0}
    for trial in range(100):
        n = int(torch.randint(1, 40, (1,), generator=rng))
        classes = int(torch.randint(2, 4, (1,), generator=rng))
        target = torch.randint(classes, (n,), generator=rng)
        kind = trial % 3
        if kind == 0:
            pred = target.clone()  # every row right
        elif kind == 1:
            pred = torch.zeros(n, dtype=torch.long)  # one class predicted everywhere
        else:
            pred = torch.randint(classes, (n,), generator=rng)
        race = one_hot(torch.randint(1 + trial % 4, (n,), generator=rng), len(RACES))
        gender = one_hot(torch.randint(2, (n,), generator=rng), 2)
        age = torch.randint(0, 90, (n,), generator=rng).double()
        report = fairness_report(
            pred,
            target,
            race=race,
            gender=gender,
            age=age,
            num_classes=classes,
            min_group_size=int(trial % 5 == 0) * 3,
            n_boot=40,
            seed=trial,
        )
        for where, value, ci in entries(report):
            seen[ci.method] += 1
            if ci.method == "none":
                assert math.isnan(ci.low) and math.isnan(ci.high), (trial, where)
                continue
            assert ci.low <= value <= ci.high, (trial, where, value, ci)
            if ci.method != "BCa":
                assert ci.note, (trial, where, ci)
            note = ci.note or ""
            seen["same value"] += "every resample gave the same value" in note
            seen["below every"] += "below every resample" in note
            seen["left out"] += "resamples had no value" in note
        for line in format_fairness(report).splitlines():
            for value, low, high, _mark in re.findall(
                r"(-?\d\.\d{3}|nan) \[(-?\d\.\d{3}), (-?\d\.\d{3})\]( \*\d+)?", line
            ):
                assert float(low) <= float(value) <= float(high), (trial, line)
    # the degenerate paths were exercised, not only the easy one
    assert all(seen.values()), seen


def test_no_resamples_no_intervals_and_a_negative_count_is_refused():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(2, (50,), generator=g)
    gender = one_hot(torch.randint(2, (50,), generator=g), 2)
    report = fairness_report(target, target, gender=gender, num_classes=2, n_boot=0)
    for _, _, ci in entries(report):
        assert ci.method == "none" and ci.n_resamples == 0 and math.isnan(ci.low)
    text = format_fairness(report)
    assert text.splitlines()[0] == "  no intervals (n_boot=0)" and "[" not in text
    with pytest.raises(ValueError, match="n_boot must be 0"):
        fairness_report(target, target, gender=gender, num_classes=2, n_boot=-1)


# Coverage. Three groups whose true rates are known: P(pred = 1 | label = 1) = 0.3 / 0.6 / 0.9
# (true-positive rate) and P(pred = 1 | label = 0) = 0.1 / 0.2 / 0.3, labels 50/50. So the
# selection rates are 0.2 / 0.4 / 0.6: demographic parity difference 0.4, ratio 1/3 (class 1,
# the worst); equalized odds difference 0.6 (the true-positive gap, for either class).
TPR = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)
FPR = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
TRUTH = {"demographic_parity_difference": 0.4, "demographic_parity_ratio": 1 / 3, "equalized_odds_difference": 0.6}
REPETITIONS = 100


@pytest.mark.slow
def test_95_percent_intervals_hold_a_known_disparity_about_95_times_in_100():
    """100 independent samples of 600 rows from the population above, 1000 resamples each
    (the default). If an interval holds the truth with probability 0.95, the number of the
    100 that do is X ~ Binomial(100, 0.95): P(X <= 87) = 0.0015 and P(X = 100) = 0.006, so
    88..99 is accepted for each statistic. A correct method fails one statistic's check for
    about 1 seed in 130 (the four checks together: at most 1 in 35); the seeds are fixed, so
    the test cannot flake. A method covering 85% passes one check with probability 0.25, one
    covering 80% with 0.01; 100 of 100 says the intervals are too wide. (With these seeds:
    96, 95, 97 and 94 of 100; over 1000 repetitions about 94-95%. With groups whose rates
    are close, a gap's estimate is biased and no bootstrap interval covers this well.)"""
    rng = torch.Generator().manual_seed(2024)
    held = {stat: 0 for stat in TRUTH} | {"accuracy": 0}
    for repetition in range(REPETITIONS):
        n = 600
        group = torch.randint(3, (n,), generator=rng)
        target = torch.randint(2, (n,), generator=rng)
        rate = torch.where(target == 1, TPR[group], FPR[group])
        pred = (torch.rand(n, generator=rng, dtype=torch.float64) < rate).long()
        race = one_hot(group, len(RACES))
        table = fairness_report(pred, target, race=race, num_classes=2, n_boot=1000, seed=repetition)["race"]
        for stat, truth in TRUTH.items():
            ci = table[stat]["ci"]
            held[stat] += ci.low <= truth <= ci.high
        # accuracy of the first group: (0.3 + (1 - 0.1)) / 2 = 0.6
        ci = table["groups"][RACES[0]]["accuracy"]["ci"]
        held["accuracy"] += ci.low <= 0.6 <= ci.high
    for stat, count in held.items():
        assert 88 <= count <= 99, (stat, held)
    assert EXPRESSIONS[1] in table["demographic_parity_ratio"]["per_class"]
