"""Stage train@{attribute}-{scheme}: fit one tagger with one loss weighting."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import torch
from common import load_attribute_splits, load_params
from dvclive import Live

from tailtag.losses import make_loss
from tailtag.models import build_model, save_checkpoint
from tailtag.training import TrainConfig, fit
from tailtag.weights import class_weights


@click.command()
@click.option("--attribute", required=True)
@click.option("--scheme", required=True)
@click.option("--items", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--images", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--split", "split_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--counts", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
def main(attribute, scheme, items, images, split_path, counts, out):
    params = load_params("train", "attributes", "schemes")
    spec = params["attributes"][attribute]
    config = TrainConfig.from_dict({**params["train"], **(spec.get("train") or {})})
    weighting = dict(params["schemes"][scheme] or {})
    gamma = float(weighting.pop("gamma", 0.0))
    weighting.setdefault("scheme", scheme)

    counts = json.loads(Path(counts).read_text())
    labels = counts["active"]
    support = [counts["support"]["train"][label] for label in labels]
    weight = class_weights(support, labels=labels, **weighting)

    data = load_attribute_splits(items, split_path, attribute, labels, spec["kind"])
    cache = np.load(images, mmap_mode="r")

    torch.manual_seed(config.seed)
    model = build_model(config.model, len(labels), weights=config.weights)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"{attribute}/{scheme}: {len(data['train'][0])} train, {len(data['val'][0])} val items;"
        f" {len(labels)} labels; weights "
        + ", ".join(f"{label}={w:.3g}" for label, w in zip(labels, weight, strict=True))
    )
    with Live(str(out / "live"), save_dvc_exp=False, dvcyaml=False) as live:

        def log(record):
            for key in ("train_loss", "val_macro_ap"):
                live.log_metric(key, record[key])
            live.next_step()

        result = fit(
            model,
            make_loss(spec["kind"], weight, gamma=gamma),
            cache,
            kind=spec["kind"],
            train_rows=data["train"][0],
            train_targets=data["train"][1],
            val_rows=data["val"][0],
            val_targets=data["val"][1],
            num_classes=len(labels),
            config=config,
            on_epoch=log,
        )
    model.load_state_dict(result.state_dict)
    save_checkpoint(
        out / "model.pt",
        model,
        labels=labels,
        kind=spec["kind"],
        config={
            **config.to_dict(),
            "attribute": attribute,
            "scheme": scheme,
            "input_size": int(cache.shape[1]),  # the ingested image size, for predict
            "weighting": weighting,
            "gamma": gamma,
            "class_weights": [float(w) for w in weight],
            "best_epoch": result.best_epoch,
        },
    )
    print(
        f"{attribute}/{scheme}: best epoch {result.best_epoch}, "
        f"val macro AP {result.best_val_macro_ap:.4f}"
    )


if __name__ == "__main__":
    main()
