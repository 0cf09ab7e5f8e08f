"""Ingest a catalog folder: item table, decoded image cache and rejects table.

Outputs written to `out_dir`:

- `items.parquet`: one row per ingested item, in catalog order: `row` (int64),
  `item_id`, `product_id`, `image` (strings), `sha256` (hex of the file's bytes),
  `width`, `height` (int32, full-resolution size), `index` (int64, row into
  images.npy, = table position), one list<string> column per attribute (null when
  not labelled).
- `images.npy`: uint8 (N, S, S, 3), streamed to disk (never all in memory); open it with
  `np.load(path, mmap_mode="r")`.
- `rejects.parquet`: `row` (int64), `item_id`, `image` (nullable strings), `reason`,
  `detail`; written even when empty.

Rows in = rows ingested + rows rejected, always. Decoding runs in a process pool;
results are consumed in catalog order, so the outputs do not depend on `workers`.
pyarrow is imported inside the functions that use it, as pandas in `tailtag.catalog`:
pool workers re-import the main script and its imports.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from tailtag.catalog import Reject, read_catalog
from tailtag.images import DecodeOptions, ImageResult, process_chunk

if TYPE_CHECKING:
    import pyarrow as pa

ITEMS_FILE = "items.parquet"
IMAGES_FILE = "images.npy"
REJECTS_FILE = "rejects.parquet"
MAX_CHUNK = 64  # images per pool task: large enough to amortise pickling, small for balance


@dataclass(frozen=True)
class IngestSummary:
    """Counts of one ingest run; rows_in == ingested + rejected."""

    rows_in: int
    ingested: int
    rejected: int
    by_reason: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        line = f"rows in {self.rows_in} = ingested {self.ingested} + rejected {self.rejected}"
        reasons = "".join(f"\n  {reason}: {n}" for reason, n in self.by_reason.items())
        return line + reasons


def rejects_schema() -> pa.Schema:
    """Arrow schema of rejects.parquet."""
    import pyarrow as pa

    return pa.schema(
        [
            ("row", pa.int64()),
            ("item_id", pa.string()),
            ("image", pa.string()),
            ("reason", pa.string()),
            ("detail", pa.string()),
        ]
    )


def items_schema(attributes: Mapping[str, str]) -> pa.Schema:
    """Arrow schema of items.parquet for these attributes."""
    import pyarrow as pa

    return pa.schema(
        [
            ("row", pa.int64()),
            ("item_id", pa.string()),
            ("product_id", pa.string()),
            ("image", pa.string()),
            ("sha256", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("index", pa.int64()),
            *[(name, pa.list_(pa.string())) for name in attributes],
        ]
    )


def ingest_catalog(
    folder: str | Path,
    out_dir: str | Path,
    *,
    attributes: Mapping[str, str],
    image_size: int = 64,
    max_pixels: int = 89_478_485,
    max_bytes: int = 50 * 1024 * 1024,
    url_timeout: float = 30,
    workers: int = 0,
    progress: bool = True,
) -> IngestSummary:
    """Ingest the catalog in `folder` into `out_dir` (see module docstring for outputs).

    `attributes` maps name -> kind (`multi_label`/`single_label`). `workers=0` uses one
    process per core; `workers=1` decodes in this process. Raises CatalogError when the
    catalog table or a required column is missing.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    rows, rejects = read_catalog(folder, attributes)
    rows_in = len(rows) + len(rejects)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = DecodeOptions(image_size, max_pixels, max_bytes, url_timeout)
    tasks = list(zip(rows["row"].tolist(), rows["image"].tolist(), strict=True))

    keep: list[int] = []  # positions in `rows` of ingested items
    sha256: list[str] = []
    width: list[int] = []
    height: list[int] = []
    shape = (image_size, image_size, 3)
    with NpyStreamWriter(out_dir / IMAGES_FILE, shape, max_rows=len(tasks)) as writer:
        results = decode_all(
            tasks, Path(folder).resolve(), options, workers=workers, progress=progress
        )
        for pos, result in enumerate(results):
            row, ref = tasks[pos]
            if result.row != row:
                raise RuntimeError(f"result for row {result.row} arrived in place of row {row}")
            if result.pixels is None:
                item_id = rows["item_id"].iat[pos]
                rejects.append(Reject(row, item_id, ref, str(result.reason), str(result.detail)))
                continue
            writer.append(result.pixels)
            keep.append(pos)
            sha256.append(str(result.sha256))
            width.append(result.width)
            height.append(result.height)

    items = rows.iloc[keep]
    columns = {
        "row": items["row"].tolist(),
        "item_id": items["item_id"].tolist(),
        "product_id": items["product_id"].tolist(),
        "image": items["image"].tolist(),
        "sha256": sha256,
        "width": width,
        "height": height,
        "index": list(range(len(keep))),
    }
    columns.update({name: items[name].tolist() for name in attributes})
    pq.write_table(pa.table(columns, schema=items_schema(attributes)), out_dir / ITEMS_FILE)
    rejects.sort(key=lambda r: r.row)
    schema = rejects_schema()
    reject_columns = {name: [getattr(r, name) for r in rejects] for name in schema.names}
    pq.write_table(pa.table(reject_columns, schema=schema), out_dir / REJECTS_FILE)

    counts = Counter(r.reason for r in rejects)
    summary = IngestSummary(
        rows_in=rows_in,
        ingested=len(keep),
        rejected=len(rejects),
        by_reason=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
    if summary.rows_in != summary.ingested + summary.rejected:
        raise RuntimeError(f"row count mismatch: {summary}")
    return summary


def decode_all(
    tasks: list[tuple[int, str]],
    catalog_dir: Path,
    options: DecodeOptions,
    *,
    workers: int = 0,
    progress: bool = True,
) -> Iterator[ImageResult]:
    """Yield one ImageResult per (row, reference) task, in task order.

    With several workers, chunks run in a process pool with at most 4 chunks per worker
    in flight, so memory stays bounded however long the catalog and however slow one
    chunk (e.g. a URL timing out) is. Each chunk's result depends only on its tasks and
    results are yielded in task order, so the output does not depend on `workers`.
    """
    workers = workers or os.cpu_count() or 1
    chunk_size = max(1, min(MAX_CHUNK, -(-len(tasks) // (workers * 4))))
    chunks = [tasks[i : i + chunk_size] for i in range(0, len(tasks), chunk_size)]
    run = partial(process_chunk, catalog_dir=catalog_dir, options=options)
    with tqdm(total=len(tasks), desc="ingest", unit="img", disable=not progress) as bar:
        if workers == 1 or len(chunks) <= 1:
            for chunk in chunks:
                results = run(chunk)
                bar.update(len(results))
                yield from results
            return
        # not fork: forking a process that runs threads (BLAS, pyarrow, tqdm) can deadlock
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        n_procs = min(workers, len(chunks))
        todo = iter(chunks)
        with ProcessPoolExecutor(n_procs, mp_context=context) as pool:
            pending: deque[Future[list[ImageResult]]] = deque(
                pool.submit(run, chunk) for chunk in islice(todo, n_procs * 4)
            )
            while pending:
                results = pending.popleft().result()
                chunk = next(todo, None)
                if chunk is not None:
                    pending.append(pool.submit(run, chunk))
                bar.update(len(results))
                yield from results


def _npy_header(shape: tuple[int, ...], dtype: np.dtype, length: int | None = None) -> bytes:
    """A .npy version 1.0 header, space-padded to `length` (default: next multiple of 64)."""
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    prefix = 10  # magic (6) + version (2) + header length (2)
    if length is None:
        length = -(-(prefix + len(text) + 1) // 64) * 64
    pad = length - prefix - len(text) - 1
    if pad < 0:
        raise ValueError(f"npy header for shape {shape} does not fit in {length} bytes")
    body = (text + " " * pad + "\n").encode("latin1")
    return np.lib.format.magic(1, 0) + len(body).to_bytes(2, "little") + body


class NpyStreamWriter:
    """Write a C-order .npy array of shape (n, *item_shape) one item at a time.

    n need not be known up front, only a bound `max_rows`: the header is reserved at the
    size that bound needs and rewritten with the final n on close. Data go to
    `<path>.tmp`, renamed to `path` only on success.
    """

    def __init__(
        self, path: Path, item_shape: tuple[int, ...], *, max_rows: int, dtype: type = np.uint8
    ) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.item_shape = tuple(item_shape)
        self.dtype = np.dtype(dtype)
        self.header_len = len(_npy_header((max_rows, *self.item_shape), self.dtype))
        self.max_rows = max_rows
        self.n = 0
        self.file = open(self.tmp, "wb")  # noqa: SIM115 (closed in __exit__)
        self.file.write(b"\0" * self.header_len)

    def append(self, item: np.ndarray) -> None:
        if item.shape != self.item_shape or item.dtype != self.dtype:
            raise ValueError(
                f"item {item.shape} {item.dtype}, expected {self.item_shape} {self.dtype}"
            )
        if self.n >= self.max_rows:
            raise ValueError(f"more than max_rows={self.max_rows} items")
        self.file.write(np.ascontiguousarray(item).tobytes())
        self.n += 1

    def __enter__(self) -> NpyStreamWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.file.close()
            self.tmp.unlink(missing_ok=True)
            return
        self.file.seek(0)
        self.file.write(_npy_header((self.n, *self.item_shape), self.dtype, self.header_len))
        self.file.close()
        os.replace(self.tmp, self.path)
