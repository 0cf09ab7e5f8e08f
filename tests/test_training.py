"""Model building, the input pipeline, the training loop and checkpoints."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch
from torch import nn

from tailtag import models
from tailtag.attributes import MULTI_LABEL, SINGLE_LABEL
from tailtag.data import (
    MEAN,
    STD,
    encode_targets,
    iterate_batches,
    one_hot,
    to_input,
)
from tailtag.models import build_model, load_checkpoint, save_checkpoint
from tailtag.training import TrainConfig, fit, macro_average_precision, predict_scores


def test_encode_targets_multi_label():
    cells = [["a", "c"], None, [], ["b"], ["z"], ["c", "z"]]
    keep, y = encode_targets(cells, ["a", "b", "c"], kind=MULTI_LABEL)
    # None/[] are unlabelled; ["z"] has only a label outside the trained ones.
    assert keep.tolist() == [True, False, False, True, False, True]
    assert y.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 1]]
    assert y.dtype == np.float32


def test_encode_targets_single_label():
    keep, y = encode_targets([["b"], None, ["a"], ["x"]], ["a", "b"], kind=SINGLE_LABEL)
    assert keep.tolist() == [True, False, True, False]
    assert y.tolist() == [1, 0] and y.dtype == np.int64
    with pytest.raises(ValueError, match="item 0: single-label attribute has 2 labels"):
        encode_targets([["a", "b"]], ["a", "b"], kind=SINGLE_LABEL)
    with pytest.raises(ValueError, match="unknown attribute kind"):
        encode_targets([], ["a"], kind="multi")


def test_one_hot():
    assert one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]


def test_iterate_batches_covers_every_row_once():
    images = np.arange(10 * 2 * 2 * 3, dtype=np.uint8).reshape(10, 2, 2, 3)
    rows = np.array([9, 3, 5, 0, 7])
    targets = np.arange(5)
    seen_rows, seen_targets = [], []
    for x, y in iterate_batches(images, rows, targets, batch_size=2, rng=np.random.default_rng(0)):
        assert x.dtype == torch.uint8 and x.shape[1:] == (2, 2, 3)
        seen_rows += [int(v) for v in x[:, 0, 0, 0] // 12]
        seen_targets += y.tolist()
    assert sorted(seen_rows) == sorted(rows.tolist())
    # Images and targets stay paired through the shuffle.
    assert [rows[t] for t in seen_targets] == seen_rows


def test_to_input_normalises_and_resizes():
    batch = torch.full((2, 8, 8, 3), 255, dtype=torch.uint8)
    x = to_input(batch, device=torch.device("cpu"), image_size=4)
    assert x.shape == (2, 3, 4, 4)
    expected = [(1 - m) / s for m, s in zip(MEAN, STD, strict=True)]
    assert torch.allclose(x[0, :, 0, 0], torch.tensor(expected), atol=1e-5)


def test_to_input_flip_mirrors_the_image():
    img = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)
    img[0, :, 0, :] = 255  # left column white
    gen = torch.Generator().manual_seed(0)
    # flip only, no translation: rand < 0.5 flips; find a seed state that flips.
    for _ in range(10):
        x = to_input(img, device=torch.device("cpu"), augment=True, translate=0.0, generator=gen)
        left, right = x[0, 0, :, 0].mean().item(), x[0, 0, :, -1].mean().item()
        assert {left > right, right > left} == {True, False}
        if right > left:
            return
    pytest.fail("no flip in 10 draws")


def test_build_model_heads():
    for name in ("smallcnn", "resnet18"):
        model = build_model(name, 7)
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_model("nope", 3)
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_model("smallcnn", 3, weights="DEFAULT")


def test_pretrained_weights_offline_error_is_clear(monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="needs the internet"):
        build_model("resnet18", 3, weights="DEFAULT")


def test_replace_last_linear_keeps_pretrained_body():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 1000))
    first = model[0].weight.clone()
    models._replace_last_linear(model, 3)
    assert model[2].out_features == 3 and torch.equal(model[0].weight, first)


def _toy_task(n=64, size=16, seed=0):
    """A learnable toy: label 0 = bright left half, label 1 = bright top half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=(n, 2)).astype(np.float32)
    images = rng.integers(0, 60, size=(n, size, size, 3), dtype=np.uint8)
    images[y[:, 0] == 1, :, : size // 2] += 150
    images[y[:, 1] == 1, : size // 2] += 40
    return images, y


def _fit(config, images, y):
    torch.manual_seed(config.seed)
    model = build_model("smallcnn", 2)
    rows = np.arange(len(y))
    return fit(
        model, nn.BCEWithLogitsLoss(), images, kind=MULTI_LABEL,
        train_rows=rows[:48], train_targets=y[:48], val_rows=rows[48:], val_targets=y[48:],
        num_classes=2, config=config, progress=False,
    )  # fmt: skip


def test_fit_is_deterministic_on_cpu_and_keeps_best_epoch():
    images, y = _toy_task()
    config = TrainConfig(epochs=3, batch_size=16, lr=1e-2, seed=3, device="cpu")
    seen = []
    a = _fit(config, images, y)
    b = fit(
        (torch.manual_seed(3), build_model("smallcnn", 2))[1], nn.BCEWithLogitsLoss(), images,
        kind=MULTI_LABEL, train_rows=np.arange(48), train_targets=y[:48],
        val_rows=np.arange(48, 64), val_targets=y[48:], num_classes=2, config=config,
        on_epoch=seen.append, progress=False,
    )  # fmt: skip
    assert [r["epoch"] for r in seen] == [1, 2, 3]
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    aps = [r["val_macro_ap"] for r in a.history]
    assert a.best_val_macro_ap == max(aps)
    assert a.best_epoch == aps.index(max(aps)) + 1


def test_train_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown train setting\(s\) \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 3})


def test_macro_average_precision_skips_labels_without_positives():
    y = np.array([[1, 0], [0, 0], [1, 0]])
    s = np.array([[0.9, 0.1], [0.2, 0.5], [0.8, 0.3]])
    assert macro_average_precision(y, s) == 1.0


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("smallcnn", 3).eval()
    path = tmp_path / "model.pt"
    config = TrainConfig(epochs=1).to_dict()
    save_checkpoint(path, model, labels=["a", "b", "c"], kind=MULTI_LABEL, config=config)
    loaded, meta = load_checkpoint(path)
    assert meta == {"labels": ["a", "b", "c"], "kind": MULTI_LABEL, "config": config}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    # weights_only loading refuses arbitrary pickled objects.
    torch.save({"evil": nn.Linear(1, 1)}, tmp_path / "bad.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(tmp_path / "bad.pt")


def test_predict_scores_are_probabilities():
    images, _ = _toy_task(n=10)
    model = build_model("smallcnn", 4)
    rows = np.arange(10)
    multi = predict_scores(model, images, rows, kind=MULTI_LABEL, device=torch.device("cpu"))
    single = predict_scores(model, images, rows, kind=SINGLE_LABEL, device=torch.device("cpu"))
    assert multi.shape == single.shape == (10, 4)
    assert ((multi > 0) & (multi < 1)).all()
    assert np.allclose(single.sum(axis=1), 1, atol=1e-5)
