"""The pipeline end to end through real `dvc repro`, on a tiny catalog in a temporary repo."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run, update_params

pytestmark = pytest.mark.e2e

ATTRIBUTES = ("archetype", "sleevetype")
SCHEMES = ("nw", "ifw", "iew")


def _stale_stages(repo) -> set[str]:
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")
    return set(status)


def _ran(proc) -> set[str]:
    return {
        line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")
    }


def test_pipeline_end_to_end(make_pipeline_repo):
    repo = make_pipeline_repo()
    first = run(["dvc", "repro"], repo)
    assert _ran(first) == {
        "synthesize", "ingest", "validate", "split",
        *(f"count@{a}" for a in ATTRIBUTES),
        *(f"{st}@{a}-{s}" for st in ("train", "evaluate") for a in ATTRIBUTES for s in SCHEMES),
        *(f"compare@{a}" for a in ATTRIBUTES),
    }  # fmt: skip

    # Ingest: nothing lost, one image per item.
    catalog = pd.read_csv(repo / "data/catalog/catalog.csv", dtype=str, keep_default_na=False)
    items = pd.read_parquet(repo / "data/ingested/items.parquet")
    rejects = pd.read_parquet(repo / "data/ingested/rejects.parquet")
    images = np.load(repo / "data/ingested/images.npy", mmap_mode="r")
    assert len(catalog) == 300
    assert len(items) + len(rejects) == len(catalog)
    assert images.shape == (len(items), 32, 32, 3) and images.dtype == np.uint8
    ingest = json.loads((repo / "metrics/ingest.json").read_text())
    assert ingest["rows_in"] == 300 and ingest["ingested"] + ingest["rejected"] == 300

    # Split: grouped by product, every item exactly once.
    split = pd.read_parquet(repo / "data/split/split.parquet").merge(items, on="item_id")
    assert len(split) == len(items)
    assert split.groupby("product_id")["split"].nunique().max() == 1
    # ... and stratified: every label's examples are shared out close to 0.8 / 0.1 / 0.1.
    label_counts = pd.read_csv(repo / "data/split/label_counts.csv")
    assert (label_counts[["train", "val", "test"]].sum(axis=1) == label_counts["total"]).all()
    common = label_counts[label_counts["total"] >= 30]
    assert len(common) >= 5
    assert ((common["train"] / common["total"] - 0.8).abs() <= 0.06).all(), common
    assert ((common["test"] / common["total"] - 0.1).abs() <= 0.06).all(), common

    # Metrics: the public contract, for every attribute and scheme.
    for attribute in ATTRIBUTES:
        counts = json.loads((repo / f"data/counts/{attribute}.json").read_text())
        for scheme in SCHEMES:
            metrics = json.loads((repo / f"metrics/{attribute}/{scheme}.json").read_text())
            assert 0 <= metrics["macro_ap"] <= 1 and 0 <= metrics["micro_ap"] <= 1
            assert set(metrics["groups"]) == {"head", "medium", "tail"}
            assert set(metrics["per_label"]) == set(counts["active"])
            for label, row in metrics["per_label"].items():
                assert row["support_train"] == counts["support"]["train"][label]
                assert {"ap", "support_test", "threshold", "precision", "recall"} <= set(row)
            assert ("top1_accuracy" in metrics) == (attribute == "sleevetype")
        comparison = (repo / f"reports/compare/{attribute}/comparison.md").read_text()
        assert all(f"| {scheme} |" in comparison for scheme in SCHEMES)
        assert (repo / f"reports/compare/{attribute}/pr_curves.png").stat().st_size > 0

    # Nothing changed: nothing re-runs.
    assert _ran(run(["dvc", "repro"], repo)) == set()
    assert run(["dvc", "status", "-q"], repo, check=False).returncode == 0
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "results"], repo)

    # Changing beta touches only the IEW stages and the comparisons: `dvc status` lists the
    # stages whose params changed (evaluate follows once its model changes)...
    update_params(repo, {"schemes": {"iew": {"beta": 0.9}}})
    train_iew = {f"train@{a}-iew" for a in ATTRIBUTES}
    evaluate_iew = {f"evaluate@{a}-iew" for a in ATTRIBUTES}
    compare = {f"compare@{a}" for a in ATTRIBUTES}
    assert _stale_stages(repo) == train_iew | compare
    assert _ran(run(["dvc", "repro"], repo)) == train_iew | evaluate_iew | compare
    # ... and `dvc metrics diff` shows changes in iew metrics only.
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], repo).stdout)
    changed = {path for path, metrics in diff.items() if metrics}
    assert changed and all(path.endswith("/iew.json") for path in changed), changed


def test_validate_stops_the_pipeline_on_an_unknown_label(make_pipeline_repo):
    repo = make_pipeline_repo()
    run(["dvc", "repro", "synthesize"], repo)
    # Turn the synthetic catalog into a user's catalog with a typo in it.
    catalog_path = repo / "data/catalog/catalog.csv"
    catalog = pd.read_csv(catalog_path, dtype=str, keep_default_na=False)
    # (A symlink would not do: ingest rejects images resolving outside the catalog folder.)
    shutil.copytree(repo / "data/catalog/images", repo / "data/shop/images")
    typo = catalog.copy()
    typo.loc[[3, 7], "archetype"] = "bohoo"
    typo.to_csv(repo / "data/shop/catalog.csv", index=False)
    update_params(repo, {"ingest": {"catalog": "data/shop"}})

    failed = run(["dvc", "repro", "split"], repo, check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    bad_ids = ", ".join(catalog.loc[[3, 7], "item_id"])
    assert f"FAIL archetype.vocabulary: unknown label 'bohoo' in 2 items ({bad_ids})" in output
    assert not (repo / "data/split/split.parquet").exists()
    summary = json.loads((repo / "reports/validation/summary.json").read_text())
    assert summary  # written before the stage failed, for the user to read

    # Fixed catalog: the pipeline goes on past validate.
    catalog.to_csv(repo / "data/shop/catalog.csv", index=False)
    run(["dvc", "repro", "split"], repo)
    assert (repo / "data/split/split.parquet").exists()
