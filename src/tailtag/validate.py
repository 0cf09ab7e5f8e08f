"""Validation of the ingested catalog before it trains anything.

`validate_ingested` runs a Great Expectations suite (see `tailtag.gx_suite`, imported
lazily by it) on the item table and on frames derived from it, and returns a
`ValidationReport`: one `CheckResult` per check, each PASS, WARN or FAIL. A check that
does not pass gets the severity set for its kind (`fail` stops the pipeline, `warn`
only reports). Checks, by kind:

- `schema`: the item table's columns exist with the expected types (integer, string,
  list<string> per attribute), and so do the rejects table's.
- `item_id`: at least one item; `item_id` non-null and unique.
- `image`: every item has an image reference.
- `images_decoded`: one image per item row: images.npy is uint8 N x S x S x 3 with N =
  the number of items, `index` equals the row position, every item has a content hash.
- `<attribute>.vocabulary`: every label is in the attribute's declared vocabulary.
- `<attribute>.cardinality`: single_label: exactly one label per labelled item;
  multi_label: at least one; no label twice in one item. Null = not labelled (allowed;
  its share is reported).
- `<attribute>.support`: every declared label is on at least `min_support_fail` items.
- `<attribute>.low_support`: labels with at least `min_support_fail` items reach
  `min_support_warn` (labels below `min_support_fail` are reported by `support` alone).
- `<attribute>.duplicate_conflicts`: items with the same image content (sha256) that
  are labelled for the attribute carry the same label set.
- `rejects`: rejected / (ingested + rejected) <= `max_reject_fraction`.

List-valued label columns are not validated directly (GX's built-ins misread lists):
the derived frames are the label inventory (one row per distinct label with its item
count), per-item label counts, per-label supports and the duplicate-image table. GX
reports the offending values; they are mapped back to item_ids here for the messages.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailtag.attributes import KINDS, SINGLE_LABEL
from tailtag.gx_suite import Expect, ExpectResult

SEVERITIES = ("fail", "warn")
DEFAULT_SEVERITY: dict[str, str] = {
    "schema": "fail",
    "item_id": "fail",
    "image": "fail",
    "images_decoded": "fail",
    "vocabulary": "fail",
    "cardinality": "fail",
    "support": "fail",
    "low_support": "warn",
    "duplicate_conflicts": "warn",
    "rejects": "fail",
}
ITEM_COLUMNS: dict[str, str] = {
    "row": "integer",
    "item_id": "string",
    "product_id": "string",
    "image": "string",
    "sha256": "string",
    "width": "integer",
    "height": "integer",
    "index": "integer",
}
REJECT_COLUMNS: dict[str, str] = {
    "row": "integer",
    "item_id": "string",
    "image": "string",
    "reason": "string",
    "detail": "string",
}
LABELS_KIND = "list<string>"
_LISTLIKE = (list, tuple, np.ndarray)
# GX keeps this many unexpected values per expectation; messages show fewer.
PARTIAL_UNEXPECTED = 20


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class IngestedData:
    """The ingest stage's outputs: item table, rejects table and the image cache's header."""

    items: pd.DataFrame
    rejects: pd.DataFrame
    images_shape: tuple[int, ...]
    images_dtype: str


def read_ingested(folder: Path) -> IngestedData:
    """Read `items.parquet`, `rejects.parquet` and the shape of `images.npy` from `folder`.

    images.npy is memory-mapped and only its header is read, so a 1M x 64 x 64 x 3 cache
    costs nothing here.
    """
    folder = Path(folder)
    paths = {name: folder / name for name in ("items.parquet", "rejects.parquet", "images.npy")}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"ingest output missing: {', '.join(missing)}")
    images = np.load(paths["images.npy"], mmap_mode="r")
    return IngestedData(
        items=pd.read_parquet(paths["items.parquet"]),
        rejects=pd.read_parquet(paths["rejects.parquet"]),
        images_shape=tuple(int(s) for s in images.shape),
        images_dtype=str(images.dtype),
    )


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _arrow_kind(pa_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_integer(pa_type):
        return "integer"
    if pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type):
        return "string"
    if pa.types.is_list(pa_type) or pa.types.is_large_list(pa_type):
        inner = _arrow_kind(pa_type.value_type)
        return f"list<{inner}>"
    return str(pa_type)


def column_kind(values: pd.Series) -> str:
    """The column's type as the schema check names it.

    "integer" (any integer dtype), "string", "list<string>" (cells are lists or arrays
    of strings, or null), "empty" (object column with only nulls: no evidence either
    way), else the dtype or what pandas infers, e.g. "float64", "list<integer>".
    """
    dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype):
        return _arrow_kind(dtype.pyarrow_dtype)
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if not pd.api.types.is_object_dtype(dtype):
        return str(dtype)
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in ("string", "empty"):
        return inferred
    cells = [v for v in values if _is_listlike(v) or not _is_null(v)]
    if all(_is_listlike(v) for v in cells):
        flat = list(itertools.chain.from_iterable(cells))
        element = pd.api.types.infer_dtype(flat, skipna=True) if flat else "empty"
        return LABELS_KIND if element in ("string", "empty") else f"list<{element}>"
    return f"object<{inferred}>"


def _is_listlike(value: Any) -> bool:
    return isinstance(value, _LISTLIKE)


@dataclass(frozen=True)
class _Cells:
    """One attribute column, flattened: N items, L labels in all, U distinct labels."""

    n_labels: np.ndarray  # (N,) int64; -1 = not labelled (null cell)
    pos: np.ndarray  # (L,) int64 item position of each label
    labels: np.ndarray  # (L,) object: str, or None for a null inside a list
    codes: np.ndarray  # (L,) int64 index into `uniques`
    uniques: np.ndarray  # (U,) object distinct labels
    repeated: np.ndarray  # (L,) bool: the same label earlier in the same item
    kind: str  # the column's type, as `column_kind` names it


def _label_cells(column: pd.Series) -> _Cells:
    values = column.to_numpy(dtype=object)
    listlike = np.fromiter((isinstance(v, _LISTLIKE) for v in values), bool, len(values))
    scalar = ~listlike & ~pd.isna(values)
    if scalar.any():
        # A bare scalar counts as one label; the schema check reports the column's type.
        values = values.copy()
        for i in np.flatnonzero(scalar):
            values[i] = [values[i]]
    lists = values[listlike | scalar]
    n_labels = np.full(len(values), -1, dtype=np.int64)
    n_labels[listlike | scalar] = np.fromiter(map(len, lists), np.int64, len(lists))
    total = int(np.maximum(n_labels, 0).sum())
    labels = np.fromiter(itertools.chain.from_iterable(lists), object, total)
    element = pd.api.types.infer_dtype(labels, skipna=True)
    if element not in ("string", "empty"):
        labels = np.fromiter(
            (None if _is_null(x) else x if isinstance(x, str) else repr(x) for x in labels),
            object,
            total,
        )
    labels[pd.isna(labels)] = None
    if not pd.api.types.is_object_dtype(column.dtype):
        kind = column_kind(column)
    elif scalar.any():
        kind = f"object<{pd.api.types.infer_dtype(column, skipna=True)}>"
    else:
        kind = LABELS_KIND if element in ("string", "empty") else f"list<{element}>"
    codes, uniques = pd.factorize(labels, use_na_sentinel=False)
    uniques = np.asarray(uniques, dtype=object)
    uniques[pd.isna(uniques)] = None
    pos = np.repeat(np.arange(len(n_labels), dtype=np.int64), np.maximum(n_labels, 0))
    key = pos * (len(uniques) + 1) + codes
    repeated = pd.Series(key).duplicated().to_numpy()
    return _Cells(n_labels, pos, labels, codes.astype(np.int64), uniques, repeated, kind)


def _check_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> None:
    for name, spec in attributes.items():
        if name in ITEM_COLUMNS:
            raise ValueError(f"attributes.{name}: clashes with the item table column {name!r}")
        if spec.get("kind") not in KINDS:
            raise ValueError(
                f"attributes.{name}.kind: {spec.get('kind')!r}, expected one of {KINDS}"
            )
        labels = spec.get("labels")
        if not labels or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"attributes.{name}.labels: expected a non-empty list of strings")
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"attributes.{name}.labels: listed twice: {', '.join(dupes)}")


def resolve_severity(severity: Mapping[str, str] | None) -> dict[str, str]:
    """DEFAULT_SEVERITY overridden by `severity` (check kind -> "fail" | "warn")."""
    merged = dict(DEFAULT_SEVERITY)
    for kind, level in (severity or {}).items():
        if kind not in DEFAULT_SEVERITY:
            known = ", ".join(DEFAULT_SEVERITY)
            raise ValueError(f"validate.severity.{kind}: unknown check (known: {known})")
        if level not in SEVERITIES:
            raise ValueError(f"validate.severity.{kind}: {level!r}, expected 'fail' or 'warn'")
        merged[kind] = level
    return merged


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    """One check: status "pass" | "warn" | "fail", a one-line message and examples."""

    name: str
    kind: str
    attribute: str | None
    severity: str
    status: str
    message: str
    unexpected: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ValidationReport:
    """All check results, per-attribute label statistics and GX's raw results."""

    checks: list[CheckResult]
    attributes: dict[str, dict[str, Any]]
    n_items: int
    n_rejected: int
    gx_results: dict[str, dict[str, Any]]
    docs_dir: Path | None = None

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "warn"]

    @property
    def success(self) -> bool:
        """True when no `fail`-severity check failed (warnings allowed)."""
        return not self.failed

    def summary(self) -> dict[str, Any]:
        """Deterministic summary: no times or run ids, so unchanged data gives the same file."""
        return {
            "success": self.success,
            "n_checks": len(self.checks),
            "n_failed": len(self.failed),
            "n_warnings": len(self.warnings),
            "n_items": self.n_items,
            "n_rejected": self.n_rejected,
            "checks": {
                c.name: {
                    "status": c.status,
                    "severity": c.severity,
                    "unexpected": c.unexpected,
                    "message": c.message,
                    "examples": c.examples,
                }
                for c in self.checks
            },
            "attributes": self.attributes,
        }


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    message: str
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Check:
    name: str
    kind: str
    attribute: str | None
    expects: list[tuple[str, Expect]] = field(default_factory=list)
    explain: Callable[[Mapping[str, ExpectResult]], _Outcome] | None = None
    missing: tuple[str, ...] = ()


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _shown(items: Sequence[str], total: int) -> str:
    text = ", ".join(items)
    return text + (f", +{total - len(items)} more" if total > len(items) else "")


def _values(res: ExpectResult) -> list[Any]:
    return list(res.result.get("partial_unexpected_list") or [])


def _unexpected(res: ExpectResult) -> int:
    return int(res.result.get("unexpected_count") or 0)


def _rows_with(frame: pd.DataFrame, columns: Sequence[str], values: list[Any]) -> pd.DataFrame:
    """Rows of `frame` whose value(s) in `columns` are among GX's unexpected values."""
    if not values or frame.empty:
        return frame.iloc[:0]
    if len(columns) == 1:
        col = frame[columns[0]]
        plain = [v for v in values if not _is_null(v)]
        mask = col.isin(plain).to_numpy(dtype=bool)
        if len(plain) < len(values):
            mask |= col.isna().to_numpy(dtype=bool)
        return frame[mask]
    wanted = pd.MultiIndex.from_tuples([tuple(v) for v in values])
    return frame[pd.MultiIndex.from_frame(frame[list(columns)]).isin(wanted)]


# ---------------------------------------------------------------- the plan


class _Plan:
    """Derived frames, the expectations on them and how to explain each check's outcome."""

    def __init__(
        self,
        items: pd.DataFrame,
        rejects: pd.DataFrame,
        images_shape: Sequence[int],
        images_dtype: str,
        attributes: Mapping[str, Mapping[str, Any]],
        *,
        min_support_warn: int,
        min_support_fail: int,
        max_reject_fraction: float,
        max_examples: int,
    ) -> None:
        self.items = items.reset_index(drop=True)
        self.rejects = rejects.reset_index(drop=True)
        self.n = len(self.items)
        self.k = max_examples
        self.min_warn = min_support_warn
        self.min_fail = min_support_fail
        self.max_reject = max_reject_fraction
        self.frames: dict[str, pd.DataFrame] = {}
        self.checks: list[_Check] = []
        self.stats: dict[str, dict[str, Any]] = {}
        self._ids = (
            self.items["item_id"].to_numpy(dtype=object) if "item_id" in self.items else None
        )
        self._rows = self.items["row"].to_numpy(dtype=object) if "row" in self.items else None
        self.cells = {
            name: _label_cells(self.items[name]) for name in attributes if name in self.items
        }
        self._schema(attributes)
        self._item_id()
        self._image()
        self._images_decoded(tuple(int(s) for s in images_shape), str(images_dtype))
        for name, spec in attributes.items():
            self._attribute(name, spec["kind"], list(spec["labels"]))
        self._rejects()

    # -- helpers

    def name(self, pos: int) -> str:
        """How messages name item `pos`: its item_id, else its catalog row."""
        if self._ids is not None and not _is_null(self._ids[pos]):
            return str(self._ids[pos])
        row = self._rows[pos] if self._rows is not None else pos
        return f"row {row if not _is_null(row) else pos}"

    def names(self, positions: Sequence[int]) -> list[str]:
        return [self.name(int(p)) for p in positions[: self.k]]

    def add(self, check: _Check, frames: Mapping[str, pd.DataFrame]) -> None:
        self.frames.update(frames)
        self.checks.append(check)

    def _needs(self, name: str, kind: str, attribute: str | None, columns: Sequence[str]) -> bool:
        missing = tuple(c for c in columns if c not in self.items)
        if missing:
            self.checks.append(_Check(name, kind, attribute, missing=missing))
        return not missing

    # -- checks on the item table

    def _schema(self, attributes: Mapping[str, Mapping[str, Any]]) -> None:
        expected = [(col, kind, self.items) for col, kind in ITEM_COLUMNS.items()]
        expected += [(name, LABELS_KIND, self.items) for name in attributes]
        expected += [(col, kind, self.rejects) for col, kind in REJECT_COLUMNS.items()]
        rows = []
        for i, (col, kind, table) in enumerate(expected):
            label = col if i < len(ITEM_COLUMNS) + len(attributes) else f"rejects.{col}"
            if col not in table:
                observed = "missing"
            elif table is self.items and col in self.cells:
                observed = self.cells[col].kind
            else:
                observed = column_kind(table[col])
            rows.append((label, kind, kind if observed == "empty" else observed))
        frame = pd.DataFrame(rows, columns=["column", "expected", "observed"])
        frame["column_type"] = frame["column"] + ": " + frame["observed"]
        allowed = (frame["column"] + ": " + frame["expected"]).tolist()

        def explain(res: Mapping[str, ExpectResult]) -> _Outcome:
            r = res["types"]
            if r.success:
                return _Outcome(True, f"{len(frame)} columns present with the expected types")
            bad = _rows_with(frame, ["column_type"], _values(r))
            parts = [
                f"{c} is missing" if o == "missing" else f"{c} is {o} (expected {e})"
                for c, e, o in bad[["column", "expected", "observed"]].itertuples(index=False)
            ]
            return _Outcome(
                False,
                f"{_plural(_unexpected(r), 'column')} not as expected: "
                + _shown(parts[: self.k], _unexpected(r)),
                [
                    {"column": c, "observed": o}
                    for c, o in zip(bad.column, bad.observed, strict=True)
                ][: self.k],
            )

        expect = Expect(
            "ExpectColumnValuesToBeInSet",
            "schema",
            "types",
            {"column": "column_type", "value_set": allowed},
        )
        self.add(_Check("schema", "schema", None, [("schema", expect)], explain), {"schema": frame})
        # GX fingerprints each frame it validates, by pickling it when a column holds
        # lists: it sees the item table's scalar columns, the labels via derived frames.
        self.frames["items"] = self.items[[c for c in ITEM_COLUMNS if c in self.items]]

    def _item_id(self) -> None:
        if not self._needs("item_id", "item_id", None, ["item_id"]):
            return
        ids = self.items["item_id"]

        def explain(res: Mapping[str, ExpectResult]) -> _Outcome:
            parts, examples = [], []
            if not res["nonempty"].success:
                parts.append("the item table is empty")
            if not res["null"].success:
                pos = np.flatnonzero(ids.isna().to_numpy(dtype=bool))
                parts.append(
                    f"{_plural(len(pos), 'item')} without item_id ("
                    + _shown(self.names(pos), len(pos))
                    + ")"
                )
                examples += [{"item": n, "value": None} for n in self.names(pos)]
            if not res["unique"].success:
                r = res["unique"]
                dup_ids = list(dict.fromkeys(v for v in _values(r) if not _is_null(v)))
                texts = []
                for value in dup_ids[: self.k]:
                    pos = np.flatnonzero(ids.eq(value).fillna(False).to_numpy(dtype=bool))
                    rows = [str(self._rows[p] if self._rows is not None else p) for p in pos]
                    texts.append(f"{value!r} on rows {', '.join(rows[: self.k])}")
                    examples.append({"item": str(value), "value": int(len(pos))})
                parts.append(
                    f"{_plural(_unexpected(r), 'row')} share an item_id: "
                    + "; ".join(texts)
                    + ("; ..." if len(dup_ids) > self.k else "")
                )
            if not parts:
                return _Outcome(True, f"{_plural(self.n, 'item')}, item_id non-null and unique")
            return _Outcome(False, "; ".join(parts), examples)

        expects = [
            ("items", Expect("ExpectTableRowCountToBeBetween", "item_id", "nonempty",
                             {"min_value": 1})),
            ("items", Expect("ExpectColumnValuesToNotBeNull", "item_id", "null",
                             {"column": "item_id"})),
            ("items", Expect("ExpectColumnValuesToBeUnique", "item_id", "unique",
                             {"column": "item_id"})),
        ]  # fmt: skip
        self.add(_Check("item_id", "item_id", None, expects, explain), {})

    def _image(self) -> None:
        if not self._needs("image", "image", None, ["image"]):
            return

        def explain(res: Mapping[str, ExpectResult]) -> _Outcome:
            if res["null"].success:
                return _Outcome(True, "every item has an image reference")
            pos = np.flatnonzero(self.items["image"].isna().to_numpy(dtype=bool))
            return _Outcome(
                False,
                f"{_plural(len(pos), 'item')} without an image reference ("
                + _shown(self.names(pos), len(pos))
                + ")",
                [{"item": n, "value": None} for n in self.names(pos)],
            )

        expect = Expect("ExpectColumnValuesToNotBeNull", "image", "null", {"column": "image"})
        self.add(_Check("image", "image", None, [("items", expect)], explain), {})

    def _images_decoded(self, shape: tuple[int, ...], dtype: str) -> None:
        if not self._needs("images_decoded", "images_decoded", None, ["index", "sha256"]):
            return
        four = len(shape) == 4
        # -1: the cache has no such axis (the ndim expectation reports it).
        cache = pd.DataFrame(
            {
                "n_items": [self.n],
                "n_images": [shape[0] if shape else -1],
                "ndim": [len(shape)],
                "height": [shape[1] if four else -1],
                "width": [shape[2] if four else -1],
                "channels": [shape[3] if four else -1],
                "dtype": [dtype],
            }
        )
        index = pd.DataFrame(
            {"position": np.arange(self.n, dtype=np.int64), "index": self.items["index"]}
        )
        if self._ids is not None:
            index["item_id"] = self.items["item_id"]

        def explain(res: Mapping[str, ExpectResult]) -> _Outcome:
            parts, examples = [], []
            if not res["count"].success:
                n_images = shape[0] if shape else "no"
                parts.append(f"{self.n} items but images.npy has {n_images} rows")
            if not all(res[r].success for r in ("ndim", "channels", "dtype", "square")):
                parts.append(f"images.npy is {dtype} {shape}, expected uint8 N x S x S x 3")
            if not res["index"].success:
                r = res["index"]
                bad = _rows_with(index, ["index", "position"], _values(r))
                texts = [
                    f"{self.name(int(p))} (index {i} at row {p})"
                    for p, i in zip(bad.position[: self.k], bad["index"][: self.k], strict=True)
                ]
                parts.append(
                    f"index differs from the row position in {_plural(_unexpected(r), 'item')}: "
                    + _shown(texts, _unexpected(r))
                )
                examples += [
                    {"item": self.name(int(p)), "value": None if _is_null(i) else int(i)}
                    for p, i in zip(bad.position[: self.k], bad["index"][: self.k], strict=True)
                ]
            if not res["sha256"].success:
                pos = np.flatnonzero(self.items["sha256"].isna().to_numpy(dtype=bool))
                parts.append(
                    f"{_plural(len(pos), 'item')} without a content hash ("
                    + _shown(self.names(pos), len(pos))
                    + ")"
                )
                examples += [{"item": n, "value": None} for n in self.names(pos)]
            if not parts:
                size = "x".join(str(s) for s in shape[1:])
                return _Outcome(
                    True, f"{self.n} items = {shape[0]} images ({size} {dtype}), index 0..N-1"
                )
            return _Outcome(False, "; ".join(parts), examples)

        check = "images_decoded"
        expects = [
            ("image_cache", Expect("ExpectColumnPairValuesToBeEqual", check, "count",
                                   {"column_A": "n_items", "column_B": "n_images"})),
            ("image_cache", Expect("ExpectColumnValuesToBeInSet", check, "ndim",
                                   {"column": "ndim", "value_set": [4]})),
            ("image_cache", Expect("ExpectColumnValuesToBeInSet", check, "channels",
                                   {"column": "channels", "value_set": [3, -1]})),
            ("image_cache", Expect("ExpectColumnValuesToBeInSet", check, "dtype",
                                   {"column": "dtype", "value_set": ["uint8"]})),
            ("image_cache", Expect("ExpectColumnPairValuesToBeEqual", check, "square",
                                   {"column_A": "height", "column_B": "width"})),
            ("image_index", Expect("ExpectColumnPairValuesToBeEqual", check, "index",
                                   {"column_A": "index", "column_B": "position"})),
            ("items", Expect("ExpectColumnValuesToNotBeNull", check, "sha256",
                             {"column": "sha256"})),
        ]  # fmt: skip
        self.add(
            _Check(check, check, None, expects, explain),
            {"image_cache": cache, "image_index": index},
        )

    # -- checks per attribute

    def _attribute(self, name: str, kind: str, vocab: list[str]) -> None:
        kinds = ("vocabulary", "cardinality", "support", "low_support", "duplicate_conflicts")
        if name not in self.items:
            for check_kind in kinds:
                self._needs(f"{name}.{check_kind}", check_kind, name, [name])
            return
        cells = self.cells[name]
        labelled = cells.n_labels >= 0
        counts = np.bincount(cells.codes[~cells.repeated], minlength=len(cells.uniques))
        inventory = pd.DataFrame({"label": cells.uniques, "n_items": counts.astype(np.int64)})
        order = np.lexsort((inventory["label"].map(str).to_numpy(), -inventory["n_items"]))
        inventory = inventory.iloc[order].reset_index(drop=True)
        in_vocab = inventory[inventory["label"].isin(vocab)]
        support = (
            pd.Series(in_vocab["n_items"].to_numpy(), index=in_vocab["label"].to_numpy())
            .reindex(vocab, fill_value=0)
            .astype(np.int64)
        )
        supports = pd.DataFrame({"label": vocab, "support": support.to_numpy()})
        n_labelled = int(labelled.sum())
        self.stats[name] = {
            "kind": kind,
            "n_labelled": n_labelled,
            "n_unlabelled": self.n - n_labelled,
            "unlabelled_fraction": round((self.n - n_labelled) / self.n, 6) if self.n else 0.0,
            "supports": {label: int(n) for label, n in zip(vocab, support.to_numpy(), strict=True)},
        }
        self._vocabulary(name, vocab, cells, inventory)
        self._cardinality(name, kind, cells, labelled)
        self._support(name, supports)
        if self._needs(f"{name}.duplicate_conflicts", "duplicate_conflicts", name, ["sha256"]):
            self._duplicate_conflicts(name, cells, labelled)

    def _label_items(self, cells: _Cells, value: Any) -> np.ndarray:
        hit = pd.isna(cells.labels) if _is_null(value) else cells.labels == value
        return np.unique(cells.pos[hit])

    def _vocabulary(self, name: str, vocab: list[str], cells: _Cells, inv: pd.DataFrame) -> None:
        check = f"{name}.vocabulary"
        frame = f"{name}_label_inventory"

        def explain(res: Mapping[str, ExpectResult]) -> _Outcome:
            if res["unknown"].success and res["null"].success:
                return _Outcome(
                    True,
                    f"{_plural(int(len(cells.labels)), 'label')} on "
                    f"{_plural(int((cells.n_labels >= 0).sum()), 'labelled item')}, "
                    f"all in the {len(vocab)}-label vocabulary",
                )
            values = [None] if not res["null"].success else []
            values += [v for v in _values(res["unknown"]) if not _is_null(v)]
            texts, examples = [], []
            for value in values[: self.k]:
                pos = self._label_items(cells, value)
                shown = _shown(self.names(pos), len(pos))
                what = "a null label" if value is None else f"unknown label {value!r}"
                texts.append(f"{what} in {_plural(len(pos), 'item')} ({shown})")
                examples += [{"item": n, "value": value} for n in self.names(pos)]
            n_bad = _unexpected(res["unknown"]) + _unexpected(res["null"])
            more = f"; +{n_bad - len(texts)} more unknown labels" if n_bad > len(texts) else ""
            return _Outcome(False, "; ".join(texts) + more, examples)

        expects = [
            (frame, Expect("ExpectColumnValuesToNotBeNull", check, "null", {"column": "label"})),
            (frame, Expect("ExpectColumnValuesToBeInSet", check, "unknown",
                           {"column": "label", "value_set": vocab})),
        ]  # fmt: skip
        self.add(_Check(check, "vocabulary", name, expects, explain), {frame: inv})

    def _cardinality(self, name: str, kind: str, cells: _Cells, labelled: np.ndarray) -> None:
        check = f"{name}.cardinality"
        frame_name = f"{name}_label_counts"
        pos = np.flatnonzero(labelled)
        n_repeated = np.bincount(cells.pos[cells.repeated], minlength=self.n)
        frame = pd.DataFrame(
            {
                "position": pos,
                "n_labels": cells.n_labels[pos],
                "n_repeated": n_repeated[pos],
            }
        )
        if self._ids is not None:
            frame.insert(1, "item_id", self.items["item_id"].to_numpy()[pos])
        single = kind == SINGLE_LABEL
        rule = "exactly one label" if single else "at least one label"
        broken = "without exactly one label" if single else "with an empty label list"
        n_unlabelled = self.n - len(pos)
        share = n_unlabelled / self.n if self.n else 0.0
        unlabelled = f"{n_unlabelled} of {_plural(self.n, 'item')} unlabelled ({share:.1%})"

        def explain(res: Mapping[str, ExpectResult]) -> _Outcome:
            parts, examples = [], []
            r = res["count"]
            if not r.success:
                bad = _rows_with(frame, ["n_labels"], _values(r))
                texts = [
                    f"{self.name(int(p))} ({_plural(int(n), 'label')})"
                    for p, n in zip(bad.position[: self.k], bad.n_labels[: self.k], strict=True)
                ]
                parts.append(
                    f"{_plural(_unexpected(r), 'labelled item')} {broken}: "
                    + _shown(texts, _unexpected(r))
                )
                examples += [
                    {"item": self.name(int(p)), "value": int(n)}
                    for p, n in zip(bad.position[: self.k], bad.n_labels[: self.k], strict=True)
                ]
            r = res["repeated"]
            if not r.success:
                bad = _rows_with(frame, ["n_repeated"], _values(r))
                texts = []
                for p in bad.position[: self.k]:
                    twice = cells.labels[(cells.pos == p) & cells.repeated]
                    texts.append(f"{self.name(int(p))} ({', '.join(map(str, twice))})")
                    examples.append({"item": self.name(int(p)), "value": [str(x) for x in twice]})
                parts.append(
                    f"a label listed twice in {_plural(_unexpected(r), 'item')}: "
                    + _shown(texts, _unexpected(r))
                )
            if not parts:
                return _Outcome(True, f"{rule} per labelled item; {unlabelled}")
            return _Outcome(False, "; ".join(parts) + f"; {unlabelled}", examples)

        expects = [
            (frame_name, Expect("ExpectColumnValuesToBeBetween", check, "count",
                                {"column": "n_labels", "min_value": 1,
                                 "max_value": 1 if single else None})),
            (frame_name, Expect("ExpectColumnValuesToBeBetween", check, "repeated",
                                {"column": "n_repeated", "min_value": 0, "max_value": 0})),
        ]  # fmt: skip
        self.add(_Check(check, "cardinality", name, expects, explain), {frame_name: frame})

    def _support(self, name: str, supports: pd.DataFrame) -> None:
        low = supports[supports["support"] >= self.min_fail].reset_index(drop=True)
        for kind, frame, minimum in (
            ("support", supports, self.min_fail),
            ("low_support", low, self.min_warn),
        ):
            check = f"{name}.{kind}"
            frame_name = f"{name}_{kind}s"

            def explain(
                res: Mapping[str, ExpectResult],
                frame: pd.DataFrame = frame,
                minimum: int = minimum,
                kind: str = kind,
            ) -> _Outcome:
                r = res["min"]
                if r.success:
                    if frame.empty:
                        return _Outcome(True, "no label to check")
                    smallest = frame.iloc[int(np.argmin(frame["support"].to_numpy()))]
                    scope = "every label"
                    if kind == "low_support":
                        scope += f" with >= {_plural(self.min_fail, 'item')}"
                    return _Outcome(
                        True,
                        f"{scope} has >= {_plural(minimum, 'item')} "
                        f"(smallest: {smallest.label} {int(smallest.support)})",
                    )
                bad = _rows_with(frame, ["support"], _values(r))
                texts = [f"{lab} ({int(n)})" for lab, n in zip(bad.label, bad.support, strict=True)]
                return _Outcome(
                    False,
                    f"{_plural(_unexpected(r), 'label')} with "
                    + ("no item" if minimum == 1 else f"fewer than {minimum} items")
                    + ": "
                    + _shown(texts[: self.k], _unexpected(r)),
                    [
                        {"label": lab, "value": int(n)}
                        for lab, n in zip(bad.label, bad.support, strict=True)
                    ][: self.k],
                )

            expect = Expect(
                "ExpectColumnValuesToBeBetween",
                check,
                "min",
                {"column": "support", "min_value": minimum},
            )
            self.add(
                _Check(check, kind, name, [(frame_name, expect)], explain), {frame_name: frame}
            )

    def _duplicate_conflicts(self, name: str, cells: _Cells, labelled: np.ndarray) -> None:
        check = f"{name}.duplicate_conflicts"
        frame_name = f"{name}_duplicates"
        sha = self.items["sha256"].to_numpy(dtype=object)
        candidates = np.flatnonzero(labelled & ~pd.isna(sha))
        dup = pd.Series(sha[candidates], dtype=object).duplicated(keep=False).to_numpy()
        dpos = candidates[dup]
        # A label set's signature: its distinct labels, sorted, joined.
        keep = np.isin(cells.pos, dpos) & ~cells.repeated
        sig = pd.DataFrame({"pos": cells.pos[keep], "label": cells.labels[keep].astype(str)})
        sig = sig.sort_values(["pos", "label"]).groupby("pos")["label"].agg("|".join)
        members = pd.DataFrame(
            {
                "sha256": sha[dpos],
                "position": dpos,
                "labels": sig.reindex(dpos, fill_value="").to_numpy(dtype=object),
            }
        )
        groups = (
            members.groupby("sha256", sort=True)
            .agg(n_items=("position", "size"), n_label_sets=("labels", "nunique"))
            .reset_index()
        )
        groups["sha256"] = groups["sha256"].astype(object)

        def explain(res: Mapping[str, ExpectResult]) -> _Outcome:
            r = res["conflict"]
            if r.success:
                return _Outcome(
                    True,
                    f"no conflicting labels among {_plural(len(groups), 'duplicated image')}",
                )
            bad = _rows_with(groups, ["n_label_sets"], _values(r))
            texts, examples = [], []
            for digest in bad.sha256[: self.k]:
                group = members[members["sha256"] == digest]
                shown = [
                    f"{self.name(int(p))} [{labels.replace('|', ', ')}]"
                    for p, labels in zip(group.position, group["labels"], strict=True)
                ]
                texts.append(f"{str(digest)[:12]}: " + _shown(shown[: self.k], len(shown)))
                examples.append(
                    {"sha256": str(digest), "items": [self.name(int(p)) for p in group.position]}
                )
            return _Outcome(
                False,
                f"{_plural(_unexpected(r), 'image')} with different labels on different items: "
                + "; ".join(texts)
                + ("; ..." if _unexpected(r) > len(texts) else ""),
                examples,
            )

        expect = Expect(
            "ExpectColumnValuesToBeBetween",
            check,
            "conflict",
            {"column": "n_label_sets", "max_value": 1},
        )
        self.add(
            _Check(check, "duplicate_conflicts", name, [(frame_name, expect)], explain),
            {frame_name: groups},
        )

    # -- rejects

    def _rejects(self) -> None:
        n_rejected = len(self.rejects)
        total = self.n + n_rejected
        fraction = n_rejected / total if total else 0.0
        frame = pd.DataFrame(
            {"n_ingested": [self.n], "n_rejected": [n_rejected], "reject_fraction": [fraction]}
        )
        rule = f"{n_rejected} of {total} catalog rows rejected ({fraction:.1%}"

        def explain(res: Mapping[str, ExpectResult]) -> _Outcome:
            if res["fraction"].success:
                return _Outcome(True, f"{rule} <= {self.max_reject:.1%})")
            texts, examples = [], []
            if "reason" in self.rejects:
                who = "item_id" if "item_id" in self.rejects else "row"
                reasons = self.rejects["reason"].astype(object).fillna("(none)").astype(str)
                tally = reasons.value_counts()
                tally = tally.iloc[np.lexsort((tally.index.to_numpy(), -tally.to_numpy()))]
                for reason, count in tally.items():
                    rows = self.rejects.loc[reasons == reason]
                    shown = [str(x) for x in rows[who].iloc[: self.k]] if who in rows else []
                    texts.append(f"{reason} x{count} ({_shown(shown, int(count))})")
                    examples.append({"reason": str(reason), "value": int(count)})
            detail = ": " + "; ".join(texts[: self.k]) if texts else ""
            return _Outcome(False, f"{rule} > {self.max_reject:.1%}){detail}", examples)

        expect = Expect(
            "ExpectColumnValuesToBeBetween",
            "rejects",
            "fraction",
            {"column": "reject_fraction", "min_value": 0.0, "max_value": self.max_reject},
        )
        self.add(_Check("rejects", "rejects", None, [("rejects", expect)], explain),
                 {"rejects": frame})  # fmt: skip


def _check_thresholds(min_support_warn: int, min_support_fail: int, max_reject: float) -> None:
    for key, value in [
        ("min_support_warn", min_support_warn),
        ("min_support_fail", min_support_fail),
    ]:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"validate.{key}: {value!r}, expected an integer >= 0")
    if not 0.0 <= float(max_reject) <= 1.0:
        raise ValueError(f"validate.max_reject_fraction: {max_reject!r}, expected 0..1")


def derive_frames(
    items: pd.DataFrame,
    rejects: pd.DataFrame,
    images_shape: Sequence[int],
    images_dtype: str,
    attributes: Mapping[str, Mapping[str, Any]],
    *,
    min_support_fail: int = 1,
) -> dict[str, pd.DataFrame]:
    """The frames the suite validates, by name (`items`, `schema`, `<attribute>_supports`...)."""
    _check_attributes(attributes)
    plan = _Plan(
        items, rejects, images_shape, images_dtype, attributes,
        min_support_warn=min_support_fail, min_support_fail=min_support_fail,
        max_reject_fraction=1.0, max_examples=5,
    )  # fmt: skip
    return plan.frames


def validate_ingested(
    items: pd.DataFrame,
    rejects: pd.DataFrame,
    images_shape: Sequence[int],
    images_dtype: str,
    attributes: Mapping[str, Mapping[str, Any]],
    *,
    min_support_warn: int = 20,
    min_support_fail: int = 1,
    max_reject_fraction: float = 0.05,
    severity: Mapping[str, str] | None = None,
    max_examples: int = 5,
    docs_dir: Path | None = None,
    progress: bool = False,
) -> ValidationReport:
    """Run every check on the ingest outputs; build GX Data Docs in `docs_dir` if given.

    `items`: one row per item (ITEM_COLUMNS plus one list<string> column per attribute,
    null = not labelled); `rejects`: rows the ingest could not take; `images_shape`,
    `images_dtype`: images.npy's header (N x S x S x 3 uint8 expected). `attributes`:
    {name: {"kind": "multi_label" | "single_label", "labels": [vocabulary]}}. The inputs
    are not modified.
    """
    _check_attributes(attributes)
    _check_thresholds(min_support_warn, min_support_fail, max_reject_fraction)
    levels = resolve_severity(severity)
    plan = _Plan(
        items, rejects, images_shape, images_dtype, attributes,
        min_support_warn=min_support_warn, min_support_fail=min_support_fail,
        max_reject_fraction=max_reject_fraction, max_examples=max_examples,
    )  # fmt: skip
    expectations: dict[str, list[Expect]] = {}
    for check in plan.checks:
        for frame, expect in check.expects:
            expectations.setdefault(frame, []).append(expect)

    from tailtag.gx_suite import run_suites

    gx_results, outcomes = run_suites(
        plan.frames,
        expectations,
        docs_dir=docs_dir,
        partial_unexpected_count=PARTIAL_UNEXPECTED,
        progress=progress,
    )
    results = []
    for check in plan.checks:
        results.append(_evaluate(check, outcomes, levels[check.kind]))
    return ValidationReport(
        checks=results,
        attributes=plan.stats,
        n_items=plan.n,
        n_rejected=len(rejects),
        gx_results=gx_results,
        docs_dir=docs_dir,
    )


def _evaluate(
    check: _Check, outcomes: Mapping[tuple[str, str], ExpectResult], severity: str
) -> CheckResult:
    def result(ok: bool, message: str, unexpected: int = 0, examples: Any = ()) -> CheckResult:
        return CheckResult(
            name=check.name,
            kind=check.kind,
            attribute=check.attribute,
            severity=severity,
            status="pass" if ok else severity,
            message=message,
            unexpected=unexpected,
            examples=list(examples),
        )

    if check.missing:
        cols = ", ".join(repr(c) for c in check.missing)
        return result(False, f"not run: column {cols} missing from the item table")
    res = {exp.role: outcomes[(check.name, exp.role)] for _, exp in check.expects}
    errors = [f"{role}: {r.error}" for role, r in res.items() if r.error]
    if errors:
        return result(False, "could not be evaluated: " + "; ".join(errors))
    if check.explain is None:
        raise RuntimeError(f"{check.name}: no explanation for its result")
    outcome = check.explain(res)
    if outcome.ok != all(r.success for r in res.values()):
        raise RuntimeError(f"{check.name}: message disagrees with the GX result")
    unexpected = sum(_unexpected(r) for r in res.values())
    return result(outcome.ok, outcome.message, unexpected, outcome.examples)
