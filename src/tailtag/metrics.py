"""Evaluation of one attribute: per-label AP, head/medium/tail means, thresholds, PR curves.

AP is scikit-learn's ``average_precision_score``, the step sum
AP = Σ_k (R_k − R_{k−1}) · P_k over the thresholds of the ranking, not the trapezoidal
``auc(recall, precision)``, which interpolates linearly and is optimistic.

A label with no positive in the test split has no defined AP (scikit-learn returns 0 with a
warning, which would drag the means down): it gets ``ap: None``, is listed in ``excluded``
and is left out of every mean.

Thresholds are chosen on the validation split and their precision / recall reported on the
test split, so the test numbers are not tuned on the data they describe. A label is
predicted positive when ``score >= threshold``.

Floats in the returned metrics are plain Python floats at full precision (never rounded: a
rounded threshold would no longer give the precision and recall reported for it, and JSON
round-trips doubles exactly); missing values are ``None``, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, precision_recall_curve

from tailtag.attributes import KINDS, SINGLE_LABEL

GROUPS = ("head", "medium", "tail")
NO_TEST_POSITIVE = "no positive in the test split"


@dataclass(frozen=True)
class ThresholdPick:
    """A per-label decision threshold and the precision / recall it gives on the data used.

    ``threshold`` is None exactly when ``reachable`` is False; ``reason`` says why then.
    """

    threshold: float | None
    precision: float | None
    recall: float | None
    reachable: bool
    reason: str | None = None


def pick_threshold(
    y_true: ArrayLike, scores: ArrayLike, *, min_precision: float = 0.6
) -> ThresholdPick:
    """Return the threshold with the highest recall among those with precision ≥ min_precision.

    The candidates are the points of ``precision_recall_curve(y_true, scores)`` (one per
    distinct score; predicted positive = ``scores >= threshold``). Its final point
    (precision 1, recall 0) has no threshold and is ignored: it would "reach" any precision
    by predicting nothing. Among candidates with equal highest recall the highest threshold
    wins: it flags the fewest items for the same true positives, so it has the highest
    precision of them. The comparison is exact (``precision >= min_precision``).

    Args:
        y_true: (N,) labels in {0, 1}.
        scores: (N,) finite scores, higher = more likely positive.
        min_precision: target precision in [0, 1].

    Returns:
        ThresholdPick with precision and recall measured on the data given. Unreachable
        (``threshold=None``, with a reason) when no threshold reaches the precision or when
        there is no positive.

    Example:
        >>> pick_threshold([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.7], min_precision=0.6)
        ThresholdPick(threshold=0.6, precision=0.6666666666666666, recall=1.0, reachable=True, reason=None)
    """  # noqa: E501
    _check_min_precision(min_precision)
    y = _as_binary(y_true, "y_true", ndim=1)
    s = _as_scores(scores, "scores", ndim=1)
    if y.shape != s.shape:
        raise ValueError(f"y_true has shape {y.shape} but scores has shape {s.shape}")
    return _pick(y, s, min_precision)


def _pick(y: np.ndarray, s: np.ndarray, min_precision: float) -> ThresholdPick:
    if y.size == 0 or not y.any():
        return ThresholdPick(None, None, None, False, "no positive example")
    precision, recall, thresholds = precision_recall_curve(y, s)
    # The last (precision 1, recall 0) point has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    ok = np.flatnonzero(precision >= min_precision)
    if ok.size == 0:
        return ThresholdPick(
            None,
            None,
            None,
            False,
            f"precision never reaches {min_precision:g} (best {float(precision.max()):.3f})",
        )
    best_recall = recall[ok].max()
    # thresholds increase with the index: the last tied index is the highest threshold.
    i = ok[recall[ok] == best_recall][-1]
    return ThresholdPick(float(thresholds[i]), float(precision[i]), float(recall[i]), True)


def group_of(support: int, *, head_min: int = 100, medium_min: int = 20) -> str:
    """Return ``"head"`` (support ≥ head_min), ``"medium"`` (≥ medium_min) or ``"tail"``."""
    if support >= head_min:
        return "head"
    if support >= medium_min:
        return "medium"
    return "tail"


def evaluate_attribute(
    *,
    labels: Sequence[str],
    kind: str,
    y_val: ArrayLike,
    scores_val: ArrayLike,
    y_test: ArrayLike,
    scores_test: ArrayLike,
    support_train: Mapping[str, int] | Sequence[int],
    min_precision: float = 0.6,
    head_min: int = 100,
    medium_min: int = 20,
) -> dict:
    """Return the JSON-safe metrics of one attribute for one trained model.

    Args:
        labels: (C,) label names, in the column order of the arrays.
        kind: ``"multi_label"`` or ``"single_label"``.
        y_val, y_test: (N, C) {0, 1} indicators; one-hot rows for single-label.
        scores_val, scores_test: (N, C) finite scores (sigmoid probabilities for
            multi-label, softmax probabilities for single-label).
        support_train: training support per label, as {label: n} or a (C,) sequence.
        min_precision: target precision of the per-label thresholds (chosen on val).
        head_min, medium_min: group bounds: head ≥ head_min > medium ≥ medium_min > tail.

    Returns:
        ``{"macro_ap", "micro_ap", "groups": {g: {"macro_ap", "n_labels"}},
        "per_label": {label: {"ap", "support_train", "support_val", "support_test", "group",
        "threshold", "reachable", "precision", "recall"}}, "excluded": [{"label", "reason"}],
        "n_test", "n_val"}`` plus ``"top1_accuracy"`` for single-label. ``macro_ap`` is the
        mean per-label AP over labels with a positive in test; ``micro_ap`` is
        ``average_precision_score(..., average="micro")`` over the same labels; a group's
        ``n_labels`` counts the labels in its mean. precision / recall are measured on test
        at the val threshold; None when the threshold is unreachable.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    _check_min_precision(min_precision)
    if not (isinstance(head_min, int) and isinstance(medium_min, int) and head_min > medium_min):
        raise ValueError(
            f"need integers head_min > medium_min, got head_min={head_min!r}, "
            f"medium_min={medium_min!r}"
        )
    names = _check_labels(labels)
    n_labels = len(names)
    yv = _as_binary(y_val, "y_val", ndim=2)
    sv = _as_scores(scores_val, "scores_val", ndim=2)
    yt = _as_binary(y_test, "y_test", ndim=2)
    st = _as_scores(scores_test, "scores_test", ndim=2)
    for split, y, s in (("val", yv, sv), ("test", yt, st)):
        if y.shape[1] != n_labels:
            raise ValueError(f"y_{split} has {y.shape[1]} columns but there are {n_labels} labels")
        if s.shape != y.shape:
            raise ValueError(f"scores_{split} has shape {s.shape} but y_{split} has {y.shape}")
        if kind == SINGLE_LABEL:
            bad = np.flatnonzero(y.sum(axis=1) != 1)
            if bad.size:
                raise ValueError(
                    f"y_{split} row {int(bad[0])} is not one-hot ({int(y[bad[0]].sum())} ones); "
                    "single-label targets need exactly one label per item"
                )
    if yt.shape[0] == 0:
        raise ValueError("the test split is empty")
    support = _check_support(support_train, names)

    per_label: dict[str, dict] = {}
    excluded: list[dict] = []
    included: list[int] = []
    group_aps: dict[str, list[float]] = {g: [] for g in GROUPS}
    for c, name in enumerate(names):
        group = group_of(support[c], head_min=head_min, medium_min=medium_min)
        n_test = int(yt[:, c].sum())
        ap = None
        if n_test == 0:
            excluded.append({"label": name, "reason": NO_TEST_POSITIVE})
        else:
            ap = float(average_precision_score(yt[:, c], st[:, c]))
            included.append(c)
            group_aps[group].append(ap)
        pick = _pick(yv[:, c], sv[:, c], min_precision)
        precision = recall = None
        if pick.reachable:
            # In float64: NumPy would round a Python-float threshold to float32 scores' dtype.
            predicted = st[:, c].astype(np.float64) >= pick.threshold
            tp = int(np.count_nonzero(predicted & (yt[:, c] == 1)))
            n_predicted = int(np.count_nonzero(predicted))
            # Precision of an empty prediction is undefined, recall without positives too.
            precision = tp / n_predicted if n_predicted else None
            recall = tp / n_test if n_test else None
        per_label[name] = {
            "ap": ap,
            "support_train": support[c],
            "support_val": int(yv[:, c].sum()),
            "support_test": n_test,
            "group": group,
            "threshold": pick.threshold,
            "reachable": pick.reachable,
            "precision": precision,
            "recall": recall,
        }

    micro = None
    if included:
        micro = float(average_precision_score(yt[:, included], st[:, included], average="micro"))
    result: dict = {
        "macro_ap": _mean(per_label[names[c]]["ap"] for c in included),
        "micro_ap": micro,
        "groups": {
            g: {"macro_ap": _mean(group_aps[g]), "n_labels": len(group_aps[g])} for g in GROUPS
        },
        "per_label": per_label,
        "excluded": excluded,
        "n_test": int(yt.shape[0]),
        "n_val": int(yv.shape[0]),
    }
    if kind == SINGLE_LABEL:
        # argmax takes the first of tied scores.
        hits = np.argmax(st, axis=1) == np.argmax(yt, axis=1)
        result["top1_accuracy"] = float(hits.mean())
    return result


def pr_curve_table(
    label_names: Sequence[str], y: ArrayLike, scores: ArrayLike, *, max_points: int = 200
) -> pd.DataFrame:
    """Return the PR curve of every label as a long table: ``label, recall, precision, threshold``.

    Rows of a label run in order of increasing threshold (recall non-increasing) and end with
    the thresholdless point (recall 0, precision 1), whose threshold is NaN. Points that
    cannot lie on the curve are dropped (``drop_intermediate=True``); a label still longer
    than ``max_points`` keeps its first and last point and points evenly spaced along the
    curve's length in the (recall, precision) plane: a subset in the original order, so
    recall stays monotone. A label with no positive in ``y`` has no curve and no rows (the
    metrics list it as excluded).

    Args:
        label_names: (C,) label names.
        y: (N, C) {0, 1} indicators.
        scores: (N, C) finite scores.
        max_points: at most this many rows per label (≥ 2).
    """
    names = _check_labels(label_names)
    yy = _as_binary(y, "y", ndim=2)
    ss = _as_scores(scores, "scores", ndim=2)
    if yy.shape[1] != len(names):
        raise ValueError(f"y has {yy.shape[1]} columns but there are {len(names)} labels")
    if ss.shape != yy.shape:
        raise ValueError(f"scores has shape {ss.shape} but y has {yy.shape}")
    if not (isinstance(max_points, int) and max_points >= 2):
        raise ValueError(f"max_points must be an integer >= 2, got {max_points!r}")
    frames = []
    for c, name in enumerate(names):
        if not yy[:, c].any():
            continue
        precision, recall, thresholds = precision_recall_curve(
            yy[:, c], ss[:, c], drop_intermediate=True
        )
        thresholds = np.append(thresholds.astype(np.float64), np.nan)
        keep = _decimate(recall, precision, max_points)
        frames.append(
            pd.DataFrame(
                {
                    "label": name,
                    "recall": recall[keep],
                    "precision": precision[keep],
                    "threshold": thresholds[keep],
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            {
                "label": pd.Series(dtype=object),
                "recall": pd.Series(dtype=np.float64),
                "precision": pd.Series(dtype=np.float64),
                "threshold": pd.Series(dtype=np.float64),
            }
        )
    return pd.concat(frames, ignore_index=True)


def _decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices (sorted, first and last included) of ≤ max_points points spread by arc length."""
    n = x.size
    if n <= max_points:
        return np.arange(n)
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    targets = np.linspace(0.0, length[-1], max_points)
    idx = np.unique(np.searchsorted(length, targets).clip(0, n - 1))
    return np.unique(np.concatenate([[0], idx, [n - 1]]))


def _mean(values) -> float | None:
    values = list(values)
    return float(math.fsum(values) / len(values)) if values else None


def _check_min_precision(min_precision: float) -> None:
    if not (
        isinstance(min_precision, (int, float))
        and not isinstance(min_precision, bool)
        and 0.0 <= min_precision <= 1.0
    ):
        raise ValueError(f"min_precision must be a number in [0, 1], got {min_precision!r}")


def _check_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        raise TypeError("labels must be a sequence of label names, not a single string")
    names = list(labels)
    if not names:
        raise ValueError("labels is empty")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise ValueError(f"label {i} is {name!r}; labels must be non-empty strings")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"label {name!r} appears twice in labels")
        seen.add(name)
    return names


def _check_support(support: Mapping[str, int] | Sequence[int], names: list[str]) -> list[int]:
    if isinstance(support, Mapping):
        missing = [n for n in names if n not in support]
        if missing:
            raise ValueError(f"support_train has no entry for labels {missing}")
        extra = sorted(set(support) - set(names))
        if extra:
            raise ValueError(f"support_train has entries for unknown labels {extra}")
        values = [support[n] for n in names]
    else:
        values = list(support)
        if len(values) != len(names):
            raise ValueError(
                f"support_train has {len(values)} entries but there are {len(names)} labels"
            )
    out = []
    for name, v in zip(names, values, strict=True):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"support_train[{name!r}] must be a non-negative integer, got {v!r}")
        out.append(int(v))
    return out


def _as_binary(y: ArrayLike, name: str, *, ndim: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must hold 0/1 values, got dtype {arr.dtype}")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must hold only 0 and 1; found {arr[pos]!r} at index {pos}")
    return arr.astype(np.int8)


def _as_scores(scores: ArrayLike, name: str, *, ndim: int) -> np.ndarray:
    arr = np.asarray(scores)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    finite = np.isfinite(arr)
    if not finite.all():
        pos = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{name} must be finite; found {arr[pos]!r} at index {pos}")
    return arr
