"""The `tailtag` command line."""

from __future__ import annotations

import click

from tailtag import __version__


@click.group()
@click.version_option(__version__, prog_name="tailtag")
def main() -> None:
    """Train and compare attribute taggers on long-tailed catalogs."""


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--n-items", default=4000, show_default=True, help="Images to write.")
@click.option("--image-size", default=64, show_default=True, help="Square image side, px.")
@click.option(
    "--format", "fmt", type=click.Choice(["jpeg", "png"]), default="jpeg", show_default=True
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--imbalance", default=1.0, show_default=True, help="Exponent on the priors; 0 = uniform."
)
@click.option(
    "--label-noise", default=0.03, show_default=True, help="Share of products with random labels."
)
@click.option("--workers", default=0, show_default=True, help="Processes; 0 = one per core.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def synthesize(
    out_dir: str,
    n_items: int,
    image_size: int,
    fmt: str,
    seed: int,
    imbalance: float,
    label_noise: float,
    workers: int,
    progress: bool,
) -> None:
    """Write the synthetic long-tailed fashion catalog to OUT_DIR."""
    from tailtag.synthetic import generate_catalog

    try:
        table = generate_catalog(
            out_dir,
            n_items=n_items,
            image_size=image_size,
            fmt=fmt,
            seed=seed,
            imbalance=imbalance,
            label_noise=label_noise,
            workers=workers,
            progress=progress,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    click.echo(
        f"wrote {len(table)} images of {table['product_id'].nunique()} products "
        f"({image_size} px {fmt}) to {out_dir}/catalog.csv"
    )
