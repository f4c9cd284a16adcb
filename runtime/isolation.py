"""Is there one ship-sized object in calm water at a CAM peak? A check on the image, not the model.

Measured on real PlanetScope scenes, nine false alarms in ten sit on city
blocks, container terminals, piers and breakwaters: texture the synthetic
training data cannot cover, and that a 96-224 px tile cannot tell from a
deck. The surroundings can. A ship at sea is a compact object whose
edges stand out from calm water; a city, a quay or a breakwater is texture
that runs on for far longer than any ship. So, around each peak:

1. **Object pixels**: the local standard deviation (5 x 5 px, RMS over the
   colour channels) is above ``contrast`` times the scene's noise floor (a
   low percentile of the same statistic over the scene: calm water). Images
   finer than 3 m/px are binned towards it first, so 5 px is ~15 m at any GSD.
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

__all__ = ["Isolation", "Verdict", "isolation_at", "local_std", "noise_floor", "split_isolated", "working_bin"]

_R = 2  # local statistics over (2r + 1)^2 = 5 x 5 pixels: about one hull width at 3 m/px
_WORK_GSD = 3.0  # finer images are binned towards this (m/px): the check's scale is metres, and its cost stays put
_PAD = _R + 1  # an edge lights up the r pixels beyond it, and the dilation one more


class Isolation(str, enum.Enum):
    ISOLATED = "isolated"
    ATTACHED = "attached"
    EMPTY = "empty"


class Verdict(NamedTuple):
    kind: Isolation
    box: tuple[int, int, int, int] | None = None  # the object, pixels, end-exclusive (ISOLATED only)
    centre: tuple[float, float] | None = None  # (x, y) of its strongest-contrast pixels (ISOLATED only)


def _window_sums(a: np.ndarray, r: int) -> np.ndarray:
    """Sums over the (2r+1)^2 window around each element of axes 0-1, edges repeated.

    Two separable passes of 2r+1 shifted adds: a cumulative sum would need
    float64 to keep the variance of calm water (a few grey levels) above its
    rounding error, where these sums stay exact in the input's integer type.
    """
    k = 2 * r + 1
    p = np.pad(a, ((r, r), (r, r)) + ((0, 0),) * (a.ndim - 2), mode="edge")
    h, w = a.shape[:2]
    rows = sum(p[i : i + h] for i in range(k))
    return sum(rows[:, j : j + w] for j in range(k))


def _window_var(g: np.ndarray, r: int) -> np.ndarray:
    """Population variance in the (2r+1)^2 window around each element of axes 0-1 (any trailing axes), float32."""
    n = (2 * r + 1) ** 2
    if g.dtype.kind in "ui":  # exact integer sums: int32 while n * sum(g^2) fits (uint8 always does)
        big = g.dtype == np.uint32 or (g.dtype != np.uint8 and n * n * float(g.max()) ** 2 >= 2**31)
        a = g.astype(np.int64 if big else np.int32)
        s1, s2 = _window_sums(a, r), _window_sums(a * a, r)
        return (n * s2 - s1 * s1).astype(np.float32) / np.float32(n * n)
    # Centred on the mean first, so float32 keeps calm water's small variance next to a bright mean.
    a = g.astype(np.float32) - np.asarray(g.mean(axis=(0, 1)), np.float32)
    mean = _window_sums(a, r) / np.float32(n)
    return np.maximum(_window_sums(a * a, r) / np.float32(n) - mean * mean, np.float32(0.0))


def local_std(g: np.ndarray, r: int = _R) -> np.ndarray:
    """Standard deviation in the (2r+1)^2 window around each pixel (population, edges repeated).

    For an (H, W, C) image, the RMS over channels of each channel's: a red hull
    on green water has colour contrast even where its brightness matches.
    """
    return np.sqrt(_channel_mean(_window_var(np.asarray(g), r), np.ndim(g)))


def _channel_mean(var: np.ndarray, ndim: int) -> np.ndarray:
    """Mean over the colour axis of an (H, W, ..., C) array when the image had one (ndim 3)."""
    if ndim != 3:
        return var
    total = var[..., 0].copy()
    for c in range(1, var.shape[-1]):  # channel by channel: a reduction over a short last axis is slow
        total += var[..., c]
    return total / np.float32(var.shape[-1])


def working_bin(gsd: float) -> int:
    """The k of the k x k pixel binning that brings ``gsd`` (m/px) to about 3 m/px (1 when it is coarser)."""
    if not gsd > 0:
        raise ValueError(f"gsd must be positive metres/pixel, received {gsd}")
    return max(1, int(_WORK_GSD / gsd + 1e-6))


def _binned(g: np.ndarray, k: int) -> np.ndarray:
    """Sums over k x k pixel blocks (a ragged right/bottom edge dropped): integers stay integers, exactly."""
    if k == 1:
        return g
    h, w = g.shape[0] // k * k, g.shape[1] // k * k
    dtype = (np.uint16 if k * k * 255 < 2**16 else np.uint32) if g.dtype == np.uint8 else np.float32
    total = g[0:h:k, 0:w:k].astype(dtype)
    for i, j in np.ndindex(k, k):
        if i or j:
            total += g[i:h:k, j:w:k]
    return total


def _binned_std(g: np.ndarray, k: int) -> np.ndarray:
    """``local_std`` of the k x k block means of ``g``."""
    std = local_std(_binned(g, k))
    return std / np.float32(k * k) if k > 1 else std


def noise_floor(g: np.ndarray, gsd: float, blocks: int = 8, size: int = 128, percentile: float = 10.0) -> float:
    """The local standard deviation of the calmest tenth of the scene (water's sensor noise).

    Sampled on a ``blocks x blocks`` grid of ``size`` px windows, so it costs
    the same on a 20,000 px scene as on a small one; measured on pixels binned
    as ``isolation_at`` bins them at ``gsd`` (binning averages the noise down).
    """
    g = g if hasattr(g, "shape") else np.asarray(g)  # an array, or a windowed scene read block by block
    H, W = g.shape[:2]
    k = working_bin(gsd)
    corners = [(y, x) for y in np.linspace(0, max(0, H - size), blocks).astype(int) for x in np.linspace(0, max(0, W - size), blocks).astype(int)]
    stds = []
    for i in range(0, len(corners), 8):  # 8 blocks per pass: vectorised, with temporaries of a few MB
        stack = np.stack([_binned(g[y : y + size, x : x + size], k) for y, x in corners[i : i + 8]], axis=2)  # each padded at its own edges
        stds.append(_channel_mean(_window_var(stack, _R), g.ndim).ravel())
    return float(np.sqrt(np.percentile(np.concatenate(stds), percentile))) / (k * k)


def isolation_at(g: np.ndarray, x: float, y: float, gsd: float, floor: float, *, contrast: float = 4.0, snap_m: float = 60.0, min_length_m: float = 20.0, max_length_m: float = 400.0) -> Verdict:
    """The verdict for a peak at pixel (x, y) of image ``g`` ((H, W) or (H, W, C)) at ``gsd`` m/px (see the module docstring).

    With ``ISOLATED`` come the object's pixel box (x0, y0, x1, y1), end-exclusive,
    and its centre: the mean position of its strongest-contrast pixels (at
    least half its peak contrast), which stays on the hull when a fainter
    wake stretches the box.
    """
    k = working_bin(gsd)
    snap, longest, shortest = snap_m / gsd / k, max_length_m / gsd / k, min_length_m / gsd / k  # in binned pixels
    half = k * (int(math.ceil(snap + longest / 2)) + 2)  # any object within snap of the peak and <= max length fits
    H, W = g.shape[:2]
    cx, cy = min(max(int(round(x)), 0), W - 1), min(max(int(round(y)), 0), H - 1)
    y0, y1, x0, x1 = max(0, cy - half), min(H, cy + half + 1), max(0, cx - half), min(W, cx + half + 1)
    std = _binned_std(g[y0:y1, x0:x1], k)
    h, w = std.shape
    y1, x1 = y0 + h * k, x0 + w * k  # binning drops a ragged edge
    objects = max3x3(std > contrast * max(floor, 0.5 / k), False)  # one pixel of dilation joins a hull's two edges
    yy, xx = np.ogrid[: h, : w]
    yy, xx = yy - (cy - y0) / k, xx - (cx - x0) / k
    near = objects & (yy * yy + xx * xx <= snap * snap)
    if not near.any():
        return Verdict(Isolation.EMPTY)
    labels, _ = label_components(objects)
    d2 = np.broadcast_to(yy * yy + xx * xx, labels.shape)[near]
    ordered = labels[near][np.argsort(d2, kind="stable")]
    _, first = np.unique(ordered, return_index=True)
    for i in ordered[np.sort(first)]:  # objects nearest first; specks below min length are skipped
        rows, cols = np.nonzero(labels == i)
        ya, yb, xa, xb = rows.min(), rows.max(), cols.min(), cols.max()
        length = max(yb - ya, xb - xa) + 1 - 2 * _PAD
        # Running out of the window at a side that is not the image's edge: longer than the window allows.
        runs_out = (ya == 0 and y0 > 0) or (xa == 0 and x0 > 0) or (yb == h - 1 and y1 < H) or (xb == w - 1 and x1 < W)
        if runs_out or length > longest:
            return Verdict(Isolation.ATTACHED)
        if length >= shortest:
            c = std[rows, cols]
            strong = c >= 0.5 * c.max()
            box = (int(x0 + k * (xa + _PAD)), int(y0 + k * (ya + _PAD)), int(x0 + k * (xb + 1 - _PAD)), int(y0 + k * (yb + 1 - _PAD)))
            return Verdict(Isolation.ISOLATED, box, (float(x0 + k * (cols[strong].mean() + 0.5)), float(y0 + k * (rows[strong].mean() + 0.5))))
    return Verdict(Isolation.EMPTY)


def split_isolated(image: np.ndarray, detections: list[Detection], gsd: float, rule: DetectionRule) -> tuple[list[Detection], list[Detection]]:
    """(kept, rejected): detections in ``image`` (pixels at ``gsd``) on an isolated object, and the others.

    A kept detection's point moves to its object's centre (a CAM peak is only
    as sharp as the feature stride) and its box grows to hold the object.
    Two peaks on one object keep the stronger.
    """
    if not detections:
        return [], []
    g = image if hasattr(image, "shape") else np.asarray(image)  # arrays or windowed scenes: windows are read one at a time
    floor = noise_floor(g, gsd)
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
