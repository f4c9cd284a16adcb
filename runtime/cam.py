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

from shipcam.runtime.resize import resize_bilinear  # re-exported: the CAM is upsampled with it

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


def _min_max(cam: np.ndarray) -> np.ndarray | None:
    """``cam`` scaled to [0, 1] by its minimum and maximum; None for a constant map (or one with NaN)."""
    cam = np.asarray(cam, dtype=np.float32)
    lo, hi = float(cam.min()), float(cam.max())
    return (cam - lo) / np.float32(hi - lo) if hi - lo >= 1e-12 else None


def normalize_cam(cam: np.ndarray) -> np.ndarray:
    """Min-max scale a CAM to [0, 1] (a constant map becomes zeros)."""
    cam = np.asarray(cam, dtype=np.float32)
    if not np.isfinite(cam.min()) or not np.isfinite(cam.max()):
        raise ValueError("CAM contains NaN or inf")
    scaled = _min_max(cam)
    return np.zeros_like(cam) if scaled is None else scaled


def cam_mask(cam, fraction: float = 0.2) -> np.ndarray:
    """The CAM paper's localisation rule: cells at or above ``fraction`` of the way from the map's minimum to its
    maximum.

    Min-max scaled first, so the rule depends on neither the CAM's offset (the
    dense bias) nor its scale; a constant map has no such cells.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), received {fraction}")
    scaled = _min_max(cam)
    return np.zeros(np.shape(cam), bool) if scaled is None else scaled >= fraction
