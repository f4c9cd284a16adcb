"""Scanning a scene far larger than the training size: tiles, one stitched heatmap, detections, their confirmation.

``Detector.scan`` calls ``scan_scene``; the steps, in order:

1. **Resample** the scene to the model's GSD range (window by window for a
   ``WindowedScene``: it is never held whole).
2. **Tile** it into overlapping squares (``_starts``, ``_crop``), run them in
   batches, and **stitch** each tile's CAM into a scene heatmap by maximum,
   each tile writing only its core (the CAM near a tile's edge comes from
   zero-padded features).
3. **Detect** the heatmap's peaks (``detections.detect``) and keep those on an
   isolated, ship-sized object (``isolation.split_isolated``).
4. **Confirm** detections near the threshold (``_confirm``): more views of a
   crop centred on each, averaged with the first pass.

The named constants (``CONFIRM_MARGIN``, ``_CONFIRM_CROP``) are read when a
scan runs, so ``benchmarks.ablation`` can move them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from shipcam._utils.progress import progress as bar
from shipcam.errors import ImageError
from shipcam.runtime.boxes import Box
from shipcam.runtime.detections import Detection, detect
from shipcam.runtime.image import check_array, read_image
from shipcam.runtime.isolation import split_isolated
from shipcam.runtime.maths import logit
from shipcam.runtime.resize import resize_antialiased, resize_bilinear
from shipcam.runtime.scene import ResampledScene, WindowedScene

if TYPE_CHECKING:
    from shipcam.runtime.detector import Detector

__all__ = ["ScanResult", "scan_scene", "CONFIRM_MARGIN"]


@dataclass
class ScanResult:
    detections: list[Detection]  # scene pixel coordinates, strongest first
    heatmap: np.ndarray  # max CAM over tiles, logit units, one cell = ``cell`` scene pixels
    cell: float  # scene pixels per heatmap cell
    tiles: int
    positive_tiles: int
    seconds: float
    tile_probabilities: list[tuple[int, int, float]] = field(default_factory=list)  # (x, y, p) in resampled pixels
    resample: float = 1.0  # the scene was resized by this factor to the model's GSD before tiling
    gsd: float | None = None  # the scene's metres/pixel, when known
    # peaks the isolation check dropped (land, quays, open water)
    rejected: list[Detection] = field(default_factory=list)

    @property
    def boxes(self) -> list[Box]:
        return [d.box for d in self.detections]


def scan_scene(
    det: Detector,
    scene,
    tile: int | None = None,
    overlap: float = 0.25,
    batch: int = 8,
    progress: bool = False,
    gsd: float | None = None,
    min_score: float | None = None,
) -> ScanResult:
    """``det.scan(scene, ...)``: the arguments and the result are ``Detector.scan``'s."""
    if isinstance(scene, (str, os.PathLike)):
        scene = read_image(scene)
    windowed = isinstance(scene, WindowedScene)  # read tile by tile: the scene is never held whole
    if not windowed:
        scene = check_array(scene, "scene")
    H0, W0 = scene.shape[:2]
    work = det.working_gsd(gsd)  # the scene's own GSD inside the model's range: no resampling
    factor = 1.0 if gsd is None else gsd / work
    if factor != 1.0:
        if windowed:
            scene = ResampledScene(scene, factor)
        else:
            scene = resize_antialiased(scene, max(1, round(H0 * factor)), max(1, round(W0 * factor)))
    H, W = scene.shape[:2]
    m = det.metadata
    tile = tile_size(det, H, W, tile)
    if not 0.0 <= overlap < 0.9:
        raise ValueError(f"overlap must be in [0, 0.9), received {overlap}")
    views = det.rule.views
    # the views a confirmation adds
    confirm = [t for t in det.rule.confirm_views.transforms if t not in views.transforms]
    per_call = max(1, batch // len(views.transforms))  # ``batch`` counts images per engine call, views included
    step = max(1, int(round(tile * (1 - overlap))))
    ys = _starts(H, tile, step)
    xs = _starts(W, tile, step)
    cell = max(1, m.feature_stride // 4)
    heat = np.full((-(-H // cell), -(-W // cell)), -np.inf, np.float32)
    positions = [(x, y) for y in ys for x in xs]
    tile_probs = []
    t0 = time.perf_counter()
    chunks = [positions[i : i + per_call] for i in range(0, len(positions), per_call)]
    # Each tile writes only its core: the CAM near a tile's edge comes from zero-padded
    # features, and max-stitching would let those border values win. Cores of half the
    # overlap inside each edge (none at the scene's edges) still cover every pixel.
    margin = int((tile - step) // 2 // cell)
    n = -(-tile // cell)

    def core(x: int, y: int) -> tuple[int, int, int, int]:
        """The heatmap cells (row0, row1, col0, col1) tile (x, y) writes, and where they start in its own map."""
        t0y, t0x = (margin if y > 0 else 0), (margin if x > 0 else 0)
        t1y, t1x = (n - margin if y + tile < H else n), (n - margin if x + tile < W else n)
        return y // cell + t0y, y // cell + t1y, x // cell + t0x, x // cell + t1x

    def stitch(x: int, y: int, cam: np.ndarray) -> None:
        r0, r1, c0, c1 = core(x, y)
        region = heat[r0:r1, c0:c1]
        oy, ox = r0 - y // cell, c0 - x // cell
        np.maximum(region, resize_bilinear(cam, n, n)[oy : oy + region.shape[0], ox : ox + region.shape[1]], out=region)

    for chunk in bar(chunks, total=len(chunks), desc="scanning tiles", enabled=progress):
        crops = np.stack([_crop(scene, x, y, tile) for x, y in chunk])
        for (x, y), pred in zip(chunk, det._predict_same_size(crops, with_boxes=False, views=views, gsd=work)):
            tile_probs.append((x, y, pred.probability))
            stitch(x, y, pred.cam)
    _fill_unwritten(heat)
    peaks = detect(heat, cell, work, det.rule, (H, W), min_score=min_score)
    found, rejected = split_isolated(scene, peaks, work, det.rule) if det.rule.isolation else (peaks, [])
    if confirm and found:
        found, rejected = _confirm(det, scene, heat, cell, peaks, found, rejected, confirm, tile, batch, min_score)
    if factor != 1.0:
        found = [d.scaled(1.0 / factor) for d in found]
        rejected = [d.scaled(1.0 / factor) for d in rejected]
    return ScanResult(
        detections=found,
        heatmap=heat,
        cell=cell / factor,
        tiles=len(positions),
        positive_tiles=sum(p >= det.threshold for _, _, p in tile_probs),
        seconds=time.perf_counter() - t0,
        tile_probabilities=tile_probs,
        resample=factor,
        gsd=gsd,
        rejected=rejected,
    )


def _fill_unwritten(heat: np.ndarray, band: int = 512) -> None:
    """Give cells no tile core wrote (-inf: a scene edge's last partial cell) the map's lowest score.

    Band by band: a 20,000 px scene's map is 100 MB, and whole-map masks would add half as much again.
    """
    bands = [heat[y : y + band] for y in range(0, len(heat), band)]
    low = min(float(np.min(b, where=np.isfinite(b), initial=np.inf)) for b in bands)
    for b in bands:
        b[~np.isfinite(b)] = low if np.isfinite(low) else 0.0


def tile_size(det: Detector, H: int, W: int, tile: int | None = None) -> int:
    """The tile side a scan of an (H, W) px scene (after resampling) uses: ``tile`` or twice the training size."""
    fixed = det.engine.fixed_size
    tile = int(tile or (fixed or (2 * (det.metadata.train_size or 112),))[0])
    tile = min(tile, H, W) if fixed is None else tile
    if tile < 32:
        raise ImageError(f"scene {W}x{H} is smaller than the smallest tile (32 px)")
    return tile


def _confirm(
    det: Detector,
    scene,
    heat: np.ndarray,
    cell: int,
    peaks: list[Detection],
    found: list[Detection],
    rejected: list[Detection],
    confirm,
    tile: int,
    batch: int,
    min_score: float | None,
) -> tuple[list[Detection], list[Detection]]:
    """The confirmation: ``confirm``'s views of a crop centred on each kept detection's own peak, averaged with the
    first pass.

    The crop is ``_CONFIRM_CROP`` x the training size, rounded up to the
    feature stride (the tile, for a fixed-size engine): the peak in its
    middle, with context around it, for 0.6 of a default tile's pixels.
    Around the peak its map, averaged with the first pass in logit units,
    replaces ``heat``; the detection stays when that clears the threshold
    within 2 cells (half the CAM's stride) of its peak. Detections more
    than ``CONFIRM_MARGIN`` logits over the threshold skip it.
    """
    dropped = {id(d) for d in rejected}  # split_isolated keeps its input's order and rejects the input objects
    own = [p for p in peaks if id(p) not in dropped]
    # Sure enough: kept as the first pass scored them. The margin is over the file's threshold,
    # also in a sweep from a lower min_score, so a sweep and a scan keep the same detections.
    sure = logit(det.threshold) + CONFIRM_MARGIN
    verified = [d for d in found if d.score > sure]
    pairs = [(d, p) for d, p in zip(found, own) if d.score <= sure]
    if not pairs:
        return verified, rejected  # already strongest first, as split_isolated kept them
    found, own = [d for d, _ in pairs], [p for _, p in pairs]
    H, W = scene.shape[:2]
    m = det.metadata
    context = _CONFIRM_CROP * (m.train_size or tile / 2)
    side = (
        tile
        if det.engine.fixed_size is not None
        else min(tile, -(-int(context) // m.feature_stride) * m.feature_stride)
    )
    n = -(-side // cell)
    seen, total = len(det.rule.views.transforms), len(det.rule.views.transforms) + len(confirm)
    origins = [(_crop_origin(p.x, W, side, cell), _crop_origin(p.y, H, side, cell)) for p in own]
    # Crops of nearby peaks overlap: each averages with the first pass, not with another's. Its cells are kept
    # before any is written (a copy of the whole map would double a large scene's memory).
    first = [heat[y // cell : y // cell + n, x // cell : x // cell + n].copy() for x, y in origins]
    t = logit(det.threshold) if min_score is None else float(min_score)
    r, inner = 2, n // 4  # cells: around the peak; the crop's border left to the first pass (zero-padded features)
    per_call = max(1, batch // len(confirm))
    for i in range(0, len(own), per_call):
        chunk = list(
            zip(found[i : i + per_call], own[i : i + per_call], origins[i : i + per_call], first[i : i + per_call])
        )
        _, sums, _ = det._view_sums(np.stack([_crop(scene, x, y, side) for _, _, (x, y), _ in chunk]), confirm)
        for (d, p, (x, y), before), cam in zip(chunk, sums):
            r0, c0 = y // cell, x // cell
            r1, c1 = min(heat.shape[0], r0 + n), min(heat.shape[1], c0 + n)
            mean = (before * np.float32(seen) + resize_bilinear(cam, n, n)[: r1 - r0, : c1 - c0]) / np.float32(total)
            heat[r0 + inner : r1 - inner, c0 + inner : c1 - inner] = mean[
                inner : r1 - r0 - inner, inner : c1 - c0 - inner
            ]
            cy, cx = int(p.y // cell) - r0, int(p.x // cell) - c0
            score = float(mean[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1].max())
            (verified if score >= t else rejected).append(replace(d, score=score))
    return sorted(verified, key=lambda d: -d.score), rejected


# The confirmation's crop side, in training sizes: the peak in its middle with context around it, for about
# 0.6 of a default tile's pixels. Smaller crops (1) and whole tiles (2) let more false alarms through on the
# real scenes' perturbed copies (docs/decisions/017-mirrored-confirmation-and-its-margin.md).
_CONFIRM_CROP = 1.5
# Only detections within this many logits of the threshold are confirmed; the others keep their score. To drop
# one 2 logits over, a view would have to score 2 under; measured, the confirmation's drops all lay within
# 0.6 logit, and confirming every detection changed no result while costing more crops.
CONFIRM_MARGIN = 2.0


def _crop_origin(c: float, size: int, side: int, cell: int) -> int:
    """Where a ``side`` px crop centred on ``c`` starts along an axis of ``size`` px: on the heat grid, inside the scene
    when it fits.
    """
    o = int(round((c - side / 2) / cell)) * cell
    return max(0, min(o, (size - side) // cell * cell)) if size >= side else 0


def _starts(n: int, tile: int, step: int) -> list[int]:
    """Tile origins covering 0..n with the last tile flush with the edge."""
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile + 1, step))
    if starts[-1] != n - tile:
        starts.append(n - tile)
    return starts


def _crop(scene: np.ndarray, x: int, y: int, tile: int) -> np.ndarray:
    crop = scene[y : y + tile, x : x + tile]
    if crop.shape[:2] != (tile, tile):  # scene smaller than a fixed tile: pad with edge pixels
        crop = np.pad(crop, ((0, tile - crop.shape[0]), (0, tile - crop.shape[1]), (0, 0)), mode="edge")
    return crop
