"""Tests for tailtag.synthetic: exact label distributions, tiny catalogs, the CLI and stage."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from tailtag.cli import main as cli
from tailtag.synthetic import (
    ARCHETYPE_CUES,
    ARCHETYPE_LABELS,
    ARCHETYPE_PRIORS,
    SLEEVETYPE_LABELS,
    SLEEVETYPE_PRIORS,
    draw_item,
    generate_catalog,
    label_set_distribution,
    sample_labels,
    shape_priors,
)

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["item_id", "product_id", "image", "archetype", "sleevetype"]
SMALL = {"n_items": 240, "image_size": 32}


def read_catalog(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "catalog.csv", dtype=str, keep_default_na=False)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.*"))}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("small") / "catalog"
    return out, generate_catalog(out, **SMALL, workers=1, progress=False)


# --- defaults agree with params.yaml and the attributes ---------------------------------


def test_defaults_equal_params_yaml() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    synthetic, attributes = params["synthetic"], params["attributes"]
    assert synthetic["archetype_priors"] == ARCHETYPE_PRIORS
    assert synthetic["sleevetype_priors"] == SLEEVETYPE_PRIORS
    assert attributes["archetype"]["labels"] == list(ARCHETYPE_LABELS)
    assert attributes["sleevetype"]["labels"] == list(SLEEVETYPE_LABELS)
    assert attributes["archetype"]["kind"] == "multi_label"
    assert attributes["sleevetype"]["kind"] == "single_label"
    assert set(ARCHETYPE_CUES) == set(ARCHETYPE_LABELS)
    defaults = generate_catalog.__kwdefaults__
    for key in ("n_items", "image_size", "seed", "imbalance", "label_noise"):
        assert defaults[key] == synthetic[key], key
    assert defaults["fmt"] == synthetic["format"]
    assert list(defaults["images_per_product"]) == synthetic["images_per_product"]


# --- label distributions ------------------------------------------------------------------


def test_label_set_distribution_hand_computed() -> None:
    # 3 labels, marginals 1/2, sets of size 1-3: by symmetry p(S) = t^|S| / Z, and
    # E|S| = 3/2 gives t^2 + t - 1 = 0, t = (sqrt 5 - 1) / 2.
    sets, probs = label_set_distribution(np.array([0.5, 0.5, 0.5]))
    t = (math.sqrt(5) - 1) / 2
    z = 3 * t + 3 * t**2 + t**3
    expected = {1: t / z, 2: t**2 / z, 3: t**3 / z}
    assert len(sets) == 7
    for row, p in zip(sets, probs, strict=True):
        assert p == pytest.approx(expected[int(row.sum())], abs=1e-12)
    np.testing.assert_allclose(probs @ sets, [0.5, 0.5, 0.5], atol=1e-12)


def test_label_set_distribution_default_priors_is_max_entropy_with_exact_marginals() -> None:
    q = np.array(list(shape_priors(ARCHETYPE_PRIORS, multi_label=True).values()))
    sets, probs = label_set_distribution(q)
    sizes = sets.sum(axis=1)
    assert sizes.min() == 1 and sizes.max() == 3
    assert len(sets) == 10 + 45 + 120
    assert len({tuple(r) for r in sets}) == len(sets)
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(probs @ sets, q, atol=1e-10)
    # max-entropy form: log p(S) is affine in the set's indicator vector (zero residual)
    design = np.column_stack([np.ones(len(sets)), sets.astype(float)])
    coef, *_ = np.linalg.lstsq(design, np.log(probs), rcond=None)
    np.testing.assert_allclose(design @ coef, np.log(probs), atol=1e-8)


def test_shape_priors_imbalance() -> None:
    arch = np.array([ARCHETYPE_PRIORS[label] for label in ARCHETYPE_LABELS])
    sleeve = np.array([SLEEVETYPE_PRIORS[label] for label in SLEEVETYPE_LABELS])
    as_given = shape_priors(ARCHETYPE_PRIORS, multi_label=True)
    np.testing.assert_allclose(list(as_given.values()), arch, rtol=1e-12)
    assert list(as_given) == list(ARCHETYPE_LABELS)
    uniform = shape_priors(ARCHETYPE_PRIORS, imbalance=0, multi_label=True)
    np.testing.assert_allclose(list(uniform.values()), [1.562 / 10] * 10, rtol=1e-12)
    uniform = shape_priors(SLEEVETYPE_PRIORS, imbalance=0, multi_label=False)
    np.testing.assert_allclose(list(uniform.values()), [1 / 11] * 11, rtol=1e-12)
    squared = shape_priors(SLEEVETYPE_PRIORS, imbalance=2, multi_label=False)
    np.testing.assert_allclose(list(squared.values()), sleeve**2 / (sleeve**2).sum(), rtol=1e-12)
    # sleevetype shares are renormalised to sum 1
    halved = shape_priors({k: v / 2 for k, v in SLEEVETYPE_PRIORS.items()}, multi_label=False)
    np.testing.assert_allclose(list(halved.values()), sleeve / sleeve.sum(), rtol=1e-12)
    # very skewed: casual hits the 0.95 cap, the mean number of labels stays 1.562
    skewed = np.array(list(shape_priors(ARCHETYPE_PRIORS, imbalance=6, multi_label=True).values()))
    assert skewed.sum() == pytest.approx(arch.sum(), abs=1e-12)
    assert skewed[ARCHETYPE_LABELS.index("casual")] == pytest.approx(0.95)
    assert (np.argsort(-skewed, kind="stable") == np.argsort(-arch, kind="stable")).all()


@pytest.mark.parametrize("imbalance", [0.0, 1.0, 2.0])
def test_sample_labels_match_shaped_priors(imbalance: float) -> None:
    n = 6000
    archetype, sleevetype = sample_labels(n, np.random.default_rng(7), imbalance=imbalance)
    assert archetype.shape == (n, 10) and archetype.dtype == bool
    assert sleevetype.shape == (n,)
    assert set(archetype.sum(axis=1)) <= {1, 2, 3}
    arch_q = np.array(
        list(shape_priors(ARCHETYPE_PRIORS, imbalance=imbalance, multi_label=True).values())
    )
    sleeve_q = np.array(
        list(shape_priors(SLEEVETYPE_PRIORS, imbalance=imbalance, multi_label=False).values())
    )
    np.testing.assert_allclose(archetype.mean(axis=0), arch_q, atol=0.005)
    # systematic sampling: every sleevetype count is floor or ceil of n * share
    counts = np.bincount(sleevetype, minlength=11)
    assert (np.abs(counts - n * sleeve_q) < 1 + 1e-9).all(), (counts, n * sleeve_q)


def test_sample_labels_is_seeded_and_shuffled() -> None:
    a1, s1 = sample_labels(500, np.random.default_rng(1))
    a2, s2 = sample_labels(500, np.random.default_rng(1))
    a3, s3 = sample_labels(500, np.random.default_rng(2))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(s1, s2)
    assert (s1 != s3).any()
    assert (np.diff(s1) < 0).any()  # not left in CDF order


# --- the catalog folder ---------------------------------------------------------------


def test_schema(small) -> None:
    out, table = small
    csv = read_catalog(out)
    pd.testing.assert_frame_equal(csv, table)
    assert list(csv.columns) == COLUMNS
    assert len(csv) == SMALL["n_items"]
    assert csv["item_id"].is_unique
    assert csv["image"].tolist() == [f"images/{i:06d}.jpg" for i in range(len(csv))]
    for cell in csv["archetype"]:
        if cell:
            labels = cell.split("|")
            assert 1 <= len(labels) <= 3 and set(labels) <= set(ARCHETYPE_LABELS), cell
            assert labels == sorted(set(labels)), cell
    assert set(csv["sleevetype"]) <= set(SLEEVETYPE_LABELS) | {""}
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        Path(p).name for p in csv["image"]
    ]


def test_images_decode_at_size_and_format(small) -> None:
    out, table = small
    for path in table["image"]:
        with Image.open(out / path) as img:
            assert img.format == "JPEG"
            assert img.size == (32, 32)
            assert img.mode == "RGB"
            img.load()


def test_png_format(tmp_path) -> None:
    table = generate_catalog(tmp_path, n_items=6, image_size=16, fmt="png", progress=False)
    assert table["image"].str.endswith(".png").all()
    for path in table["image"]:
        with Image.open(tmp_path / path) as img:
            assert (img.format, img.size, img.mode) == ("PNG", (16, 16), "RGB")


def test_products_share_labels(small) -> None:
    _, table = small
    sizes = table.groupby("product_id").size()
    assert sizes.max() > 1 and sizes.min() >= 1 and sizes.max() <= 3
    assert sizes.iloc[:-1].between(1, 3).all()
    per_product = table.groupby("product_id")[["archetype", "sleevetype"]].nunique()
    assert (per_product == 1).all().all()


def test_images_per_product_fixed(tmp_path) -> None:
    table = generate_catalog(
        tmp_path, n_items=9, image_size=16, images_per_product=(2, 2), progress=False
    )
    assert table.groupby("product_id").size().tolist() == [2, 2, 2, 2, 1]  # last cut short
    table = generate_catalog(
        tmp_path, n_items=5, image_size=16, images_per_product=(1, 1), progress=False
    )
    assert table["product_id"].is_unique


def test_same_seed_is_byte_identical_for_any_worker_count(small, tmp_path) -> None:
    out, _ = small
    generate_catalog(tmp_path / "again", **SMALL, workers=2, progress=False)
    assert folder_bytes(tmp_path / "again") == folder_bytes(out)


def test_other_seed_differs(small, tmp_path) -> None:
    out, table = small
    other = generate_catalog(tmp_path, **SMALL, seed=1, workers=1, progress=False)
    assert not other[["archetype", "sleevetype"]].equals(table[["archetype", "sleevetype"]])
    first = (out / table["image"][0]).read_bytes()
    assert (tmp_path / other["image"][0]).read_bytes() != first


def test_label_noise_changes_labels_not_images(tmp_path) -> None:
    clean = generate_catalog(tmp_path / "a", n_items=60, image_size=16, label_noise=0.0,
                             unlabelled=0.0, progress=False)  # fmt: skip
    noisy = generate_catalog(tmp_path / "b", n_items=60, image_size=16, label_noise=1.0,
                             unlabelled=0.0, progress=False)  # fmt: skip
    assert folder_bytes(tmp_path / "a" / "images") == folder_bytes(tmp_path / "b" / "images")
    assert (clean["archetype"] != noisy["archetype"]).any()
    assert (clean["sleevetype"] != noisy["sleevetype"]).any()
    assert (clean["product_id"] == noisy["product_id"]).all()


@pytest.mark.parametrize(("unlabelled", "empty"), [(0.0, False), (1.0, True)])
def test_unlabelled_cells_are_empty(tmp_path, unlabelled: float, empty: bool) -> None:
    table = generate_catalog(
        tmp_path, n_items=20, image_size=16, unlabelled=unlabelled, progress=False
    )
    assert (table["archetype"] == "").all() == empty
    assert (table["archetype"] != "").all() == (not empty)
    assert (table["sleevetype"] == "").all() == empty


def test_catalog_label_shares_follow_priors(tmp_path) -> None:
    table = generate_catalog(tmp_path, n_items=3000, image_size=16, progress=False)
    arch = table.loc[table["archetype"] != "", "archetype"].str.split("|")
    for label, prior in ARCHETYPE_PRIORS.items():
        share = arch.map(lambda labels, label=label: label in labels).mean()
        assert share == pytest.approx(prior, abs=0.025), label
    sleeve = table.loc[table["sleevetype"] != "", "sleevetype"].value_counts(normalize=True)
    for label, prior in SLEEVETYPE_PRIORS.items():
        assert sleeve.get(label, 0.0) == pytest.approx(prior, abs=0.02), label


def test_stale_files_are_removed(tmp_path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "999999.jpg").write_bytes(b"stale")
    (tmp_path / "catalog.parquet").write_bytes(b"stale")
    table = generate_catalog(tmp_path, n_items=3, image_size=16, progress=False)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
        Path(p).name for p in table["image"]
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.csv", "images"]


# --- cues -----------------------------------------------------------------------------------


def draw(sleevetype: str, archetype: list[str], **kw) -> np.ndarray:
    img = draw_item(
        sleevetype,
        archetype,
        image_size=32,
        product_rng=np.random.default_rng(3),
        image_rng=np.random.default_rng(4),
        occlusion=0.0,
        **kw,
    )
    assert img.size == (32, 32) and img.mode == "RGB"
    return np.asarray(img)


@pytest.mark.parametrize("label", ARCHETYPE_LABELS)
def test_each_archetype_cue_changes_the_image_and_dropout_removes_it(label: str) -> None:
    plain = draw("short", [], cue_dropout=0.0)
    assert not np.array_equal(draw("short", [label], cue_dropout=0.0), plain)
    dropped = draw("short", [label], cue_dropout=1.0)
    # every cue but the palette (minimal) is a drawn element that dropout removes
    assert np.array_equal(dropped, plain) == (label != "minimal")


def test_each_sleevetype_draws_a_different_image() -> None:
    images = {s: draw(s, ["casual"]) for s in SLEEVETYPE_LABELS}
    for a, b in itertools.combinations(SLEEVETYPE_LABELS, 2):
        assert not np.array_equal(images[a], images[b]), (a, b)


def test_draw_item_rejects_unknown_labels() -> None:
    with pytest.raises(ValueError, match="unknown sleevetype 'long'"):
        draw("long", [])
    with pytest.raises(ValueError, match="unknown archetype label.*'punk'"):
        draw("short", ["punk"])


# --- bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fmt": "gif"}, "unknown format 'gif'"),
        ({"n_items": 0}, "n_items must be an int >= 1"),
        ({"n_items": 2.5}, "n_items must be an int"),
        ({"image_size": 8}, "image_size must be an int >= 16"),
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"label_noise": 1.5}, r"label_noise must be a number in \[0, 1\]"),
        ({"unlabelled": -0.1}, "unlabelled must be"),
        ({"imbalance": -1.0}, "imbalance must be a finite number >= 0"),
        ({"images_per_product": (3, 1)}, "images_per_product: min 3 > max 1"),
        ({"images_per_product": (0, 2)}, "images_per_product must be two ints"),
        ({"images_per_product": 2}, "images_per_product must be two ints"),
        ({"archetype_priors": {**ARCHETYPE_PRIORS, "punk": 0.1}}, r"unknown label\(s\) \['punk'\]"),
        ({"archetype_priors": {"casual": 0.5}}, r"archetype_priors: missing label\(s\)"),
        ({"sleevetype_priors": {**SLEEVETYPE_PRIORS, "cap": 0.0}}, r"cap: share 0.0 is outside"),
        ({"sleevetype_priors": {**SLEEVETYPE_PRIORS, "cap": 1.5}}, r"cap: share 1.5 is outside"),
        ({"sleevetype_priors": {**SLEEVETYPE_PRIORS, "cap": "x"}}, "must be a number"),
        ({"archetype_priors": dict.fromkeys(ARCHETYPE_LABELS, 0.05)}, "sum to 0.500"),
        ({"archetype_priors": dict.fromkeys(ARCHETYPE_LABELS, 0.9)}, "sum to 9.000"),
    ],
)
def test_bad_arguments(tmp_path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_catalog(tmp_path / "out", **{"n_items": 2, "image_size": 16, **kwargs})
    assert not (tmp_path / "out").exists()  # nothing written before the arguments are checked


def test_out_dir_that_is_a_file(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        generate_catalog(tmp_path / "file", n_items=2, image_size=16, progress=False)


# --- command line and stage ---------------------------------------------------------------


def test_cli_synthesize(tmp_path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "synthesize",
            str(tmp_path),
            "--n-items",
            "5",
            "--image-size",
            "16",
            "--format",
            "png",
            "--seed",
            "3",
            "--no-progress",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote 5 images of ")
    assert len(result.output.strip().splitlines()) == 1
    assert read_catalog(tmp_path)["image"].str.endswith(".png").all()
    bad = CliRunner().invoke(cli, ["synthesize", str(tmp_path), "--n-items", "0"])
    assert bad.exit_code == 2 and "n_items must be an int >= 1" in bad.output


def run_stage(cwd: Path, synthetic: dict) -> subprocess.CompletedProcess:
    (cwd / "params.yaml").write_text(yaml.safe_dump({"synthetic": synthetic}))
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / "synthesize.py"), "out", "--no-progress"],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_stage_passes_every_key(tmp_path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["synthetic"]
    params.update(n_items=7, image_size=16, format="png", images_per_product=[1, 1])
    proc = run_stage(tmp_path, params)
    assert proc.returncode == 0, proc.stderr
    table = read_catalog(tmp_path / "out")
    assert len(table) == 7 and table["product_id"].is_unique
    assert table["image"].str.endswith(".png").all()
    assert "synthesize: 7 images of 7 products" in proc.stdout


def test_stage_rejects_unknown_key(tmp_path) -> None:
    proc = run_stage(tmp_path, {"n_items": 5, "image_size": 16, "n_itmes": 5})
    assert proc.returncode != 0
    assert "unknown key(s) n_itmes" in proc.stderr
    assert not (tmp_path / "out").exists()
