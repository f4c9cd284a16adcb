"""Training chips cut from labelled real scenes: the ships, their water, and everything else.

A labelled scene (``labels/README.md``: a point and a length per ship, areas
nobody could decide marked ``ignore``) gives three kinds of chip, each drawn
at a ground sample distance picked from a range, at any rotation angle:

- **positives**: a window around each ship, its centre moved by up to a
  quarter of the window from the ship;
- **pasted positives**: a ship cut out with an elliptical mask (its axis and
  size estimated from the image) and laid on water from the same scenes,
  its colour shifted from the water it came from to the water it lands on:
  the same hulls seen against other backgrounds;
- **negatives**: windows anywhere that hold no ship and touch no ``ignore``
  area, and **hard negatives**: windows around the places where a model
  scored highest (``mine_chips``).

Chips are written as PNG files in the ``ship/`` and ``no_ship/`` folder
layout (``sources.Layout.FOLDERS``), so the one ``tf.data`` pipeline reads
them, with its flips, turns and colour randomisation on top. Pure numpy.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shipcam.errors import DatasetError
from shipcam.runtime.labels import MIN_RADIUS_M, SceneLabel
from shipcam.runtime.scoring import LabelledScene

__all__ = ["ChipConfig", "rotated_chip", "scene_chips", "mine_chips", "write_chips", "check_labels_fit"]


@dataclass(frozen=True)
class ChipConfig:
    """How many chips a scene gives, and how they are drawn."""

    size: int = 224  # chip side, px
    gsd_range: tuple[float, float] = (1.5, 3.0)  # metres/pixel of the chips, drawn log-uniformly
    per_ship: int = 24  # windows around each labelled ship
    pasted_per_ship: int = 12  # the ship laid on other water
    negatives_per_ship: int = 48  # windows with no ship, per labelled ship of the scene
    offset: float = 0.25  # the ship's centre lies within this share of the window from its middle

    def __post_init__(self) -> None:
        lo, hi = self.gsd_range
        if not 0 < lo <= hi:
            raise ValueError(f"gsd_range must be (min, max) with 0 < min <= max, received {self.gsd_range}")
        if self.size < 32:
            raise ValueError(f"chip size must be >= 32 px, received {self.size}")
        if not 0 <= self.offset < 0.5:
            raise ValueError(f"offset must be in [0, 0.5), received {self.offset}")


def check_labels_fit(scene: LabelledScene, labels_path: str | Path) -> None:
    """Every label of ``scene`` lies inside its image; else a one-line error naming the file, the scene and the
    point."""
    h, w = scene.image.shape[:2]
    for lab in scene.labels:
        if not (0 <= lab.x < w and 0 <= lab.y < h):
            raise DatasetError(
                f"{labels_path}: {scene.path.name} ({lab.label} at x={lab.x:g}, y={lab.y:g}) lies outside the {w}x{h} "
                "image"
            )


def _gsd(rng: np.random.Generator, cfg: ChipConfig) -> float:
    lo, hi = cfg.gsd_range
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def rotated_chip(image: np.ndarray, cx: float, cy: float, side: float, angle: float, size: int) -> np.ndarray:
    """The ``side`` x ``side`` px window of ``image`` centred on (cx, cy), turned by ``angle`` radians, as ``size`` x
    ``size`` float32.

    Bilinear sampling; beyond its edges the image is mirrored. A window
    larger than ``size`` is first averaged down by whole pixels, so a
    shrinking chip is antialiased as the runtime's resize is.
    """
    scale = side / size
    k = max(1, int(scale))
    src = image.astype(np.float32, copy=False)
    if k > 1:
        h, w = src.shape[0] // k * k, src.shape[1] // k * k
        src = src[:h, :w].reshape(h // k, k, w // k, k, -1).mean(axis=(1, 3))
        cx, cy, scale = cx / k, cy / k, scale / k
    t = (np.arange(size, dtype=np.float32) + 0.5 - size / 2) * np.float32(scale)
    v, u = np.meshgrid(t, t, indexing="ij")  # u along x, v along y, before turning
    c, s = math.cos(angle), math.sin(angle)
    x = cx + u * c - v * s - 0.5
    y = cy + u * s + v * c - 0.5
    return _bilinear(src, x, y)


def _mirror(t: np.ndarray, n: int) -> np.ndarray:
    """Coordinates beyond [0, n - 1] reflected back: the scene goes on as its mirror image, not as smeared edge
    pixels."""
    period = 2 * max(n - 1, 1)
    t = np.mod(t, period)
    return np.where(t > n - 1, period - t, t)


def _bilinear(src: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = src.shape[:2]
    x, y = _mirror(x, w), _mirror(y, h)
    x0, y0 = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = src[y0, x0] * (1 - fx) + src[y0, x1] * fx
    bottom = src[y1, x0] * (1 - fx) + src[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _ships(scene: LabelledScene) -> list[SceneLabel]:
    return [lab for lab in scene.labels if lab.label == "ship"]


def _clear_of_labels(scene: LabelledScene, cx: float, cy: float, reach: float) -> bool:
    """No ship and no ``ignore`` area reaches within ``reach`` px of (cx, cy) (a window's half-diagonal)."""
    for lab in scene.labels:
        r = lab.length_m / 2 / scene.gsd if lab.label == "ship" else lab.radius_px(scene.gsd)
        if math.hypot(lab.x - cx, lab.y - cy) < reach + r + MIN_RADIUS_M / scene.gsd / 2:
            return False
    return True


def _window(scene: LabelledScene, gsd: float, size: int) -> float:
    """The side in scene pixels of a ``size`` px chip at ``gsd`` m/px."""
    return size * gsd / scene.gsd


def positive_chips(scene: LabelledScene, cfg: ChipConfig, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for lab in _ships(scene):
        for _ in range(cfg.per_ship):
            g = _gsd(rng, cfg)
            side = _window(scene, g, cfg.size)
            dx, dy = rng.uniform(-cfg.offset, cfg.offset, 2) * side
            out.append(rotated_chip(scene.image, lab.x + dx, lab.y + dy, side, rng.uniform(0, 2 * np.pi), cfg.size))
    return out


def negative_chips(
    scene: LabelledScene,
    n: int,
    cfg: ChipConfig,
    rng: np.random.Generator,
    centres: np.ndarray | None = None,
    jitter: float = 0.0,
) -> list[np.ndarray]:
    """``n`` windows clear of every label: centred anywhere, or near ``centres`` ((K, 2) px, moved by up to ``jitter`` x
    the window).
    """
    h, w = scene.image.shape[:2]
    out, tries = [], 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        g = _gsd(rng, cfg)
        side = _window(scene, g, cfg.size)
        if centres is None:  # the window inside the scene where it fits
            cx, cy = (
                rng.uniform(min(side / 2, w / 2), max(w - side / 2, w / 2)),
                rng.uniform(min(side / 2, h / 2), max(h - side / 2, h / 2)),
            )
        else:
            cx, cy = centres[int(rng.integers(len(centres)))] + rng.uniform(-jitter, jitter, 2) * side
        if not _clear_of_labels(scene, cx, cy, side / math.sqrt(2)):
            continue
        out.append(rotated_chip(scene.image, cx, cy, side, rng.uniform(0, 2 * np.pi), cfg.size))
    return out


# --- copy-paste ----------------------------------------------------------------


@dataclass(frozen=True)
class _Hull:
    """A labelled ship as the image shows it: centre, axis angle (radians) and size in scene pixels."""

    x: float
    y: float
    angle: float
    length: float
    beam: float
    at_sea: bool  # water all around: a ship moored at a quay or pier cannot be cut out with an ellipse


def estimate_hull(scene: LabelledScene, lab: SceneLabel) -> _Hull:
    """The ship's axis and size: the principal axes of the pixels that differ from the water around the label.

    The water is the median colour of the window; a hull's pixels stand
    out from it by more than four times the water's spread (its median
    absolute deviation), and the group of them nearest the label is the
    ship. Its length is clamped to 0.7-1.3 x the labelled one; a wake
    along the axis may lengthen the group but does not turn it.
    """
    px = lab.length_m / scene.gsd
    r = int(max(8, 0.8 * px))
    h, w = scene.image.shape[:2]
    x0, x1, y0, y1 = (
        max(0, int(lab.x) - r),
        min(w, int(lab.x) + r + 1),
        max(0, int(lab.y) - r),
        min(h, int(lab.y) + r + 1),
    )
    win = scene.image[y0:y1, x0:x1].astype(np.float32)
    water = np.median(win.reshape(-1, 3), axis=0)
    dist = np.sqrt(((win - water) ** 2).sum(axis=2))
    spread = max(float(np.median(dist)), 1.0)
    mask = dist > 4 * spread
    from shipcam.runtime.boxes import label_components

    labels, n = label_components(mask)
    fallback = _Hull(lab.x, lab.y, 0.0, px, px * 0.18, False)
    if n == 0:
        return fallback
    yy, xx = np.nonzero(labels)
    d = np.hypot(xx + x0 - lab.x, yy + y0 - lab.y)
    comp = labels == labels[yy[np.argmin(d)], xx[np.argmin(d)]]
    rows, cols = np.nonzero(comp)
    if rows.size < 6:
        return fallback
    pts = np.stack([cols + x0 + 0.5, rows + y0 + 0.5], axis=1).astype(np.float64)
    centre = pts.mean(axis=0)
    vals, vecs = np.linalg.eigh(np.cov((pts - centre).T))
    along = vecs[:, 1]
    length = float(np.clip(math.sqrt(12 * max(vals[1], 1e-6)), 0.7 * px, 1.3 * px))
    beam = float(np.clip(math.sqrt(12 * max(vals[0], 1e-6)), 2.0, 0.35 * length))
    angle = math.atan2(along[1], along[0])
    # Water all around: a ring a few pixels out from the ellipse holds few pixels that stand out.
    ring = (_ellipse_alpha(2 * r + 1, length + 10, beam + 10, angle) > 0) & (
        _ellipse_alpha(2 * r + 1, length + 4, beam + 4, angle) == 0
    )
    ring = ring[r - int(lab.y) + y0 : r - int(lab.y) + y1, r - int(lab.x) + x0 : r - int(lab.x) + x1]
    # anchored ships (shadows, wakes) 0.01-0.2, moored 0.33-0.38
    at_sea = bool(ring.any()) and float(mask[ring].mean()) < 0.25
    return _Hull(float(lab.x), float(lab.y), angle, length, beam, at_sea)


def _ellipse_alpha(size: int, length: float, beam: float, angle: float, feather: float = 1.5) -> np.ndarray:
    """A soft elliptical mask (1 inside, 0 outside, ``feather`` px of ramp) centred in a ``size`` px square."""
    t = np.arange(size, dtype=np.float32) + 0.5 - size / 2
    y, x = np.meshgrid(t, t, indexing="ij")
    c, s = math.cos(angle), math.sin(angle)
    u, v = x * c + y * s, -x * s + y * c
    a, b = length / 2 + 1.0, beam / 2 + 1.0
    d = np.sqrt((u / a) ** 2 + (v / b) ** 2)  # 1 on the ellipse
    return np.clip((1 - d) * min(a, b) / feather + 0.5, 0, 1).astype(np.float32)


def water_centres(scene: LabelledScene, side: float, rng: np.random.Generator, n: int = 200) -> np.ndarray:
    """Up to ``n`` window centres over open water: calm (low local contrast throughout) and clear of every label."""
    from shipcam.runtime.isolation import local_std, noise_floor

    h, w = scene.image.shape[:2]
    floor = max(noise_floor(scene.image, scene.gsd), 0.5)
    out = []
    for _ in range(20 * n):
        if len(out) == n:
            break
        cx, cy = (
            rng.uniform(side / 2, max(side / 2 + 1, w - side / 2)),
            rng.uniform(side / 2, max(side / 2 + 1, h - side / 2)),
        )
        if not _clear_of_labels(scene, cx, cy, side / math.sqrt(2)):
            continue
        y0, x0 = int(max(0, cy - side / 2)), int(max(0, cx - side / 2))
        win = scene.image[y0 : y0 + int(side), x0 : x0 + int(side)]
        if win.size and float(np.percentile(local_std(win), 99)) < 4 * floor:
            out.append((cx, cy))
    return np.array(out, np.float64).reshape(-1, 2)


def pasted_chips(
    donors: list[LabelledScene], hosts: list[LabelledScene], cfg: ChipConfig, rng: np.random.Generator
) -> list[np.ndarray]:
    """Each ship of ``donors`` cut out and laid on calm water of ``hosts``, ``cfg.pasted_per_ship`` times.

    The cutout carries the water right around the hull; its colour is moved
    by the difference between the two waters (the donor's ring around the
    ellipse, the host's spot under it), so no halo outlines the paste.
    """
    hulls = [(s, h) for s in donors for lab in _ships(s) if (h := estimate_hull(s, lab)).at_sea]
    waters = [(s, water_centres(s, _window(s, cfg.gsd_range[1], cfg.size), rng)) for s in hosts]
    waters = [(s, c) for s, c in waters if len(c)]
    if not hulls or not waters:
        return []
    out = []
    for donor, hull in hulls:
        for _ in range(cfg.pasted_per_ship):
            host, centres = waters[int(rng.integers(len(waters)))]
            g = _gsd(rng, cfg)
            side = _window(host, g, cfg.size)
            cx, cy = centres[int(rng.integers(len(centres)))]
            chip = rotated_chip(host.image, cx, cy, side, rng.uniform(0, 2 * np.pi), cfg.size)
            # The ship at the chip's GSD, turned so its axis lies at a random angle.
            k = donor.gsd / g  # chip px per donor px
            length, beam = hull.length * k, hull.beam * k
            p = int(math.ceil(length * 1.25 + 6))
            turn = rng.uniform(0, 2 * np.pi)
            patch = rotated_chip(donor.image, hull.x, hull.y, p / k, turn, p)
            alpha = _ellipse_alpha(p, length, beam, hull.angle - turn)
            ring = (alpha == 0) & (_ellipse_alpha(p, length + 8, beam + 8, hull.angle - turn) > 0)
            oy, ox = (rng.uniform(-cfg.offset, cfg.offset, 2) * cfg.size + cfg.size / 2 - p / 2).astype(int)
            oy, ox = int(np.clip(oy, -p // 3, cfg.size - 2 * p // 3)), int(np.clip(ox, -p // 3, cfg.size - 2 * p // 3))
            _blend(chip, patch, alpha, ring, oy, ox)
            out.append(chip)
    return out


def _blend(chip: np.ndarray, patch: np.ndarray, alpha: np.ndarray, ring: np.ndarray, oy: int, ox: int) -> None:
    """Lay ``patch`` on ``chip`` at (oy, ox) through ``alpha``, its water level (``ring``) matched to the chip's
    there."""
    s, p = chip.shape[0], patch.shape[0]
    cy0, cx0, cy1, cx1 = max(0, oy), max(0, ox), min(s, oy + p), min(s, ox + p)
    if cy1 <= cy0 or cx1 <= cx0:
        return
    sub = (slice(cy0 - oy, cy1 - oy), slice(cx0 - ox, cx1 - ox))
    region = chip[cy0:cy1, cx0:cx1]
    a = alpha[sub][..., None]
    donor_water = patch[ring].mean(axis=0) if ring.any() else patch.mean(axis=(0, 1))
    host_water = region[a[..., 0] > 0].mean(axis=0) if (a > 0).any() else region.mean(axis=(0, 1))
    region[:] = region * (1 - a) + (patch[sub] - donor_water + host_water) * a


# --- assembling ----------------------------------------------------------------


def scene_chips(
    scenes: list[LabelledScene], cfg: ChipConfig, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(positives, negatives) from ``scenes``: windows around ships, ships pasted on their water, and windows with
    none."""
    rng = np.random.default_rng([seed, 7])
    pos, neg = [], []
    for s in scenes:
        pos += positive_chips(s, cfg, rng)
        neg += negative_chips(s, cfg.negatives_per_ship * max(1, len(_ships(s))), cfg, rng)
    pos += pasted_chips(scenes, scenes, cfg, rng)
    return pos, neg


def mine_chips(
    scene: LabelledScene, points: np.ndarray, per_point: int, cfg: ChipConfig, seed: int = 0
) -> list[np.ndarray]:
    """Negatives around ``points`` ((K, 2) px: where a model fired, away from every label), ``per_point`` each."""
    rng = np.random.default_rng([seed, 11])
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if not len(points):
        return []
    return negative_chips(scene, per_point * len(points), cfg, rng, centres=points, jitter=cfg.offset)


def write_chips(
    root: str | Path, positives: list[np.ndarray], negatives: list[np.ndarray], prefix: str = "chip"
) -> Path:
    """Chips as PNG files in ``root/ship`` and ``root/no_ship``, built under ``root.part`` and renamed when complete."""
    from PIL import Image

    root = Path(root)
    if not positives and not negatives:
        raise DatasetError(f"{root}: no chips to write")
    tmp = root.with_name(root.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    for kind, chips in (("ship", positives), ("no_ship", negatives)):
        (tmp / kind).mkdir(parents=True)
        for i, c in enumerate(chips):
            Image.fromarray(np.clip(np.rint(c), 0, 255).astype(np.uint8)).save(tmp / kind / f"{prefix}_{i:05d}.png")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root
