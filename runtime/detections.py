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
   above ``level = t + BOX_LEVEL * (peak - t)`` (``t`` the threshold: half
   the peak's height over it), inside a window of ``max_length`` centred on
   the peak. No box is ever longer than that.

Everything here works in the map's own cells; ``cell`` (pixels per cell, per
axis) converts to image pixels. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from shipcam.runtime.boxes import Box, label_components
from shipcam.runtime.maths import local_max, logit, sigmoid
from shipcam.runtime.views import Views

__all__ = ["Detection", "DetectionRule", "STAGES", "BOX_LEVEL", "MIN_SHIP_M", "find_peaks", "detect"]


# The stages of the rule, in the order a scan applies them; each field of ``DetectionRule`` names its stage.
STAGES = {
    "peaks": "CAM peaks: which cells of the map are detections",
    "isolation": "the isolation check on the image (scans only)",
    "views": "more views of the image through the network",
}


def _field(default, stage: str, help: str, scans_only: bool = False, shown: str | None = None):
    """A rule field with what the command line shows for it: its stage, its help, whether only scans use it, its default
    as shown.
    """
    return field(default=default, metadata={"stage": stage, "help": help, "scans_only": scans_only, "shown": shown})


@dataclass(frozen=True)
class DetectionRule:
    """How CAM peaks become detections: the one definition the CLI, the spec's vectors and the JS defaults are built
    from.

    Lengths in metres; the working GSD turns them into pixels.
    """

    threshold: float = _field(
        0.5,
        "peaks",
        "probability a CAM peak must reach",
        shown="the file's own, set when it was trained; 0.5 for a file without one",
    )
    nms_radius_m: float = _field(
        150.0, "peaks", "a peak closer than this to a stronger one is dropped: about one ship length"
    )
    max_length_m: float = _field(
        400.0, "peaks", "the longest box, and the longest object the isolation check calls a ship"
    )
    # On held-out real scenes it removes nearly every false alarm on land, quays and breakwaters; it vetoes only
    # detections near the threshold, as rough water can join a hull to its surroundings (docs/decisions/026).
    isolation: bool = _field(
        True,
        "isolation",
        "keep a peak only on one compact object, 40 m to --max-length-m long, standing out from the water around it",
        scans_only=True,
    )
    views: Views = _field(
        Views.NONE,
        "views",
        "average each image's (each tile's) logit and CAM over these views: mirrored (flip), turned by quarter turns "
        "(rot4) or both (d4); each is one more forward pass",
    )
    confirm_views: Views = _field(
        Views.FLIP,
        "views",
        "run these views again on a crop centred on each detection near the threshold, averaged with the scan's map; a "
        "detection stays if that still clears the threshold (none: off)",
        scans_only=True,
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), received {self.threshold}")
        for name in ("nms_radius_m", "max_length_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive metres, received {getattr(self, name)}")
        if not self.max_length_m > MIN_SHIP_M:
            raise ValueError(
                f"max_length_m must be longer than the shortest ship ({MIN_SHIP_M:g} m), received {self.max_length_m}"
            )
        for name in ("views", "confirm_views"):
            try:
                object.__setattr__(self, name, Views(getattr(self, name)))  # the CLI and JSON give a plain string
            except ValueError:
                raise ValueError(
                    f"{name} must be one of {[v.value for v in Views]}, received {getattr(self, name)!r}"
                ) from None

    @classmethod
    def defaults(cls) -> dict:
        """Every field's default, JSON-friendly (what the conformance vectors and the JS runtime hold)."""
        return {f.name: (f.default.value if isinstance(f.default, Views) else f.default) for f in fields(cls)}


# Box: the component of the CAM above this share of a peak's height over the threshold (0.5: half its height).
BOX_LEVEL = 0.5
# The shortest ship, metres: shorter objects are boats, buoys and specks. The hand labels call a hull a ship
# from ~15 px at 3 m/px (labels/README.md); the isolation check measures a little over the hull.
MIN_SHIP_M = 40.0


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
        return Detection(
            self.x * factor,
            self.y * factor,
            Box(b.x0 * factor, b.y0 * factor, b.x1 * factor, b.y1 * factor, b.score),
            self.score,
        )

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


PEAK_BAND = 512  # heatmap rows searched at once: a 20,000 px scene's map (5,000 rows) needs no whole-map copies


def _candidates(heat: np.ndarray, min_score: float) -> np.ndarray:
    """Flat indices of the local maxima scoring at least ``min_score``, found band by band with a 1-row halo."""
    h, w = heat.shape
    found = []
    for r0 in range(0, h, PEAK_BAND):
        r1 = min(h, r0 + PEAK_BAND)
        a0, a1 = max(0, r0 - 1), min(h, r1 + 1)
        band = heat[a0:a1]
        if not np.isfinite(band).all():
            raise ValueError("the map contains NaN or inf")
        keep = ((band >= min_score) & local_max(band))[r0 - a0 : r1 - a0]
        found.append(np.flatnonzero(keep) + r0 * w)
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def find_peaks(heat: np.ndarray, min_score: float, radius_cells: float) -> list[tuple[int, int, float]]:
    """Local maxima of ``heat`` scoring at least ``min_score``, strongest first, none within ``radius_cells`` of a
    stronger one.

    Returns ``(row, col, score)``. Ties (a plateau) keep the first cell in
    raster order, so a constant map gives a lattice of peaks ``radius`` apart.
    """
    heat = np.asarray(heat, np.float32)
    if heat.ndim != 2:
        raise ValueError(f"expected a 2-D map, received shape {heat.shape}")
    cand = _candidates(heat, min_score)
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
        level = t + BOX_LEVEL * (s - t)
        gy0, gx0, gy1, gx1 = _grow(heat, y, x, level, half)
        box = Box(gx0 * cx, gy0 * cy, min((gx1 + 1) * cx, W), min((gy1 + 1) * cy, H), s)
        out.append(Detection(min((x + 0.5) * cx, W), min((y + 0.5) * cy, H), box, s))
    return out
