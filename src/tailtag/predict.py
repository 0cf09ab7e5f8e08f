"""Tagging new images with a trained model and the per-label thresholds chosen on validation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tailtag.attributes import MULTI_LABEL, SINGLE_LABEL


def thresholds_from_metrics(metrics: Mapping, labels: Sequence[str]) -> dict[str, float | None]:
    """Per label, the threshold an evaluate stage chose on validation (None: unreachable).

    `metrics` is a `metrics/<attribute>/<scheme>.json` of the same model; a label of the
    model missing from it is an error naming the label.
    """
    per_label = metrics.get("per_label", {})
    missing = [label for label in labels if label not in per_label]
    if missing:
        raise ValueError(f"metrics have no threshold for label(s) {missing}: another model's?")
    return {label: per_label[label]["threshold"] for label in labels}


def tag(
    scores: np.ndarray,
    labels: Sequence[str],
    *,
    kind: str,
    thresholds: Mapping[str, float | None] | None = None,
) -> list[list[str]]:
    """Predicted labels per row of `scores` (N x C probabilities, columns = `labels`).

    Multi-label: every label whose score reaches its threshold (labels whose threshold is
    None never fire; without `thresholds`, 0.5 for all). Single-label: the top-1 label, as
    the paper's sleevetype model.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(f"scores must be N x {len(labels)}, got shape {scores.shape}")
    if kind == SINGLE_LABEL:
        return [[labels[i]] for i in scores.argmax(axis=1)]
    if kind != MULTI_LABEL:
        raise ValueError(f"unknown attribute kind {kind!r}")
    if thresholds is None:
        cut = np.full(len(labels), 0.5)
    else:
        cut = np.array(
            [np.inf if thresholds[name] is None else thresholds[name] for name in labels]
        )
    return [[labels[j] for j in np.flatnonzero(row >= cut)] for row in scores]
