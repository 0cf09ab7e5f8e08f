"""Finding and reading a catalog table; parsing its id, image and label cells.

A catalog folder holds exactly one table file (`catalog.csv`, `catalog.parquet` or
`catalog.jsonl`) plus images. Columns: `item_id` (unique), `product_id` (optional),
`image` (a reference to the image file) and one column per attribute.

Row checks, in this order; the first that fails is the row's one reject reason:

1. `missing_item_id`: empty/null item_id (`bad_cell` when it is a list, float...).
2. `duplicate_item_id`: the item_id was already seen in an earlier row; the first row is
   kept, whatever later happens to it (so the outcome does not depend on image decoding).
3. `missing_image`: empty/null image cell (`bad_cell` when it is not a string).
4. `bad_label_cell`: a label cell that cannot be read (first failing attribute wins).

Image checks (path, file, decoding) come after these, in `tailtag.images`.

pandas is imported inside the functions that use it: decoding workers (forkserver or
spawn) re-import the main script and what it imports, and pandas would add about 0.2 s
of start-up to each of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailtag.attributes import KINDS

if TYPE_CHECKING:
    import pandas as pd

TABLE_NAMES = ("catalog.csv", "catalog.parquet", "catalog.jsonl")
LABEL_SEP = "|"
# columns of the ingested item table; an attribute cannot take one of these names
RESERVED_COLUMNS = ("row", "item_id", "product_id", "image", "sha256", "width", "height", "index")


class CatalogError(ValueError):
    """The catalog as a whole is unusable (no table, several tables, a missing column...)."""


class LabelCellError(ValueError):
    """One label cell cannot be read; the row is rejected with `bad_label_cell`."""


@dataclass(frozen=True)
class Reject:
    """One rejected catalog row: `row` is its 0-based position in the catalog table."""

    row: int
    item_id: str | None
    image: str | None
    reason: str
    detail: str


def find_table(folder: str | Path) -> Path:
    """Return the one table file in `folder`; CatalogError if there is none or several."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CatalogError(f"catalog folder {folder} does not exist or is not a folder")
    found = [folder / name for name in TABLE_NAMES if (folder / name).is_file()]
    if not found:
        expected = ", ".join(TABLE_NAMES)
        raise CatalogError(f"no catalog table in {folder}: expected one of {expected}")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise CatalogError(f"several catalog tables in {folder}: {names}; keep exactly one")
    return found[0]


def read_table(path: str | Path) -> tuple[list[str], dict[str, list[Any]]]:
    """Read a table file into Python values, keeping each cell as written.

    Returns (column names, columns as {name: list of cells}). CSV cells are all strings
    ("" for an empty cell); parquet/jsonl cells are str, int, list, None...
    """
    path = Path(path)
    try:
        if path.suffix == ".csv":
            import pandas as pd

            # utf-8-sig: a byte-order mark (spreadsheet exports) would otherwise become part
            # of the first column's name.
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            return list(df.columns), {c: df[c].tolist() for c in df.columns}
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            return table.column_names, {c: table.column(c).to_pylist() for c in table.column_names}
        if path.suffix == ".jsonl":
            return _read_jsonl(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        if isinstance(e, CatalogError):
            raise
        raise CatalogError(f"cannot read catalog table {path}: {e}") from e
    raise CatalogError(f"unknown catalog table format: {path}")


def _read_jsonl(path: Path) -> tuple[list[str], dict[str, list[Any]]]:
    records: list[dict[str, Any]] = []
    columns: dict[str, None] = {}  # insertion-ordered union of keys
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue  # blank lines (e.g. a trailing one) are not rows
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CatalogError(f"{path}, line {lineno}: invalid JSON: {e}") from e
            if not isinstance(record, dict):
                raise CatalogError(
                    f"{path}, line {lineno}: expected a JSON object, got {type(record).__name__}"
                )
            records.append(record)
            columns.update(dict.fromkeys(record))
    names = list(columns)
    return names, {c: [r.get(c) for r in records] for c in names}


def parse_label_cell(value: Any) -> list[str] | None:
    """Parse one label cell into its labels, or None when it is not labelled.

    A string is split on "|" (CSV, and also accepted in parquet/jsonl); a list must hold
    strings. Labels are stripped of surrounding whitespace. "", whitespace, None and []
    mean "not labelled". Raises LabelCellError for an empty segment ("a||b", "|", "a|"),
    a non-string element, or a cell of another type (number, dict, nested list).

    >>> parse_label_cell(" casual | boho ")
    ['casual', 'boho']
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        parts = [p.strip() for p in value.split(LABEL_SEP)]
        if any(not p for p in parts):
            raise LabelCellError(f"empty label in {value!r}")
        return parts
    if isinstance(value, (list, tuple)):
        labels = []
        for v in value:
            if not isinstance(v, str):
                raise LabelCellError(f"list element {v!r} is {type(v).__name__}, not a string")
            if not v.strip():
                raise LabelCellError(f"empty label in {value!r}")
            labels.append(v.strip())
        return labels or None
    raise LabelCellError(f"{type(value).__name__} cell {value!r}: expected a string or a list")


def _id_cell(value: Any) -> str | None:
    """An id cell as a string (ints accepted: parquet/jsonl ids); None when empty."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise LabelCellError(f"{type(value).__name__} {value!r}: expected a string or an integer")


def read_catalog(
    folder: str | Path, attributes: Mapping[str, str]
) -> tuple[pd.DataFrame, list[Reject]]:
    """Read the catalog table of `folder` and apply the row checks (see module docstring).

    `attributes` maps attribute name -> kind (`multi_label` or `single_label`). Cells are
    parsed the same way for both kinds: the number of labels in a single_label cell, like
    the vocabulary, is checked by validation, which reports it rather than dropping rows.

    Returns (rows, rejects). `rows` has one row per accepted catalog row, in catalog
    order, with columns `row` (int64), `item_id`, `product_id` (= item_id when absent or
    empty), `image` (stripped reference), then one column per attribute holding a list
    of labels or None. Other columns of the table are ignored.
    Raises CatalogError naming the file when the table or a required column is missing.
    """
    for name, kind in attributes.items():
        if kind not in KINDS:
            raise ValueError(f"attribute {name!r}: unknown kind {kind!r}, expected one of {KINDS}")
        if name in RESERVED_COLUMNS:
            raise ValueError(f"attribute name {name!r} is reserved for an item table column")
    path = find_table(folder)
    names, cols = read_table(path)
    required = ["item_id", "image", *attributes]
    missing = [c for c in required if c not in names]
    if missing:
        raise CatalogError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(names) or 'none'})"
        )
    n = len(cols["item_id"])
    product_col = cols.get("product_id", [None] * n)

    out: dict[str, list[Any]] = {"row": [], "item_id": [], "product_id": [], "image": []}
    out.update({a: [] for a in attributes})
    rejects: list[Reject] = []
    seen: dict[str, int] = {}
    for row in range(n):
        reject = _check_row(row, cols, product_col, attributes, seen, out)
        if reject is not None:
            rejects.append(reject)

    import pandas as pd

    rows = pd.DataFrame(out)
    rows["row"] = rows["row"].astype("int64")
    return rows, rejects


def _check_row(
    row: int,
    cols: dict[str, list[Any]],
    product_col: list[Any],
    attributes: Mapping[str, str],
    seen: dict[str, int],
    out: dict[str, list[Any]],
) -> Reject | None:
    """Check one row; append it to `out` and return None, or return its Reject."""
    raw_image = cols["image"][row]
    image_text = raw_image if isinstance(raw_image, str) else None
    try:
        item_id = _id_cell(cols["item_id"][row])
    except LabelCellError as e:
        return Reject(row, None, image_text, "bad_cell", f"item_id: {e}")
    if item_id is None:
        return Reject(row, None, image_text, "missing_item_id", "empty item_id")
    if item_id in seen:
        return Reject(
            row,
            item_id,
            image_text,
            "duplicate_item_id",
            f"item_id {item_id!r} already in row {seen[item_id]}",
        )
    seen[item_id] = row

    if raw_image is not None and not isinstance(raw_image, str):
        return Reject(
            row,
            item_id,
            None,
            "bad_cell",
            f"image: {type(raw_image).__name__} {raw_image!r}, expected a string",
        )
    image = raw_image.strip() if raw_image else ""
    if not image:
        return Reject(row, item_id, image_text, "missing_image", "empty image cell")
    try:
        product_id = _id_cell(product_col[row]) or item_id
    except LabelCellError as e:
        return Reject(row, item_id, image_text, "bad_cell", f"product_id: {e}")

    labels: dict[str, list[str] | None] = {}
    for name in attributes:
        try:
            value = parse_label_cell(cols[name][row])
        except LabelCellError as e:
            return Reject(row, item_id, image_text, "bad_label_cell", f"{name}: {e}")
        labels[name] = value

    out["row"].append(row)
    out["item_id"].append(item_id)
    out["product_id"].append(product_id)
    out["image"].append(image)
    for name, value in labels.items():
        out[name].append(value)
    return None
