"""Label supports, groups, active labels and the plot: tailtag.counts and stages/count.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from tailtag.counts import (
    active_labels,
    align_splits,
    assign_groups,
    count_summary,
    distribution_table,
    label_supports,
    labelled_items,
    plot_distribution,
)

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["boho", "casual", "edgy"]
# item:        0                  1         2            3          4       5
VALUES = [["boho", "casual"], ["casual"], None, ["casual", "edgy"], [], ["boho"]]
SPLIT = ["train", "train", "val", "test", "train", "test"]


def test_label_supports_by_hand():
    supports = label_supports(VALUES, SPLIT, LABELS, attribute="archetype", kind="multi_label")
    assert supports == {
        "train": {"boho": 1, "casual": 2, "edgy": 0},
        "val": {"boho": 0, "casual": 0, "edgy": 0},
        "test": {"boho": 1, "casual": 1, "edgy": 1},
    }
    assert list(supports["train"]) == LABELS  # vocabulary order
    # the null cell is not labelled; the empty list is (labelled with none of them)
    assert labelled_items(VALUES, SPLIT, attribute="archetype") == {
        "train": 3,
        "val": 0,
        "test": 2,
    }


def test_label_supports_match_pandas_explode():
    rng = np.random.default_rng(0)
    labels = [f"l{i}" for i in range(7)]
    values = [
        None if rng.random() < 0.1 else list(rng.choice(labels, rng.integers(0, 4), replace=False))
        for _ in range(500)
    ]
    splits = rng.choice(["train", "val", "test"], 500, p=[0.8, 0.1, 0.1])
    ours = label_supports(values, splits, labels, attribute="a", kind="multi_label")
    frame = pd.DataFrame({"label": values, "split": splits}).explode("label").dropna()
    reference = frame.groupby(["split", "label"]).size()
    for split in ("train", "val", "test"):
        for label in labels:
            assert ours[split][label] == reference.get((split, label), 0)


def test_label_supports_name_item_and_label():
    with pytest.raises(ValueError, match=r"item 'x3' \(row 1\) has label 'goth'"):
        label_supports(
            [["boho"], ["goth"]],
            ["train", "val"],
            LABELS,
            attribute="archetype",
            kind="multi_label",
            item_ids=["x1", "x3"],
        )
    with pytest.raises(ValueError, match=r"row 1: split 'dev' is not one of"):
        label_supports(
            [["boho"], ["edgy"]], ["train", "dev"], LABELS, attribute="a", kind="multi_label"
        )


@pytest.mark.parametrize(
    ("support", "group"),
    [(0, "tail"), (19, "tail"), (20, "medium"), (99, "medium"), (100, "head"), (5000, "head")],
)
def test_groups_at_the_boundaries(support, group):
    assert assign_groups({"x": support}) == {"x": group}


def test_groups_with_other_thresholds_and_bad_thresholds():
    supports = {"a": 9, "b": 10, "c": 49, "d": 50}
    assert assign_groups(supports, head_min=50, medium_min=10) == {
        "a": "tail",
        "b": "medium",
        "c": "medium",
        "d": "head",
    }
    with pytest.raises(ValueError, match="medium_min <= head_min"):
        assign_groups(supports, head_min=10, medium_min=50)


def test_min_support_marks_inactive_labels_in_order():
    supports = {"a": 0, "b": 25, "c": 19, "d": 20}
    assert active_labels(supports) == (["a", "b", "c", "d"], {})  # 0 keeps every label
    assert active_labels(supports, min_support=20) == (["b", "d"], {"a": 0, "c": 19})
    with pytest.raises(ValueError, match="min_support"):
        active_labels(supports, min_support=-1)


def summary_of(min_support: int = 0) -> dict:
    supports = label_supports(VALUES, SPLIT, LABELS, attribute="archetype", kind="multi_label")
    n_items = labelled_items(VALUES, SPLIT, attribute="archetype")
    return count_summary(
        "archetype",
        "multi_label",
        LABELS,
        supports,
        n_items,
        min_support=min_support,
        head_min=2,
        medium_min=1,
    )


def test_count_summary_schema():
    summary = summary_of(min_support=1)
    assert summary == {
        "attribute": "archetype",
        "kind": "multi_label",
        "labels": LABELS,
        "active": ["boho", "casual"],
        "inactive": {"edgy": 0},
        "support": {
            "train": {"boho": 1, "casual": 2, "edgy": 0},
            "val": {"boho": 0, "casual": 0, "edgy": 0},
            "test": {"boho": 1, "casual": 1, "edgy": 1},
        },
        "group": {"boho": "medium", "casual": "head", "edgy": "tail"},
        "n_items": {"train": 3, "val": 0, "test": 2},
        "thresholds": {"min_support": 1, "head_min": 2, "medium_min": 1},
    }
    json.dumps(summary)  # plain JSON types only


def test_count_summary_wants_every_label_of_every_split():
    supports = {s: {"boho": 1, "casual": 1} for s in ("train", "val", "test")}
    with pytest.raises(KeyError, match=r"split 'train'.*missing \['edgy'\]"):
        count_summary("a", "multi_label", LABELS, supports, {"train": 1, "val": 1, "test": 1})


def test_distribution_table_sorted_by_training_support():
    table = distribution_table(summary_of(min_support=1))
    assert table.columns.tolist() == [
        "label",
        "group",
        "active",
        "train",
        "val",
        "test",
        "total",
    ]
    assert table["label"].tolist() == ["casual", "boho", "edgy"]
    assert table["total"].tolist() == [3, 2, 1]
    assert table["active"].tolist() == [True, True, False]


@pytest.mark.parametrize("log", [None, True, False])
def test_plot_is_written(tmp_path, log):
    path = tmp_path / "archetype.png"
    plot_distribution(summary_of(min_support=1), path, log=log)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.width > 100 and image.height > 100


def test_align_splits_by_item_id():
    got = align_splits(["b", "a", "c"], ["a", "b", "c"], ["val", "train", "test"])
    assert got.tolist() == ["train", "val", "test"]


@pytest.mark.parametrize(
    ("split_ids", "split_values", "message"),
    [
        (["a", "b"], ["train", "val"], "item 'c' has no split"),
        (["a", "b", "c", "d"], ["train"] * 4, "split assigns item 'd'"),
        (["a", "b", "c", "a"], ["train"] * 4, "item 'a' is assigned more than once"),
        (["a", "b", "c"], ["train", "dev", "val"], "split 'dev' is not one of"),
    ],
)
def test_align_splits_errors(split_ids, split_values, message):
    with pytest.raises(ValueError, match=message):
        align_splits(["a", "b", "c"], split_ids, split_values)


# -- the stage --------------------------------------------------------------------------------


def test_stage_writes_json_csv_png(tmp_path):
    labels = {"min_support": 2, "head_min": 3, "medium_min": 2}
    params = {
        "attributes": {
            "archetype": {"kind": "multi_label", "labels": LABELS},
            "sleevetype": {"kind": "single_label", "labels": ["cap", "short"]},
        },
        "labels": labels,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(len(VALUES))],
            "archetype": VALUES,
            "sleevetype": [["cap"]] * len(VALUES),
        }
    )
    items.to_parquet(tmp_path / "items.parquet")
    # the assignment in another order than the items: the stage looks items up by id
    pd.DataFrame({"item_id": items["item_id"][::-1], "split": SPLIT[::-1]}).to_parquet(
        tmp_path / "split.parquet"
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages/count.py"), "--attribute", "archetype"]
        + ["--items", "items.parquet", "--split", "split.parquet", "--out", "counts"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "counts/archetype.json").read_text())
    assert summary["support"]["train"] == {"boho": 1, "casual": 2, "edgy": 0}
    assert summary["active"] == ["casual"]
    assert summary["inactive"] == {"boho": 1, "edgy": 0}
    assert summary["group"] == {"boho": "tail", "casual": "medium", "edgy": "tail"}
    assert summary["n_items"] == {"train": 3, "val": 0, "test": 2}
    table = pd.read_csv(tmp_path / "counts/archetype.csv")
    assert table["label"].tolist() == ["casual", "boho", "edgy"]
    assert table["train"].tolist() == [2, 1, 0]
    assert (tmp_path / "counts/archetype.png").read_bytes()[:4] == b"\x89PNG"
    assert "archetype/boho: inactive, 1 training items < min_support" in proc.stderr
    assert "archetype/edgy: inactive, 0 training items < min_support" in proc.stderr
    assert not (tmp_path / "counts/sleevetype.json").exists()

    unknown = subprocess.run(
        [sys.executable, str(ROOT / "stages/count.py"), "--attribute", "colour"]
        + ["--items", "items.parquet", "--split", "split.parquet", "--out", "counts"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert unknown.returncode != 0
    assert "no attribute 'colour'" in unknown.stderr
