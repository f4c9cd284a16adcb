"""The small maths the runtime shares: the logistic function and its inverse, 3x3 neighbourhood maxima.

Pure numpy (js/src/maths.mjs has the JavaScript sigmoid and logit).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sigmoid", "logit", "max3x3", "local_max"]


def sigmoid(x):
    """Numerically stable logistic function (scalars or arrays)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def logit(p: float) -> float:
    """Inverse of ``sigmoid``: a probability threshold in logit units."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a probability threshold must be in (0, 1), received {p}")
    return math.log(p / (1 - p))


def max3x3(a: np.ndarray, fill) -> np.ndarray:
    """The maximum over each cell's 3x3 neighbourhood, outside cells taken as ``fill`` (on bool: a dilation)."""
    p = np.pad(a, 1, constant_values=fill)
    h, w = a.shape
    m = a.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            np.maximum(m, p[dy : dy + h, dx : dx + w], out=m)
    return m


def local_max(a: np.ndarray) -> np.ndarray:
    """Cells equal to the maximum of their 3x3 neighbourhood (edges padded with -inf)."""
    return a >= max3x3(a, -np.inf)
