"""Tagging new images: thresholds from the metrics, the label rule, and the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from tailtag.attributes import MULTI_LABEL, SINGLE_LABEL
from tailtag.cli import main
from tailtag.models import build_model, save_checkpoint
from tailtag.predict import tag, thresholds_from_metrics
from tailtag.training import TrainConfig

LABELS = ["a", "b", "c"]
SCORES = np.array([[0.9, 0.2, 0.55], [0.1, 0.8, 0.3]])


def test_tag_multi_label_uses_each_threshold_and_skips_unreachable():
    thresholds = {"a": 0.95, "b": 0.5, "c": None}
    assert tag(SCORES, LABELS, kind=MULTI_LABEL, thresholds=thresholds) == [[], ["b"]]
    assert tag(SCORES, LABELS, kind=MULTI_LABEL) == [["a", "c"], ["b"]]  # 0.5 default


def test_tag_single_label_is_top1():
    assert tag(SCORES, LABELS, kind=SINGLE_LABEL) == [["a"], ["b"]]


def test_tag_checks_shapes_and_kind():
    with pytest.raises(ValueError, match="scores must be N x 2"):
        tag(SCORES, ["a", "b"], kind=MULTI_LABEL)
    with pytest.raises(ValueError, match="unknown attribute kind"):
        tag(SCORES, LABELS, kind="multi")


def test_thresholds_from_metrics():
    metrics = {"per_label": {"a": {"threshold": 0.3}, "b": {"threshold": None}}}
    assert thresholds_from_metrics(metrics, ["a", "b"]) == {"a": 0.3, "b": None}
    with pytest.raises(ValueError, match=r"no threshold for label\(s\) \['c'\]"):
        thresholds_from_metrics(metrics, ["a", "c"])


def test_predict_command(tmp_path):
    torch.manual_seed(0)
    model = build_model("smallcnn", 3)
    config = {**TrainConfig().to_dict(), "input_size": 32}
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, labels=LABELS, kind=MULTI_LABEL, config=config)
    metrics = tmp_path / "metrics.json"
    # Threshold 0 fires every label, None none: the output is known whatever the weights.
    thresholds = {"a": 0.0, "b": None, "c": 0.0}
    metrics.write_text(
        json.dumps({"per_label": {k: {"threshold": v} for k, v in thresholds.items()}})
    )
    image = tmp_path / "shirt.png"
    Image.new("RGB", (48, 40), (200, 30, 30)).save(image)
    (tmp_path / "broken.jpg").write_bytes(b"not an image")

    result = CliRunner().invoke(
        main,
        ["predict", str(path), str(image), str(tmp_path / "broken.jpg"), "--metrics", str(metrics)],
    )
    assert result.exit_code == 1  # one image could not be read
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines[0] == {
        "image": str(tmp_path / "broken.jpg"),
        "error": "not_an_image",
        "detail": lines[0]["detail"],
    }
    assert lines[1]["image"] == str(image)
    assert lines[1]["labels"] == ["a", "c"]
    assert set(lines[1]["scores"]) == set(LABELS)
