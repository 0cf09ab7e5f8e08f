"""Grouped, stratified splitting: tailtag.split and stages/split.py."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from iterstrat.ml_stratifiers import IterativeStratification
from sklearn.model_selection import GroupShuffleSplit

from tailtag.split import (
    SPLITS,
    _round_shares,
    _water_level,
    fraction_deviation,
    grouped_stratified_split,
    iterative_stratification,
    label_indicators,
    label_matrix,
    labelled_mask,
    missing_in_eval,
    share_deviation,
    split_label_counts,
)

ROOT = Path(__file__).resolve().parents[1]
FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
ARCHETYPE = {"casual": 0.42, "romantic": 0.30, "sporty": 0.2, "boho": 0.1, "glam": 0.05}
SLEEVETYPE = {"short": 0.5, "sleeveless": 0.3, "fitted": 0.15, "puff": 0.05}
ATTRIBUTES = {
    "archetype": {"kind": "multi_label", "labels": [*sorted(ARCHETYPE), "retro"]},
    "sleevetype": {"kind": "single_label", "labels": sorted(SLEEVETYPE)},
}


def long_tailed_items(seed: int = 0, n_products: int = 400) -> pd.DataFrame:
    """Products of 1-3 items sharing their labels, long-tailed priors, some null cells.

    `retro` is carried by exactly 10 single-item products: 10 items, wanted 8 / 1 / 1.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, n_products)
    sizes[:10] = 1
    arch_names, sleeve_names = sorted(ARCHETYPE), sorted(SLEEVETYPE)
    arch = rng.random((n_products, len(arch_names))) < [ARCHETYPE[c] for c in arch_names]
    p_sleeve = np.array([SLEEVETYPE[c] for c in sleeve_names])
    sleeve = rng.choice(len(sleeve_names), n_products, p=p_sleeve / p_sleeve.sum())
    rows = []
    for p, size in enumerate(sizes):
        labels = [c for c, on in zip(arch_names, arch[p], strict=True) if on]
        if p < 10:
            labels.append("retro")
        for i in range(size):
            rows.append(
                {
                    "item_id": f"p{p}-{i}",
                    "product_id": f"p{p}",
                    # a product without archetype stays unlabelled (null); 10 % lack a sleevetype
                    "archetype": labels or None,
                    "sleevetype": None if p % 10 == 9 else [sleeve_names[sleeve[p]]],
                }
            )
    return pd.DataFrame(rows)


def split_of(items: pd.DataFrame, seed: int, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    indicators, _ = label_matrix(items, ATTRIBUTES, item_ids=items["item_id"].tolist())
    codes = grouped_stratified_split(
        indicators, items["product_id"], FRACTIONS, seed=seed, **kwargs
    )
    return indicators, codes


def random_grouped_split(items: pd.DataFrame, seed: int) -> np.ndarray:
    """The baseline, from scikit-learn: 80 % of products, then the rest halved."""
    groups = items["product_id"].to_numpy()
    codes = np.zeros(len(items), dtype=np.int64)
    first = GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
    _, rest = next(first.split(items, groups=groups))
    second = GroupShuffleSplit(n_splits=1, test_size=0.5, random_state=seed)
    val, test = next(second.split(rest, groups=groups[rest]))
    codes[rest[val]], codes[rest[test]] = 1, 2
    return codes


# -- label indicators ---------------------------------------------------------------------


def test_label_indicators_multi_label_with_nulls_and_empty_lists():
    values = [["boho", "casual"], None, [], ["edgy"]]
    ind, labelled = label_indicators(
        values, ["boho", "casual", "edgy"], attribute="archetype", kind="multi_label"
    )
    assert ind.tolist() == [
        [True, True, False],
        [False, False, False],
        [False, False, False],
        [False, False, True],
    ]
    assert labelled.tolist() == [True, False, True, True]


def test_label_indicators_reads_parquet_cells_and_arrow_arrays():
    frame = pd.DataFrame({"sleevetype": [["short"], None, ["cap"]]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    buffer.seek(0)
    from_pandas = pd.read_parquet(buffer)["sleevetype"]  # cells come back as numpy arrays
    buffer.seek(0)
    from_arrow = pq.read_table(buffer)["sleevetype"]  # a ChunkedArray
    for values in (from_pandas, from_arrow):
        ind, labelled = label_indicators(
            values, ["cap", "short"], attribute="sleevetype", kind="single_label"
        )
        assert ind.tolist() == [[False, True], [False, False], [True, False]]
        assert labelled.tolist() == [True, False, True]


def test_null_cell_hiding_values_is_still_null():
    # Arrow lets a null list slot cover values; they must not be counted.
    values = pa.ListArray.from_arrays(
        pa.array([0, 1, 2, 3]), pa.array(["a", "b", "a"]), mask=pa.array([False, True, False])
    )
    ind, labelled = label_indicators(values, ["a", "b"], attribute="x", kind="multi_label")
    assert ind.tolist() == [[True, False], [False, False], [True, False]]
    assert labelled.tolist() == [True, False, True]
    assert labelled_mask(values, attribute="x").tolist() == [True, False, True]


def test_unknown_label_names_item_and_label():
    with pytest.raises(ValueError, match=r"item 'b7' \(row 1\) has label 'boo', not in"):
        label_indicators(
            [["boho"], ["casual", "boo"]],
            ["boho", "casual"],
            attribute="archetype",
            kind="multi_label",
            item_ids=["a1", "b7"],
        )


@pytest.mark.parametrize(
    ("values", "kind", "message"),
    [
        ([["short", "cap"]], "single_label", r"single_label but row 0 has 2 labels"),
        ([[]], "single_label", r"single_label but row 0 has 0 labels"),
        ([["cap", "cap"]], "multi_label", r"row 0 lists label 'cap' more than once"),
        ([["cap", None]], "multi_label", r"row 0 has a null label"),
        (["cap"], "multi_label", r"expected list<string> cells"),
        ([["cap"]], "multi", r"kind must be one of"),
    ],
)
def test_bad_cells_are_errors(values, kind, message):
    with pytest.raises((ValueError, TypeError), match=message):
        label_indicators(values, ["cap", "short"], attribute="sleevetype", kind=kind)


def test_label_matrix_columns_follow_attributes_and_vocabulary():
    items = pd.DataFrame(
        {"archetype": [["retro", "boho"], None], "sleevetype": [["puff"], ["short"]]}
    )
    ind, names = label_matrix(items, ATTRIBUTES)
    assert names == [("archetype", c) for c in ATTRIBUTES["archetype"]["labels"]] + [
        ("sleevetype", c) for c in ATTRIBUTES["sleevetype"]["labels"]
    ]
    assert [n for n, on in zip(names, ind[0], strict=True) if on] == [
        ("archetype", "boho"),
        ("archetype", "retro"),
        ("sleevetype", "puff"),
    ]
    assert [n for n, on in zip(names, ind[1], strict=True) if on] == [("sleevetype", "short")]
    with pytest.raises(KeyError, match="sleevetype"):
        label_matrix({"archetype": items["archetype"]}, ATTRIBUTES)


# -- the split ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_item_once_and_no_product_in_two_splits(seed):
    items = long_tailed_items(seed)
    _, codes = split_of(items, seed)
    assert codes.shape == (len(items),)
    assert set(np.unique(codes)) == {0, 1, 2}
    per_product = pd.Series(codes).groupby(items["product_id"]).nunique()
    assert (per_product == 1).all()


def test_same_seed_same_split_other_seed_other_split():
    items = long_tailed_items(3)
    first, second, other = (split_of(items, seed)[1] for seed in (7, 7, 8))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_item_fractions_within_one_percent(seed):
    items = long_tailed_items(seed)
    _, codes = split_of(items, seed)
    shares = np.bincount(codes, minlength=3) / len(codes)
    assert np.abs(shares - [0.8, 0.1, 0.1]).max() < 0.01


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_rare_label_spread_8_1_1(seed):
    items = long_tailed_items(seed)
    indicators, codes = split_of(items, seed)
    retro = indicators[:, ATTRIBUTES["archetype"]["labels"].index("retro")]
    assert np.bincount(codes[retro], minlength=3).tolist() == [8, 1, 1]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_better_stratified_than_a_random_grouped_split(seed):
    items = long_tailed_items(seed)
    indicators, codes = split_of(items, seed)
    baseline = random_grouped_split(items, seed)
    assert share_deviation(indicators, codes) < 0.5 * share_deviation(indicators, baseline)
    assert fraction_deviation(indicators, codes, FRACTIONS) < fraction_deviation(
        indicators, baseline, FRACTIONS
    )
    # every label of the toy table reaches val and test
    counts = split_label_counts(indicators, label_matrix(items, ATTRIBUTES)[1], codes)
    assert (counts[["val", "test"]] > 0).all().all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_at_least_as_good_as_iterstrat_on_one_item_products(seed):
    # With one item per product the task is plain multi-label stratification, which
    # iterative-stratification implements one example at a time.
    rng = np.random.default_rng(seed)
    y = rng.random((1500, 12)) < 0.45 * 0.6 ** np.arange(12)
    r = np.array([0.8, 0.1, 0.1])
    ours = iterative_stratification(y.astype(int), np.ones(len(y), int), r, seed=seed)
    theirs = IterativeStratification(y, r.copy(), np.random.RandomState(seed))

    def worst_count_error(subset: np.ndarray) -> float:
        counts = np.stack([y[subset == k].sum(axis=0) for k in range(3)])
        return float(np.abs(counts - np.outer(r, y.sum(axis=0))).max())

    # both put every label within rounding of its wanted count
    assert worst_count_error(theirs) < 1
    assert worst_count_error(ours) < 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_better_than_iterstrat_on_products_of_several_items(seed):
    # iterative-stratification at the product level sees a product's labels but not how
    # many of its items carry them; counting items is what the splits are measured in.
    items = long_tailed_items(seed)
    indicators, codes = split_of(items, seed)
    product = pd.factorize(items["product_id"])[0]
    per_product = np.zeros((product.max() + 1, indicators.shape[1]), dtype=bool)
    per_product[product] |= indicators
    theirs = IterativeStratification(
        per_product, np.array([0.8, 0.1, 0.1]), np.random.RandomState(seed)
    )[product]
    assert share_deviation(indicators, codes) < share_deviation(indicators, theirs)


def test_one_pass_equals_one_example_at_a_time():
    # Sechidis hands units out one by one to the subset wanting the most; the vectorised
    # pass levels the wants and rounds. Both must give the same counts.
    rng = np.random.default_rng(0)
    for _ in range(2000):
        k = int(rng.integers(2, 5))
        total = int(rng.integers(0, 40))
        need = rng.normal(0, 10, k)
        need += (total - need.sum()) / k  # wants always sum to what is left
        got = np.zeros(k, dtype=np.int64)
        left = need.copy()
        for _ in range(total):
            best = int(np.argmax(left))
            got[best] += 1
            left[best] -= 1
        ours = _round_shares(_water_level(need, total), total, np.zeros(k), rng)
        assert ours.tolist() == got.tolist(), (need, total)


def test_unlabelled_items_and_products_get_a_split():
    items = long_tailed_items(0)
    items.loc[items["product_id"].isin(["p20", "p21", "p22"]), ["archetype", "sleevetype"]] = None
    indicators, codes = split_of(items, 0)
    unlabelled = ~indicators.any(axis=1)
    assert unlabelled.sum() >= 3
    assert np.isin(codes[unlabelled], [0, 1, 2]).all()


def test_only_unlabelled_items_are_split_by_item_count():
    items = pd.DataFrame(
        {"item_id": [f"i{i}" for i in range(40)], "product_id": [f"p{i // 2}" for i in range(40)]}
    )
    codes = grouped_stratified_split(
        np.zeros((40, 0), bool), items["product_id"], FRACTIONS, seed=0
    )
    assert np.bincount(codes, minlength=3).tolist() == [32, 4, 4]


def test_a_fraction_of_zero_leaves_that_split_empty():
    items = long_tailed_items(1)
    indicators, _ = label_matrix(items, ATTRIBUTES)
    fractions = {"train": 0.9, "val": 0.1, "test": 0.0}
    codes = grouped_stratified_split(indicators, items["product_id"], fractions, seed=0)
    assert (codes != 2).all()
    assert abs((codes == 1).mean() - 0.1) < 0.01


def test_exact_counts_when_they_divide():
    # 50 single-item examples per label, one label each: 40 / 5 / 5 of every label.
    y = np.repeat(np.eye(4, dtype=int), 50, axis=0)
    subset = iterative_stratification(y, np.ones(len(y), int), [0.8, 0.1, 0.1], seed=3)
    counts = np.stack([y[subset == k].sum(axis=0) for k in range(3)])
    assert counts.tolist() == [[40] * 4, [5] * 4, [5] * 4]


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({"train": 0.8, "val": 0.2}, "must name exactly"),
        ({"train": 0.8, "val": 0.1, "test": 0.2}, "sum to 1"),
        ({"train": 1.1, "val": -0.1, "test": 0.0}, ">= 0"),
    ],
)
def test_bad_fractions_are_errors(fractions, message):
    with pytest.raises(ValueError, match=message):
        grouped_stratified_split(np.zeros((2, 1), bool), ["a", "b"], fractions, seed=0)


def test_null_product_id_is_an_error():
    with pytest.raises(ValueError, match="row 1 has no group key"):
        grouped_stratified_split(np.zeros((2, 1), bool), ["a", None], FRACTIONS, seed=0)


# -- counts, warnings, quality measures -----------------------------------------------------


def test_split_label_counts_and_missing_in_eval_by_hand():
    indicators = np.array([[1, 0], [1, 1], [0, 1], [1, 0], [0, 0]], dtype=bool)
    codes = np.array([0, 0, 1, 2, 2])
    table = split_label_counts(indicators, [("a", "x"), ("b", "y")], codes)
    assert table.columns.tolist() == ["attribute", "label", *SPLITS, "total"]
    assert table.to_dict("records") == [
        {"attribute": "a", "label": "x", "train": 2, "val": 0, "test": 1, "total": 3},
        {"attribute": "b", "label": "y", "train": 1, "val": 1, "test": 0, "total": 2},
    ]
    assert missing_in_eval(table) == [
        "a/x: no example in val (3 in all, 2 in train)",
        "b/y: no example in test (2 in all, 1 in train)",
    ]


def test_share_and_fraction_deviation_by_hand():
    # 10 items: label in items 0-3 (train 0-7, val 8, test 9) -> shares 4/8, 0, 0 vs 0.4
    indicators = np.zeros((10, 1), bool)
    indicators[:4] = True
    codes = np.array([0] * 8 + [1, 2])
    assert share_deviation(indicators, codes) == pytest.approx(0.4)
    assert fraction_deviation(indicators, codes, FRACTIONS) == pytest.approx(0.2)


# -- the stage --------------------------------------------------------------------------------


def run_stage(tmp_path: Path, items: pd.DataFrame) -> subprocess.CompletedProcess:
    params = {
        "attributes": ATTRIBUTES,
        "split": {"fractions": FRACTIONS, "seed": 0},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    items.to_parquet(tmp_path / "items.parquet")
    return subprocess.run(
        [sys.executable, str(ROOT / "stages/split.py"), "--items", "items.parquet"]
        + ["--out", "out/split", "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )


def test_stage_writes_assignment_and_counts_and_warns(tmp_path):
    items = long_tailed_items(0, n_products=120)
    # `puff` on one item only: it cannot reach both val and test
    items["sleevetype"] = [
        None if v is not None and v[0] == "puff" else v for v in items["sleevetype"]
    ]
    lonely = {"item_id": "lonely", "product_id": "q", "archetype": None, "sleevetype": ["puff"]}
    items = pd.concat([items, pd.DataFrame([lonely])], ignore_index=True)
    proc = run_stage(tmp_path, items)
    assert proc.returncode == 0, proc.stderr

    split = pd.read_parquet(tmp_path / "out/split/split.parquet")
    assert split.columns.tolist() == ["item_id", "split"]
    assert split["item_id"].tolist() == items["item_id"].tolist()
    assert set(split["split"]) == set(SPLITS)

    counts = pd.read_csv(tmp_path / "out/split/label_counts.csv")
    assert counts.columns.tolist() == ["attribute", "label", "train", "val", "test", "total"]
    assert len(counts) == sum(len(a["labels"]) for a in ATTRIBUTES.values())
    puff = counts.set_index(["attribute", "label"]).loc[("sleevetype", "puff")]
    assert puff["total"] == 1
    assert (counts[list(SPLITS)].sum(axis=1) == counts["total"]).all()
    expected = pd.DataFrame(
        [{"item_id": i, "split": s} for i, s in zip(split["item_id"], split["split"], strict=True)]
    ).merge(items, on="item_id")
    casual = expected["archetype"].map(lambda v: v is not None and "casual" in v)
    assert (
        counts.set_index("label").loc["casual", "val"]
        == (casual & (expected["split"] == "val")).sum()
    )
    # one item goes to train (the subset wanting the most), so both warnings
    assert "warning: sleevetype/puff: no example in val (1 in all, 1 in train)" in proc.stderr
    assert "warning: sleevetype/puff: no example in test (1 in all, 1 in train)" in proc.stderr
    # one warning per zero in val or test, none otherwise
    zeros = int((counts[["val", "test"]] == 0).sum().sum())
    assert proc.stderr.count("warning:") == zeros


def test_stage_names_a_missing_column(tmp_path):
    items = long_tailed_items(0, n_products=20).drop(columns=["sleevetype"])
    proc = run_stage(tmp_path, items)
    assert proc.returncode != 0
    assert "missing column(s) ['sleevetype']" in proc.stderr


def test_stage_names_the_item_with_an_unknown_label(tmp_path):
    items = long_tailed_items(0, n_products=20)
    items.at[3, "archetype"] = ["casual", "goth"]
    proc = run_stage(tmp_path, items)
    assert proc.returncode != 0
    assert f"item '{items.at[3, 'item_id']}' (row 3) has label 'goth'" in proc.stderr
