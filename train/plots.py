"""Pictures people would rather look at than read: LR-finder curve, training curves, samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shipcam._utils.plotting import pyplot as _plt
from shipcam._utils.plotting import save_png

__all__ = ["plot_lr_finder", "plot_history", "plot_samples"]


def _save(fig, path: Path) -> Path:
    return save_png(fig, path, tight=True)


def plot_lr_finder(lrs, losses, smoothed, suggestion: dict[str, float], path: str | Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(lrs, losses, color="0.75", lw=1, label="batch loss")
    ax.plot(lrs, smoothed, color="C0", lw=2, label="smoothed")
    for (name, lr), colour in zip(suggestion.items(), ("C3", "C2")):
        ax.axvline(lr, color=colour, ls="--", lw=1, label=f"{name.replace('_', ' ')}: {lr:.1e}")
    ax.set_xscale("log")
    finite = np.asarray(smoothed)[np.isfinite(smoothed)]
    if finite.size:
        ax.set_ylim(min(finite.min(), np.min(losses)) * 0.9, min(finite[0] * 2.5, np.max(losses)) * 1.05)
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss", title="Learning-rate range test")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def plot_history(history: dict[str, list[float]], path: str | Path, phase_starts: list[int] | None = None) -> Path:
    """Loss, accuracy (with the majority baseline) and AUC per epoch, train vs validation."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key in zip(axes, ("loss", "accuracy", "auc")):
        if key in history:
            ax.plot(epochs, history[key], "o-", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "o-", ms=3, label="validation")
        if key == "accuracy" and "val_majority_baseline" in history:
            ax.axhline(history["val_majority_baseline"][-1], color="C3", ls=":", label="majority baseline")
        for start in phase_starts or []:
            ax.axvline(start + 0.5, color="0.5", ls="--", lw=1)
        ax.set(title=key, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, Path(path))


def plot_samples(images, labels, path: str | Path, masks=None, columns: int = 8) -> Path:
    plt = _plt()
    n = len(images)
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.75))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i])
        if masks is not None and masks[i] is not None and masks[i].any():
            ax.contour(masks[i], levels=[0.5], colors="yellow", linewidths=0.7)
        ax.set_title("ship" if labels[i] else "no ship", fontsize=8, color="C3" if labels[i] else "0.3")
    fig.tight_layout()
    return _save(fig, Path(path))
