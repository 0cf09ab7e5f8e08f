"""Tests for tailtag.compare: hand-checked differences, Markdown text, the PR-curve figure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tailtag.compare import compare_schemes, comparison_markdown, plot_pr_curves
from tailtag.metrics import NO_TEST_POSITIVE, evaluate_attribute, pr_curve_table

SUPPORT = {"casual": 1234, "boho": 150, "retro": 30, "androgynous": 12}
GROUP = {"casual": "head", "boho": "head", "retro": "medium", "androgynous": "tail"}


def fake_metrics(ap: dict, *, macro, micro, head, medium, tail, unreachable=(), top1=None):
    """A metrics dict in the shape evaluate_attribute writes, values chosen by hand."""
    per_label = {
        label: {
            "ap": value,
            "support_train": SUPPORT[label],
            "support_val": 3,
            "support_test": 0 if value is None else 4,
            "group": GROUP[label],
            "threshold": None if label in unreachable else 0.5,
            "reachable": label not in unreachable,
            "precision": None if label in unreachable else 0.7,
            "recall": None if label in unreachable else 0.4,
        }
        for label, value in ap.items()
    }
    m = {
        "macro_ap": macro,
        "micro_ap": micro,
        "groups": {
            "head": {"macro_ap": head, "n_labels": 2},
            "medium": {"macro_ap": medium, "n_labels": 1},
            "tail": {"macro_ap": tail, "n_labels": 0},
        },
        "per_label": per_label,
        "excluded": [
            {"label": label, "reason": NO_TEST_POSITIVE} for label, v in ap.items() if v is None
        ],
        "n_test": 40,
        "n_val": 30,
    }
    if top1 is not None:
        m["top1_accuracy"] = top1
    return m


# AP values from the seed paper's Table I (boho, casual, retro); androgynous has no test
# positive here. Means: nw (0.377 + 0.682 + 0.069) / 3 = 0.376; iew (0.572 + 0.763 + 0.195) / 3
# = 0.51; head nw 0.5295, iew 0.6675.
NW = fake_metrics(
    {"androgynous": None, "boho": 0.377, "casual": 0.682, "retro": 0.069},
    macro=0.376,
    micro=0.41,
    head=0.5295,
    medium=0.069,
    tail=None,
    unreachable=("androgynous", "retro"),
)
IFW = fake_metrics(
    {"androgynous": None, "boho": 0.372, "casual": 0.624, "retro": 0.106},
    macro=0.3673333333333333,
    micro=0.40,
    head=0.498,
    medium=0.106,
    tail=None,
    unreachable=("androgynous",),
)
IEW = fake_metrics(
    {"androgynous": None, "boho": 0.572, "casual": 0.763, "retro": 0.195},
    macro=0.51,
    micro=0.55,
    head=0.6675,
    medium=0.195,
    tail=None,
    unreachable=("androgynous",),
)


def test_compare_orders_labels_by_training_support():
    c = compare_schemes({"nw": NW, "ifw": IFW, "iew": IEW})
    assert c["labels"] == ["casual", "boho", "retro", "androgynous"]
    assert c["schemes"] == ["nw", "ifw", "iew"]
    assert c["baseline"] == "nw"
    assert c["support_train"] == SUPPORT
    assert c["ap"]["iew"] == {"casual": 0.763, "boho": 0.572, "retro": 0.195, "androgynous": None}


def test_compare_deltas_hand_checked():
    c = compare_schemes({"nw": NW, "ifw": IFW, "iew": IEW})
    assert set(c["ap_delta"]) == {"ifw", "iew"}
    # 0.572 - 0.377 = 0.195, 0.763 - 0.682 = 0.081, 0.195 - 0.069 = 0.126, 0.624 - 0.682.
    assert c["ap_delta"]["iew"] == {
        "casual": 0.081,
        "boho": 0.195,
        "retro": 0.126,
        "androgynous": None,
    }
    assert c["ap_delta"]["ifw"]["casual"] == -0.058
    assert c["summary_delta"]["iew"] == {
        "macro_ap": 0.134,
        "micro_ap": 0.14,
        "head_macro_ap": 0.138,
        "medium_macro_ap": 0.126,
        "tail_macro_ap": None,
    }
    assert c["summary_delta"]["ifw"]["macro_ap"] == -0.0086666667
    assert c["summary"]["nw"]["macro_ap"] == 0.376
    assert c["excluded"] == [{"label": "androgynous", "reason": NO_TEST_POSITIVE}]
    assert c["unreachable"] == {
        "nw": ["retro", "androgynous"],
        "ifw": ["androgynous"],
        "iew": ["androgynous"],
    }
    json.dumps(c, allow_nan=False)


def test_compare_top1_and_missing_baseline():
    nw = fake_metrics(
        {"casual": 0.5, "boho": 0.4},
        macro=0.45,
        micro=0.5,
        head=0.45,
        medium=None,
        tail=None,
        top1=0.6,
    )
    iew = fake_metrics(
        {"casual": 0.6, "boho": 0.5},
        macro=0.55,
        micro=0.6,
        head=0.55,
        medium=None,
        tail=None,
        top1=0.625,
    )
    c = compare_schemes({"nw": nw, "iew": iew})
    assert c["summary_delta"]["iew"]["top1_accuracy"] == 0.025
    c = compare_schemes({"iew": iew}, baseline="nw")
    assert c["baseline"] is None
    assert (c["ap_delta"], c["summary_delta"]) == ({}, {})
    assert "Δ" not in comparison_markdown(c, attribute="sleevetype")


def test_compare_rejects_schemes_on_different_splits():
    other = json.loads(json.dumps(IEW))
    other["per_label"]["boho"]["support_test"] = 5
    with pytest.raises(ValueError, match="label 'boho': support_test"):
        compare_schemes({"nw": NW, "iew": other})
    other = json.loads(json.dumps(IEW))
    del other["per_label"]["retro"]
    with pytest.raises(ValueError, match=r"different labels: \['retro'\]"):
        compare_schemes({"nw": NW, "iew": other})
    with pytest.raises(ValueError, match="only one of"):
        compare_schemes({"nw": NW, "iew": {**IEW, "top1_accuracy": 0.5}})
    with pytest.raises(ValueError, match="empty"):
        compare_schemes({})


def test_comparison_markdown_tables():
    text = comparison_markdown(
        compare_schemes({"nw": NW, "ifw": IFW, "iew": IEW}), attribute="archetype"
    )
    lines = text.splitlines()
    assert lines[0] == "# archetype: average precision by loss-weighting scheme"
    assert "| scheme | casual (1234) | boho (150) | retro (30) | androgynous (12) |" in lines
    assert "|:--|--:|--:|--:|--:|" in lines
    assert "| nw | 0.682 | 0.377 | 0.069 | — |" in lines
    assert "| iew | 0.763 | 0.572 | 0.195 | — |" in lines
    assert "| Δ iew | +0.081 | +0.195 | +0.126 | — |" in lines
    assert "| Δ ifw | -0.058 | -0.005 | +0.037 | — |" in lines
    assert "| metric | nw | ifw | iew | Δ ifw vs nw | Δ iew vs nw |" in lines
    assert "| macro AP (3 labels) | 0.376 | 0.367 | 0.510 | -0.009 | +0.134 |" in lines
    # 0.5295 and 0.6675 are stored just below the decimal, so they print as .529 and .667.
    assert "| head macro AP (2 labels) | 0.529 | 0.498 | 0.667 | -0.032 | +0.138 |" in lines
    assert "| medium macro AP (1 label) | 0.069 | 0.106 | 0.195 | +0.037 | +0.126 |" in lines
    assert "| tail macro AP (0 labels) | — | — | — | — | — |" in lines
    assert "Excluded from every mean: androgynous (no positive in the test split)." in lines
    assert (
        "No threshold reaches the target precision on validation for: "
        "nw: retro, androgynous; ifw: androgynous; iew: androgynous."
    ) in lines
    assert "top-1" not in text
    # Deterministic: the same input gives the same text.
    assert text == comparison_markdown(
        compare_schemes({"nw": NW, "ifw": IFW, "iew": IEW}), attribute="archetype"
    )


def _pr_tables(seed: int):
    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c", "d", "e"]
    y = (rng.random((300, 5)) < [0.5, 0.3, 0.2, 0.1, 0.03]).astype(int)
    return labels, {
        scheme: pr_curve_table(labels, y, rng.random((300, 5)) + shift * y)
        for scheme, shift in (("nw", 0.1), ("ifw", 0.2), ("iew", 0.4))
    }


def test_plot_pr_curves_writes_a_png(tmp_path):
    labels, tables = _pr_tables(6)
    support = {"a": 500, "b": 150, "c": 60, "d": 30, "e": 5}
    out = tmp_path / "figures" / "pr_curves.png"
    chosen = plot_pr_curves(tables, support_train=support, out_path=out)
    # Middle labels b, c, d; medium ones c, d; the median of those (higher support first) c.
    assert chosen == ["a", "c", "e"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_pr_curves_with_two_labels_and_bad_input(tmp_path):
    labels, tables = _pr_tables(7)
    two = {s: t[t["label"].isin(["a", "b"])] for s, t in tables.items()}
    chosen = plot_pr_curves(two, support_train={"a": 5, "b": 50}, out_path=tmp_path / "two.png")
    assert chosen == ["b", "a"]
    assert (tmp_path / "two.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no entry for labels"):
        plot_pr_curves(tables, support_train={"a": 1}, out_path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="different labels"):
        plot_pr_curves({"nw": tables["nw"], "iew": two["iew"]}, support_train={}, out_path="x")
    with pytest.raises(ValueError, match="no columns"):
        plot_pr_curves({"nw": pd.DataFrame({"label": []})}, support_train={}, out_path="x")


def test_end_to_end_from_evaluate_to_markdown():
    rng = np.random.default_rng(8)
    labels = ["a", "b", "c"]
    y_val = np.eye(3, dtype=int)[rng.integers(0, 3, 60)]
    y_test = np.eye(3, dtype=int)[rng.integers(0, 3, 60)]
    metrics = {}
    for scheme, sharp in (("nw", 1.0), ("iew", 3.0)):
        logits_val = rng.normal(size=(60, 3)) + sharp * y_val
        logits_test = rng.normal(size=(60, 3)) + sharp * y_test
        softmax = [
            np.exp(z) / np.exp(z).sum(axis=1, keepdims=True) for z in (logits_val, logits_test)
        ]
        metrics[scheme] = evaluate_attribute(
            labels=labels,
            kind="single_label",
            y_val=y_val,
            scores_val=softmax[0],
            y_test=y_test,
            scores_test=softmax[1],
            support_train=[300, 40, 8],
        )
    c = compare_schemes(metrics)
    json.dumps(c, allow_nan=False)
    expected = metrics["iew"]["top1_accuracy"] - metrics["nw"]["top1_accuracy"]
    assert c["summary_delta"]["iew"]["top1_accuracy"] == pytest.approx(expected, abs=1e-9)
    text = comparison_markdown(c, attribute="sleevetype")
    assert "| scheme | a (300) | b (40) | c (8) |" in text
    assert "| top-1 accuracy |" in text
    assert "Groups by training support: head: a; medium: b; tail: c." in text
