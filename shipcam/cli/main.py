"""The ``shipcam`` command line. Each subcommand imports what it needs when it runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import get_args

from shipcam.errors import ShipcamError

# Choices come from the libraries' Literal/Enum types (these modules import no TensorFlow).
from shipcam.export.exporter import ExportOptions, OnnxMethod
from shipcam.export.parity import tolerance_options
from shipcam.runtime.budget import DEFAULT_MAX_MEMORY_MB, MAX_BATCH, check_budget
from shipcam.runtime.engines import ENGINES
from shipcam.runtime.views import Views
from shipcam.train.backbones import BackboneName, Pooling
from shipcam.train.distributed import DEFAULT_JOIN_TIMEOUT
from shipcam.train.schedules import CycleMode
from shipcam.train.threshold import DEFAULT_TARGET_FA
from shipcam.train.trainer import Balance, Select, Strategy

DEFAULT_SIZE = 96
EXPORT_DEFAULTS = ExportOptions()  # the CLI's defaults are the library's


def _weights(value: str) -> str | None:
    return None if value.lower() in ("none", "random", "") else value


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="mobilenet_v2", choices=get_args(BackboneName))
    g.add_argument("--alpha", type=float, default=0.35, help="MobileNetV2 width multiplier (default: 0.35)")
    g.add_argument(
        "--pooling", default="max", choices=get_args(Pooling), help="global max (GMP, default) or average pooling"
    )
    g.add_argument(
        "--weights",
        type=_weights,
        default="imagenet",
        help="'imagenet' (Keras download), 'none' (random init) or a backbone weights file (default: imagenet)",
    )
    g.add_argument("--dropout", type=float, default=0.2)


def _float_or_none(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', received {text!r}") from None


class _Parser(argparse.ArgumentParser):
    """Bad options get one line, as bad inputs do: the problem, and where the help is (not the whole usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _budget(text: str) -> float | None:
    """--max-memory-mb: a positive number of MB, or 'none'."""
    try:
        return check_budget(None if text.lower() == "none" else text)
    except ShipcamError:
        raise argparse.ArgumentTypeError(f"expected a positive number of MB or 'none', received {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, received {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
    return value


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", default="auto", choices=ENGINES, help="auto: by file type")
    g.add_argument("--threads", type=int, default=1, help="inference threads (always set explicitly; default: 1)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        help="dataset folder (Airbus CSV+RLE, ship/ + no_ship/, or ShipsNet); default: generate synthetic scenes",
    )
    g.add_argument(
        "--size", type=int, default=DEFAULT_SIZE, help=f"training image size in px (default: {DEFAULT_SIZE})"
    )
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--val-fraction", type=float, default=0.2)
    g.add_argument("--synthetic-n", type=int, default=2000, help="scenes to generate when --data is not given")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--no-randomize",
        dest="randomize",
        action="store_false",
        help="turn off domain randomisation (colour, blur, noise, scale jitter); flips and turns stay",
    )
    g.add_argument(
        "--no-augment",
        dest="augment",
        action="store_false",
        help="no augmentation at all: every epoch sees the same pixels (for comparisons)",
    )
    g.add_argument(
        "--gsd",
        type=float,
        help="metres/pixel of the training images, recorded in exported files so scan resamples scenes to it (default: "
        "a generated dataset's own, Airbus 1.5, ShipsNet 3.0)",
    )
    g.add_argument(
        "--gsd-range",
        type=_positive,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="draw synthetic scenes and real chips across this range of metres/pixel; exported files record it and "
        "scan runs scenes inside it as they are (default: the single --gsd)",
    )


def _config_from_args(args) -> "object":
    from shipcam.train.trainer import TrainConfig

    fields = TrainConfig.__dataclass_fields__
    try:
        return TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    except ValueError as e:  # an inconsistent combination of options: one line, not a traceback
        raise ShipcamError(str(e)) from None


def cmd_generate(args) -> int:
    from shipcam.train.data.synthetic import SceneConfig
    from shipcam.train.data.writer import write_synthetic_dataset

    cfg = SceneConfig(size=args.size, gsd=args.gsd, ship_fraction=args.ship_fraction, max_ships=args.max_ships)
    root = write_synthetic_dataset(args.out, args.n, cfg, seed=args.seed, image_format=args.format)
    print(f"wrote {args.n} scenes to {root}")
    return 0


def cmd_train(args) -> int:
    from shipcam.train.trainer import load_config, train

    if args.distributed:
        return _train_distributed(args)
    if args.num_processes is not None:
        raise ShipcamError(f"--num-processes {args.num_processes} starts processes of --distributed jax: add it")
    if args.resume:
        config = load_config(args.resume)
        result = train(config, resume=True)
    else:
        config = _config_from_args(args)
        result = train(config)
    if result.get("interrupted"):
        return 130
    if args.export and args.export.lower() != "none":
        from shipcam.export import ExportOptions, export_model, parse_formats

        run = Path(config.run_dir)
        manifest = export_model(run / "best.keras", run / "export", ExportOptions(formats=parse_formats(args.export)))
        print(f"exported {len(manifest['files'])} files to {run / 'export'}; recommended: {manifest['recommended']}")
    return 0


def _train_distributed(args) -> int:
    """``train --distributed jax``: launch local processes, or train as one process of a cluster.

    Process 0 then evaluates, calibrates and exports in a TensorFlow-backend
    process (``train --resume RUN``): LiteRT's converter needs TensorFlow's Keras.
    """
    import subprocess

    from shipcam.train import distributed
    from shipcam.train.trainer import load_config, train

    if args.resume is None and args.strategy != "default":
        raise ShipcamError(f"--distributed jax replaces tf.distribute: leave out --strategy {args.strategy}")
    if not args.join_timeout > 0:
        raise ShipcamError(f"--join-timeout must be a positive number of seconds, received {args.join_timeout:g}")
    run = Path(args.resume or args.run_dir)
    if args.num_processes is not None and not distributed.is_launched_child():
        if args.num_processes < 1:
            raise ShipcamError(f"--num-processes must be 1 or more, received {args.num_processes}")
        if not args.resume:  # a bad option: one line here, not one per process
            distributed.Cluster(args.num_processes).local_batch(_config_from_args(args).batch_size)
            if (run / "config.json").exists():
                raise ShipcamError(
                    f"{run} already holds a training run; resume it with --resume or choose another --run-dir"
                )
        distributed.require_jax()
        return distributed.launch_local(args.argv, args.num_processes, run)
    cluster = distributed.Cluster.from_env(join_timeout=args.join_timeout)
    distributed.require_jax()
    if args.resume:
        config = load_config(cluster.run_dir(args.resume))
    else:
        config = _config_from_args(args)
        config.run_dir = str(cluster.run_dir(args.run_dir))
    result = train(config, resume=bool(args.resume), cluster=cluster)
    if result.get("interrupted"):
        return 130
    cluster.shutdown()
    if not cluster.is_main:
        return 0
    export = "all" if args.export is None else args.export
    finish = [sys.executable, "-m", "shipcam.cli", "train", "--resume", str(run), "--export", export]
    return subprocess.run(finish, env=distributed.tensorflow_env()).returncode


def cmd_lr_find(args) -> int:
    from shipcam._utils.io import write_json
    from shipcam.train.lr_find import lr_find_for_config

    config = _config_from_args(args)
    config.run_dir = str(Path(args.out) / "train")  # only names where synthetic data is generated
    write_json(
        Path(args.out) / "lr_finder_config.json",
        {**config.to_dict(), "start_lr": args.start_lr, "end_lr": args.end_lr, "steps": args.steps},
    )
    result = lr_find_for_config(config, args.out, args.start_lr, args.end_lr, args.steps)
    s = result["suggestion"]
    if s:
        print(f"suggested learning rate: {s['steepest']:.2e} (steepest descent); {s['min_over_10']:.2e} (minimum / 10)")
    print(f"curve: {Path(args.out) / 'lr_finder.png'}")
    return 0


def cmd_check(args) -> int:
    import numpy as np

    from shipcam.train.backbones import get_backbone
    from shipcam.train.data.pipeline import make_dataset
    from shipcam.train.model import build_classifier
    from shipcam.train.sanity import overfit_one_batch
    from shipcam.train.trainer import prepare_data

    config = _config_from_args(args)
    config.run_dir = str(Path(args.out) / "train")
    train_s, _ = prepare_data(config)
    # A batch with both classes, half and half where possible.
    pos, neg = np.flatnonzero(train_s.labels == 1), np.flatnonzero(train_s.labels == 0)
    k = min(args.batch // 2, len(pos), len(neg))
    batch = train_s.subset(np.concatenate([pos[:k], neg[:k]]))
    x, y = next(iter(make_dataset(batch, get_backbone(config.backbone), config.size, 2 * k, training=False)))
    model = build_classifier(config.backbone, config.pooling, config.alpha, config.weights, dropout=0.0)
    report = overfit_one_batch(model, x.numpy(), y.numpy(), steps=args.steps, learning_rate=args.lr)
    print(
        f"overfit-one-batch passed: loss {report.initial_loss:.4f} -> {report.final_loss:.4f} in {report.steps} steps, "
        f"batch accuracy {report.batch_accuracy:.2f}"
    )
    return 0


def cmd_export(args) -> int:
    from shipcam.export import ExportOptions, Tolerances, export_model, parse_formats

    tol = Tolerances(**{name: getattr(args, name) for name, *_ in tolerance_options()})
    options = ExportOptions(
        formats=parse_formats(args.formats),
        size=args.size,
        batch=args.batch,
        calib=args.calib,
        calib_data=args.calib_data,
        calib_size=args.calib_size,
        parity_n=args.parity_n,
        int8_io=args.int8_io,
        onnx_method=args.onnx_method,
        onnx_per_channel=not args.per_tensor,
        float_tail=args.float_tail,
        float_head=args.float_head,
        equalize=args.equalize,
        bias_correction=args.bias_correction,
        onnx_weight_bits=args.onnx_weight_bits,
        tolerances=tol,
        fail_on_parity=not args.no_fail,
        threads=args.threads,
    )
    manifest = export_model(args.model, args.out, options)
    print(
        f"wrote {len(manifest['files'])} files and manifest.json to {args.out}; recommended: {manifest['recommended']}"
    )
    return 0


def cmd_verify(args) -> int:
    from shipcam.export import verify_file

    result = verify_file(args.file, model_path=args.model, n=args.n, threads=args.threads)
    checks = ", ".join(f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}" for k, v in result["checks"].items())
    print(f"{args.file}: ok ({checks})")
    if "parity" in result:
        p = result["parity"]
        print(
            f"  vs Keras: logits err {p['logits_rel_err']:.2e} x range, decision agreement "
            f"{p['decision_agreement']:.3f}, CAM corr {p['cam_corr_mean']:.3f}, CAM IoU {p['cam_iou_mean']:.3f}"
        )
    return 0


def cmd_predict(args) -> int:
    from shipcam.runtime.files import predict_files

    s = predict_files(
        args.model,
        args.images,
        args.out,
        overlay=args.overlay,
        engine=args.engine,
        threads=args.threads,
        rule=_rule(args),
        gsd=args.gsd,
    )
    print(
        f"{s['images']} images, {s['ships']} with ships, {s['errors']} not processed -> "
        f"{Path(args.out) / 'predictions.jsonl'}"
    )
    if s["failed"]:  # like gzip and cp: the rest was done, but the exit status says not everything was
        print(f"shipcam predict: {len(s['failed'])} input(s) not processed: {', '.join(s['failed'])}", file=sys.stderr)
        return 1
    return 0


def _rule(args) -> dict:
    """The detection-rule options the user set (the rest stay the file's defaults), checked here: a bad value is one
    line before any work.
    """
    import dataclasses

    from shipcam.runtime.detections import DetectionRule

    rule = {f.name: getattr(args, f.name) for f in dataclasses.fields(DetectionRule) if hasattr(args, f.name)}
    try:
        DetectionRule(**rule)
    except ValueError as e:
        raise ShipcamError(str(e)) from None
    return rule


def _add_rule_args(p, scans: bool = True) -> None:
    """One option per ``DetectionRule`` field, grouped by stage, its help and default taken from the field itself."""
    import dataclasses

    from shipcam.runtime.detections import STAGES, DetectionRule

    for stage, title in STAGES.items():
        group = None
        for f in dataclasses.fields(DetectionRule):
            m = f.metadata
            if m["stage"] != stage or (m["scans_only"] and not scans):
                continue
            group = group or p.add_argument_group(f"detections: {title}")
            default = f.default.value if isinstance(f.default, Views) else f.default
            help = f"{m['help']} (default: {m['shown'] or default})"
            flag = "--" + f.name.replace("_", "-")
            if isinstance(f.default, bool):
                action = group.add_argument(
                    flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help
                )
            elif isinstance(f.default, Views):
                action = group.add_argument(flag, choices=_VIEWS, default=argparse.SUPPRESS, help=help)
            else:
                action = group.add_argument(flag, type=float, default=argparse.SUPPRESS, help=help)
            action.field_default = default  # what the help shows, checked against the field by the tests


_VIEWS = [v.value for v in Views]


def cmd_scan(args) -> int:
    from shipcam.runtime.files import scan_file

    if args.downlink_budget_kb is not None and not args.crops:
        raise ShipcamError("--downlink-budget-kb needs --crops DIR (where the chips go)")
    downlink = (
        dict(
            crops=args.crops,
            budget_kb=args.downlink_budget_kb,
            size=args.chip_size,
            fmt=args.chip_format,
            quality=args.chip_quality,
        )
        if args.crops
        else None
    )
    s = scan_file(
        args.model,
        args.scene,
        args.out,
        tile=args.tile,
        overlap=args.overlap,
        engine=args.engine,
        threads=args.threads,
        gsd=args.gsd,
        rule=_rule(args),
        downlink=downlink,
        max_memory_mb=args.max_memory_mb,
        batch=args.batch,
        crs=args.crs,
        geometry=args.geometry,
        heatmap=args.heatmap,
    )
    files = ", ".join(f for f in s["outputs"].values() if f)
    print(
        f"{s['scene']}: {s['detections']} ships in {s['tiles']} tiles ({s['positive_tiles']} positive, "
        f"{s['rejected_peaks']} peaks off isolated objects), {s['scan_seconds']:.1f}s, peak RSS "
        f"{s['peak_rss_mb']:.0f} MB -> {args.out} ({files}; coordinates: {_coordinates_text(s)})"
    )
    if downlink:
        d = s["downlink"]
        print(
            f"downlink: {d['chips']} of {d['chips'] + d['left_out']} chips + manifest = {d['bytes'] / 1000:.1f} kB, "
            f"{100 * d['fraction_of_file']:.2f}% of the scene file ({d['scene_file_bytes'] / 1e6:.1f} MB), "
            f"{100 * d['fraction_of_raw']:.3f}% of its pixels -> {d['crops']}"
        )
    return 0


def _coordinates_text(s: dict) -> str:
    kind = s["coordinates"]
    return {"wgs84": "WGS 84 lon/lat", "pixel": "scene pixels"}.get(kind, f"the scene's CRS, {s['crs']}")


def _add_output_args(p) -> None:
    """--crs, --geometry, --heatmap: what files a scan writes (scan and scan-archive)."""
    from shipcam.runtime.geojson import CRS_CHOICES, GEOMETRIES, HEATMAP_FORMATS  # numpy only

    g = p.add_argument_group("outputs")
    g.add_argument(
        "--crs",
        choices=CRS_CHOICES,
        default="wgs84",
        help="wgs84: <scene>_detections.geojson (RFC 7946) in longitude/latitude for a GeoTIFF/JP2 with a CRS; "
        "native: <scene>_detections.gpkg (GeoPackage) in the scene's own CRS. Scenes without a CRS (PNG, JPEG) "
        "are written in pixels, and say so (default: wgs84)",
    )
    g.add_argument(
        "--geometry",
        choices=GEOMETRIES,
        default="point",
        help="one geometry per detection: its peak (a Point) or its box (a Polygon); the other goes in the "
        "properties (default: point)",
    )
    g.add_argument(
        "--heatmap",
        choices=HEATMAP_FORMATS,
        default="png",
        help="png: <scene>_heatmap.png, the heatmap over the scene to look at; cog: <scene>_heatmap.tif, a "
        "Cloud-Optimised GeoTIFF of the heatmap (logit units) in the scene's CRS (GeoTIFF/JP2 with a CRS; others "
        "fall back to png, with a note); none (default: png)",
    )


def cmd_scan_archive(args) -> int:
    from shipcam.runtime.archive import scan_archive

    options = dict(
        tile=args.tile,
        overlap=args.overlap,
        gsd=args.gsd,
        rule=_rule(args),
        engine=args.engine,
        max_memory_mb=args.max_memory_mb,
        crs=args.crs,
        geometry=args.geometry,
        heatmap=args.heatmap,
    )
    s = scan_archive(args.model, args.inputs, args.out, address=args.address, workers=args.workers, options=options)
    rate = f", {s['scenes_per_second']:.2f} scenes/s with {s['workers']} workers" if s["scenes_per_second"] else ""
    print(
        f"{s['scenes']} scenes: {s['scanned']} scanned, {s['skipped_done']} already done, {len(s['failed'])} "
        f"failed{rate}; {s['detections']} detections -> {s['parquet']}"
    )
    for f in s["failed"]:
        print(f"  failed: {f['error']}", file=sys.stderr)
    return 1 if s["failed"] else 0


def cmd_calibrate(args) -> int:
    from shipcam.train.trainer import calibrate_model

    cal = calibrate_model(args.model, args.target_fa, args.scenes, args.gsd)
    print(
        f"{args.model}: threshold {cal['threshold']:.4f} ({cal['synthetic_fa_per_mpx']:.2f} false alarms/Mpx, recall "
        f"{cal['synthetic_recall']:.2f} on {cal['synthetic_scenes']} held-out synthetic scenes; target "
        f"{args.target_fa:g}/Mpx); re-export to use it"
    )
    return 0


def cmd_eval_scenes(args) -> int:
    from shipcam.evaluation.scenes import evaluate_scenes

    r = evaluate_scenes(
        args.model,
        args.scenes,
        args.labels,
        args.out,
        gsd=args.gsd,
        threads=args.threads,
        radius_m=args.radius_m,
        rule=_rule(args),
    )
    t = r["total"]
    print(
        f"{r['model']}: recall {t['recall']:.3f} ({t['found']}/{t['ships']} ships), precision {t['precision']:.3f}, F1 "
        f"{t['f1']:.3f}, "
        f"{t['false_alarms']} false alarms = {t['fa_per_mpx']:.2f}/Mpx, {t['fa_per_km2']:.3f}/km2 at threshold "
        f"{r['threshold']}"
    )
    for row in r["scenes"]:
        for m in row["missed"]:
            print(f"  missed in {Path(row['scene']).name}: ({m['x']:g}, {m['y']:g}) {m['note']}".rstrip())
    print(f"-> {Path(args.out) / 'eval.json'}, pr_curve.png, overlays")
    return 1 if r.get("failed") else 0


def cmd_bench(args) -> int:
    from shipcam.benchmarks.bench import BenchConfig, run_bench

    cfg = BenchConfig(
        model=args.model,
        export_dir=args.exports,
        sizes=[int(v) for v in args.sizes.split(",")],
        threads=[int(v) for v in args.threads.split(",")],
        batch=args.batch,
        warmup=args.warmup,
        runs=args.runs,
        quality_n=args.quality_n,
        keras=not args.no_keras,
    )
    result = run_bench(cfg, args.out)
    from shipcam.benchmarks.bench import int8_lines, to_markdown

    print(to_markdown(result))
    for line in int8_lines(result):  # where int8 pays: on CPUs with a dot-product instruction
        print(line)
    print(f"-> {Path(args.out) / 'bench.json'}, bench.md, bench.png")
    return 0


def cmd_eval(args) -> int:
    from shipcam.evaluation.evaluate import evaluate

    r = evaluate(
        args.model,
        args.data,
        args.out,
        threshold=args.threshold,
        limit=args.limit,
        threads=args.threads,
        views=args.views,
    )
    c = r["classification"]
    print(
        f"{r['model']}: accuracy {c['accuracy']:.3f} (majority baseline {c['majority_baseline']:.3f}), precision "
        f"{c['precision']:.3f}, recall {c['recall']:.3f}, F1 {c['f1']:.3f}, AUC {c['auc']:.3f} at threshold "
        f"{c['threshold']}"
    )
    if "localisation" in r:
        loc = r["localisation"]
        print(
            f"  CAM: pointing game {loc['pointing_game']:.3f}, box recall@0.3 {loc['box_recall@0.3']:.3f}, @0.5 "
            f"{loc['box_recall@0.5']:.3f}, MaxBoxAcc@0.5 {loc['maxboxacc@0.5']:.3f} (fraction "
            f"{loc['maxboxacc_fraction']})"
        )
    print(f"-> {Path(args.out) / 'eval.json'}")
    return 0


def cmd_demo(args) -> int:
    from shipcam.cli.demo import run_demo

    run_demo(args.out, weights=args.weights, quick=args.quick, scenes=args.scenes, labels=args.labels)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from shipcam.runtime.downlink import CHIP_FORMATS  # numpy only: no engine, no TensorFlow

    parser = _Parser(
        prog="shipcam",
        description="Edge-deployed, explainable ship detection: train, export, run with Class Activation Maps.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "demo",
        help="the whole pipeline: data, range test, training, export, evaluation, report",
        description="Generate data (and cut chips from labelled real scenes when there are any), find a learning rate, "
        "train, export, evaluate and report in OUT.",
    )
    p.add_argument("--out", default="runs/demo")
    p.add_argument(
        "--weights",
        type=_weights,
        default="auto",
        help="backbone weights: 'imagenet' (download), a file, none (from scratch), or auto (default: the ImageNet "
        "MobileNetV2 the repository carries; else Keras' download; else from scratch)",
    )
    p.add_argument("--quick", action="store_true", help="a tiny run (for tests): fewer scenes and epochs")
    p.add_argument(
        "--scenes",
        help="folder of labelled real scenes to train on as well; 'none': synthetic only, as on a clone without "
        "../shared (default: ../shared/realdata when present; they are not scored: see benchmarks.loso)",
    )
    p.add_argument("--labels", help="labels CSV for --scenes (default: labels/realdata.csv)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "generate",
        help="write synthetic ship scenes in the Airbus layout",
        description="Synthetic scenes with ship masks, written as train_v2/*.jpg + train_ship_segmentations_v2.csv.",
    )
    p.add_argument("out", help="output folder")
    g = p.add_argument_group("scenes")
    g.add_argument("-n", type=int, default=2000, help="number of scenes (default: 2000)")
    g.add_argument("--size", type=int, default=DEFAULT_SIZE)
    g.add_argument("--gsd", type=float, default=3.0, help="metres per pixel (PlanetScope ~3, Airbus ~1.5)")
    g.add_argument("--ship-fraction", type=float, default=0.22)
    g.add_argument("--max-ships", type=int, default=3)
    g.add_argument("--format", default="jpg", choices=["jpg", "png"])
    g.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "train",
        help="two-phase transfer learning",
        description="Frozen backbone first, then fine-tune the top layers. Resumable.",
    )
    p.add_argument("--run-dir", default="runs/train", help="where checkpoints, curves and metrics go")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (its config.json is reused)")
    _add_model_args(p)
    _add_data_args(p)
    g = p.add_argument_group("schedule")
    g.add_argument("--head-epochs", type=int, default=3)
    g.add_argument("--head-lr", type=float, default=1e-3)
    g.add_argument("--finetune-epochs", type=int, default=6)
    g.add_argument("--finetune-lr", type=float, default=1e-4)
    g.add_argument("--finetune-layers", type=int, default=60, help="top backbone layers to unfreeze (-1: all)")
    g.add_argument(
        "--finetune-bn",
        action="store_true",
        help="also train BatchNorm in fine-tuning (batch statistics, momentum 0.9): its statistics come from your "
        "imagery instead of ImageNet",
    )
    g.add_argument("--scratch-lr", type=float, default=3e-3, help="rate when --weights none (one phase, all layers)")
    g.add_argument("--scratch-epochs", type=int, default=20, help="epochs when --weights none")
    g.add_argument(
        "--clr",
        choices=[m.value for m in CycleMode],
        help="cyclical learning rate between lr and clr-factor x lr (default: cosine decay)",
    )
    g.add_argument("--clr-factor", type=float, default=4.0)
    g.add_argument("--patience", type=int, default=4, help="early stopping on val AUC")
    g.add_argument("--steps-per-epoch", type=int)
    g.add_argument(
        "--head-only",
        action="store_true",
        help="train only the head on a frozen backbone (even a random one: for comparisons)",
    )
    g.add_argument(
        "--balance",
        choices=get_args(Balance),
        default="weights",
        help="class imbalance: loss weights (default), balanced sampling, or none",
    )
    g = p.add_argument_group("labelled real scenes")
    g.add_argument(
        "--scenes",
        nargs="+",
        default=[],
        metavar="SCENE",
        help="labelled scenes (files or folders) to train on: chips around each ship, the ships laid on other water, "
        "negatives from everywhere else (needs --labels)",
    )
    g.add_argument(
        "--real-ratio", type=float, default=0.5, help="share of the training images cut from --scenes (default: 0.5)"
    )
    g.add_argument(
        "--mining-rounds",
        type=int,
        default=1,
        help="rounds of hard-negative mining on --scenes after fine-tuning: windows around the model's strongest false "
        "alarms added, then more training (default: 1)",
    )
    g.add_argument("--mining-epochs", type=int, default=2, help="epochs of each mining round (default: 2)")
    g = p.add_argument_group("scene validation and threshold")
    g.add_argument(
        "--real-val",
        nargs="+",
        default=[],
        metavar="SCENE",
        help="labelled real scenes (files or folders) scored each epoch: F1, recall, false alarms/Mpx, as eval-scenes "
        "does",
    )
    g.add_argument(
        "--labels",
        dest="real_labels",
        metavar="CSV",
        help="labels of the --scenes and --real-val scenes (see labels/README.md)",
    )
    g.add_argument(
        "--select",
        type=lambda s: s.replace("-", "_"),
        choices=get_args(Select),
        default="val_auc",
        help="score that picks best.keras: val-auc (synthetic tiles, default), real-f1 (needs --real-val) or "
        "scene-recall "
        "(recall at --target-fa on held-out synthetic scenes: no real data involved)",
    )
    g.add_argument(
        "--scene-val",
        type=int,
        default=0,
        metavar="N",
        help="score N held-out synthetic scenes each epoch (default: 16 with --select scene-recall, else none)",
    )
    g.add_argument(
        "--target-fa",
        type=_float_or_none,
        default=DEFAULT_TARGET_FA,
        metavar="PER_MPX",
        help="save the threshold at which held-out synthetic scenes give this many false alarms per megapixel "
        f"(default: {DEFAULT_TARGET_FA:g}, half of the 1/Mpx real scenes should show: real scenes gave up to "
        "2.3x the synthetic rate; 'none' keeps 0.5)",
    )
    g = p.add_argument_group("system")
    g.add_argument(
        "--strategy",
        default="default",
        metavar="{" + ",".join(get_args(Strategy)) + "}",
        help="tf.distribute strategy on one machine (default: default)",
    )
    g.add_argument("--tensorboard", action="store_true")
    g.add_argument(
        "--export",
        metavar="FORMATS",
        help="export best.keras to RUN/export afterwards: 'all', a comma list as export --formats, or none (default: "
        "all with --distributed jax, else none)",
    )
    g = p.add_argument_group("several processes or machines (see README: training on several machines)")
    g.add_argument(
        "--distributed",
        choices=["jax"],
        help='data-parallel training on Keras\' JAX backend (pip install "shipcam[distributed]"): one process per '
        "machine, described by KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES and _PROCESS_ID; --batch-size is "
        "the global batch",
    )
    g.add_argument(
        "--num-processes",
        type=int,
        metavar="N",
        help="with --distributed jax: start N processes on this machine instead (a trial of a cluster)",
    )
    g.add_argument(
        "--join-timeout",
        type=float,
        default=DEFAULT_JOIN_TIMEOUT,
        metavar="SECONDS",
        help=f"how long the processes wait for each other to start (default: {DEFAULT_JOIN_TIMEOUT:g})",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "lr-find",
        help="learning-rate range test with its plot",
        description="Sweep the learning rate exponentially and plot the smoothed loss.",
    )
    p.add_argument("--out", default="runs/lr_find")
    _add_model_args(p)
    _add_data_args(p)
    g = p.add_argument_group("sweep")
    g.add_argument("--start-lr", type=float, default=1e-6)
    g.add_argument("--end-lr", type=float, default=1.0)
    g.add_argument("--steps", type=int, default=100)
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser(
        "export",
        help="two-output TFLite/ONNX files (float and int8) with parity checks",
        description="Export MODEL.keras to every format; each file carries its CAM weights and preprocessing, and is "
        "compared with Keras.",
    )
    p.add_argument("model", help="a shipcam .keras model")
    p.add_argument("--out", required=True, help="output folder")
    g = p.add_argument_group("formats")
    g.add_argument(
        "--formats",
        default="all",
        help="'all' or a comma list of tflite_fp32,tflite_fp16,tflite_int8,onnx_fp32,onnx_int8",
    )
    g.add_argument("--size", type=int, help="fix the input size (default: any size, dynamic height/width)")
    g.add_argument(
        "--batch",
        type=int,
        help="fix the batch of .tflite files (LiteRT.js in the browser needs --size N --batch 1; default: dynamic)",
    )
    g.add_argument(
        "--int8-io",
        action="store_true",
        help="int8 TFLite with int8 input/output tensors (default: float I/O, int8 inside)",
    )
    d = EXPORT_DEFAULTS
    g = p.add_argument_group("int8 calibration")
    g.add_argument("--calib", type=int, default=d.calib, help=f"calibration images (default: {d.calib})")
    g.add_argument("--calib-data", help="dataset folder for calibration (default: synthetic scenes, half with ships)")
    g.add_argument("--calib-size", type=int, help="calibration image size (default: the training size)")
    g.add_argument("--onnx-method", default=d.onnx_method, choices=get_args(OnnxMethod))
    g.add_argument("--per-tensor", action="store_true", help="ONNX int8 weights per tensor (default: per channel)")
    g.add_argument(
        "--float-tail",
        type=int,
        default=d.float_tail,
        help=f"int8: keep the last N convolutions (the CAM's feature map) in float (default: {d.float_tail})",
    )
    g.add_argument(
        "--onnx-weight-bits",
        type=int,
        choices=[7, 8],
        default=d.onnx_weight_bits,
        help="ONNX int8 weight bits: 7 avoids ORT's int16 saturation on x86 CPUs without VNNI "
        f"(default: {d.onnx_weight_bits})",
    )
    g.add_argument(
        "--float-head",
        type=int,
        default=d.float_head,
        help=f"int8: keep the first N convolutions (the input's rounding) in float (default: {d.float_head})",
    )
    g.add_argument(
        "--equalize",
        type=float,
        default=d.equalize,
        help="int8: rescale each residual-stream channel to use the whole int8 range, strength 0 (off) to 1 "
        f"(default: {d.equalize:g})",
    )
    g.add_argument(
        "--no-bias-correction",
        dest="bias_correction",
        action="store_false",
        help="plain post-training int8: skip putting the weights on the int8 grid with corrected biases",
    )
    g = p.add_argument_group("parity thresholds")
    g.add_argument(
        "--parity-n",
        type=int,
        default=EXPORT_DEFAULTS.parity_n,
        help=f"held-out labelled scenes for parity (default: {EXPORT_DEFAULTS.parity_n})",
    )
    for name, flag, default, text in tolerance_options():
        g.add_argument(
            flag,
            dest=name,
            type=float,
            default=default,
            metavar=flag[2:].upper().replace("-", "_"),
            help=f"{text} (default: {default:g})".replace("%", "%%"),
        )
    g.add_argument("--no-fail", action="store_true", help="write the files even when a threshold is missed")
    g.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help="engine threads for the parity run and for the timing that picks the recommended file "
        f"(default: {d.threads})",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "verify",
        help="check an exported file (integrity, metadata, parity with --model)",
        description="Re-run the checks on an exported .tflite/.onnx file.",
    )
    p.add_argument("file")
    p.add_argument("--model", help="the source .keras model: re-run parity against it")
    p.add_argument("-n", type=int, default=32, help="scenes to check on")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "predict",
        help="probability, CAM and boxes for images (runtime only, no TensorFlow)",
        description="Run an exported .tflite/.onnx file on images or folders; writes predictions.jsonl (+ overlays).",
    )
    p.add_argument("model", help="an exported .tflite or .onnx file")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--out", default="runs/predict")
    p.add_argument("--overlay", action="store_true", help="write a PNG per image with the CAM heatmap and boxes")
    p.add_argument(
        "--gsd",
        type=_positive,
        help="the images' metres/pixel: outside the model's range they are resampled to it, as scan does (default: "
        "taken as the model's)",
    )
    _add_rule_args(p, scans=False)
    _add_engine_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "scan",
        help="find ships in a large scene by tiles (runtime only)",
        description="Tile a large scene, stitch the CAMs into one heatmap; one detection per CAM peak that sits on an "
        "isolated, ship-sized object.",
    )
    p.add_argument("model", help="an exported .tflite or .onnx file")
    p.add_argument("scene", help="a large image (PNG/JPEG/TIFF/JP2; a GeoTIFF/JP2 + rasterio gives geographic outputs)")
    p.add_argument("--out", default="runs/scan")
    p.add_argument("--tile", type=int, help="tile size in px (default: twice the training size)")
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument(
        "--gsd",
        type=float,
        help="the scene's metres/pixel (default: from a GeoTIFF transform; else PlanetScope's 3.0, with a note)",
    )
    p.add_argument(
        "--batch",
        type=_positive_int,
        help=f"tiles per engine call (default: as many as --max-memory-mb leaves room for, at most {MAX_BATCH})",
    )
    p.add_argument(
        "--max-memory-mb",
        type=_budget,
        default=DEFAULT_MAX_MEMORY_MB,
        help=f"memory the scan may use (default {DEFAULT_MAX_MEMORY_MB:g}; 'none': no limit): it sets the batch, "
        "resamples a scene window by window when a whole copy would not fit, and refuses a scene that cannot fit "
        "one tile at a time",
    )
    g = p.add_argument_group("on-board downlink filter")
    g.add_argument(
        "--crops",
        help="write a chip per detection and a compact manifest (<scene>_downlink.geojson: RFC 7946 lon/lat points "
        "for a georeferenced scene, pixels otherwise) into this folder",
    )
    g.add_argument(
        "--downlink-budget-kb",
        type=float,
        help="send chips strongest first until chips + manifest would pass this many kB (default: all)",
    )
    g.add_argument("--chip-size", type=int, default=96, help="chip side in scene pixels (default: 96)")
    g.add_argument("--chip-format", choices=CHIP_FORMATS, default="jpeg")
    g.add_argument("--chip-quality", type=int, default=90, help="JPEG quality 1-100 (default: 90)")
    _add_output_args(p)
    _add_rule_args(p)
    _add_engine_args(p)
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser(
        "scan-archive",
        help="scan an archive of scenes on Ray Data (resumable; needs shipcam[scale])",
        description="Scan many scenes in parallel with a Ray Data actor pool (one Detector, one thread per actor); the "
        "same files as `shipcam scan` per scene under OUT/scenes/, one detections.parquet, and "
        "summary.json. Scenes already done are skipped; failed ones are recorded.",
    )
    p.add_argument("model", help="an exported .tflite or .onnx file")
    p.add_argument(
        "inputs", nargs="+", help="scene files, folders, glob patterns (quoted), or text files listing scene paths"
    )
    p.add_argument("--out", default="runs/archive")
    p.add_argument(
        "--address",
        help="a Ray cluster to join (e.g. ray://head:10001 or head:6379; default: start Ray locally on this machine's "
        "CPUs)",
    )
    p.add_argument(
        "--workers", type=int, help="actors, each one Detector with one thread (default: the cluster's CPUs)"
    )
    p.add_argument("--tile", type=int)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument(
        "--gsd", type=float, help="metres/pixel of scenes without a georeference (default: PlanetScope's 3.0, as scan)"
    )
    p.add_argument(
        "--max-memory-mb",
        type=_budget,
        default=DEFAULT_MAX_MEMORY_MB,
        help="per scene, as for scan, over what an idle Ray worker holds",
    )
    p.add_argument("--engine", default="auto", choices=ENGINES)
    _add_output_args(p)
    _add_rule_args(p)
    p.set_defaults(func=cmd_scan_archive)

    p = sub.add_parser(
        "eval-scenes",
        help="recall, precision and false alarms on labelled real scenes",
        description="Scan labelled scenes and match detections to ships: a ship is found when a detection lies within "
        "max(60 m, half its length); detections near an 'ignore' label count neither way. Writes eval.json, "
        "pr_curve.png/json and an overlay per scene.",
    )
    p.add_argument("model", help=".onnx or .tflite (or .keras with the train extra)")
    p.add_argument("scenes", nargs="+", help="scene images, or folders of them")
    p.add_argument("--labels", required=True, help="labels CSV (scene,x,y,length_m,label[,note]); see labels/README.md")
    p.add_argument("--out", default="runs/eval-scenes")
    p.add_argument(
        "--gsd", type=float, help="the scenes' metres/pixel (default: the labels file's gsd column, else 3.0)"
    )
    p.add_argument(
        "--radius-m", type=float, help="match within this fixed radius instead of max(60 m, half the ship's length)"
    )
    p.add_argument("--threads", type=int, default=1)
    _add_rule_args(p)
    p.set_defaults(func=cmd_eval_scenes)

    p = sub.add_parser(
        "calibrate",
        help="set a model's threshold for a false-alarm rate on synthetic scenes",
        description="Scan held-out synthetic scenes (coasts, cities, ports, confusers) and save in the .keras file the "
        "lowest "
        "threshold that gives at most --target-fa false alarms per megapixel (never below 0.5). train does this at the "
        "end.",
    )
    p.add_argument("model", help="a shipcam .keras model (rewritten in place, atomically)")
    p.add_argument(
        "--target-fa",
        type=float,
        default=DEFAULT_TARGET_FA,
        metavar="PER_MPX",
        help=f"false alarms per megapixel on synthetic scenes (default: {DEFAULT_TARGET_FA:g})",
    )
    p.add_argument("--scenes", type=int, default=16, help="synthetic scenes of 768 px (default: 16)")
    p.add_argument("--gsd", type=float, help="metres/pixel of the scenes (default: the model's, else 3.0)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser(
        "bench",
        help="CPU latency and quality of Keras, Grad-CAM and every exported file",
        description="Median/p90 latency, end-to-end with CAM, throughput, memory and quality; writes JSON, Markdown "
        "and a chart.",
    )
    p.add_argument("model", help="the source .keras model (Keras rows and quality reference)")
    p.add_argument("--exports", help="folder written by `shipcam export` (its manifest.json lists the files)")
    p.add_argument("--out", default="runs/bench")
    g = p.add_argument_group("matrix")
    g.add_argument("--sizes", default="224", help="comma list of input sizes (e.g. 96,224,299,768)")
    g.add_argument("--threads", default="1,2", help="comma list of thread counts")
    g.add_argument("--batch", type=int, default=8, help="batch size for the throughput column")
    g.add_argument("--warmup", type=int, default=3)
    g.add_argument("--runs", type=int, default=20)
    g.add_argument("--quality-n", type=int, default=64, help="held-out scenes for agreement/AUC/CAM columns")
    g.add_argument("--no-keras", action="store_true", help="skip the Keras rows")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "eval",
        help="classification and CAM localisation metrics on a dataset",
        description="Works on .keras models and exported files alike; writes eval.json and worst-case overlays.",
    )
    p.add_argument("model", help=".keras, .onnx or .tflite")
    p.add_argument("data", help="dataset folder (Airbus layout with masks for localisation)")
    p.add_argument("--out", default="runs/eval")
    p.add_argument("--threshold", type=float, help="decision threshold on the probability (default: the model's)")
    p.add_argument("--limit", type=int, help="evaluate the first N images only")
    p.add_argument(
        "--views",
        choices=_VIEWS,
        help="test-time views: average each image's logit and CAM over it mirrored (flip), turned (rot4) or both (d4) "
        "(default: none)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "check",
        help="overfit one batch: fails loudly if the model cannot learn",
        description="Sanity check before a long run.",
    )
    p.add_argument("--out", default="runs/check")
    _add_model_args(p)
    _add_data_args(p)
    g = p.add_argument_group("check")
    g.add_argument("--batch", type=int, default=16)
    g.add_argument("--steps", type=int, default=60)
    g.add_argument("--lr", type=float, default=1e-3)
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ banner is not for users
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)[1:]  # after the command: what train's launcher repeats
    if args.version:
        from shipcam import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ShipcamError as e:
        print(f"shipcam {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        extra = {
            "keras": "train",
            "tensorflow": "train",
            "tf2onnx": "train",
            "onnx": "train",
            "matplotlib": "train",
            "ray": "scale",
            "jax": "distributed",
        }.get((e.name or "").split(".")[0])
        hint = f'; install it with: pip install "shipcam[{extra}]"' if extra else ""
        print(f"shipcam {args.command}: error: {e}{hint}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
