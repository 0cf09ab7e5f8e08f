"""Shared fixtures: a temporary copy of the project as its own git + DVC repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# What a pipeline run needs from the project: the stage graph, its params, the stage
# scripts and the library sources that dvc.yaml lists as dependencies.
PROJECT_FILES = ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", "stages", "src")

# Small enough for a test, large enough that every label has a few examples.
TINY_PARAMS = {
    "synthetic": {"n_items": 300, "image_size": 32},
    "ingest": {"image_size": 32, "workers": 2},
    # At 300 items a tail label may have a handful of examples: warn, don't stop.
    "validate": {"min_support_warn": 5, "min_support_fail": 1},
    "train": {"epochs": 1, "batch_size": 32},
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # `python` and `dvc` in dvc.yaml commands must be this interpreter's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    for key, value in {
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }.items():
        env.setdefault(key, value)
    return env


def run(args: list[str], cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command in `cwd` with the project's tools on PATH; show its output on failure."""
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def update_params(repo: Path, changes: dict) -> None:
    """Deep-merge `changes` into repo/params.yaml."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())

    def merge(into: dict, new: dict) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(params, changes)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def make_pipeline_repo(tmp_path: Path) -> Callable[..., Path]:
    """Return a factory making a committed git + DVC repo holding the pipeline, tiny params."""

    def make(params: dict | None = None, name: str = "repo") -> Path:
        repo = tmp_path / name
        repo.mkdir()
        for item in PROJECT_FILES:
            src = ROOT / item
            if src.is_dir():
                shutil.copytree(src, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, repo / item)
        run(["git", "init", "-q", "-b", "main"], repo)
        run(["dvc", "init", "-q"], repo)
        run(["dvc", "config", "core.analytics", "false"], repo)
        shutil.copytree(ROOT / ".dvc/plots", repo / ".dvc/plots")  # the plot templates
        update_params(repo, TINY_PARAMS)
        if params:
            update_params(repo, params)
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-q", "-m", "pipeline"], repo)
        return repo

    return make
