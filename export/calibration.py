"""Calibration data for int8: one set of preprocessed images feeding both quantizers.

Following ONNX Runtime's one-method protocol, ``CalibrationSet.reader(name)``
returns an object whose ``get_next()`` yields ``{input_name: (1, H, W, 3)}``
dicts and then ``None``; ``representative_dataset()`` yields the same dicts for
the TFLite converter.

Representative means: scenes like the ones the model will see, half of them
with ships (the CAM must be right where ships are) and the rest with the hard
negatives, rather than a handful of random images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from shipcam._utils.progress import progress
from shipcam.errors import DatasetError, ImageError

__all__ = ["CalibrationSet", "synthetic_calibration", "folder_calibration", "mixed_calibration"]


@dataclass
class CalibrationSet:
    images: np.ndarray  # (N, H, W, 3) float32, already preprocessed (x * scale + offset)
    source: str

    def __len__(self) -> int:
        return len(self.images)

    def representative_dataset(self, input_name: str = "image", show_progress: bool = True) -> Iterator[dict]:
        for x in progress(self.images, total=len(self), desc="calibrating (tflite)", enabled=show_progress):
            yield {input_name: x[None]}

    def reader(self, input_name: str, show_progress: bool = True):
        return _Reader(self, input_name, show_progress)


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader protocol (duck-typed: no import needed)."""

    def __init__(self, data: CalibrationSet, input_name: str, show_progress: bool):
        self._it = iter(data.representative_dataset(input_name, show_progress))

    def get_next(self):
        return next(self._it, None)

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def synthetic_calibration(
    n: int, size: int, scale: float, offset: float, seed: int = 1234, ship_fraction: float = 0.5, gsd: float = 3.0
) -> CalibrationSet:
    from shipcam.train.examples import synthetic_examples

    if n < 1:
        raise ValueError(f"calibration needs at least one image, received n={n}")
    imgs = synthetic_examples(n, size, seed, ship_fraction=ship_fraction, gsd=gsd)[0].astype(np.float32)
    return CalibrationSet(
        imgs * np.float32(scale) + np.float32(offset),
        f"synthetic(n={n}, size={size}, seed={seed}, ship_fraction={ship_fraction})",
    )


def folder_calibration(
    folder: str | Path, n: int, size: int, scale: float, offset: float, seed: int = 0
) -> CalibrationSet:
    """``n`` images drawn from a dataset folder (any layout ``load_dataset`` reads), ships first-class."""
    from shipcam.runtime.image import read_image
    from shipcam.runtime.resize import resize_antialiased
    from shipcam.train.examples import dataset_examples

    paths, labels = dataset_examples(folder)
    rng = np.random.default_rng(seed)
    pos, neg = rng.permutation(np.flatnonzero(labels == 1)), rng.permutation(np.flatnonzero(labels == 0))
    order = np.concatenate([pos[: n // 2], neg, pos[n // 2 :]])[:n]
    imgs, bad = [], 0
    for i in progress(order, total=len(order), desc="reading calibration images"):
        try:
            img = read_image(paths[i]).astype(np.float32)
        except ImageError:
            bad += 1
            continue
        if img.shape[:2] != (size, size):
            img = resize_antialiased(img, size, size)  # what training's tf.image.resize(antialias=True) gives
        imgs.append(img)
    if not imgs:
        raise DatasetError(f"{folder}: no readable calibration images ({bad} unreadable)")
    arr = np.stack(imgs).astype(np.float32)
    return CalibrationSet(arr * np.float32(scale) + np.float32(offset), f"folder({folder}, n={len(imgs)})")


def mixed_calibration(*sets: CalibrationSet) -> CalibrationSet:
    """One set holding the images of several (synthetic scenes and real chips, say), in order."""
    if not sets:
        raise ValueError("mixed_calibration needs at least one calibration set")
    return CalibrationSet(np.concatenate([s.images for s in sets]), " + ".join(s.source for s in sets))
