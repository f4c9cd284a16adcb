"""The file's decision threshold: where whole synthetic scenes give a target false-alarm rate.

A classifier trained with balanced class weights says 0.5 where the classes
are equally likely; a scene scan asks something else, once per CAM peak over
megapixels of sea, city and port. So instead of 0.5, the threshold saved in
``best.keras`` (and so in every exported file) is the lowest one at which
held-out synthetic *scenes* (generated with their own seed, coasts and
confusers included, never seen in training) yield at most
``target_fa_per_mpx`` false alarms per megapixel. It is chosen on synthetic
data only, so it carries no information from the real scenes it is later
scored on, except for one number: the target is half the false-alarm rate a
scene should show (``REVIEW_FA``), because real scenes gave 1-2.3x the false
alarms of synthetic ones at the same threshold (BENCHMARKS.md, "Real scenes").
"""

from __future__ import annotations

import math

import numpy as np

from shipcam.runtime.labels import SceneLabel
from shipcam.runtime.maths import sigmoid
from shipcam.runtime.scoring import LabelledScene, score_scenes

__all__ = [
    "threshold_for_fa_rate",
    "synthetic_labelled_scenes",
    "calibrate_threshold",
    "DEFAULT_TARGET_FA",
    "REVIEW_FA",
    "MIN_SHIP_M",
    "is_labelled_ship",
]

REVIEW_FA = 1.0  # false alarms per megapixel a real scene may show: what an analyst can review
DEFAULT_TARGET_FA = REVIEW_FA / 2  # on synthetic scenes: a 2x margin for the synthetic-to-real gap
MIN_SHIP_M = (
    45.0  # shorter hulls are labelled `ignore`: the hand labels' ~15 px at PlanetScope's 3 m/px, in metres at any GSD
)


def is_labelled_ship(mask: np.ndarray, gsd: float) -> bool:
    """Would the hand labels call this drawn hull a ship? Its length (the mask's diagonal) is ``MIN_SHIP_M`` or more."""
    yy, xx = np.nonzero(mask)
    return math.hypot(np.ptp(xx) + 1, np.ptp(yy) + 1) * gsd >= MIN_SHIP_M


def threshold_for_fa_rate(pr: list[dict], target_fa_per_mpx: float, floor: float = 0.5) -> float:
    """The lowest probability threshold whose false alarms per Mpx stay at or under the target.

    ``pr`` is a precision-recall sweep, strongest detection first (as
    ``score_scenes`` returns it). The threshold never goes below ``floor``:
    a model clean on synthetic scenes keeps the usual 0.5 rather than
    calling every faint peak a ship. When even the strongest point exceeds
    the target, the threshold sits just above the strongest score.
    """
    if target_fa_per_mpx < 0:
        raise ValueError(f"target_fa_per_mpx must be >= 0, received {target_fa_per_mpx}")
    best = None
    for p in pr:  # thresholds fall and false alarms grow along the sweep
        if p["fa_per_mpx"] > target_fa_per_mpx:
            break
        best = p["threshold"]
    if best is None:
        best = float(np.nextafter(pr[0]["threshold"], 1.0)) if pr else floor
    return float(max(best, floor))


def synthetic_labelled_scenes(
    n: int = 16,
    size: int = 768,
    gsd: float = 3.0,
    seed: int = 10_007,
    gsd_range: tuple[float, float] | None = None,
    config=None,
    min_ship_m: float = MIN_SHIP_M,
) -> list[LabelledScene]:
    """Large synthetic scenes with point labels from the ship masks (centre, length in metres).

    ``config`` (a ``SceneConfig``) replaces the default mix of coasts and
    open water at ``size``, ``gsd`` (each scene at its own GSD with
    ``gsd_range``). Hulls shorter than ``min_ship_m``, or cut by the scene's
    edge, are ``ignore``: as in labels/README.md, too small or too partial to
    call either way.
    """
    from pathlib import Path

    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    cfg = config or SceneConfig(
        size=size,
        gsd=gsd,
        gsd_range=tuple(gsd_range) if gsd_range else None,
        ship_fraction=0.8,
        max_ships=6,
        coast_prob=0.6,
    )
    out = []
    for i in range(n):
        scene = generate_scene(cfg, seed=seed, index=i)
        labels = []
        for m in scene.masks:
            yy, xx = np.nonzero(m)
            length_m = math.hypot(np.ptp(xx) + 1, np.ptp(yy) + 1) * scene.gsd
            cut = m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()
            kind = "ship" if length_m >= min_ship_m and not cut else "ignore"
            labels.append(SceneLabel(float(xx.mean() + 0.5), float(yy.mean() + 0.5), length_m, kind))
        out.append(LabelledScene(Path(f"synthetic_{seed}_{i}.png"), scene.image, labels, scene.gsd))
    return out


def calibrate_threshold(detector, scenes: list[LabelledScene], target_fa_per_mpx: float = DEFAULT_TARGET_FA) -> dict:
    """Score ``scenes`` once and pick the threshold for the target; returns it with what it gives."""
    result = score_scenes(detector, scenes)
    thr = threshold_for_fa_rate(result["pr"], target_fa_per_mpx)
    s = math.log(thr / (1 - thr)) if 0 < thr < 1 else math.inf
    kept = [p for p in result["pr"] if p["score"] >= s]
    at = kept[-1] if kept else {"recall": 0.0, "fa_per_mpx": 0.0}
    return {
        "threshold": thr,
        "target_fa_per_mpx": target_fa_per_mpx,
        "synthetic_scenes": len(scenes),
        "synthetic_recall": at["recall"],
        "synthetic_fa_per_mpx": at["fa_per_mpx"],
        "at_0.5": {"recall": result["total"]["recall"], "fa_per_mpx": result["total"]["fa_per_mpx"]}
        if abs(detector.threshold - 0.5) < 1e-9
        else None,
        "strongest_probability": float(sigmoid(result["pr"][0]["score"])) if result["pr"] else None,
    }
