"""Stage split: assign every ingested item to train / val / test, grouped by product.

Writes <out>/split.parquet (item_id, split; item-table order) and <out>/label_counts.csv
(attribute, label, train, val, test, total); warns on stderr for each label missing from
val or test.
"""

from __future__ import annotations

from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
from common import load_params

from tailtag.split import (
    SPLITS,
    grouped_stratified_split,
    label_matrix,
    missing_in_eval,
    split_label_counts,
)


@click.command()
@click.option("--items", "items_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
def main(items_path: str, out_dir: str, progress: bool) -> None:
    params = load_params("split", "attributes")
    attributes, split = params["attributes"], params["split"]
    if set(split) != {"fractions", "seed"}:
        raise SystemExit(
            f"params.yaml: split needs exactly fractions and seed; got {sorted(split)}"
        )
    wanted = ["item_id", "product_id", *attributes]
    absent = [c for c in wanted if c not in pq.read_schema(items_path).names]
    if absent:
        raise SystemExit(f"{items_path}: missing column(s) {absent}")
    table = pq.read_table(items_path, columns=wanted)
    item_ids = table["item_id"].to_numpy()
    columns = {name: table[name] for name in attributes}
    indicators, names = label_matrix(columns, attributes, item_ids=item_ids)
    codes = grouped_stratified_split(
        indicators,
        table["product_id"],
        split["fractions"],
        seed=int(split["seed"]),
        progress=progress,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split_names = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(SPLITS))
    pq.write_table(
        pa.table({"item_id": table["item_id"], "split": split_names.cast(pa.string())}),
        out / "split.parquet",
    )
    counts = split_label_counts(indicators, names, codes)
    counts.to_csv(out / "label_counts.csv", index=False)

    for message in missing_in_eval(counts):
        click.echo(f"warning: {message}", err=True)
    sizes = {name: int((codes == k).sum()) for k, name in enumerate(SPLITS)}
    n_products = len(table["product_id"].unique())
    click.echo(
        f"split {len(codes)} items of {n_products} products: "
        + ", ".join(f"{name} {n} ({n / max(len(codes), 1):.1%})" for name, n in sizes.items())
    )


if __name__ == "__main__":
    main()
