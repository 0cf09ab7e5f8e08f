"""Catalog table reading and cell parsing (tailtag.catalog)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tailtag.catalog import (
    CatalogError,
    LabelCellError,
    find_table,
    parse_label_cell,
    read_catalog,
)

ATTRS = {"archetype": "multi_label", "sleevetype": "single_label"}

# One catalog, as Python values; written below as CSV, parquet and jsonl.
RECORDS = [
    {
        "item_id": "007",
        "product_id": "p1",
        "image": "a.jpg",
        "archetype": ["casual", "boho"],
        "sleevetype": ["short"],
    },
    {
        "item_id": "008",
        "product_id": "p1",
        "image": "b.jpg",
        "archetype": ["casual"],
        "sleevetype": None,
    },
    {
        "item_id": "009",
        "product_id": None,
        "image": "c.jpg",
        "archetype": None,
        "sleevetype": ["cap"],
    },
    {
        "item_id": None,
        "product_id": "p2",
        "image": "d.jpg",
        "archetype": ["edgy"],
        "sleevetype": None,
    },
    {"item_id": "007", "product_id": "p3", "image": "e.jpg", "archetype": None, "sleevetype": None},
    {
        "item_id": "010",
        "product_id": "p4",
        "image": None,
        "archetype": ["glam"],
        "sleevetype": None,
    },
    {
        "item_id": "011",
        "product_id": "p5",
        "image": "f.jpg",
        "archetype": ["glam", " "],
        "sleevetype": None,
    },
    # two labels in a single_label column: kept (validation reports it)
    {
        "item_id": "012",
        "product_id": "p5",
        "image": "g.jpg",
        "archetype": None,
        "sleevetype": ["cap", "bell"],
    },
]
EXPECTED_REJECTS = {
    3: "missing_item_id",
    4: "duplicate_item_id",
    5: "missing_image",
    6: "bad_label_cell",
}


def write_catalog(folder: Path, fmt: str, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"catalog.{fmt}"
    if fmt == "csv":

        def cell(v: object) -> str:
            return "|".join(v) if isinstance(v, list) else (v or "")

        pd.DataFrame([{k: cell(v) for k, v in r.items()} for r in records]).to_csv(
            path, index=False
        )
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_three_formats_give_the_same_rows(tmp_path: Path, fmt: str) -> None:
    write_catalog(tmp_path, fmt, RECORDS)
    rows, rejects = read_catalog(tmp_path, ATTRS)
    expected = pd.DataFrame(
        {
            "row": pd.Series([0, 1, 2, 7], dtype="int64"),
            "item_id": ["007", "008", "009", "012"],
            "product_id": ["p1", "p1", "009", "p5"],  # empty product_id -> item_id
            "image": ["a.jpg", "b.jpg", "c.jpg", "g.jpg"],
            "archetype": [["casual", "boho"], ["casual"], None, None],
            "sleevetype": [["short"], None, ["cap"], ["cap", "bell"]],
        }
    )
    pd.testing.assert_frame_equal(rows, expected, check_dtype=False)
    assert rows["row"].dtype == "int64"
    assert {r.row: r.reason for r in rejects} == EXPECTED_REJECTS
    dup = next(r for r in rejects if r.reason == "duplicate_item_id")
    assert dup.item_id == "007" and "row 0" in dup.detail and dup.image == "e.jpg"
    assert len(rows) + len(rejects) == len(RECORDS)


def test_csv_keeps_ids_as_strings_and_strips_labels(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text(
        "item_id,image,archetype,sleevetype,extra\n"
        "007, a.jpg , casual | boho ,  ,NA\n"
        "1e3,b.jpg,NA,null,\n"
    )
    rows, rejects = read_catalog(tmp_path, ATTRS)
    assert rejects == []
    assert rows["item_id"].tolist() == ["007", "1e3"]
    assert rows["image"].tolist() == ["a.jpg", "b.jpg"]
    assert rows["archetype"].tolist() == [["casual", "boho"], ["NA"]]  # "NA" is a label
    assert rows["sleevetype"].tolist() == [None, ["null"]]
    assert "extra" not in rows.columns


def test_parquet_integer_ids_and_string_cells(tmp_path: Path) -> None:
    table = pa.table(
        {
            "item_id": pa.array([7, 8, None], pa.int64()),
            "image": ["a.jpg", "b.jpg", "c.jpg"],
            "archetype": ["casual|boho", "", "edgy"],  # strings are split on "|"
            "sleevetype": [["short"], [], None],
        }
    )
    pq.write_table(table, tmp_path / "catalog.parquet")
    rows, rejects = read_catalog(tmp_path, ATTRS)
    assert rows["item_id"].tolist() == ["7", "8"]
    assert rows["archetype"].tolist() == [["casual", "boho"], None]
    assert rows["sleevetype"].tolist() == [["short"], None]
    assert [(r.row, r.reason) for r in rejects] == [(2, "missing_item_id")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("casual", ["casual"]),
        (" casual | boho ", ["casual", "boho"]),
        ("", None),
        ("   ", None),
        (None, None),
        ([], None),
        ([" a ", "b"], ["a", "b"]),
        (["a", "a"], ["a", "a"]),  # no de-duplication: validation reports it
    ],
)
def test_parse_label_cell(value: object, expected: list[str] | None) -> None:
    assert parse_label_cell(value) == expected


@pytest.mark.parametrize(
    "value", ["a||b", "|", "a|", "|a", "a| |b", 3, 2.5, True, {"a": 1}, [["a"]], ["a", 1], [""]]
)
def test_parse_label_cell_rejects(value: object) -> None:
    with pytest.raises(LabelCellError):
        parse_label_cell(value)


def test_jsonl_bad_cells_are_rejected_one_reason_each(tmp_path: Path) -> None:
    records = [
        {"item_id": "a", "image": "a.jpg", "archetype": 3, "sleevetype": None},
        {"item_id": "b", "image": "b.jpg", "archetype": {"x": 1}, "sleevetype": None},
        {"item_id": "c", "image": "c.jpg", "archetype": [["x"]], "sleevetype": None},
        {"item_id": ["d"], "image": "d.jpg", "archetype": None, "sleevetype": None},
        {"item_id": "e", "image": 5, "archetype": None, "sleevetype": None},
        {"item_id": "f", "image": "f.jpg"},  # absent keys: not labelled
        {"item_id": "", "image": "g.jpg", "archetype": 3},  # first check wins
    ]
    write_catalog(tmp_path, "jsonl", records)
    rows, rejects = read_catalog(tmp_path, ATTRS)
    assert rows["item_id"].tolist() == ["f"]
    assert rows["archetype"].tolist() == [None]
    assert [(r.row, r.reason) for r in rejects] == [
        (0, "bad_label_cell"),
        (1, "bad_label_cell"),
        (2, "bad_label_cell"),
        (3, "bad_cell"),
        (4, "bad_cell"),
        (6, "missing_item_id"),
    ]
    assert rejects[0].detail.startswith("archetype: int cell 3")


def test_no_table(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalog table in .*catalog.csv, catalog.parquet"):
        find_table(tmp_path)
    with pytest.raises(CatalogError, match="does not exist"):
        read_catalog(tmp_path / "nope", ATTRS)


def test_several_tables(tmp_path: Path) -> None:
    write_catalog(tmp_path, "csv", RECORDS)
    write_catalog(tmp_path, "jsonl", RECORDS)
    with pytest.raises(CatalogError, match="several catalog tables .*catalog.csv, catalog.jsonl"):
        read_catalog(tmp_path, ATTRS)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("column", ["item_id", "image", "sleevetype"])
def test_missing_column(tmp_path: Path, fmt: str, column: str) -> None:
    write_catalog(tmp_path, fmt, [{k: v for k, v in r.items() if k != column} for r in RECORDS])
    with pytest.raises(CatalogError, match=rf"catalog\.{fmt}: missing column\(s\) {column} "):
        read_catalog(tmp_path, ATTRS)


def test_bad_jsonl_line_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "catalog.jsonl").write_text('{"item_id": "a", "image": "a.jpg"}\n\n{oops\n')
    with pytest.raises(CatalogError, match="catalog.jsonl, line 3: invalid JSON"):
        read_catalog(tmp_path, {})
    (tmp_path / "catalog.jsonl").write_text("[1, 2]\n")
    with pytest.raises(CatalogError, match="line 1: expected a JSON object, got list"):
        read_catalog(tmp_path, {})


def test_malformed_csv_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text('item_id,image\na,"b.jpg\n')
    with pytest.raises(CatalogError, match="cannot read catalog table .*catalog.csv"):
        read_catalog(tmp_path, {})


def test_bad_attributes_argument(tmp_path: Path) -> None:
    write_catalog(tmp_path, "csv", RECORDS)
    with pytest.raises(ValueError, match="unknown kind 'multi'"):
        read_catalog(tmp_path, {"archetype": "multi"})
    with pytest.raises(ValueError, match="'index' is reserved"):
        read_catalog(tmp_path, {"index": "multi_label"})
