"""AffectNet-7 and AffectNet-8, named: the validation set's 7 or 8 classes, scored by accuracy,
mean class accuracy and macro F1, with a warning when the labels are not a published validation set."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

from affectnetplus_hf.torch import EXPECTED_VALIDATION_COUNTS, evaluate_protocol, mean_class_accuracy  # noqa: E402
from affectnetplus_hf.torch.protocols import ProtocolCountWarning  # noqa: E402


def _labels(counts):
    return torch.cat([torch.full((n,), code) for code, n in enumerate(counts)])


def test_published_validation_counts():
    assert EXPECTED_VALIDATION_COUNTS["affectnet_8labels"] == (500,) * 7 + (499,)
    assert EXPECTED_VALIDATION_COUNTS["affectnet_2017"] == (500,) * 8
    assert EXPECTED_VALIDATION_COUNTS["affectnet_plus"] == (500,) * 8


def test_mean_class_accuracy_is_the_mean_of_per_class_recalls():
    target = torch.tensor([0, 0, 0, 0, 1, 1, -1])
    pred = torch.tensor([0, 0, 0, 0, 0, 1, 1])
    assert float(mean_class_accuracy(pred, target)) == pytest.approx((1.0 + 0.5) / 2)
    assert float(mean_class_accuracy(pred, target)) != pytest.approx(5 / 6)  # not plain accuracy


def test_affectnet8_on_the_8label_validation_set_scores_three_metrics_without_warning():
    target = _labels(EXPECTED_VALIDATION_COUNTS["affectnet_8labels"])
    pred = target.clone()
    pred[target == 7] = 0  # contempt always wrong
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate_protocol(pred, target, "affectnet8", release="affectnet_8labels")
    assert result["protocol"] == "AffectNet-8" and result["n"] == 3999
    assert result["accuracy"] == pytest.approx(3500 / 3999)
    assert result["mean_class_accuracy"] == pytest.approx(7 / 8)
    assert 0 < result["macro_f1"] < 1 and result["counts"] == [500] * 7 + [499]


def test_affectnet7_leaves_contempt_and_other_codes_out():
    target = torch.cat([_labels([500] * 8), torch.full((1500,), 9), torch.full((3,), -1)])  # a 2017 validation set
    logits = torch.nn.functional.one_hot(target.clamp(0, 6), 7).float()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate_protocol(logits, target, "AffectNet-7", release="affectnet_2017")
    assert (
        result["n"] == 3500
        and result["accuracy"] == 1.0
        and result["mean_class_accuracy"] == 1.0
        and result["macro_f1"] == 1.0
    )
    with pytest.raises(ValueError, match=r"logits\[:, :7\]"):
        evaluate_protocol(torch.zeros(len(target), 8), target, "affectnet7")


def test_a_validation_set_that_is_not_the_published_one_warns():
    target = _labels([500] * 7 + [499])
    with pytest.warns(ProtocolCountWarning, match="affectnet_2017: \\[500, 500"):
        evaluate_protocol(target, target, "affectnet8", release="affectnet_2017")
    with pytest.warns(ProtocolCountWarning, match="not the published"):
        evaluate_protocol(target[:100], target[:100], "affectnet8")
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate_protocol(target, target, "affectnet9")


@pytest.fixture(scope="module")
def original_exports(tmp_path_factory):
    import datasets

    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.release.sample_original import write_sample_8labels, write_sample_2017

    tmp = tmp_path_factory.mktemp("originals")
    export(write_sample_2017(tmp / "a17", n=4).root, tmp / "o17", progress=False, card_plots=False)
    export(write_sample_8labels(tmp / "a8", n=4).root, tmp / "o8", progress=False, card_plots=False)
    return {
        "2017": datasets.load_dataset(str(tmp / "o17"), "all")["train"],
        "automatic": datasets.load_dataset(str(tmp / "o17"), "automatic")["train"],
        "8labels": datasets.load_dataset(str(tmp / "o8"), "all")["train"],
    }


@pytest.mark.parametrize("which,release", [("2017", "AffectNet 2017"), ("8labels", "8-label AffectNet release")])
def test_tools_say_which_column_the_release_lacks(original_exports, which, release):
    from affectnetplus_hf.torch import dataset_groups, make_loader, resample

    ds = original_exports[which]
    with pytest.raises(ValueError, match=f"curriculum.*'subset'.*{release}"):
        make_loader(ds, 2, num_workers=0, curriculum="epoch:1,2")
    with pytest.raises(ValueError, match=f"fairness.*'gender'.*{release}"):
        dataset_groups(ds, "gender")
    with pytest.raises(ValueError, match=f"'race'.*{release}"):
        resample(ds, "race")
    loader = make_loader(ds, 2, num_workers=0, view=7, balanced=True, size=32, crop="face" if which == "2017" else None)
    assert sum(len(b["image_id"]) for b in loader) > 0  # what the release has still works


def test_a_view_of_the_automatic_list_says_it_has_no_human_label(original_exports):
    from affectnetplus_hf.torch import make_loader, view_dataset

    ds = original_exports["automatic"]
    with pytest.raises(ValueError, match="'human_label'.*AffectNet 2017.*auto_label"):
        make_loader(ds, 2, num_workers=0, view=8)
    with pytest.raises(ValueError, match="'human_label'.*auto_label"):
        view_dataset(ds, 8)
