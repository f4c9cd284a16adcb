"""Wall-clock timing of a call, the one loop every benchmark uses."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

__all__ = ["time_calls"]


def time_calls(fn: Callable[[], object], warmup: int, runs: int) -> np.ndarray:
    """Milliseconds per call of ``fn`` over ``runs`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out * 1e3
