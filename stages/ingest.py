"""Stage ingest: catalog folder -> item table, decoded image cache and rejects table.

    python stages/ingest.py --catalog data/catalog --out data/ingested \
        [--metrics metrics/ingest.json]

Reads params `ingest` (image_size, max_pixels, max_bytes, url_timeout, workers) and the
names and kinds of `attributes`; the catalog folder comes from the command line. The
metrics file holds the counts: rows_in, ingested, rejected, reject_fraction, by_reason.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
from common import load_params

from tailtag.catalog import CatalogError
from tailtag.ingest import IMAGES_FILE, ITEMS_FILE, REJECTS_FILE, ingest_catalog


@click.command()
@click.option("--catalog", type=click.Path(path_type=Path), required=True, help="Catalog folder.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--metrics", type=click.Path(path_type=Path), help="Write the counts as JSON here.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def main(catalog: Path, out: Path, metrics: Path | None, progress: bool) -> None:
    params = load_params("ingest", "attributes")
    ingest, attributes = params["ingest"], params["attributes"]
    kinds = {name: spec["kind"] for name, spec in attributes.items()}
    try:
        summary = ingest_catalog(
            catalog,
            out,
            attributes=kinds,
            image_size=int(ingest["image_size"]),
            max_pixels=int(ingest["max_pixels"]),
            max_bytes=int(ingest["max_bytes"]),
            url_timeout=float(ingest["url_timeout"]),
            workers=int(ingest["workers"]),
            progress=progress,
        )
    except CatalogError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"ingest {catalog}: {summary}")
    click.echo(f"wrote {out / ITEMS_FILE}, {out / IMAGES_FILE}, {out / REJECTS_FILE}")
    if metrics is not None:
        counts = asdict(summary)
        counts["reject_fraction"] = summary.rejected / summary.rows_in if summary.rows_in else 0.0
        metrics.parent.mkdir(parents=True, exist_ok=True)
        metrics.write_text(json.dumps(counts, indent=2) + "\n")
        click.echo(f"wrote {metrics}")


if __name__ == "__main__":
    main()
