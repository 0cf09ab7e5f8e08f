"""Image classifiers: a small CNN (the fast CPU default) and any torchvision model by name."""

from __future__ import annotations

import torch
from torch import nn

SMALL_CNN = "smallcnn"


class SmallCNN(nn.Module):
    """Four blocks of conv 3x3 - BatchNorm - ReLU - max-pool 2x2 (widths w, 2w, 4w, 8w), global
    average pool, dropout, linear head.

    Input N x 3 x H x W (H, W >= 16), output N x num_classes logits. About 0.1 M parameters at
    width 16: an epoch over 3,200 images of 64 px takes seconds on two CPU cores.
    """

    def __init__(self, num_classes: int, *, width: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(4):
            c_out = width * 2**i
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _replace_last_linear(model: nn.Module, num_classes: int) -> None:
    """Swap the last nn.Linear (the classification head) for one with num_classes outputs."""
    name = next(
        (n for n, m in reversed(list(model.named_modules())) if isinstance(m, nn.Linear)), None
    )
    if name is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear head to replace")
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child)
    setattr(parent, child, nn.Linear(old.in_features, num_classes))


def build_model(name: str, num_classes: int, *, weights: str | None = None) -> nn.Module:
    """Build a classifier with `num_classes` outputs.

    name: "smallcnn" or any torchvision classification model (`densenet121`, `resnet18`, ...).
    weights: None for random initialisation, or a torchvision weights name such as "DEFAULT"
    or "IMAGENET1K_V1" (downloaded on first use: needs the internet or a filled TORCH_HOME cache).
    With pretrained weights the ImageNet head is replaced by a fresh one of num_classes outputs.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if name == SMALL_CNN:
        if weights:
            raise ValueError("smallcnn has no pretrained weights; set weights to null")
        return SmallCNN(num_classes)

    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise ValueError(
            f"unknown model {name!r}: use {SMALL_CNN!r} or a torchvision classification model "
            f"such as densenet121, resnet18, efficientnet_b0"
        )
    if not weights:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    try:
        model = torchvision.models.get_model(name, weights=weights)
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        raise RuntimeError(
            f"could not load pretrained weights {weights!r} for {name}: {err}. Downloading them "
            "needs the internet (or the file in $TORCH_HOME/hub/checkpoints); set "
            "train.weights to null to train from scratch."
        ) from err
    _replace_last_linear(model, num_classes)
    return model


def save_checkpoint(path, model: nn.Module, *, labels: list[str], kind: str, config: dict) -> None:
    """Write the weights, the label order and the resolved config: everything `predict` needs.

    Only tensors and plain Python values go in, so `load_checkpoint` can use
    `torch.load(..., weights_only=True)`, which refuses to unpickle arbitrary objects.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(
        {"state_dict": state, "labels": list(labels), "kind": kind, "config": dict(config)},
        path,
    )


def load_checkpoint(path, *, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model saved by `save_checkpoint`; returns (model in eval mode, metadata)."""
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    missing = {"state_dict", "labels", "kind", "config"} - set(checkpoint)
    if missing:
        raise ValueError(f"{path}: not a tailtag checkpoint (missing {sorted(missing)})")
    config = checkpoint["config"]
    # The weights come from the checkpoint: never download pretrained ones again.
    model = build_model(config["model"], len(checkpoint["labels"]), weights=None)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    meta = {k: checkpoint[k] for k in ("labels", "kind", "config")}
    return model, meta
