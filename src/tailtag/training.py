"""The training loop: Adam, per-epoch validation macro AP, best epoch kept; and prediction."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import nn
from tqdm.auto import tqdm

from tailtag.attributes import MULTI_LABEL
from tailtag.data import iterate_batches, one_hot, to_input


@dataclass(frozen=True)
class TrainConfig:
    """Every training knob (params.yaml `train:`, with per-attribute overrides)."""

    model: str = "smallcnn"
    weights: str | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    image_size: int | None = None
    flip: bool = True
    translate: float = 0.1
    seed: int = 0
    device: str = "auto"
    threads: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown train setting(s) {unknown}; known: {sorted(known)}")
        config = cls(**values)
        if config.epochs < 1 or config.batch_size < 1 or config.lr <= 0:
            raise ValueError(f"epochs, batch_size and lr must be positive: {config}")
        return config

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device is {name!r} but CUDA is not available")
    return device


def _autocast(device: torch.device):
    """Mixed precision on CUDA (bfloat16 where supported, else float16); none on the CPU."""
    if device.type != "cuda":
        return nullcontext(), None
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), None
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")


def macro_average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Mean AP over the columns of indicator matrix `y` that hold a positive (NaN if none)."""
    has_pos = y.sum(axis=0) > 0
    if not has_pos.any():
        return float("nan")
    return float(average_precision_score(y[:, has_pos], scores[:, has_pos], average="macro"))


@torch.no_grad()
def predict_scores(
    model: nn.Module,
    images: np.ndarray,
    rows: np.ndarray,
    *,
    kind: str,
    batch_size: int = 256,
    device: torch.device | None = None,
    image_size: int | None = None,
) -> np.ndarray:
    """Scores N x C: sigmoid probabilities (multi-label) or softmax probabilities (single-label)."""
    device = device or next(model.parameters()).device
    model.eval()
    autocast, _ = _autocast(device)
    out = []
    for x, _ in iterate_batches(images, rows, None, batch_size=batch_size):
        inputs = to_input(
            x, device=device, image_size=image_size, channels_last=device.type == "cuda"
        )
        with autocast:
            logits = model(inputs).float()
        probs = torch.sigmoid(logits) if kind == MULTI_LABEL else torch.softmax(logits, dim=1)
        out.append(probs.cpu().numpy())
    if not out:
        raise ValueError("no rows to predict")
    return np.concatenate(out)


@dataclass
class FitResult:
    state_dict: dict
    best_epoch: int
    best_val_macro_ap: float
    history: list[dict]


def fit(
    model: nn.Module,
    loss_fn: nn.Module,
    images: np.ndarray,
    *,
    kind: str,
    train_rows: np.ndarray,
    train_targets: np.ndarray,
    val_rows: np.ndarray,
    val_targets: np.ndarray,
    num_classes: int,
    config: TrainConfig,
    on_epoch: Callable[[dict], None] | None = None,
    progress: bool = True,
) -> FitResult:
    """Train with Adam for `config.epochs` epochs; keep the epoch with the best validation
    macro AP (the first one on ties). Returns that epoch's weights and the per-epoch history
    (`epoch`, `train_loss`, `val_macro_ap`), which `on_epoch` also receives as it goes."""
    device = resolve_device(config.device)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    channels_last = True  # faster for convolutions on CUDA and, with oneDNN, on the CPU too
    model = model.to(device).to(memory_format=torch.channels_last)
    loss_fn = loss_fn.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    autocast, scaler = _autocast(device)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    y_val = one_hot(val_targets, num_classes)

    best: FitResult | None = None
    history: list[dict] = []
    epochs = tqdm(range(1, config.epochs + 1), desc="epochs", disable=not progress, unit="epoch")
    for epoch in epochs:
        model.train()
        total, seen = 0.0, 0
        for x, y in iterate_batches(
            images, train_rows, train_targets, batch_size=config.batch_size, rng=rng
        ):
            inputs = to_input(
                x,
                device=device,
                image_size=config.image_size,
                augment=True,
                flip=config.flip,
                translate=config.translate,
                generator=generator,
                channels_last=channels_last,
            )
            y = y.to(device, non_blocking=True)
            with autocast:
                logits = model(inputs)
            loss = loss_fn(logits.float(), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch}: loss is {loss.item()}; lower train.lr")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            total += loss.item() * len(x)
            seen += len(x)
        scores = predict_scores(
            model, images, val_rows, kind=kind, device=device, image_size=config.image_size
        )
        record = {
            "epoch": epoch,
            "train_loss": total / max(seen, 1),
            "val_macro_ap": macro_average_precision(y_val, scores),
        }
        history.append(record)
        epochs.set_postfix(
            loss=f"{record['train_loss']:.4f}", val_ap=f"{record['val_macro_ap']:.3f}"
        )
        if on_epoch is not None:
            on_epoch(record)
        if best is None or record["val_macro_ap"] > best.best_val_macro_ap:
            state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            best = FitResult(state, epoch, record["val_macro_ap"], history)
    assert best is not None
    return best
