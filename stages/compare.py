"""Stage compare@{attribute}: the schemes side by side (the paper's Tables I-II, Figs 5-7)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd
from common import load_params

from tailtag.compare import compare_schemes, comparison_markdown, plot_pr_curves


@click.command()
@click.option("--attribute", required=True)
@click.option(
    "--metrics", "metrics_dir", type=click.Path(exists=True, file_okay=False), required=True
)
@click.option(
    "--curves", "curves_dir", type=click.Path(exists=True, file_okay=False), required=True
)
@click.option("--out", type=click.Path(file_okay=False), required=True)
def main(attribute, metrics_dir, curves_dir, out):
    params = load_params("schemes", "labels")
    schemes = list(params["schemes"])
    metrics = {s: json.loads((Path(metrics_dir) / f"{s}.json").read_text()) for s in schemes}
    curves = {s: pd.read_csv(Path(curves_dir) / s / "pr.csv") for s in schemes}

    comparison = compare_schemes(metrics, baseline="nw" if "nw" in schemes else None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2, allow_nan=False) + "\n")
    markdown = comparison_markdown(comparison, attribute=attribute)
    (out / "comparison.md").write_text(markdown)
    support = {label: v["support_train"] for label, v in metrics[schemes[0]]["per_label"].items()}
    chosen = plot_pr_curves(
        curves,
        support_train=support,
        out_path=out / "pr_curves.png",
        head_min=params["labels"]["head_min"],
        medium_min=params["labels"]["medium_min"],
    )
    # One micro-averaged PR curve per scheme, overlaid by `dvc plots` (template pr_overlay).
    overlay = pd.concat(
        pd.read_csv(Path(curves_dir) / s / "pr_micro.csv")
        .assign(scheme=s)
        .rename_axis("point")
        .reset_index()
        for s in schemes
    )
    overlay[["scheme", "point", "recall", "precision"]].to_csv(out / "pr_overlay.csv", index=False)
    print(markdown)
    print(f"PR curves of {', '.join(chosen)}: {out / 'pr_curves.png'}")


if __name__ == "__main__":
    main()
