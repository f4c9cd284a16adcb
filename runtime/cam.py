"""Class Activation Maps as pure numpy functions (Zhou et al. 2016).

For a classifier ``logit = w . pool(F) + b`` over a feature map ``F`` (h, w, C),
the CAM is the same dense layer applied at every position *before* pooling::

    cam[i, j] = F[i, j, :] . w + b

With global average pooling the mean of the CAM equals the logit exactly; with
global max pooling the CAM shows where each channel's maximum came from. The
CAM is computed on the logit, not the sigmoid, so it stays linear in ``F``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_activation_map", "resize_bilinear", "normalize_cam"]


def class_activation_map(features: np.ndarray, weights: np.ndarray, bias: float = 0.0) -> np.ndarray:
    """Project ``features`` (..., h, w, C) onto the dense ``weights`` (C,): returns (..., h, w)."""
    features = np.asarray(features)
    weights = np.asarray(weights, dtype=np.float32).reshape(-1)
    if features.shape[-1] != weights.shape[0]:
        raise ValueError(
            f"features have {features.shape[-1]} channels but the dense weights have "
            f"{weights.shape[0]}; received features.shape={features.shape}"
        )
    return features.astype(np.float32, copy=False) @ weights + np.float32(bias)


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


def normalize_cam(cam: np.ndarray) -> np.ndarray:
    """Min-max scale a CAM to [0, 1] (a constant map becomes zeros)."""
    cam = np.asarray(cam, dtype=np.float32)
    lo, hi = float(cam.min()), float(cam.max())
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError("CAM contains NaN or inf")
    if hi - lo < 1e-12:
        return np.zeros_like(cam)
    return (cam - lo) / (hi - lo)
