"""Detections as CAM peaks: points first, boxes bounded by a maximum ship length.

A thresholded region of a class activation map is fragile on real scenes:
a model whose CAM is barely positive over open water or a city turns into
one region covering everything. A peak cannot do that. The rule:

1. **Peaks**: cells of the map that are the maximum of their 3x3
   neighbourhood and whose score (logit units) clears the threshold.
2. **Non-maximum suppression by distance**: peaks are taken strongest
   first; a peak within ``nms_radius`` of a kept one is dropped (about one
   ship length: two peaks on one hull become one detection).
3. **Box**: grown from the peak over the 4-connected cells whose score stays
   above ``level = t + fraction * (peak - t)`` (``t`` the threshold, so with
   the default ``t = 0`` it is "a fraction of the peak"), inside a window of
   ``max_length`` centred on the peak. No box is ever longer than that.

Everything here works in the map's own cells; ``cell`` (pixels per cell, per
axis) converts to image pixels. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shipcam.runtime.boxes import Box, label_components
from shipcam.runtime.views import Views

__all__ = ["Detection", "DetectionRule", "find_peaks", "detect", "sigmoid", "logit"]


def sigmoid(x):
    """Numerically stable logistic function (scalars or arrays)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def logit(p: float) -> float:
    """Inverse of ``sigmoid``: a probability threshold in logit units."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a probability threshold must be in (0, 1), received {p}")
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class DetectionRule:
    """How peaks become detections. Lengths in metres; the GSD turns them into pixels."""

    threshold: float = 0.5  # on the probability; the peak's score must clear logit(threshold)
    nms_radius_m: float = 150.0  # about one ship length
    max_length_m: float = 400.0  # the longest box (a very large ship)
    fraction: float = 0.5  # the box ends where the CAM falls below this share of the peak's height
    # Scene scans only (a chip has no surroundings): keep a peak only on one compact object in calm
    # water, between min_length_m and max_length_m (runtime.isolation). False drops the check.
    isolation: bool = True
    contrast: float = 4.0  # object pixels: local std above this many times the scene's noise floor
    # An object's strongest pixel must stand out this many times the noise floor: fainter ones are the
    # water's own texture (slicks, swell, a blurred speck). Blurring a scene by one pixel calms its floor
    # more than its texture: on the demo's blurred real scenes, 10 false alarms were objects peaking at
    # 6-12x. The real scenes' ships peak at 26x or more, 11x with noise of sigma 4 added; 0.7% of the
    # generator's ships at sea (2.7% on coasts) under 8x (BENCHMARKS "Session 13").
    peak_contrast: float = 8.0
    # Shorter objects are boats, buoys and specks: a ship here is a hull of ~45 m or more (labels/README.md,
    # small boats are `ignore`), and the measured extent runs a little over the hull. On four models' real
    # scans, 40 m (was 20) removed 0-5 false alarms each, all objects of 20-36 m; no ship measured under 90 m.
    min_length_m: float = 40.0
    # A ship is longer than it is wide: an object whose principal axes' ratio (the square root of its pixel
    # covariance's eigenvalues' ratio) is under this is a blob, a cloud puff, a tank or a rock, passed over as
    # specks are. A 40 m x 10 m hull's object pixels (the 5x5 statistics and the dilation widen it by 3 px a
    # side at 3 m/px) give 2.1; the real scenes' ships found gave 2.26-4.04, cumulus puffs over their water
    # 1.03-1.95. On the `cumulus 20%` robustness row 1.6 cut the session-13 demo's false alarms 32 -> 9 and
    # the 224 px recipe's 48 -> 13, with the same ships found (BENCHMARKS "Session 14"). None: off.
    min_elongation: float | None = 1.6
    snap_m: float = 60.0  # how far from the peak the object may lie (the CAM's peak is a cell or two off)
    fade: float | None = 0.5  # a too-long object's core of >= this x its peak contrast is judged alone (wakes); None: off
    gap_look: bool = True  # an attached object is looked at again without the dilation: a hull moored just off a breakwater
    # A ship-sized object on a faint thin line that runs on this far beyond both its ends is a fragment of
    # a streak (a wake without its ship, a slick, a cable's trace); a ship's wake trails on one side only.
    # On five models' real scans it rejected 4 false alarms on such lines and no ship (BENCHMARKS
    # "Session 11"). None: off.
    streak_m: float | None = 120.0
    # A detection whose object (the isolation check's) comes this close to the scene's edge, or to black
    # no-data fill (the edge of the scene's footprint), is dropped:
    # part of it may lie beyond, and the CAM there comes from zero-padded features. On the session-12
    # demo's real scans four of its eight false alarms had their objects within 15 px (45 m) of an
    # edge, and the nearest ship's lay 58 px off (BENCHMARKS "Session 12"). As far as the check looks
    # for an object from its peak (snap_m). None: off.
    edge_m: float | None = 60.0
    # Average each image's (each scan tile's) logit and CAM over these views (runtime.views); each view
    # is one more forward pass, so off by default: predict's CAM costs one forward pass.
    views: Views = Views.NONE
    # Scans only: each detection that passed the isolation check is confirmed on these views (those not
    # already in ``views``) of a crop centred on its peak, averaged with what the scan saw
    # there; it stays if that map still clears the threshold near its peak. It can only remove
    # detections. Mirroring kept every ship of four models' real scans and cut their false alarms by a
    # fifth; a crop of 1.5 training sizes costs 0.6 of a tile (BENCHMARKS "Session 11"). With
    # confirm_margin the defaults cost 1.02-1.04x the scan without the confirmation and the
    # isolation check's later looks (BENCHMARKS "Session 12").
    # Views.NONE turns it off.
    confirm_views: Views = Views.FLIP
    # Only detections whose first-pass score is within this many logits of the threshold are confirmed;
    # the others keep their score. To drop one 2 logits over, a view would have to score 2 under. Over
    # 24 scans of the real scenes and their perturbed copies, the confirmation dropped 7 of the demo's
    # 414 candidates, all within 0.56 of the threshold, and 30% of candidates lie within 2
    # (BENCHMARKS "Session 12"). None: confirm all.
    confirm_margin: float | None = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), received {self.threshold}")
        if self.nms_radius_m <= 0 or self.max_length_m <= 0:
            raise ValueError(f"nms_radius_m and max_length_m must be positive, received {self.nms_radius_m}, {self.max_length_m}")
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"fraction must be in [0, 1), received {self.fraction}")
        if not self.peak_contrast >= self.contrast:
            raise ValueError(f"peak_contrast must be >= contrast ({self.contrast}), received {self.peak_contrast}")
        if self.contrast <= 0 or self.snap_m <= 0 or not 0 <= self.min_length_m < self.max_length_m:
            raise ValueError(f"need contrast > 0, snap_m > 0 and 0 <= min_length_m < max_length_m, received {self.contrast}, {self.snap_m}, {self.min_length_m}, {self.max_length_m}")
        if self.confirm_margin is not None and not self.confirm_margin >= 0:
            raise ValueError(f"confirm_margin must be >= 0 logits or None, received {self.confirm_margin}")
        for name in ("streak_m", "edge_m"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive metres or None, received {getattr(self, name)}")
        if self.min_elongation is not None and not self.min_elongation >= 1.0:
            raise ValueError(f"min_elongation must be >= 1 (a ratio of lengths) or None, received {self.min_elongation}")
        if self.fade is not None and not 0.0 < self.fade < 1.0:
            raise ValueError(f"fade must be in (0, 1) or None, received {self.fade}")
        for name in ("views", "confirm_views"):
            try:
                object.__setattr__(self, name, Views(getattr(self, name)))  # the CLI and JSON give a plain string
            except ValueError:
                raise ValueError(f"{name} must be one of {[v.value for v in Views]}, received {getattr(self, name)!r}") from None


@dataclass(frozen=True)
class Detection:
    x: float  # the peak, image pixels
    y: float
    box: Box  # bounded by the rule's maximum length; box.score == score
    score: float  # peak CAM value, logit units

    @property
    def probability(self) -> float:
        return float(sigmoid(self.score))

    def scaled(self, factor: float) -> "Detection":
        """The same detection in an image ``factor`` times larger (resampled scans map back with this)."""
        b = self.box
        return Detection(self.x * factor, self.y * factor, Box(b.x0 * factor, b.y0 * factor, b.x1 * factor, b.y1 * factor, b.score), self.score)

    def to_dict(self) -> dict:
        b = self.box
        return {
            "x": round(self.x, 2),
            "y": round(self.y, 2),
            "x0": round(b.x0, 2),
            "y0": round(b.y0, 2),
            "x1": round(b.x1, 2),
            "y1": round(b.y1, 2),
            "score": round(self.score, 4),
            "probability": round(self.probability, 6),
        }


def max3x3(a: np.ndarray, fill) -> np.ndarray:
    """The maximum over each cell's 3x3 neighbourhood, outside cells taken as ``fill`` (on bool: a dilation)."""
    p = np.pad(a, 1, constant_values=fill)
    h, w = a.shape
    m = a.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            np.maximum(m, p[dy : dy + h, dx : dx + w], out=m)
    return m


def _local_max(a: np.ndarray) -> np.ndarray:
    """Cells equal to the maximum of their 3x3 neighbourhood (edges padded with -inf)."""
    return a >= max3x3(a, -np.inf)


def find_peaks(heat: np.ndarray, min_score: float, radius_cells: float) -> list[tuple[int, int, float]]:
    """Local maxima of ``heat`` scoring at least ``min_score``, strongest first, none within ``radius_cells`` of a stronger one.

    Returns ``(row, col, score)``. Ties (a plateau) keep the first cell in
    raster order, so a constant map gives a lattice of peaks ``radius`` apart.
    """
    heat = np.asarray(heat, np.float32)
    if heat.ndim != 2:
        raise ValueError(f"expected a 2-D map, received shape {heat.shape}")
    if not np.isfinite(heat).all():
        raise ValueError("the map contains NaN or inf")
    cand = np.flatnonzero((heat >= min_score) & _local_max(heat))
    if cand.size == 0:
        return []
    scores = heat.ravel()[cand]
    order = cand[np.lexsort((cand, -scores))]  # by score, then raster order
    h, w = heat.shape
    r = max(float(radius_cells), 0.0)
    ri = int(math.floor(r))
    # Suppression raster: a kept peak marks the disc of radius r around it.
    dy, dx = np.mgrid[-ri : ri + 1, -ri : ri + 1]
    disc = dy**2 + dx**2 <= r * r
    suppressed = np.zeros((h + 2 * ri, w + 2 * ri), bool)
    kept = []
    for flat in order:
        y, x = divmod(int(flat), w)
        if suppressed[y + ri, x + ri]:
            continue
        kept.append((y, x, float(heat[y, x])))
        suppressed[y : y + 2 * ri + 1, x : x + 2 * ri + 1] |= disc
    return kept


def _grow(heat: np.ndarray, y: int, x: int, level: float, half: tuple[int, int]) -> tuple[int, int, int, int]:
    """Cell extent (y0, x0, y1, x1 inclusive) of the component above ``level`` holding (y, x), inside the window."""
    h, w = heat.shape
    hy, hx = half
    y0, y1 = max(0, y - hy), min(h, y + hy + 1)
    x0, x1 = max(0, x - hx), min(w, x + hx + 1)
    window = heat[y0:y1, x0:x1] >= level
    window[y - y0, x - x0] = True
    labels, _ = label_components(window)
    ys, xs = np.nonzero(labels == labels[y - y0, x - x0])
    return y0 + int(ys.min()), x0 + int(xs.min()), y0 + int(ys.max()), x0 + int(xs.max())


def detect(
    heat: np.ndarray,
    cell: float | tuple[float, float],
    gsd: float,
    rule: DetectionRule = DetectionRule(),
    image_size: tuple[int, int] | None = None,
    min_score: float | None = None,
) -> list[Detection]:
    """Detections in a map of CAM scores (logit units) whose cells are ``cell`` image pixels (y, x) at ``gsd`` m/px.

    ``min_score`` overrides the rule's threshold (a precision-recall sweep
    detects once at a low score, then filters: greedy suppression strongest
    first makes that the same as detecting at each threshold).
    """
    heat = np.asarray(heat, np.float32)
    cy, cx = (float(cell), float(cell)) if np.isscalar(cell) else (float(cell[0]), float(cell[1]))
    if gsd <= 0:
        raise ValueError(f"gsd must be positive metres/pixel, received {gsd}")
    t = logit(rule.threshold) if min_score is None else float(min_score)
    c = math.sqrt(cy * cx)
    peaks = find_peaks(heat, t, rule.nms_radius_m / gsd / c)
    H, W = image_size if image_size is not None else (heat.shape[0] * cy, heat.shape[1] * cx)
    half = (max(0, int(rule.max_length_m / gsd / cy / 2 - 0.5)), max(0, int(rule.max_length_m / gsd / cx / 2 - 0.5)))
    out = []
    for y, x, s in peaks:
        level = t + rule.fraction * (s - t)
        gy0, gx0, gy1, gx1 = _grow(heat, y, x, level, half)
        box = Box(gx0 * cx, gy0 * cy, min((gx1 + 1) * cx, W), min((gy1 + 1) * cy, H), s)
        out.append(Detection(min((x + 0.5) * cx, W), min((y + 0.5) * cy, H), box, s))
    return out
