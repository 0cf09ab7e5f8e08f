"""Tests for tailtag.weights.class_weights: hand-computed values, references, invariants."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from tailtag.weights import SCHEMES, class_weights


def effective_number(n: int, beta: float) -> float:
    """E(n) = (1 − βⁿ) / (1 − β), written directly (a slow, independent reference)."""
    return (1.0 - beta**n) / (1.0 - beta)


# --- hand-computed values ---------------------------------------------------------------


def test_nw_is_all_ones_under_every_normalisation() -> None:
    counts = [5, 50, 500]
    np.testing.assert_array_equal(class_weights(counts, scheme="nw"), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(class_weights(counts, scheme="nw", normalize=None), [1, 1, 1])
    np.testing.assert_allclose(class_weights(counts, scheme="nw", normalize="one"), [1 / 3] * 3)


def test_ifw_raw_lambda_and_power() -> None:
    counts = [4, 16, 100]
    # λ / n: 1/4, 1/16, 1/100
    np.testing.assert_allclose(
        class_weights(counts, scheme="ifw", normalize=None), [0.25, 0.0625, 0.01], rtol=1e-15
    )
    # λ = 50: 50/4, 50/16, 50/100
    np.testing.assert_allclose(
        class_weights(counts, scheme="ifw", lam=50, normalize=None), [12.5, 3.125, 0.5]
    )
    # power 0.5 (inverse square root): 1/2, 1/4, 1/10
    np.testing.assert_allclose(
        class_weights(counts, scheme="ifw", power=0.5, normalize=None), [0.5, 0.25, 0.1]
    )
    # power 0: λ for every label
    np.testing.assert_allclose(
        class_weights(counts, scheme="ifw", power=0, lam=3, normalize=None), [3, 3, 3]
    )


def test_ifw_normalised() -> None:
    # raw 1/4, 1/16, 1/100 sum to (25 + 6.25 + 1)/100 = 0.3225
    raw = np.array([0.25, 0.0625, 0.01])
    np.testing.assert_allclose(
        class_weights([4, 16, 100], scheme="ifw"), raw * 3 / 0.3225, rtol=1e-14
    )
    np.testing.assert_allclose(
        class_weights([4, 16, 100], scheme="ifw", normalize="one"),
        [0.25 / 0.3225, 0.0625 / 0.3225, 0.01 / 0.3225],
        rtol=1e-14,
    )


def test_iew_raw_values_beta_099() -> None:
    # E(1) = 1; E(10) = (1 − 0.99^10)/0.01 = (1 − 0.9043820750088)/0.01 = 9.56179249912;
    # E(100) = (1 − 0.99^100)/0.01 = (1 − 0.3660323412732)/0.01 = 63.39676587268.
    w = class_weights([1, 10, 100], scheme="iew", beta=0.99, normalize=None)
    np.testing.assert_allclose(w, [1.0, 1 / 9.56179249912, 1 / 63.39676587268], rtol=1e-11)


def test_iew_normalised_sums() -> None:
    counts = [3, 40, 700, 9000]
    for normalize, total in (("num_classes", 4.0), ("one", 1.0)):
        w = class_weights(counts, scheme="iew", beta=0.999, normalize=normalize)
        assert w.sum() == pytest.approx(total, rel=1e-14)
        raw = [1 / effective_number(n, 0.999) for n in counts]
        np.testing.assert_allclose(w, np.array(raw) * total / sum(raw), rtol=1e-12)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("normalize", ["num_classes", "one"])
def test_lambda_cancels_under_normalisation(scheme: str, normalize: str) -> None:
    counts = [2, 30, 400]
    a = class_weights(counts, scheme=scheme, normalize=normalize, lam=1.0)
    b = class_weights(counts, scheme=scheme, normalize=normalize, lam=123.0)
    np.testing.assert_allclose(a, b, rtol=1e-14)


# --- limits of β ------------------------------------------------------------------------


def test_beta_zero_gives_uniform_weights() -> None:
    # E(n) = (1 − 0^n)/1 = 1 for every n ≥ 1
    w = class_weights([1, 7, 10_000], scheme="iew", beta=0.0, normalize=None)
    np.testing.assert_array_equal(w, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(class_weights([1, 7, 10_000], scheme="iew", beta=0.0), [1, 1, 1])


def test_beta_near_one_approaches_ifw() -> None:
    # E(n) = n·(1 − (n − 1)(1 − β)/2 + ...): at β = 1 − 1e-6, n ≤ 100, the relative
    # deviation from n is below 99·1e-6/2 ≈ 5e-5.
    counts = [1, 10, 100]
    iew = class_weights(counts, scheme="iew", beta=0.999999, normalize=None)
    np.testing.assert_allclose(iew, [1.0, 0.1, 0.01], rtol=6e-5)
    assert not np.allclose(iew, [1.0, 0.1, 0.01], rtol=1e-6)  # close, not equal
    np.testing.assert_allclose(
        class_weights(counts, scheme="iew", beta=0.999999),
        class_weights(counts, scheme="ifw"),
        rtol=1e-4,
    )


def test_iew_flattens_for_large_counts() -> None:
    beta = 0.99  # 1/(1 − β) = 100
    w = class_weights([10, 100, 300, 3000], scheme="iew", beta=beta, normalize=None)
    # w300 / w3000 = E(3000)/E(300) = (1 − 0.99^3000)/(1 − 0.99^300)
    #              = (1 − 8.1e-14)/(1 − 0.0490409) = 1.0515699
    assert w[2] / w[3] == pytest.approx(1 / (1 - 0.99**300), rel=1e-12)
    assert w[2] / w[3] == pytest.approx(1.0515699, rel=1e-7)
    assert 1 - w[3] / w[2] < 0.05  # 300 and 3000 differ by under 5 %
    # w10 / w100 = E(100)/E(10) = 63.3967659 / 9.5617925 = 6.6302177, while IFW gives 10
    assert w[0] / w[1] == pytest.approx(6.6302177, rel=1e-7)
    # beyond n ≫ 100 the effective number saturates at 1/(1 − β) = 100
    assert w[3] == pytest.approx(0.01, rel=1e-12)


@pytest.mark.parametrize(("beta", "n"), [(1 - 1e-12, 5), (1 - 1e-10, 1000), (1 - 1e-9, 3)])
def test_iew_is_stable_for_beta_near_one(beta: float, n: int) -> None:
    # Exact rational reference: (1 − β)/(1 − βⁿ) with β the float64 value as a Fraction.
    # E.g. β = 1 − 1e-9, n = 3: E(3) = 3 − 3·1e-9 + 1e-18, w = 0.33333333366666667.
    # Computing 1 − βⁿ directly in float64 is off by ~1e-11 to 1e-9 relative here.
    b = Fraction(beta)
    exact = float((1 - b) / (1 - b**n))
    w = class_weights([n], scheme="iew", beta=beta, normalize=None)
    assert w[0] == pytest.approx(exact, rel=1e-14)


def test_iew_is_finite_for_huge_counts() -> None:
    # n far beyond 1/(1 − β): β^n underflows to 0 and E(n) = 1/(1 − β) = 100.
    w = class_weights([10**9, 10**15], scheme="iew", beta=0.99, normalize=None)
    np.testing.assert_allclose(w, [0.01, 0.01], rtol=1e-15)


def test_iew_matches_direct_formula_over_a_grid() -> None:
    counts = [1, 2, 5, 20, 83, 387, 5000]
    for beta in (0.5, 0.9, 0.99, 0.999, 0.9999):
        w = class_weights(counts, scheme="iew", beta=beta, normalize=None)
        ref = [1 / effective_number(n, beta) for n in counts]
        np.testing.assert_allclose(w, ref, rtol=1e-10)


# --- references and invariants ----------------------------------------------------------


def test_ifw_is_proportional_to_sklearn_balanced() -> None:
    counts = np.array([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
    classes = np.arange(counts.size)
    y = np.repeat(classes, counts)
    balanced = compute_class_weight("balanced", classes=classes, y=y)  # n / (C · n_c)
    ours = class_weights(counts, scheme="ifw", normalize=None)
    ratio = balanced / ours
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)
    assert ratio[0] == pytest.approx(counts.sum() / counts.size)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_permuting_counts_permutes_weights(scheme: str) -> None:
    counts = np.array([7, 1200, 33, 1, 250])
    perm = np.array([3, 0, 4, 1, 2])
    w = class_weights(counts, scheme=scheme, beta=0.999)
    np.testing.assert_allclose(class_weights(counts[perm], scheme=scheme, beta=0.999), w[perm])


@pytest.mark.parametrize("scheme", ["ifw", "iew"])
def test_rarer_labels_weigh_more(scheme: str) -> None:
    w = class_weights([1000, 100, 10, 1], scheme=scheme, beta=0.999)
    assert np.all(np.diff(w) > 0)


def test_inputs_are_not_modified_and_output_is_float64() -> None:
    counts = np.array([3, 4], dtype=np.int32)
    out = class_weights(counts, scheme="ifw")
    assert out.dtype == np.float64
    assert out.shape == (2,)
    np.testing.assert_array_equal(counts, [3, 4])
    # list, tuple, integral floats are accepted alike
    np.testing.assert_array_equal(class_weights((3.0, 4.0), scheme="ifw"), out)


# --- zero counts and the active mask ----------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_zero_count_is_an_error(scheme: str) -> None:
    with pytest.raises(ValueError, match=r"label 1 has count 0"):
        class_weights([3, 0, 5], scheme=scheme)
    with pytest.raises(ValueError, match=r"label 1 \('glam'\) has count 0"):
        class_weights([3, 0, 5], scheme=scheme, labels=["boho", "glam", "edgy"])


def test_inactive_labels_get_zero_and_are_left_out_of_normalisation() -> None:
    counts = [4, 0, 16, 100]
    active = np.array([True, False, True, True])
    w = class_weights(counts, scheme="ifw", active=active)
    # active raw weights 1/4, 1/16, 1/100 (sum 0.3225) rescaled to sum to 3 active labels
    np.testing.assert_allclose(w, [0.25 * 3 / 0.3225, 0, 0.0625 * 3 / 0.3225, 0.01 * 3 / 0.3225])
    assert w[1] == 0.0
    assert w.sum() == pytest.approx(3.0)
    # equals the weights of the active labels alone
    np.testing.assert_allclose(w[active], class_weights([4, 16, 100], scheme="ifw"))
    # an inactive label with a non-zero count is left out too
    w = class_weights([4, 9, 16], scheme="nw", normalize="one", active=[True, False, True])
    np.testing.assert_array_equal(w, [0.5, 0.0, 0.5])


def test_active_mask_errors() -> None:
    with pytest.raises(ValueError, match="no label is active"):
        class_weights([0, 0], scheme="nw", active=[False, False])
    with pytest.raises(ValueError, match="boolean mask"):
        class_weights([1, 2], scheme="nw", active=[1, 0])
    with pytest.raises(ValueError, match=r"active has shape \(3,\)"):
        class_weights([1, 2], scheme="nw", active=[True, True, False])


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5, math.nan, math.inf])
def test_beta_outside_unit_interval_is_an_error(beta: float) -> None:
    with pytest.raises(ValueError, match="beta must be"):
        class_weights([1, 2], scheme="iew", beta=beta)


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        ([], "counts is empty"),
        ([[1, 2]], "must be 1-D"),
        ([3, -1], r"count of label 1 is negative"),
        ([3, 2.5], r"count of label 1 is not an integer"),
        ([3, math.nan], r"count of label 1 is not finite"),
        ([math.inf, 1], r"count of label 0 is not finite"),
        (["a", "b"], "must be integers"),
        ([True, False], "must be integers"),
    ],
)
def test_bad_counts_are_errors(counts: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        class_weights(counts, scheme="ifw")


def test_bad_count_error_names_the_label() -> None:
    with pytest.raises(ValueError, match=r"label 2 \('retro'\) is negative"):
        class_weights([1, 2, -3], scheme="nw", labels=["a", "b", "retro"])
    with pytest.raises(ValueError, match="labels has 2 names but counts has 3"):
        class_weights([1, 2, 3], scheme="nw", labels=["a", "b"])


def test_unknown_scheme_and_normalisation_are_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown weighting scheme 'cb'.*'nw', 'ifw', 'iew'"):
        class_weights([1, 2], scheme="cb")
    with pytest.raises(ValueError, match=r"unknown normalize='sum'"):
        class_weights([1, 2], scheme="nw", normalize="sum")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam": 0.0}, "lam must be > 0"),
        ({"lam": -1}, "lam must be > 0"),
        ({"power": -0.5}, "power must be >= 0"),
        ({"power": math.nan}, "power must be finite"),
        ({"beta": "0.9"}, "beta must be a real number"),
    ],
)
def test_bad_options_are_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        class_weights([1, 2], scheme="ifw", **kwargs)
