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
   so a hull's two edges join) nearest the peak, within ``snap_m``, whose
   strongest pixel stands ``peak_contrast`` times the floor out. Fainter
   groups are the water's own texture: slicks, swell, a blurred speck.
3. **Verdict**: ``ISOLATED`` when that object is between ``min_length_m``
   and ``max_length_m`` long, does not run out of the window around the
   peak, and is longer than wide (``min_elongation``: a cloud puff, a tank
   or a rock is a blob, passed over as a speck is); ``ATTACHED`` when it is
   longer (land, a quay, a breakwater); ``EMPTY`` when no object is near (a
   peak on open water).
4. **A second look at long objects** (``fade``): a hull trailing a wake, or
   a bright ship against a dull quay, is a long object whose strong-contrast
   part is ship-sized. That core is judged alone when little else of the
   object is as strong, here and in a window three times as wide (a pier's
   faint deck may lead to a bright shore). A ship moored at a quay as bright
   as itself stays ``ATTACHED``: this check cannot tell them apart.
5. **A look without the dilation** (``gap_look``): the dilation that joins a
   hull's two edges also joins a hull to a breakwater or a quay 5-6 px
   (15-18 m at 3 m/px) off it, water between. An object still too long is
   judged once more from the undilated object pixels, and the ship-sized
   object it finds is kept when open water borders a third of its outline:
   undilated, a city falls apart into fragments too, but those are bordered
   by more city and by the calm interiors of roofs, pockets apart from the sea.
6. **Streaks** (``streak_m``): a faint line across the water (a wake whose
   ship has gone, a slick, a cable's trace) breaks into fragments, and one
   of them can be ship-sized. Beyond both ends of a ship, along its axis,
   lies water (a wake trails on one side only); beyond a fragment the line
   runs on. An object is ``ATTACHED`` when, for ``streak_m`` past each end,
   at least half the points along its axis stand out from the water around
   while the water 24 m to one side does not: a thin line, not the edge of
   a coast, a cloud or another hull.
7. **Edges** (``edge_m``, in ``split_isolated``): an object near the scene's
   edge, or near no-data fill (the edge of its footprint), may run on beyond
   it, and the CNN saw zeros there.

The cost is one small window per detection, so it is independent of the
scene's size. Pure numpy.
"""

from __future__ import annotations

import copy
import enum
import math
from typing import NamedTuple

import numpy as np

from shipcam.runtime.boxes import Box, label_components
from shipcam.runtime.detections import Detection, DetectionRule, max3x3

__all__ = ["Isolation", "Verdict", "elongation", "isolation_at", "local_std", "noise_floor", "split_isolated", "working_bin"]

_R = 2  # local statistics over (2r + 1)^2 = 5 x 5 pixels: about one hull width at 3 m/px
_WORK_GSD = 3.0  # finer images are binned towards this (m/px): the check's scale is metres, and its cost stays put
_PAD = _R + 1  # an edge lights up the r pixels beyond it, and the dilation one more
# Open water for the gap look: calmer than this share of the object level. Real harbour water near a
# hull reaches 0.5-0.6 of it; the generator's low-contrast cities sit just under the level, and at
# 0.5 / 0.6 / 0.75 the look lets 1% / 1.3% / 2.6% more of their pixels through (BENCHMARKS, session 10).
_CALM = 0.6
# A window calmer than this (variance, grey levels^2) carries no sensor noise: no-data fill, a clipped
# cloud or glint. One 8-bit pixel one level off in a flat 5 x 5 window gives 0.038 in its channel, 0.013
# over three; float32 rounding on flat float images stays under 0.003.
_FLAT_VAR = 0.01
# Streaks (``_Window.runs_on``): a point on the axis beyond an object's end is on a line where the local
# std, the highest of the axis and one pixel either side, is over this many times the window's median
# water std, and _STREAK_SIDE px to one side it is not. On the real scans (axis points alone, before the
# side condition) the ships found had at most 30% over it at one end, the streak fragments 65-100% at both.
_STREAK_RATIO = 1.5
_STREAK_SHARE = 0.5  # of the points past each end
_STREAK_SIDE = 8.0  # px (24 m at 3 m/px): clear of a thin line's 5x5 statistics


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
    corners = [(y, x) for y in np.linspace(0, max(0, H - size), blocks).astype(int) for x in np.linspace(0, max(0, W - size), blocks).astype(int)]
    stds = []
    for i in range(0, len(corners), 8):  # 8 blocks per pass: vectorised, with temporaries of a few MB
        stack = np.stack([_binned(g[y : y + size, x : x + size], k) for y, x in corners[i : i + 8]], axis=2)  # each padded at its own edges
        var = _channel_mean(_window_var(stack, _R), g.ndim).ravel()
        stds.append(var[var > _FLAT_VAR])  # in the binned sums' units, where one level off is still over it
    var = np.concatenate(stds)
    return float(np.sqrt(np.percentile(var, percentile))) / (k * k) if var.size else 0.0


_RULE = DetectionRule()  # the check's defaults are the detection rule's, defined once there


def isolation_at(
    g: np.ndarray,
    x: float,
    y: float,
    gsd: float,
    floor: float,
    *,
    contrast: float = _RULE.contrast,
    peak_contrast: float = _RULE.peak_contrast,
    snap_m: float = _RULE.snap_m,
    min_length_m: float = _RULE.min_length_m,
    max_length_m: float = _RULE.max_length_m,
    fade: float | None = _RULE.fade,
    gap_look: bool = _RULE.gap_look,
    streak_m: float | None = _RULE.streak_m,
    min_elongation: float | None = _RULE.min_elongation,
) -> Verdict:
    """The verdict for a peak at pixel (x, y) of image ``g`` ((H, W) or (H, W, C)) at ``gsd`` m/px (see the module docstring).

    With ``ISOLATED`` come the object's pixel box (x0, y0, x1, y1), end-exclusive,
    and its centre: the mean position of its strongest-contrast pixels (at
    least half its peak contrast), which stays on the hull when a fainter
    wake stretches the box.

    ``fade`` (None: off) gives a too-long object a second look: a ship under
    way trails a wake far longer than itself that fades away from the hull.
    When the object's pixels of at least ``fade`` x its strongest contrast
    near the peak form one ship-sized core, and little else of the object is
    that strong, the core is judged alone; the same must hold in a window
    three times as wide, so a pier whose faint deck leads to a bright shore
    stays ``ATTACHED``.

    ``gap_look`` gives an ``ATTACHED`` peak one more look without the one-pixel
    dilation that joins a hull's two edges: a hull moored a pixel or two off
    a breakwater or a quay, with water between, is then its own object.

    ``streak_m`` (None: off) turns an ``ISOLATED`` object ``ATTACHED`` when a
    faint line runs on from both its ends for that many metres.

    ``min_elongation`` (None: off): a ship-sized object whose ``elongation``
    is under it is a blob (a cloud puff, a tank, a rock), passed over as a
    speck is.
    """
    k = working_bin(gsd)
    snap, longest, shortest = snap_m / gsd / k, max_length_m / gsd / k, min_length_m / gsd / k  # in binned pixels
    half = int(math.ceil(snap + longest / 2)) + 2  # any object within snap of the peak and <= max length fits
    noise = max(floor, 0.5 / k)  # calm water's noise, binned, never under half a grey level
    level, faint = contrast * noise, peak_contrast * noise  # object pixels stand level above it; an object peaking under faint is water
    w = _Window(g, x, y, k, half, level, snap)
    v, obj = _judge(w, g, x, y, shortest, longest, fade, faint, min_elongation)
    if v.kind is Isolation.ATTACHED and gap_look:
        u = w.undilated()
        apart, alone = _judge(u, g, x, y, shortest, longest, None, faint, min_elongation)  # the fading core is the first look's: no wide windows here
        if apart.kind is Isolation.ISOLATED and u.open_water_around(alone, (longest / 2) ** 2):  # the sea: calm areas of a 200 m square or more
            v, obj, w = apart, alone, u
    if v.kind is Isolation.ISOLATED and streak_m is not None and w.runs_on(obj, streak_m / gsd / k):
        return Verdict(Isolation.ATTACHED)
    return v


def elongation(mask: np.ndarray) -> float:
    """Length over width of the pixels of ``mask``: the square root of the ratio of their covariance's eigenvalues.

    A filled L x W rectangle of pixels gives sqrt((L^2 - 1) / (W^2 - 1)) at any position; a disc 1.
    Fewer than three pixels, or all in one line, give 0 and inf.
    """
    rows, cols = np.nonzero(mask)
    if rows.size < 3:
        return 0.0
    small, large = np.linalg.eigvalsh(np.cov(np.stack([cols, rows]).astype(np.float64)))
    return math.sqrt(large / small) if small > 1e-12 else math.inf


def _judge(w: "_Window", g, x: float, y: float, shortest: float, longest: float, fade: float | None, faint: float, min_elongation: float | None) -> tuple[Verdict, np.ndarray | None]:
    """The verdict on the objects of window ``w``, nearest the peak first (lengths in binned pixels), and the object judged ISOLATED.

    Objects whose strongest pixel is under ``faint`` are passed over, as specks are: they are water.
    So are ship-sized blobs, less elongated than ``min_elongation``.
    """
    if not w.near.any():
        return Verdict(Isolation.EMPTY), None
    labels, _ = label_components(w.objects)
    d2 = w.d2[w.near]
    ordered = labels[w.near][np.argsort(d2, kind="stable")]
    _, first = np.unique(ordered, return_index=True)
    for i in ordered[np.sort(first)]:  # objects nearest first; specks below min length are skipped
        whole = obj = labels == i
        if w.std[whole].max() < faint:
            continue
        kind = w.extent(obj, shortest, longest)
        if kind is Isolation.ATTACHED and fade is not None:
            obj, kind, strongest = w.faded_core(whole, fade, shortest, longest)
            if kind is Isolation.ISOLATED and w.runs_out(whole):  # what lies beyond the window?
                wide = _Window(g, x, y, w.k, 3 * w.half, w.level, w.snap, dilate=w.dilate)
                kind = wide.fades_out(w.to(wide, obj), fade * strongest)
        if kind is Isolation.ATTACHED:
            return Verdict(Isolation.ATTACHED), None
        if kind is Isolation.ISOLATED and (min_elongation is None or elongation(obj) >= min_elongation):
            return w.verdict(obj), obj
    return Verdict(Isolation.EMPTY), None


class _Window:
    """The binned local-std statistics of a square window around a peak, and the tests on its objects."""

    def __init__(self, g, x: float, y: float, k: int, half: int, level: float, snap: float, dilate: bool = True):
        self.half, self.level, self.snap, self.dilate = half, level, snap, dilate
        self.pad = _PAD if dilate else _R  # how far object pixels reach beyond the object
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

    def grow(self, mask: np.ndarray) -> np.ndarray:
        """One pixel of dilation joins a hull's two edges (unless this window looks without it)."""
        return max3x3(mask, False) if self.dilate else mask

    def undilated(self) -> "_Window":
        """This window's statistics, its objects taken without the dilation."""
        other = copy.copy(self)
        other.dilate, other.pad = False, _R
        other.objects = self.std > self.level
        other.near = other.objects & (self.d2 <= self.snap * self.snap)
        return other

    def open_water_around(self, obj: np.ndarray, sea_px: float, share: float = 1 / 3) -> bool:
        """Is at least ``share`` of the ring 3 px around ``obj`` open water (areas of ``sea_px`` pixels or more as calm as water)?

        Neighbours the dilation would have joined lie within 3 px. A hull moored off a quay has the
        quay along one side and the sea along the others. A fragment of a city or a terminal is
        surrounded by more of it, or by the calm interiors of flat roofs: pockets, not the sea.
        """
        inside = max3x3(max3x3(obj, False), False)
        ring = max3x3(inside, False) & ~inside
        calm, _ = label_components(self.std < _CALM * self.level)
        areas = np.bincount(calm.ravel())
        sea = (areas >= sea_px)[calm] & (calm > 0)
        return int((ring & sea).sum()) >= share * int(ring.sum())

    def runs_on(self, obj: np.ndarray, reach: float) -> bool:
        """Does a faint line run on from both ends of ``obj``, along its long axis, for ``reach`` pixels?

        A point on the axis beyond an end is on a line when the std there (the highest of the axis and
        one pixel either side) stands out from the window's water while ``_STREAK_SIDE`` px to one side
        it does not: a thin line, not the edge of a coast, a cloud or a quay, nor another hull. Half the
        points of each end must be: a ship's wake trails from one end only, and a ship near a coast has
        water on one side of its axis.
        """
        rows, cols = np.nonzero(obj)
        water = self.std[self.std <= self.level]
        if rows.size < 3 or water.size == 0:
            return False
        bright = _STREAK_RATIO * float(np.median(water))
        pts = np.stack([cols, rows], axis=1).astype(np.float64)
        centre = pts.mean(axis=0)
        _, vecs = np.linalg.eigh(np.cov((pts - centre).T))
        across, along = vecs[:, 0], vecs[:, 1]  # eigenvalues ascending: the long axis last
        t = (pts - centre) @ along
        steps = np.arange(1, int(reach) + 1)
        for end, sign in ((t.max(), 1.0), (t.min(), -1.0)):
            axis = centre + np.outer(end + sign * steps, along)  # points on the axis beyond this end
            on = self._sample(axis, across, (-1.0, 0.0, 1.0))
            beside = np.minimum(self._sample(axis, across, (-_STREAK_SIDE,)), self._sample(axis, across, (_STREAK_SIDE,)))  # the calmer side
            seen = np.isfinite(on) & np.isfinite(beside)
            if seen.sum() < steps.size / 2 or ((on > bright) & (beside <= bright))[seen].mean() < _STREAK_SHARE:
                return False  # no line here, or too little of the axis inside the window to tell
        return True

    def _sample(self, points: np.ndarray, across: np.ndarray, offsets) -> np.ndarray:
        """The highest std at each (x, y) point moved by each of ``offsets`` along ``across``; NaN where any falls outside."""
        h, w = self.std.shape
        out = np.full(len(points), -np.inf)
        for o in offsets:
            xy = np.rint(points + o * across).astype(int)
            ok = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
            out[ok] = np.maximum(out[ok], self.std[xy[ok, 1], xy[ok, 0]])
            out[~ok] = np.nan
        return out

    def runs_out(self, obj: np.ndarray) -> bool:
        """Does ``obj`` touch a window side that is not the image's edge (it is longer than the window allows)?"""
        top, left, bottom, right = self.edges
        return bool((top and obj[0].any()) or (left and obj[:, 0].any()) or (bottom and obj[-1].any()) or (right and obj[:, -1].any()))

    def extent(self, obj: np.ndarray, shortest: float, longest: float) -> Isolation:
        rows, cols = np.nonzero(obj)
        length = max(np.ptp(rows), np.ptp(cols)) + 1 - 2 * self.pad
        if self.runs_out(obj) or length > longest:
            return Isolation.ATTACHED
        return Isolation.ISOLATED if length >= shortest else Isolation.EMPTY

    def faded_core(self, obj: np.ndarray, fade: float, shortest: float, longest: float) -> tuple[np.ndarray, Isolation, float]:
        """The part of ``obj`` of at least ``fade`` x its strongest contrast near the peak, when that is one ship-sized core.

        Returns (core or ``obj``, verdict, that strongest contrast).
        """
        strongest = float(self.std[obj & self.near].max())
        strong = obj & (self.std >= fade * strongest)
        core = self.component_at(strong & self.near, strong)
        if core is None or self.extent(core, shortest, longest) is not Isolation.ISOLATED or not self.mostly_core(strong, core):
            return obj, Isolation.ATTACHED, strongest
        return core, Isolation.ISOLATED, strongest

    @staticmethod
    def mostly_core(strong: np.ndarray, core: np.ndarray, rest: float = 0.25) -> bool:
        """Few strong pixels outside the core: a wake or a dull quay, not a city, a terminal or a breakwater."""
        return int((strong & ~core).sum()) <= rest * int((strong & core).sum())

    def component_at(self, seed: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | None:
        """The connected part of ``mask`` (default: the object pixels), one pixel dilated, holding most ``seed`` pixels."""
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
        return Isolation.ISOLATED if core is not None and not self.runs_out(strong) and self.mostly_core(strong, core) else Isolation.ATTACHED

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
        xa, xb = (xa + p, xb + 1 - p) if xb + 1 - xa > 2 * p else ((xa + xb) // 2, (xa + xb) // 2 + 1)  # a faint line: its middle pixel
        ya, yb = (ya + p, yb + 1 - p) if yb + 1 - ya > 2 * p else ((ya + yb) // 2, (ya + yb) // 2 + 1)
        box = (int(x0 + k * xa), int(y0 + k * ya), int(x0 + k * xb), int(y0 + k * yb))
        return Verdict(Isolation.ISOLATED, box, (float(x0 + k * (cols[strong].mean() + 0.5)), float(y0 + k * (rows[strong].mean() + 0.5))))


def _near_no_data(g, box: tuple[int, int, int, int], margin: float) -> bool:
    """Does no-data fill (a 5 x 5 px block of exact zeros in every channel) lie within ``margin`` px of ``box``?

    The edge of a scene's footprint inside its raster is an edge too: what lies beyond is unseen.
    Real water and hulls never read exactly 0 over 25 pixels; a clipped cloud reads 255 and is seen.
    """
    if margin <= 0:
        return False
    H, W = g.shape[:2]
    m = int(math.ceil(margin))
    x0, y0, x1, y1 = box
    win = np.asarray(g[max(0, y0 - m) : min(H, y1 + m), max(0, x0 - m) : min(W, x1 + m)])
    lit = (win.max(axis=2) if win.ndim == 3 else win) != 0
    return bool(lit.size) and bool((_window_sums(lit.astype(np.int32), _R) == 0).any())


def split_isolated(image: np.ndarray, detections: list[Detection], gsd: float, rule: DetectionRule) -> tuple[list[Detection], list[Detection]]:
    """(kept, rejected): detections in ``image`` (pixels at ``gsd``) on an isolated object, and the others.

    A kept detection's point moves to its object's centre (a CAM peak is only
    as sharp as the feature stride) and its box grows to hold the object.
    Two peaks on one object (centres within half the shortest ship) keep the
    stronger. With ``rule.edge_m``, one whose object comes that close to the
    image's edge or to no-data fill is rejected: what lies beyond is unseen.
    """
    if not detections:
        return [], []
    g = image if hasattr(image, "shape") else np.asarray(image)  # arrays or windowed scenes: windows are read one at a time
    floor = noise_floor(g, gsd)
    H, W = g.shape[:2]
    margin = -math.inf if rule.edge_m is None else rule.edge_m / gsd
    # One object, seen from two peaks, can come back with boxes a pixel apart (the fading core is taken
    # from the strongest contrast near each peak), but its centre, the mean of its strongest pixels, stays
    # put. Two hulls' centres lie a beam apart or more; boats under min_length_m are not detections.
    apart = rule.min_length_m / 2 / gsd
    kept, rejected, taken = [], [], []
    for d in detections:  # strongest first
        v = isolation_at(
            g,
            d.x,
            d.y,
            gsd,
            floor,
            contrast=rule.contrast,
            peak_contrast=rule.peak_contrast,
            snap_m=rule.snap_m,
            min_length_m=rule.min_length_m,
            max_length_m=rule.max_length_m,
            fade=rule.fade,
            gap_look=rule.gap_look,
            streak_m=rule.streak_m,
            min_elongation=rule.min_elongation,
        )
        if v.kind is not Isolation.ISOLATED or any(math.dist(v.centre, c) <= apart for c in taken):
            rejected.append(d)
            continue
        taken.append(v.centre)
        x0, y0, x1, y1 = v.box
        if min(x0, y0, W - x1, H - y1) < margin or _near_no_data(g, v.box, margin):  # the object's box: the CAM's grows as the threshold falls
            rejected.append(d)
            continue
        b = d.box
        kept.append(Detection(*v.centre, Box(min(b.x0, x0), min(b.y0, y0), max(b.x1, x1), max(b.y1, y1), b.score), d.score))
    return kept, rejected
