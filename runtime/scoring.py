"""Real-scene scores: recall, precision, F1 and false alarms of a detector on labelled scenes.

One definition for every caller (``shipcam eval-scenes``, the demo, and
training's ``--real-val``): each scene is scanned once at a low score, which
yields every CAM peak; detections at any threshold are a prefix of those
(strongest-first matching, see ``labels.match_detections``), so the
precision-recall curve costs no extra scan.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from shipcam._utils.progress import progress
from shipcam.errors import ImageError, ShipcamError
from shipcam.runtime.labels import MatchResult, SceneLabel, match_detections, read_labels, scene_area
from shipcam.runtime.maths import logit

__all__ = ["LabelledScene", "load_scenes", "score_scenes", "DEFAULT_SCENE_GSD", "SWEEP_FLOOR"]

DEFAULT_SCENE_GSD = 3.0  # PlanetScope
SWEEP_FLOOR = 0.02  # the lowest probability the precision-recall sweep goes down to


class LabelledScene(NamedTuple):
    path: Path
    image: np.ndarray
    labels: list[SceneLabel]
    gsd: float


def load_scenes(
    scenes: list[str | Path], labels_path: str | Path, gsd: float | None = None
) -> tuple[list[LabelledScene], list[dict]]:
    """Read scene files (or folders of them) that ``labels_path`` covers; unreadable ones come back in ``failed``.

    GSD: ``gsd`` if given, else the labels file's, else PlanetScope's 3 m.
    """
    from shipcam.runtime.image import read_image

    labels, label_gsd = read_labels(labels_path)
    loaded, failed = [], []
    for p in _scene_paths(scenes):
        if p.name not in labels:
            raise ShipcamError(f"{p.name}: not in {labels_path} (labelled scenes: {', '.join(sorted(labels))})")
        try:
            image = read_image(p)
        except ImageError as e:
            failed.append({"scene": str(p), "error": str(e)})
            print(f"skipping: {e}", file=sys.stderr)
            continue
        loaded.append(LabelledScene(p, image, labels[p.name], gsd or label_gsd.get(p.name) or DEFAULT_SCENE_GSD))
    if not loaded:
        raise ShipcamError(f"no readable labelled scene among {[str(s) for s in scenes]}")
    return loaded, failed


def _scene_paths(scenes: list[str | Path]) -> list[Path]:
    from shipcam.runtime.image import IMAGE_SUFFIXES

    out: list[Path] = []
    for s in scenes:
        p = Path(s)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise ShipcamError(f"{p}: no such scene file or folder")
    return out


def score_scenes(
    detector, scenes: list[LabelledScene], radius_m: float | None = None, progress_bar: bool = False
) -> dict:
    """Recall, precision, F1 and false alarms over labelled scenes at the detector's threshold, plus the PR sweep.

    The one real-scene score: training's ``--real-val`` and the demo call it
    as ``eval-scenes`` does.
    """
    thr = logit(detector.threshold)
    per_scene, all_scores, all_status = [], [], []
    ships = mpx = km2 = 0.0
    for _, image, labels, gsd in progress(scenes, total=len(scenes), desc="scenes", enabled=progress_bar):
        res = detector.scan(image, gsd=gsd, min_score=logit(SWEEP_FLOOR), progress=progress_bar)
        pts = np.array([[d.x, d.y] for d in res.detections]).reshape(-1, 2)
        sc = np.array([d.score for d in res.detections])
        m = match_detections(pts, sc, labels, gsd, radius_m)
        keep = sc >= thr
        at = match_detections(pts[keep], sc[keep], labels, gsd, radius_m)
        a_mpx, a_km2 = scene_area(image.shape[:2], gsd)
        n_ships = int(sum(lab.label == "ship" for lab in labels))
        per_scene.append(
            {
                **_summary(at, n_ships, a_mpx, a_km2),
                "detections": res.detections,
                "match": at,
                "all_match": m,
                "seconds": res.seconds,
            }
        )
        all_scores.append(sc)
        all_status.append(m.status)
        ships, mpx, km2 = ships + n_ships, mpx + a_mpx, km2 + a_km2
    total = _summary_from(per_scene, int(ships), mpx, km2)
    return {
        "scenes": per_scene,
        "total": total,
        "pr": _pr_curve(
            np.concatenate(all_scores or [np.zeros(0)]), np.concatenate(all_status or [np.zeros(0)]), int(ships), mpx
        ),
    }


def _summary(m: MatchResult, n_ships: int, mpx: float, km2: float) -> dict:
    found = int(m.found.sum())
    return _metrics(found, m.tp, m.fp, n_ships, mpx, km2)


def _summary_from(rows: list[dict], n_ships: int, mpx: float, km2: float) -> dict:
    found = sum(r["found"] for r in rows)
    tp = sum(r["true_positives"] for r in rows)
    fp = sum(r["false_alarms"] for r in rows)
    return _metrics(found, tp, fp, n_ships, mpx, km2)


def _metrics(found: int, tp: int, fp: int, n_ships: int, mpx: float, km2: float) -> dict:
    recall = found / n_ships if n_ships else float("nan")
    precision = tp / (tp + fp) if tp + fp else 1.0
    f1 = 2 * precision * recall / (precision + recall) if n_ships and precision + recall else 0.0
    return {
        "ships": n_ships,
        "found": found,
        "true_positives": tp,
        "false_alarms": fp,
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "fa_per_mpx": fp / mpx if mpx else 0.0,
        "fa_per_km2": fp / km2 if km2 else 0.0,
        "megapixels": mpx,
        "km2": km2,
    }


def _pr_curve(scores: np.ndarray, status: np.ndarray, n_ships: int, mpx: float) -> list[dict]:
    """One point per distinct detection score, strongest first: what a threshold there would give."""
    if scores.size == 0:  # nothing detected at any score: no threshold to sweep
        return []
    order = np.argsort(-scores, kind="stable")
    s, st = scores[order], status[order]
    tp, fp = np.cumsum(st == 1), np.cumsum(st == -1)
    last = np.r_[s[1:] != s[:-1], True]  # a threshold keeps every detection with an equal score
    pts = []
    for i in np.flatnonzero(last):
        rec = tp[i] / n_ships if n_ships else float("nan")
        prec = tp[i] / (tp[i] + fp[i]) if tp[i] + fp[i] else 1.0
        pts.append(
            {
                "threshold": float(1 / (1 + np.exp(-s[i]))),
                "score": float(s[i]),
                "recall": float(rec),
                "precision": float(prec),
                "false_alarms": int(fp[i]),
                "fa_per_mpx": float(fp[i] / mpx) if mpx else 0.0,
            }
        )
    return pts
