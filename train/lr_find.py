"""The learning-rate range test ("landscaping"): sweep the rate up, watch the loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shipcam._utils.io import write_json
from shipcam.train.schedules import smooth_losses, suggest_lr

__all__ = ["lr_range_test", "lr_find_for_config"]


def lr_range_test(
    model,
    dataset,
    out_dir: str | Path,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    num_steps: int = 100,
    beta: float = 0.9,
    verbose: int | str = "auto",
) -> dict:
    """Train ``model`` (a throw-away copy: its weights change) with a growing rate.

    Writes ``lr_finder.png`` and ``lr_finder.json`` in ``out_dir`` and returns the
    JSON dict: rates, raw and smoothed losses, suggestions, whether it diverged.
    """
    import keras

    from shipcam.train.callbacks import LRRangeTest
    from shipcam.train.metrics import compile_classifier
    from shipcam.train.plots import plot_lr_finder

    out_dir = Path(out_dir)
    cb = LRRangeTest(start_lr, end_lr, num_steps, beta=beta)
    compile_classifier(model, keras.optimizers.Adam(start_lr))
    steps_per_epoch = max(1, int(dataset.cardinality())) if int(dataset.cardinality()) > 0 else num_steps
    epochs = int(np.ceil(num_steps / steps_per_epoch))
    model.fit(dataset.repeat(), steps_per_epoch=steps_per_epoch, epochs=epochs, callbacks=[cb], verbose=verbose)

    smoothed = smooth_losses(cb.losses, beta)
    try:
        suggestion = suggest_lr(cb.lrs, smoothed)
    except ValueError:
        suggestion = {}
    result = {
        "lrs": cb.lrs,
        "losses": cb.losses,
        "smoothed": smoothed.tolist(),
        "suggestion": suggestion,
        "suggested_lr": suggestion.get("steepest"),
        "diverged": cb.stopped_early,
        "start_lr": start_lr,
        "end_lr": end_lr,
    }
    write_json(out_dir / "lr_finder.json", result)
    if cb.lrs:
        plot_lr_finder(cb.lrs, cb.losses, smoothed, suggestion, out_dir / "lr_finder.png")
    return result


def lr_find_for_config(
    config, out_dir: str | Path, start_lr: float = 1e-6, end_lr: float = 1.0, num_steps: int = 100, verbose="auto"
) -> dict:
    """Range test on the data and model a ``TrainConfig`` describes (first phase's trainable set)."""
    from shipcam.train.backbones import get_backbone
    from shipcam.train.data.pipeline import make_dataset
    from shipcam.train.model import build_classifier
    from shipcam.train.trainer import prepare_data, set_trainable

    train_s, _ = prepare_data(config)
    ds = make_dataset(train_s, get_backbone(config.backbone), config.size, config.batch_size, True, config.seed)
    model = build_classifier(config.backbone, config.pooling, config.alpha, config.weights, config.dropout)
    set_trainable(model, "head" if config.pretrained else "scratch", -1)
    return lr_range_test(model, ds, out_dir, start_lr, end_lr, num_steps, verbose=verbose)
