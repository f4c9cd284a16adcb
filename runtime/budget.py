"""A scan's memory budget: the batch, and how the scene is resampled, chosen so the process stays under it.

What a scan holds at its peak, each part estimated before the first tile:

- the process as it stands: interpreter, numpy, the engine and its model
  (measured: the resident set when the plan is made);
- the scene: a PNG/JPEG decoded whole (Pillow's copy and numpy's, while it
  converts), or GDAL's block cache for a GeoTIFF/JP2 read window by window;
- a scene at a GSD outside the model's range, resampled whole in float32,
  unless that would pass the budget: then it is resampled window by window;
- the stride/4 heatmap and the working copies peak finding and writing take;
- per tile in an engine call: the engine's activations (its arena: one blank
  tile is run and the peak measured) and the tile's float32 copies.

The batch is as many tiles per call as the rest leaves room for, at most
``MAX_BATCH``; a scene that does not fit with one tile is refused before it
is decoded, naming the memory it needs. Batching gains little on CPUs (a
scene_1 scan took as long at 1 tile per call as at 8), so a small budget
costs memory, not time.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass, field

import numpy as np

from shipcam._utils import memory
from shipcam.errors import ShipcamError
from shipcam.runtime.scene import GDAL_CACHE_MB

__all__ = ["MemoryPlan", "plan_scan", "DEFAULT_MAX_MEMORY_MB", "MAX_BATCH", "check_budget"]

# What the runtime promises by default: an edge computer's share, and what scene_1 and a
# 20,000 px GeoTIFF were measured to stay under with every default.
DEFAULT_MAX_MEMORY_MB = 400.0
MAX_BATCH = 8  # tiles per engine call when memory allows: the historical default; more gains nothing on CPUs
# Pillow holds RGB as 4 bytes a pixel and numpy's copy takes 3 more while it converts.
DECODE_BYTES_PER_PX = 7
# The heatmap and peak finding's suppression mask (a byte a cell); writing a COG heatmap adds 0.7x the map
# (GDAL's tiles and overviews, through a file, under a 16 MB block cache: runtime.geojson.COG_CACHE_MB).
HEAT_COPIES = 1.3
HEAT_COPIES_COG = 2.0
TILE_COPIES = 2  # float32 copies of a tile the scan holds beside the engine's input: the crop and a view
OVERLAY_MB = 32  # the overlay at 1,024 px: the binned scene, the resized heatmap, the blended RGB
# Each more tile in a call, against the first: measured 0.7-1.25x (LiteRT int8 0.7, ONNX Runtime fp32 1.25), as
# the first also sets up buffers that later tiles share while an arena grows in chunks.
MORE_TILES = 1.25
# A fresh `shipcam scan` process with its engine loaded: measured 45 MB (LiteRT int8) to 69 MB (ONNX Runtime
# fp32) on Linux. The base where /proc is missing, and beneath what a scene adds to an idle Ray worker.
FRESH_PROCESS_MB = 80.0
FALLBACK_BYTES_PER_INPUT_PX = 256  # ... and ONNX Runtime's fp32 arena for MobileNetV2, per input pixel (215 measured)

_cost_cache: "weakref.WeakKeyDictionary[object, dict[int, float]]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class MemoryPlan:
    """The choices a budget made and the estimate behind them (MB)."""

    budget_mb: float | None
    batch: int  # images per engine call
    window_resample: bool  # resample window by window instead of holding the resampled scene
    estimate_mb: dict = field(default_factory=dict)  # the parts, and "total" at the chosen batch

    def to_dict(self) -> dict:
        return asdict(self)


def process_rss_mb() -> float | None:
    """What the process holds now, the base every scan's plan starts from."""
    return memory.current_rss_mb()


def check_budget(value: float | None) -> float | None:
    """``value`` if it is a usable budget (None: no limit); a one-line error naming it otherwise."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ShipcamError(f"--max-memory-mb must be a positive number of MB or 'none', received {value!r}") from None
    if not v > 0 or not np.isfinite(v):
        raise ShipcamError(f"--max-memory-mb must be a positive number of MB or 'none', received {value!r}")
    return v


def engine_cost_mb(det, tile: int) -> float:
    """The peak memory the engine adds to run one blank ``tile`` px tile (measured once per engine and tile size).

    Only one tile: engines keep their arenas, so probing a batch of 2 would hold a second tile's worth of
    memory through the whole scan, even one that then runs a tile at a time.
    """
    per_engine = _cost_cache.setdefault(det.engine, {})
    if tile not in per_engine:
        blank = det.preprocess(np.zeros((1, tile, tile, 3), np.uint8))
        before = memory.current_rss_mb()
        if before is not None and memory.reset_peak_rss():
            det.engine.run(blank)
            per_engine[tile] = max(0.0, memory.peak_rss_mb() - before)
        else:
            per_engine[tile] = tile * tile * FALLBACK_BYTES_PER_INPUT_PX / 1e6
    return per_engine[tile]


def plan_scan(
    det,
    name: str,
    shape: tuple[int, int],
    factor: float,
    windowed: bool,
    tile: int,
    cell: float,
    max_memory_mb: float | None,
    batch: int | None = None,
    heatmap: str = "png",
    process_mb: float | None = None,
) -> MemoryPlan:
    """The batch (at most ``batch``, else ``MAX_BATCH``) and resampling that keep a scan of ``name`` under budget.

    ``shape``: the scene's (H, W) px before resampling by ``factor``; ``tile``
    and ``cell``: the tile side and heatmap cell in resampled pixels.
    ``heatmap``: the heatmap written (``png``, ``cog`` or ``none``).
    ``process_mb``: the process's own memory (default: its resident set now).
    Raises ``ShipcamError`` naming the file and the MB needed when one tile
    at a time does not fit.
    """
    cap = MAX_BATCH if batch is None else int(batch)
    if cap < 1:
        raise ShipcamError(f"--batch must be at least 1, received {batch!r}")
    views = len(det.rule.views.transforms)
    H, W = shape
    h, w = max(1, round(H * factor)), max(1, round(W * factor))
    parts = {
        "process": process_mb or process_rss_mb() or FRESH_PROCESS_MB,
        "scene": GDAL_CACHE_MB if windowed else H * W * DECODE_BYTES_PER_PX / 1e6,
        "heatmap": (-(-h // cell)) * (-(-w // cell)) * 4 * (HEAT_COPIES_COG if heatmap == "cog" else HEAT_COPIES) / 1e6,
        "overlay": OVERLAY_MB if heatmap == "png" else 0.0,  # only the PNG heatmap is an overlay
    }
    # A whole resample: the float32 source, one separable pass and the result (resize_antialiased).
    whole_resample = 0.0 if factor == 1.0 or windowed else (H * W + h * W + h * w) * 3 * 4 / 1e6
    first = engine_cost_mb(det, tile)
    copies = TILE_COPIES * tile * tile * 3 * 4 / 1e6
    parts["engine"] = first + copies
    per_tile = MORE_TILES * first + copies
    fixed = sum(parts.values())
    window_resample = whole_resample > 0 and max_memory_mb is not None and fixed + whole_resample > max_memory_mb
    parts["resample"] = 0.0 if window_resample else whole_resample
    fixed = sum(parts.values())
    if max_memory_mb is None:
        per_call = max(1, cap // views)
    else:
        per_call = min(max(1, cap // views), 1 + int((max_memory_mb - fixed) // per_tile))
        if fixed > max_memory_mb:
            detail = ", ".join(f"{k} {v:.0f}" for k, v in parts.items() if v >= 0.5)
            hint = (
                "; PNG/JPEG are decoded whole: convert it to a tiled GeoTIFF (gdal_translate -co TILED=YES) and "
                'install "shipcam[geo]"'
                if not windowed and parts["scene"] > max_memory_mb / 2
                else f"; --max-memory-mb {math.ceil(fixed / 10) * 10} or more would run it"
            )
            raise ShipcamError(
                f"{name}: a scan needs about {fixed:.0f} MB even one {tile} px tile at a time ({detail}), "
                f"over --max-memory-mb {max_memory_mb:g}{hint}"
            )
    parts["per_more_tile"] = per_tile
    parts = {k: round(v, 1) for k, v in parts.items()}
    parts["total"] = round(fixed + (per_call - 1) * per_tile, 1)
    return MemoryPlan(max_memory_mb, per_call * views, window_resample, parts)
