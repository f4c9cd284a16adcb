"""``shipcam eval-scenes``: how a model does on labelled real scenes.

The scores come from ``runtime.scoring`` (the same ones training's
``--real-val`` logs); this module adds the files a person looks at.
Headline numbers are at the file's own threshold. Writes ``eval.json``,
``pr_curve.json``, ``pr_curve.png`` and ``<scene>_eval.png`` overlays (hits
green, misses red, false alarms orange, ignored grey).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from shipcam._utils.io import write_json
from shipcam.runtime.labels import MatchResult
from shipcam.runtime.scoring import load_scenes, score_scenes

__all__ = ["evaluate_scenes", "open_detector"]


def open_detector(model: str | Path, threads: int = 1):
    """A Detector for an exported file, or for a ``.keras`` model through ``KerasEngine``."""
    from shipcam.runtime import Detector

    model = Path(model)
    if model.suffix == ".keras":
        from shipcam.train.engine import KerasEngine

        return Detector(KerasEngine(model))
    return Detector.load(model, threads=threads)


def evaluate_scenes(
    model: str | Path,
    scenes: list[str],
    labels_path: str | Path,
    out_dir: str | Path,
    gsd: float | None = None,
    threads: int = 1,
    radius_m: float | None = None,
    detector=None,
    rule: dict | None = None,
) -> dict:
    """Scan every scene, match to the labels, write the report; unreadable scenes are listed in ``failed``.

    ``rule`` overrides fields of the detector's ``DetectionRule`` (threshold, isolation, ...).
    """
    out_dir = Path(out_dir)
    loaded, failed = load_scenes(scenes, labels_path, gsd)
    det = detector or open_detector(model, threads)
    if rule:
        det.rule = dataclasses.replace(det.rule, **rule)
    result = score_scenes(det, loaded, radius_m, progress_bar=True)
    rows = []
    for (p, image, labels, g), row in zip(loaded, result["scenes"]):
        png = out_dir / f"{p.stem}_eval.png"
        _draw(image, labels, row["detections"], row["match"], g, radius_m, png)
        rows.append(
            {
                "scene": str(p),
                "gsd": g,
                "size": [image.shape[1], image.shape[0]],
                "overlay": str(png),
                "scan_seconds": round(row["seconds"], 3),
                **{k: v for k, v in row.items() if k not in ("detections", "match", "all_match", "seconds")},
                **_misses_and_false_alarms(labels, row["detections"], row["match"]),
            }
        )
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


def _misses_and_false_alarms(labels, detections, match: MatchResult) -> dict:
    """Which ships were missed (with their notes) and where the false alarms are: what to look at in the overlay."""
    ships = [lab for lab in labels if lab.label == "ship"]
    missed = [
        {"x": lab.x, "y": lab.y, "length_m": lab.length_m, "note": lab.note}
        for lab, hit in zip(ships, match.found)
        if not hit
    ]
    alarms = [
        {"x": round(d.x, 1), "y": round(d.y, 1), "probability": round(d.probability, 4)}
        for d, st in zip(detections, match.status)
        if st == -1
    ]
    return {"missed": missed, "false_alarm_points": alarms}


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
    from shipcam._utils.plotting import pyplot, save_png

    try:
        plt = pyplot()
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
    save_png(fig, path)
