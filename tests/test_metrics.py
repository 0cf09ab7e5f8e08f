"""Tests for tailtag.metrics: exact hand-computed values, scikit-learn as reference, invariants."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve

from tailtag.metrics import (
    NO_TEST_POSITIVE,
    ThresholdPick,
    evaluate_attribute,
    group_of,
    pick_threshold,
    pr_curve_table,
)

# Six items whose PR points are worked out by hand (predicted positive = score >= t):
#   t=0.10: 3/6 = 0.5,  R 1      t=0.35: 3/5 = 0.6,  R 1      t=0.40: 2/4 = 0.5, R 2/3
#   t=0.50: 2/3,        R 2/3    t=0.80: 2/2 = 1,    R 2/3    t=0.90: 1/1 = 1,   R 1/3
# plus the thresholdless (precision 1, recall 0) end point.
Y6 = np.array([0, 0, 1, 1, 0, 1])
S6 = np.array([0.1, 0.4, 0.35, 0.8, 0.5, 0.9])


def reference_ap(y: np.ndarray, s: np.ndarray) -> float:
    """Slow step-sum AP: Σ over distinct thresholds, high to low, of ΔR · P."""
    n_pos = y.sum()
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        predicted = s >= t
        tp = int((predicted & (y == 1)).sum())
        recall = tp / n_pos
        ap += (recall - prev_recall) * tp / int(predicted.sum())
        prev_recall = recall
    return ap


def assert_plain_json(value, path="metrics"):
    """Only Python dict/list/str/int/float/bool/None, no numpy scalars, no NaN."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, path
            assert_plain_json(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_plain_json(item, f"{path}[{i}]")
    else:
        assert type(value) in (str, int, float, bool, type(None)), (path, type(value))
        if type(value) is float:
            assert math.isfinite(value), path


# --- pick_threshold -------------------------------------------------------------------------


def test_pick_threshold_hand_computed():
    # 3/5 == 0.6 exactly in floating point, so t=0.35 qualifies and has recall 1.
    assert pick_threshold(Y6, S6, min_precision=0.6) == ThresholdPick(0.35, 0.6, 1.0, True)


def test_pick_threshold_ties_take_the_higher_threshold():
    # Above 0.6: t=0.5 and t=0.8 both have recall 2/3; 0.8 has precision 1.
    pick = pick_threshold(Y6, S6, min_precision=0.61)
    assert pick == ThresholdPick(0.8, 1.0, 2 / 3, True)
    assert pick_threshold(Y6, S6, min_precision=1.0) == ThresholdPick(0.8, 1.0, 2 / 3, True)


def test_pick_threshold_zero_precision_keeps_the_tie_rule():
    # Every point qualifies; t=0.1 and t=0.35 both have recall 1, and 0.35 is higher.
    assert pick_threshold(Y6, S6, min_precision=0.0) == ThresholdPick(0.35, 0.6, 1.0, True)


def test_pick_threshold_ignores_the_thresholdless_end_point():
    # The only point with precision >= 0.6 is the (1, 0) end point, which has no threshold.
    y, s = np.array([1, 0, 0]), np.array([0.1, 0.5, 0.9])
    precision, recall, _ = precision_recall_curve(y, s)
    assert (precision[-1], recall[-1]) == (1.0, 0.0)
    pick = pick_threshold(y, s, min_precision=0.6)
    assert pick.reachable is False
    assert pick.threshold is None and pick.precision is None and pick.recall is None
    assert "never reaches 0.6" in pick.reason


def test_pick_threshold_no_positive():
    pick = pick_threshold([0, 0, 0], [0.2, 0.5, 0.9])
    assert (pick.threshold, pick.reachable) == (None, False)
    assert "no positive" in pick.reason


def test_pick_threshold_ties_in_scores():
    # Tied scores form one point: t=0.5 flags items 1-3 (2 positives): precision 2/3.
    pick = pick_threshold([0, 1, 0, 1], [0.1, 0.5, 0.5, 0.5], min_precision=0.6)
    assert pick == ThresholdPick(0.5, 2 / 3, 1.0, True)


@pytest.mark.parametrize(
    ("y", "s", "kwargs", "match"),
    [
        ([0, 1], [0.1], {}, "shape"),
        ([0, 2], [0.1, 0.2], {}, "only 0 and 1"),
        ([0, 1], [0.1, np.nan], {}, "finite"),
        ([[0, 1]], [[0.1, 0.2]], {}, "1-D"),
        ([0, 1], [0.1, 0.2], {"min_precision": 1.5}, "min_precision"),
    ],
)
def test_pick_threshold_rejects_bad_input(y, s, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pick_threshold(y, s, **kwargs)


# --- groups ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("support", "group"),
    [(0, "tail"), (19, "tail"), (20, "medium"), (99, "medium"), (100, "head"), (5000, "head")],
)
def test_group_boundaries(support, group):
    assert group_of(support) == group


def test_evaluate_groups_at_the_boundaries():
    y = np.eye(4, dtype=int)[[0, 1, 2, 3, 0, 1, 2, 3]]
    s = np.random.default_rng(0).random(y.shape)
    m = evaluate_attribute(
        labels=["a", "b", "c", "d"],
        kind="multi_label",
        y_val=y,
        scores_val=s,
        y_test=y,
        scores_test=s,
        support_train={"a": 100, "b": 99, "c": 20, "d": 19},
    )
    assert [m["per_label"][x]["group"] for x in "abcd"] == ["head", "medium", "medium", "tail"]
    assert {g: m["groups"][g]["n_labels"] for g in m["groups"]} == {
        "head": 1,
        "medium": 2,
        "tail": 1,
    }
    aps = {x: m["per_label"][x]["ap"] for x in "abcd"}
    assert m["groups"]["medium"]["macro_ap"] == pytest.approx((aps["b"] + aps["c"]) / 2)
    assert m["groups"]["head"]["macro_ap"] == aps["a"]


# --- evaluate_attribute ---------------------------------------------------------------------


def test_evaluate_hand_computed_ap_threshold_and_test_precision():
    # Label "x": val = the six-item case (threshold 0.35); on test, scores >= 0.35 flag items
    # 0, 2, 3 of which 0 and 2 are positive: precision 2/3, recall 2/2.
    # Test AP of "x": ranks 0.9 (pos), 0.4 (pos), 0.36 (neg), 0.3 (neg) -> AP 1.
    # Label "y": test ranking 0.9 pos, 0.8 neg, 0.7 pos, 0.1 neg -> AP 1·½ + ⅔·½ = 5/6.
    y_val = np.stack([Y6, Y6], axis=1)
    s_val = np.stack([S6, S6], axis=1)
    y_test = np.array([[1, 1], [0, 0], [1, 1], [0, 0]])
    s_test = np.array([[0.9, 0.9], [0.3, 0.1], [0.4, 0.7], [0.36, 0.8]])
    m = evaluate_attribute(
        labels=["x", "y"],
        kind="multi_label",
        y_val=y_val,
        scores_val=s_val,
        y_test=y_test,
        scores_test=s_test,
        support_train=[150, 10],
    )
    x = m["per_label"]["x"]
    assert x == {
        "ap": 1.0,
        "support_train": 150,
        "support_val": 3,
        "support_test": 2,
        "group": "head",
        "threshold": 0.35,
        "reachable": True,
        "precision": 2 / 3,
        "recall": 1.0,
    }
    assert m["per_label"]["y"]["ap"] == pytest.approx(5 / 6, abs=1e-15)
    # y at 0.35 on test flags items 0, 2, 3: positives 0, 2.
    assert (m["per_label"]["y"]["precision"], m["per_label"]["y"]["recall"]) == (2 / 3, 1.0)
    assert m["macro_ap"] == pytest.approx((1 + 5 / 6) / 2, abs=1e-15)
    assert (m["n_val"], m["n_test"], m["excluded"]) == (6, 4, [])
    assert "top1_accuracy" not in m


def test_means_exclude_labels_without_test_positives():
    rng = np.random.default_rng(1)
    y_test = (rng.random((40, 3)) < 0.3).astype(int)
    y_test[:, 1] = 0
    s_test = rng.random((40, 3))
    y_val = (rng.random((30, 3)) < 0.3).astype(int)
    s_val = rng.random((30, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's no-positive warning must not fire
        m = evaluate_attribute(
            labels=["a", "b", "c"],
            kind="multi_label",
            y_val=y_val,
            scores_val=s_val,
            y_test=y_test,
            scores_test=s_test,
            support_train=[200, 50, 5],
        )
    b = m["per_label"]["b"]
    assert b["ap"] is None and b["support_test"] == 0 and b["recall"] is None
    assert m["excluded"] == [{"label": "b", "reason": NO_TEST_POSITIVE}]
    ap_a = average_precision_score(y_test[:, 0], s_test[:, 0])
    ap_c = average_precision_score(y_test[:, 2], s_test[:, 2])
    assert m["macro_ap"] == pytest.approx((ap_a + ap_c) / 2, abs=1e-15)
    assert m["micro_ap"] == pytest.approx(
        average_precision_score(y_test[:, [0, 2]], s_test[:, [0, 2]], average="micro"), abs=1e-15
    )
    assert m["groups"]["medium"] == {"macro_ap": None, "n_labels": 0}


def test_no_label_with_a_test_positive_gives_null_means():
    y = np.zeros((4, 2), dtype=int)
    s = np.full((4, 2), 0.5)
    m = evaluate_attribute(
        labels=["a", "b"],
        kind="multi_label",
        y_val=y,
        scores_val=s,
        y_test=y,
        scores_test=s,
        support_train=[1, 1],
    )
    assert (m["macro_ap"], m["micro_ap"]) == (None, None)
    assert [e["label"] for e in m["excluded"]] == ["a", "b"]
    assert m["per_label"]["a"]["reachable"] is False
    json.dumps(m, allow_nan=False)


def _random_case(seed: int, n_val: int = 80, n_test: int = 120, n_labels: int = 6):
    rng = np.random.default_rng(seed)
    priors = np.linspace(0.5, 0.05, n_labels)
    y_val = (rng.random((n_val, n_labels)) < priors).astype(int)
    y_test = (rng.random((n_test, n_labels)) < priors).astype(int)
    # Scores on a 1/64 grid: ties happen, and affine rescaling stays exact.
    s_val = np.clip(y_val * 0.3 + rng.random((n_val, n_labels)) * 0.7, 0, 1)
    s_test = np.clip(y_test * 0.3 + rng.random((n_test, n_labels)) * 0.7, 0, 1)
    return y_val, np.round(s_val * 64) / 64, y_test, np.round(s_test * 64) / 64


def test_ap_matches_scikit_learn_and_a_slow_reference():
    y_val, s_val, y_test, s_test = _random_case(2)
    labels = [f"l{i}" for i in range(y_test.shape[1])]
    m = evaluate_attribute(
        labels=labels,
        kind="multi_label",
        y_val=y_val,
        scores_val=s_val,
        y_test=y_test,
        scores_test=s_test,
        support_train=[500, 120, 60, 25, 10, 3],
    )
    for c, name in enumerate(labels):
        expected = average_precision_score(y_test[:, c], s_test[:, c])
        assert m["per_label"][name]["ap"] == expected
        assert m["per_label"][name]["ap"] == pytest.approx(
            reference_ap(y_test[:, c], s_test[:, c]), abs=1e-12
        )
    assert m["micro_ap"] == average_precision_score(y_test, s_test, average="micro")
    assert m["macro_ap"] == pytest.approx(average_precision_score(y_test, s_test), abs=1e-15)


def test_monotone_rescaling_leaves_ap_and_test_precision_unchanged():
    y_val, s_val, y_test, s_test = _random_case(3)
    labels = [f"l{i}" for i in range(y_test.shape[1])]
    common = {
        "labels": labels,
        "kind": "multi_label",
        "y_val": y_val,
        "y_test": y_test,
        "support_train": [500, 120, 60, 25, 10, 3],
    }
    base = evaluate_attribute(scores_val=s_val, scores_test=s_test, **common)
    # 4s - 3 is exact on the 1/64 grid.
    affine = evaluate_attribute(scores_val=4 * s_val - 3, scores_test=4 * s_test - 3, **common)
    cubed = evaluate_attribute(scores_val=s_val**3, scores_test=s_test**3, **common)
    for other in (affine, cubed):
        assert other["macro_ap"] == pytest.approx(base["macro_ap"], abs=1e-15)
        assert other["micro_ap"] == pytest.approx(base["micro_ap"], abs=1e-15)
        for name in labels:
            a, b = base["per_label"][name], other["per_label"][name]
            for key in ("ap", "precision", "recall", "reachable"):
                assert b[key] == pytest.approx(a[key], abs=1e-15), (name, key)
    t = base["per_label"]["l0"]["threshold"]
    assert affine["per_label"]["l0"]["threshold"] == 4 * t - 3


def test_single_label_top1_accuracy():
    # True classes 0, 1, 2, 1; argmax picks 0, 1, 1, 1 -> 3 of 4 right.
    y = np.eye(3, dtype=int)[[0, 1, 2, 1]]
    s = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.1, 0.8, 0.1],
            [0.2, 0.5, 0.3],
            [0.3, 0.4, 0.3],
        ]
    )
    m = evaluate_attribute(
        labels=["a", "b", "c"],
        kind="single_label",
        y_val=y,
        scores_val=s,
        y_test=y,
        scores_test=s,
        support_train={"a": 30, "b": 40, "c": 5},
    )
    assert m["top1_accuracy"] == 0.75
    assert type(m["top1_accuracy"]) is float


def test_single_label_needs_one_hot_rows():
    y = np.array([[1, 0], [1, 1]])
    s = np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match="y_val row 1 is not one-hot"):
        evaluate_attribute(
            labels=["a", "b"],
            kind="single_label",
            y_val=y,
            scores_val=s,
            y_test=np.eye(2, dtype=int),
            scores_test=s,
            support_train=[1, 1],
        )


def test_metrics_are_plain_json_without_nan():
    y_val, s_val, y_test, s_test = _random_case(4)
    y_test[:, 5] = 0  # an excluded label
    y_val[:, 4] = 0  # an unreachable threshold
    s_val = s_val.astype(np.float32)
    s_test = s_test.astype(np.float32)
    labels = [f"l{i}" for i in range(6)]
    m = evaluate_attribute(
        labels=labels,
        kind="multi_label",
        y_val=y_val,
        scores_val=s_val,
        y_test=y_test,
        scores_test=s_test,
        support_train=np.array([500, 120, 60, 25, 10, 3]),
    )
    assert any(not v["reachable"] for v in m["per_label"].values())
    assert_plain_json(m)
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m
    assert set(m) == {"macro_ap", "micro_ap", "groups", "per_label", "excluded", "n_test", "n_val"}


def test_unreachable_labels_have_null_threshold_precision_recall():
    y = np.array([[1], [0], [0]])
    s = np.array([[0.1], [0.5], [0.9]])
    m = evaluate_attribute(
        labels=["a"],
        kind="multi_label",
        y_val=y,
        scores_val=s,
        y_test=y,
        scores_test=s,
        support_train=[3],
    )
    a = m["per_label"]["a"]
    assert (a["threshold"], a["reachable"], a["precision"], a["recall"]) == (
        None,
        False,
        None,
        None,
    )
    assert a["ap"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"labels": ["a", "b", "c"]}, "3 labels"),
        ({"scores_test": np.full((4, 3), 0.5)}, r"scores_test has shape \(4, 3\)"),
        ({"scores_val": np.array([[0.1, np.inf]] * 3)}, "scores_val must be finite"),
        ({"y_test": np.array([[0, 1], [1, 0], [0, 2], [1, 1]])}, r"y_test.*index \(2, 1\)"),
        ({"support_train": {"a": 1}}, r"no entry for labels \['b'\]"),
        ({"support_train": {"a": 1, "b": -1}}, "support_train\\['b'\\]"),
        ({"kind": "multilabel"}, "unknown kind"),
        ({"labels": ["a", "a"]}, "appears twice"),
        ({"head_min": 10, "medium_min": 20}, "head_min > medium_min"),
    ],
)
def test_evaluate_rejects_bad_input(change, match):
    args = {
        "labels": ["a", "b"],
        "kind": "multi_label",
        "y_val": np.array([[0, 1], [1, 0], [1, 1]]),
        "scores_val": np.full((3, 2), 0.5),
        "y_test": np.array([[0, 1], [1, 0], [0, 1], [1, 1]]),
        "scores_test": np.full((4, 2), 0.5),
        "support_train": [5, 5],
    }
    args.update(change)
    with pytest.raises(ValueError, match=match):
        evaluate_attribute(**args)


# --- pr_curve_table -------------------------------------------------------------------------


def test_pr_curve_table_small_matches_scikit_learn():
    y = np.stack([Y6, 1 - Y6, np.zeros(6, dtype=int)], axis=1)
    s = np.stack([S6, S6, S6], axis=1)
    table = pr_curve_table(["x", "y", "none"], y, s)
    assert list(table.columns) == ["label", "recall", "precision", "threshold"]
    assert set(table["label"]) == {"x", "y"}  # no curve without a positive
    x = table[table["label"] == "x"]
    precision, recall, thresholds = precision_recall_curve(Y6, S6, drop_intermediate=True)
    np.testing.assert_array_equal(x["precision"], precision)
    np.testing.assert_array_equal(x["recall"], recall)
    np.testing.assert_array_equal(x["threshold"].iloc[:-1], thresholds)
    assert np.isnan(x["threshold"].iloc[-1])
    assert (x["recall"].iloc[-1], x["precision"].iloc[-1]) == (0.0, 1.0)


def test_pr_curve_table_decimates_to_a_monotone_subset():
    rng = np.random.default_rng(5)
    y = (rng.random((4000, 2)) < [0.4, 0.02]).astype(int)
    s = rng.random((4000, 2)) + 0.2 * y
    table = pr_curve_table(["big", "small"], y, s, max_points=50)
    for c, name in enumerate(["big", "small"]):
        part = table[table["label"] == name]
        precision, recall, thresholds = precision_recall_curve(
            y[:, c], s[:, c], drop_intermediate=True
        )
        assert len(part) <= 50 < len(recall)
        assert np.all(np.diff(part["recall"].to_numpy()) <= 0)
        assert np.all(np.diff(part["threshold"].to_numpy()[:-1]) > 0)
        # The first and last points survive; every kept row is a point of the full curve.
        assert (part["recall"].iloc[0], part["recall"].iloc[-1]) == (recall[0], 0.0)
        index = np.searchsorted(thresholds, part["threshold"].to_numpy()[:-1])
        np.testing.assert_array_equal(thresholds[index], part["threshold"].to_numpy()[:-1])
        np.testing.assert_array_equal(precision[index], part["precision"].to_numpy()[:-1])


def test_pr_curve_table_rejects_label_count_mismatch():
    with pytest.raises(ValueError, match="2 columns but there are 3 labels"):
        pr_curve_table(["a", "b", "c"], np.zeros((3, 2)), np.zeros((3, 2)))
