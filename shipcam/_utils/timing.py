"""Wall-clock timing of calls: the loops the benchmarks and the exporter's recommendation share."""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

__all__ = ["time_calls", "time_interleaved"]


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


def time_interleaved(fns: Sequence[Callable[[], object]], warmup: int, runs: int) -> np.ndarray:
    """Milliseconds per call, shape ``(len(fns), runs)``: the calls take turns, one of each per round.

    On a shared machine the load drifts over seconds; taking turns puts every function under the same
    drift, so their ratios hold where back-to-back runs of each would move by ±15%.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    out = np.empty((len(fns), runs))
    for i in range(runs):
        for j, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            out[j, i] = time.perf_counter() - t
    return out * 1e3
