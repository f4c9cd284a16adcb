"""Boxes from a single image's CAM, numpy only (no scipy or OpenCV at run time).

This is the CAM paper's localisation rule, kept for the localisation metrics
(``shipcam eval``'s box recall and MaxBoxAcc sweep). Detections in the
runtime come from peaks instead (``detections.py``): a relative threshold
cannot tell a ship from a scene that is warm everywhere.

The rule: keep the pixels above ``fraction`` (default 20%) of the
map's maximum, take connected components, one box per component. Each box
carries its peak CAM value (logit units) so callers can rank and filter.

Components are labelled on the CAM upsampled ``upsample`` times (4 by
default: 8 px box precision at stride 32, a quarter of a CAM cell), not at
image resolution: the CAM
comes from a map 32x coarser than the image, so a finer grid adds cost and no
information. Labelling is vectorised label propagation, not a per-pixel
Python loop. Boxes are returned in image pixels, max corners exclusive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from shipcam.runtime.cam import cam_mask
from shipcam.runtime.resize import resize_bilinear

__all__ = ["Box", "boxes_from_cam", "label_components"]


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    score: float  # peak CAM value inside the box (logit units)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def to_dict(self) -> dict:
        return {k: round(float(v), 3) for k, v in asdict(self).items()}


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected component labels (0 = background, 1..n in raster order of first pixel).

    Union-find over the horizontal runs of mask pixels, vectorised: two runs
    in neighbouring rows join when their columns overlap. Each round hooks
    every pair's larger root under its smaller one, then pointer-jumps to the
    roots. A solid region is one run per row, so the work follows the shape's
    outline rather than its area.
    """
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    W = w + 1  # run keys row * W + column; column w is the end of runs that reach the right edge
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).view(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # end-exclusive, in the same raster order as the starts
    labels = np.zeros((h, w), np.int64)
    if rows.size == 0:
        return labels, 0
    start_key, end_key = rows * W + starts, rows * W + ends
    # Runs of the row above that overlap run j: a contiguous range [lo, hi) of the raster order.
    above = (rows - 1) * W
    lo = np.searchsorted(end_key, above + starts, side="right")
    hi = np.searchsorted(start_key, above + ends, side="left")
    count = np.maximum(hi - lo, 0)
    b = np.repeat(np.arange(rows.size), count)
    a = np.repeat(lo, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    parent = np.arange(rows.size)
    while a.size:
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            break
        np.minimum.at(parent, np.maximum(pa[differ], pb[differ]), np.minimum(pa[differ], pb[differ]))
        while True:  # pointer jumping: every run points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    roots, run_label = np.unique(parent, return_inverse=True)  # a root is its component's first run
    # Paint the runs: +label at each start, -label at each end, then a running sum along the rows.
    flat = np.zeros(h * W, np.int64)
    flat[start_key] += run_label + 1
    flat[end_key] -= run_label + 1
    labels[:] = np.cumsum(flat).reshape(h, W)[:, :w]
    return labels, len(roots)


def boxes_from_cam(
    cam: np.ndarray,
    image_size: tuple[int, int],
    fraction: float = 0.2,
    upsample: int = 4,
    min_score: float | None = None,
) -> list[Box]:
    """Boxes around the regions of ``cam`` above ``fraction`` of its maximum (after min-max scaling).

    ``cam`` is the feature-resolution map (h, w) of an image of ``image_size``
    (height, width); ``min_score`` drops components whose peak CAM value (logit
    units) is below it.
    """
    cam = np.asarray(cam, np.float32)
    if cam.ndim != 2:
        raise ValueError(f"expected a 2-D CAM, received shape {cam.shape}")
    H, W = image_size
    gh, gw = min(H, cam.shape[0] * upsample), min(W, cam.shape[1] * upsample)
    grid = resize_bilinear(cam, gh, gw) if cam.shape != (gh, gw) else cam
    return _component_boxes(cam_mask(grid, fraction), grid, cam, H / gh, W / gw, min_score)


def _component_boxes(mask, grid, cam, sy: float, sx: float, min_score) -> list[Box]:
    """One box per 4-connected component of ``mask`` (on ``grid``), scaled by (sy, sx), scored by its peak."""
    labels, n = label_components(mask)
    if n == 0:
        return []
    gh, gw = grid.shape
    flat = labels.ravel()
    keep = np.flatnonzero(flat)
    lab, vals = flat[keep], grid.ravel()[keep]
    ys, xs = np.divmod(keep, gw)
    # Per-component extents and peaks in one pass each (no loop over pixels).
    x0, y0 = np.full(n + 1, gw), np.full(n + 1, gh)
    x1, y1 = np.full(n + 1, -1), np.full(n + 1, -1)
    peak = np.full(n + 1, -np.inf, np.float32)
    np.minimum.at(x0, lab, xs)
    np.minimum.at(y0, lab, ys)
    np.maximum.at(x1, lab, xs)
    np.maximum.at(y1, lab, ys)
    np.maximum.at(peak, lab, vals)
    if cam is not None:
        # Exact peaks: the feature cells whose centres fall in a component (the grid is smoothed).
        h, w = cam.shape
        cy = np.minimum(((np.arange(h) + 0.5) * gh / h).astype(int), gh - 1)
        cx = np.minimum(((np.arange(w) + 0.5) * gw / w).astype(int), gw - 1)
        cell_lab = labels[np.ix_(cy, cx)]
        hit = cell_lab > 0
        np.maximum.at(peak, cell_lab[hit], cam[hit])
    boxes = [
        Box(float(x0[k] * sx), float(y0[k] * sy), float((x1[k] + 1) * sx), float((y1[k] + 1) * sy), float(peak[k]))
        for k in range(1, n + 1)
        if min_score is None or peak[k] >= min_score
    ]
    return sorted(boxes, key=lambda b: -b.score)
