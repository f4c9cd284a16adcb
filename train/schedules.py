"""Learning-rate maths as pure functions of the step, (Keras wrappers live in ``callbacks``).

- Cyclical learning rates (Smith 2017, "Cyclical Learning Rates for Training
  Neural Networks"): ``triangular``, ``triangular2`` and ``exp_range``.
- The learning-rate range test ("LR finder", the blog's "landscaping"): an
  exponential sweep, a bias-corrected smoothed loss, divergence detection and a
  suggested rate.

The formulas take an array-module argument ``xp`` (numpy or ``keras.ops``) so
the same code is both the tested closed form and the in-graph schedule.
"""

from __future__ import annotations

import math
from enum import Enum
from types import ModuleType

import numpy as np

__all__ = [
    "CycleMode",
    "cyclic_lr",
    "lr_sweep",
    "smooth_losses",
    "diverged",
    "suggest_lr",
]


class CycleMode(str, Enum):
    TRIANGULAR = "triangular"
    TRIANGULAR2 = "triangular2"
    EXP_RANGE = "exp_range"


def cyclic_lr(
    step,
    base_lr: float,
    max_lr: float,
    step_size: float,
    mode: str = "triangular",
    gamma: float = 1.0,
    xp: ModuleType = np,
):
    """Learning rate at ``step`` (0-based). A full cycle is ``2 * step_size`` steps.

    cycle = floor(1 + step / (2 step_size)); x = |step / step_size - 2 cycle + 1|
    lr = base + (max - base) * max(0, 1 - x) * scale, where scale is 1
    (triangular), 1 / 2**(cycle - 1) (triangular2) or gamma**step (exp_range).
    """
    mode = CycleMode(mode)
    if step_size <= 0:
        raise ValueError(f"step_size must be positive, received step_size={step_size}")
    step = xp.cast(step, "float32") if xp is not np else np.asarray(step, dtype=np.float64)
    cycle = xp.floor(1.0 + step / (2.0 * step_size))
    x = xp.abs(step / step_size - 2.0 * cycle + 1.0)
    amplitude = (max_lr - base_lr) * xp.maximum(0.0, 1.0 - x)
    if mode is CycleMode.TRIANGULAR2:
        amplitude = amplitude / xp.power(2.0, cycle - 1.0)
    elif mode is CycleMode.EXP_RANGE:
        amplitude = amplitude * xp.power(gamma, step)
    return base_lr + amplitude


def lr_sweep(start_lr: float, end_lr: float, num_steps: int) -> np.ndarray:
    """Exponentially spaced rates from ``start_lr`` to ``end_lr`` inclusive."""
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, received start_lr={start_lr}, end_lr={end_lr}")
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2, received {num_steps}")
    return start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))


def smooth_losses(losses, beta: float = 0.98) -> np.ndarray:
    """Exponential moving average with bias correction: avg_i / (1 - beta**(i+1))."""
    losses = np.asarray(losses, dtype=np.float64)
    out, avg = np.empty_like(losses), 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def diverged(smoothed_loss: float, best_loss: float, factor: float = 4.0) -> bool:
    """The range test stops once the smoothed loss exceeds ``factor`` x its best (or is not finite)."""
    return not math.isfinite(smoothed_loss) or smoothed_loss > factor * best_loss


def suggest_lr(lrs, smoothed, skip_start: float = 0.1, skip_end: int = 3, window: int = 5) -> dict[str, float]:
    """Two classic picks from a range test: the steepest descent of loss vs log(lr), and the minimum / 10.

    The first ``skip_start`` fraction of points is ignored (the smoothed loss
    is still warming up there), and the slope is taken on a further
    ``window``-point moving average, so one noisy batch cannot pick the rate.
    """
    lrs, smoothed = np.asarray(lrs, np.float64), np.asarray(smoothed, np.float64)
    lo = max(1, int(len(lrs) * skip_start))
    hi = len(lrs) - skip_end
    if len(lrs) != len(smoothed) or hi - lo < window + 2:
        raise ValueError(f"need more points to suggest a rate (received {len(lrs)})")
    finite = np.isfinite(smoothed[lo:hi])
    seg_lr, seg = lrs[lo:hi][finite], smoothed[lo:hi][finite]
    kernel = np.ones(window) / window
    avg = np.convolve(seg, kernel, mode="same")
    edge = window // 2  # 'same' convolution is biased at the ends
    inner = slice(edge, len(avg) - edge)
    lr_in, avg_in = seg_lr[inner], avg[inner]
    i_min = int(np.argmin(avg_in))
    # The steepest descent is searched only up to the loss minimum: past it the
    # curve is diverging, and noise there can look like a steep fall.
    stop = max(i_min + 1, min(3, len(avg_in)))
    slope = np.gradient(avg_in, np.log(lr_in))[:stop]
    steepest = float(lr_in[int(np.argmin(slope))])
    return {"steepest": steepest, "min_over_10": float(lr_in[i_min]) / 10.0}
