"""A synthetic long-tailed fashion catalog: drawn tops whose silhouette and trims carry the labels.

It stands in for a real catalog (same folder format, same two attributes as the paper) and is
hard enough that loss weighting matters: label priors are long-tailed, every label leaves a
visual cue, and the cues sit under nuisance variation and label noise.

Labels
    ``sleevetype`` (one per product) is drawn from its priors. ``archetype`` (1-3 per product)
    is drawn from the maximum-entropy distribution over label sets of size 1-3 whose per-label
    marginals equal the priors, i.e. independent Bernoulli labels conditioned on 1 <= |set| <= 3,
    with the Bernoulli log-odds fitted so the conditioned marginals are exact
    (:func:`label_set_distribution`). No fix-up step, so no drift in the marginals.

Imbalance
    ``imbalance`` = a reshapes priors p_c as w_c = p_c ** a (0: uniform, 1: as given, > 1: more
    skewed). Sleevetype: q_c = w_c / sum(w). Archetype: q_c = S * w_c / sum(w) with S = sum(p),
    so the mean number of labels per item stays S; shares above 0.95 are capped and the excess
    spread over the others in proportion to their shares (:func:`shape_priors`).

Cues (drawn at twice the image size, then reduced)
    sleevetype: the sleeve silhouette (none for sleeveless, thin straps for spaghetti, a stub for
    cap, elbow length for short, long narrow for fitted, flared wrist for bell, a bulge for
    balloon, a round shoulder for puff, a diagonal seam to the neck in a second colour for
    raglan, a wide triangle to the waist for batwing, a deep armhole tapering to the wrist for
    dolman). archetype (they combine): casual horizontal stripes, romantic polka dots, sporty
    side bands, classic white collar, boho hem fringe, minimal an achromatic palette, glam
    sparkles, edgy studs, retro a zigzag band, androgynous a necktie. Each archetype cue of an
    image is missing with probability ``cue_dropout`` and otherwise drawn at opacity 0.55-1.

Nuisance (per image): position, scale, rotation, garment colour jitter, background colour,
gradient and clutter, occluding blob (probability ``occlusion``), brightness/contrast jitter,
Gaussian pixel noise. Images of one product share labels and product colours; only the
nuisance differs.

Recorded labels: per product and attribute, with probability ``unlabelled`` the cell is empty,
else with probability ``label_noise`` the recorded value is replaced by an independent draw from
the same label distribution (the image keeps the true cue), so label shares still follow the
priors.

Randomness: the table uses ``default_rng([seed, 0])``; product appearance
``default_rng([seed, 2, product])``; image nuisance ``default_rng([seed, 1, item])``. The result
is therefore the same for any number of worker processes.
"""

from __future__ import annotations

import colorsys
import itertools
import math
import os
import shutil
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageChops, ImageDraw
from tqdm import tqdm

ARCHETYPE_LABELS: tuple[str, ...] = (
    "androgynous", "boho", "casual", "classic", "edgy",
    "glam", "minimal", "retro", "romantic", "sporty",
)  # fmt: skip
SLEEVETYPE_LABELS: tuple[str, ...] = (
    "balloon", "batwing", "bell", "cap", "dolman", "fitted",
    "puff", "raglan", "short", "sleeveless", "spaghetti",
)  # fmt: skip

# Defaults, equal to params.yaml `synthetic:`; shaped like the paper's Figs. 2-3.
ARCHETYPE_PRIORS: dict[str, float] = {
    "casual": 0.42, "romantic": 0.30, "sporty": 0.26, "classic": 0.20, "boho": 0.14,
    "minimal": 0.071, "glam": 0.06, "edgy": 0.05, "retro": 0.035, "androgynous": 0.026,
}  # fmt: skip
SLEEVETYPE_PRIORS: dict[str, float] = {
    "short": 0.332, "sleeveless": 0.22, "fitted": 0.16, "spaghetti": 0.08, "bell": 0.06,
    "balloon": 0.045, "puff": 0.04, "raglan": 0.022, "batwing": 0.02, "dolman": 0.015,
    "cap": 0.006,
}  # fmt: skip

ARCHETYPE_CUES: dict[str, str] = {
    "androgynous": "necktie",
    "boho": "fringe below the hem",
    "casual": "horizontal stripes",
    "classic": "white pointed collar",
    "edgy": "row of metal studs across the chest",
    "glam": "sparkles",
    "minimal": "achromatic palette",
    "retro": "zigzag band across the chest",
    "romantic": "polka dots",
    "sporty": "side bands",
}

FORMATS: dict[str, str] = {"jpeg": "jpg", "png": "png"}
JPEG_QUALITY = 90
MIN_LABELS, MAX_LABELS = 1, 3
MAX_SHARE = 0.95  # cap on a shaped archetype share; a share of 1 has no finite log-odds

_FRAME = 128.0  # drawing coordinates are in a 128 x 128 design frame


# --------------------------------------------------------------------------- labels


def _prior_vector(priors: Mapping[str, float] | None, labels: tuple[str, ...], name: str):
    if priors is None:
        raise ValueError(f"{name} must not be None here")
    if not isinstance(priors, Mapping):
        raise ValueError(f"{name} must be a mapping label -> share, got {type(priors).__name__}")
    unknown = sorted(set(priors) - set(labels))
    if unknown:
        raise ValueError(f"{name}: unknown label(s) {unknown}; expected {list(labels)}")
    missing = [label for label in labels if label not in priors]
    if missing:
        raise ValueError(f"{name}: missing label(s) {missing}")
    values = []
    for label in labels:
        value = priors[label]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}.{label}: share must be a number, got {value!r}")
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{name}.{label}: share {value} is outside (0, 1]")
        values.append(float(value))
    return np.asarray(values)


def shape_priors(
    priors: Mapping[str, float], *, imbalance: float = 1.0, multi_label: bool
) -> dict[str, float]:
    """Label shares after the imbalance exponent, in vocabulary order.

    w_c = p_c ** imbalance. Single-label: q_c = w_c / sum(w) (shares of items, sum 1).
    Multi-label (archetype): q_c = S w_c / sum(w), S = sum(p) the mean labels per item, which
    must lie strictly between 1 and 3; shares above 0.95 are capped and the excess is spread
    over the uncapped labels in proportion to their shares.
    """
    labels = ARCHETYPE_LABELS if multi_label else SLEEVETYPE_LABELS
    name = "archetype_priors" if multi_label else "sleevetype_priors"
    p = _prior_vector(priors, labels, name)
    if not (math.isfinite(imbalance) and imbalance >= 0):
        raise ValueError(f"imbalance must be a finite number >= 0, got {imbalance}")
    w = p**imbalance
    if not multi_label:
        return dict(zip(labels, w / w.sum(), strict=True))
    total = float(p.sum())
    if not MIN_LABELS < total < MAX_LABELS:
        raise ValueError(
            f"{name} sum to {total:.3f}, but items carry {MIN_LABELS}-{MAX_LABELS} labels, "
            f"so the shares must sum to strictly between {MIN_LABELS} and {MAX_LABELS}"
        )
    q = total * w / w.sum()
    capped = np.zeros(len(q), dtype=bool)
    while (q > MAX_SHARE + 1e-12).any():
        capped |= q > MAX_SHARE
        free = total - MAX_SHARE * capped.sum()
        q = np.where(capped, MAX_SHARE, free * w / w[~capped].sum())
    return dict(zip(labels, q, strict=True))


def label_set_distribution(
    marginals: np.ndarray, *, min_labels: int = MIN_LABELS, max_labels: int = MAX_LABELS
) -> tuple[np.ndarray, np.ndarray]:
    """Max-entropy distribution over label sets of size min..max with the given marginals.

    marginals: (C,) in (0, 1), sum strictly between min_labels and max_labels.
    Returns sets (K, C) bool, one row per set of allowed size, and probs (K,) with
    probs[k] proportional to exp(theta . sets[k]) (independent Bernoulli with log-odds theta,
    conditioned on the set size) and probs @ sets == marginals (to 1e-10). theta is found by
    Newton's method on the convex dual log Z(theta) - theta . marginals.
    """
    q = np.asarray(marginals, dtype=float)
    n = q.size
    if q.ndim != 1 or not ((q > 0) & (q < 1)).all():
        raise ValueError("marginals must be a 1-d array with every value in (0, 1)")
    if not min_labels < q.sum() < max_labels:
        raise ValueError(
            f"marginals sum to {q.sum():.4f}; it must lie strictly between "
            f"{min_labels} and {max_labels}"
        )
    rows = [
        [c in combo for c in range(n)]
        for k in range(min_labels, max_labels + 1)
        for combo in itertools.combinations(range(n), k)
    ]
    sets = np.asarray(rows, dtype=bool)
    x = sets.astype(float)

    def dual(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta
        top = z.max()
        e = np.exp(z - top)
        return top + math.log(e.sum()) - theta @ q, e / e.sum()

    theta = np.log(q / (1 - q))
    value, probs = dual(theta)
    for _ in range(200):
        m = probs @ x
        grad = m - q
        if np.abs(grad).max() < 1e-12:
            break
        hess = (x * probs[:, None]).T @ x - np.outer(m, m)
        step = np.linalg.solve(hess + 1e-12 * np.eye(n), grad)
        t = 1.0
        while True:  # backtracking keeps Newton monotone far from the optimum
            new_value, new_probs = dual(theta - t * step)
            if new_value <= value - 1e-4 * t * (grad @ step) or t < 1e-10:
                break
            t /= 2
        theta, value, probs = theta - t * step, new_value, new_probs
    if np.abs(probs @ x - q).max() > 1e-9:
        raise ValueError("could not match the archetype marginals; are the shares extreme?")
    return sets, probs


def sample_labels(
    n: int,
    rng: np.random.Generator,
    *,
    archetype_priors: Mapping[str, float] | None = None,
    sleevetype_priors: Mapping[str, float] | None = None,
    imbalance: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw true labels for n items (priors default to the module constants).

    Returns archetype (n, 10) bool in ARCHETYPE_LABELS order, 1-3 True per row, and
    sleevetype (n,) int indices into SLEEVETYPE_LABELS. Label sets are drawn by systematic
    sampling, so each sleevetype and each archetype set occurs floor or ceil of n * its
    probability times; shares equal shape_priors(...) up to that rounding.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    arch_q = shape_priors(
        ARCHETYPE_PRIORS if archetype_priors is None else archetype_priors,
        imbalance=imbalance,
        multi_label=True,
    )
    sleeve_q = shape_priors(
        SLEEVETYPE_PRIORS if sleevetype_priors is None else sleevetype_priors,
        imbalance=imbalance,
        multi_label=False,
    )
    sets, probs = label_set_distribution(np.array(list(arch_q.values())))
    archetype = sets[_systematic_choice(probs, n, rng)]
    sleevetype = _systematic_choice(np.array(list(sleeve_q.values())), n, rng)
    return archetype, sleevetype


def _systematic_choice(probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from probs whose counts are floor or ceil of n * probs, in random order.

    Systematic sampling (one uniform offset, n evenly spaced points through the CDF) keeps the
    tail labels' counts at their expected values instead of binomial noise around them.
    """
    points = (rng.random() + np.arange(n)) / n
    idx = np.searchsorted(np.cumsum(probs), points, side="right")
    return rng.permutation(np.minimum(idx, len(probs) - 1))


# --------------------------------------------------------------------------- drawing

_LEFT_TORSO = {  # left half, from the neck centre down to the hem; mirrored for the right
    "default": [(64, 35), (56, 27), (46, 30), (44, 48), (44, 100)],
    "sleeveless": [(64, 35), (56, 27), (51, 28), (48, 40), (44, 50), (44, 100)],
    "spaghetti": [(64, 45), (57, 41), (46, 42), (44, 50), (44, 100)],
}
_LEFT_SLEEVE: dict[str, list[tuple[str, list[float]]]] = {  # (shape, coords) of the left sleeve
    "cap": [("poly", [50, 28, 39, 32, 36, 41, 45, 44])],
    "short": [("poly", [47, 29, 35, 34, 27, 54, 38, 58, 44, 46])],
    "fitted": [("poly", [47, 29, 37, 36, 27, 96, 35, 97, 44, 48])],
    "bell": [("poly", [47, 29, 37, 36, 17, 94, 38, 100, 44, 48])],
    "balloon": [
        ("poly", [47, 29, 38, 35, 36, 50, 44, 50]),
        ("ellipse", [16, 42, 45, 90]),
        ("poly", [25, 86, 35, 86, 35, 97, 25, 97]),
    ],
    "puff": [("ellipse", [30, 21, 54, 45])],
    "raglan": [("poly", [57, 27, 37, 36, 27, 96, 35, 97, 45, 50])],
    "batwing": [("poly", [56, 27, 13, 49, 11, 63, 44, 86])],
    "dolman": [("poly", [48, 28, 30, 42, 19, 90, 28, 93, 40, 72, 44, 82])],
}
_HEM = 100.0


def _mirror(shape: str, coords: list[float]) -> list[float]:
    if shape == "ellipse":
        x0, y0, x1, y1 = coords
        return [_FRAME - x1, y0, _FRAME - x0, y1]
    return [v if i % 2 else _FRAME - v for i, v in enumerate(coords)]


def _scaled(coords: Iterable[float], k: float) -> list[float]:
    return [v * k for v in coords]


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return round(r * 255), round(g * 255), round(b * 255)


def _product_look(rng: np.random.Generator, minimal: bool) -> dict:
    """Colours and pattern geometry of one product (shared by its images)."""

    def sat() -> float:
        # minimal = an achromatic palette; everything else is clearly saturated
        return rng.uniform(0.0, 0.06) if minimal else rng.uniform(0.45, 1.0)

    base_v = rng.uniform(0.35, 0.95)
    far_v = (0.1, 0.4) if base_v > 0.6 else (0.75, 1.0)

    def contrast() -> tuple[float, float, float]:
        return (rng.uniform(), sat(), rng.uniform(*far_v))

    return {
        "base": (rng.uniform(), sat(), base_v),
        "second": contrast(),  # raglan sleeves
        "stripe": contrast(),
        "dot": contrast(),
        "zigzag": contrast(),
        "tie": (rng.uniform(), sat(), rng.uniform(0.1, 0.35)),
        "band": (0, 0, 0.97) if base_v < 0.7 else (0, 0, 0.08),
        "stripe_period": rng.uniform(9.0, 12.0),
        "stripe_phase": rng.uniform(0.0, 12.0),
        "dot_spacing": rng.uniform(10.0, 12.5),
        "dot_phase": rng.uniform(0.0, 12.0, size=2),
        "fringe_len": rng.uniform(9.0, 14.0),
        "zigzag_y": rng.uniform(56.0, 66.0),
    }


def _jitter(hsv: tuple[float, float, float], rng: np.random.Generator) -> tuple[int, int, int]:
    h, s, v = hsv
    return _rgb(h + rng.normal(0, 0.02), s * rng.uniform(0.9, 1.1), v + rng.normal(0, 0.05))


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    h, s, v = rng.uniform(), rng.uniform(0, 0.25), rng.uniform(0.55, 1.0)
    corners = [_rgb(h + rng.normal(0, 0.05), s, v + rng.normal(0, 0.08)) for _ in range(4)]
    # a 2 x 2 image stretched bilinearly is a cheap smooth gradient
    bg = Image.new("RGB", (2, 2))
    bg.putdata(corners)
    bg = bg.resize((size, size), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(bg)
    for _ in range(rng.integers(0, 4)):  # clutter: faint props in the background
        x0, y0 = rng.uniform(0, size, 2)
        w, hh = rng.uniform(0.1, 0.4, 2) * size
        colour = _rgb(rng.uniform(), rng.uniform(0, 0.4), v + rng.uniform(-0.25, 0.1))
        box = [x0, y0, x0 + w, y0 + hh]
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    return bg


def _star(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, k: float, fill) -> None:
    """A four-pointed sparkle of radius r at (x, y) in design units."""
    t = r * 0.28
    offsets = [(0, -r), (t, -t), (r, 0), (t, t), (0, r), (-t, t), (-r, 0), (-t, -t)]
    draw.polygon([((x + dx) * k, (y + dy) * k) for dx, dy in offsets], fill=fill)


def draw_item(
    sleevetype: str,
    archetype: Iterable[str],
    *,
    image_size: int,
    product_rng: np.random.Generator,
    image_rng: np.random.Generator,
    cue_dropout: float = 0.1,
    occlusion: float = 0.15,
) -> Image.Image:
    """Draw one catalog image (RGB, image_size x image_size) of a top with the given labels.

    product_rng fixes the product's colours and pattern geometry (reuse the same seed for
    every image of a product); image_rng fixes the nuisance.
    """
    if sleevetype not in SLEEVETYPE_LABELS:
        raise ValueError(f"unknown sleevetype {sleevetype!r}")
    arch = set(archetype)
    unknown = sorted(arch - set(ARCHETYPE_LABELS))
    if unknown:
        raise ValueError(f"unknown archetype label(s) {unknown}")
    look = _product_look(product_rng, "minimal" in arch)
    rng = image_rng  # pose, colours, background, noise: drawn in the same order for any labels
    # cue details come from their own stream, so the nuisance does not depend on the labels
    cue_rng = np.random.default_rng(image_rng.integers(2**63))
    d = 2 * image_size  # supersampled canvas; reduced by 2 at the end
    k = d / _FRAME
    line = max(1, round(1.5 * k))

    base = _jitter(look["base"], rng)
    dark = tuple(round(c * 0.55) for c in base)
    layer = Image.new("RGBA", (d, d), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)

    left = _LEFT_TORSO.get(sleevetype, _LEFT_TORSO["default"])
    right = [(_FRAME - x, y) for x, y in reversed(left[1:])]
    torso = [(x * k, y * k) for x, y in left + right]
    top = left[2][1]  # shoulder height, where the neckline trims sit

    def draw_sleeves(fill) -> None:
        for shape, coords in _LEFT_SLEEVE.get(sleevetype, []):
            for c in (coords, _mirror(shape, coords)):
                if shape == "ellipse":
                    draw.ellipse(_scaled(c, k), fill=fill, outline=dark, width=line)
                else:
                    draw.polygon(_scaled(c, k), fill=fill, outline=dark, width=line)

    if sleevetype != "raglan":
        draw_sleeves(base)
    draw.polygon(torso, fill=base, outline=dark, width=line)
    if sleevetype == "raglan":  # drawn over the torso so the diagonal seam shows
        draw_sleeves(_jitter(look["second"], cue_rng))
    if sleevetype == "spaghetti":
        for x0, x1 in ((50, 54), (78, 74)):
            draw.line(_scaled([x0, 43, x1, 22], k), fill=dark, width=max(1, round(3 * k)))

    def present(label: str) -> int:
        """Opacity of a label's cue in this image, 0 when absent or dropped."""
        if label not in arch or cue_rng.random() < cue_dropout:
            return 0
        return round(255 * cue_rng.uniform(0.55, 1.0))

    # patterns clipped to the torso
    pattern = Image.new("RGBA", (d, d), (0, 0, 0, 0))
    pdraw = ImageDraw.Draw(pattern)
    if a := present("casual"):
        period, y = look["stripe_period"], look["stripe_phase"]
        colour = (*_jitter(look["stripe"], cue_rng), a)
        while y < _FRAME:
            pdraw.rectangle(_scaled([0, y, _FRAME, y + 0.45 * period], k), fill=colour)
            y += period
    if a := present("romantic"):
        step, (px, py) = look["dot_spacing"], look["dot_phase"]
        colour = (*_jitter(look["dot"], cue_rng), a)
        for j, y in enumerate(np.arange(py % step + 20, _HEM + 3, step)):
            for x in np.arange(px % step + 36 + (step / 2) * (j % 2), 92, step):
                pdraw.ellipse(_scaled([x - 2.8, y - 2.8, x + 2.8, y + 2.8], k), fill=colour)
    if a := present("sporty"):
        colour = (*_rgb(*look["band"]), a)
        for x0 in (44, 77):
            pdraw.rectangle(_scaled([x0, 20, x0 + 7, _HEM], k), fill=colour)
    if a := present("retro"):
        y0 = look["zigzag_y"]
        pts = [v for i, x in enumerate(range(40, 92, 5)) for v in (x, y0 + (5 if i % 2 else -5))]
        colour = (*_jitter(look["zigzag"], cue_rng), a)
        pdraw.line(_scaled(pts, k), fill=colour, width=max(1, round(5 * k)), joint="curve")
    mask = Image.new("L", (d, d), 0)
    ImageDraw.Draw(mask).polygon(torso, fill=255)
    pattern.putalpha(ImageChops.multiply(pattern.getchannel("A"), mask))
    layer.alpha_composite(pattern)

    # trims, free to leave the torso
    trims = Image.new("RGBA", (d, d), (0, 0, 0, 0))
    tdraw = ImageDraw.Draw(trims)
    if a := present("boho"):
        length = look["fringe_len"]
        for x in np.arange(45.5, 83.5, 3.2):
            strand = [x, _HEM - 1, x + cue_rng.normal(0, 0.8), _HEM + length]
            tdraw.line(_scaled(strand, k), fill=(*dark, a), width=max(1, round(2 * k)))
    if a := present("edgy"):
        y = top + 13
        for x in np.linspace(48, 80, 6):
            stud = _scaled([x, y - 3.5, x + 3.5, y, x, y + 3.5, x - 3.5, y], k)
            tdraw.polygon(stud, fill=(205, 205, 215, a), outline=(40, 40, 40, a))
    if a := present("glam"):
        for _ in range(cue_rng.integers(5, 9)):
            x, y = cue_rng.uniform(42, 86), cue_rng.uniform(top + 4, _HEM - 4)
            gold = cue_rng.random() < 0.5
            colour = (255, 215, 60, a) if gold else (255, 255, 255, a)
            _star(tdraw, x, y, cue_rng.uniform(4.0, 6.0), k, colour)
    if a := present("androgynous"):
        colour = (*_jitter(look["tie"], cue_rng), a)
        y = top + 4
        tdraw.polygon(_scaled([61, y, 67, y, 66, y + 6, 62, y + 6], k), fill=colour)
        blade = [62, y + 6, 66, y + 6, 69.5, y + 42, 64, y + 49, 58.5, y + 42]
        tdraw.polygon(_scaled(blade, k), fill=colour, outline=(20, 20, 20, a))
    if a := present("classic"):
        y = top - 3
        for c in ([55, y, 64, y + 9, 52, y + 14], [73, y, 64, y + 9, 76, y + 14]):
            tdraw.polygon(_scaled(c, k), fill=(250, 250, 245, a), outline=(90, 90, 90, a))
    layer.alpha_composite(trims)

    # nuisance: pose (scale, rotation, shift); the affine maps output to input pixels
    scale = rng.uniform(0.78, 1.02)
    angle = math.radians(rng.uniform(-12, 12))
    tx, ty = rng.uniform(-8, 8, 2) * k
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    cx = cy = d / 2
    a_, b_, d_, e_ = cos, sin, -sin, cos
    c_ = cx - a_ * (cx + tx) - b_ * (cy + ty)
    f_ = cy - d_ * (cx + tx) - e_ * (cy + ty)
    layer = layer.transform(
        (d, d), Image.Transform.AFFINE, (a_, b_, c_, d_, e_, f_), Image.Resampling.BILINEAR
    )
    img = _background(d, rng)
    img.paste(layer, mask=layer.getchannel("A"))
    if rng.random() < occlusion:  # an occluding prop: tag, hand, another product
        w, h = rng.uniform(0.2, 0.45, 2) * d
        x0, y0 = rng.uniform(-0.1, 0.9, 2) * d
        colour = _rgb(rng.uniform(), rng.uniform(0, 0.7), rng.uniform(0.2, 1.0))
        box = [x0, y0, x0 + w, y0 + h]
        if rng.random() < 0.5:
            ImageDraw.Draw(img).ellipse(box, fill=colour)
        else:
            ImageDraw.Draw(img).rectangle(box, fill=colour)
    img = img.reduce(2)

    arr = np.asarray(img, dtype=np.float32)
    gain = rng.uniform(0.85, 1.15) * rng.uniform(0.96, 1.04, 3)
    arr = (arr - 128.0) * rng.uniform(0.85, 1.15) + 128.0  # contrast
    arr = arr * gain + rng.normal(0, rng.uniform(0, 5), arr.shape)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


# --------------------------------------------------------------------------- catalog


def _render_job(job: tuple) -> None:
    (item, product, sleeve, arch, size, fmt, seed, path, cue_dropout, occlusion) = job
    img = draw_item(
        sleeve,
        arch,
        image_size=size,
        product_rng=np.random.default_rng([seed, 2, product]),
        image_rng=np.random.default_rng([seed, 1, item]),
        cue_dropout=cue_dropout,
        occlusion=occlusion,
    )
    if fmt == "jpeg":
        img.save(path, "JPEG", quality=JPEG_QUALITY)
    else:
        img.save(path, "PNG")


def _check_share(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_int(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def generate_catalog(
    out_dir: str | os.PathLike,
    *,
    n_items: int = 4000,
    image_size: int = 64,
    fmt: str = "jpeg",
    seed: int = 0,
    imbalance: float = 1.0,
    label_noise: float = 0.03,
    images_per_product: tuple[int, int] = (1, 3),
    archetype_priors: Mapping[str, float] | None = None,
    sleevetype_priors: Mapping[str, float] | None = None,
    unlabelled: float = 0.03,
    cue_dropout: float = 0.1,
    occlusion: float = 0.15,
    workers: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Write a synthetic catalog folder and return its table.

    Writes out_dir/catalog.csv (columns item_id, product_id, image, archetype, sleevetype;
    archetype cells `|`-separated, empty = unlabelled) and out_dir/images/NNNNNN.{jpg,png}.
    n_items images in products of images_per_product = (min, max) images (uniform; the last
    product may be cut short). images/ and any catalog.{csv,parquet,jsonl} already in out_dir
    are replaced. workers: drawing processes, 0 = one per usable core, 1 = in this process;
    the output does not depend on it. Same arguments -> byte-identical files.
    """
    n_items = _check_int("n_items", n_items, 1)
    image_size = _check_int("image_size", image_size, 16)
    seed = _check_int("seed", seed, 0)
    workers = _check_int("workers", workers, 0)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
    label_noise = _check_share("label_noise", label_noise)
    unlabelled = _check_share("unlabelled", unlabelled)
    cue_dropout = _check_share("cue_dropout", cue_dropout)
    occlusion = _check_share("occlusion", occlusion)
    if isinstance(imbalance, bool) or not isinstance(imbalance, int | float):
        raise ValueError(f"imbalance must be a number >= 0, got {imbalance!r}")
    try:
        lo, hi = (_check_int("images_per_product", v, 1) for v in images_per_product)
    except (TypeError, ValueError):
        raise ValueError(
            f"images_per_product must be two ints 1 <= min <= max, got {images_per_product!r}"
        ) from None
    if lo > hi:
        raise ValueError(f"images_per_product: min {lo} > max {hi}")
    arch_priors = ARCHETYPE_PRIORS if archetype_priors is None else archetype_priors
    sleeve_priors = SLEEVETYPE_PRIORS if sleevetype_priors is None else sleevetype_priors
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")

    rng = np.random.default_rng([seed, 0])
    sizes = rng.integers(lo, hi + 1, size=n_items)
    n_products = int(np.searchsorted(np.cumsum(sizes), n_items) + 1)
    product_of = np.repeat(np.arange(n_products), sizes[:n_products])[:n_items]

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        return sample_labels(
            n,
            rng,
            archetype_priors=arch_priors,
            sleevetype_priors=sleeve_priors,
            imbalance=imbalance,
        )

    true_arch, true_sleeve = draw(n_products)
    noise_arch, noise_sleeve = draw(n_products)
    flip_arch, flip_sleeve = rng.random((2, n_products)) < label_noise
    blank_arch, blank_sleeve = rng.random((2, n_products)) < unlabelled
    rec_arch = np.where(flip_arch[:, None], noise_arch, true_arch)
    rec_sleeve = np.where(flip_sleeve, noise_sleeve, true_sleeve)
    arch_cells = [
        "" if blank else "|".join(np.asarray(ARCHETYPE_LABELS)[row])
        for row, blank in zip(rec_arch, blank_arch, strict=True)
    ]
    sleeve_cells = [
        "" if blank else SLEEVETYPE_LABELS[i]
        for i, blank in zip(rec_sleeve, blank_sleeve, strict=True)
    ]

    width = max(6, len(str(n_items - 1)))
    ext = FORMATS[fmt]
    images = [f"images/{i:0{width}d}.{ext}" for i in range(n_items)]
    table = pd.DataFrame(
        {
            "item_id": [f"i{i:0{width}d}" for i in range(n_items)],
            "product_id": [f"p{p:0{width}d}" for p in product_of],
            "image": images,
            "archetype": [arch_cells[p] for p in product_of],
            "sleevetype": [sleeve_cells[p] for p in product_of],
        }
    )

    out.mkdir(parents=True, exist_ok=True)
    if (out / "images").exists():  # the folder is ours: no stale images from a previous run
        shutil.rmtree(out / "images")
    for name in ("catalog.csv", "catalog.parquet", "catalog.jsonl"):
        (out / name).unlink(missing_ok=True)
    (out / "images").mkdir()

    jobs = [
        (
            i,
            int(p),
            SLEEVETYPE_LABELS[true_sleeve[p]],
            tuple(np.asarray(ARCHETYPE_LABELS)[true_arch[p]]),
            image_size,
            fmt,
            seed,
            str(out / images[i]),
            cue_dropout,
            occlusion,
        )
        for i, p in enumerate(product_of)
    ]
    n_workers = min(workers or _usable_cpus(), max(1, n_items // 64))
    bar = tqdm(total=n_items, desc="synthesize", unit="img", disable=not progress)
    with bar:
        if n_workers == 1:
            for job in jobs:
                _render_job(job)
                bar.update()
        else:
            with ProcessPoolExecutor(n_workers) as pool:
                for _ in pool.map(_render_job, jobs, chunksize=32):
                    bar.update()

    table.to_csv(out / "catalog.csv", index=False, lineterminator="\n")
    return table
