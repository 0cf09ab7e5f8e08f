"""The retraining report: what changed against a base revision, what re-ran, how metrics moved.

Pure functions over values that DVC and the pipeline already print or write; the
``tailtag report`` command gathers them (``dvc params diff REV --json``, ``dvc metrics diff
REV --json --all``, the saved ``dvc repro`` output, dvc.lock at REV and now, the validation
summary, the comparison tables) and calls :func:`build_report`.

- :func:`parse_repro_log`: ``dvc repro`` output -> stages that ran, came from the run cache,
  were up to date, or failed.
- :func:`changed_lock_stages`: two parsed dvc.lock files -> stages whose entry differs.
- :func:`scheme_changes`: parsed ``dvc metrics diff --json --all`` -> per attribute and
  scheme: summary metrics and per-label AP, old and new.
- :func:`build_report`: all of it -> Markdown (GitHub-flavoured; fits a job summary or a
  pull-request comment).

Differences are ``round(new - old, 10)``, as in :mod:`tailtag.compare`: the rounding strips
binary noise so the 3-decimal Markdown shows what a reader computes by hand.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# `dvc repro` prints these lines (checked with dvc 3.67).
_RUNNING = re.compile(r"^Running stage '(?P<stage>[^']+)':")
_CACHED = re.compile(r"^Stage '(?P<stage>[^']+)' is cached - skipping run")
_UNCHANGED = re.compile(r"^Stage '(?P<stage>[^']+)' didn't change, skipping")
_FAILED = re.compile(r"^ERROR: failed to reproduce '(?P<stage>[^']+)'")
_ERROR = re.compile(r"^ERROR: ")

# metrics/<attribute>/<scheme>.json, the tagger metrics contract (DESIGN.md).
_SCHEME_FILE = re.compile(r"(?:^|/)metrics/(?P<attribute>[^/]+)/(?P<scheme>[^/]+)\.json$")
_PER_LABEL = re.compile(r"^per_label\.(?P<label>.+)\.(?P<field>[^.]+)$")

GROUPS = ("head", "medium", "tail")
# Summary columns of the metrics table: (key in the metrics file, column title).
SUMMARY_COLUMNS = (
    ("macro_ap", "macro AP"),
    ("micro_ap", "micro AP"),
    ("groups.head.macro_ap", "head"),
    ("groups.medium.macro_ap", "medium"),
    ("groups.tail.macro_ap", "tail"),
    ("top1_accuracy", "top-1 acc."),
)
VALIDATION_STAGE = "validate"


@dataclass(frozen=True)
class ReproLog:
    """What one ``dvc repro`` did, in the order it printed it."""

    ran: tuple[str, ...] = ()
    cached: tuple[str, ...] = ()  # restored from the run cache, not run
    unchanged: tuple[str, ...] = ()
    failed: str | None = None  # the stage (or .dvc file) named by "failed to reproduce"
    error: str | None = None  # the first ERROR line, without "ERROR: "


def parse_repro_log(text: str) -> ReproLog:
    """Parse the output of ``dvc repro`` (stdout and stderr together).

    Recognises ``Running stage 'S':``, ``Stage 'S' is cached - skipping run...``,
    ``Stage 'S' didn't change, skipping`` and ``ERROR: failed to reproduce 'S': ...``;
    other lines (the stages' own output, progress bars) are ignored.
    """
    found: dict[str, list[str]] = {"ran": [], "cached": [], "unchanged": []}
    failed = error = None
    # splitlines also splits on the carriage returns of progress bars.
    for raw in text.splitlines():
        line = raw.strip()
        for key, pattern in (("ran", _RUNNING), ("cached", _CACHED), ("unchanged", _UNCHANGED)):
            m = pattern.match(line)
            if m and m["stage"] not in found[key]:
                found[key].append(m["stage"])
        m = _FAILED.match(line)
        if m and failed is None:
            failed = m["stage"]
        if _ERROR.match(line) and error is None:
            # DVC can glue its next warning onto the error line.
            error = _ERROR.sub("", line).split("WARNING:")[0].strip()
    return ReproLog(
        ran=tuple(found["ran"]),
        cached=tuple(found["cached"]),
        unchanged=tuple(found["unchanged"]),
        failed=failed,
        error=error,
    )


def changed_lock_stages(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """Stages of `new` whose dvc.lock entry (command, dep/param/out hashes) differs from `old`.

    Both are parsed dvc.lock files (``{"schema": "2.0", "stages": {name: entry}}``) or None
    for a missing file. New stages count as changed; order is `new`'s.
    """
    old_stages = (old or {}).get("stages") or {}
    new_stages = (new or {}).get("stages") or {}
    return [name for name, entry in new_stages.items() if old_stages.get(name) != entry]


@dataclass(frozen=True)
class Change:
    """One metric before and after; None where it is absent or null."""

    old: Any = None
    new: Any = None

    @property
    def delta(self) -> float | None:
        """round(new - old, 10) when both are numbers, else None."""
        if _is_number(self.old) and _is_number(self.new):
            return round(float(self.new) - float(self.old), 10)
        return None

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True)
class LabelChange:
    label: str
    ap: Change
    support_train: Change


@dataclass(frozen=True)
class SchemeChanges:
    """The metrics of one attribute and scheme, before and after."""

    attribute: str
    scheme: str
    path: str
    summary: dict[str, Change]  # keys of SUMMARY_COLUMNS present in either version
    labels: list[LabelChange]  # every label, by name
    changed: bool  # any metric in the file differs

    def movers(self, top: int) -> list[LabelChange]:
        """Labels whose AP moved, largest |Δ| first (ties by name), at most `top`."""
        moved = [lc for lc in self.labels if lc.ap.delta]
        return sorted(moved, key=lambda lc: (-abs(lc.ap.delta or 0.0), lc.label))[:top]


@dataclass(frozen=True)
class MetricsChanges:
    """``dvc metrics diff --json --all`` split into tagger metrics and the other files."""

    schemes: list[SchemeChanges]
    other: dict[str, dict[str, Change]] = field(default_factory=dict)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def _change(entry: Mapping[str, Any]) -> Change:
    return Change(entry.get("old"), entry.get("new"))


def scheme_changes(metrics_diff: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> MetricsChanges:
    """Split parsed ``dvc metrics diff --json --all`` output by file.

    Args:
        metrics_diff: ``{path: {flat.metric.key: {"old": x, "new": y, "diff": d}}}``; DVC
            flattens nested keys with dots and leaves out metrics that are null in both
            versions.

    Returns:
        Files named ``metrics/<attribute>/<scheme>.json`` holding ``macro_ap`` or
        ``per_label.*`` keys become :class:`SchemeChanges`, sorted by (attribute, path);
        every other file maps to ``{key: Change}``.
    """
    schemes, other = [], {}
    for path, entries in metrics_diff.items():
        m = _SCHEME_FILE.search(path.replace("\\", "/"))
        is_tagger = "macro_ap" in entries or any(k.startswith("per_label.") for k in entries)
        if not (m and is_tagger):
            other[path] = {key: _change(entry) for key, entry in entries.items()}
            continue
        per_label: dict[str, dict[str, Change]] = {}
        for key, entry in entries.items():
            lm = _PER_LABEL.match(key)
            if lm:
                per_label.setdefault(lm["label"], {})[lm["field"]] = _change(entry)
        labels = [
            LabelChange(label, fields.get("ap", Change()), fields.get("support_train", Change()))
            for label, fields in sorted(per_label.items())
        ]
        summary = {key: _change(entries[key]) for key, _ in SUMMARY_COLUMNS if key in entries}
        # Group means null on both sides are left out by DVC; they show as "—".
        for group in GROUPS:
            summary.setdefault(f"groups.{group}.macro_ap", Change())
        schemes.append(
            SchemeChanges(
                attribute=m["attribute"],
                scheme=m["scheme"],
                path=path,
                summary=summary,
                labels=labels,
                changed=any(_change(e).changed for e in entries.values()),
            )
        )
    schemes.sort(key=lambda s: (s.attribute, s.path))
    return MetricsChanges(schemes, other)


# ---------------------------------------------------------------------------- formatting


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _value(value: Any) -> str:
    """A params or metric value as shown: 3 decimals for floats, '—' for None."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.3f}" if math.isfinite(value) else str(value)
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _param(value: Any) -> str:
    """A params value as written (no rounding: 0.999 and 0.9999 must stay apart)."""
    if value is None:
        return "(absent)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _delta(change: Change) -> str:
    """'+0.050' for numbers, '-2' for counts, '' when not both numbers."""
    if change.delta is None:
        return ""
    if isinstance(change.old, int) and isinstance(change.new, int):
        return f"{change.new - change.old:+d}"
    return f"{change.delta:+.3f}"


def _moved(change: Change) -> str:
    """'0.415' when unchanged; '0.415 → 0.406 (-0.009)' or '28 → 26 (-2)' when moved."""
    if not change.changed:
        return _value(change.new)
    text = f"{_value(change.old)} → {_value(change.new)}"
    return f"{text} ({_delta(change)})" if change.delta is not None else text


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str) -> list[str]:
    """A GitHub table; `align` is one character per column: 'l' or 'r'."""
    marks = {"l": ":--", "r": "--:"}
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _code_list(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def demote_headings(markdown: str, levels: int) -> str:
    """Add `levels` '#' to every ATX heading outside code fences (at most level 6)."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})(\s)", line)
        if m:
            line = "#" * min(6, len(m[1]) + levels) + line[len(m[1]) :]
        out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------------------- outcome


@dataclass(frozen=True)
class Outcome:
    status: str  # "success" | "validation_failed" | "failed" | "stale"
    headline: str


def outcome(
    validation: Mapping[str, Any] | None,
    repro: ReproLog | None,
    stale: Sequence[str] | None = None,
) -> Outcome:
    """Decide what the run came to.

    A failure named in the repro log wins, except that a failure at ``validate`` with a
    failed validation summary is reported as a validation failure. Without a log, a failed
    validation summary means validation failed, and `stale` stages (``dvc status``) mean
    the pipeline was not reproduced to the end.
    """
    failed_validation = validation is not None and not validation.get("success", True)
    if repro is not None and repro.failed is not None:
        if repro.failed == VALIDATION_STAGE and failed_validation:
            return Outcome("validation_failed", _validation_headline(validation or {}))
        why = f": {repro.error}" if repro.error else ""
        return Outcome("failed", f"❌ `dvc repro` failed at `{repro.failed}`{why}")
    if failed_validation:
        return Outcome("validation_failed", _validation_headline(validation or {}))
    if stale:
        return Outcome(
            "stale",
            f"⚠️ Not reproduced to the end: {len(stale)} stage(s) out of date "
            f"({_code_list(stale)}); run `dvc repro`",
        )
    if repro is None:
        return Outcome("success", "✅ Pipeline up to date")
    n = len(repro.ran) + len(repro.cached)
    if n == 0:
        return Outcome("success", "✅ Pipeline up to date: no stage needed to run")
    return Outcome("success", f"✅ Pipeline reproduced: {n} stage(s) re-ran")


def _validation_headline(validation: Mapping[str, Any]) -> str:
    n_failed = int(validation.get("n_failed", 0))
    return (
        f"❌ Validation failed: {n_failed} check(s) failed, so the pipeline stopped at "
        f"`{VALIDATION_STAGE}`; nothing after it ran"
    )


# ---------------------------------------------------------------------------- sections


def _validation_section(validation: Mapping[str, Any] | None) -> list[str]:
    if validation is None:
        return ["No validation summary was found."]
    checks = validation.get("checks") or {}
    failing = [(n, c) for n, c in checks.items() if c.get("status") == "fail"]
    warning = [(n, c) for n, c in checks.items() if c.get("status") == "warn"]
    lines = [
        f"{validation.get('n_checks', len(checks))} checks on "
        f"{validation.get('n_items', '?')} items ({validation.get('n_rejected', '?')} "
        f"catalog rows rejected): {len(failing)} failed, {len(warning)} warning(s)."
    ]
    if failing:
        rows = [(name, c.get("unexpected", ""), c.get("message", "")) for name, c in failing]
        lines += ["", "Failed checks:", "", *_table(("check", "count", "why"), rows, "lrl")]
    if warning:
        rows = [(name, c.get("unexpected", ""), c.get("message", "")) for name, c in warning]
        table = _table(("check", "count", "why"), rows, "lrl")
        if failing:
            lines += ["", "Warnings:", "", *table]
        else:
            lines += ["", "<details><summary>Warnings</summary>", "", *table, "", "</details>"]
    return lines


def _stages_section(
    repro: ReproLog | None, lock_stages: Sequence[str] | None, base: str
) -> list[str]:
    if repro is not None:
        lines = []
        ran = [f"`{s}` (failed)" if s == repro.failed else f"`{s}`" for s in repro.ran]
        lines.append(f"- Ran ({len(ran)}): {', '.join(ran) or 'none'}")
        if repro.cached:
            lines.append(
                f"- Restored from the run cache ({len(repro.cached)}): {_code_list(repro.cached)}"
            )
        if repro.failed:
            lines.append(f"- Failed: `{repro.failed}`")
        if repro.unchanged:
            lines.append(f"- Up to date ({len(repro.unchanged)}): {_code_list(repro.unchanged)}")
        return lines
    if lock_stages is None:
        return ["No `dvc repro` log was given and dvc.lock could not be compared."]
    if not lock_stages:
        return [f"No stage's dvc.lock entry differs from `{base}`."]
    return [
        f"Re-run since `{base}` (their dvc.lock entry differs) ({len(lock_stages)}): "
        f"{_code_list(lock_stages)}"
    ]


def _outs_text(content: Mapping[str, Any] | None) -> str:
    if content is None:
        return "(absent)"
    parts = []
    for out in content.get("outs") or []:
        digest = str(out.get("md5") or out.get("hash") or "?").removesuffix(".dir")[:8]
        files = f"{out['nfiles']} files, " if "nfiles" in out else ""
        size = f"{out['size']:,} bytes, " if "size" in out else ""
        parts.append(f"{files}{size}md5 {digest}")
    return "; ".join(parts) or "(no outs)"


def _data_section(
    data_changes: Mapping[str, tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]],
) -> list[str]:
    rows = [
        (f"`{path}`", _outs_text(old), _outs_text(new))
        for path, (old, new) in sorted(data_changes.items())
    ]
    return _table(("tracked data (.dvc)", "before", "after"), rows, "lll")


def _params_section(params_diff: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    rows = []
    for path, entries in params_diff.items():
        for key, entry in entries.items():
            if entry.get("old") == entry.get("new"):
                continue  # `--all` output lists unchanged params too
            name = key if path == "params.yaml" else f"{path}: {key}"
            rows.append((f"`{name}`", _param(entry.get("old")), _param(entry.get("new"))))
    if not rows:
        return ["No params changed."]
    return _table(("param", "before", "after"), rows, "lll")


def _ordered(names: Sequence[str], order: Sequence[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def _metrics_section(
    changes: MetricsChanges, base: str, scheme_order: Sequence[str], top: int
) -> list[str]:
    lines: list[str] = []
    attributes = sorted({s.attribute for s in changes.schemes})
    for attribute in attributes:
        by_scheme = {s.scheme: s for s in changes.schemes if s.attribute == attribute}
        schemes = _ordered(list(by_scheme), scheme_order)
        columns = [
            (key, title)
            for key, title in SUMMARY_COLUMNS
            if any(key in by_scheme[s].summary for s in schemes)
        ]
        rows = [
            (scheme, *(_moved(by_scheme[scheme].summary.get(key, Change())) for key, _ in columns))
            for scheme in schemes
        ]
        lines += ["", f"#### {attribute}", ""]
        lines += _table(("scheme", *(t for _, t in columns)), rows, "l" + "r" * len(columns))
        unchanged = [s for s in schemes if not by_scheme[s].changed]
        if unchanged:
            lines += ["", f"Unchanged against `{base}`: {_code_list(unchanged)}."]
        for scheme in schemes:
            sc = by_scheme[scheme]
            if sc.changed:
                lines += _label_lines(sc, top)
    for path, entries in sorted(changes.other.items()):
        moved = [(key, c) for key, c in entries.items() if c.changed]
        lines += ["", f"#### `{path}`", ""]
        if not moved:
            lines.append("Unchanged.")
            continue
        rows = [
            (key, _value(c.old), _value(c.new), _delta(c))
            for key, c in sorted(moved, key=lambda kc: kc[0])
        ]
        lines += _table(("metric", "before", "after", "Δ"), rows, "lrrr")
    return lines


def _label_lines(sc: SchemeChanges, top: int) -> list[str]:
    movers = sc.movers(top)
    n_moved = sum(1 for lc in sc.labels if lc.ap.delta)
    if top == 0:
        return []
    title = f"Labels whose AP moved most, `{sc.attribute}` / `{sc.scheme}`"
    if movers:
        rows = [
            (
                lc.label,
                _moved(lc.support_train),
                _value(lc.ap.old),
                _value(lc.ap.new),
                _delta(lc.ap),
            )
            for lc in movers
        ]
        lines = [
            "",
            f"{title} ({len(movers)} of the {n_moved} that moved, largest |Δ| first):",
            "",
            *_table(("label", "train support", "AP before", "AP after", "Δ AP"), rows, "lrrrr"),
        ]
    else:
        lines = ["", f"{title}: none; no label's AP moved."]
    appeared = [lc.label for lc in sc.labels if lc.ap.old is None and lc.ap.new is not None]
    vanished = [lc.label for lc in sc.labels if lc.ap.old is not None and lc.ap.new is None]
    if appeared:
        lines += ["", f"AP now defined for: {', '.join(appeared)}."]
    if vanished:
        lines += ["", f"AP no longer defined for (excluded from the means): {', '.join(vanished)}."]
    return lines


# ---------------------------------------------------------------------------- the report


def build_report(
    *,
    base: str,
    params_diff: Mapping[str, Mapping[str, Mapping[str, Any]]],
    metrics_diff: Mapping[str, Mapping[str, Mapping[str, Any]]],
    validation: Mapping[str, Any] | None = None,
    repro: ReproLog | None = None,
    lock_stages: Sequence[str] | None = None,
    stale: Sequence[str] | None = None,
    data_changes: Mapping[str, tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]]
    | None = None,
    comparisons: Mapping[str, str] | None = None,
    scheme_order: Sequence[str] = (),
    notes: Sequence[str] = (),
    top: int = 5,
) -> str:
    """The retraining report as Markdown.

    Args:
        base: how the base revision is named in the text, e.g. ``main (1a2b3c4)``.
        params_diff: parsed ``dvc params diff BASE --json``: ``{file: {key: {old, new}}}``.
        metrics_diff: parsed ``dvc metrics diff BASE --json --all``.
        validation: the validation summary (reports/validation/summary.json), if any.
        repro: the parsed ``dvc repro`` output; when None, `lock_stages` lists what re-ran.
        lock_stages: stages whose dvc.lock entry differs from BASE (:func:`changed_lock_stages`).
        stale: stages ``dvc status`` reports out of date (only used without `repro`).
        data_changes: ``{".dvc path": (parsed at BASE or None, parsed now or None)}``.
        comparisons: ``{attribute: comparison.md text}``, shown folded.
        scheme_order: order of the scheme rows (others follow by name).
        notes: problems met while gathering the inputs, shown first.
        top: labels listed per changed scheme, by |Δ AP|.

    Metric changes and comparison tables are left out when the run failed: the files then
    hold BASE's values, not this change's.
    """
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    result = outcome(validation, repro, stale if repro is None else None)
    lines = ["## Retraining report", "", f"**{result.headline}.**", ""]
    lines += [f"Compared with `{base}`."]
    if notes:
        lines += ["", *(f"> ⚠️ {_cell(note)}" for note in notes)]

    lines += ["", "### Validation", "", *_validation_section(validation)]
    lines += ["", "### Stages", "", *_stages_section(repro, lock_stages, base)]
    lines += ["", "### What changed", ""]
    if data_changes:
        lines += [*_data_section(data_changes), ""]
    lines += _params_section(params_diff)

    lines += ["", f"### Metrics against `{base}`"]
    if result.status in ("validation_failed", "failed"):
        lines += ["", "Not shown: the run did not finish, so the metrics files are unchanged."]
    else:
        changes = scheme_changes(metrics_diff)
        if not changes.schemes and not changes.other:
            lines += ["", "No metrics found."]
        lines += _metrics_section(changes, base, scheme_order, top)
        if comparisons:
            lines += ["", "### Scheme comparison"]
            for attribute, text in sorted(comparisons.items()):
                lines += [
                    "",
                    f"<details><summary>{attribute}</summary>",
                    "",
                    demote_headings(text.strip(), 3),
                    "",
                    "</details>",
                ]
    return "\n".join(lines).rstrip() + "\n"
