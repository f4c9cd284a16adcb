"""Index a dataset folder into (image path, label, ship masks) samples.

Supported layouts, detected automatically:

- ``airbus``: ``train_v2/*.jpg`` + ``train_ship_segmentations_v2.csv``
  (``ImageId,EncodedPixels``, one row per ship, an empty cell for none) — also
  what ``shipcam generate`` writes;
- ``folders``: ``ship/`` and ``no_ship/`` subfolders;
- ``shipsnet``: flat files named ``1__*.png`` (ship) and ``0__*.png`` (no ship).

Every image is decoded once while indexing; unreadable ones are skipped with a
warning that names them and a count, so training never crashes mid-epoch.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from shipcam._utils.progress import progress
from shipcam.errors import DatasetError, ImageError
from shipcam.runtime.image import IMAGE_SUFFIXES, read_image

__all__ = ["Layout", "Samples", "load_dataset", "detect_layout", "AIRBUS_CSV", "AIRBUS_IMAGES"]

AIRBUS_CSV = "train_ship_segmentations_v2.csv"
AIRBUS_IMAGES = "train_v2"


class Layout(str, Enum):
    AIRBUS = "airbus"
    FOLDERS = "folders"
    SHIPSNET = "shipsnet"


@dataclass
class Samples:
    paths: list[Path]
    labels: np.ndarray  # (N,) int 0/1
    rles: list[list[str]] | None = None  # per image, one RLE per ship (airbus layout only)
    layout: Layout | None = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def ship_fraction(self) -> float:
        return float(self.labels.mean()) if len(self) else 0.0

    def subset(self, idx) -> "Samples":
        idx = np.asarray(idx, dtype=np.intp)
        return Samples(
            [self.paths[i] for i in idx],
            self.labels[idx],
            None if self.rles is None else [self.rles[i] for i in idx],
            self.layout,
        )

    def split(self, val_fraction: float, seed: int = 0) -> tuple["Samples", "Samples"]:
        """Stratified split: each class keeps its share in both halves."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), received {val_fraction}")
        rng = np.random.default_rng(seed)
        train, val = [], []
        for cls in (0, 1):
            idx = rng.permutation(np.flatnonzero(self.labels == cls))
            n_val = int(round(len(idx) * val_fraction))
            if len(idx) >= 2:
                n_val = min(max(n_val, 1), len(idx) - 1)
            val.extend(idx[:n_val])
            train.extend(idx[n_val:])
        return self.subset(rng.permutation(train)), self.subset(rng.permutation(val))


def detect_layout(root: Path) -> Layout:
    if (root / AIRBUS_CSV).is_file():
        return Layout.AIRBUS
    if (root / "ship").is_dir() or (root / "no_ship").is_dir():
        return Layout.FOLDERS
    if any(p.name[:3] in ("0__", "1__") for p in root.iterdir() if p.is_file()):
        return Layout.SHIPSNET
    raise DatasetError(
        f"{root}: cannot tell the dataset layout; expected {AIRBUS_CSV} (Airbus), "
        "ship/ + no_ship/ subfolders, or ShipsNet files named 1__*.png / 0__*.png"
    )


def load_dataset(
    root: str | Path, layout: Layout | str | None = None, check: bool = True, show_progress: bool = True
) -> Samples:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    layout = detect_layout(root) if layout is None else Layout(layout)
    loader = {Layout.AIRBUS: _airbus, Layout.FOLDERS: _folders, Layout.SHIPSNET: _shipsnet}[layout]
    samples = loader(root)
    samples.layout = layout
    if len(samples) == 0:
        raise DatasetError(f"{root}: no images found ({layout.value} layout, suffixes {', '.join(IMAGE_SUFFIXES)})")
    if check:
        samples = _drop_unreadable(samples, show_progress)
    if len(samples) == 0:
        raise DatasetError(f"{root}: none of the images could be read (see the warnings above)")
    return samples


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _airbus(root: Path) -> Samples:
    csv_path, img_dir = root / AIRBUS_CSV, root / AIRBUS_IMAGES
    if not img_dir.is_dir():
        raise DatasetError(f"{root}: {AIRBUS_CSV} found but no {AIRBUS_IMAGES}/ folder")
    ships: dict[str, list[str]] = {}
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"ImageId", "EncodedPixels"} <= set(reader.fieldnames):
            raise DatasetError(f"{csv_path}: expected columns ImageId,EncodedPixels, found {reader.fieldnames}")
        for row in reader:
            rle = (row["EncodedPixels"] or "").strip()
            ships.setdefault(row["ImageId"], [])
            if rle:
                ships[row["ImageId"]].append(rle)
    paths, labels, rles, missing = [], [], [], 0
    for image_id, runs in ships.items():
        p = img_dir / image_id
        if not p.is_file():
            missing += 1
            continue
        paths.append(p)
        labels.append(int(bool(runs)))
        rles.append(runs)
    if missing:
        warnings.warn(f"{csv_path}: {missing} listed images are not in {img_dir}; skipped", stacklevel=3)
    return Samples(paths, np.asarray(labels, np.int64), rles)


def _folders(root: Path) -> Samples:
    paths, labels = [], []
    for name, label in (("no_ship", 0), ("ship", 1)):
        if (root / name).is_dir():
            found = _images_in(root / name)
            paths += found
            labels += [label] * len(found)
    return Samples(paths, np.asarray(labels, np.int64))


def _shipsnet(root: Path) -> Samples:
    found = [p for p in _images_in(root) if p.name[:3] in ("0__", "1__")]
    return Samples(found, np.asarray([int(p.name[0]) for p in found], np.int64))


def _drop_unreadable(samples: Samples, show_progress: bool) -> Samples:
    keep, skipped = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # alpha/16-bit notes would flood the log; the pipeline reads the same way
        for i, p in enumerate(progress(samples.paths, desc="checking images", enabled=show_progress)):
            try:
                read_image(p)
                keep.append(i)
            except ImageError as e:
                skipped.append((p, str(e)))
    for p, why in skipped[:20]:
        warnings.warn(f"skipping unreadable image {why}", stacklevel=3)
    if skipped:
        more = " (first 20 listed)" if len(skipped) > 20 else ""
        warnings.warn(f"skipped {len(skipped)} of {len(samples)} images that could not be read{more}", stacklevel=3)
    out = samples.subset(keep)
    out.skipped = skipped
    return out
