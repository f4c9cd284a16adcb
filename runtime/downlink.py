"""On-board downlink filter: ship chips and a compact manifest, strongest first, within a byte budget.

A satellite or drone cannot send down every scene it takes. What matters is
a small picture of each ship, so it sends fixed-size chips around its
detections plus a GeoJSON manifest that says where each chip lies and how
sure the model was (RFC 7946: one Point per chip in WGS 84 longitude/latitude
for a georeferenced scene; scene pixels otherwise, and it says so). Chips go
in order of score and stop at the first one that would take chips + manifest
past the budget: the budget buys the most confident detections, never a lucky
small chip further down the list. The manifest always goes, even with no
chip: it says the scene was seen.

Pure numpy; Pillow encodes the chips (imported on first use).
"""

from __future__ import annotations

import io
import json
from typing import Literal, NamedTuple, get_args

import numpy as np

from shipcam.runtime.detections import Detection
from shipcam.runtime.geojson import Coordinates, detections_geojson

__all__ = ["Chip", "ChipFormat", "CHIP_FORMATS", "Downlink", "chip_window", "encode_chip", "plan_downlink"]

ChipFormat = Literal["jpeg", "png"]
CHIP_FORMATS: tuple[str, ...] = get_args(ChipFormat)
_SUFFIX = {"jpeg": ".jpg", "png": ".png"}
MANIFEST_DIGITS = 7  # longitude/latitude to about a centimetre: far below a pixel, two bytes less a number


class Chip(NamedTuple):
    name: str  # file name, e.g. scene_000.jpg (rank order)
    window: tuple[int, int, int, int]  # x0, y0, x1, y1 in scene pixels, end-exclusive
    data: bytes
    detection: Detection


class Downlink(NamedTuple):
    chips: list[Chip]  # the ones that fit, strongest first
    manifest: bytes  # compact GeoJSON of exactly those chips
    left_out: int  # detections over the budget

    @property
    def nbytes(self) -> int:
        return sum(len(c.data) for c in self.chips) + len(self.manifest)


def chip_window(x: float, y: float, size: int, shape_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """A ``size`` px square centred on (x, y), moved inside the scene (clipped when the scene is smaller)."""
    if size < 1:
        raise ValueError(f"chip size must be at least 1 px, received {size}")
    H, W = shape_hw
    x0 = min(max(int(round(x - size / 2)), 0), max(W - size, 0))
    y0 = min(max(int(round(y - size / 2)), 0), max(H - size, 0))
    return x0, y0, min(x0 + size, W), min(y0 + size, H)


def encode_chip(pixels: np.ndarray, fmt: ChipFormat = "jpeg", quality: int = 90) -> bytes:
    """``pixels`` (h, w, 3) uint8 as JPEG (at ``quality``) or PNG bytes."""
    if fmt not in CHIP_FORMATS:
        raise ValueError(f"chip format must be one of {CHIP_FORMATS}, received {fmt!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, received {quality}")
    from PIL import Image

    buf = io.BytesIO()
    im = Image.fromarray(np.ascontiguousarray(pixels, np.uint8))
    if fmt == "jpeg":
        im.save(buf, format="JPEG", quality=quality)
    else:
        im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def plan_downlink(
    image: np.ndarray,
    detections: list[Detection],
    stem: str,
    budget_bytes: int | None = None,
    size: int = 96,
    fmt: ChipFormat = "jpeg",
    quality: int = 90,
    coords: Coordinates | None = None,
) -> Downlink:
    """Chips for ``detections`` of ``image`` in score order while chips + manifest fit ``budget_bytes`` (None: all).

    ``coords`` as for ``detections_geojson``: the manifest is RFC 7946 GeoJSON
    (WGS 84 longitude/latitude) for a georeferenced scene, in scene pixels
    otherwise (None).
    """
    if budget_bytes is not None and budget_bytes < 0:
        raise ValueError(f"downlink budget must be >= 0 bytes, received {budget_bytes}")
    ranked = sorted(detections, key=lambda d: -d.score)

    def chip(rank: int, d: Detection) -> Chip:
        x0, y0, x1, y1 = window = chip_window(d.x, d.y, size, image.shape[:2])
        return Chip(f"{stem}_{rank:03d}{_SUFFIX[fmt]}", window, encode_chip(image[y0:y1, x0:x1], fmt, quality), d)

    if budget_bytes is None:
        chips = [chip(rank, d) for rank, d in enumerate(ranked)]
        return Downlink(chips, _manifest(chips, stem, len(ranked), coords), 0)
    chips, sent = [], 0  # sent: bytes of the chips so far
    manifest = _manifest(chips, stem, len(ranked), coords)
    if len(manifest) > budget_bytes:  # the manifest always goes: it says the scene was seen
        raise ValueError(f"downlink budget {budget_bytes} bytes is below the empty manifest's {len(manifest)} bytes")
    for rank, d in enumerate(ranked):
        c = chip(rank, d)
        trial = _manifest(chips + [c], stem, len(ranked), coords)
        if sent + len(c.data) + len(trial) > budget_bytes:
            break
        chips.append(c)
        sent, manifest = sent + len(c.data), trial
    return Downlink(chips, manifest, len(ranked) - len(chips))


def _manifest(chips: list[Chip], stem: str, n_detections: int, coords: Coordinates | None) -> bytes:
    """The GeoJSON of the chips, one Point each, without whitespace or bboxes: every byte goes down the link."""
    geo = detections_geojson(
        [c.detection for c in chips],
        coords,
        "point",
        feature_properties=[{"chip": c.name, "window": list(c.window)} for c in chips],
        pixel_box=False,
        bbox=False,
        digits=MANIFEST_DIGITS,
    )
    # a foreign member (RFC 7946 section 6.1): the scene, what was left out, and what the coordinates are
    geo["shipcam"] = {"scene": stem, "detections": n_detections, "sent": len(chips), **geo.pop("properties")}
    return json.dumps(geo, separators=(",", ":")).encode("utf-8")
