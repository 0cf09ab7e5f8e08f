"""Image loading (tailtag.images), the ingest run (tailtag.ingest) and its stage script."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tailtag.catalog import CatalogError
from tailtag.images import DecodeOptions, ImageRejected, decode_image, fit_size, load_image
from tailtag.ingest import (
    NpyStreamWriter,
    ingest_catalog,
    items_schema,
    rejects_schema,
)

ROOT = Path(__file__).resolve().parents[1]
ATTRS = {"archetype": "multi_label", "sleevetype": "single_label"}
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def save(path: Path, im: Image.Image, fmt: str | None = None, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt, **kw)
    return path


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def decode(data: bytes, size: int = 8, max_pixels: int = 10**6) -> tuple[np.ndarray, int, int]:
    return decode_image(data, size=size, max_pixels=max_pixels)


# ---------------------------------------------------------------- decoding


def test_fit_size() -> None:
    assert fit_size(200, 100, 64) == (64, 32)
    assert fit_size(100, 200, 64) == (32, 64)
    assert fit_size(300, 100, 64) == (64, 21)  # 21.33 rounds down
    assert fit_size(10, 1000, 8) == (1, 8)  # never 0 wide
    assert fit_size(5, 5, 64) == (64, 64)  # small images are enlarged


def test_solid_red_stays_red() -> None:
    pixels, w, h = decode(encode(Image.new("RGB", (30, 30), RED), "PNG"))
    assert (w, h) == (30, 30)
    assert pixels.shape == (8, 8, 3) and pixels.dtype == np.uint8
    assert (pixels == RED).all()


def test_wide_image_is_centred_and_padded_white() -> None:
    # 40 x 20 blue -> 8 x 4, on rows 2..5 of an 8 x 8 white square
    pixels, w, h = decode(encode(Image.new("RGB", (40, 20), BLUE), "PNG"))
    assert (w, h) == (40, 20)
    assert (pixels[2:6] == BLUE).all()
    assert (pixels[:2] == WHITE).all() and (pixels[6:] == WHITE).all()
    tall, _, _ = decode(encode(Image.new("RGB", (20, 40), BLUE), "PNG"))
    assert (tall[:, 2:6] == BLUE).all() and (tall[:, :2] == WHITE).all()
    assert (tall[:, 6:] == WHITE).all()


def test_large_jpeg_uses_reduced_decoding_and_stays_red() -> None:
    data = encode(Image.new("RGB", (800, 400), RED), "JPEG", quality=95)
    pixels, w, h = decode(data, size=16)
    assert (w, h) == (800, 400)  # the full size, not the draft size
    assert np.abs(pixels[6:10].astype(int) - RED).max() <= 3  # JPEG is lossy
    assert (pixels[:4] == WHITE).all() and (pixels[12:] == WHITE).all()


def test_resize_matches_pillow_lanczos() -> None:
    im = noise(32, 32)
    pixels, _, _ = decode(encode(im, "PNG"), size=8)
    reference = np.asarray(im.resize((8, 8), Image.Resampling.LANCZOS, reducing_gap=3.0))
    np.testing.assert_array_equal(pixels, reference)


def test_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 4, 2))  # top half opaque blue
    pixels, _, _ = decode(encode(rgba, "PNG"), size=4)
    assert (pixels[:2] == BLUE).all() and (pixels[2:] == WHITE).all()
    half = Image.new("LA", (4, 4), (0, 128))  # black at alpha 128/255 over white
    pixels, _, _ = decode(encode(half, "PNG"), size=4)
    assert (pixels == 127).all()


def test_palette_with_transparency_and_greyscale() -> None:
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0])
    pal.paste(1, (0, 0, 4, 2))
    pixels, _, _ = decode(encode(pal, "PNG", transparency=0), size=4)
    assert (pixels[:2] == (0, 255, 0)).all() and (pixels[2:] == WHITE).all()
    grey, _, _ = decode(encode(Image.new("L", (4, 4), 77), "PNG"), size=4)
    assert (grey == 77).all()


def test_16_bit_greyscale_is_scaled_not_clipped() -> None:
    a = np.full((4, 4), 32896, dtype=np.uint16)  # 32896 / 65535 * 255 = 128.0
    pixels, _, _ = decode(encode(Image.fromarray(a), "PNG"), size=4)
    assert (pixels == 128).all()


def test_exif_orientation_is_applied() -> None:
    im = Image.new("RGB", (40, 20), RED)
    im.paste(BLUE, (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image is shown rotated 90 degrees clockwise
    pixels, w, h = decode(encode(im, "PNG", exif=exif), size=8)
    assert (w, h) == (20, 40)
    # top half blue, bottom half red (Lanczos rings by a level or two near the edge)
    assert np.abs(pixels[:3, 2:6].astype(int) - BLUE).max() <= 2
    assert np.abs(pixels[5:, 2:6].astype(int) - RED).max() <= 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is not an image", "not_an_image"),
        (encode(noise(40, 40), "JPEG")[:600], "truncated"),
        (encode(noise(40, 40), "PNG")[:2000], "truncated"),
        (encode(Image.new("RGB", (101, 100)), "PNG"), "decompression_bomb"),
    ],
)
def test_decode_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as info:
        decode(data, max_pixels=100 * 100)
    assert info.value.reason == reason


def test_pillow_decompression_bomb_error_is_a_reject(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow errors above 2x this
    with pytest.raises(ImageRejected) as info:
        decode(encode(Image.new("RGB", (20, 20)), "PNG"), max_pixels=10**6)
    assert info.value.reason == "decompression_bomb"
    assert "decompression bomb" in info.value.detail


def test_unreadable_file_is_read_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    save(tmp_path / "a.png", Image.new("RGB", (4, 4)))

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tailtag.images.open", denied, raising=False)
    with pytest.raises(ImageRejected) as info:
        load_image("a.png", tmp_path, DecodeOptions())
    assert info.value.reason == "read_error" and "Permission denied" in info.value.detail


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("s3://bucket/a.jpg", "unsupported_scheme"),
        ("file:a.png", "unsupported_scheme"),
        ("file://host/a.png", "unsupported_scheme"),
        ("/no/such/file.png", "missing_file"),
    ],
)
def test_reference_rejects(tmp_path: Path, ref: str, reason: str) -> None:
    save(tmp_path / "a.png", Image.new("RGB", (4, 4)))
    with pytest.raises(ImageRejected) as info:
        load_image(ref, tmp_path, DecodeOptions())
    assert info.value.reason == reason


def test_symlinks_inside_the_folder(tmp_path: Path) -> None:
    save(tmp_path / "img" / "a.png", Image.new("RGB", (4, 4), RED))
    (tmp_path / "alias").symlink_to(tmp_path / "img")  # a folder link that stays inside
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    result = load_image("alias/a.png", tmp_path, DecodeOptions(image_size=4))
    assert (result.pixels == RED).all()
    with pytest.raises(ImageRejected) as info:
        load_image("loop1", tmp_path, DecodeOptions())
    assert info.value.reason == "read_error"


# ---------------------------------------------------------------- the ingest run


def build_dirty_catalog(root: Path) -> tuple[Path, dict[int, str]]:
    """A CSV catalog with good rows and one row per reject reason; returns (folder, reasons)."""
    cat = root / "catalog"
    save(cat / "img" / "red.png", Image.new("RGB", (30, 30), RED))
    save(cat / "img" / "wide.png", Image.new("RGB", (40, 20), BLUE))
    save(cat / "img" / "noise.jpg", noise(50, 40))
    (cat / "img" / "empty.jpg").write_bytes(b"")
    (cat / "img" / "text.jpg").write_text("not an image at all")
    (cat / "img" / "cut.jpg").write_bytes(encode(noise(40, 40, seed=1), "JPEG")[:700])
    (cat / "img" / "big.bin").write_bytes(np.random.default_rng(2).bytes(40_000))
    save(cat / "img" / "huge.png", Image.new("RGB", (100, 100), RED))  # 10,000 px
    save(root / "outside.png", Image.new("RGB", (10, 10), RED))
    (cat / "img" / "link.png").symlink_to(root / "outside.png")
    absolute = save(root / "elsewhere" / "abs.png", Image.new("RGB", (10, 20), RED))
    rows = [  # item_id, product_id, image, archetype, sleevetype, expected reject reason
        ("007", "p1", "img/red.png", "casual|boho", "short", None),
        ("", "p2", "img/red.png", "", "", "missing_item_id"),
        ("007", "p3", "img/wide.png", "", "", "duplicate_item_id"),
        ("008", "p1", "img/wide.png", " edgy ", "", None),
        ("009", "", "", "casual", "", "missing_image"),
        ("010", "", "img/red.png", "a||b", "", "bad_label_cell"),
        ("011", "", "img/red.png", "", "short|", "bad_label_cell"),
        ("012", "", "../outside.png", "", "", "path_escape"),
        ("013", "", "img/link.png", "", "", "path_escape"),
        ("014", "", "ftp://example.com/x.jpg", "", "", "unsupported_scheme"),
        ("015", "", "img/nope.jpg", "", "", "missing_file"),
        ("016", "", "img", "", "", "missing_file"),  # a folder
        ("017", "", "img/empty.jpg", "", "", "empty_file"),
        ("018", "", "img/big.bin", "", "", "file_too_large"),
        ("019", "", "img/text.jpg", "", "", "not_an_image"),
        ("020", "", "img/cut.jpg", "", "", "truncated"),
        ("021", "", "img/huge.png", "", "", "decompression_bomb"),
        ("022", "", "img/noise.jpg", "", "cap", None),
        ("023", "", str(absolute), "", "", None),
        ("024", "", absolute.as_uri(), "", "", None),
        ("025", "", "img/../img/red.png", "", "", None),  # ".." that stays inside is fine
    ]
    lines = ["item_id,product_id,image,archetype,sleevetype"]
    lines += [",".join(r[:5]) for r in rows]
    (cat / "catalog.csv").write_text("\n".join(lines) + "\n")
    return cat, {i: r[5] for i, r in enumerate(rows) if r[5]}


LIMITS = {"image_size": 8, "max_pixels": 50 * 50, "max_bytes": 20_000, "progress": False}


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, str], Path]:
    root = tmp_path_factory.mktemp("dirty")
    cat, reasons = build_dirty_catalog(root)
    out = root / "out1"
    ingest_catalog(cat, out, attributes=ATTRS, workers=1, **LIMITS)
    return cat, reasons, out


def test_every_reject_reason_once(dirty: tuple[Path, dict[int, str], Path]) -> None:
    cat, reasons, out = dirty
    rejects = pd.read_parquet(out / "rejects.parquet")
    assert rejects["row"].tolist() == sorted(reasons)  # one reject per bad row, in order
    assert dict(zip(rejects["row"], rejects["reason"], strict=True)) == reasons
    assert pq.read_schema(out / "rejects.parquet").equals(rejects_schema())
    by_row = rejects.set_index("row")
    assert pd.isna(by_row.loc[1, "item_id"]) and by_row.loc[2, "item_id"] == "007"
    assert by_row.loc[10, "image"] == "img/nope.jpg"
    assert str(cat / "img" / "nope.jpg") in by_row.loc[10, "detail"]


def test_items_table(dirty: tuple[Path, dict[int, str], Path]) -> None:
    cat, reasons, out = dirty
    items = pd.read_parquet(out / "items.parquet")
    assert pq.read_schema(out / "items.parquet").equals(items_schema(ATTRS))
    assert items["row"].tolist() == [0, 3, 17, 18, 19, 20]
    assert len(items) + len(reasons) == 21  # rows in = ingested + rejected
    assert items["item_id"].tolist() == ["007", "008", "022", "023", "024", "025"]
    assert items["product_id"].tolist() == ["p1", "p1", "022", "023", "024", "025"]
    assert items["index"].tolist() == list(range(6))
    assert items["width"].tolist() == [30, 40, 50, 10, 10, 30]
    assert items["height"].tolist() == [30, 20, 40, 20, 20, 30]
    assert items["archetype"].map(lambda v: None if v is None else list(v)).tolist() == [
        ["casual", "boho"],
        ["edgy"],
        None,
        None,
        None,
        None,
    ]
    assert items["sleevetype"].map(lambda v: None if v is None else list(v)).tolist() == [
        ["short"],
        None,
        ["cap"],
        None,
        None,
        None,
    ]
    red_sha = hashlib.sha256((cat / "img" / "red.png").read_bytes()).hexdigest()
    assert items["sha256"].iloc[0] == red_sha == items["sha256"].iloc[5]


def test_image_array(dirty: tuple[Path, dict[int, str], Path]) -> None:
    _, _, out = dirty
    images = np.load(out / "images.npy", mmap_mode="r")
    assert isinstance(images, np.memmap)
    assert images.shape == (6, 8, 8, 3) and images.dtype == np.uint8
    assert (images[0] == RED).all()
    assert (images[1, 2:6] == BLUE).all() and (images[1, :2] == WHITE).all()
    assert (images[1, 6:] == WHITE).all()
    # 10 x 20 red at 8 px: 4 wide, columns 2..5
    assert (images[3, :, 2:6] == RED).all() and (images[3, :, :2] == WHITE).all()
    np.testing.assert_array_equal(images[3], images[4])  # absolute path == file:// URL


def test_two_workers_give_identical_outputs(
    dirty: tuple[Path, dict[int, str], Path], tmp_path: Path
) -> None:
    cat, _, out1 = dirty
    summary = ingest_catalog(cat, tmp_path, attributes=ATTRS, workers=2, **LIMITS)
    assert (summary.rows_in, summary.ingested, summary.rejected) == (21, 6, 15)
    assert summary.by_reason["bad_label_cell"] == 2 and summary.by_reason["path_escape"] == 2
    assert sum(summary.by_reason.values()) == summary.rejected
    for name in ("items.parquet", "rejects.parquet"):
        assert pq.read_table(out1 / name).equals(pq.read_table(tmp_path / name))
    assert (out1 / "images.npy").read_bytes() == (tmp_path / "images.npy").read_bytes()


def test_empty_catalog_writes_empty_outputs(tmp_path: Path) -> None:
    cat = tmp_path / "catalog"
    cat.mkdir()
    (cat / "catalog.csv").write_text("item_id,image,archetype,sleevetype\n")
    summary = ingest_catalog(cat, tmp_path / "out", attributes=ATTRS, progress=False)
    assert (summary.rows_in, summary.ingested, summary.rejected) == (0, 0, 0)
    assert np.load(tmp_path / "out" / "images.npy").shape == (0, 64, 64, 3)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet")
    assert rejects.num_rows == 0 and rejects.schema.equals(rejects_schema())


def test_missing_column_fails_before_writing(tmp_path: Path) -> None:
    cat = tmp_path / "catalog"
    cat.mkdir()
    (cat / "catalog.csv").write_text("item_id,image,archetype\n1,a.jpg,x\n")
    with pytest.raises(CatalogError, match=r"catalog.csv: missing column\(s\) sleevetype"):
        ingest_catalog(cat, tmp_path / "out", attributes=ATTRS, progress=False)
    assert not (tmp_path / "out").exists()


def test_npy_stream_writer_fewer_rows_than_reserved(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    items = np.arange(3 * 2 * 5, dtype=np.uint8).reshape(3, 2, 5)
    with NpyStreamWriter(path, (2, 5), max_rows=10**7) as writer:
        for item in items:
            writer.append(item)
        with pytest.raises(ValueError, match=r"expected \(2, 5\) uint8"):
            writer.append(np.zeros((2, 4), np.uint8))
    loaded = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(loaded, items)
    assert not path.with_name("a.npy.tmp").exists()
    with pytest.raises(RuntimeError), NpyStreamWriter(tmp_path / "b.npy", (2,), max_rows=1):
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == [path]  # a failed write leaves nothing behind


# ---------------------------------------------------------------- http(s)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.startswith("/slow"):
            time.sleep(1.0)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("www")
    save(root / "red.png", Image.new("RGB", (30, 30), RED))
    save(root / "slow" / "red.png", Image.new("RGB", (30, 30), RED))
    (root / "big.bin").write_bytes(b"x" * 5000)

    def handler(*args: object) -> _Handler:
        return _Handler(*args, directory=str(root))

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def test_http_image(server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = server
    result = load_image(f"{url}/red.png", tmp_path, DecodeOptions(image_size=8, url_timeout=5))
    assert (result.pixels == RED).all() and (result.width, result.height) == (30, 30)
    assert result.sha256 == hashlib.sha256((root / "red.png").read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing.png", "fetch_error"),
        ("/big.bin", "file_too_large"),
        ("/slow/red.png", "fetch_error"),
    ],
)
def test_http_rejects(server: tuple[str, Path], tmp_path: Path, path: str, reason: str) -> None:
    url, _ = server
    options = DecodeOptions(image_size=8, max_bytes=4000, url_timeout=0.3)
    with pytest.raises(ImageRejected) as info:
        load_image(url + path, tmp_path, options)
    assert info.value.reason == reason
    assert url + path in info.value.detail


# ---------------------------------------------------------------- the stage script

PARAMS = """\
ingest: {catalog: catalog, image_size: 8, max_pixels: 2500, max_bytes: 20000,
         url_timeout: 5, workers: 1}
attributes:
  archetype: {kind: multi_label, labels: [casual, boho, edgy]}
  sleevetype: {kind: single_label, labels: [short, cap]}
"""


def run_stage(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "stages" / "ingest.py"), *args, "--no-progress"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_stage_script(dirty: tuple[Path, dict[int, str], Path], tmp_path: Path) -> None:
    cat, _, out1 = dirty
    (tmp_path / "params.yaml").write_text(PARAMS)
    done = run_stage(
        tmp_path, "--catalog", str(cat), "--out", "data/ingested", "--metrics", "m/ingest.json"
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "m" / "ingest.json").read_text())
    assert metrics["rows_in"] == 21 and metrics["ingested"] == 6 and metrics["rejected"] == 15
    assert metrics["reject_fraction"] == pytest.approx(15 / 21)
    assert metrics["by_reason"]["path_escape"] == 2
    assert "rows in 21 = ingested 6 + rejected 15" in done.stdout
    assert "bad_label_cell: 2" in done.stdout
    out = tmp_path / "data" / "ingested"
    assert (out1 / "images.npy").read_bytes() == (out / "images.npy").read_bytes()

    failed = run_stage(tmp_path, "--catalog", str(tmp_path / "nothing"), "--out", "o")
    assert failed.returncode != 0
    assert "nothing does not exist" in failed.stderr and "Traceback" not in failed.stderr
