"""Stage synthesize: params `synthetic` -> the demo catalog folder.

    python stages/synthesize.py data/catalog

Every key of params `synthetic` goes to `generate_catalog` (`format` as its `fmt`); a key it
does not take is an error naming the key, never ignored.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import click
from common import load_params

from tailtag.synthetic import generate_catalog

# params.yaml spells the image format `format`; the function says `fmt` (a builtin's name).
RENAMED = {"format": "fmt"}
NOT_PARAMS = {"progress", "fmt"}


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def main(out_dir: Path, progress: bool) -> None:
    section = load_params("synthetic")["synthetic"] or {}
    accepted = {
        name
        for name, p in inspect.signature(generate_catalog).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in NOT_PARAMS
    } | set(RENAMED)
    unknown = sorted(set(section) - accepted)
    if unknown:
        raise click.ClickException(
            f"params.yaml synthetic: unknown key(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(accepted))}"
        )
    kwargs = {RENAMED.get(key, key): value for key, value in section.items()}
    if "images_per_product" in kwargs and isinstance(kwargs["images_per_product"], list):
        kwargs["images_per_product"] = tuple(kwargs["images_per_product"])
    start = time.perf_counter()
    try:
        table = generate_catalog(out_dir, progress=progress, **kwargs)
    except ValueError as e:
        raise click.ClickException(f"params.yaml synthetic: {e}") from None
    click.echo(
        f"synthesize: {len(table)} images of {table['product_id'].nunique()} products "
        f"in {time.perf_counter() - start:.1f} s -> {out_dir / 'catalog.csv'}"
    )


if __name__ == "__main__":
    main()
