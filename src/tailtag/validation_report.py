"""Writing a validation report: strict JSON, the console lines and a self-contained HTML page."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tailtag.validate import ValidationReport, _is_null, _plural


def to_json_safe(value: Any) -> Any:
    """`value` with NaN/inf as None, numpy scalars as Python ones, keys as strings."""
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if _is_null(value):
        return None
    return str(value)


def console_lines(report: ValidationReport, html_path: str | Path) -> list[str]:
    """One line per check (PASS / WARN / FAIL with the message), then a verdict line."""
    lines = [f"{c.status.upper():<4} {c.name}: {c.message}" for c in report.checks]
    n_failed, n_warn = len(report.failed), len(report.warnings)
    warnings = _plural(n_warn, "warning")
    if report.success:
        n_pass = len(report.checks) - n_warn
        lines.append(
            f"validation passed: {_plural(n_pass, 'check')} passed, {warnings} - see {html_path}"
        )
    else:
        lines.append(
            f"validation failed: {_plural(n_failed, 'check')} failed, {warnings} - see {html_path}"
        )
    return lines


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.pass{background:#e6f4ea}.warn{background:#fff4d6}.fail{background:#fde2e1}
.status{font-weight:bold}code{font-size:90%}
"""


def _html(report: ValidationReport, out_dir: Path) -> str:
    esc = html.escape
    verdict = "passed" if report.success else "failed"
    rows = "".join(
        f'<tr class="{c.status}"><td class="status">{c.status.upper()}</td>'
        f"<td><code>{esc(c.name)}</code></td><td>{esc(c.severity)}</td>"
        f"<td>{esc(c.message)}</td></tr>"
        for c in report.checks
    )
    attrs = ""
    for name, stats in report.attributes.items():
        support_rows = "".join(
            f"<tr><td>{esc(label)}</td><td>{n}</td></tr>" for label, n in stats["supports"].items()
        )
        attrs += (
            f"<h3>{esc(name)} ({esc(stats['kind'])})</h3>"
            f"<p>{stats['n_labelled']} labelled, {stats['n_unlabelled']} unlabelled "
            f"({stats['unlabelled_fraction']:.1%})</p>"
            f"<table><tr><th>label</th><th>items</th></tr>{support_rows}</table>"
        )
    docs = ""
    if report.docs_dir is not None and (report.docs_dir / "index.html").is_file():
        from tailtag.gx_suite import docs_pages

        def rel(p: Path) -> str:
            return esc(Path(p).resolve().relative_to(out_dir.resolve()).as_posix())

        links = "".join(
            f'<li><a href="{rel(page)}">{esc(suite)}</a></li>'
            for suite, page in docs_pages(report.docs_dir).items()
        )
        index = rel(report.docs_dir / "index.html")
        docs = (
            f'<h2>Great Expectations Data Docs</h2><p><a href="{index}">'
            f"Data Docs index</a> (its styles load from a CDN). Suite results:</p><ul>{links}</ul>"
        )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Label validation {verdict}</title><style>{_CSS}</style></head><body>"
        f"<h1>Label validation {verdict}</h1>"
        f"<p>{report.n_items} items, {report.n_rejected} rejected rows; "
        f"{len(report.failed)} failed, {_plural(len(report.warnings), 'warning')}.</p>"
        "<table><tr><th>status</th><th>check</th><th>severity</th><th>details</th></tr>"
        f"{rows}</table><h2>Label supports</h2>{attrs}{docs}</body></html>"
    )


def write_reports(report: ValidationReport, out_dir: Path) -> dict[str, Path]:
    """Write result.json (summary + GX results), summary.json and index.html to `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "result": out_dir / "result.json",
        "summary": out_dir / "summary.json",
        "index": out_dir / "index.html",
    }
    summary = to_json_safe(report.summary())
    result = {"summary": summary, "great_expectations": to_json_safe(report.gx_results)}
    for key, payload in (("result", result), ("summary", summary)):
        with open(paths[key], "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, allow_nan=False)
            f.write("\n")
    with open(paths["index"], "w", encoding="utf-8") as f:
        f.write(_html(report, out_dir))
    return paths
