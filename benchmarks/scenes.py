"""``shipcam eval-scenes``: how a model does on labelled real scenes.

Each scene is scanned once at a low score, which gives every CAM peak;
detections at any threshold are a prefix of those (see
``runtime.labels``), so the precision-recall curve costs no extra scan.
Headline numbers are at the file's own threshold. Writes ``eval.json``,
``pr_curve.json``, ``pr_curve.png`` and ``<scene>_eval.png`` overlays (hits
green, misses red, false alarms orange, ignored grey).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from shipcam._utils.io import write_json
from shipcam._utils.progress import progress
from shipcam.errors import ImageError, ShipcamError
from shipcam.runtime.detections import logit
from shipcam.runtime.labels import MatchResult, SceneLabel, match_detections, read_labels, scene_area

__all__ = ["evaluate_scenes", "score_scenes", "open_detector", "DEFAULT_SCENE_GSD", "SWEEP_FLOOR"]

DEFAULT_SCENE_GSD = 3.0  # PlanetScope
SWEEP_FLOOR = 0.02  # the lowest probability the precision-recall sweep goes down to


def open_detector(model: str | Path, threads: int = 1):
    """A Detector for an exported file, or for a ``.keras`` model through ``KerasEngine``."""
    from shipcam.runtime import Detector

    model = Path(model)
    if model.suffix == ".keras":
        from shipcam.train.engine import KerasEngine

        return Detector(KerasEngine(model))
    return Detector.load(model, threads=threads)


def _scene_paths(scenes: list[str]) -> list[Path]:
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


def score_scenes(detector, scenes: list[tuple[np.ndarray, list[SceneLabel], float]], radius_m: float | None = None, progress_bar: bool = False) -> dict:
    """Recall, precision, F1 and false alarms over in-memory ``(image, labels, gsd)`` scenes, plus the PR sweep.

    The one real-scene score: training's ``--real-val`` and the demo call it
    as ``eval-scenes`` does.
    """
    thr = logit(detector.threshold)
    per_scene, all_scores, all_status = [], [], []
    ships = mpx = km2 = 0.0
    for image, labels, gsd in progress(scenes, total=len(scenes), desc="scenes", enabled=progress_bar):
        res = detector.scan(image, gsd=gsd, min_score=logit(SWEEP_FLOOR), progress=progress_bar)
        pts = np.array([[d.x, d.y] for d in res.detections]).reshape(-1, 2)
        sc = np.array([d.score for d in res.detections])
        m = match_detections(pts, sc, labels, gsd, radius_m)
        keep = sc >= thr
        at = match_detections(pts[keep], sc[keep], labels, gsd, radius_m)
        a_mpx, a_km2 = scene_area(image.shape[:2], gsd)
        n_ships = int(sum(lab.label == "ship" for lab in labels))
        per_scene.append({**_summary(at, n_ships, a_mpx, a_km2), "detections": res.detections, "match": at, "all_match": m, "seconds": res.seconds})
        all_scores.append(sc)
        all_status.append(m.status)
        ships, mpx, km2 = ships + n_ships, mpx + a_mpx, km2 + a_km2
    total = _summary_from(per_scene, int(ships), mpx, km2)
    return {"scenes": per_scene, "total": total, "pr": _pr_curve(np.concatenate(all_scores or [np.zeros(0)]), np.concatenate(all_status or [np.zeros(0)]), int(ships), mpx)}


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
    order = np.argsort(-scores, kind="stable")
    s, st = scores[order], status[order]
    tp, fp = np.cumsum(st == 1), np.cumsum(st == -1)
    last = np.r_[s[1:] != s[:-1], True]  # a threshold keeps every detection with an equal score
    pts = []
    for i in np.flatnonzero(last):
        rec = tp[i] / n_ships if n_ships else float("nan")
        prec = tp[i] / (tp[i] + fp[i]) if tp[i] + fp[i] else 1.0
        pts.append({"threshold": float(1 / (1 + np.exp(-s[i]))), "score": float(s[i]), "recall": float(rec), "precision": float(prec), "false_alarms": int(fp[i]), "fa_per_mpx": float(fp[i] / mpx) if mpx else 0.0})
    return pts


def evaluate_scenes(model: str | Path, scenes: list[str], labels_path: str | Path, out_dir: str | Path, gsd: float | None = None, threads: int = 1, radius_m: float | None = None, detector=None) -> dict:
    """Scan every scene, match to the labels, write the report; unreadable scenes are listed in ``failed``."""
    from shipcam.runtime.image import read_image

    out_dir = Path(out_dir)
    labels, label_gsd = read_labels(labels_path)
    det = detector or open_detector(model, threads)
    paths = _scene_paths(scenes)
    loaded, failed = [], []
    for p in paths:
        if p.name not in labels:
            raise ShipcamError(f"{p.name}: not in {labels_path} (labelled scenes: {', '.join(sorted(labels))})")
        try:
            loaded.append((p, read_image(p)))
        except ImageError as e:
            failed.append({"scene": str(p), "error": str(e)})
            print(f"skipping: {e}", file=sys.stderr)
    if not loaded:
        raise ShipcamError(f"no readable scene among {len(paths)}")
    gsds = [gsd or label_gsd.get(p.name) or DEFAULT_SCENE_GSD for p, _ in loaded]
    result = score_scenes(det, [(im, labels[p.name], g) for (p, im), g in zip(loaded, gsds)], radius_m, progress_bar=True)
    rows = []
    for (p, image), g, row in zip(loaded, gsds, result["scenes"]):
        png = out_dir / f"{p.stem}_eval.png"
        _draw(image, labels[p.name], row["detections"], row["match"], g, radius_m, png)
        rows.append({"scene": str(p), "gsd": g, "size": [image.shape[1], image.shape[0]], "overlay": str(png), "scan_seconds": round(row["seconds"], 3), **{k: v for k, v in row.items() if k not in ("detections", "match", "all_match", "seconds")}})
    report = {
        "model": str(model),
        "engine": det.engine.describe(),
        "threshold": det.threshold,
        "rule": vars(det.rule),
        "match_radius": f"{radius_m} m" if radius_m else "max(60 m, length / 2)",
        "labels": str(labels_path),
        "total": result["total"],
        "scenes": rows,
        "failed": failed,
    }
    write_json(out_dir / "pr_curve.json", result["pr"])
    _plot_pr(result["pr"], result["total"], det.threshold, out_dir / "pr_curve.png")
    write_json(out_dir / "eval.json", report)
    return report


def _draw(image, labels, detections, match: MatchResult, gsd: float, radius_m, path: Path) -> None:
    from PIL import Image, ImageDraw

    from shipcam.runtime.overlay import save_png

    im = Image.fromarray(np.asarray(image, np.uint8))
    d = ImageDraw.Draw(im)
    w = max(2, round(max(image.shape[:2]) / 800))
    ships = [lab for lab in labels if lab.label == "ship"]
    for lab in labels:
        r = lab.radius_px(gsd, radius_m)
        if lab.label == "ignore":
            d.ellipse([lab.x - r, lab.y - r, lab.x + r, lab.y + r], outline=(160, 160, 160), width=1)
    for k, lab in enumerate(ships):
        r = lab.radius_px(gsd, radius_m)
        colour = (40, 220, 60) if match.found[k] else (255, 40, 40)  # hit / miss
        d.ellipse([lab.x - r, lab.y - r, lab.x + r, lab.y + r], outline=colour, width=w)
    for det, st in zip(detections, match.status):
        colour = {1: (40, 220, 60), 0: (160, 160, 160), -1: (255, 150, 0)}[int(st)]
        b = det.box
        d.rectangle([b.x0, b.y0, b.x1 - 1, b.y1 - 1], outline=colour, width=max(1, w - 1))
        d.ellipse([det.x - w, det.y - w, det.x + w, det.y + w], fill=colour)
    save_png(np.asarray(im), path)


def _plot_pr(points: list[dict], total: dict, threshold: float, path: Path) -> None:
    from shipcam._utils.io import atomic_path

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; pr_curve.png skipped (pr_curve.json has the points)", file=sys.stderr)
        return
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    rec = [p["recall"] for p in points]
    ax[0].plot(rec, [p["precision"] for p in points], "-", color="tab:blue")
    ax[0].plot([total["recall"]], [total["precision"]], "o", color="tab:red", label=f"threshold {threshold:g}")
    ax[0].set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title="precision-recall")
    ax[1].plot([p["fa_per_mpx"] for p in points], rec, "-", color="tab:blue")
    ax[1].plot([total["fa_per_mpx"]], [total["recall"]], "o", color="tab:red")
    ax[1].axvline(1.0, color="grey", ls=":", lw=1)
    ax[1].set(xlabel="false alarms per megapixel", ylabel="recall", ylim=(0, 1.02), title="recall vs false alarms")
    ax[0].legend(loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
