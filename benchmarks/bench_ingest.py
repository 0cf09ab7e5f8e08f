"""Ingest speed: tailtag's pipeline vs a naive one-by-one Pillow loop, side by side.

Writes N JPEGs of 512 x 512 px (varied content) to a temporary folder, then times
  naive: np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64))) ...])
  tailtag: ingest_catalog(...) (reduced-size JPEG decoding, a process pool, hashing,
           writing items.parquet / images.npy / rejects.parquet)
and prints both times and their ratio (best of --repeat runs each).

    python benchmarks/bench_ingest.py [--n 2000] [--size 64] [--workers 0] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tailtag.ingest import ingest_catalog


def make_images(folder: Path, n: int, px: int = 512, seed: int = 0) -> list[str]:
    """n JPEGs: a random two-colour gradient with random rectangles and ellipses."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, px)[:, None, None]
    names = []
    for i in range(n):
        a, b = rng.integers(0, 256, (2, 3))
        grad = (a + (b - a) * ramp).astype(np.uint8)
        im = Image.fromarray(np.broadcast_to(grad, (px, px, 3)).copy())
        draw = ImageDraw.Draw(im)
        for _ in range(6):
            x0, y0 = rng.integers(0, px - 64, 2)
            w, h = rng.integers(32, px // 2, 2)
            box = (int(x0), int(y0), int(x0 + w), int(y0 + h))
            fill = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.rectangle if rng.random() < 0.5 else draw.ellipse)(box, fill=fill)
        name = f"img/{i:05d}.jpg"
        im.save(folder / name, "JPEG", quality=90)
        names.append(name)
    return names


def naive(paths: list[Path], size: int) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in paths])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    # warm imports, so that neither timing counts them; imported here, not at the top,
    # because pool workers re-import this script's top-level imports
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        cat = Path(tmp) / "catalog"
        (cat / "img").mkdir(parents=True)
        t0 = time.perf_counter()
        names = make_images(cat, args.n)
        lines = ["item_id,image,archetype"] + [f"{i},{name},x" for i, name in enumerate(names)]
        (cat / "catalog.csv").write_text("\n".join(lines) + "\n")
        print(f"wrote {args.n} JPEGs of 512 x 512 px in {time.perf_counter() - t0:.1f} s")
        paths = [cat / name for name in names]

        naive_times, our_times = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            stacked = naive(paths, args.size)
            naive_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            summary = ingest_catalog(
                cat,
                Path(tmp) / "out",
                attributes={"archetype": "multi_label"},
                image_size=args.size,
                workers=args.workers,
                progress=False,
            )
            our_times.append(time.perf_counter() - t0)
        assert summary.ingested == args.n and stacked.shape == (args.n, args.size, args.size, 3)
        ours = np.load(Path(tmp) / "out" / "images.npy", mmap_mode="r")
        diff = np.abs(ours.astype(np.int16) - stacked.astype(np.int16)).mean()

    workers = args.workers or os.cpu_count()
    t_naive, t_ours = min(naive_times), min(our_times)
    runs = "" if args.repeat == 1 else f", best of {args.repeat}"
    print(f"naive loop : {t_naive:7.2f} s  ({args.n / t_naive:7.0f} img/s{runs})")
    print(f"tailtag    : {t_ours:7.2f} s  ({args.n / t_ours:7.0f} img/s{runs}, {workers} workers)")
    print(f"speed-up   : {t_naive / t_ours:7.2f}x   (mean |pixel difference| {diff:.2f} levels)")
    if args.repeat > 1:
        print(
            "all runs   : naive "
            + " ".join(f"{t:.2f}" for t in naive_times)
            + " | tailtag "
            + " ".join(f"{t:.2f}" for t in our_times)
        )


if __name__ == "__main__":
    main()
