"""Class-weighted (and optionally focal) losses for multi-label and single-label tagging.

The per-label weights w (from :func:`tailtag.weights.class_weights`) are passed in and
kept as a float32 buffer, so they move with the module (``.to(device)``) and are saved in
its ``state_dict``. Losses are computed in at least float32, whatever the logits' dtype.
Both losses are invariant to rescaling all weights by a constant (λ cancels).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn

from tailtag.attributes import KINDS, MULTI_LABEL, SINGLE_LABEL


class _WeightedLoss(nn.Module):
    weight: torch.Tensor

    def __init__(self, weight: ArrayLike | torch.Tensor, *, gamma: float = 0.0) -> None:
        super().__init__()
        w = torch.as_tensor(weight).detach().clone().to(device="cpu", dtype=torch.float32)
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"weight must be a non-empty 1-D array, got shape {tuple(w.shape)}")
        bad = torch.nonzero(~torch.isfinite(w) | (w < 0)).flatten()
        if bad.numel():
            i = int(bad[0])
            raise ValueError(f"weight of label {i} must be finite and >= 0, got {w[i].item()}")
        if not w.sum() > 0:
            raise ValueError("weight is all zeros: at least one label needs a positive weight")
        if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
            raise ValueError(f"gamma must be a real number, got {gamma!r}")
        if not (math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")
        self.gamma = float(gamma)
        self.register_buffer("weight", w)

    def extra_repr(self) -> str:
        return f"num_labels={self.weight.numel()}, gamma={self.gamma}"

    def _check_logits(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2:
            raise ValueError(f"logits must be 2-D (N, C), got shape {tuple(logits.shape)}")
        if not logits.is_floating_point():
            raise ValueError(f"logits must be floating point, got dtype {logits.dtype}")
        if logits.shape[1] != self.weight.numel():
            raise ValueError(
                f"weight has {self.weight.numel()} entries but logits have {logits.shape[1]} "
                "columns: one weight per label is needed"
            )
        if logits.shape[0] == 0:
            raise ValueError("empty batch: logits have 0 rows")
        # float16/bfloat16 logits are upcast: weights and log-probabilities need the range.
        return logits.to(torch.promote_types(logits.dtype, torch.float32))


class WeightedBCEWithLogits(_WeightedLoss):
    """Class-weighted sigmoid binary cross-entropy for multi-label targets.

    For logits z (N, C) and targets y (N, C) in {0, 1} (floating point),
    ℓ_ic = −y_ic·log σ(z_ic) − (1 − y_ic)·log(1 − σ(z_ic)) and

        loss = Σ_{i,c} w_c · m_ic · ℓ_ic / (N · Σ_c w_c),

    the batch mean of the w-weighted average over labels: the multi-label analogue of the
    seed paper's eq. (3). w_c multiplies both the positive and the negative term of label c
    (class-wise). With all w_c equal and γ = 0 this is ``F.binary_cross_entropy_with_logits``
    with mean reduction. It differs from passing ``weight=w`` to that function, which
    divides by N·C instead of N·Σ_c w_c (so depends on the scale of w), and from
    ``pos_weight``, which weights only the positive term. A label with w_c = 0 contributes
    nothing: the loss equals the loss with that column dropped.

    Focal modulation (γ > 0): m_ic = (1 − p_t)^γ with p_t = σ(z) where y = 1 and 1 − σ(z)
    where y = 0, computed as exp(γ·(−y·z − softplus(−z))): the form of Cui et al.'s code
    (which writes log1p(exp(−z)), overflowing for z < −88 in float32), free of the NaN
    gradient that pow gives at p_t = 1 for γ < 1. The normalisation is the same as for
    γ = 0 (Cui et al.'s code divides by the number of positive labels instead), so γ = 0
    gives the plain loss exactly; with ``iew`` weights this is their class-balanced focal
    loss with class-wise weights.
    """

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return the scalar loss for logits (N, C) and float targets (N, C) in {0, 1}."""
        z = self._check_logits(logits)
        if targets.shape != logits.shape:
            raise ValueError(
                f"targets have shape {tuple(targets.shape)} but logits have shape "
                f"{tuple(logits.shape)}: multi-label targets are an (N, C) 0/1 matrix"
            )
        if not targets.is_floating_point():
            raise ValueError(
                f"targets must be floating point 0/1 (use targets.float()), got {targets.dtype}"
            )
        y = targets.to(z.dtype)
        loss = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        if self.gamma:
            # log(1 − p_t) = −y·z − softplus(−z) for y in {0, 1}.
            loss = loss * torch.exp(self.gamma * (-y * z - F.softplus(-z)))
        w = self.weight.to(z.dtype)
        return (loss * w).sum() / (z.shape[0] * w.sum())


class WeightedCrossEntropy(_WeightedLoss):
    """Class-weighted softmax cross-entropy for single-label targets.

    For logits z (N, K) and integer targets y (N,) in [0, K):

        loss = Σ_i w_{y_i} · m_i · (−log p_{i,y_i}) / Σ_i w_{y_i},   p = softmax(z),

    the seed paper's eq. (3). With γ = 0 this is exactly
    ``F.cross_entropy(logits, target, weight=w)``. A batch whose targets all have weight 0
    gives NaN, as in PyTorch.

    Focal modulation (γ > 0): m_i = (1 − p_{i,y_i})^γ, with log(1 − p_y) computed as
    logsumexp over the other classes minus logsumexp over all classes, which stays finite
    (and has finite gradients, even for γ < 1) when p_y rounds to 1. Normalised by
    Σ_i w_{y_i} as for γ = 0, so γ = 0 gives the plain loss.
    """

    def __init__(self, weight: ArrayLike | torch.Tensor, *, gamma: float = 0.0) -> None:
        super().__init__(weight, gamma=gamma)
        if self.weight.numel() < 2:
            raise ValueError(
                f"a single-label loss needs at least 2 classes, got {self.weight.numel()}"
            )

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the scalar loss for logits (N, K) and integer class indices (N,)."""
        z = self._check_logits(logits)
        if target.ndim != 1 or target.shape[0] != logits.shape[0]:
            raise ValueError(
                f"target must be 1-D with one class index per row ({logits.shape[0]}), "
                f"got shape {tuple(target.shape)}"
            )
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise ValueError(f"target must hold integer class indices, got dtype {target.dtype}")
        k = z.shape[1]
        bad = torch.nonzero((target < 0) | (target >= k)).flatten()
        if bad.numel():
            i = int(bad[0])
            raise ValueError(f"target of row {i} is {int(target[i])}, outside [0, {k})")
        target = target.long()
        w = self.weight.to(z.dtype)
        if not self.gamma:
            return F.cross_entropy(z, target, weight=w)
        idx = target.unsqueeze(1)
        lse = torch.logsumexp(z, dim=1)
        nll = lse - z.gather(1, idx).squeeze(1)
        others = z.scatter(1, idx, float("-inf"))
        log_1m_p = torch.logsumexp(others, dim=1) - lse
        w_i = w[target]
        return (w_i * torch.exp(self.gamma * log_1m_p) * nll).sum() / w_i.sum()


def make_loss(
    kind: str, weight: ArrayLike | torch.Tensor, *, gamma: float = 0.0
) -> WeightedBCEWithLogits | WeightedCrossEntropy:
    """Return the weighted loss for an attribute kind (one of ``KINDS``)."""
    if kind == MULTI_LABEL:
        return WeightedBCEWithLogits(weight, gamma=gamma)
    if kind == SINGLE_LABEL:
        return WeightedCrossEntropy(weight, gamma=gamma)
    raise ValueError(f"unknown attribute kind {kind!r}; known kinds: {KINDS}")
