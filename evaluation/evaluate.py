"""``shipcam eval MODEL_OR_FILE DATA``: how well does it classify, and does the CAM point at the ships?

Classification: accuracy beside the majority-class baseline, precision,
recall, F1, AUC at the model's threshold. Localisation (datasets with masks,
on the images that contain ships): the pointing game (CAM peak within 15 px
of a ship, as Zhang et al. 2016 define it; the strict 0 px version too),
box recall and precision at IoU 0.3 and 0.5 with the CAM paper's rule (20%
of the max), and a MaxBoxAcc-style sweep of that fraction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shipcam._utils.io import write_json
from shipcam._utils.progress import progress
from shipcam.errors import ShipcamError
from shipcam.runtime.boxes import boxes_from_cam
from shipcam.runtime.metrics import binary_report, box_iou, pointing_game_hit, sigmoid
from shipcam.runtime.resize import resize_bilinear

__all__ = ["evaluate", "localisation_scores", "mask_boxes", "FRACTIONS"]

FRACTIONS = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))
POINTING_TOLERANCE = 15  # pixels, as in the pointing game's definition


def mask_boxes(masks: list[np.ndarray]) -> list[tuple[int, int, int, int]]:
    """One ``(x0, y0, x1, y1)`` box per ship mask, max corners exclusive."""
    out = []
    for m in masks:
        ys, xs = np.nonzero(m)
        if len(ys):
            out.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return out


def localisation_scores(pred_boxes, gt_boxes, iou: float) -> tuple[int, int, int]:
    """(ground-truth boxes matched, predicted boxes matching one, number predicted): greedy one-to-one by IoU."""
    used, tp = set(), 0
    for g in gt_boxes:
        best, best_j = 0.0, None
        for j, p in enumerate(pred_boxes):
            if j in used:
                continue
            v = box_iou(p, g)
            if v > best:
                best, best_j = v, j
        if best_j is not None and best >= iou:
            used.add(best_j)
            tp += 1
    return tp, tp, len(pred_boxes)


class _KerasPredictor:
    def __init__(self, path):
        from shipcam.train.backbones import get_backbone
        from shipcam.train.model import head_weights, load_classifier, model_info, two_output_model

        model = load_classifier(path)
        spec = get_backbone(model_info(model)["backbone"])
        self.two = two_output_model(model)
        self.w, self.b = head_weights(model)
        self.scale, self.offset = spec.scale, spec.offset
        self.threshold = float(model_info(model).get("threshold", 0.5))
        self.name = f"keras:{Path(path).name}"

    def __call__(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        x = image[None].astype(np.float32) * self.scale + self.offset
        out = self.two(x, training=False)
        feats = np.asarray(out["features"])[0]
        return float(np.asarray(out["logits"])[0, 0]), feats @ self.w + self.b


class _RuntimePredictor:
    def __init__(self, path, threads: int, views: str | None):
        import dataclasses

        from shipcam.runtime import Detector

        self.det = Detector.load(path, threads=threads)
        if views is not None:
            self.det.rule = dataclasses.replace(self.det.rule, views=views)
        self.threshold = self.det.threshold
        self.views = self.det.rule.views.value
        self.name = f"{self.det.engine.name}:{Path(path).name}"

    def __call__(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        p = self.det.predict(image, boxes=False)
        return p.logit, p.cam


def evaluate(
    model: str | Path,
    data: str | Path,
    out_dir: str | Path,
    threshold: float | None = None,
    limit: int | None = None,
    threads: int = 1,
    worst: int = 6,
    show_progress: bool = True,
    views: str | None = None,
) -> dict:
    """Classification and CAM localisation of ``model`` on a dataset; test-time ``views`` (None: the
    rule's, none) run on exported files only: a ``.keras`` model is the reference, seen once."""
    from shipcam.runtime.image import read_image
    from shipcam.train.data.rle import rle_decode
    from shipcam.train.data.sources import load_dataset

    model = Path(model)
    if model.suffix == ".keras" and views not in (None, "none"):
        raise ShipcamError(
            f"{model}: test-time views run on exported files (.onnx, .tflite), received views {views!r} for a .keras "
            "model"
        )
    predictor = _KerasPredictor(model) if model.suffix == ".keras" else _RuntimePredictor(model, threads, views)
    thr = predictor.threshold if threshold is None else threshold
    samples = load_dataset(data, show_progress=False)
    if limit:
        samples = samples.subset(np.arange(min(limit, len(samples))))

    logits, records = [], []
    hits, strict_hits, n_point = 0, 0, 0
    counts = {iou: [0, 0, 0, 0] for iou in (0.3, 0.5)}  # gt matched, gt total, pred matched, pred total
    sweep = {f: [0, 0] for f in FRACTIONS}  # gt matched at IoU 0.5, gt total
    for i, path in enumerate(progress(samples.paths, total=len(samples), desc="evaluating", enabled=show_progress)):
        image = read_image(path)
        logit, cam = predictor(image)
        logits.append(logit)
        H, W = image.shape[:2]
        rec = {"file": str(path), "label": int(samples.labels[i]), "logit": logit}
        if samples.rles is not None and samples.labels[i] == 1:
            masks = [rle_decode(r, (H, W)) for r in samples.rles[i]]
            gt = mask_boxes(masks)
            union = np.any(masks, axis=0)
            cam_img = resize_bilinear(cam, H, W)
            hit = pointing_game_hit(cam_img, union, tolerance=POINTING_TOLERANCE)
            hits += hit
            strict_hits += pointing_game_hit(cam_img, union)
            n_point += 1
            pred = [b.as_tuple() for b in boxes_from_cam(cam, (H, W), fraction=0.2)]
            for iou, c in counts.items():
                tp, _, n_pred = localisation_scores(pred, gt, iou)
                c[0] += tp
                c[1] += len(gt)
                c[2] += tp
                c[3] += n_pred
            for f in FRACTIONS:
                tp, _, _ = localisation_scores(
                    [b.as_tuple() for b in boxes_from_cam(cam, (H, W), fraction=float(f))], gt, 0.5
                )
                sweep[f][0] += tp
                sweep[f][1] += len(gt)
            rec.update(pointing_hit=bool(hit), n_ships=len(gt))
        records.append(rec)

    probs = sigmoid(np.array(logits))
    report = {
        "model": predictor.name,
        "data": str(data),
        "views": getattr(predictor, "views", "none"),
        "classification": binary_report(samples.labels, probs, thr),
    }
    if n_point:
        best_f = max(FRACTIONS, key=lambda f: sweep[f][0] / max(1, sweep[f][1]))
        report["localisation"] = {
            "images_with_ships": n_point,
            "pointing_game": hits / n_point,
            "pointing_game_tolerance_px": POINTING_TOLERANCE,
            "pointing_game_strict": strict_hits / n_point,
            **{f"box_recall@{iou}": c[0] / max(1, c[1]) for iou, c in counts.items()},
            **{f"box_precision@{iou}": c[2] / max(1, c[3]) for iou, c in counts.items()},
            "cam_fraction": 0.2,
            "maxboxacc@0.5": sweep[best_f][0] / max(1, sweep[best_f][1]),
            "maxboxacc_fraction": float(best_f),
        }
    out_dir = Path(out_dir)
    report["worst"] = _worst_overlays(records, probs, samples, predictor, out_dir, worst, thr)
    write_json(out_dir / "eval.json", report)
    return report


def _worst_overlays(records, probs, samples, predictor, out_dir: Path, k: int, thr: float) -> list[str]:
    """The most confident mistakes (false positives and false negatives) as overlay PNGs."""
    if k <= 0:
        return []
    from shipcam.runtime.image import read_image
    from shipcam.runtime.overlay import overlay, save_png

    labels = samples.labels
    fp = [i for i in np.argsort(-probs) if labels[i] == 0 and probs[i] >= thr][: k // 2]
    fn = [i for i in np.argsort(probs) if labels[i] == 1 and probs[i] < thr][: k - len(fp)]
    written = []
    for kind, idx in (("false_positive", fp), ("false_negative", fn)):
        for i in idx:
            image = read_image(samples.paths[i])
            _, cam = predictor(image)
            cam_img = resize_bilinear(cam, *image.shape[:2])
            boxes = boxes_from_cam(cam, image.shape[:2])
            path = out_dir / "worst" / f"{kind}_{Path(samples.paths[i]).stem}.png"
            save_png(overlay(image, cam_img, boxes, label=f"{kind.replace('_', ' ')} p={probs[i]:.2f}"), path)
            written.append(str(path))
    return written
