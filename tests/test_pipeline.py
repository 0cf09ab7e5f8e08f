"""The pipeline end to end through real `dvc repro`, on a tiny catalog in a temporary repo."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run

pytestmark = pytest.mark.e2e


def test_repro_builds_everything_then_nothing(make_pipeline_repo):
    repo = make_pipeline_repo()
    run(["dvc", "repro"], repo)

    catalog = pd.read_csv(repo / "data/catalog/catalog.csv", dtype=str, keep_default_na=False)
    items = pd.read_parquet(repo / "data/ingested/items.parquet")
    rejects = pd.read_parquet(repo / "data/ingested/rejects.parquet")
    images = np.load(repo / "data/ingested/images.npy", mmap_mode="r")
    assert len(catalog) == 300
    assert len(items) + len(rejects) == len(catalog)
    assert len(rejects) == 0  # the synthetic catalog is clean
    assert images.shape == (len(items), 32, 32, 3)
    assert images.dtype == np.uint8
    summary = json.loads((repo / "metrics/ingest.json").read_text())
    assert summary["rows_in"] == 300 and summary["ingested"] == 300

    # Nothing changed: a second run reproduces nothing and the pipeline is up to date.
    second = run(["dvc", "repro"], repo)
    assert "Running stage" not in second.stdout
    assert run(["dvc", "status", "-q"], repo, check=False).returncode == 0
