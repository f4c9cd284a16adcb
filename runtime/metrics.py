"""Quality measures as pure numpy functions (so a device can evaluate itself).

Used by export parity, ``shipcam eval`` and the benchmarks alike.
"""

from __future__ import annotations

import numpy as np

from shipcam.runtime.cam import cam_mask  # re-exported: parity and eval measure CAM masks
from shipcam.runtime.maths import sigmoid  # re-exported for parity and eval

__all__ = [
    "roc_auc",
    "pearson",
    "cam_mask",
    "mask_iou",
    "box_iou",
    "pointing_game_hit",
    "binary_report",
    "sigmoid",
]


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve = P(score of a random positive > a random negative), ties count half.

    Computed from average ranks (Mann-Whitney U); NaN when a class is missing.
    """
    y = np.asarray(labels).astype(bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape} vs {s.shape}")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # average ranks over ties
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = (a + b + 1) / 2.0  # 1-based mean rank
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pearson(a, b) -> float:
    """Correlation of two maps; 1.0 when both are constant and equal, 0.0 when one alone is constant."""
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    a, b = a - a.mean(), b - b.mean()
    na, nb = np.sqrt((a * a).sum()), np.sqrt((b * b).sum())
    if na < 1e-12 or nb < 1e-12:
        return 1.0 if na < 1e-12 and nb < 1e-12 else 0.0
    return float((a * b).sum() / (na * nb))


def mask_iou(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def box_iou(a, b) -> float:
    """IoU of two boxes ``(x0, y0, x1, y1)`` with exclusive max corners (pixel counts)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy

    def area(r):
        return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])

    union = area(a) + area(b) - inter
    return 0.0 if union <= 0 else float(inter / union)


def pointing_game_hit(cam, mask, tolerance: int = 0) -> bool:
    """Whether the CAM's peak falls on the object mask (within ``tolerance`` pixels)."""
    cam, mask = np.asarray(cam), np.asarray(mask, bool)
    if cam.shape != mask.shape:
        raise ValueError(f"CAM {cam.shape} and mask {mask.shape} must have the same shape")
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    t = tolerance
    return bool(mask[max(0, y - t) : y + t + 1, max(0, x - t) : x + t + 1].any())


def binary_report(labels, probabilities, threshold: float = 0.5) -> dict:
    """Accuracy beside the majority-class baseline, precision, recall, F1, AUC."""
    y = np.asarray(labels).astype(bool).reshape(-1)
    p = np.asarray(probabilities, np.float64).reshape(-1)
    pred = p >= threshold
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    fn, tn = int((~pred & y).sum()), int((~pred & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    share = float(y.mean()) if len(y) else 0.0
    return {
        "n": int(len(y)),
        "threshold": float(threshold),
        "accuracy": (tp + tn) / len(y) if len(y) else float("nan"),
        "majority_baseline": max(share, 1 - share),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": roc_auc(y, p),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }
