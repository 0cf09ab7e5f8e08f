"""Time the validate stage's work on a 1,000,000-item table (goal: <= 60 s on 2 cores).

Builds ingest-shaped outputs in a temporary folder: items.parquet with the synthetic
attributes (archetype: multi_label, 10 labels, 1-3 per item; sleevetype: single_label,
11 labels; both long-tailed, 5% unlabelled, 1% of images duplicated), a rejects table,
and an images.npy whose header says N x 64 x 64 x 3 uint8 but whose data is a sparse
hole: validation reads the header only. Prints the time of each step.

    .venv/bin/python benchmarks/bench_validate.py [--items 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tailtag.synthetic import ARCHETYPE_PRIORS, SLEEVETYPE_PRIORS
from tailtag.validate import read_ingested, validate_ingested
from tailtag.validation_report import console_lines, write_reports

# The demo catalog's long-tailed label shares.
ARCHETYPE = ARCHETYPE_PRIORS
SLEEVETYPE = SLEEVETYPE_PRIORS
SIZE = 64


def _labels(rng: np.random.Generator, n: int, priors: dict[str, float], max_k: int) -> list:
    names = np.array(sorted(priors), dtype=object)
    p = np.array([priors[x] for x in names])
    # Weighted sampling without replacement: top-k of log p + Gumbel noise.
    keys = np.log(p) + rng.gumbel(size=(n, len(p)))
    order = np.argsort(-keys, axis=1)[:, :max_k]
    k = rng.integers(1, max_k + 1, size=n)
    chosen = names[order]
    cells = [row[:m].tolist() for row, m in zip(chosen, k, strict=True)]
    for i in np.flatnonzero(rng.random(n) < 0.05):
        cells[i] = None
    return cells


def build(folder: Path, n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    sha = np.array([f"{i:064x}" for i in range(n)], dtype=object)
    # 1% of the items, in pairs, share their image content and their labels.
    dup = np.flatnonzero(rng.random(n) < 0.01)
    first, second = dup[0 : len(dup) - 1 : 2], dup[1::2]
    sha[second] = sha[first]
    archetype = _labels(rng, n, ARCHETYPE, 3)
    sleevetype = _labels(rng, n, SLEEVETYPE, 1)
    for i, j in zip(second, first, strict=True):
        archetype[i], sleevetype[i] = archetype[j], sleevetype[j]
    ids = [f"item{i:07d}" for i in range(n)]
    table = pa.table(
        {
            "row": pa.array(np.arange(n, dtype=np.int64)),
            "item_id": pa.array(ids, pa.string()),
            "product_id": pa.array([f"p{i // 2:07d}" for i in range(n)], pa.string()),
            "image": pa.array([f"images/{x}.jpg" for x in ids], pa.string()),
            "sha256": pa.array(sha.tolist(), pa.string()),
            "width": pa.array(np.full(n, 600, np.int32)),
            "height": pa.array(np.full(n, 800, np.int32)),
            "index": pa.array(np.arange(n, dtype=np.int64)),
            "archetype": pa.array(archetype, pa.list_(pa.string())),
            "sleevetype": pa.array(sleevetype, pa.list_(pa.string())),
        }
    )
    pq.write_table(table, folder / "items.parquet")
    n_rej = n // 200
    rejects = pa.table(
        {
            "row": pa.array(np.arange(n, n + n_rej, dtype=np.int64)),
            "item_id": pa.array([f"bad{i}" for i in range(n_rej)], pa.string()),
            "image": pa.array([f"images/bad{i}.jpg" for i in range(n_rej)], pa.string()),
            "reason": pa.array(["decode_error"] * n_rej, pa.string()),
            "detail": pa.array(["truncated file"] * n_rej, pa.string()),
        }
    )
    pq.write_table(rejects, folder / "rejects.parquet")
    header = {"descr": "|u1", "fortran_order": False, "shape": (n, SIZE, SIZE, 3)}
    with open(folder / "images.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.truncate(f.tell() + n * SIZE * SIZE * 3)  # sparse: no data blocks written
    return {
        "archetype": {"kind": "multi_label", "labels": sorted(ARCHETYPE)},
        "sleevetype": {"kind": "single_label", "labels": sorted(SLEEVETYPE)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        attributes = build(folder, args.items)
        t1 = time.perf_counter()
        data = read_ingested(folder)
        t2 = time.perf_counter()
        report = validate_ingested(
            data.items, data.rejects, data.images_shape, data.images_dtype, attributes,
            docs_dir=folder / "report" / "docs", progress=False,
        )  # fmt: skip
        t3 = time.perf_counter()
        write_reports(report, folder / "report")
        t4 = time.perf_counter()
    print("\n".join(console_lines(report, "index.html")))
    print(f"items: {args.items:,}")
    print(f"build table (not timed): {t1 - t0:6.1f} s")
    print(f"read ingested:           {t2 - t1:6.1f} s")
    print(f"validate (GX + docs):    {t3 - t2:6.1f} s")
    print(f"write reports:           {t4 - t3:6.1f} s")
    print(f"total (goal <= 60 s):    {t4 - t1:6.1f} s")


if __name__ == "__main__":
    main()
