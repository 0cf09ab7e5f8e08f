"""Label validation (tailtag.validate, tailtag.gx_suite) and the validate stage script.

GX runs cost about half a second each (plus ~3 s for the first import), so one clean run
is shared by a module-scoped fixture and each breaking table runs once.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tailtag.validate import (
    DEFAULT_SEVERITY,
    ValidationReport,
    column_kind,
    derive_frames,
    read_ingested,
    resolve_severity,
    validate_ingested,
)
from tailtag.validation_report import console_lines, to_json_safe, write_reports

ROOT = Path(__file__).resolve().parents[1]
ATTRS = {
    "style": {"kind": "multi_label", "labels": ["boho", "casual", "glam"]},
    "sleeve": {"kind": "single_label", "labels": ["long", "short"]},
}
STYLE = [
    ["boho"], ["casual", "glam"], ["boho", "casual"], None, ["casual"],
    ["glam", "boho"], ["casual"], ["boho"], ["casual", "boho"], ["glam", "casual"],
]  # fmt: skip
SLEEVE = [
    ["long"], ["short"], ["long"], ["short"], None,
    ["short"], ["long"], ["long"], ["short"], ["long"],
]  # fmt: skip
N = len(STYLE)
SHAPE = (N, 4, 4, 3)
ALL_FAIL = dict.fromkeys(DEFAULT_SEVERITY, "fail")
# Supports of the clean table: style boho 5, casual 6, glam 3; sleeve long 5, short 4.
SETTINGS = {"min_support_warn": 3, "min_support_fail": 1, "max_reject_fraction": 0.2}


def clean_items() -> pd.DataFrame:
    sha = [f"{i:064x}" for i in range(N)]
    sha[7] = sha[0]  # a7 is a0's image again, with the same labels
    return pd.DataFrame(
        {
            "row": np.arange(N, dtype=np.int64),
            "item_id": pd.array([f"a{i}" for i in range(N)], dtype="str"),
            "product_id": pd.array([f"p{i // 2}" for i in range(N)], dtype="str"),
            "image": pd.array([f"images/{i}.jpg" for i in range(N)], dtype="str"),
            "sha256": pd.array(sha, dtype="str"),
            "width": np.full(N, 40, np.int32),
            "height": np.full(N, 30, np.int32),
            "index": np.arange(N, dtype=np.int64),
            "style": pd.Series([None if x is None else list(x) for x in STYLE], dtype=object),
            "sleeve": pd.Series([None if x is None else list(x) for x in SLEEVE], dtype=object),
        }
    )


def rejects_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": np.arange(N, N + n, dtype=np.int64),
            "item_id": pd.array([f"r{i}" for i in range(n)], dtype="str"),
            "image": pd.array([f"images/r{i}.jpg" for i in range(n)], dtype="str"),
            "reason": pd.array(["decode_error"] * n, dtype="str"),
            "detail": pd.array(["truncated"] * n, dtype="str"),
        }
    )


def run(
    items: pd.DataFrame | None = None,
    rejects: pd.DataFrame | None = None,
    shape: tuple[int, ...] = SHAPE,
    dtype: str = "uint8",
    **kw: object,
) -> ValidationReport:
    options = {**SETTINGS, "severity": ALL_FAIL, **kw}
    return validate_ingested(
        clean_items() if items is None else items,
        rejects_frame(1) if rejects is None else rejects,
        shape,
        dtype,
        ATTRS,
        **options,
    )


def statuses(report: ValidationReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def not_passing(report: ValidationReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks if c.status != "pass"}


def check(report: ValidationReport, name: str):
    return next(c for c in report.checks if c.name == name)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[ValidationReport, Path]:
    out = tmp_path_factory.mktemp("clean")
    items = clean_items()
    report = run(items, docs_dir=out / "docs")
    pd.testing.assert_frame_equal(items, clean_items())  # the input is not modified
    write_reports(report, out)
    return report, out


# ---------------------------------------------------------------- clean table


def test_clean_table_passes_every_check(clean):
    report, _ = clean
    expected = ["schema", "item_id", "image", "images_decoded"]
    for attr in ATTRS:
        expected += [
            f"{attr}.{k}"
            for k in ("vocabulary", "cardinality", "support", "low_support", "duplicate_conflicts")
        ]
    expected.append("rejects")
    assert list(statuses(report)) == expected
    assert not_passing(report) == {}
    assert report.success
    assert check(report, "rejects").message == "1 of 11 catalog rows rejected (9.1% <= 20.0%)"
    assert check(report, "style.cardinality").message == (
        "at least one label per labelled item; 1 of 10 items unlabelled (10.0%)"
    )


def test_clean_summary_counts_and_supports(clean):
    report, out = clean
    summary = json.loads((out / "summary.json").read_text())
    assert summary["success"] is True
    assert (summary["n_items"], summary["n_rejected"], summary["n_failed"]) == (10, 1, 0)
    assert summary["attributes"]["style"] == {
        "kind": "multi_label",
        "n_labelled": 9,
        "n_unlabelled": 1,
        "unlabelled_fraction": 0.1,
        "supports": {"boho": 5, "casual": 6, "glam": 3},
    }
    assert summary["attributes"]["sleeve"]["supports"] == {"long": 5, "short": 4}
    assert summary["checks"]["schema"] == {
        "status": "pass",
        "severity": "fail",
        "unexpected": 0,
        "message": "15 columns present with the expected types",
        "examples": [],
    }


def test_summary_is_deterministic(clean):
    report, _ = clean
    again = run()
    assert again.summary() == report.summary()
    assert "run_id" not in json.dumps(report.summary())


def test_reports_are_strict_json_and_html(clean):
    _, out = clean

    def no_constants(name: str) -> None:
        raise ValueError(f"non-JSON constant {name}")

    result = json.loads((out / "result.json").read_text(), parse_constant=no_constants)
    summary = json.loads((out / "summary.json").read_text(), parse_constant=no_constants)
    assert result["summary"] == summary
    gx = result["great_expectations"]
    assert {"items", "schema", "style_label_inventory", "rejects"} <= set(gx)
    assert all(suite["success"] for suite in gx.values())
    page = (out / "index.html").read_text()
    assert "Label validation passed" in page and "style.vocabulary" in page
    assert 'href="docs/index.html"' in page
    assert (out / "docs" / "index.html").is_file()
    assert list((out / "docs" / "validations").glob("style_label_inventory/**/*.html"))


def test_derived_frames_hold_hand_counted_values():
    frames = derive_frames(clean_items(), rejects_frame(1), SHAPE, "uint8", ATTRS)
    supports = frames["style_supports"]
    assert supports.to_dict("list") == {"label": ["boho", "casual", "glam"], "support": [5, 6, 3]}
    inventory = frames["style_label_inventory"]
    assert inventory.to_dict("list") == {"label": ["casual", "boho", "glam"], "n_items": [6, 5, 3]}
    counts = frames["style_label_counts"]
    assert counts["position"].tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]  # item 3 unlabelled
    assert counts["n_labels"].tolist() == [1, 2, 2, 1, 2, 1, 1, 2, 2]
    assert counts["n_repeated"].sum() == 0
    dup = frames["sleeve_duplicates"]
    assert dup.to_dict("list") == {"sha256": [f"{0:064x}"], "n_items": [2], "n_label_sets": [1]}
    assert frames["rejects"]["reject_fraction"].item() == pytest.approx(1 / 11)
    assert frames["image_cache"].iloc[0][["n_items", "n_images", "ndim", "channels"]].tolist() == [
        10,
        10,
        4,
        3,
    ]
    schema = frames["schema"].set_index("column")["observed"]
    assert schema["width"] == "integer" and schema["style"] == "list<string>"
    assert schema["rejects.reason"] == "string"
    assert "style" not in frames["items"]  # GX sees the scalar columns of the item table


# ---------------------------------------------------------------- one broken thing at a time


def _set(column: str, pos: int, value: object) -> Callable[[pd.DataFrame], None]:
    def apply(items: pd.DataFrame) -> None:
        if isinstance(value, list):
            items[column] = items[column].astype(object)
            items.at[pos, column] = value
        else:
            items.loc[pos, column] = value

    return apply


def _remove_label(column: str, label: str, positions: list[int]) -> Callable[[pd.DataFrame], None]:
    def apply(items: pd.DataFrame) -> None:
        for p in positions:
            items.at[p, column] = [x for x in items.at[p, column] if x != label]

    return apply


def _swap_index(items: pd.DataFrame) -> None:
    items["index"] = np.array([0, 1, 3, 2, *range(4, N)], dtype=np.int64)


def _bohoo(items: pd.DataFrame) -> None:
    items.at[2, "style"] = ["bohoo", "casual"]
    items.at[8, "style"] = ["casual", "bohoo"]
    items.at[9, "style"] = ["glam", "bohoo", "casual"]


BREAKERS = {
    "width_float": ("schema", lambda t: t.__setitem__("width", t["width"].astype("float64"))),
    "no_product_id": ("schema", lambda t: t.__delitem__("product_id")),
    "label_not_list": ("schema", _set("sleeve", 6, "long")),
    "duplicate_id": ("item_id", _set("item_id", 6, "a5")),
    "null_id": ("item_id", _set("item_id", 6, None)),
    "null_image": ("image", _set("image", 3, None)),
    "index_swapped": ("images_decoded", _swap_index),
    "null_sha": ("images_decoded", _set("sha256", 4, None)),
    "unknown_label": ("style.vocabulary", _bohoo),
    "null_label": ("style.vocabulary", _set("style", 6, ["casual", None])),
    "empty_list": ("style.cardinality", _set("style", 6, [])),
    "label_twice": ("style.cardinality", _set("style", 6, ["casual", "casual"])),
    "two_sleeves": ("sleeve.cardinality", _set("sleeve", 6, ["long", "short"])),
    "no_glam": ("style.support", _remove_label("style", "glam", [1, 5, 9])),
    "little_glam": ("style.low_support", _remove_label("style", "glam", [5, 9])),
    "conflict": ("style.duplicate_conflicts", _set("style", 7, ["boho", "glam"])),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BREAKERS))
def test_each_check_fails_alone_on_a_table_that_breaks_it(case):
    name, breaker = BREAKERS[case]
    items = clean_items()
    breaker(items)
    report = run(items)
    assert not_passing(report) == {name: "fail"}
    assert not report.success
    assert check(report, name).unexpected > 0


def test_images_npy_shape_and_dtype_are_checked():
    assert not_passing(run(shape=(N - 1, 4, 4, 3))) == {"images_decoded": "fail"}
    report = run(shape=(N, 4, 4), dtype="float32")
    assert not_passing(report) == {"images_decoded": "fail"}
    assert check(report, "images_decoded").message == (
        "images.npy is float32 (10, 4, 4), expected uint8 N x S x S x 3"
    )


def test_rejects_above_the_limit_fail():
    report = run(rejects=rejects_frame(3))
    assert not_passing(report) == {"rejects": "fail"}
    assert check(report, "rejects").message == (
        "3 of 13 catalog rows rejected (23.1% > 20.0%): decode_error x3 (r0, r1, r2)"
    )


def test_messages_name_the_label_and_the_item_ids():
    items = clean_items()
    _bohoo(items)
    BREAKERS["conflict"][1](items)
    report = run(items)
    lines = console_lines(report, "reports/validation/index.html")
    assert "FAIL style.vocabulary: unknown label 'bohoo' in 3 items (a2, a8, a9)" in lines
    conflict = check(report, "style.duplicate_conflicts")
    assert conflict.message == (
        f"1 image with different labels on different items: {0:012x}: a0 [boho], a7 [boho, glam]"
    )
    assert lines[-1] == (
        "validation failed: 2 checks failed, 0 warnings - see reports/validation/index.html"
    )
    assert check(report, "style.vocabulary").examples == [
        {"item": "a2", "value": "bohoo"},
        {"item": "a8", "value": "bohoo"},
        {"item": "a9", "value": "bohoo"},
    ]


def test_null_item_ids_are_named_by_catalog_row():
    items = clean_items()
    items.loc[6, "item_id"] = None
    assert check(run(items), "item_id").message == "1 item without item_id (row 6)"


def test_missing_columns_make_dependent_checks_fail_not_pass():
    items = clean_items().drop(columns=["sha256", "sleeve"])
    report = run(items)
    assert not_passing(report) == {
        "schema": "fail",
        "images_decoded": "fail",
        "style.duplicate_conflicts": "fail",
        "sleeve.vocabulary": "fail",
        "sleeve.cardinality": "fail",
        "sleeve.support": "fail",
        "sleeve.low_support": "fail",
        "sleeve.duplicate_conflicts": "fail",
    }
    assert check(report, "sleeve.support").message == (
        "not run: column 'sleeve' missing from the item table"
    )
    assert "sha256 is missing" in check(report, "schema").message


# ---------------------------------------------------------------- severity


def test_default_severity_warns_on_low_support_and_conflicts():
    items = clean_items()
    BREAKERS["little_glam"][1](items)
    BREAKERS["conflict"][1](items)
    report = run(items, severity=None)
    assert not_passing(report) == {
        "style.low_support": "warn",
        "style.duplicate_conflicts": "warn",
    }
    assert report.success
    assert "WARN style.low_support: 1 label with fewer than 3 items: glam (2)" in console_lines(
        report, "x.html"
    )
    assert console_lines(report, "x.html")[-1] == (
        "validation passed: 13 checks passed, 2 warnings - see x.html"
    )


def test_severity_from_params_turns_a_failure_into_a_warning():
    items = clean_items()
    _bohoo(items)
    report = run(items, severity={"vocabulary": "warn"})
    assert not_passing(report) == {"style.vocabulary": "warn"}
    assert report.success


def test_bad_settings_are_errors_naming_the_key():
    with pytest.raises(ValueError, match=r"validate\.severity\.vocab: unknown check"):
        resolve_severity({"vocab": "warn"})
    with pytest.raises(ValueError, match=r"validate\.severity\.support: 'error'"):
        resolve_severity({"support": "error"})
    with pytest.raises(ValueError, match=r"attributes\.style\.labels: listed twice: boho"):
        validate_ingested(
            clean_items(), rejects_frame(0), SHAPE, "uint8",
            {"style": {"kind": "multi_label", "labels": ["boho", "boho"]}},
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"attributes\.style\.kind: 'multi'"):
        derive_frames(clean_items(), rejects_frame(0), SHAPE, "uint8",
                      {"style": {"kind": "multi", "labels": ["a"]}})  # fmt: skip
    with pytest.raises(ValueError, match=r"validate\.max_reject_fraction"):
        run(max_reject_fraction=1.5)


# ---------------------------------------------------------------- helpers


def test_column_kind():
    assert column_kind(pd.Series([1, 2], dtype=np.int32)) == "integer"
    assert column_kind(pd.Series(["a", None], dtype="str")) == "string"
    assert column_kind(pd.Series(["a", None], dtype=object)) == "string"
    assert column_kind(pd.Series([1.0, 2.0])) == "float64"
    assert column_kind(pd.Series([["a"], None, []], dtype=object)) == "list<string>"
    assert column_kind(pd.Series([np.array(["a"], dtype=object)], dtype=object)) == "list<string>"
    assert column_kind(pd.Series([[1, 2]], dtype=object)) == "list<integer>"
    assert column_kind(pd.Series([None, None], dtype=object)) == "empty"
    assert column_kind(pd.Series([["a"], "b"], dtype=object)) == "object<mixed>"


def test_to_json_safe_removes_nan_and_numpy_types():
    value = {
        "a": float("nan"),
        "b": np.int64(3),
        "c": [np.float32(np.inf), np.bool_(True)],
        1: None,
    }
    safe = to_json_safe(value)
    assert safe == {"a": None, "b": 3, "c": [None, True], "1": None}
    json.dumps(safe, allow_nan=False)


def test_read_ingested_reads_the_npy_header(tmp_path):
    write_ingested(tmp_path, clean_items(), rejects_frame(2))
    data = read_ingested(tmp_path)
    assert data.images_shape == SHAPE and data.images_dtype == "uint8"
    assert len(data.items) == N and len(data.rejects) == 2
    assert data.items["style"].iloc[0].tolist() == ["boho"]
    (tmp_path / "images.npy").unlink()
    with pytest.raises(FileNotFoundError, match="images.npy"):
        read_ingested(tmp_path)


def test_gx_is_imported_lazily():
    code = (
        "import sys, tailtag.validate, tailtag.gx_suite; "
        "gx = [m for m in sys.modules if m.split('.')[0] == 'great_expectations']; "
        "assert not gx, gx"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_gx_run_leaves_warnings_and_logging_as_they_were(clean):
    assert warnings.showwarning is not getattr(logging, "_showwarning", None)
    assert logging.getLogger("great_expectations").level >= logging.ERROR
    with pytest.warns(UserWarning, match="still visible"):
        warnings.warn("still visible", UserWarning, stacklevel=1)


# ---------------------------------------------------------------- the stage script


def write_ingested(folder: Path, items: pd.DataFrame, rejects: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    items.to_parquet(folder / "items.parquet")
    rejects.to_parquet(folder / "rejects.parquet")
    np.save(folder / "images.npy", np.zeros(SHAPE, np.uint8))


def run_stage(tmp_path: Path, items: pd.DataFrame, settings: dict) -> subprocess.CompletedProcess:
    write_ingested(tmp_path / "ingested", items, rejects_frame(1))
    params = {"attributes": ATTRS, "validate": settings}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(private_tmp), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "validate.py"), "--ingested", "ingested",
         "--out", "reports/validation", "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert list(private_tmp.iterdir()) == [], "temporary files left behind"
    return proc


STAGE_SETTINGS = {**SETTINGS, "max_examples": 5, "severity": {"duplicate_conflicts": "fail"}}


def test_stage_exits_zero_with_warnings_only(tmp_path):
    items = clean_items()
    BREAKERS["little_glam"][1](items)
    proc = run_stage(tmp_path, items, STAGE_SETTINGS)
    assert proc.returncode == 0, proc.stderr
    assert "WARN style.low_support" in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("validation passed: 14 checks passed, 1 warning")
    # Nothing but the inputs and the reports in the working folder (no gx/ context folder).
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ingested", "params.yaml", "reports", "tmp",
    ]  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "reports" / "validation").iterdir()) == [
        "docs", "index.html", "result.json", "summary.json",
    ]  # fmt: skip


def test_stage_exits_nonzero_after_writing_the_reports(tmp_path):
    items = clean_items()
    _bohoo(items)
    BREAKERS["conflict"][1](items)
    proc = run_stage(tmp_path, items, STAGE_SETTINGS)
    assert proc.returncode == 1, proc.stderr
    assert "FAIL style.vocabulary: unknown label 'bohoo' in 3 items (a2, a8, a9)" in proc.stdout
    assert "FAIL style.duplicate_conflicts" in proc.stdout
    out = tmp_path / "reports" / "validation"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["success"] is False
    assert summary["checks"]["style.vocabulary"]["status"] == "fail"
    assert (out / "index.html").is_file() and (out / "docs" / "index.html").is_file()


def test_stage_rejects_unknown_params_keys(tmp_path):
    proc = run_stage(tmp_path, clean_items(), {**STAGE_SETTINGS, "min_suport": 3})
    assert proc.returncode != 0
    assert "unknown key(s) ['min_suport']" in proc.stderr
