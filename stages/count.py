"""Stage count@<attribute>: label supports per split, head / medium / tail groups, plot.

Writes <out>/<attribute>.json (the counts that train and evaluate read), <out>/<attribute>.csv
(one row per label, a `dvc plots` source) and <out>/<attribute>.png (the distribution).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pyarrow.parquet as pq
from common import load_params

from tailtag.counts import (
    align_splits,
    count_summary,
    distribution_table,
    label_supports,
    labelled_items,
    plot_distribution,
)

LIMITS = ("min_support", "head_min", "medium_min")


@click.command()
@click.option("--attribute", required=True)
@click.option("--items", "items_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--split", "split_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
def main(attribute: str, items_path: str, split_path: str, out_dir: str) -> None:
    params = load_params("attributes", "labels")
    if attribute not in params["attributes"]:
        raise SystemExit(f"params.yaml: no attribute {attribute!r} under attributes")
    spec, limits = params["attributes"][attribute], params["labels"]
    if set(limits) != set(LIMITS):
        raise SystemExit(f"params.yaml: labels needs exactly {LIMITS}; got {sorted(limits)}")
    if attribute not in pq.read_schema(items_path).names:
        raise SystemExit(f"{items_path}: no column {attribute!r}")
    items = pq.read_table(items_path, columns=["item_id", attribute])
    assignment = pq.read_table(split_path, columns=["item_id", "split"])
    item_ids = items["item_id"].to_numpy()
    splits = align_splits(
        item_ids, assignment["item_id"].to_numpy(), assignment["split"].to_numpy()
    )

    values, kind, labels = items[attribute], spec["kind"], spec["labels"]
    supports = label_supports(
        values, splits, labels, attribute=attribute, kind=kind, item_ids=item_ids
    )
    n_items = labelled_items(values, splits, attribute=attribute)
    thresholds = {key: int(limits[key]) for key in LIMITS}
    summary = count_summary(attribute, kind, labels, supports, n_items, **thresholds)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{attribute}.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    distribution_table(summary).to_csv(out / f"{attribute}.csv", index=False)
    plot_distribution(summary, out / f"{attribute}.png")

    groups = list(summary["group"].values())
    click.echo(
        f"{attribute}: {len(summary['active'])}/{len(summary['labels'])} labels active; "
        f"head {groups.count('head')}, medium {groups.count('medium')}, tail "
        f"{groups.count('tail')}; labelled items "
        + ", ".join(f"{split} {n}" for split, n in summary["n_items"].items())
    )
    for label, n in summary["inactive"].items():
        click.echo(f"{attribute}/{label}: inactive, {n} training items < min_support", err=True)


if __name__ == "__main__":
    main()
