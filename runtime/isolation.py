"""Is there one ship-sized object in calm water at a CAM peak? A check on the image, not the model.

Measured on real PlanetScope scenes, nine false alarms in ten sit on city
blocks, container terminals, piers and breakwaters: texture the synthetic
training data cannot cover, and that a 96-224 px tile cannot tell from a
deck. The surroundings can. A ship at sea is a compact object whose
edges stand out from calm water; a city, a quay or a breakwater is texture
that runs on for far longer than any ship. So, around each peak:

1. **Object pixels**: the local standard deviation (5 x 5 px, RMS over the
   colour channels) is above ``contrast`` times the scene's noise floor (a
   low percentile of the same statistic over the scene: calm water).
2. **The object**: the connected group of object pixels (dilated one pixel,
   so a hull's two edges join) nearest the peak, within ``snap_m``.
3. **Verdict**: ``ISOLATED`` when that object is between ``min_length_m``
   and ``max_length_m`` long and does not run out of the window around the
   peak; ``ATTACHED`` when it is longer (land, a quay, a breakwater, or a ship
   moored against one, which this check gives up on); ``EMPTY`` when no
   object is near (a peak on open water).

The cost is one small window per detection, so it is independent of the
scene's size. Pure numpy.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import numpy as np

from shipcam.runtime.boxes import Box, label_components
from shipcam.runtime.detections import Detection, DetectionRule, max3x3

__all__ = ["Isolation", "Verdict", "isolation_at", "local_std", "noise_floor", "split_isolated"]

_R = 2  # local statistics over (2r + 1)^2 = 5 x 5 pixels: about one hull width at 3 m/px
_PAD = _R + 1  # an edge lights up the r pixels beyond it, and the dilation one more


class Isolation(str, enum.Enum):
    ISOLATED = "isolated"
    ATTACHED = "attached"
    EMPTY = "empty"


class Verdict(NamedTuple):
    kind: Isolation
    box: tuple[int, int, int, int] | None = None  # the object, pixels, end-exclusive (ISOLATED only)
    centre: tuple[float, float] | None = None  # (x, y) of its strongest-contrast pixels (ISOLATED only)


def _box_sum(a: np.ndarray, r: int) -> np.ndarray:
    """Sums over (2r+1)^2 windows, edge pixels repeated (an integral image: O(1) per pixel)."""
    p = np.pad(np.asarray(a, np.float64), ((r + 1, r), (r + 1, r)), mode="edge")
    c = p.cumsum(0).cumsum(1)
    k = 2 * r + 1
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def local_std(g: np.ndarray, r: int = _R) -> np.ndarray:
    """Standard deviation in the (2r+1)^2 window around each pixel (population, edges repeated).

    For an (H, W, C) image, the RMS over channels of each channel's: a red hull
    on green water has colour contrast even where its brightness matches.
    """
    g = np.asarray(g, np.float64)
    if g.ndim == 3:
        return np.sqrt(np.mean([np.square(local_std(g[..., c], r)) for c in range(g.shape[-1])], axis=0)).astype(np.float32)
    n = (2 * r + 1) ** 2
    mean = _box_sum(g, r) / n
    var = _box_sum(np.square(g), r) / n - mean * mean
    return np.sqrt(np.maximum(var, 0.0)).astype(np.float32)


def noise_floor(g: np.ndarray, blocks: int = 8, size: int = 128, percentile: float = 10.0) -> float:
    """The local standard deviation of the calmest tenth of the scene (water's sensor noise).

    Sampled on a ``blocks x blocks`` grid of ``size`` px windows, so it costs
    the same on a 20,000 px scene as on a small one.
    """
    H, W = g.shape[:2]
    vals = [
        local_std(g[y : y + size, x : x + size]).ravel()
        for y in np.linspace(0, max(0, H - size), blocks).astype(int)
        for x in np.linspace(0, max(0, W - size), blocks).astype(int)
    ]
    return float(np.percentile(np.concatenate(vals), percentile))


def _extents(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per label 0..n: the (row, col) minimum and maximum of its pixels (labels absent: min > max)."""
    lo, hi = np.empty((n + 1, 2), np.int64), np.empty((n + 1, 2), np.int64)
    for axis in (0, 1):  # a (position x label) presence table: first and last position per label
        size = labels.shape[axis]
        pos = np.broadcast_to(np.arange(size).reshape((-1, 1) if axis == 0 else (1, -1)), labels.shape)
        seen = np.zeros((size, n + 1), bool)
        seen[pos.ravel(), labels.ravel()] = True
        lo[:, axis] = seen.argmax(axis=0)
        hi[:, axis] = size - 1 - seen[::-1].argmax(axis=0)
    return lo, hi


def isolation_at(g: np.ndarray, x: float, y: float, gsd: float, floor: float, *, contrast: float = 4.0, snap_m: float = 60.0, min_length_m: float = 20.0, max_length_m: float = 400.0) -> Verdict:
    """The verdict for a peak at pixel (x, y) of image ``g`` ((H, W) or (H, W, C)) at ``gsd`` m/px (see the module docstring).

    With ``ISOLATED`` come the object's pixel box (x0, y0, x1, y1), end-exclusive,
    and its centre: the mean position of its strongest-contrast pixels (at
    least half its peak contrast), which stays on the hull when a fainter
    wake stretches the box.
    """
    if gsd <= 0:
        raise ValueError(f"gsd must be positive metres/pixel, received {gsd}")
    snap, longest, shortest = snap_m / gsd, max_length_m / gsd, min_length_m / gsd
    half = int(math.ceil(snap + longest / 2)) + 2  # any object within snap of the peak and <= max length fits
    H, W = g.shape[:2]
    cx, cy = min(max(int(round(x)), 0), W - 1), min(max(int(round(y)), 0), H - 1)
    y0, y1, x0, x1 = max(0, cy - half), min(H, cy + half + 1), max(0, cx - half), min(W, cx + half + 1)
    std = local_std(g[y0:y1, x0:x1])
    objects = max3x3(std > contrast * max(floor, 0.5), False)  # one pixel of dilation joins a hull's two edges
    yy, xx = np.ogrid[y0 - cy : y1 - cy, x0 - cx : x1 - cx]
    near = objects & (yy * yy + xx * xx <= snap * snap)
    if not near.any():
        return Verdict(Isolation.EMPTY)
    labels, n = label_components(objects)
    d2 = np.broadcast_to(yy * yy + xx * xx, labels.shape)[near]
    ordered = labels[near][np.argsort(d2, kind="stable")]
    _, first = np.unique(ordered, return_index=True)
    lo, hi = _extents(labels, n)
    h, w = labels.shape
    for i in ordered[np.sort(first)]:  # objects nearest first; specks below min length are skipped
        (ya, xa), (yb, xb) = lo[i], hi[i]
        length = max(yb - ya, xb - xa) + 1 - 2 * _PAD
        # Running out of the window at a side that is not the image's edge: longer than the window allows.
        runs_out = (ya == 0 and y0 > 0) or (xa == 0 and x0 > 0) or (yb == h - 1 and y1 < H) or (xb == w - 1 and x1 < W)
        if runs_out or length > longest:
            return Verdict(Isolation.ATTACHED)
        if length >= shortest:
            rows, cols = np.nonzero(labels == i)
            c = std[rows, cols]
            strong = c >= 0.5 * c.max()
            box = (int(x0 + xa + _PAD), int(y0 + ya + _PAD), int(x0 + xb + 1 - _PAD), int(y0 + yb + 1 - _PAD))
            return Verdict(Isolation.ISOLATED, box, (float(x0 + cols[strong].mean() + 0.5), float(y0 + rows[strong].mean() + 0.5)))
    return Verdict(Isolation.EMPTY)


def split_isolated(image: np.ndarray, detections: list[Detection], gsd: float, rule: DetectionRule) -> tuple[list[Detection], list[Detection]]:
    """(kept, rejected): detections in ``image`` (pixels at ``gsd``) on an isolated object, and the others.

    A kept detection's point moves to its object's centre (a CAM peak is only
    as sharp as the feature stride) and its box grows to hold the object.
    Two peaks on one object keep the stronger.
    """
    if not detections:
        return [], []
    g = np.asarray(image)  # windows are converted one at a time: no float copy of the whole scene
    floor = noise_floor(g)
    kept, rejected, taken = [], [], set()
    for d in detections:  # strongest first
        v = isolation_at(g, d.x, d.y, gsd, floor, contrast=rule.contrast, snap_m=rule.snap_m, min_length_m=rule.min_length_m, max_length_m=rule.max_length_m)
        if v.kind is not Isolation.ISOLATED or v.box in taken:
            rejected.append(d)
            continue
        taken.add(v.box)
        x0, y0, x1, y1 = v.box
        b = d.box
        box = Box(min(b.x0, x0), min(b.y0, y0), max(b.x1, x1), max(b.y1, y1), b.score)
        kept.append(Detection(*v.centre, box, d.score))
    return kept, rejected
