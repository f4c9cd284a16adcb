"""Resizing as pure numpy: bilinear (the CAM's upsampling) and antialiased (downsampling scenes).

Both use half-pixel centres, like ``tf.image.resize``:

- ``resize_bilinear`` matches ``tf.image.resize(..., "bilinear", antialias=False)``;
- ``resize_antialiased`` matches ``tf.image.resize(..., "bilinear", antialias=True)``,
  the resize training uses: when shrinking by ``s`` the triangle kernel is
  widened ``s`` times, so every input pixel contributes (no aliasing of
  waves and wakes into false texture).

Scenes are resampled to the model's ground sample distance with the second,
int8 calibration images too, so the runtime sees what training saw.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resize_bilinear", "resize_antialiased"]


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of (h, w) or (h, w, C) with half-pixel centres.

    Matches ``tf.image.resize(..., "bilinear", antialias=False)`` and
    ``PIL``'s bilinear for upsampling, so a CAM upsampled here lines up with the
    image pixels the same way it would in TensorFlow.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an (h, w) or (h, w, C) array, received shape {image.shape}")
    if height < 1 or width < 1:
        raise ValueError(f"output size must be positive, received {height}x{width}")
    src = image.astype(np.float32, copy=False)
    y0, y1, fy = _sample_positions(src.shape[0], height)
    x0, x1, fx = _sample_positions(src.shape[1], width)
    if src.ndim == 3:
        fy, fx = fy[:, None], fx[:, None]
    rows = src[y0] * (1 - fy[:, None]) + src[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def _sample_positions(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def _triangle_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n_out, K) and normalised weights (n_out, K) of the antialiased triangle kernel."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    first = np.floor(centre - support).astype(np.int64)
    k = int(np.ceil(2 * support)) + 2
    idx = first[:, None] + np.arange(k)[None, :]
    w = np.clip(1.0 - np.abs(idx + 0.5 - centre[:, None]) / support, 0.0, None)
    w[(idx < 0) | (idx >= n_in)] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    return np.clip(idx, 0, n_in - 1), w.astype(np.float32)


def resize_antialiased(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (h, w) or (h, w, C) to (height, width), float32, as ``tf.image.resize(antialias=True)`` does."""
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an (h, w) or (h, w, C) array, received shape {image.shape}")
    if height < 1 or width < 1:
        raise ValueError(f"output size must be positive, received {height}x{width}")
    src = image.astype(np.float32, copy=False)
    iy, wy = _triangle_taps(src.shape[0], height)
    ix, wx = _triangle_taps(src.shape[1], width)
    extra = (None,) * (src.ndim - 1)
    rows = np.zeros((height,) + src.shape[1:], np.float32)
    for k in range(iy.shape[1]):
        rows += wy[(slice(None), k) + extra] * src[iy[:, k]]
    out = np.zeros((height, width) + src.shape[2:], np.float32)
    extra = (None,) * (src.ndim - 2)
    for k in range(ix.shape[1]):
        out += wx[(slice(None), k) + extra] * rows[:, ix[:, k]]
    return out
