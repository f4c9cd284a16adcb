"""The one small interface every engine implements."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from shipcam.errors import ModelFileError
from shipcam.runtime.metadata import ModelMetadata

__all__ = ["Engine", "OUTPUTS", "default_threads"]

OUTPUTS = ("logits", "features")


def default_threads() -> int:
    return os.cpu_count() or 1


class Engine(ABC):
    """Runs a two-output shipcam file: ``run(batch) -> {"logits": (N, 1), "features": (N, h, w, C)}``.

    ``batch`` is float32 NHWC, already preprocessed. Calls are serialised with a
    lock, so one engine is safe to share between threads (create one engine per
    thread for parallel throughput).
    """

    name: str = "engine"

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: no such model file")
        self.threads = int(threads) if threads else default_threads()
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, received threads={threads}")
        self._lock = threading.Lock()
        self.metadata: ModelMetadata  # set by subclasses
        self.input_shape: tuple[int | None, ...]  # (N, H, W, 3), None where dynamic

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        h, w = self.input_shape[1], self.input_shape[2]
        return (h, w) if h is not None and w is not None else None

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected a float32 (N, H, W, 3) batch, received shape {batch.shape}")
        fixed = self.fixed_size
        if fixed is not None and batch.shape[1:3] != fixed:
            raise ValueError(
                f"{self.path.name} was exported for {fixed[0]}x{fixed[1]} inputs, received "
                f"{batch.shape[1]}x{batch.shape[2]}; "
                "resize the image or export without --size for any-size inputs"
            )
        with self._lock:
            out = self._run(batch)
        return {"logits": out["logits"].reshape(-1, 1), "features": out["features"]}

    @abstractmethod
    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...

    def _check_outputs(self, names) -> None:
        missing = [o for o in OUTPUTS if o not in names]
        if missing:
            raise ModelFileError(
                f"{self.path}: lacks output(s) {missing}; found {sorted(names)}. "
                "shipcam needs 'logits' and 'features' (export with `shipcam export`)"
            )

    def describe(self) -> dict:
        return {
            "engine": self.name,
            "threads": self.threads,
            "input_shape": list(self.input_shape),
            "file": str(self.path),
        }
