"""Point labels of ships in scenes, and matching detections to them.

A labels file is a CSV with one object per row::

    scene,x,y,length_m,label,note
    scene_1.png,1678,472,240,ship,red tanker at anchor
    scene_1.png,850,150,450,ignore,marina (packed small boats)

``x, y`` is the object's centre in scene pixels, ``length_m`` its approximate
length in metres, ``label`` ``ship`` or ``ignore`` (objects nobody could
decide: tiny boats, hulls packed in docks, platforms). An optional ``gsd``
column gives the scene's metres/pixel.

Matching (the real-scene metric, used by ``eval-scenes``, the benchmarks,
the demo and training): a ship is found when a detection lies within
``R = max(60 m, length / 2)`` of its centre. Detections are taken strongest
first; each takes the nearest ship not yet found within its radius (a true
positive); else, one near an ``ignore`` object counts neither way; else it
is a false alarm (a second detection on a found ship included). Taking
detections strongest first makes the matching at any threshold a prefix of
the matching at a lower one, so one scan gives the whole precision-recall
curve.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from shipcam.errors import DatasetError

__all__ = ["SceneLabel", "read_labels", "match_detections", "MatchResult", "scene_area", "MIN_RADIUS_M"]

MIN_RADIUS_M = 60.0
LabelKind = Literal["ship", "ignore"]


@dataclass(frozen=True)
class SceneLabel:
    x: float
    y: float
    length_m: float
    label: LabelKind
    note: str = ""

    def radius_px(self, gsd: float, fixed_m: float | None = None) -> float:
        return (fixed_m if fixed_m is not None else max(MIN_RADIUS_M, self.length_m / 2)) / gsd


def read_labels(path: str | Path) -> tuple[dict[str, list[SceneLabel]], dict[str, float]]:
    """Labels by scene file name, and the GSD of scenes whose rows give one."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such labels file")
    out: dict[str, list[SceneLabel]] = {}
    gsds: dict[str, float] = {}
    seen: dict[tuple, int] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"scene", "x", "y", "length_m", "label"} - set(reader.fieldnames or [])
        if reader.fieldnames is None:
            raise DatasetError(
                f"{path}: empty labels file; expected a header scene,x,y,length_m,label[,note][,gsd] and one row per "
                "object"
            )
        if missing:
            raise DatasetError(
                f"{path}: missing column(s) {sorted(missing)}; expected scene,x,y,length_m,label[,note][,gsd]"
            )
        for n, row in enumerate(reader, start=2):
            try:
                kind = row["label"].strip()
                if kind not in ("ship", "ignore"):
                    raise ValueError(f"label must be 'ship' or 'ignore', received {kind!r}")
                lab = SceneLabel(
                    float(row["x"]), float(row["y"]), float(row["length_m"]), kind, (row.get("note") or "").strip()
                )
                if row.get("gsd"):
                    gsds[row["scene"]] = float(row["gsd"])
            except (TypeError, ValueError) as e:
                raise DatasetError(f"{path}, line {n}: {e}") from None
            key = (row["scene"].strip(), lab.x, lab.y, lab.label)
            if key in seen:
                raise DatasetError(
                    f"{path}, line {n}: duplicates line {seen[key]} ({key[0]}, {lab.label} at x={lab.x:g}, y={lab.y:g})"
                )
            seen[key] = n
            out.setdefault(row["scene"].strip(), []).append(lab)
    if not out:
        raise DatasetError(f"{path}: no labels (the file has no rows{'' if reader.fieldnames else ' and no header'})")
    return out, gsds


@dataclass
class MatchResult:
    status: np.ndarray  # per detection (score order as given): 1 true positive, 0 ignored, -1 false alarm
    found: np.ndarray  # per ship label: matched at any score
    ship_index: np.ndarray  # per detection: the ship it found, or -1

    @property
    def tp(self) -> int:
        return int((self.status == 1).sum())

    @property
    def fp(self) -> int:
        return int((self.status == -1).sum())


def match_detections(
    points: np.ndarray, scores: np.ndarray, labels: list[SceneLabel], gsd: float, radius_m: float | None = None
) -> MatchResult:
    """Match detection ``points`` (N, 2) in pixels with ``scores`` (N,) to ``labels``, strongest first."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    scores = np.asarray(scores, np.float64).reshape(-1)
    ships = [lab for lab in labels if lab.label == "ship"]
    ignores = [lab for lab in labels if lab.label == "ignore"]
    sxy = np.array([[s.x, s.y] for s in ships], np.float64).reshape(-1, 2)
    sr = np.array([s.radius_px(gsd, radius_m) for s in ships], np.float64)
    ixy = np.array([[s.x, s.y] for s in ignores], np.float64).reshape(-1, 2)
    ir = np.array([s.radius_px(gsd, radius_m) for s in ignores], np.float64)
    status = np.zeros(len(points), np.int64)
    which = np.full(len(points), -1, np.int64)
    found = np.zeros(len(ships), bool)
    for i in np.argsort(-scores, kind="stable"):
        p = points[i]
        d = np.hypot(*(sxy - p).T) if len(sxy) else np.zeros(0)
        free = (d <= sr) & ~found
        if free.any():
            k = int(np.flatnonzero(free)[np.argmin(d[free])])
            found[k], status[i], which[i] = True, 1, k
        elif len(ixy) and (np.hypot(*(ixy - p).T) <= ir).any():
            status[i] = 0
        else:
            status[i] = -1
    return MatchResult(status, found, which)


def scene_area(shape_hw: tuple[int, int], gsd: float) -> tuple[float, float]:
    """(megapixels, square kilometres) of a scene."""
    h, w = shape_hw
    return h * w / 1e6, h * w * gsd * gsd / 1e6
