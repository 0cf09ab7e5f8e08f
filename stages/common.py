"""Helpers shared by the stage scripts: reading params.yaml, nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path("params.yaml")


def load_params(*sections: str, path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Return the named top-level sections of params.yaml (all when none is named).

    DVC runs stage commands from the repository root, so the default path is relative.
    A missing section is an error naming it, never a silent default.
    """
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f) or {}
    if not sections:
        return params
    missing = [s for s in sections if s not in params]
    if missing:
        raise SystemExit(f"{path}: missing section(s) {', '.join(missing)}")
    return {s: params[s] for s in sections}
