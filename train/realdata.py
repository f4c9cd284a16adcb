"""Labelled real scenes as training data: checked labels, chips mixed with synthetic ones, hard negatives mined in
rounds.

``train --scenes DIR --labels CSV`` reads the scenes, checks every label
against them before anything is written, and adds ``real_ratio`` of the
training set as chips cut from them (``data.scenes``). After the regular
phases, each mining round scans the training scenes with the model as it
stands, takes the strongest peaks away from every label (a quay, a roof, a
wake the model called a ship) and trains one more phase with windows around
them added as negatives.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np

from shipcam.errors import DatasetError
from shipcam.runtime.scoring import LabelledScene
from shipcam.train.data.scenes import (
    ChipConfig,
    check_labels_fit,
    mine_chips,
    negative_chips,
    pasted_chips,
    positive_chips,
    write_chips,
)
from shipcam.train.data.sources import Samples, load_dataset

__all__ = ["load_training_scenes", "real_samples", "mined_samples", "concat_samples", "POSITIVE_SHARE", "MINED_PEAKS"]

POSITIVE_SHARE = 0.4  # of the real chips: ships (two thirds in place, one third pasted on other water)
# Ships are also drawn up to this much coarser than the range's coarse end: labelled ships are mostly
# large (170-270 m in the two PlanetScope scenes), and shrunk they stand in for the smaller vessels
# other scenes hold. Negatives stay inside the range.
SHIP_SHRINK = 1.5
MINED_PEAKS = 120  # strongest peaks away from every label, per scene and round
MINED_PER_PEAK = 3  # windows around each
MINING_FLOOR = 0.2  # probability: peaks weaker than this are not worth a window


def load_training_scenes(scenes: list[str], labels: str | Path | None) -> list[LabelledScene]:
    """The labelled scenes to train on, every label checked against them; one-line errors name the file, the row and the
    value.
    """
    from shipcam.runtime.labels import read_labels
    from shipcam.runtime.scoring import load_scenes

    if not labels:
        raise DatasetError(f"--scenes {' '.join(scenes)} needs --labels CSV (see labels/README.md)")
    rows, _ = read_labels(labels)
    folders = [Path(s) for s in scenes if Path(s).is_dir()]
    given = {Path(s).name for s in scenes if Path(s).is_file()}
    if folders:  # a folder of scenes: every scene the labels name must be in it
        present = given | {p.name for f in folders for p in f.iterdir()}
        for name in rows:
            if name not in present:
                raise DatasetError(
                    f"{labels}: rows name scene {name!r}, which is not in {', '.join(str(f) for f in folders)}"
                )
    loaded, failed = load_scenes(scenes, labels)
    if failed:
        raise DatasetError(f"{failed[0]['error']}")
    for s in loaded:
        check_labels_fit(s, labels)
    return loaded


def real_samples(
    scenes: list[LabelledScene],
    n_real: int,
    size: int,
    gsd_range: tuple[float, float],
    root: Path,
    batch_size: int,
    seed: int = 0,
) -> Samples:
    """About ``n_real`` chips from ``scenes`` (``POSITIVE_SHARE`` of them ships), written under ``root`` once and
    reused.
    """
    ships = sum(lab.label == "ship" for s in scenes for lab in s.labels)
    area = sum(s.image.shape[0] * s.image.shape[1] for s in scenes)
    pos = n_real * POSITIVE_SHARE / max(ships, 1)
    cfg = ChipConfig(
        size=size,
        gsd_range=gsd_range,
        per_ship=max(1, round(pos * 2 / 3)),
        pasted_per_ship=max(1, round(pos / 3)),
        negatives_per_ship=0,
    )
    ships_cfg = dataclasses.replace(cfg, gsd_range=(gsd_range[0], gsd_range[1] * SHIP_SHRINK))
    if not (root / "ship").is_dir() and not (root / "no_ship").is_dir():
        rng = np.random.default_rng([seed, 5])
        positives, negatives = [], []
        for s in scenes:
            p = positive_chips(s, ships_cfg, rng)
            if len(p) < batch_size:
                print(
                    f"note: {s.path.name} gives {len(p)} ship chips, fewer than one batch of {batch_size}: it adds "
                    "negatives and little else",
                    file=sys.stderr,
                )
            positives += p
            negatives += negative_chips(
                s, round(n_real * (1 - POSITIVE_SHARE) * s.image.shape[0] * s.image.shape[1] / area), cfg, rng
            )
        # ships laid on the water of every training scene, not only their own
        positives += pasted_chips(scenes, scenes, ships_cfg, rng)
        write_chips(root, positives, negatives, prefix="real")
    return load_dataset(root, show_progress=False)


def mined_samples(
    detector_factory, scenes: list[LabelledScene], size: int, gsd_range: tuple[float, float], root: Path, seed: int = 0
) -> Samples | None:
    """Negatives around the strongest peaks a model finds away from every label of ``scenes``; None when it finds none.

    ``detector_factory()`` gives a ``Detector`` on the model as it stands; its
    rule is used bare (no isolation check, no confirmation): the network's
    own mistakes are the ones to learn from.
    """
    from dataclasses import replace

    from shipcam.runtime.maths import logit
    from shipcam.runtime.views import Views

    if not (root / "no_ship").is_dir():
        det = detector_factory()
        det.rule = replace(det.rule, isolation=False, confirm_views=Views.NONE)
        cfg = ChipConfig(size=size, gsd_range=gsd_range)
        chips, peaks = [], 0
        for i, s in enumerate(scenes):
            res = det.scan(s.image, gsd=s.gsd, min_score=logit(MINING_FLOOR))
            pts = [(d.x, d.y) for d in res.detections if _away(s, d.x, d.y)][:MINED_PEAKS]
            peaks += len(pts)
            chips += mine_chips(s, np.array(pts), MINED_PER_PEAK, cfg, seed=seed + i)
        print(f"hard negatives: {peaks} peaks away from every label, {len(chips)} windows", flush=True)
        if not chips:
            return None
        write_chips(root, [], chips, prefix="mined")
    return load_dataset(root, show_progress=False)


def _away(scene: LabelledScene, x: float, y: float) -> bool:
    """Farther from every label than the real-scene matching reaches: a false alarm, not a ship or an undecided
    object."""
    return all(math.hypot(lab.x - x, lab.y - y) > lab.radius_px(scene.gsd) for lab in scene.labels)


def concat_samples(*parts: Samples) -> Samples:
    parts = tuple(p for p in parts if p is not None and len(p))
    return Samples(
        [q for p in parts for q in p.paths],
        np.concatenate([p.labels for p in parts]),
        None,
        parts[0].layout if len(parts) == 1 else None,
    )
