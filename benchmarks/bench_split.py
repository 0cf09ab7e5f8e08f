"""Split + count on a large synthetic label table: time, rows/s and stratification quality.

    .venv/bin/python benchmarks/bench_split.py                 # 1,000,000 rows, 300,000 products
    .venv/bin/python benchmarks/bench_split.py --rows 100000 --products 30000 --stages
    .venv/bin/python benchmarks/bench_split.py --iterstrat     # + the package at product level

The table has the demo's two attributes (archetype: 10 multi-label labels, sleevetype:
11 single-label labels, both with the long-tailed priors of params.yaml's `synthetic`),
1-6 images per product sharing their product's labels, 5 % of items without a sleevetype
and 1 % without any label. Goal: split + count in <= 60 s.

Quality, for the stratified split and for a random grouped split of the same table:
  share deviation    max over labels l and splits k of |n_kl / n_k - n_l / n|
                     (label share within a split against its share overall)
  fraction deviation max over labels l and splits k of |n_kl / n_l - r_k|
                     (the share of a label's items that went to split k against r_k)
  item fractions     items per split / all items
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from tailtag.counts import (
    count_summary,
    distribution_table,
    label_supports,
    labelled_items,
    plot_distribution,
)
from tailtag.split import (
    SPLITS,
    fraction_deviation,
    grouped_stratified_split,
    label_matrix,
    missing_in_eval,
    share_deviation,
    split_label_counts,
)
from tailtag.synthetic import ARCHETYPE_PRIORS, SLEEVETYPE_PRIORS

ROOT = Path(__file__).resolve().parents[1]
# The demo catalog's long-tailed label shares.
ARCHETYPE = ARCHETYPE_PRIORS
SLEEVETYPE = SLEEVETYPE_PRIORS
ATTRIBUTES = {
    "archetype": {"kind": "multi_label", "labels": sorted(ARCHETYPE)},
    "sleevetype": {"kind": "single_label", "labels": sorted(SLEEVETYPE)},
}
FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
LABELS = {"min_support": 0, "head_min": 100, "medium_min": 20}


def _lists(mask: np.ndarray, labels: list[str], null: np.ndarray) -> pa.Array:
    """list<string> cells from an [n, C] bool mask; rows in `null` become null cells."""
    rows, cols = np.nonzero(mask & ~null[:, None])  # parquet wants null cells empty
    offsets = np.zeros(len(mask) + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=len(mask)), out=offsets[1:])
    values = pa.array(np.asarray(labels, dtype=object)[cols], pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(null))


def synthetic_items(n_rows: int, n_products: int, seed: int = 0) -> pa.Table:
    """An item table as ingest writes it (label columns and ids only)."""
    rng = np.random.default_rng(seed)
    # 1..6 images per product, scaled so the sizes sum to n_rows
    sizes = rng.integers(1, 7, n_products).astype(float)
    sizes = np.maximum(1, np.round(sizes * n_rows / sizes.sum())).astype(np.int64)
    sizes[-1] += n_rows - sizes.sum()
    while sizes[-1] < 1:  # rounding overshot: take the excess from the largest products
        big = int(np.argmax(sizes[:-1]))
        sizes[big] -= 1
        sizes[-1] += 1
    product = np.repeat(np.arange(n_products), sizes)
    names = sorted(ARCHETYPE)
    priors = np.array([ARCHETYPE[c] for c in names])
    arch = rng.random((n_products, len(names))) < priors
    empty = ~arch.any(axis=1)  # an archetype cell lists at least one label
    arch[empty, rng.choice(len(names), empty.sum(), p=priors / priors.sum())] = True
    sleeve_names = sorted(SLEEVETYPE)
    sleeve_p = np.array([SLEEVETYPE[c] for c in sleeve_names])
    sleeve = np.eye(len(sleeve_names), dtype=bool)[
        rng.choice(len(sleeve_names), n_products, p=sleeve_p / sleeve_p.sum())
    ]
    no_sleeve = rng.random(n_rows) < 0.05
    no_label = rng.random(n_rows) < 0.01
    return pa.table(
        {
            "row": pa.array(np.arange(n_rows)),
            "item_id": pa.array([f"i{i:07d}" for i in range(n_rows)]),
            "product_id": pa.array([f"p{p:06d}" for p in product]),
            "archetype": _lists(arch[product], names, no_label),
            "sleevetype": _lists(sleeve[product], sleeve_names, no_label | no_sleeve),
        }
    )


def random_grouped_split(groups: np.ndarray, seed: int) -> np.ndarray:
    """The baseline: products in random order, cut where the running item count crosses
    the fractions (a product goes where its first item falls)."""
    codes = pd.factorize(groups)[0]
    sizes = np.bincount(codes)
    order = np.random.default_rng(seed).permutation(len(sizes))
    before = np.empty(len(sizes))
    before[order] = (np.cumsum(sizes[order]) - sizes[order]) / sizes.sum()
    bounds = np.cumsum([FRACTIONS[s] for s in SPLITS])[:-1]
    return np.searchsorted(bounds, before, side="right")[codes]


def iterstrat_at_product_level(indicators: np.ndarray, groups: np.ndarray, seed: int):
    """iterative-stratification on products (a product has a label if any item has it)."""
    from iterstrat.ml_stratifiers import IterativeStratification

    codes = pd.factorize(groups)[0]
    per_product = np.zeros((codes.max() + 1, indicators.shape[1]), dtype=bool)
    for col in range(indicators.shape[1]):
        per_product[:, col] = np.bincount(codes, weights=indicators[:, col]) > 0
    r = np.array([FRACTIONS[s] for s in SPLITS])
    return IterativeStratification(per_product, r, np.random.RandomState(seed))[codes]


def run_in_process(table: pa.Table, seed: int, *, iterstrat: bool) -> dict[str, float]:
    """The compute of both stages (no file I/O); returns seconds per phase."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    item_ids = table["item_id"].to_numpy()
    columns = {name: table[name] for name in ATTRIBUTES}
    indicators, names = label_matrix(columns, ATTRIBUTES, item_ids=item_ids)
    times["label matrix"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    codes = grouped_stratified_split(indicators, table["product_id"], FRACTIONS, seed=seed)
    times["stratified split"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts = split_label_counts(indicators, names, codes)
    missing = missing_in_eval(counts)
    times["label counts"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    splits = np.asarray(SPLITS, dtype=object)[codes]
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in ATTRIBUTES.items():
            supports = label_supports(
                columns[name], splits, spec["labels"], attribute=name, kind=spec["kind"]
            )
            summary = count_summary(
                name, spec["kind"], spec["labels"], supports,
                labelled_items(columns[name], splits, attribute=name), **LABELS,
            )  # fmt: skip
            distribution_table(summary).to_csv(Path(tmp) / f"{name}.csv", index=False)
            plot_distribution(summary, Path(tmp) / f"{name}.png")
    times["count (both attributes, with plots)"] = time.perf_counter() - t0

    groups = table["product_id"].to_numpy()
    compared = {"stratified": codes, "random grouped": random_grouped_split(groups, seed)}
    if iterstrat:
        t0 = time.perf_counter()
        compared["iterstrat"] = iterstrat_at_product_level(indicators, groups, seed)
        print(f"iterative-stratification on products: {time.perf_counter() - t0:.1f} s")
    n = len(codes)
    print(f"labels missing from val/test: {len(missing)}")
    for name, split in compared.items():
        shares = np.bincount(split, minlength=len(SPLITS)) / n
        print(
            f"  {name:>15}: share deviation {share_deviation(indicators, split):.5f}, "
            f"fraction deviation {fraction_deviation(indicators, split, FRACTIONS):.5f}, "
            "item fractions " + " / ".join(f"{s:.4f}" for s in shares)
        )
    return times


def run_stages(table: pa.Table, seed: int) -> dict[str, float]:
    """The stage scripts themselves, as DVC runs them, in a scratch folder (with file I/O)."""
    times: dict[str, float] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "stages")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        params = {"attributes": ATTRIBUTES, "split": {"fractions": FRACTIONS, "seed": seed}}
        params["labels"] = LABELS
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        (work / "data/ingested").mkdir(parents=True)
        pq.write_table(table, work / "data/ingested/items.parquet")
        commands = {
            "stage split": ["split.py", "--items", "data/ingested/items.parquet",
                            "--out", "data/split", "--no-progress"],
            **{f"stage count@{name}": ["count.py", "--attribute", name, "--items",
                                       "data/ingested/items.parquet", "--split",
                                       "data/split/split.parquet", "--out", "data/counts"]
               for name in ATTRIBUTES},
        }  # fmt: skip
        for what, args in commands.items():
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, str(ROOT / "stages" / args[0]), *args[1:]],
                cwd=work, env=env, check=True, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            times[what] = time.perf_counter() - t0
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", action="store_true", help="also time the stage scripts")
    parser.add_argument(
        "--iterstrat", action="store_true", help="also split with iterative-stratification"
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    table = synthetic_items(args.rows, args.products, args.seed)
    built = time.perf_counter() - t0
    print(
        f"synthetic table: {args.rows:,} rows, {args.products:,} products, {built:.1f} s to "
        f"build (not counted); load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    times = run_in_process(table, args.seed, iterstrat=args.iterstrat)
    total = sum(times.values())
    for what, seconds in times.items():
        print(f"  {what:<40} {seconds:7.2f} s")
    print(f"split + count: {total:.2f} s, {args.rows / total:,.0f} rows/s (goal <= 60 s)")
    if args.stages:
        stage_times = run_stages(table, args.seed)
        for what, seconds in stage_times.items():
            print(f"  {what:<40} {seconds:7.2f} s")
        total = sum(stage_times.values())
        print(f"stage scripts with I/O: {total:.2f} s, {args.rows / total:,.0f} rows/s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
