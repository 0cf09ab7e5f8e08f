"""From the ingested tables to tensors: label encoding, batches from the image cache, and the
on-device input pipeline (augmentation, resizing, normalisation)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tailtag.attributes import KINDS, SINGLE_LABEL

# ImageNet statistics: what pretrained torchvision models expect, harmless for the small CNN.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def encode_targets(
    cells: Sequence[Sequence[str] | None], labels: Sequence[str], *, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Encode one attribute's label cells against `labels` (the labels being trained).

    Returns (keep, targets): `keep` is a boolean mask over the cells of the items that take
    part; `targets` has one row per kept item: a float32 N x C indicator matrix for
    multi-label, int64 class indices for single-label. Unlabelled cells (None or empty) are
    not kept; so are cells whose labels are all outside `labels` (labels left out by
    `labels.min_support`): a multi-label item keeps its other labels.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown attribute kind {kind!r}; expected one of {KINDS}")
    position = {label: i for i, label in enumerate(labels)}
    keep = np.zeros(len(cells), dtype=bool)
    rows: list[np.ndarray] = []
    for i, cell in enumerate(cells):
        if cell is None or len(cell) == 0:
            continue
        if kind == SINGLE_LABEL and len(cell) != 1:
            raise ValueError(
                f"item {i}: single-label attribute has {len(cell)} labels {list(cell)}"
            )
        hits = [position[label] for label in cell if label in position]
        if not hits:
            continue
        keep[i] = True
        rows.append(np.asarray(hits, dtype=np.int64))
    if kind == SINGLE_LABEL:
        return keep, np.asarray([r[0] for r in rows], dtype=np.int64)
    targets = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for j, hits in enumerate(rows):
        targets[j, hits] = 1.0
    return keep, targets


def one_hot(targets: np.ndarray, num_classes: int) -> np.ndarray:
    """Class indices (N,) -> float32 indicator matrix (N, C); indicator input passes through."""
    if targets.ndim == 2:
        return targets.astype(np.float32, copy=False)
    out = np.zeros((len(targets), num_classes), dtype=np.float32)
    out[np.arange(len(targets)), targets] = 1.0
    return out


def iterate_batches(
    images: np.ndarray,
    rows: np.ndarray,
    targets: np.ndarray | None,
    *,
    batch_size: int,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield (uint8 N x H x W x 3 images, targets) batches, shuffled when `rng` is given.

    `images` is the (memory-mapped) image cache; `rows` its rows to read. Only one batch is
    in memory at a time, so the cache may be far larger than RAM.
    """
    order = rng.permutation(len(rows)) if rng is not None else np.arange(len(rows))
    for start in range(0, len(order), batch_size):
        pick = order[start : start + batch_size]
        x = torch.from_numpy(np.ascontiguousarray(images[rows[pick]]))
        y = None if targets is None else torch.from_numpy(targets[pick])
        yield x, y


def to_input(
    batch: torch.Tensor,
    *,
    device: torch.device,
    image_size: int | None = None,
    augment: bool = False,
    flip: bool = True,
    translate: float = 0.0,
    generator: torch.Generator | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 N x H x W x 3 -> normalised float N x 3 x S x S on `device`.

    Augmentation (train only) is a random horizontal flip and a random translation of up to
    `translate` x the image size, done together as one affine resampling on the device. Its
    random numbers come from the CPU `generator`, so runs are reproducible on any device.
    """
    x = batch.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    if augment and (flip or translate > 0):
        n = x.shape[0]
        sign = torch.ones(n)
        if flip:
            sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 * translate)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = sign
        theta[:, 1, 1] = 1.0
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta.to(device), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if image_size and image_size != x.shape[-1]:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


SPLITS = ("train", "val", "test")


def split_targets(
    cells: Sequence[Sequence[str] | None],
    split: Sequence[str],
    image_rows: np.ndarray,
    labels: Sequence[str],
    *,
    kind: str,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per split, (rows into the image cache, targets) of the items labelled for an attribute.

    cells, split and image_rows are aligned with the item table (one entry per item).
    """
    keep, targets = encode_targets(cells, labels, kind=kind)
    split = np.asarray(split)[keep]
    image_rows = np.asarray(image_rows)[keep]
    unknown = set(np.unique(split)) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split name(s) {sorted(unknown)}; expected {SPLITS}")
    return {name: (image_rows[split == name], targets[split == name]) for name in SPLITS}
