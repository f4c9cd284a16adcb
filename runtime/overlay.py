"""Pictures of what the model saw: CAM heatmaps over images, with boxes (numpy + Pillow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shipcam.runtime.boxes import Box
from shipcam.runtime.cam import normalize_cam

__all__ = ["colorize", "overlay", "save_png"]

# A perceptually ordered dark-blue -> cyan -> yellow -> red ramp (jet-like, without the muddy green).
_BAND = 256  # rows blended at a time
_STOPS = np.array(
    [[0, 0, 0.35], [0, 0.45, 1.0], [0.1, 0.9, 0.9], [1.0, 0.95, 0.2], [1.0, 0.45, 0.0], [0.8, 0.0, 0.0]], np.float32
)


def _ramp(v: np.ndarray) -> np.ndarray:
    """The ramp at [0, 1] values, linear between stops, as uint8 RGB."""
    v = np.clip(np.asarray(v, np.float32), 0, 1) * (len(_STOPS) - 1)
    i = np.minimum(v.astype(int), len(_STOPS) - 2)
    f = (v - i)[..., None]
    return ((_STOPS[i] * (1 - f) + _STOPS[i + 1] * f) * 255).astype(np.uint8)


# 1024 steps: finer than the eye tells, 10x faster than interpolating
_LUT = _ramp(np.linspace(0, 1, 1024, dtype=np.float32))


def colorize(values01: np.ndarray) -> np.ndarray:
    """Map [0, 1] values to uint8 RGB (the ramp sampled at 1024 steps)."""
    idx = np.clip(np.asarray(values01, np.float32), 0, 1) * np.float32(len(_LUT) - 1)
    return _LUT[(idx + np.float32(0.5)).astype(np.intp)]


def overlay(
    image: np.ndarray,
    cam_image: np.ndarray,
    boxes: list[Box] = (),
    alpha: float = 0.45,
    label: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """Blend the CAM (normalised, or clipped to ``vmin..vmax`` in logit units) over ``image`` and draw boxes."""
    from PIL import Image, ImageDraw

    if vmin is not None and vmax is not None:
        cam01 = (np.asarray(cam_image, np.float32) - vmin) / np.float32(max(vmax - vmin, 1e-6))
    else:
        cam01 = normalize_cam(cam_image)
    out = np.empty(image.shape[:2] + (3,), np.uint8)
    for y in range(0, out.shape[0], _BAND):  # in bands of rows: float temporaries stay a few MB on a big scene
        c = cam01[y : y + _BAND]
        a = alpha * np.clip(c, 0.15, 1)[..., None]  # cool regions stay readable
        out[y : y + _BAND] = image[y : y + _BAND].astype(np.float32) * (1 - a) + colorize(c).astype(np.float32) * a
    im = Image.fromarray(out)
    draw = ImageDraw.Draw(im)
    width = max(1, round(max(image.shape[:2]) / 200))
    for b in boxes:  # a box under a pixel wide (a large scene's overview) is still drawn, as a dot
        xy = [b.x0, b.y0, max(b.x0, b.x1 - 1), max(b.y0, b.y1 - 1)]
        draw.rectangle(xy, outline=(255, 255, 255), width=width)
    if label:
        draw.rectangle([0, 0, 7 * len(label) + 6, 14], fill=(0, 0, 0))
        draw.text((3, 1), label, fill=(255, 255, 255))
    return np.asarray(im)


def save_png(array: np.ndarray, path: str | Path, compress_level: int = 6) -> Path:
    """Write ``array`` as a PNG atomically; ``compress_level`` 1 encodes a large overlay several times faster, a little
    bigger.
    """
    from PIL import Image

    from shipcam._utils.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", compress_level=compress_level)
    return path
