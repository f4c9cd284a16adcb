"""Is there one ship-sized object standing out from the water at a CAM peak? A check on the image, not the model.

On real scenes most of a classifier's false alarms sit on city blocks,
container terminals, piers and breakwaters: texture that runs on for far
longer than any ship. A ship at sea is a compact object whose edges stand
out from the water. So, around each peak:

1. **Object pixels**: the local standard deviation (5 x 5 px, RMS over the
   colour channels) is above ``CONTRAST`` times the scene's noise floor (the
   calmest tenth of the same statistic over the scene: calm water). Images
   finer than 3 m/px are binned towards it first, so 5 px is ~15 m at any GSD.
2. **The object**: the connected group of object pixels (dilated one pixel,
   so a hull's two edges join) nearest the peak, within ``SNAP_M``.
3. **Verdict**: ``ISOLATED`` when that object is between ``MIN_SHIP_M`` and
   the rule's ``max_length_m`` long and does not run out of the window around
   the peak; ``ATTACHED`` when it is longer (land, a quay, a breakwater);
   ``EMPTY`` when no object is near (a peak on open water).
4. **A second look at long objects**: a hull trailing a wake is a long object
   whose strong-contrast part is ship-sized. That core (``FADE`` of the
   object's strongest contrast or more) is judged alone when little else of
   the object is as strong, here and in a window three times as wide (a
   pier's faint deck may lead to a bright shore).

It cannot tell a ship moored against a quay as bright as itself from the
quay, and rough water (whitecaps, swell) can join a hull to its surroundings,
so it only vetoes detections the network is unsure of (``TRUST_MARGIN``);
``DetectionRule.isolation`` turns it off. The cost is one small window per
detection, independent of the scene's size. Pure numpy.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import numpy as np

from shipcam.runtime.boxes import Box, label_components
from shipcam.runtime.detections import MIN_SHIP_M, Detection, DetectionRule
from shipcam.runtime.maths import logit, max3x3

__all__ = [
    "Isolation",
    "Verdict",
    "isolation_at",
    "local_std",
    "noise_floor",
    "split_isolated",
    "working_bin",
    "CONTRAST",
    "SNAP_M",
    "FADE",
]

_R = 2  # local statistics over (2r + 1)^2 = 5 x 5 pixels: about one hull width at 3 m/px
_WORK_GSD = 3.0  # finer images are binned towards this (m/px): the check's scale is metres, and its cost stays put
_PAD = _R + 1  # an edge lights up the r pixels beyond it, and the dilation one more
# A window calmer than this (variance, grey levels^2) carries no sensor noise: no-data fill, a clipped
# cloud or glint. One 8-bit pixel one level off in a flat 5 x 5 window gives 0.038 in its channel, 0.013
# over three; float32 rounding on flat float images stays under 0.003. Left out of the noise floor: a black
# no-data margin over a tenth of a scene would otherwise put the floor at zero and join the sea into one object.
_FLAT_VAR = 0.01
CONTRAST = 4.0  # object pixels: local std above this many times the noise floor
SNAP_M = 60.0  # how far from the peak the object may lie: a CAM peak is a cell or two off at stride 32
# a too-long object's core of at least this share of its strongest contrast is judged alone (a hull and its wake)
FADE = 0.5
MOSTLY_CORE = 0.25  # "little else is as strong": strong pixels outside the core, at most this share of those inside
# A detection more than this many logits over the threshold is kept where the check finds no isolated
# object: the check vetoes what the network is unsure of, not hulls it is sure of that rough water or a
# long wake joins to their surroundings. On held-out real scenes the false alarms it removed scored up to
# 3.8 logits over the threshold, open-sea ships it dropped 1.9-5.3. Leave-one-scene-out models, real ships
# and open-sea ships found (false alarms/Mpx): 3 logits 15/18 (0.35), 26/32 (0.08); 2 logits 17/18 (1.06),
# 29/32 (0.08); 1 logit 17/18 (2.00), 30/32 (0.17) (docs/decisions/026-the-rule-that-remains.md).
TRUST_MARGIN = 2.0


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
    Flat windows are left out: a scene's no-data margin or a clipped cloud is
    exactly flat, and a tenth of it would put the floor at zero, turning the
    water's own noise into objects everywhere.
    """
    g = g if hasattr(g, "shape") else np.asarray(g)  # an array, or a windowed scene read block by block
    H, W = g.shape[:2]
    k = working_bin(gsd)
    corners = [
        (y, x)
        for y in np.linspace(0, max(0, H - size), blocks).astype(int)
        for x in np.linspace(0, max(0, W - size), blocks).astype(int)
    ]
    stds = []
    for i in range(0, len(corners), 8):  # 8 blocks per pass: vectorised, with temporaries of a few MB
        # each padded at its own edges
        stack = np.stack([_binned(g[y : y + size, x : x + size], k) for y, x in corners[i : i + 8]], axis=2)
        var = _channel_mean(_window_var(stack, _R), g.ndim).ravel()
        stds.append(var[var > _FLAT_VAR])  # in the binned sums' units, where one level off is still over it
    var = np.concatenate(stds)
    return float(np.sqrt(np.percentile(var, percentile))) / (k * k) if var.size else 0.0


def isolation_at(
    g: np.ndarray, x: float, y: float, gsd: float, floor: float, max_length_m: float = DetectionRule().max_length_m
) -> Verdict:
    """The verdict for a peak at pixel (x, y) of image ``g`` ((H, W) or (H, W, C)) at ``gsd`` m/px (see the module
    docstring).

    With ``ISOLATED`` come the object's pixel box (x0, y0, x1, y1), end-exclusive,
    and its centre: the mean position of its strongest-contrast pixels (at
    least half its peak contrast), which stays on the hull when a fainter
    wake stretches the box.
    """
    k = working_bin(gsd)
    snap, longest, shortest = SNAP_M / gsd / k, max_length_m / gsd / k, MIN_SHIP_M / gsd / k  # in binned pixels
    half = int(math.ceil(snap + longest / 2)) + 2  # any object within snap of the peak and <= max length fits
    noise = max(floor, 0.5 / k)  # calm water's noise, binned, never under half a grey level
    w = _Window(g, x, y, k, half, CONTRAST * noise, snap)
    return _judge(w, g, x, y, shortest, longest)


def _judge(w: "_Window", g, x: float, y: float, shortest: float, longest: float) -> Verdict:
    """The verdict on the objects of window ``w``, nearest the peak first (lengths in binned pixels); specks are passed
    over.
    """
    if not w.near.any():
        return Verdict(Isolation.EMPTY)
    labels, _ = label_components(w.objects)
    d2 = w.d2[w.near]
    ordered = labels[w.near][np.argsort(d2, kind="stable")]
    _, first = np.unique(ordered, return_index=True)
    for i in ordered[np.sort(first)]:  # objects nearest first; specks below the shortest ship are skipped
        whole = obj = labels == i
        kind = w.extent(obj, shortest, longest)
        if kind is Isolation.ATTACHED:
            obj, kind, strongest = w.faded_core(whole, shortest, longest)
            if kind is Isolation.ISOLATED and w.runs_out(whole):  # what lies beyond the window?
                wide = _Window(g, x, y, w.k, 3 * w.half, w.level, w.snap)
                kind = wide.fades_out(w.to(wide, obj), FADE * strongest)
        if kind is Isolation.ATTACHED:
            return Verdict(Isolation.ATTACHED)
        if kind is Isolation.ISOLATED:
            return w.verdict(obj)
    return Verdict(Isolation.EMPTY)


class _Window:
    """The binned local-std statistics of a square window around a peak, and the tests on its objects."""

    def __init__(self, g, x: float, y: float, k: int, half: int, level: float, snap: float):
        self.half, self.level, self.snap = half, level, snap
        self.pad = _PAD  # how far object pixels reach beyond the object
        H, W = g.shape[:2]
        cx, cy = min(max(int(round(x)), 0), W - 1), min(max(int(round(y)), 0), H - 1)
        r = k * half
        self.k, self.y0, self.x0 = k, max(0, cy - r), max(0, cx - r)
        self.std = _binned_std(g[self.y0 : min(H, cy + r + 1), self.x0 : min(W, cx + r + 1)], k)
        h, w = self.std.shape
        y1, x1 = self.y0 + h * k, self.x0 + w * k  # binning drops a ragged edge
        self.edges = (self.y0 > 0, self.x0 > 0, y1 < H, x1 < W)  # window sides that are not the image's edge
        self.objects = self.grow(self.std > level)
        yy, xx = np.ogrid[:h, :w]
        yy, xx = yy - (cy - self.y0) / k, xx - (cx - self.x0) / k
        self.d2 = np.broadcast_to(yy * yy + xx * xx, (h, w))
        self.near = self.objects & (self.d2 <= snap * snap)

    @staticmethod
    def grow(mask: np.ndarray) -> np.ndarray:
        """One pixel of dilation joins a hull's two edges."""
        return max3x3(mask, False)

    def runs_out(self, obj: np.ndarray) -> bool:
        """Does ``obj`` touch a window side that is not the image's edge (it is longer than the window allows)?"""
        top, left, bottom, right = self.edges
        return bool(
            (top and obj[0].any())
            or (left and obj[:, 0].any())
            or (bottom and obj[-1].any())
            or (right and obj[:, -1].any())
        )

    def extent(self, obj: np.ndarray, shortest: float, longest: float) -> Isolation:
        rows, cols = np.nonzero(obj)
        length = max(np.ptp(rows), np.ptp(cols)) + 1 - 2 * self.pad
        if self.runs_out(obj) or length > longest:
            return Isolation.ATTACHED
        return Isolation.ISOLATED if length >= shortest else Isolation.EMPTY

    def faded_core(self, obj: np.ndarray, shortest: float, longest: float) -> tuple[np.ndarray, Isolation, float]:
        """The part of ``obj`` of at least ``FADE`` x its strongest contrast near the peak, when that is one ship-sized
        core.

        Returns (core or ``obj``, verdict, that strongest contrast).
        """
        strongest = float(self.std[obj & self.near].max())
        strong = obj & (self.std >= FADE * strongest)
        core = self.component_at(strong & self.near, strong)
        if (
            core is None
            or self.extent(core, shortest, longest) is not Isolation.ISOLATED
            or not self.mostly_core(strong, core)
        ):
            return obj, Isolation.ATTACHED, strongest
        return core, Isolation.ISOLATED, strongest

    @staticmethod
    def mostly_core(strong: np.ndarray, core: np.ndarray) -> bool:
        """Few strong pixels outside the core: a wake or a dull quay, not a city, a terminal or a breakwater."""
        return int((strong & ~core).sum()) <= MOSTLY_CORE * int((strong & core).sum())

    def component_at(self, seed: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | None:
        """The connected part of ``mask`` (default: the object pixels), one pixel dilated, holding most ``seed``
        pixels."""
        mask = self.objects if mask is None else mask
        labels, _ = label_components(self.grow(mask))
        ids = labels[seed & mask]
        ids = ids[ids > 0]
        return None if ids.size == 0 else labels == np.bincount(ids).argmax()

    def fades_out(self, core: np.ndarray, level: float) -> Isolation:
        """In this (wider) window, is the object holding ``core`` faint, ``level`` contrast or less, outside it?"""
        obj = self.component_at(core)
        if obj is None:
            return Isolation.ATTACHED
        strong = obj & (self.std >= level)
        core = self.component_at(core, strong)
        return (
            Isolation.ISOLATED
            if core is not None and not self.runs_out(strong) and self.mostly_core(strong, core)
            else Isolation.ATTACHED
        )

    def to(self, other: "_Window", mask: np.ndarray) -> np.ndarray:
        """``mask`` (this window's pixels) placed in the other window's pixel grid."""
        out = np.zeros(other.std.shape, bool)
        rows, cols = np.nonzero(mask)
        dy, dx = (self.y0 - other.y0) // self.k, (self.x0 - other.x0) // self.k
        rows, cols = rows + dy, cols + dx
        ok = (rows >= 0) & (rows < out.shape[0]) & (cols >= 0) & (cols < out.shape[1])
        out[rows[ok], cols[ok]] = True
        return out

    def verdict(self, obj: np.ndarray) -> Verdict:
        rows, cols = np.nonzero(obj)
        ya, yb, xa, xb = rows.min(), rows.max(), cols.min(), cols.max()
        c = self.std[rows, cols]
        strong = c >= 0.5 * c.max()
        k, x0, y0 = self.k, self.x0, self.y0
        p = self.pad
        # a faint line: its middle pixel
        xa, xb = (xa + p, xb + 1 - p) if xb + 1 - xa > 2 * p else ((xa + xb) // 2, (xa + xb) // 2 + 1)
        ya, yb = (ya + p, yb + 1 - p) if yb + 1 - ya > 2 * p else ((ya + yb) // 2, (ya + yb) // 2 + 1)
        box = (int(x0 + k * xa), int(y0 + k * ya), int(x0 + k * xb), int(y0 + k * yb))
        return Verdict(
            Isolation.ISOLATED,
            box,
            (float(x0 + k * (cols[strong].mean() + 0.5)), float(y0 + k * (rows[strong].mean() + 0.5))),
        )


def split_isolated(
    image: np.ndarray, detections: list[Detection], gsd: float, rule: DetectionRule
) -> tuple[list[Detection], list[Detection]]:
    """(kept, rejected): detections in ``image`` (pixels at ``gsd``) on an isolated object, and the others.

    A kept detection's point moves to its object's centre (a CAM peak is only
    as sharp as the feature stride) and its box grows to hold the object.
    Two peaks on one object (centres within half the shortest ship) keep the
    stronger: two hulls' centres lie a beam apart or more.
    """
    if not detections:
        return [], []
    # arrays or windowed scenes: windows are read one at a time
    g = image if hasattr(image, "shape") else np.asarray(image)
    floor = noise_floor(g, gsd)
    apart = MIN_SHIP_M / 2 / gsd
    trusted = logit(rule.threshold) + TRUST_MARGIN
    kept, rejected, taken = [], [], []
    for d in detections:  # strongest first
        v = isolation_at(g, d.x, d.y, gsd, floor, rule.max_length_m)
        if (
            v.kind is not Isolation.ISOLATED
            and d.score > trusted
            and not any(math.dist((d.x, d.y), c) <= apart for c in taken)
        ):
            taken.append((d.x, d.y))  # the network is sure: kept where it put it
            kept.append(d)
            continue
        if v.kind is not Isolation.ISOLATED or any(math.dist(v.centre, c) <= apart for c in taken):
            rejected.append(d)
            continue
        taken.append(v.centre)
        x0, y0, x1, y1 = v.box
        b = d.box
        kept.append(
            Detection(*v.centre, Box(min(b.x0, x0), min(b.y0, y0), max(b.x1, x1), max(b.y1, y1), b.score), d.score)
        )
    return kept, rejected
