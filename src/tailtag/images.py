"""Resolving an image reference, reading its bytes once, decoding it to S x S x 3 uint8.

References: a path relative to the catalog folder, an absolute path, a `file://` URL, or
an `http(s)://` URL (read through fsspec, with a timeout and a size cap). Other schemes
(`ftp://`, `s3://`, `gs://`...) are rejected as `unsupported_scheme`: object stores need
credentials and extra packages, so such catalogs are synced to disk (or given presigned
https URLs) first, which keeps ingest reproducible and its rejects deterministic.

Reject reasons raised here (ImageRejected.reason): `path_escape`, `unsupported_scheme`,
`missing_file`, `read_error` (exists but cannot be read, e.g. permission denied),
`empty_file`, `file_too_large`, `fetch_error`, `not_an_image`, `truncated`,
`decompression_bomb`.

This module imports only numpy and Pillow at the top, so pool workers start quickly.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

WHITE = (255, 255, 255)
EXIF_ORIENTATION = 0x0112
# Lanczos: the sharpest of Pillow's antialiasing filters. reducing_gap=3 first shrinks by
# an integer factor (box filter) down to >= 3x the target, which Pillow documents as
# indistinguishable from a plain Lanczos resize in most cases, and is much faster.
RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageRejected(Exception):
    """An image that cannot be ingested: `reason` is a short code, `detail` human text."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodeOptions:
    """Limits and output size for `load_image` (picklable, sent to pool workers)."""

    image_size: int = 64
    max_pixels: int = 89_478_485
    max_bytes: int = 50 * 1024 * 1024
    url_timeout: float = 30.0


@dataclass(frozen=True)
class ImageResult:
    """Outcome for one catalog row: pixels (S, S, 3) uint8 and facts, or a reject."""

    row: int
    pixels: np.ndarray | None = None
    sha256: str | None = None
    width: int = 0
    height: int = 0
    reason: str | None = None
    detail: str | None = None


def resolve_reference(ref: str, catalog_dir: Path) -> Path | str:
    """Return a local Path, or the URL itself for http(s).

    `catalog_dir` must be absolute and resolved. A relative path must stay inside it
    after resolving `..` and symlinks, else `path_escape`; absolute paths and file://
    URLs are taken as the user wrote them.
    """
    parts = urlsplit(ref)
    scheme = parts.scheme.lower()
    # one-letter "schemes" are Windows drive letters (C:\...), i.e. paths
    if len(scheme) <= 1:
        if os.path.isabs(ref):
            return Path(ref)
        root = str(catalog_dir)
        resolved = _resolve_relative(root, ref)
        if resolved != root and not resolved.startswith(root.rstrip(os.sep) + os.sep):
            raise ImageRejected(
                "path_escape", f"{ref} resolves to {resolved}, outside the catalog folder"
            )
        return Path(resolved)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ImageRejected("unsupported_scheme", f"file URL with a remote host: {ref}")
        path = Path(url2pathname(unquote(parts.path)))
        if not path.is_absolute():
            raise ImageRejected("unsupported_scheme", f"file URL without an absolute path: {ref}")
        return path
    if scheme in ("http", "https"):
        return ref
    raise ImageRejected(
        "unsupported_scheme", f"{scheme}:// is not supported (only paths, file://, http(s)://)"
    )


@functools.lru_cache(maxsize=1024)
def _real_folder(folder: str) -> str:
    # cached: a catalog's images share few folders, and realpath costs a syscall per part
    return os.path.realpath(folder)


def _resolve_relative(root: str, ref: str) -> str:
    """realpath(root / ref): `..` and symlinks resolved, folders cached (str: Path is slow)."""
    joined = os.path.join(root, ref)
    folder, name = os.path.split(joined)
    if name in ("", ".", ".."):
        return os.path.realpath(joined)
    real = os.path.join(_real_folder(folder), name)
    return os.path.realpath(real) if os.path.islink(real) else real


def read_bytes(source: Path | str, *, max_bytes: int, url_timeout: float) -> bytes:
    """Read a local file or an http(s) URL, refusing 0 bytes and more than `max_bytes`."""
    if isinstance(source, str):
        data = _read_url(source, max_bytes, url_timeout)
    else:
        data = _read_file(source, max_bytes)
    if not data:
        raise ImageRejected("empty_file", f"{source} has 0 bytes")
    return data


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ImageRejected("missing_file", f"{path} is not a regular file")
        if st.st_size > max_bytes:
            raise ImageRejected(
                "file_too_large", f"{path} has {st.st_size} bytes, over max_bytes={max_bytes}"
            )
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # +1: the file may have grown since stat
    except (FileNotFoundError, NotADirectoryError):
        raise ImageRejected("missing_file", f"{path} does not exist") from None
    except OSError as e:
        raise ImageRejected("read_error", f"{path}: {e}") from None
    if len(data) > max_bytes:
        raise ImageRejected("file_too_large", f"{path} is over max_bytes={max_bytes}")
    return data


def _read_url(url: str, max_bytes: int, timeout: float) -> bytes:
    import aiohttp
    import fsspec

    fs = fsspec.filesystem("http", client_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout)})
    chunks: list[bytes] = []
    total = 0
    try:
        # block_size=0 streams the body, so the size cap holds even without Content-Length
        with fs.open(url, "rb", block_size=0) as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
                if total > max_bytes:
                    raise ImageRejected(
                        "file_too_large", f"{url} sends over max_bytes={max_bytes} bytes"
                    )
                chunks.append(chunk)
    except ImageRejected:
        raise
    except FileNotFoundError:
        raise ImageRejected("fetch_error", f"{url}: HTTP 404 not found") from None
    # network failures come in many types (aiohttp, asyncio, OSError); each becomes a reject
    except Exception as e:
        raise ImageRejected("fetch_error", f"{url}: {type(e).__name__}: {e}") from None
    return b"".join(chunks)


def fit_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(w, h) scaled so the longer side is `size`, aspect kept (rounded, at least 1)."""
    if width >= height:
        return size, max(1, (2 * height * size + width) // (2 * width))
    return max(1, (2 * width * size + height) // (2 * height)), size


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited on white.

    16-bit greyscale (I;16*, and I, taken as 16-bit) maps 0..65535 to 0..255 (Pillow's
    own convert would clip everything above 255 to white).
    """
    if im.mode in _SIXTEEN_BIT_MODES:
        a = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
        im = Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8))
    elif im.mode == "F":
        im = Image.fromarray(np.clip(np.asarray(im), 0, 255).round().astype(np.uint8))
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        out = Image.new("RGB", im.size, WHITE)
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return im if im.mode == "RGB" else im.convert("RGB")


def fit_square(im: Image.Image, size: int) -> np.ndarray:
    """Resize an RGB image to fit `size` x `size` (aspect kept), centred on white.

    Returns (size, size, 3) uint8. Odd padding puts the extra pixel at the bottom/right.
    """
    tw, th = fit_size(im.width, im.height, size)
    if im.size != (tw, th):
        im = im.resize((tw, th), RESAMPLE, reducing_gap=REDUCING_GAP)
    if tw == th == size:
        return np.asarray(im).copy()  # copy: a writable array that owns its memory
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    top, left = (size - th) // 2, (size - tw) // 2
    canvas[top : top + th, left : left + tw] = np.asarray(im)
    return canvas


def decode_image(data: bytes, *, size: int, max_pixels: int) -> tuple[np.ndarray, int, int]:
    """Decode image bytes to (pixels (size, size, 3) uint8, width, height).

    width/height are the full-resolution size of the upright image (after EXIF
    orientation). The pixel count is checked from the header before decoding; JPEGs are
    decoded at a reduced DCT scale (`Image.draft`) when that still covers the target.
    """
    with warnings.catch_warnings():
        # max_pixels is the limit that counts; Pillow's own warning would only be noise
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as e:
            raise ImageRejected("decompression_bomb", str(e)) from None
        # Pillow raises many exception types on malformed data; each becomes a reject
        except Exception as e:
            raise _decode_failure(e) from None
        width, height = im.size
        if width * height > max_pixels:
            raise ImageRejected(
                "decompression_bomb",
                f"{width} x {height} = {width * height} pixels, over max_pixels={max_pixels}",
            )
        try:
            orientation = im.getexif().get(EXIF_ORIENTATION, 1)
        except Exception:  # unreadable EXIF: keep the image as stored
            orientation = 1
        target = fit_size(width, height, size)
        try:
            if target[0] < width:
                im.draft("RGB", target)  # JPEG only; a no-op for other formats
            im.load()
            if orientation in range(2, 9):
                im = ImageOps.exif_transpose(im)
            im = to_rgb(im)
        except Image.DecompressionBombError as e:
            raise ImageRejected("decompression_bomb", str(e)) from None
        except Exception as e:
            raise _decode_failure(e) from None
    if orientation in (5, 6, 7, 8):  # 90-degree rotations swap the sides
        width, height = height, width
    return fit_square(im, size), width, height


def _decode_failure(e: Exception) -> ImageRejected:
    """`truncated` when Pillow says the data end early, else `not_an_image`."""
    if isinstance(e, UnidentifiedImageError):  # its message holds a memory address
        return ImageRejected("not_an_image", "not in any image format Pillow can read")
    truncated = isinstance(e, EOFError) or "truncated" in str(e).lower()
    return ImageRejected("truncated" if truncated else "not_an_image", f"{type(e).__name__}: {e}")


def load_image(ref: str, catalog_dir: Path, options: DecodeOptions) -> ImageResult:
    """Resolve, read (once), hash and decode one reference; row is left at -1."""
    source = resolve_reference(ref, catalog_dir)
    data = read_bytes(source, max_bytes=options.max_bytes, url_timeout=options.url_timeout)
    digest = hashlib.sha256(data).hexdigest()
    try:
        pixels, width, height = decode_image(
            data, size=options.image_size, max_pixels=options.max_pixels
        )
    except ImageRejected as e:
        raise ImageRejected(e.reason, f"{source}: {e.detail}") from None
    return ImageResult(-1, pixels, digest, width, height)


def process_chunk(
    chunk: list[tuple[int, str]], catalog_dir: Path, options: DecodeOptions
) -> list[ImageResult]:
    """Load each (row, image reference); rejects are results too, never exceptions."""
    results = []
    for row, ref in chunk:
        try:
            r = load_image(ref, catalog_dir, options)
            results.append(ImageResult(row, r.pixels, r.sha256, r.width, r.height))
        except ImageRejected as e:
            results.append(ImageResult(row, reason=e.reason, detail=e.detail))
        except Exception as e:  # a bug, not bad data: stop, naming the row
            raise RuntimeError(f"row {row} ({ref}): {type(e).__name__}: {e}") from e
    return results
