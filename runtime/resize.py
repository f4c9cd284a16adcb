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
    """Indices (n_out, K) and normalised weights (n_out, K) of the antialiased triangle kernel.

    Only taps that carry weight are kept: when enlarging, the kernel spans two
    input pixels of the four its fixed window holds, and skipping the zeros
    halves the work of a 2x upsample with identical sums.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    first = np.floor(centre - support).astype(np.int64)
    k = int(np.ceil(2 * support)) + 2
    idx = first[:, None] + np.arange(k)[None, :]
    w = np.clip(1.0 - np.abs(idx + 0.5 - centre[:, None]) / support, 0.0, None)
    w[(idx < 0) | (idx >= n_in)] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    order = np.argsort(w == 0, axis=1, kind="stable")  # weighted taps first, in their order
    idx, w = np.take_along_axis(idx, order, 1), np.take_along_axis(w, order, 1)
    k = int((w > 0).sum(axis=1).max())
    return np.clip(idx[:, :k], 0, n_in - 1), w[:, :k].astype(np.float32)


def _resample(src: np.ndarray, axis: int, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted sum of taps along ``axis`` (0 or 1) of float32 ``src``, into preallocated buffers."""
    shape = list(src.shape)
    shape[axis] = idx.shape[0]
    out, tmp = np.empty(shape, np.float32), np.empty(shape, np.float32)
    wshape = (-1,) + (1,) * (src.ndim - 1) if axis == 0 else (1, -1) + (1,) * (src.ndim - 2)
    for k in range(idx.shape[1]):
        np.take(src, idx[:, k], axis=axis, out=tmp)
        tmp *= w[:, k].reshape(wshape)
        if k == 0:
            out, tmp = tmp, out
        else:
            out += tmp
    return out


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
    # Separable passes, the cheaper order first: a column gather costs more than a row's contiguous copy.
    rows_first = height * src.shape[1] * iy.shape[1] + 2 * height * width * ix.shape[1]
    cols_first = 2 * src.shape[0] * width * ix.shape[1] + height * width * iy.shape[1]
    if rows_first <= cols_first:
        return _resample(_resample(src, 0, iy, wy), 1, ix, wx)
    return _resample(_resample(src, 1, ix, wx), 0, iy, wy)


def block_mean(image: np.ndarray, n: int) -> np.ndarray:
    """uint8 (H, W, C) averaged over n x n blocks of whole pixels (floor), to (H // n, W // n, C); the rest cut.

    n^2 strided slices summed in uint16: a fraction of a reduce over reshaped
    axes, and a tenth of an antialiased resample's cost, without aliasing.
    """
    if n <= 1:
        return image
    h, w = image.shape[0] // n, image.shape[1] // n
    acc = np.uint16 if n <= 16 else np.uint32  # 16 x 16 x 255 still fits 16 bits
    total = sum(image[i : h * n : n, j : w * n : n].astype(acc) for i in range(n) for j in range(n))
    return (total // (n * n)).astype(np.uint8)


def block_max(a: np.ndarray, n: int) -> np.ndarray:
    """A 2-D map's maximum over n x n blocks (floor; the rest cut): a large scene's heatmap for an overview, its
    peaks kept, without the whole-map temporaries a resize of it would take."""
    if n <= 1:
        return a
    h, w = a.shape[0] // n, a.shape[1] // n
    out = a[: h * n : n, : w * n : n].copy()
    for i in range(n):
        for j in range(n):
            np.maximum(out, a[i : h * n : n, j : w * n : n], out=out)
    return out
