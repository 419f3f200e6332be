"""MultiTaskLoss: masked heads (all-null heads give zero gradient), the three balancings, saved state."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from affectnetplus_hf.torch import ccc, soft_cross_entropy  # noqa: E402
from affectnetplus_hf.torch.multitask import HEADS, OUTER_EYE_CORNERS, MultiTaskLoss  # noqa: E402

NAN = float("nan")


def make_batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    landmarks = torch.rand(n, 68, 2, generator=g) * 100
    landmarks[:, OUTER_EYE_CORNERS[0]] = torch.tensor([30.0, 50.0])
    landmarks[:, OUTER_EYE_CORNERS[1]] = torch.tensor([70.0, 50.0])  # inter-ocular distance 40
    batch = {
        "soft_label": torch.rand(n, 8, generator=g),
        "valence": torch.rand(n, generator=g) * 2 - 1,
        "arousal": torch.rand(n, generator=g) * 2 - 1,
        "age": torch.rand(n, generator=g) * 60 + 10,
        "gender": torch.softmax(torch.randn(n, 2, generator=g), 1),
        "race": torch.softmax(torch.randn(n, 6, generator=g), 1),
        "head_pose": torch.randn(n, 3, generator=g) * 0.2,
        "landmarks": landmarks,
    }
    for key in ("valence", "arousal", "age"):
        batch[f"{key}_valid"] = ~torch.isnan(batch[key])
    return batch


def make_outputs(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "expression": (n, 8),
        "valence": (n,),
        "arousal": (n,),
        "landmarks": (n, 68, 2),
        "age": (n,),
        "gender": (n, 2),
        "race": (n, 6),
        "head_pose": (n, 3),
    }
    return {
        head: (torch.randn(*shape, generator=g) * (50 if head in ("landmarks", "age") else 1)).requires_grad_()
        for head, shape in shapes.items()
    }


def null_out(batch, heads):
    batch = dict(batch)
    names = {"expression": "soft_label"}
    for head in heads:
        key = names.get(head, head)
        batch[key] = torch.full_like(batch[key], NAN)
        if f"{key}_valid" in batch:
            batch[f"{key}_valid"] = torch.zeros_like(batch[f"{key}_valid"])
    return batch


@pytest.mark.parametrize("balancing", ["fixed", "uncertainty", "ema"])
def test_all_null_heads_get_zero_gradient(balancing):
    nulled = ("valence", "age", "race", "landmarks", "head_pose")
    batch = null_out(make_batch(), nulled)
    outputs = make_outputs()
    criterion = MultiTaskLoss(normalize="sum", balancing=balancing)
    total, parts = criterion(outputs, batch)
    total.backward()
    assert math.isfinite(total.item())
    for head in HEADS:
        grad = outputs[head].grad
        assert grad is not None and torch.isfinite(grad).all(), head
        if head in nulled:
            assert torch.count_nonzero(grad) == 0 and math.isnan(parts[head]), head
        else:
            assert torch.count_nonzero(grad) > 0 and math.isfinite(parts[head]), head
    if balancing == "uncertainty":
        assert torch.count_nonzero(criterion.log_vars.grad[[HEADS.index(h) for h in nulled]]) == 0


def test_partly_null_rows_are_left_out_of_each_head():
    batch, outputs = make_batch(), make_outputs()
    plain = {head: value.detach() for head, value in outputs.items()}
    batch["valence"][:2] = NAN
    batch["valence_valid"][:2] = False
    batch["soft_label"][3] = NAN
    criterion = MultiTaskLoss(("expression", "valence", "landmarks"), normalize="sum", va_loss="ccc")
    _, parts = criterion(outputs, batch)
    keep = torch.tensor([True, True, True, False, True, True])
    assert parts["expression"] == pytest.approx(
        float(soft_cross_entropy(plain["expression"][keep], batch["soft_label"][keep], normalize="sum")), rel=1e-6
    )
    assert parts["valence"] == pytest.approx(1 - float(ccc(plain["valence"][2:], batch["valence"][2:])), rel=1e-6)
    error = (plain["landmarks"] - batch["landmarks"]).norm(dim=-1).mean(dim=1) / 40.0
    assert parts["landmarks"] == pytest.approx(float(error.mean()), rel=1e-5)
    grad_rows = torch.autograd.grad(criterion(outputs, batch)[0], outputs["valence"])[0]
    assert torch.count_nonzero(grad_rows[:2]) == 0 and torch.count_nonzero(grad_rows[2:]) > 0


def test_fixed_weights_and_mse():
    batch, outputs = make_batch(), make_outputs()
    criterion = MultiTaskLoss(("valence", "head_pose"), va_loss="mse", weights={"valence": 2.0})
    total, parts = criterion(outputs, batch)
    assert total.item() == pytest.approx(2 * parts["valence"] + parts["head_pose"], rel=1e-6)
    assert criterion.current_weights() == {"valence": 2.0, "head_pose": 1.0}
    with pytest.raises(ValueError, match="normalize"):
        MultiTaskLoss(("expression",))


def test_ema_scales_by_observed_magnitude_and_state_round_trips():
    criterion = MultiTaskLoss(("age", "head_pose"), balancing="ema", decay=0.5)
    batch = make_batch()
    outputs = make_outputs()
    _, first = criterion(outputs, batch)
    assert criterion.current_weights()["age"] == pytest.approx(1 / first["age"], rel=1e-5)
    total, _ = criterion(outputs, batch)  # same losses: each head contributes 1
    assert total.item() == pytest.approx(2.0, rel=1e-5)
    saved = criterion.state_dict()
    restored = MultiTaskLoss(("age", "head_pose"), balancing="ema", decay=0.5)
    restored.load_state_dict(saved)
    assert restored.current_weights() == criterion.current_weights()
    criterion.eval()  # evaluation does not move the averages
    before = criterion.current_weights()
    criterion(make_outputs(seed=5), batch)
    assert criterion.current_weights() == before


def test_uncertainty_weights_are_learned_and_saved_with_the_model():
    """With fixed losses L_h, exp(-s) L + s is least at s = log L: the learned weight exp(-s) tends to 1 / L."""
    batch, outputs = make_batch(), {head: value.detach() for head, value in make_outputs().items()}
    batch["arousal"] = batch["arousal"] * 10  # a task with a larger loss
    criterion = MultiTaskLoss(("valence", "arousal"), balancing="uncertainty", va_loss="mse")
    optimiser = torch.optim.SGD(criterion.parameters(), lr=0.1)
    for _ in range(300):
        total, losses = criterion(outputs, batch)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    weights = criterion.current_weights()
    assert weights["valence"] == pytest.approx(1 / losses["valence"], rel=0.02)
    assert weights["arousal"] == pytest.approx(1 / losses["arousal"], rel=0.02)
    assert weights["arousal"] < weights["valence"]  # the task with the larger loss is down-weighted
    model = torch.nn.Linear(4, 2)
    holder = torch.nn.ModuleDict({"model": model, "criterion": criterion})
    again = torch.nn.ModuleDict(
        {"model": torch.nn.Linear(4, 2), "criterion": MultiTaskLoss(("valence", "arousal"), balancing="uncertainty")}
    )
    again.load_state_dict(holder.state_dict())
    assert again["criterion"].current_weights() == weights


def test_a_head_output_of_the_wrong_shape_is_named():
    """A flat ``N x 136`` landmark output, an ``N x 1`` valence column or a batch without the
    head's key: one message naming the head, the shapes and what was expected."""
    criterion = MultiTaskLoss(heads=("landmarks", "valence", "race"))
    outputs = make_outputs()
    with pytest.raises(ValueError, match=r"landmarks output has shape \(6, 136\).*\(6, 68, 2\).*N x 68 x 2"):
        criterion({**outputs, "landmarks": outputs["landmarks"].flatten(1)}, make_batch())
    with pytest.raises(ValueError, match=r"valence output has shape \(6, 1\).*N values"):
        criterion({**outputs, "valence": outputs["valence"][:, None]}, make_batch())
    batch = make_batch()
    del batch["race"]
    with pytest.raises(KeyError, match="the race head trains on the batch's 'race'"):
        criterion(outputs, batch)
    # one head given by name
    assert MultiTaskLoss(heads="valence").heads == ("valence",)
