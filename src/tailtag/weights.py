"""Per-label loss weights from training-split supports.

Three schemes, for a label c with training support n_c:

=======  ==========================================================================
``nw``   w_c = 1
``ifw``  w_c = λ / n_c^power          (power 1: inverse frequency; 0.5: inverse sqrt)
``iew``  w_c = 1 / E(n_c) = (1 − β) / (1 − β^{n_c}),  E(n) = (1 − βⁿ) / (1 − β)
=======  ==========================================================================

``iew`` is the class-balanced weighting of Cui et al. (CVPR 2019). E(n) ≤ min(n, 1/(1 − β)):
β = 0 gives uniform weights, β → 1 approaches ``ifw``, and for n ≫ 1/(1 − β) the weights
flatten out (β = 0.99 only separates labels with fewer than a few hundred examples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

SCHEMES = ("nw", "ifw", "iew")
NORMALIZE = ("num_classes", "one", None)


def class_weights(
    counts: ArrayLike,
    *,
    scheme: str,
    beta: float = 0.99,
    lam: float = 1.0,
    power: float = 1.0,
    normalize: str | None = "num_classes",
    active: ArrayLike | None = None,
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """Return the loss weight of each label, float64 of shape (C,).

    Args:
        counts: (C,) non-negative integer supports of the labels in the training split.
        scheme: one of ``SCHEMES`` (see the module docstring for the formulas).
        beta: ``iew`` only; in [0, 1). 1 − β^n is computed as −expm1(n·log β), so
            β close to 1 and large n stay accurate.
        lam: ``ifw`` only; the λ multiplier (> 0).
        power: ``ifw`` only; the exponent on n_c (≥ 0): 1 inverse frequency, 0.5 inverse sqrt.
        normalize: ``"num_classes"`` rescales so the active weights sum to the number of
            active labels (as Cui et al.'s code: same scale as the unweighted loss);
            ``"one"`` so they sum to 1 (as the seed paper); ``None`` returns raw weights.
            λ cancels under either normalisation.
        active: optional (C,) boolean mask. Inactive labels get weight 0 and are left out
            of the normalisation; their count may be 0.
        labels: optional (C,) label names, used only in error messages.

    Raises:
        ValueError: on an active label with count 0 (for every scheme: a label with no
            training example cannot be weighted; mark it inactive instead), on negative,
            non-integer, non-finite or empty counts, on β outside [0, 1), on an unknown
            scheme or normalisation, or when no label is active.

    Example:
        >>> class_weights([10, 100], scheme="ifw", normalize=None)
        array([0.1 , 0.01])
        >>> class_weights([10, 100], scheme="ifw").round(4)
        array([1.8182, 0.1818])
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown weighting scheme {scheme!r}; known schemes: {SCHEMES}")
    if normalize not in NORMALIZE:
        raise ValueError(f"unknown normalize={normalize!r}; expected one of {NORMALIZE}")
    _check_real("beta", beta)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    _check_real("lam", lam)
    if not lam > 0.0:
        raise ValueError(f"lam must be > 0, got {lam!r}")
    _check_real("power", power)
    if not power >= 0.0:
        raise ValueError(f"power must be >= 0, got {power!r}")

    n = _as_counts(counts, labels)
    if labels is not None and len(labels) != n.size:
        raise ValueError(f"labels has {len(labels)} names but counts has {n.size} entries")
    mask = _as_mask(active, n.size)
    if not mask.any():
        raise ValueError("no label is active: at least one label needs a weight")
    zero = np.flatnonzero(mask & (n == 0))
    if zero.size:
        i = int(zero[0])
        raise ValueError(
            f"label {_name(i, labels)} has count 0 in the training split: it cannot be "
            f"weighted; mark it inactive with active=... (count 0 at indices {zero.tolist()})"
        )

    n_active = n[mask]
    if scheme == "nw":
        w_active = np.ones(n_active.size)
    elif scheme == "ifw":
        w_active = lam * np.power(n_active, -power)
    elif beta == 0.0:  # iew: E(n) = 1 for every n ≥ 1; log(0) is avoided
        w_active = np.ones(n_active.size)
    else:
        # 1 − β^n = −expm1(n·log β) with log β = log1p(β − 1); β − 1 is exact in float64
        # for β ≥ 0.5, so neither term loses digits as β → 1.
        one_minus_beta_n = -np.expm1(n_active * math.log1p(beta - 1.0))
        w_active = (1.0 - beta) / one_minus_beta_n

    if normalize == "num_classes":
        w_active = w_active * (w_active.size / w_active.sum())
    elif normalize == "one":
        w_active = w_active / w_active.sum()

    weights = np.zeros(n.size)
    weights[mask] = w_active
    return weights


def _check_real(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def _name(i: int, labels: Sequence[str] | None) -> str:
    return f"{i} ({labels[i]!r})" if labels is not None and i < len(labels) else str(i)


def _as_counts(counts: ArrayLike, labels: Sequence[str] | None) -> np.ndarray:
    """Validate counts and return them as float64 (C,), exact for integers below 2**53."""
    try:
        arr = np.asarray(counts)
    except (TypeError, ValueError) as err:
        raise ValueError(f"counts must be a 1-D array of integers: {err}") from err
    if arr.ndim != 1:
        raise ValueError(f"counts must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("counts is empty: there are no labels to weight")
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(f"counts must be integers, got dtype {arr.dtype}")
    values = arr.astype(np.float64)
    for what, bad in (
        ("is not finite", ~np.isfinite(values)),
        ("is not an integer", np.isfinite(values) & (values != np.round(values))),
        ("is negative", values < 0),
    ):
        idx = np.flatnonzero(bad)
        if idx.size:
            i = int(idx[0])
            raise ValueError(f"count of label {_name(i, labels)} {what}: {arr[i]!r}")
    return values


def _as_mask(active: ArrayLike | None, size: int) -> np.ndarray:
    if active is None:
        return np.ones(size, dtype=bool)
    mask = np.asarray(active)
    if mask.dtype != bool:
        raise ValueError(f"active must be a boolean mask, got dtype {mask.dtype}")
    if mask.shape != (size,):
        raise ValueError(f"active has shape {mask.shape} but counts has {size} entries")
    return mask
