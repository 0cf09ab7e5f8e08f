"""Tests for tailtag.losses: hand-computed values, PyTorch references, focal stability."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tailtag.losses import KINDS, WeightedBCEWithLogits, WeightedCrossEntropy, make_loss
from tailtag.weights import class_weights

LN2, LN3, LN5 = math.log(2), math.log(3), math.log(5)

# 2×3 multi-label example. σ(0) = 1/2, σ(ln 3) = 3/4, σ(−ln 3) = 1/4, so
# ℓ = [[ln 2, −ln(3/4), −ln(3/4)], [−ln(1/4), −ln(1/4), ln 2]]
#   = [[ln 2, ln(4/3), ln(4/3)], [2 ln 2, 2 ln 2, ln 2]].
ML_LOGITS = torch.tensor([[0.0, LN3, -LN3], [LN3, -LN3, 0.0]], dtype=torch.float64)
ML_TARGETS = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
# 2×3 single-label example: softmax([0, 0, ln 2]) = [1/4, 1/4, 1/2],
# softmax([ln 3, 0, 0]) = [3/5, 1/5, 1/5]; targets 2 and 1, so p_y = 1/2 and 1/5.
SL_LOGITS = torch.tensor([[0.0, 0.0, LN2], [LN3, 0.0, 0.0]], dtype=torch.float64)
SL_TARGET = torch.tensor([2, 1])
W123 = [1.0, 2.0, 3.0]


def naive_sigmoid_focal(logits, targets, weight, gamma):
    """(1 − p_t)^γ · BCE written directly with pow (finite only for moderate logits)."""
    p = torch.sigmoid(logits)
    p_t = torch.where(targets == 1, p, 1 - p)
    bce = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))
    w = torch.as_tensor(weight, dtype=logits.dtype)
    return ((1 - p_t) ** gamma * bce * w).sum() / (logits.shape[0] * w.sum())


def naive_softmax_focal(logits, target, weight, gamma):
    """(1 − p_y)^γ · (−log p_y) with w_y, normalised by Σ w_y, written directly."""
    p_y = torch.softmax(logits, dim=1)[torch.arange(len(target)), target]
    w_y = torch.as_tensor(weight, dtype=logits.dtype)[target]
    return (w_y * (1 - p_y) ** gamma * -torch.log(p_y)).sum() / w_y.sum()


def cui_modulator(logits, targets, gamma):
    """The modulator as written in Cui et al.'s official code (overflows for very negative z)."""
    return torch.exp(-gamma * targets * logits - gamma * torch.log1p(torch.exp(-logits)))


def random_batch(n=6, c=5, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    targets = (torch.rand(n, c, generator=g) < 0.4).double()
    target = torch.randint(0, c, (n,), generator=g)
    weight = torch.rand(c, generator=g, dtype=torch.float64) + 0.1
    return logits, targets, target, weight


# --- hand-computed values ---------------------------------------------------------------


def test_bce_hand_computed() -> None:
    # row 0: 1·ln2 + 2·ln(4/3) + 3·ln(4/3) = ln2 + 5 ln(4/3)
    # row 1: 1·2ln2 + 2·2ln2 + 3·ln2 = 9 ln2;   divided by N·Σw = 2·6 = 12
    expected = (10 * LN2 + 5 * math.log(4 / 3)) / 12
    loss = WeightedBCEWithLogits(W123).double()(ML_LOGITS, ML_TARGETS)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_bce_focal_hand_computed() -> None:
    # p_t = [[1/2, 3/4, 3/4], [1/4, 1/4, 1/2]],
    # so (1 − p_t)² = [[1/4, 1/16, 1/16], [9/16, 9/16, 1/4]]
    # row 0: 1·(1/4)·ln2 + 2·(1/16)·ln(4/3) + 3·(1/16)·ln(4/3) = (4/16) ln2 + (5/16) ln(4/3)
    # row 1: 1·(9/16)·2ln2 + 2·(9/16)·2ln2 + 3·(1/4)·ln2 = (66/16) ln2;  / 12
    expected = (70 / 16 * LN2 + 5 / 16 * math.log(4 / 3)) / 12
    loss = WeightedBCEWithLogits(W123, gamma=2).double()(ML_LOGITS, ML_TARGETS)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_ce_hand_computed() -> None:
    # −log p_y = ln 2 (row 0, w_2 = 3) and ln 5 (row 1, w_1 = 2): (3 ln2 + 2 ln5) / (3 + 2)
    loss = WeightedCrossEntropy(W123).double()(SL_LOGITS, SL_TARGET)
    assert loss.item() == pytest.approx((3 * LN2 + 2 * LN5) / 5, rel=1e-12)


def test_ce_focal_hand_computed() -> None:
    # (1 − p_y)² = (1/2)² = 1/4 and (4/5)² = 16/25: (3·(1/4)·ln2 + 2·(16/25)·ln5) / 5
    loss = WeightedCrossEntropy(W123, gamma=2).double()(SL_LOGITS, SL_TARGET)
    assert loss.item() == pytest.approx((0.75 * LN2 + 32 / 25 * LN5) / 5, rel=1e-12)


# --- PyTorch references -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_bce_uniform_weights_equal_pytorch_mean(seed: int) -> None:
    logits, targets, _, _ = random_batch(seed=seed)
    reference = F.binary_cross_entropy_with_logits(logits, targets)
    for value in (1.0, 7.0):
        loss = WeightedBCEWithLogits(torch.full((5,), value)).double()(logits, targets)
        torch.testing.assert_close(loss, reference, rtol=1e-14, atol=0)


def test_bce_differs_from_pytorch_weight_by_the_summed_weights() -> None:
    # PyTorch's weight= divides by N·C; ours by N·Σw: ours = theirs · C / Σw
    logits, targets, _, weight = random_batch()
    theirs = F.binary_cross_entropy_with_logits(logits, targets, weight=weight)
    ours = WeightedBCEWithLogits(weight).double()(logits, targets)
    w = WeightedBCEWithLogits(weight).weight.double()  # as stored (float32)
    torch.testing.assert_close(ours, theirs * 5 / w.sum(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("seed", range(3))
def test_ce_equals_pytorch_weighted_cross_entropy(seed: int) -> None:
    logits, _, target, weight = random_batch(seed=seed)
    module = WeightedCrossEntropy(weight).double()
    reference = F.cross_entropy(logits, target, weight=module.weight)
    torch.testing.assert_close(module(logits, target), reference, rtol=1e-14, atol=0)
    # float32 logits against the float32 buffer as stored
    module = WeightedCrossEntropy(weight)
    reference = F.cross_entropy(logits.float(), target, weight=module.weight)
    torch.testing.assert_close(module(logits.float(), target), reference)


def test_make_loss_kinds() -> None:
    assert KINDS == ("multi_label", "single_label")
    assert isinstance(make_loss("multi_label", W123), WeightedBCEWithLogits)
    loss = make_loss("single_label", W123, gamma=1.5)
    assert isinstance(loss, WeightedCrossEntropy)
    assert loss.gamma == 1.5
    with pytest.raises(ValueError, match=r"unknown attribute kind 'multi'.*'single_label'"):
        make_loss("multi", W123)


def test_iew_weights_plug_in() -> None:
    weight = class_weights([500, 50, 5], scheme="iew", beta=0.99)
    logits, targets, _, _ = random_batch(c=3)
    loss = make_loss("multi_label", weight, gamma=1.0)(logits.float(), targets.float())
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)


# --- invariants -------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_zero_weight_label_equals_dropping_the_column(gamma: float) -> None:
    logits, targets, _, weight = random_batch()
    weight[2] = 0.0
    keep = [0, 1, 3, 4]
    full = WeightedBCEWithLogits(weight, gamma=gamma).double()(logits, targets)
    dropped = WeightedBCEWithLogits(weight[keep], gamma=gamma).double()(
        logits[:, keep], targets[:, keep]
    )
    torch.testing.assert_close(full, dropped, rtol=1e-14, atol=0)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_zero_weight_class_equals_dropping_its_rows(gamma: float) -> None:
    logits, _, _, weight = random_batch(n=8)
    target = torch.tensor([0, 2, 1, 2, 4, 3, 2, 0])
    weight[2] = 0.0
    rows = target != 2
    module = WeightedCrossEntropy(weight, gamma=gamma).double()
    torch.testing.assert_close(
        module(logits, target), module(logits[rows], target[rows]), rtol=1e-14, atol=0
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_rescaling_weights_leaves_loss_unchanged(kind: str, gamma: float) -> None:
    logits, targets, target, weight = random_batch()
    y = targets if kind == "multi_label" else target
    a = make_loss(kind, weight, gamma=gamma).double()(logits, y)
    b = make_loss(kind, weight * 0.125, gamma=gamma).double()(logits, y)  # exact in binary
    torch.testing.assert_close(a, b, rtol=1e-14, atol=0)
    c = make_loss(kind, weight * 37.0, gamma=gamma).double()(logits, y)
    torch.testing.assert_close(a, c, rtol=1e-6, atol=0)


def test_permuting_labels_with_their_weights_leaves_bce_unchanged() -> None:
    logits, targets, _, weight = random_batch()
    perm = [3, 0, 4, 2, 1]
    a = WeightedBCEWithLogits(weight, gamma=1.0).double()(logits, targets)
    b = WeightedBCEWithLogits(weight[perm], gamma=1.0).double()(logits[:, perm], targets[:, perm])
    torch.testing.assert_close(a, b, rtol=1e-14, atol=0)


# --- focal ------------------------------------------------------------------------------


def test_focal_gamma_zero_is_plain() -> None:
    logits, targets, target, weight = random_batch()
    plain_bce = WeightedBCEWithLogits(weight).double()(logits, targets)
    assert WeightedBCEWithLogits(weight, gamma=0.0).double()(logits, targets) == plain_bce
    # the focal code path (γ > 0) has the same normalisation as the plain loss
    tiny = WeightedBCEWithLogits(weight, gamma=1e-9).double()(logits, targets)
    torch.testing.assert_close(tiny, plain_bce, rtol=1e-7, atol=0)
    plain_ce = WeightedCrossEntropy(weight).double()(logits, target)
    tiny = WeightedCrossEntropy(weight, gamma=1e-9).double()(logits, target)
    torch.testing.assert_close(tiny, plain_ce, rtol=1e-7, atol=0)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("seed", range(2))
def test_focal_matches_naive_on_moderate_logits(gamma: float, seed: int) -> None:
    logits, targets, target, weight = random_batch(n=16, seed=seed)
    bce = WeightedBCEWithLogits(weight, gamma=gamma).double()
    w = bce.weight  # float32 values as stored, cast to float64 by .double()
    torch.testing.assert_close(
        bce(logits, targets), naive_sigmoid_focal(logits, targets, w, gamma), rtol=1e-12, atol=0
    )
    ce = WeightedCrossEntropy(weight, gamma=gamma).double()
    torch.testing.assert_close(
        ce(logits, target), naive_softmax_focal(logits, target, w, gamma), rtol=1e-12, atol=0
    )


def test_sigmoid_modulator_sign_conventions() -> None:
    # Cui et al.'s exp(−γ·y·z − γ·log1p(exp(−z))) equals (1 − p_t)^γ: y = 1 gives
    # (e^{−z}/(1 + e^{−z}))^γ = (1 − σ(z))^γ; y = 0 gives (1/(1 + e^{−z}))^γ = σ(z)^γ.
    z = torch.linspace(-6, 6, 25, dtype=torch.float64).repeat(2, 1)
    y = torch.stack([torch.ones(25), torch.zeros(25)]).double()
    p = torch.sigmoid(z)
    one_minus_p_t = torch.where(y == 1, 1 - p, p)
    for gamma in (0.5, 2.0):
        torch.testing.assert_close(cui_modulator(z, y, gamma), one_minus_p_t**gamma)
        # and the loss uses exactly that modulator, per element
        for i, j in ((0, 3), (1, 20)):
            weight = torch.zeros(25, dtype=torch.float64)
            weight[j] = 1.0
            module = WeightedBCEWithLogits(weight, gamma=gamma).double()
            bce = F.binary_cross_entropy_with_logits(z[i, j], y[i, j])
            expected = one_minus_p_t[i, j] ** gamma * bce
            torch.testing.assert_close(module(z[i : i + 1], y[i : i + 1]), expected)


def test_focal_values_at_extreme_logits() -> None:
    z = torch.tensor([[100.0, -100.0, -100.0, 100.0]])
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    # per element: confident right → ≈ 0; confident wrong → BCE 100 with modulator 1
    loss = WeightedBCEWithLogits([1.0] * 4, gamma=2)(z, y)
    assert loss.item() == pytest.approx(200 / 4, rel=1e-6)
    # the official code's log1p(exp(−z)) overflows in float32 at z = −100 (wrong modulator 0)
    assert cui_modulator(z, y, 2.0)[0, 1].item() == 0.0
    logits = torch.tensor([[100.0, -100.0, -100.0], [100.0, -100.0, -100.0]])
    loss = WeightedCrossEntropy([1.0, 1.0, 1.0], gamma=0.5)(logits, torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(200 / 2, rel=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_finite_for_extreme_logits(kind: str, gamma: float, dtype: torch.dtype) -> None:
    values = torch.tensor([[100.0, -100.0, 100.0], [-100.0, 100.0, -100.0], [100.0, 100.0, -100]])
    logits = values.to(dtype).requires_grad_()
    if kind == "multi_label":
        y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]], dtype=dtype)
    else:
        y = torch.tensor([0, 1, 2])
    loss = make_loss(kind, W123, gamma=gamma).to(dtype)(logits, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()


def test_naive_focal_gradient_is_not_finite_at_extreme_logits() -> None:
    # Why the stable forms matter: pow(1 − p_t, 0.5) at p_t = 1 has an infinite derivative.
    logits = torch.tensor([[100.0, -100.0]], requires_grad=True)
    naive_sigmoid_focal(logits, torch.tensor([[1.0, 0.0]]), [1.0, 1.0], 0.5).backward()
    assert not torch.isfinite(logits.grad).all()


# --- module behaviour -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_weight_is_a_float32_buffer_that_moves(kind: str) -> None:
    module = make_loss(kind, np.array([1, 2, 3]))
    assert module.weight.dtype == torch.float32
    assert list(module.state_dict()) == ["weight"]
    torch.testing.assert_close(module.state_dict()["weight"], torch.tensor(W123))
    assert not list(module.parameters())
    module = module.to(torch.float64)
    assert module.weight.dtype == torch.float64
    restored = make_loss(kind, [0.0, 0.0, 1.0])
    restored.load_state_dict(make_loss(kind, W123).state_dict())
    torch.testing.assert_close(restored.weight, torch.tensor(W123))


def test_input_weight_is_copied() -> None:
    weight = torch.tensor(W123)
    module = WeightedBCEWithLogits(weight)
    weight[0] = 100.0
    assert module.weight[0].item() == 1.0


def test_half_precision_logits_are_computed_in_float32() -> None:
    logits, targets, target, weight = random_batch()
    for kind, y in (("multi_label", targets.float()), ("single_label", target)):
        module = make_loss(kind, weight, gamma=1.0)
        loss = module(logits.bfloat16(), y)
        assert loss.dtype == torch.float32
        reference = module(logits.bfloat16().float(), y)
        torch.testing.assert_close(loss, reference)


# --- errors -----------------------------------------------------------------------------


def test_bce_shape_and_dtype_errors() -> None:
    module = WeightedBCEWithLogits(W123)
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="weight has 3 entries but logits have 4 columns"):
        module(torch.zeros(2, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"targets have shape \(2, 2\)"):
        module(z, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"targets must be floating point.*torch.int64"):
        module(z, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="logits must be 2-D"):
        module(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="logits must be floating point"):
        module(torch.zeros(2, 3, dtype=torch.long), z)
    with pytest.raises(ValueError, match="empty batch"):
        module(torch.zeros(0, 3), torch.zeros(0, 3))


def test_ce_shape_and_dtype_errors() -> None:
    module = WeightedCrossEntropy(W123)
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="weight has 3 entries but logits have 2 columns"):
        module(torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"one class index per row \(2\), got shape \(2, 3\)"):
        module(z, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        module(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="integer class indices, got dtype torch.float32"):
        module(z, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target of row 1 is 3, outside \[0, 3\)"):
        module(z, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"target of row 0 is -1"):
        WeightedCrossEntropy(W123, gamma=1)(z, torch.tensor([-1, 0]))
    # other integer dtypes are accepted
    torch.testing.assert_close(
        module(z, torch.tensor([0, 2], dtype=torch.int32)), module(z, torch.tensor([0, 2]))
    )


@pytest.mark.parametrize(
    ("weight", "match"),
    [
        ([], "non-empty 1-D"),
        ([[1.0, 2.0]], "non-empty 1-D"),
        ([1.0, -1.0], "weight of label 1 must be finite and >= 0"),
        ([1.0, math.nan], "weight of label 1 must be finite"),
        ([math.inf, 1.0], "weight of label 0 must be finite"),
        ([0.0, 0.0], "all zeros"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_weights_are_errors(kind: str, weight: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_loss(kind, weight)


@pytest.mark.parametrize("gamma", [-1.0, math.nan, math.inf, "2"])
def test_bad_gamma_is_an_error(gamma: object) -> None:
    with pytest.raises(ValueError, match="gamma must be"):
        WeightedBCEWithLogits(W123, gamma=gamma)


def test_single_label_needs_two_classes() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        WeightedCrossEntropy([1.0])
    WeightedBCEWithLogits([1.0])  # one multi-label label is fine
