"""Compare the loss-weighting schemes of one attribute: the paper's Tables I–III and Figs 5–7.

Input is the metrics dict of each scheme as written by ``tailtag.metrics.evaluate_attribute``
(all computed on the same test split). Differences against the baseline scheme are
``round(value − baseline, 10)``: the rounding only strips binary noise from the subtraction
(0.572 − 0.377 = 0.19499999999999995) so that the 3-decimal Markdown shows 0.195.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tailtag.metrics import GROUPS, group_of

SUMMARY_KEYS = (
    "macro_ap",
    "micro_ap",
    "head_macro_ap",
    "medium_macro_ap",
    "tail_macro_ap",
    "top1_accuracy",
)
_SUMMARY_NAMES = {
    "macro_ap": "macro AP",
    "micro_ap": "micro AP",
    "head_macro_ap": "head macro AP",
    "medium_macro_ap": "medium macro AP",
    "tail_macro_ap": "tail macro AP",
    "top1_accuracy": "top-1 accuracy",
}
_PR_COLUMNS = ("label", "recall", "precision", "threshold")


def compare_schemes(metrics_by_scheme: Mapping[str, dict], *, baseline: str | None = "nw") -> dict:
    """Return a JSON-safe comparison of the schemes' metrics for one attribute.

    Args:
        metrics_by_scheme: {scheme: metrics dict}, in the order the rows should appear.
        baseline: the scheme the others are compared with; no differences are computed when
            it is None or not among the schemes.

    Returns:
        ``{"baseline", "schemes", "labels" (by training support, descending; ties by name),
        "support_train": {label: n}, "group": {label: g}, "group_n_labels": {g: n},
        "ap": {scheme: {label: ap}}, "ap_delta": {scheme: {label: Δ}},
        "summary": {scheme: {key: value}}, "summary_delta": {scheme: {key: Δ}},
        "excluded": [{"label", "reason"}], "unreachable": {scheme: [label]}}`` where the
        summary keys are ``SUMMARY_KEYS`` (``top1_accuracy`` only for single-label) and the
        ``*_delta`` entries exist for every scheme but the baseline. Missing values are None.

    Raises:
        ValueError: on no schemes, a metrics dict missing a key, or schemes evaluated on
            different labels, training supports or test splits.
    """
    if not metrics_by_scheme:
        raise ValueError("metrics_by_scheme is empty")
    schemes = list(metrics_by_scheme)
    for scheme, m in metrics_by_scheme.items():
        for key in ("macro_ap", "micro_ap", "groups", "per_label", "excluded"):
            if key not in m:
                raise ValueError(f"metrics of scheme {scheme!r} have no {key!r}")
        for g in GROUPS:
            if g not in m["groups"]:
                raise ValueError(f"metrics of scheme {scheme!r} have no groups.{g}")
    first = schemes[0]
    ref = metrics_by_scheme[first]["per_label"]
    with_top1 = "top1_accuracy" in metrics_by_scheme[first]
    for scheme in schemes[1:]:
        m = metrics_by_scheme[scheme]
        per_label = m["per_label"]
        if set(per_label) != set(ref):
            raise ValueError(
                f"schemes {first!r} and {scheme!r} have different labels: "
                f"{sorted(set(ref) ^ set(per_label))}"
            )
        for label in ref:
            for key in ("support_train", "support_test"):
                if per_label[label][key] != ref[label][key]:
                    raise ValueError(
                        f"label {label!r}: {key} is {ref[label][key]} for {first!r} but "
                        f"{per_label[label][key]} for {scheme!r}; compare models evaluated on "
                        "the same split"
                    )
        if ("top1_accuracy" in m) != with_top1:
            raise ValueError(
                f"top1_accuracy is reported for only one of {first!r} and {scheme!r} "
                "(a single-label and a multi-label evaluation?)"
            )

    labels = sorted(ref, key=lambda name: (-ref[name]["support_train"], name))
    if baseline is not None and baseline not in metrics_by_scheme:
        baseline = None

    ap = {s: {lb: metrics_by_scheme[s]["per_label"][lb]["ap"] for lb in labels} for s in schemes}
    summary = {s: _summary(metrics_by_scheme[s], with_top1) for s in schemes}
    ap_delta: dict[str, dict] = {}
    summary_delta: dict[str, dict] = {}
    if baseline is not None:
        for s in schemes:
            if s == baseline:
                continue
            ap_delta[s] = {lb: _delta(ap[s][lb], ap[baseline][lb]) for lb in labels}
            summary_delta[s] = {k: _delta(summary[s][k], summary[baseline][k]) for k in summary[s]}

    excluded: dict[str, str] = {}
    for s in schemes:
        for entry in metrics_by_scheme[s]["excluded"]:
            excluded.setdefault(entry["label"], entry["reason"])
    order = {lb: i for i, lb in enumerate(labels)}
    return {
        "baseline": baseline,
        "schemes": schemes,
        "labels": labels,
        "support_train": {lb: int(ref[lb]["support_train"]) for lb in labels},
        "group": {lb: ref[lb]["group"] for lb in labels},
        "group_n_labels": {
            g: int(metrics_by_scheme[first]["groups"][g]["n_labels"]) for g in GROUPS
        },
        "ap": ap,
        "ap_delta": ap_delta,
        "summary": summary,
        "summary_delta": summary_delta,
        "excluded": [
            {"label": lb, "reason": excluded[lb]}
            for lb in sorted(excluded, key=lambda x: (order.get(x, len(order)), x))
        ],
        "unreachable": {
            s: [lb for lb in labels if not metrics_by_scheme[s]["per_label"][lb]["reachable"]]
            for s in schemes
        },
    }


def comparison_markdown(comparison: dict, *, attribute: str) -> str:
    """Return the comparison as Markdown: per-label AP table, table of means, footnotes.

    Values have 3 decimals, differences a sign (``+0.034``); ``—`` marks a missing value.
    """
    schemes = comparison["schemes"]
    labels = comparison["labels"]
    baseline = comparison["baseline"]
    support = comparison["support_train"]
    others = [s for s in schemes if s != baseline] if baseline is not None else []

    lines = [
        f"# {_md(attribute)}: average precision by loss-weighting scheme",
        "",
        "Per-label average precision on the test split (scikit-learn "
        "`average_precision_score`, the step-wise sum, not the trapezoidal area). "
        "Columns: label (training support), most frequent first.",
        "",
    ]
    lines += _table(
        ["scheme"] + [f"{_md(lb)} ({support[lb]})" for lb in labels],
        [[_md(s)] + [_fmt(comparison["ap"][s][lb]) for lb in labels] for s in schemes],
    )
    if others:
        lines += ["", f"Difference against {_md(baseline)}:", ""]
        lines += _table(
            ["scheme"] + [_md(lb) for lb in labels],
            [
                [f"Δ {_md(s)}"] + [_fmt_delta(comparison["ap_delta"][s][lb]) for lb in labels]
                for s in others
            ],
        )

    lines += ["", "## Means", ""]
    n_groups = comparison["group_n_labels"]
    keys = [k for k in SUMMARY_KEYS if k in comparison["summary"][schemes[0]]]
    rows = []
    for key in keys:
        name = _SUMMARY_NAMES[key]
        group = key.removesuffix("_macro_ap")
        n = None
        if group in n_groups:
            n = n_groups[group]
        elif key in ("macro_ap", "micro_ap"):
            n = sum(comparison["ap"][schemes[0]][lb] is not None for lb in labels)
        if n is not None:
            name += f" ({n} label{'s' if n != 1 else ''})"
        row = [name] + [_fmt(comparison["summary"][s][key]) for s in schemes]
        row += [_fmt_delta(comparison["summary_delta"][s][key]) for s in others]
        rows.append(row)
    lines += _table(
        ["metric"] + [_md(s) for s in schemes] + [f"Δ {_md(s)} vs {_md(baseline)}" for s in others],
        rows,
    )

    lines += [""]
    by_group = {g: [lb for lb in labels if comparison["group"][lb] == g] for g in GROUPS}
    lines.append(
        "Groups by training support: "
        + "; ".join(f"{g}: {', '.join(map(_md, by_group[g])) or 'none'}" for g in GROUPS)
        + "."
    )
    if comparison["excluded"]:
        reasons: dict[str, list[str]] = {}
        for entry in comparison["excluded"]:
            reasons.setdefault(entry["reason"], []).append(_md(entry["label"]))
        lines.append(
            "Excluded from every mean: "
            + "; ".join(f"{', '.join(lbs)} ({reason})" for reason, lbs in reasons.items())
            + "."
        )
    else:
        lines.append("No label is excluded from the means.")
    unreachable = {s: lbs for s, lbs in comparison["unreachable"].items() if lbs}
    if unreachable:
        lines.append(
            "No threshold reaches the target precision on validation for: "
            + "; ".join(f"{_md(s)}: {', '.join(map(_md, lbs))}" for s, lbs in unreachable.items())
            + "."
        )
    else:
        lines.append("Every label has a threshold reaching the target precision on validation.")
    return "\n".join(lines) + "\n"


def plot_pr_curves(
    pr_tables_by_scheme: Mapping[str, pd.DataFrame],
    *,
    support_train: Mapping[str, int],
    out_path: str | Path,
    head_min: int = 100,
    medium_min: int = 20,
) -> list[str]:
    """Write one PNG overlaying the schemes' PR curves for three labels; return those labels.

    The labels (among those with a curve, i.e. a positive in the test split; ties broken by
    name) are, as the paper's Figs 5–7: the majority label (highest training support), a
    slight-minority label (the median-support medium-group label, or the median label when
    no medium label is left) and the severe-minority label (lowest support). With fewer
    than three labels there are as many panels as labels.

    Args:
        pr_tables_by_scheme: {scheme: ``pr_curve_table`` output}, one curve per scheme.
        support_train: training support per label.
        out_path: the PNG to write (its folder is created).
        head_min, medium_min: group bounds, as in ``evaluate_attribute``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not pr_tables_by_scheme:
        raise ValueError("pr_tables_by_scheme is empty")
    label_sets = {}
    for scheme, table in pr_tables_by_scheme.items():
        missing = [c for c in _PR_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"PR table of scheme {scheme!r} has no columns {missing}")
        label_sets[scheme] = set(table["label"])
    first = next(iter(label_sets))
    for scheme, found in label_sets.items():
        if found != label_sets[first]:
            raise ValueError(
                f"PR tables of {first!r} and {scheme!r} have different labels: "
                f"{sorted(found ^ label_sets[first])}"
            )
    candidates = label_sets[first]
    if not candidates:
        raise ValueError("the PR tables hold no curve (no label has a positive in the test split)")
    unknown = sorted(lb for lb in candidates if lb not in support_train)
    if unknown:
        raise ValueError(f"support_train has no entry for labels {unknown}")

    ordered = sorted(candidates, key=lambda lb: (-support_train[lb], lb))
    chosen = [("majority", ordered[0])]
    middle = ordered[1:-1]
    if middle:
        medium = [
            lb
            for lb in middle
            if group_of(support_train[lb], head_min=head_min, medium_min=medium_min) == "medium"
        ]
        pool = medium or middle
        chosen.append(("slight minority", pool[(len(pool) - 1) // 2]))
    if len(ordered) > 1:
        chosen.append(("severe minority", ordered[-1]))

    fig = Figure(figsize=(4.5 * len(chosen), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(chosen), squeeze=False)[0])
    for ax, (role, label) in zip(axes, chosen, strict=True):
        for scheme, table in pr_tables_by_scheme.items():
            curve = table[table["label"] == label]
            ax.plot(curve["recall"], curve["precision"], drawstyle="steps-post", label=scheme)
        ax.set_title(f"{role}: {label} (n_train={support_train[label]})")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0.0, 1.02)
        ax.set_ylim(0.0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # No metadata: the file then depends only on the data and the matplotlib version.
    fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
    return [label for _, label in chosen]


def _summary(metrics: dict, with_top1: bool) -> dict:
    out = {
        "macro_ap": metrics["macro_ap"],
        "micro_ap": metrics["micro_ap"],
        **{f"{g}_macro_ap": metrics["groups"][g]["macro_ap"] for g in GROUPS},
    }
    if with_top1:
        out["top1_accuracy"] = metrics["top1_accuracy"]
    return out


def _delta(value: float | None, base: float | None) -> float | None:
    if value is None or base is None:
        return None
    return round(float(value) - float(base), 10)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _fmt_delta(value: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value:+.3f}"
    return "+0.000" if text == "-0.000" else text


def _md(text: str) -> str:
    """Escape the characters that would break a Markdown table cell."""
    return str(text).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|:--" + "|--:" * (len(header) - 1) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out
