"""``shipcam demo``: the whole pipeline on the embedded synthetic dataset.

Each step writes into its own folder under ``out`` and is skipped when its
result already exists, so a rerun (or a rerun after Ctrl-C) picks up where the
last one stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["run_demo"]


def run_demo(out: str | Path = "runs/demo", weights: str | None = None, quick: bool = False) -> dict:
    from shipcam.train.lr_find import lr_find_for_config
    from shipcam.train.trainer import TrainConfig, load_config, train

    out = Path(out)
    n, size = (240, 64) if quick else (2000, 96)
    base = dict(
        data=None,
        weights=weights,
        size=size,
        synthetic_n=n,
        alpha=0.35,
        batch_size=16,
        head_epochs=1 if quick else 3,
        finetune_epochs=1 if quick else 6,
        scratch_epochs=2 if quick else 16,
        steps_per_epoch=None,
        verbose=2,
    )

    # 1. learning-rate range test (its suggestion sets the training rate)
    lr_dir = out / "lr_find"
    if not (lr_dir / "lr_finder.json").exists():
        lr_find_for_config(TrainConfig(run_dir=str(out / "train"), **base), lr_dir, 1e-5, 1.0, 30 if quick else 80, verbose=2)
    lr_result = json.loads((lr_dir / "lr_finder.json").read_text())
    suggested = lr_result.get("suggested_lr")

    # 2. training (resumes an interrupted run)
    run = out / "train"
    if (run / "metrics.json").exists():
        metrics = json.loads((run / "metrics.json").read_text())
    else:
        if (run / "config.json").exists():
            metrics = train(load_config(run), resume=True)
        else:
            config = TrainConfig(run_dir=str(run), **base)
            if suggested and weights is None:
                config.scratch_lr = float(min(max(suggested, 3e-4), 3e-3))  # keep a wild suggestion in a sane band
            elif suggested:
                config.head_lr = float(min(max(suggested, 1e-4), 1e-2))
            metrics = train(config)
    print(f"demo: results in {out} (report.html comes with the export/runtime/benchmark steps)")
    return {"lr_find": lr_result.get("suggestion"), "metrics": metrics}
