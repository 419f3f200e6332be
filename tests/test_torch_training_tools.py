"""Soft-label tools and metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from affectnetplus_hf.torch import (  # noqa: E402
    EIGHT_CLASS,
    SEVEN_CLASS,
    SoftTargetCrossEntropy,
    accuracy,
    balanced_sampler,
    ccc,
    class_balanced_weights,
    class_view,
    classification_report,
    cutmix,
    group_report,
    js_divergence,
    kl_divergence,
    macro_f1,
    mixup,
    rmse,
    soft_cross_entropy,
    soft_kl_div,
    to_distribution,
    view_batch,
    view_dataset,
)
from tests.support.torch_support import rows_dataset  # noqa: E402

NAN = float("nan")


# ---------------------------------------------------------------- losses
def test_normalisations_by_hand():
    scores = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    assert to_distribution(scores, "sum").tolist() == [[0.25, 0.75], [0.5, 0.5]]
    soft = to_distribution(torch.tensor([[0.0, math.log(3.0)]]), "softmax")
    assert soft[0].tolist() == pytest.approx([0.25, 0.75])
    hot = to_distribution(torch.tensor([[0.0, math.log(3.0)]]), "softmax", temperature=0.5)
    assert hot[0].tolist() == pytest.approx([0.1, 0.9])
    with pytest.raises(ValueError, match=r"\['sum', 'softmax', 'none'\]"):
        to_distribution(scores, "l1")


def test_soft_losses_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax -> [0.25, 0.75]
    target = torch.tensor([[2.0, 6.0]])  # raw scores; 'sum' -> [0.25, 0.75]
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert soft_cross_entropy(logits, target, normalize="sum").item() == pytest.approx(entropy)
    assert soft_kl_div(logits, target, normalize="sum").item() == pytest.approx(0.0, abs=1e-6)
    # against a one-hot target cross-entropy is -log q
    assert soft_cross_entropy(logits, torch.tensor([[0.0, 5.0]]), normalize="sum").item() == pytest.approx(
        -math.log(0.75)
    )
    # 'none' takes the target as it is: raw scores give a different (unnormalised) value
    assert soft_cross_entropy(logits, target, normalize="none").item() == pytest.approx(
        -(2 * math.log(0.25) + 6 * math.log(0.75))
    )
    kl = soft_kl_div(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), normalize="sum")
    assert kl.item() == pytest.approx(math.log(2))
    with pytest.raises(TypeError):
        soft_cross_entropy(logits, target)  # normalize has no default: the choice is explicit
    module = SoftTargetCrossEntropy(normalize="sum", reduction="none")
    assert module(logits.repeat(3, 1), target.repeat(3, 1)).shape == (3,)
    logits.requires_grad_(True)
    soft_cross_entropy(logits, target, normalize="softmax").backward()
    assert logits.grad is not None


# ---------------------------------------------------------------- metrics
def test_accuracy_and_macro_f1_by_hand():
    target = torch.tensor([0, 0, 1, 1, 2, -1, 9])  # -1 null and 9 (>= 3 classes) are not scored
    pred = torch.tensor([0, 1, 1, 1, 0, 2, 2])
    assert accuracy(pred, target, num_classes=3).item() == pytest.approx(3 / 5)
    # F1: class 0 = 2*1/(2+2) = 0.5, class 1 = 2*2/(3+2) = 0.8, class 2 = 0 (1 true, 0 predicted)
    assert macro_f1(pred, target, num_classes=3).item() == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    logits = torch.nn.functional.one_hot(pred.clamp(max=2), 3).float()
    assert accuracy(logits, target).item() == pytest.approx(3 / 5)  # C from the logits
    assert math.isnan(accuracy(pred, torch.full((7,), -1)).item())


def test_group_gap_by_hand():
    target = torch.tensor([0, 1, 0, 1, 0, 1])
    pred = torch.tensor([0, 1, 0, 0, 1, 1])
    gender = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7], [NAN, NAN]])
    report = group_report(pred, target, gender, ("female", "male"))
    assert report["groups"]["female"] == {"n": 3, "accuracy": 1.0, "macro_f1": 1.0}
    assert report["groups"]["male"]["n"] == 2  # the row with null probabilities has no group
    assert report["groups"]["male"]["accuracy"] == 0.0
    assert report["gap"]["accuracy"] == 1.0 and report["gap"]["accuracy_groups"] == ("female", "male")
    full = classification_report(
        pred, target, subset=torch.tensor([0, 0, 1, 1, 2, -1]), gender=gender, race=torch.rand(6, 6)
    )
    assert full["overall"]["accuracy"] == pytest.approx(4 / 6)
    assert full["subset"]["easy"] == {"n": 2, "accuracy": 1.0, "macro_f1": 1.0}
    assert full["subset"]["challenging"]["accuracy"] == 0.5
    assert full["subset"]["difficult"]["accuracy"] == 0.0
    assert set(full["race"]["groups"]) == {"asian", "indian", "black", "white", "middle_eastern", "latino_hispanic"}


def test_divergences_by_hand():
    p = torch.tensor([[0.5, 0.5]])
    q = torch.tensor([[0.25, 0.75]])
    assert kl_divergence(p, q).item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    assert kl_divergence(p, p).item() == pytest.approx(0.0)
    assert js_divergence(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])).item() == pytest.approx(math.log(2))
    m = (p + q) / 2
    expected = 0.5 * (kl_divergence(p, m) + kl_divergence(q, m))
    assert js_divergence(p, q).item() == pytest.approx(expected.item())


def test_rmse_and_ccc_by_hand():
    pred = torch.tensor([1.0, 2.0, 3.0, 0.0])
    target = torch.tensor([2.0, 4.0, 6.0, NAN])  # the null target is left out
    assert rmse(pred, target).item() == pytest.approx(math.sqrt(14 / 3))
    # means 2, 4; variances 2/3, 8/3; covariance 4/3 -> 2*4/3 / (2/3 + 8/3 + 4) = 8/22
    assert ccc(pred, target).item() == pytest.approx(8 / 22)
    assert ccc(target[:3], target[:3]).item() == pytest.approx(1.0)
    centred = target[:3] - 4
    assert ccc(-centred, centred).item() == pytest.approx(-1.0)  # mirrored around a shared mean
    assert ccc(target[:3] + 1, target[:3]).item() < 1  # a shift is penalised (unlike correlation)


# ---------------------------------------------------------------- mixup
def _batch(n: int = 6) -> dict:
    g = torch.Generator().manual_seed(0)
    valence = torch.rand(n, generator=g)
    valence[1] = NAN
    return {
        "image": torch.rand(n, 3, 8, 8, generator=g),
        "soft_label": torch.rand(n, 8, generator=g) * 2,
        "valence": valence,
        "valence_valid": ~valence.isnan(),
        "arousal": torch.rand(n, generator=g),
        "arousal_valid": torch.ones(n, dtype=torch.bool),
        "human_label": torch.arange(n),
    }


def test_mixup_mixes_labels_and_valence_arousal_with_one_lambda():
    batch = _batch()
    mixed, lam = mixup(batch, alpha=0.4, generator=torch.Generator().manual_seed(1))
    index = mixed["mix_index"]
    assert 0 < lam < 1 and sorted(index.tolist()) == list(range(6))
    assert torch.allclose(mixed["soft_label"], lam * batch["soft_label"] + (1 - lam) * batch["soft_label"][index])
    assert torch.allclose(mixed["image"], lam * batch["image"] + (1 - lam) * batch["image"][index])
    assert torch.allclose(mixed["arousal"], lam * batch["arousal"] + (1 - lam) * batch["arousal"][index])
    valid = mixed["valence_valid"]
    assert torch.equal(valid, batch["valence_valid"] & batch["valence_valid"][index])
    assert torch.allclose(
        mixed["valence"][valid], (lam * batch["valence"] + (1 - lam) * batch["valence"][index])[valid]
    )
    assert bool(mixed["valence"][~valid].isnan().all())
    assert mixed["mix_lambda"].item() == pytest.approx(lam)
    again, lam2 = mixup(batch, alpha=0.4, generator=torch.Generator().manual_seed(1))
    assert lam2 == lam and torch.equal(again["mix_index"], index)
    assert torch.equal(batch["soft_label"], _batch()["soft_label"])  # input untouched


def test_cutmix_lambda_is_the_kept_pixel_fraction():
    batch = _batch()
    mixed, lam = cutmix(batch, alpha=1.0, generator=torch.Generator().manual_seed(4))
    index = mixed["mix_index"]
    kept = (mixed["image"] == batch["image"]).all(dim=1).float().mean(dim=(1, 2))
    pasted = (mixed["image"] == batch["image"][index]).all(dim=1).float().mean(dim=(1, 2))
    moved = index != torch.arange(6)
    assert torch.allclose(kept[moved], torch.full_like(kept[moved], lam))
    assert torch.allclose(pasted[moved], torch.full_like(pasted[moved], 1 - lam))
    assert torch.allclose(mixed["soft_label"], lam * batch["soft_label"] + (1 - lam) * batch["soft_label"][index])


# ---------------------------------------------------------------- views
def test_view_batch_drops_renormalises_and_remaps():
    labels = torch.tensor([0, 7, 6, 9, -1, 2])
    soft = torch.arange(48, dtype=torch.float32).view(6, 8) + 1
    batch = {"human_label": labels, "soft_label": soft, "image_id": list("abcdef"), "valence": torch.arange(6.0)}
    seven = view_batch(batch, SEVEN_CLASS)
    assert seven["image_id"] == ["a", "c", "f"]
    assert seven["human_label"].tolist() == [0, 6, 2]
    assert seven["valence"].tolist() == [0.0, 2.0, 5.0]
    assert torch.allclose(seven["soft_label"], soft[[0, 2, 5], :7] / soft[[0, 2, 5], :7].sum(1, keepdim=True))
    eight = view_batch(batch, EIGHT_CLASS)
    assert eight["image_id"] == ["a", "b", "c", "f"] and eight["soft_label"].shape == (4, 8)
    pair = view_batch(batch, class_view(["sad", "neutral"]))
    assert pair["image_id"] == ["a", "f"] and pair["human_label"].tolist() == [1, 0]
    assert torch.allclose(pair["soft_label"][1], soft[5, [2, 0]] / soft[5, [2, 0]].sum())
    keep = view_batch(batch, class_view(7, keep_unlabeled=True))
    assert keep["image_id"] == ["a", "c", "e", "f"] and keep["human_label"].tolist() == [0, 6, -1, 2]
    with pytest.raises(ValueError, match="no soft-label score"):
        class_view([0, 9])


def test_view_dataset_map_style_and_streaming(tmp_path):
    ds = rows_dataset(tmp_path, n=12)
    seven = view_dataset(ds, 7)
    assert seven.features["human_label"].names == list(SEVEN_CLASS.names)
    assert seven.features["soft_label"].length == 7
    expected = [row["image_id"] for row in ds if row["human_label"] is not None and row["human_label"] < 7]
    assert seven["image_id"] == expected
    assert all(abs(sum(s) - 1) < 1e-5 for s in seven["soft_label"])
    streamed = [row["image_id"] for row in view_dataset(ds.to_iterable_dataset(num_shards=2), 7)]
    assert sorted(streamed) == sorted(expected)


# ---------------------------------------------------------------- sampling
def test_class_balanced_weights_by_hand(tmp_path):
    labels = torch.tensor([0, 0, 0, 1, 2, 2, -1, 9])
    weights = class_balanced_weights(labels, num_classes=8)
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0, 0.5, 0.5, 0.0, 0.0])
    assert class_balanced_weights(labels, num_classes=8, power=0.5)[0].item() == pytest.approx(3**-0.5)
    skewed = torch.tensor([0] * 70 + [1] * 20 + [2] * 2)  # 35x between the largest and smallest class
    sampler = balanced_sampler(skewed, num_samples=6000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(skewed[torch.tensor(list(sampler))], minlength=3)
    assert counts.min() > 1700 and counts.max() < 2300  # about 2000 each
    ds = rows_dataset(tmp_path, n=12)
    from_dataset = class_balanced_weights(ds)
    assert from_dataset.shape == (len(ds),) and bool((from_dataset > 0).all())
    with pytest.raises(ValueError, match="no row has a usable label"):
        class_balanced_weights(torch.tensor([-1, -1]))


def test_labels_of_a_dataset_are_its_codes_with_minus_one_for_null():
    import datasets

    from affectnetplus_hf.core.schema import FEATURES
    from affectnetplus_hf.torch.sampling import labels_of

    features = datasets.Features(
        {"human_label": FEATURES["human_label"], "subset": FEATURES["subset"], "mine": datasets.Value("int64")}
    )
    ds = datasets.Dataset.from_dict(
        {"human_label": [0, None, 3], "subset": [None, 1, 2], "mine": [5, -1, 70]}, features=features
    )
    assert labels_of(ds).tolist() == [0, -1, 3]
    assert labels_of(ds, "subset").tolist() == [-1, 1, 2]
    assert labels_of(ds, "mine").tolist() == [5, -1, 70]  # not a schema class label: codes as stored
