"""Stage evaluate@{attribute}-{scheme}: thresholds on val, metrics and PR curves on test."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from common import load_attribute_splits, load_params

from tailtag.data import one_hot
from tailtag.metrics import evaluate_attribute, pr_curve_table
from tailtag.models import load_checkpoint
from tailtag.training import predict_scores, resolve_device


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--items", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--images", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--split", "split_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--counts", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False), required=True)
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False), required=True)
def main(model_path, items, images, split_path, counts, metrics_path, plots_dir):
    params = load_params("evaluate", "labels")
    model, meta = load_checkpoint(model_path)
    config, labels, kind = meta["config"], meta["labels"], meta["kind"]
    attribute = config["attribute"]
    device = resolve_device(params["evaluate"].get("device", "auto"))
    model.to(device)

    counts = json.loads(Path(counts).read_text())
    data = load_attribute_splits(items, split_path, attribute, labels, kind)
    cache = np.load(images, mmap_mode="r")

    def scored(name):
        rows, targets = data[name]
        scores = predict_scores(
            model, cache, rows, kind=kind, device=device, image_size=config["image_size"]
        )
        return one_hot(targets, len(labels)), scores

    (y_val, s_val), (y_test, s_test) = scored("val"), scored("test")
    metrics = evaluate_attribute(
        labels=labels,
        kind=kind,
        y_val=y_val,
        scores_val=s_val,
        y_test=y_test,
        scores_test=s_test,
        support_train={k: counts["support"]["train"][k] for k in labels},
        min_precision=params["evaluate"]["min_precision"],
        head_min=params["labels"]["head_min"],
        medium_min=params["labels"]["medium_min"],
    )
    metrics["inactive"] = counts["inactive"]

    Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_path).write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    plots = Path(plots_dir)
    plots.mkdir(parents=True, exist_ok=True)
    pr_curve_table(labels, y_test, s_test).to_csv(plots / "pr.csv", index=False)
    pr_curve_table(["micro"], y_test.reshape(-1, 1), s_test.reshape(-1, 1)).drop(
        columns="label"
    ).to_csv(plots / "pr_micro.csv", index=False)
    groups = "  ".join(
        f"{g} {v['macro_ap']:.3f}"
        for g, v in metrics["groups"].items()
        if v["macro_ap"] is not None
    )
    print(
        f"{attribute}/{config['scheme']}: macro AP {metrics['macro_ap']:.4f}, "
        f"micro AP {metrics['micro_ap']:.4f}  ({groups})"
    )


if __name__ == "__main__":
    main()
