"""I/O shared by the stage scripts: reading params.yaml and the split item table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tailtag.data import split_targets

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


def load_attribute_splits(
    items: str, split: str, attribute: str, labels: list[str], kind: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the item table and the split; per split, (image-cache rows, targets) of the items
    labelled for `attribute` (see tailtag.data.split_targets)."""
    table = pd.read_parquet(items, columns=["item_id", "index", attribute])
    assignment = pd.read_parquet(split).set_index("item_id")["split"]
    missing = table.loc[~table["item_id"].isin(assignment.index), "item_id"]
    if len(missing):
        raise SystemExit(f"{split}: no split for {len(missing)} item(s), e.g. {missing.iloc[0]!r}")
    return split_targets(
        table[attribute].tolist(),
        assignment.loc[table["item_id"]].to_numpy(),
        table["index"].to_numpy(),
        labels,
        kind=kind,
    )
