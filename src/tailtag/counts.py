"""Label supports per split, head / medium / tail groups and the label distribution plot.

Supports count items: the support of label c in a split is the number of items of that
split whose cell for the attribute lists c. Groups and the min-support cut-off use the
training support only, as do the loss weights computed from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailtag.split import SPLITS, label_indicators, labelled_mask

GROUPS: tuple[str, ...] = ("head", "medium", "tail")
GROUP_COLOURS: dict[str, str] = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}


def _split_codes(splits: Sequence[str] | np.ndarray) -> np.ndarray:
    values = np.asarray(splits, dtype=object)
    codes = np.full(len(values), -1, dtype=np.int64)
    for k, name in enumerate(SPLITS):
        codes[values == name] = k
    if (codes < 0).any():
        row = int(np.flatnonzero(codes < 0)[0])
        raise ValueError(f"row {row}: split {values[row]!r} is not one of {SPLITS}")
    return codes


def align_splits(
    item_ids: Sequence[Any], split_item_ids: Sequence[Any], split_values: Sequence[str]
) -> np.ndarray:
    """The split of each item, looked up by item id: [n] object array of split names.

    Every item must be in the assignment exactly once and the assignment must hold no other
    item; otherwise a ValueError names the first offending item.
    """
    assignment = pd.Series(np.asarray(split_values, dtype=object), index=pd.Index(split_item_ids))
    duplicated = assignment.index.duplicated()
    if duplicated.any():
        raise ValueError(f"item {assignment.index[duplicated][0]!r} is assigned more than once")
    items = pd.Index(item_ids)
    if items.duplicated().any():
        raise ValueError(f"item {items[items.duplicated()][0]!r} appears twice in the item table")
    position = assignment.index.get_indexer(items)
    if (position < 0).any():
        raise ValueError(f"item {items[int(np.flatnonzero(position < 0)[0])]!r} has no split")
    if len(assignment) != len(items):
        extra = assignment.index.difference(items)
        raise ValueError(f"split assigns item {extra[0]!r}, which is not in the item table")
    out = assignment.to_numpy()[position]
    _split_codes(out)  # every value a known split
    return out


def label_supports(
    values: Any,
    splits: Sequence[str] | np.ndarray,
    labels: Sequence[str],
    *,
    attribute: str,
    kind: str,
    item_ids: Sequence[Any] | None = None,
) -> dict[str, dict[str, int]]:
    """Items per split carrying each label: {split: {label: n}}, every label and split present.

    values: n cells (lists of labels or null, see `split.label_indicators`); splits: [n]
    split names; labels: the vocabulary, whose order the inner dicts keep.
    """
    indicators, _ = label_indicators(
        values, labels, attribute=attribute, kind=kind, item_ids=item_ids
    )
    codes = _split_codes(splits)
    if len(codes) != len(indicators):
        raise ValueError(
            f"attribute {attribute!r}: {len(indicators)} cells but {len(codes)} splits"
        )
    counts = np.zeros((len(SPLITS), len(labels)), dtype=np.int64)
    for col in range(len(labels)):
        counts[:, col] = np.bincount(codes, weights=indicators[:, col], minlength=len(SPLITS))
    return {
        name: {label: int(counts[k, c]) for c, label in enumerate(labels)}
        for k, name in enumerate(SPLITS)
    }


def labelled_items(
    values: Any, splits: Sequence[str] | np.ndarray, *, attribute: str
) -> dict[str, int]:
    """Items per split labelled for the attribute (cell not null): {split: n}."""
    labelled = labelled_mask(values, attribute=attribute)
    codes = _split_codes(splits)
    counts = np.bincount(codes[labelled], minlength=len(SPLITS))
    return {name: int(counts[k]) for k, name in enumerate(SPLITS)}


def assign_groups(
    train_support: Mapping[str, int], *, head_min: int = 100, medium_min: int = 20
) -> dict[str, str]:
    """{label: "head" | "medium" | "tail"}: head if n >= head_min, medium if n >= medium_min."""
    if not 0 <= medium_min <= head_min:
        raise ValueError(f"need 0 <= medium_min <= head_min, got {medium_min}, {head_min}")
    return {
        label: "head" if n >= head_min else "medium" if n >= medium_min else "tail"
        for label, n in train_support.items()
    }


def active_labels(
    train_support: Mapping[str, int], *, min_support: int = 0
) -> tuple[list[str], dict[str, int]]:
    """(labels with training support >= min_support, {label: support} of the others).

    Both keep the order of `train_support`. min_support 0 keeps every label.
    """
    if min_support < 0:
        raise ValueError(f"min_support must be >= 0, got {min_support}")
    active = [label for label, n in train_support.items() if n >= min_support]
    inactive = {label: int(n) for label, n in train_support.items() if n < min_support}
    return active, inactive


def count_summary(
    attribute: str,
    kind: str,
    labels: Sequence[str],
    supports: Mapping[str, Mapping[str, int]],
    n_items: Mapping[str, int],
    *,
    min_support: int = 0,
    head_min: int = 100,
    medium_min: int = 20,
) -> dict[str, Any]:
    """The counts JSON of one attribute.

    Keys: attribute, kind, labels (vocabulary order), active, inactive {label: train
    support}, support {split: {label: n}}, group {label: head|medium|tail}, n_items
    {split: items labelled for the attribute}, thresholds {min_support, head_min, medium_min}.
    """
    missing = [s for s in SPLITS if s not in supports or s not in n_items]
    if missing:
        raise KeyError(
            f"attribute {attribute!r}: no supports or item counts for split(s) {missing}"
        )
    for name in SPLITS:
        unknown = set(supports[name]) - set(labels)
        absent = [label for label in labels if label not in supports[name]]
        if unknown or absent:
            raise KeyError(
                f"attribute {attribute!r}, split {name!r}: supports must name exactly the "
                f"vocabulary; unknown {sorted(unknown)}, missing {absent}"
            )
    support = {s: {label: int(supports[s][label]) for label in labels} for s in SPLITS}
    active, inactive = active_labels(support["train"], min_support=min_support)
    return {
        "attribute": attribute,
        "kind": kind,
        "labels": list(labels),
        "active": active,
        "inactive": inactive,
        "support": support,
        "group": assign_groups(support["train"], head_min=head_min, medium_min=medium_min),
        "n_items": {s: int(n_items[s]) for s in SPLITS},
        "thresholds": {"min_support": min_support, "head_min": head_min, "medium_min": medium_min},
    }


def distribution_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """One row per label, largest training support first (ties in vocabulary order).

    Columns: label, group, active (bool), train, val, test, total.
    """
    labels = summary["labels"]
    active = set(summary["active"])
    table = pd.DataFrame(
        {
            "label": labels,
            "group": [summary["group"][label] for label in labels],
            "active": [label in active for label in labels],
            **{s: [summary["support"][s][label] for label in labels] for s in SPLITS},
        }
    )
    table["total"] = table[list(SPLITS)].sum(axis=1)
    return table.sort_values("train", ascending=False, kind="stable").reset_index(drop=True)


def plot_distribution(
    summary: Mapping[str, Any], path: str | Path, *, log: bool | None = None
) -> None:
    """Bar chart of training support per label, sorted, coloured by group, written to `path`.

    log None picks a log axis when the largest support is >= 50 times the smallest non-zero
    one. Dashed lines mark the head and medium thresholds; inactive labels are hatched.
    """
    # The object-oriented API with the Agg canvas: no pyplot state, no display needed.
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    table = distribution_table(summary)
    train = table["train"].to_numpy()
    nonzero = train[train > 0]
    if log is None:
        log = bool(len(nonzero)) and nonzero.max() >= 50 * nonzero.min()
    fig = Figure(figsize=(max(4.0, 0.45 * len(table) + 1.5), 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(table))
    bars = ax.bar(x, train, color=[GROUP_COLOURS[g] for g in table["group"]])
    for bar, is_active in zip(bars, table["active"], strict=True):
        if not is_active:
            bar.set_hatch("//")
            bar.set_alpha(0.5)
    for value, name in (
        (summary["thresholds"]["head_min"], "head"),
        (summary["thresholds"]["medium_min"], "medium"),
    ):
        if value > 0:
            ax.axhline(value, color=GROUP_COLOURS[name], linestyle="--", linewidth=0.8)
    for xi, value in zip(x, train, strict=True):
        # a zero has no place on a log axis: write it just above the floor
        ax.annotate(
            str(int(value)),
            (xi, max(value, 1) if log else value),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_xticks(x, table["label"], rotation=60, ha="right")
    ax.set_ylabel("items in train" + (" (log scale)" if log else ""))
    top = max(float(train.max(initial=0)), 1.0)
    if log:  # room above the tallest bar for its number
        ax.set_yscale("log")
        ax.set_ylim(0.8, top * 2.0)
    else:
        ax.set_ylim(0, top * 1.1)
    ax.set_title(f"{summary['attribute']} ({summary['kind']}): training support per label")
    present = [g for g in GROUPS if g in set(table["group"])]
    head_min, medium_min = (summary["thresholds"][k] for k in ("head_min", "medium_min"))
    legend = {
        "head": f"head (>= {head_min})",
        "medium": f"medium ({medium_min}-{head_min - 1})" if head_min > medium_min else "medium",
        "tail": f"tail (< {medium_min})",
    }
    handles = [Patch(color=GROUP_COLOURS[g], label=legend[g]) for g in present]
    if not table["active"].all():
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="inactive"))
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    fig.savefig(path, dpi=120)
