"""The retraining report's Markdown, built from hand-made DVC outputs and summaries."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from tailtag.cli import main
from tailtag.report import (
    Change,
    ReproLog,
    build_report,
    changed_lock_stages,
    demote_headings,
    outcome,
    parse_repro_log,
    scheme_changes,
)

# What `dvc repro` printed when validation failed (dvc 3.67), with a progress bar's
# carriage returns and a warning DVC glued onto the error line.
FAILED_LOG = """\
Stage 'synthesize' didn't change, skipping
'data/shop.dvc' didn't change, skipping
Stage 'ingest' is cached - skipping run, checking out outputs
Running stage 'validate':
> python stages/validate.py --ingested data/ingested --out reports/validation
validate:   0%|          | 0/10\rvalidate: 100%|##########| 10/10
FAIL style.vocabulary: unknown label 'grunge' in 1 item (i000003)
ERROR: failed to reproduce 'validate': failed to run: python stages/validate.py, exited with 1\
WARNING: something else
"""

OK_LOG = """\
Stage 'synthesize' didn't change, skipping
Running stage 'train@style-iew':
> python stages/train.py --attribute style --scheme iew
Updating lock file 'dvc.lock'

Running stage 'evaluate@style-iew':
Updating lock file 'dvc.lock'
Stage 'train@style-nw' didn't change, skipping
Running stage 'compare@style':
Use `dvc push` to send your updates to remote storage.
"""


def entry(old, new):
    """One `dvc metrics diff --json` entry: DVC adds "diff" only when both are numbers."""
    out = {"old": old, "new": new}
    if isinstance(old, int | float) and isinstance(new, int | float):
        out["diff"] = new - old
    return out


def label_entries(label: str, ap_old, ap_new, n_old: int, n_new: int) -> dict:
    return {
        f"per_label.{label}.ap": entry(ap_old, ap_new),
        f"per_label.{label}.support_train": entry(n_old, n_new),
    }


# `dvc metrics diff BASE --json --all` for attribute `style`, schemes nw (unchanged) and iew.
METRICS_DIFF = {
    "metrics/ingest.json": {
        "rows_in": entry(240, 240),
        "ingested": entry(240, 239),
        "rejected": entry(0, 1),
    },
    "metrics/style/iew.json": {
        "macro_ap": entry(0.4, 0.45),
        "micro_ap": entry(0.6, 0.55),
        "groups.head.macro_ap": entry(0.7, 0.75),
        "groups.tail.macro_ap": entry(0.1, 0.15),
        # groups.medium.macro_ap is null in both versions: DVC leaves it out.
        **label_entries("a", 0.7, 0.75, 120, 118),  # +0.05 (0.05000000000000004 unrounded)
        **label_entries("b", 0.2, 0.1, 30, 30),  # -0.1
        **label_entries("c.d", 0.3, 0.35, 12, 12),  # +0.05 (0.04999999999999999): ties with a
        **label_entries("e", None, 0.2, 4, 5),  # newly evaluated
        **label_entries("f", 0.5, 0.5, 9, 9),  # unmoved
    },
    "metrics/style/nw.json": {
        "macro_ap": entry(0.5, 0.5),
        "micro_ap": entry(0.6, 0.6),
        "groups.head.macro_ap": entry(0.7, 0.7),
        "groups.tail.macro_ap": entry(0.3, 0.3),
        **label_entries("a", 0.7, 0.7, 120, 120),
    },
}

PARAMS_DIFF = {
    "params.yaml": {
        "schemes.iew.beta": {"old": 0.99, "new": 0.999, "diff": 0.009},
        "train.epochs": {"old": 10, "new": 10, "diff": 0},  # as `--all` lists it
        "attributes.style.labels": {"old": ["a", "b"], "new": ["a", "b", "c"]},
        "labels.min_support": {"old": None, "new": 5},
    },
    "extra.yaml": {"lr": {"old": 0.001, "new": 0.0001}},
}

VALIDATION_OK = {
    "success": True,
    "n_checks": 2,
    "n_failed": 0,
    "n_warnings": 1,
    "n_items": 240,
    "n_rejected": 0,
    "checks": {
        "schema": {"status": "pass", "severity": "fail", "unexpected": 0, "message": "ok"},
        "style.low_support": {
            "status": "warn",
            "severity": "warn",
            "unexpected": 2,
            "message": "2 labels with fewer than 20 items: a|b (5), e (4)",
        },
    },
}

VALIDATION_FAILED = {
    **VALIDATION_OK,
    "success": False,
    "n_checks": 3,
    "n_failed": 1,
    "checks": {
        **VALIDATION_OK["checks"],
        "style.vocabulary": {
            "status": "fail",
            "severity": "fail",
            "unexpected": 1,
            "message": "unknown label 'grunge' in 1 item (i000003)",
            "examples": [{"item": "i000003", "value": "grunge"}],
        },
    },
}

COMPARISON_MD = "# style: average precision\n\n| scheme | a |\n|:--|--:|\n| nw | 0.7 |\n"


def report(**kwargs) -> str:
    args = {
        "base": "main (abc1234)",
        "params_diff": PARAMS_DIFF,
        "metrics_diff": METRICS_DIFF,
        "validation": VALIDATION_OK,
        "repro": parse_repro_log(OK_LOG),
        "scheme_order": ("nw", "ifw", "iew"),
        "top": 2,
    }
    return build_report(**(args | kwargs))


# ---------------------------------------------------------------------------- parsing


def test_parse_repro_log_success():
    assert parse_repro_log(OK_LOG) == ReproLog(
        ran=("train@style-iew", "evaluate@style-iew", "compare@style"),
        unchanged=("synthesize", "train@style-nw"),
    )


def test_parse_repro_log_failure_and_run_cache():
    assert parse_repro_log(FAILED_LOG) == ReproLog(
        ran=("validate",),
        cached=("ingest",),
        unchanged=("synthesize",),
        failed="validate",
        error="failed to reproduce 'validate': failed to run: python stages/validate.py, "
        "exited with 1",
    )


def test_parse_repro_log_other_errors():
    log = parse_repro_log("ERROR: failed to reproduce 'data/shop.dvc': missing data 'source'\n")
    assert log.failed == "data/shop.dvc"
    assert log.error == "failed to reproduce 'data/shop.dvc': missing data 'source'"
    log = parse_repro_log("ERROR: 'dvc.yaml' is invalid\n")
    assert (log.failed, log.error) == (None, "'dvc.yaml' is invalid")
    assert parse_repro_log("") == ReproLog()


def test_changed_lock_stages():
    old = {"schema": "2.0", "stages": {"ingest": {"cmd": "a"}, "train": {"cmd": "t", "x": 1}}}
    new = {
        "schema": "2.0",
        "stages": {"ingest": {"cmd": "a"}, "train": {"cmd": "t", "x": 2}, "compare": {}},
    }
    assert changed_lock_stages(old, new) == ["train", "compare"]
    assert changed_lock_stages(old, old) == []
    assert changed_lock_stages(None, old) == ["ingest", "train"]
    assert changed_lock_stages(old, None) == []


def test_change_delta_rounds_and_skips_non_numbers():
    assert Change(0.7, 0.75).delta == 0.05  # 0.05000000000000004 before rounding
    assert Change(0.3, 0.35).delta == 0.05  # 0.04999999999999999
    assert Change(3, 1).delta == -2
    assert Change(None, 0.2).delta is None
    assert Change(True, False).delta is None
    assert Change(0.5, 0.5).changed is False
    assert Change(None, 0.2).changed is True


def test_scheme_changes_splits_files_and_labels():
    changes = scheme_changes(METRICS_DIFF)
    assert [(s.attribute, s.scheme, s.changed) for s in changes.schemes] == [
        ("style", "iew", True),
        ("style", "nw", False),
    ]
    iew = changes.schemes[0]
    assert [lc.label for lc in iew.labels] == ["a", "b", "c.d", "e", "f"]
    assert iew.summary["groups.medium.macro_ap"] == Change(None, None)
    assert iew.summary["macro_ap"] == Change(0.4, 0.45)
    # Ties on |Δ| are broken by name; unmoved and newly defined labels are not movers.
    assert [lc.label for lc in iew.movers(10)] == ["b", "a", "c.d"]
    assert [lc.label for lc in iew.movers(2)] == ["b", "a"]
    assert list(changes.other) == ["metrics/ingest.json"]
    assert changes.other["metrics/ingest.json"]["ingested"] == Change(240, 239)


def test_scheme_changes_needs_tagger_keys():
    # A file under metrics/<x>/<y>.json without AP keys is shown as an ordinary file.
    changes = scheme_changes({"metrics/timing/train.json": {"seconds": entry(3, 4)}})
    assert changes.schemes == []
    assert changes.other == {"metrics/timing/train.json": {"seconds": Change(3, 4)}}


# ---------------------------------------------------------------------------- outcome


def test_outcome_statuses():
    ok, failed = parse_repro_log(OK_LOG), parse_repro_log(FAILED_LOG)
    assert outcome(VALIDATION_OK, ok).status == "success"
    assert outcome(VALIDATION_FAILED, failed).status == "validation_failed"
    # Without a log, the summary alone tells.
    assert outcome(VALIDATION_FAILED, None).status == "validation_failed"
    # A failure elsewhere is not blamed on validation.
    crash = parse_repro_log("Running stage 'train@style-nw':\nERROR: failed to reproduce 'train'")
    result = outcome(VALIDATION_OK, crash)
    assert result.status == "failed"
    assert result.headline == "❌ `dvc repro` failed at `train`: failed to reproduce 'train'"
    assert outcome(VALIDATION_OK, None, ["split"]).status == "stale"
    assert outcome(None, ReproLog(unchanged=("ingest",))).headline == (
        "✅ Pipeline up to date: no stage needed to run"
    )
    assert outcome(None, ok).headline == "✅ Pipeline reproduced: 3 stage(s) re-ran"


# ---------------------------------------------------------------------------- the report


def test_report_success_lists_stages_params_and_metric_changes():
    text = report(comparisons={"style": COMPARISON_MD})
    lines = text.splitlines()
    assert lines[:3] == [
        "## Retraining report",
        "",
        "**✅ Pipeline reproduced: 3 stage(s) re-ran.**",
    ]
    assert "Compared with `main (abc1234)`." in lines
    assert "- Ran (3): `train@style-iew`, `evaluate@style-iew`, `compare@style`" in lines
    assert "- Up to date (2): `synthesize`, `train@style-nw`" in lines
    # Params: changed ones only, values as written, other files named.
    assert "| `schemes.iew.beta` | 0.99 | 0.999 |" in lines
    assert '| `attributes.style.labels` | ["a", "b"] | ["a", "b", "c"] |' in lines
    assert "| `labels.min_support` | (absent) | 5 |" in lines
    assert "| `extra.yaml: lr` | 0.001 | 0.0001 |" in lines
    assert "train.epochs" not in text
    # Metrics: one row per scheme in scheme order; moved values show old → new (Δ).
    table = lines.index("| scheme | macro AP | micro AP | head | medium | tail |")
    assert lines[table + 2 : table + 4] == [
        "| nw | 0.500 | 0.600 | 0.700 | — | 0.300 |",
        "| iew | 0.400 → 0.450 (+0.050) | 0.600 → 0.550 (-0.050) | 0.700 → 0.750 (+0.050) "
        "| — | 0.100 → 0.150 (+0.050) |",
    ]
    assert "Unchanged against `main (abc1234)`: `nw`." in lines
    movers = lines.index(
        "Labels whose AP moved most, `style` / `iew` (2 of the 3 that moved, largest |Δ| first):"
    )
    assert lines[movers + 2 : movers + 6] == [
        "| label | train support | AP before | AP after | Δ AP |",
        "|:--|--:|--:|--:|--:|",
        "| b | 30 | 0.200 | 0.100 | -0.100 |",
        "| a | 120 → 118 (-2) | 0.700 | 0.750 | +0.050 |",
    ]
    assert "AP now defined for: e." in lines
    assert "Labels whose AP moved most, `style` / `nw`" not in text
    # Other metrics files: changed keys only, counts as integers.
    ingest = lines.index("#### `metrics/ingest.json`")
    assert lines[ingest + 4 : ingest + 6] == [
        "| ingested | 240 | 239 | -1 |",
        "| rejected | 0 | 1 | +1 |",
    ]
    # Validation warnings folded; the pipe in a message escaped.
    assert "2 checks on 240 items (0 catalog rows rejected): 0 failed, 1 warning(s)." in lines
    warning = "| style.low_support | 2 | 2 labels with fewer than 20 items: a\\|b (5), e (4) |"
    assert warning in lines
    # Comparison tables folded, their headings demoted under the report's.
    assert "<details><summary>style</summary>" in lines
    assert "#### style: average precision" in lines
    assert text.endswith("</details>\n")


def test_report_validation_failure_names_the_check_and_hides_metrics():
    text = report(validation=VALIDATION_FAILED, repro=parse_repro_log(FAILED_LOG))
    lines = text.splitlines()
    assert lines[2] == (
        "**❌ Validation failed: 1 check(s) failed, so the pipeline stopped at `validate`; "
        "nothing after it ran.**"
    )
    failed = lines.index("Failed checks:")
    assert lines[failed + 2 : failed + 5] == [
        "| check | count | why |",
        "|:--|--:|:--|",
        "| style.vocabulary | 1 | unknown label 'grunge' in 1 item (i000003) |",
    ]
    # With a failure, warnings are shown unfolded too.
    assert lines[lines.index("Warnings:") + 4].startswith("| style.low_support | 2 |")
    assert "- Ran (1): `validate` (failed)" in lines
    assert "- Restored from the run cache (1): `ingest`" in lines
    assert "- Failed: `validate`" in lines
    assert "Not shown: the run did not finish, so the metrics files are unchanged." in lines
    assert "| scheme | macro AP" not in text


def test_report_without_log_uses_lock_and_status():
    text = report(repro=None, lock_stages=[], stale=[])
    assert "**✅ Pipeline up to date.**" in text
    assert "No stage's dvc.lock entry differs from `main (abc1234)`." in text
    text = report(repro=None, lock_stages=["ingest", "split"], stale=["count@style"])
    assert (
        "Re-run since `main (abc1234)` (their dvc.lock entry differs) (2): `ingest`, `split`"
        in text
    )
    assert "**⚠️ Not reproduced to the end: 1 stage(s) out of date (`count@style`); " in text


def test_report_data_changes_notes_and_no_changes():
    old = {"outs": [{"md5": "53ead59492e2cffc.dir", "size": 254539, "nfiles": 241}]}
    new = {"outs": [{"md5": "0a6c4ded91768386.dir", "size": 254517, "nfiles": 241}]}
    text = report(
        data_changes={"data/shop.dvc": (old, new), "data/new.dvc": (None, new)},
        params_diff={},
        metrics_diff={},
        notes=["`dvc metrics diff` failed: boom | bang"],
    )
    lines = text.splitlines()
    assert "> ⚠️ `dvc metrics diff` failed: boom \\| bang" in lines
    assert lines[lines.index("| tracked data (.dvc) | before | after |") + 2 :][:2] == [
        "| `data/new.dvc` | (absent) | 241 files, 254,517 bytes, md5 0a6c4ded |",
        "| `data/shop.dvc` | 241 files, 254,539 bytes, md5 53ead594 | "
        "241 files, 254,517 bytes, md5 0a6c4ded |",
    ]
    assert "No params changed." in lines
    assert "No metrics found." in lines


def test_report_single_label_column_and_top():
    diff = {
        "metrics/sleeve/nw.json": {
            "macro_ap": entry(0.5, 0.6),
            "micro_ap": entry(0.7, 0.7),
            "top1_accuracy": entry(0.8, 0.75),
            **label_entries("cap", 0.1, 0.3, 5, 5),
        }
    }
    text = report(metrics_diff=diff, top=0)
    assert "| scheme | macro AP | micro AP | head | medium | tail | top-1 acc. |" in text
    assert "| nw | 0.500 → 0.600 (+0.100) | 0.700 | — | — | — | 0.800 → 0.750 (-0.050) |" in text
    assert "Labels whose AP moved most" not in text
    with pytest.raises(ValueError, match="top must be >= 0"):
        report(top=-1)


def test_demote_headings_skips_code_and_caps_at_six():
    md = "# A\ntext # not\n```\n# code\n```\n##### B\n#no-space"
    assert demote_headings(md, 3) == "#### A\ntext # not\n```\n# code\n```\n###### B\n#no-space"


def test_cli_report_rejects_an_unknown_base(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["report", "--base", "no-such-rev"])
    assert result.exit_code == 2
    assert "'no-such-rev' is not a commit of this repository" in result.output
