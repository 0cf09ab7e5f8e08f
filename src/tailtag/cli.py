"""The `tailtag` command line."""

from __future__ import annotations

from pathlib import Path

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


@main.command()
@click.option("--base", required=True, help="Git revision to compare with: a branch, tag or SHA.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Markdown file to write; stdout when left out.",
)
@click.option(
    "--repro-log",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Saved output of `dvc repro` (stdout and stderr): which stages ran or failed. "
    "Without it, the stages whose dvc.lock entry differs from BASE are listed and "
    "`dvc status` tells whether the pipeline is up to date.",
)
@click.option(
    "--validation",
    type=click.Path(dir_okay=False, path_type=Path),
    default="reports/validation/summary.json",
    show_default=True,
    help="The validate stage's summary.",
)
@click.option(
    "--compare",
    "compare_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="reports/compare",
    show_default=True,
    help="The compare stages' folder: <attribute>/comparison.md|json.",
)
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Labels listed per changed scheme, by |change in AP|.",
)
def report(
    base: str,
    out: Path | None,
    repro_log: Path | None,
    validation: Path,
    compare_dir: Path,
    top: int,
) -> None:
    """Write the retraining report against BASE: outcome, stages run, params and metrics.

    Run it in the repository root after `dvc repro`: it calls git and dvc there
    (`dvc params diff BASE --json`, `dvc metrics diff BASE --json --all`). It exits 0
    whenever it wrote the report, whatever the pipeline's outcome; a problem met while
    gathering an input is written at the top of the report.
    """
    import json
    import subprocess
    import sys

    import yaml

    from tailtag.report import build_report, changed_lock_stages, parse_repro_log

    notes: list[str] = []

    def run(args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, text=True)

    def dvc_json(*args: str) -> dict:
        proc = run([sys.executable, "-m", "dvc", *args, "--json"])
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            notes.append(f"`dvc {' '.join(args)} --json` failed: {why}")
            return {}
        return json.loads(proc.stdout or "{}")

    found = run(["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"])
    if found.returncode != 0:
        raise click.BadParameter(
            f"{base!r} is not a commit of this repository", param_hint="--base"
        )
    sha = found.stdout.strip()
    label = sha[:7] if sha.startswith(base.lower()) else f"{base} ({sha[:7]})"

    def at_base(path: str) -> dict | None:
        proc = run(["git", "show", f"{sha}:./{path}"])
        return yaml.safe_load(proc.stdout) if proc.returncode == 0 else None

    def now(path: Path) -> dict | None:
        return yaml.safe_load(path.read_text()) if path.is_file() else None

    # Tracked data (the catalog's .dvc file) changed since BASE, committed or not.
    changed = run(["git", "diff", "--name-only", "--relative", sha, "--", "*.dvc"])
    untracked = run(["git", "ls-files", "--others", "--exclude-standard", "--", "*.dvc"])
    data_paths = sorted(set(changed.stdout.splitlines()) | set(untracked.stdout.splitlines()))
    data_changes = {p: (at_base(p), now(Path(p))) for p in data_paths}

    repro = lock_stages = stale = None
    if repro_log is not None:
        repro = parse_repro_log(repro_log.read_text(errors="replace"))
    else:
        lock_stages = changed_lock_stages(at_base("dvc.lock"), now(Path("dvc.lock")))
        stale = list(dvc_json("status"))

    summary = None
    if validation.is_file():
        try:
            summary = json.loads(validation.read_text())
        except json.JSONDecodeError as e:
            notes.append(f"{validation}: not valid JSON ({e})")

    comparisons: dict[str, str] = {}
    scheme_order: list[str] = []
    for md in sorted(compare_dir.glob("*/comparison.md")):
        comparisons[md.parent.name] = md.read_text()
        table = md.with_suffix(".json")
        if table.is_file():
            schemes = json.loads(table.read_text()).get("schemes") or []
            scheme_order += [s for s in schemes if s not in scheme_order]

    params_diff = dvc_json("params", "diff", sha)
    metrics_diff = dvc_json("metrics", "diff", sha, "--all")
    text = build_report(
        base=label,
        params_diff=params_diff,
        metrics_diff=metrics_diff,
        validation=summary,
        repro=repro,
        lock_stages=lock_stages,
        stale=stale,
        data_changes=data_changes,
        comparisons=comparisons,
        scheme_order=scheme_order,
        notes=notes,
        top=top,
    )
    if out is None:
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        click.echo(f"wrote {out}", err=True)


@main.command()
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--block",
    "blocks",
    multiple=True,
    required=True,
    metavar="NAME=FILE",
    help="Replace generated block NAME of DOCUMENT with the contents of FILE (repeatable).",
)
def embed(document: Path, blocks: tuple[str, ...]) -> None:
    """Refresh generated blocks of DOCUMENT (e.g. the README's demo tables) from files."""
    from tailtag.docs import embed as embed_block

    text = document.read_text(encoding="utf-8")
    for spec in blocks:
        name, sep, source = spec.partition("=")
        if not sep:
            raise click.BadParameter(f"{spec!r} is not NAME=FILE", param_hint="--block")
        try:
            text = embed_block(text, name, Path(source).read_text(encoding="utf-8"))
        except (KeyError, OSError) as err:
            raise click.ClickException(str(err)) from None
    document.write_text(text, encoding="utf-8")
    click.echo(f"updated {len(blocks)} block(s) in {document}")


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--metrics",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The model's metrics/<attribute>/<scheme>.json: use its per-label thresholds "
    "(multi-label; without it, 0.5).",
)
@click.option("--batch-size", default=64, show_default=True)
def predict(model: Path, images: tuple[str, ...], metrics: Path | None, batch_size: int) -> None:
    """Tag IMAGES (paths or http(s) URLs) with MODEL (a models/<attribute>/<scheme>/model.pt).

    Prints one JSON object per image: its labels and every label's score. An image that
    cannot be read is reported with its reason, and the command exits 1 after the others.
    """
    import json

    import numpy as np

    from tailtag.images import DecodeOptions, ImageRejected, load_image
    from tailtag.models import load_checkpoint
    from tailtag.predict import tag, thresholds_from_metrics
    from tailtag.training import predict_scores, resolve_device

    net, meta = load_checkpoint(model)
    labels, kind, config = meta["labels"], meta["kind"], meta["config"]
    thresholds = None
    if metrics is not None:
        thresholds = thresholds_from_metrics(json.loads(metrics.read_text()), labels)
    options = DecodeOptions(
        image_size=config["input_size"], max_pixels=89_478_485, max_bytes=50 << 20, url_timeout=30
    )
    pixels, names, failed = [], [], 0
    for ref in images:
        # Plain paths are the user's own: absolute, so no catalog-folder confinement applies.
        source = ref if "://" in ref else str(Path(ref).resolve())
        try:
            pixels.append(load_image(source, Path.cwd().resolve(), options).pixels)
            names.append(ref)
        except ImageRejected as err:
            failed += 1
            click.echo(json.dumps({"image": ref, "error": err.reason, "detail": err.detail}))
    if pixels:
        device = resolve_device("auto")
        scores = predict_scores(
            net.to(device),
            np.stack(pixels),
            np.arange(len(pixels)),
            kind=kind,
            batch_size=batch_size,
            device=device,
            image_size=config["image_size"],
        )
        for name, row, tags in zip(
            names, scores, tag(scores, labels, kind=kind, thresholds=thresholds), strict=True
        ):
            result = {"image": name, "labels": tags}
            result["scores"] = {
                label: round(float(s), 6) for label, s in zip(labels, row, strict=True)
            }
            click.echo(json.dumps(result))
    if failed:
        raise SystemExit(1)
