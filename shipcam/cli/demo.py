"""``shipcam demo``: the whole pipeline on the embedded synthetic dataset.

generate -> LR range test -> train -> export (every format, parity) -> eval ->
bench -> ``report.html``. Each step writes into its own folder under ``out``
and is skipped when its result already exists, so a rerun (or a rerun after
Ctrl-C) picks up where the last one stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from shipcam.train.recipes import AUTO, demo_recipe

__all__ = ["run_demo"]


def _step(name: str, done: bool) -> bool:
    print(f"== {name}{' (done, reused)' if done else ''}", flush=True)
    return not done


# beside a checkout: the project's own real scenes
REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
REAL_LABELS = Path(__file__).resolve().parents[2] / "labels" / "realdata.csv"


def run_demo(
    out: str | Path = "runs/demo",
    weights: str | None = AUTO,
    quick: bool = False,
    scenes: str | Path | None = None,
    labels: str | Path | None = None,
) -> dict:
    from shipcam.train.lr_find import lr_find_for_config
    from shipcam.train.trainer import TrainConfig, load_config, prepare_data, train

    t0 = time.perf_counter()
    out = Path(out)
    if isinstance(scenes, str) and scenes.lower() == "none":  # as a clone without ../shared would run
        scenes = None
    elif scenes:
        scenes = Path(scenes)
    else:
        scenes = REALDATA if REALDATA.is_dir() else None
    labels = Path(labels) if labels else REAL_LABELS
    if scenes is not None and not labels.is_file():
        scenes = None
    base = demo_recipe(weights, quick, scenes, labels)
    weights, size = base["weights"], base["size"]
    gsd_range = base.get("gsd_range") or [3.0, 3.0]
    gsd = gsd_range[0]
    where = f"{gsd_range[0]:g}-{gsd_range[1]:g} m/px" if gsd_range[0] != gsd_range[1] else f"{gsd:g} m/px"
    print(
        f"demo recipe: {base.get('backbone', 'mobilenet_v2')} {base['alpha']} at {size} px, {where}, "
        + (
            f"ImageNet backbone ({weights})"
            if weights
            else "from scratch (no ImageNet weights found; --weights imagenet downloads them)"
        ),
        flush=True,
    )
    if scenes is not None:
        print(
            f"training with the labelled real scenes in {scenes} (half the chips, then one round of hard negatives); "
            "they are not scored here: a model is never scored on a scene it trained on (python -m "
            "shipcam.benchmarks.loso scores each scene with a model trained on the others)",
            flush=True,
        )
    else:
        print("no labelled real scenes (../shared/realdata): the demo trains on synthetic scenes only", flush=True)
    run = out / "train"

    # 1. data (+ a picture of it)
    if _step("data", (out / "samples.png").exists()):
        config = TrainConfig(run_dir=str(run), **base)
        train_s, _ = prepare_data(config)
        _sample_grid(train_s, out / "samples.png", size)

    # 2. learning-rate range test
    lr_dir = out / "lr_find"
    if _step("learning-rate range test", (lr_dir / "lr_finder.json").exists()):
        lr_find_for_config(TrainConfig(run_dir=str(run), **base), lr_dir, 1e-5, 1.0, 30 if quick else 100, verbose=0)
    suggested = json.loads((lr_dir / "lr_finder.json").read_text()).get("suggested_lr")

    # 3. training (resumes an interrupted run)
    if _step("training", (run / "metrics.json").exists()):
        if (run / "config.json").exists():
            train(load_config(run), resume=True)
        else:
            config = TrainConfig(run_dir=str(run), **base)
            if suggested and weights is not None:
                config.head_lr = float(np.clip(suggested, 1e-4, 1e-2))
            # From scratch, the default 3e-3 comes from range tests plus trial runs (see README); one noisy sweep is not
            # trusted alone.
            train(config)
    metrics = json.loads((run / "metrics.json").read_text())

    # 4. export every format, with parity
    export_dir = out / "export"
    if _step("export", (export_dir / "manifest.json").exists()):
        from shipcam.export import ExportOptions, export_model

        export_model(
            run / "best.keras",
            export_dir,
            ExportOptions(calib=32 if quick else 200, parity_n=24 if quick else 200, fail_on_parity=False),
        )
    manifest = json.loads((export_dir / "manifest.json").read_text())

    # 5. evaluation on held-out scenes with masks (Keras and the recommended file)
    eval_data = out / f"heldout_{size}px"
    if _step("evaluation", (out / "eval").exists() and any((out / "eval").glob("*/eval.json"))):
        from shipcam.evaluation.evaluate import evaluate
        from shipcam.train.data.synthetic import SceneConfig
        from shipcam.train.data.writer import write_synthetic_dataset

        write_synthetic_dataset(
            eval_data,
            60 if quick else 400,
            SceneConfig(size=size, ship_fraction=0.3, gsd=gsd, gsd_range=tuple(gsd_range)),
            seed=777,
        )
        evaluate(run / "best.keras", eval_data, out / "eval" / "keras", worst=0)
        for name in {manifest.get("recommended"), _file(manifest, "tflite_fp32")} - {None}:
            evaluate(export_dir / name, eval_data, out / "eval" / Path(name).stem, worst=6)

    # 6. CAM overlays from the exported file
    if _step("overlays", (out / "overlays").exists()):
        _overlays(
            export_dir / (manifest.get("recommended") or _file(manifest, "tflite_fp32")), out / "overlays", size, gsd
        )

    # 7. benchmark (small matrix: the demo's own model; BENCHMARKS.md has the big one)
    if _step("benchmark", (out / "bench" / "bench.json").exists()):
        from shipcam.benchmarks.bench import BenchConfig, run_bench

        run_bench(
            BenchConfig(
                model=str(run / "best.keras"),
                export_dir=str(export_dir),
                sizes=[size],
                threads=[1] if quick else [1, 2],
                runs=5 if quick else 30,
                quality_n=16 if quick else 64,
            ),
            out / "bench",
        )

    # 8. the 1.5 m open sea: image AUC and ships found in whole held-out scenes
    if _step("open sea", (out / "open_sea.json").exists()):
        from shipcam._utils.io import write_json
        from shipcam.benchmarks.open_sea import open_sea_report
        from shipcam.runtime import Detector

        best_file = export_dir / (manifest.get("recommended") or _file(manifest, "tflite_fp32"))
        sea = open_sea_report(
            Detector.load(best_file, threads=2),
            n_images=16 if quick else 64,
            n_scenes=2 if quick else 12,
            size=256 if quick else 768,
        )
        write_json(out / "open_sea.json", sea)
        d = sea["rules"]["default"]
        print(
            f"open sea (1.5 m): image AUC {sea['image_auc']:.3f}; {d['found']}/{d['ships']} ships of 30 m or more "
            f"found, {d['fa_per_mpx']:.2f} false alarms/Mpx"
        )

    from shipcam.cli.report import write_report

    report = write_report(out)
    print(
        f"demo done in {time.perf_counter() - t0:.0f}s: validation AUC {metrics['auc']:.3f} (accuracy "
        f"{metrics['accuracy']:.3f}, majority baseline {metrics['majority_baseline']:.3f}) -> {report}"
    )
    return {"metrics": metrics, "report": str(report)}


def _file(manifest: dict, fmt: str) -> str | None:
    return next((e["file"] for e in manifest["files"] if e["format"] == fmt), None)


def _sample_grid(samples, path: Path, size: int) -> None:
    from shipcam.runtime.image import read_image
    from shipcam.train.data.rle import rle_decode
    from shipcam.train.plots import plot_samples

    pos, neg = np.flatnonzero(samples.labels == 1)[:8], np.flatnonzero(samples.labels == 0)[:8]
    idx = np.concatenate([pos, neg])
    images = [read_image(samples.paths[i]) for i in idx]
    masks = [
        np.any([rle_decode(r, im.shape[:2]) for r in samples.rles[i]] or [np.zeros(im.shape[:2], bool)], axis=0)
        if samples.rles
        else None
        for i, im in zip(idx, images)
    ]
    plot_samples(images, samples.labels[idx], path, masks=masks)


def _overlays(model_file: Path, out: Path, size: int, gsd: float, n: int = 4) -> None:
    from shipcam.runtime import Detector
    from shipcam.runtime.overlay import overlay, save_png
    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    det = Detector.load(model_file, threads=1)
    big = max(size, 160)  # show the CAM on scenes larger than the training size: the model is fully convolutional
    ships = [generate_scene(SceneConfig(size=big, ship_fraction=1.0, gsd=gsd), seed=31, index=i) for i in range(n)]
    empty = [
        generate_scene(
            SceneConfig(size=big, ship_fraction=0.0, coast_prob=0.5, confuser_prob=1.0, gsd=gsd), seed=32, index=i
        )
        for i in range(n)
    ]
    preds = {kind: [det.predict(s.image) for s in scenes] for kind, scenes in (("ship", ships), ("no_ship", empty))}
    # One absolute colour scale for the whole gallery (logit units: 0 is the p = 0.5 threshold).
    # Per-image min-max scaling would paint a "hot spot" on every empty scene.
    vmax = max(float(p.cam.max()) for ps in preds.values() for p in ps)
    for kind, scenes in (("ship", ships), ("no_ship", empty)):
        for i, (s, p) in enumerate(zip(scenes, preds[kind])):
            save_png(
                overlay(s.image, p.cam_image, p.boxes, label=f"p={p.probability:.2f}", vmin=0.0, vmax=max(vmax, 1e-3)),
                out / f"{kind}_{i}_p{p.probability:.2f}.png",
            )
