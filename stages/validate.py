"""Stage validate: check the ingested labels before anything trains on them.

    python stages/validate.py --ingested data/ingested --out reports/validation

Reads params `attributes` and `validate` (min_support_warn, min_support_fail,
max_reject_fraction, max_examples, severity per check kind). Prints one line per check
and a verdict; writes summary.json, result.json, index.html and the Great Expectations
Data Docs (docs/) to --out, then exits 1 if a check of severity `fail` failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from common import load_params

from tailtag.validate import read_ingested, validate_ingested
from tailtag.validation_report import console_lines, write_reports

KEYS = ("min_support_warn", "min_support_fail", "max_reject_fraction", "max_examples")


@click.command()
@click.option(
    "--ingested",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The ingest stage's output folder.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Report folder.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def main(ingested: Path, out: Path, progress: bool) -> None:
    params = load_params("attributes", "validate")
    settings = dict(params["validate"] or {})
    unknown = sorted(set(settings) - {*KEYS, "severity"})
    missing = [k for k in KEYS if k not in settings]
    if unknown or missing:
        raise click.ClickException(
            f"params.yaml validate: unknown key(s) {unknown}, missing key(s) {missing}"
        )
    data = read_ingested(ingested)
    try:
        report = validate_ingested(
            data.items,
            data.rejects,
            data.images_shape,
            data.images_dtype,
            params["attributes"],
            min_support_warn=int(settings["min_support_warn"]),
            min_support_fail=int(settings["min_support_fail"]),
            max_reject_fraction=float(settings["max_reject_fraction"]),
            max_examples=int(settings["max_examples"]),
            severity=settings.get("severity") or {},
            docs_dir=out / "docs",
            progress=progress,
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    paths = write_reports(report, out)
    for line in console_lines(report, paths["index"]):
        click.echo(line)
    sys.exit(0 if report.success else 1)


if __name__ == "__main__":
    main()
