"""Labelled example images for the layers above training: export's int8 calibration and parity sets.

Export asks for images through these functions rather than reaching into
``train.data`` (an import-linter contract holds it): synthetic scenes from the
generator, and the files and labels of a dataset folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["synthetic_examples", "dataset_examples"]


def synthetic_examples(
    n: int, size: int, seed: int, ship_fraction: float = 0.5, gsd: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scenes ``0..n-1`` of ``seed``, ``size`` px: (N, size, size, 3) images and whether each holds a ship (int64 0/1).

    ``gsd`` is the scenes' metres/pixel (default: the generator's own).
    """
    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    cfg = (
        SceneConfig(size=size, ship_fraction=ship_fraction)
        if gsd is None
        else SceneConfig(size=size, ship_fraction=ship_fraction, gsd=gsd)
    )
    images, labels = [], []
    for i in range(n):
        scene = generate_scene(cfg, seed=seed, index=i)
        images.append(scene.image)
        labels.append(scene.has_ship)
    return np.stack(images), np.array(labels, np.int64)


def dataset_examples(folder: str | Path) -> tuple[list[Path], np.ndarray]:
    """The image files of a dataset folder (any layout ``load_dataset`` reads, not checked) and their labels (0/1)."""
    from shipcam.train.data.sources import load_dataset

    samples = load_dataset(folder, check=False, show_progress=False)
    return samples.paths, samples.labels
