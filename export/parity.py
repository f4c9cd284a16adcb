"""Parity of an exported file against the Keras model it came from.

Per output: max abs error relative to the Keras output's range (max |ref|),
which is the check, and relative to its RMS, which is reported too. The
standard deviation would blow up on a model whose logits barely vary, and on
a 7.5 M-value feature map the single worst float32 accumulation difference
sits near 1e-3 of the RMS while staying below 1e-4 of the range.
Per decision: agreement at the file's threshold (and at 0.5), probability max abs error, AUC on labelled
held-out scenes. Per explanation: correlation of the CAMs and IoU of the CAMs
thresholded at 20% of their maximum (the CAM paper's box rule), both upsampled
to the image. Decision agreement alone would hide a broken CAM.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from shipcam.runtime.cam import class_activation_map, resize_bilinear
from shipcam.runtime.maths import logit
from shipcam.runtime.metadata import Quantization
from shipcam.runtime.metrics import cam_mask, mask_iou, pearson, roc_auc, sigmoid

__all__ = [
    "ParitySet",
    "Tolerances",
    "check_parity",
    "compare_outputs",
    "parity_set",
    "run_in_batches",
    "tolerance_options",
]


@dataclass
class ParitySet:
    images: np.ndarray  # (N, H, W, 3) float32, preprocessed
    labels: np.ndarray  # (N,) 0/1
    source: str


def parity_set(n: int, size: int, scale: float, offset: float, seed: int) -> ParitySet:
    """Held-out labelled synthetic scenes (a seed the training data never used), half with ships."""
    from shipcam.train.examples import synthetic_examples

    images, labels = synthetic_examples(n, size, seed, ship_fraction=0.5)
    x = images.astype(np.float32) * np.float32(scale) + np.float32(offset)
    return ParitySet(x, labels, f"synthetic(n={n}, size={size}, seed={seed})")


def _gate(default: float, flag: str, help: str):
    """A tolerance and its ``shipcam export`` option, declared once: the CLI is generated from these fields."""
    return field(default=default, metadata={"flag": flag, "help": help})


@dataclass(frozen=True)
class Tolerances:
    """What an exported file must meet; every number is a CLI option of ``shipcam export`` (``tolerance_options``).

    Quantized files (float16, int8) must keep the decision and the heatmap: the CAM is the product, and
    decision agreement alone would pass a file whose CAM points elsewhere.
    """

    # float32: max |err| / max |ref| per output. XNNPACK's summation order leaves ~1.5e-4
    # on the worst of 7.5 M feature values of MobileNetV2-1.0 at 224 (logits ~5e-6);
    # a broken export shows up at 1e-2 and worse.
    float_rel: float = _gate(5e-4, "--float-rel", "float32: max error / output range (max |ref|)")
    # float16 rounding: ~1e-3 relative per layer, compounded
    fp16_rel: float = _gate(0.05, "--fp16-rel", "float16: logits max error / logits range")
    min_decision_agreement: float = _gate(
        0.98, "--min-agreement", "int8/fp16: share of decisions kept at the file's threshold"
    )
    max_auc_drop: float = _gate(0.01, "--max-auc-drop", "int8/fp16: AUC lost on the labelled parity scenes")
    min_cam_corr: float = _gate(0.98, "--min-cam-corr", "int8/fp16: mean CAM correlation with Keras")
    # one image whose heatmap points elsewhere is a wrong answer a user sees, whatever the mean
    min_cam_corr_min: float = _gate(0.9, "--min-cam-corr-min", "int8/fp16: the worst image's CAM correlation")
    min_cam_iou: float = _gate(0.0, "--min-cam-iou", "int8/fp16: mean IoU of the CAMs at 20% of their max (0: off)")


def tolerance_options() -> list[tuple[str, str, float, str]]:
    """``(field, flag, default, help)`` of every tolerance, for the CLI."""
    return [(f.name, f.metadata["flag"], f.default, f.metadata["help"]) for f in fields(Tolerances)]


def run_in_batches(fn, images: np.ndarray, batch: int = 16) -> dict[str, np.ndarray]:
    outs: dict[str, list] = {"logits": [], "features": []}
    for i in range(0, len(images), batch):
        o = fn(images[i : i + batch])
        for k in outs:
            outs[k].append(np.asarray(o[k], np.float32))
    return {k: np.concatenate(v) for k, v in outs.items()}


def compare_outputs(
    ref: dict,
    got: dict,
    weights: np.ndarray,
    bias: float,
    labels: np.ndarray | None = None,
    image_size: tuple[int, int] | None = None,
    threshold: float = 0.5,
) -> dict:
    """All parity figures between two ``{"logits", "features"}`` results on the same images.

    Decisions are compared at ``threshold`` (a probability): the file's own, where its detector decides;
    the agreement at 0.5 is reported beside it.
    """
    lr, lg = ref["logits"].reshape(-1), got["logits"].reshape(-1)
    report = {}
    for name in ("logits", "features"):
        a, b = ref[name], got[name]
        if a.shape != b.shape:
            raise ValueError(f"{name}: shapes differ, reference {a.shape} vs exported {b.shape}")
        err = float(np.abs(a - b).max())
        rms = float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))) or 1.0
        report[f"{name}_max_abs_err"] = err
        report[f"{name}_rel_err"] = err / (float(np.abs(a).max()) or 1.0)
        report[f"{name}_rms_rel_err"] = err / rms
    t = logit(threshold)
    report["decision_threshold"] = float(threshold)
    report["decision_agreement"] = float(np.mean((lr >= t) == (lg >= t)))
    report["decision_agreement_at_half"] = float(np.mean((lr >= 0) == (lg >= 0)))
    report["prob_max_abs_err"] = float(np.abs(sigmoid(lr) - sigmoid(lg)).max())

    cam_r = class_activation_map(ref["features"], weights, bias)
    cam_g = class_activation_map(got["features"], weights, bias)
    corrs, ious = [], []
    for r, g in zip(cam_r, cam_g):
        if image_size is not None:
            r, g = resize_bilinear(r, *image_size), resize_bilinear(g, *image_size)
        corrs.append(pearson(r, g))
        ious.append(mask_iou(cam_mask(r, 0.2), cam_mask(g, 0.2)))
    corrs, ious = np.asarray(corrs), np.asarray(ious)
    report["cam_corr_mean"] = float(np.mean(corrs))
    report["cam_corr_min"] = float(np.min(corrs))
    report["cam_iou_mean"] = float(np.mean(ious))
    # Where the float model says ship, i.e. the CAMs a user looks at; a no-ship CAM is
    # low-contrast noise whose correlation says little. Reported next to the mean, not instead.
    shown = lr > 0
    report["cam_corr_ship_mean"] = float(np.mean(corrs[shown])) if shown.any() else float("nan")
    report["cam_iou_ship_mean"] = float(np.mean(ious[shown])) if shown.any() else float("nan")
    report["features_corr"] = pearson(ref["features"], got["features"])
    if labels is not None and len(np.unique(labels)) == 2:
        report["auc_reference"] = roc_auc(labels, lr)
        report["auc"] = roc_auc(labels, lg)
        report["auc_drop"] = report["auc_reference"] - report["auc"]
    return report


def check_parity(report: dict, quantization: Quantization, tol: Tolerances) -> list[str]:
    """The tolerance violations of one file's report (empty when it passes)."""
    problems = []
    if quantization == "float32":
        for name in ("logits", "features"):
            if report[f"{name}_rel_err"] > tol.float_rel:
                problems.append(f"{name} max error {report[f'{name}_rel_err']:.2e} x range > {tol.float_rel:.0e}")
    elif quantization == "float16":
        if report["logits_rel_err"] > tol.fp16_rel:
            problems.append(f"logits max error {report['logits_rel_err']:.2e} x range > {tol.fp16_rel}")
    if quantization != "float32":  # float32 files are held to float_rel, which is stricter than any CAM gate
        if report["decision_agreement"] < tol.min_decision_agreement:
            problems.append(f"decision agreement {report['decision_agreement']:.3f} < {tol.min_decision_agreement}")
        if "auc_drop" in report and report["auc_drop"] > tol.max_auc_drop:
            problems.append(f"AUC drop {report['auc_drop']:.4f} > {tol.max_auc_drop}")
        if report["cam_corr_mean"] < tol.min_cam_corr:
            problems.append(f"CAM correlation {report['cam_corr_mean']:.3f} < {tol.min_cam_corr}")
        if report["cam_corr_min"] < tol.min_cam_corr_min:
            problems.append(f"worst image's CAM correlation {report['cam_corr_min']:.3f} < {tol.min_cam_corr_min}")
        if report["cam_iou_mean"] < tol.min_cam_iou:
            problems.append(f"CAM IoU {report['cam_iou_mean']:.3f} < {tol.min_cam_iou}")
    return problems
