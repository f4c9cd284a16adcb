"""Which int8 recipe keeps the decision and the CAM? Every remedy the engines offer, measured on one model in one run.

    python -m shipcam.benchmarks.int8_study MODEL.keras --size 224 --parity-n 200 \\
        [--real-chips RUN/real_chips] --out runs/int8_study

Each variant is the exporter's first int8 recipe (``ExportOptions``) with one thing changed (or two: the
recipe the exporter tries second, ``INT8_FALLBACK``), built by the exporter's own
code (``FileSources``) and checked by its own parity (``compare_outputs``, ``check_parity`` with the default
``Tolerances``): decision agreement and AUC against Keras, correlation of the ``features`` and of the CAMs (mean
and worst image), IoU of the CAMs thresholded at 20%, whether the file passes, its size, and the median latency
of its engine call (1 thread, batch 1) next to the float file of the same engine. Decision agreement alone would
hide a CAM that int8 broke; the CAM columns are the point.

``--real-chips``: a folder of chips cut from labelled real scenes (training writes them to ``RUN/real_chips``);
the variants that calibrate on half real chips need it and are left out without it. Latencies here are
sequential, for orientation; compare speeds with ``benchmarks/ab.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from shipcam.benchmarks.timing import time_calls

# name, engine, recipe changes from the exporter's default (Int8Recipe fields; "quant": the file's kind),
# calibration set (see ``_calibrations``)
VARIANTS = [
    ("tflite fp32", "tflite", {"quant": "float32"}, None),
    ("tflite int8, plain post-training", "tflite", {"bias_correction": False}, "synthetic"),
    ("tflite int8, default (bias correction)", "tflite", {}, "synthetic"),
    ("tflite int8, default, 800 calibration scenes", "tflite", {}, "synthetic800"),
    ("tflite int8, default, calibration half real chips", "tflite", {}, "mixed"),
    ("tflite int8, default, last conv float", "tflite", {"float_tail": 1}, "synthetic"),
    ("tflite int8, default, last block float", "tflite", {"float_tail": 3}, "synthetic"),
    ("onnx fp32", "onnx", {"quant": "float32"}, None),
    (
        "onnx int8, plain post-training (8-bit weights)",
        "onnx",
        {"bias_correction": False, "onnx_weight_bits": 8},
        "synthetic",
    ),
    ("onnx int8, default (bias correction, 7-bit weights)", "onnx", {}, "synthetic"),
    ("onnx int8, default, per-tensor weights", "onnx", {"onnx_per_channel": False}, "synthetic"),
    ("onnx int8, default, 8-bit weights", "onnx", {"onnx_weight_bits": 8}, "synthetic"),
    ("onnx int8, default, percentile calibration", "onnx", {"onnx_method": "percentile"}, "synthetic"),
    ("onnx int8, default, entropy calibration", "onnx", {"onnx_method": "entropy"}, "synthetic"),
    ("onnx int8, default, 800 calibration scenes", "onnx", {}, "synthetic800"),
    ("onnx int8, default, calibration half real chips", "onnx", {}, "mixed"),
    ("onnx int8, default, last conv float", "onnx", {"float_tail": 1}, "synthetic"),
    ("onnx int8, default, last block float", "onnx", {"float_tail": 3}, "synthetic"),
    ("tflite int8, default, first 2 convs float", "tflite", {"float_head": 2}, "synthetic"),
    ("tflite int8, default, first 3 convs float", "tflite", {"float_head": 3}, "synthetic"),
    ("onnx int8, default, first 2 convs float", "onnx", {"float_head": 2}, "synthetic"),
    ("onnx int8, default, first 3 convs float", "onnx", {"float_head": 3}, "synthetic"),
    (
        "onnx int8, default, first 3 convs float, 8-bit weights",
        "onnx",
        {"float_head": 3, "onnx_weight_bits": 8},
        "synthetic",
    ),
    ("tflite int8, default, residual streams equalized", "tflite", {"equalize": 1.0}, "synthetic"),
    ("tflite int8, default, residual streams half-equalized", "tflite", {"equalize": 0.5}, "synthetic"),
    ("onnx int8, default, residual streams equalized", "onnx", {"equalize": 1.0}, "synthetic"),
    ("onnx int8, default, residual streams half-equalized", "onnx", {"equalize": 0.5}, "synthetic"),
    (
        "tflite int8, default, streams equalized, first 2 convs float",
        "tflite",
        {"equalize": 1.0, "float_head": 2},
        "synthetic",
    ),
    (
        "onnx int8, default, streams equalized, first 3 convs float",
        "onnx",
        {"equalize": 1.0, "float_head": 3},
        "synthetic",
    ),
]


def _calibrations(wanted: set, n: int, size: int, meta, seed: int, real_chips: str | None) -> dict:
    """The calibration sets the chosen variants use; the exporter's default is ``synthetic`` (n scenes, seed+1)."""
    from shipcam.export.calibration import folder_calibration, mixed_calibration, synthetic_calibration

    scale, offset = meta.input_scale, meta.input_offset
    out = {}
    if wanted & {"synthetic", "mixed"}:
        out["synthetic"] = synthetic_calibration(n, size, scale, offset, seed=seed + 1)
    if "synthetic800" in wanted:
        out["synthetic800"] = synthetic_calibration(800, size, scale, offset, seed=seed + 1)
    if "mixed" in wanted:
        half = synthetic_calibration(n - n // 2, size, scale, offset, seed=seed + 1)
        out["mixed"] = mixed_calibration(half, folder_calibration(real_chips, n // 2, size, scale, offset))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--out", default="runs/int8_study")
    ap.add_argument("--parity-n", type=int, default=200)
    ap.add_argument("--calib", type=int, default=200)
    ap.add_argument("--real-chips", help="chips of labelled real scenes (a training run's real_chips folder)")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--only", help="comma list of variant indices")
    args = ap.parse_args(argv)

    import dataclasses

    from shipcam._utils.io import write_json, write_text
    from shipcam.export.exporter import ExportOptions, FileSources
    from shipcam.export.formats import ExportFormat
    from shipcam.export.parity import Tolerances, check_parity, compare_outputs, parity_set, run_in_batches
    from shipcam.runtime.engines import open_engine
    from shipcam.runtime.manifest import sha256_file
    from shipcam.train.engine import model_metadata
    from shipcam.train.model import load_classifier, two_output_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    defaults = ExportOptions()
    model = load_classifier(args.model)
    meta = model_metadata(model, sha256_file(args.model), None, "float32")
    pset = parity_set(args.parity_n, args.size, meta.input_scale, meta.input_offset, seed=defaults.seed)
    two = two_output_model(model)
    reference = run_in_batches(lambda x: two(x, training=False), pset.images)
    chosen = [VARIANTS[int(i)] for i in args.only.split(",")] if args.only else VARIANTS
    if not args.real_chips and any(c == "mixed" for *_, c in chosen):
        print("no --real-chips: the variants calibrated on real chips are left out")
        chosen = [v for v in chosen if v[3] != "mixed"]
    calibs = _calibrations({c for *_, c in chosen if c}, args.calib, args.size, meta, defaults.seed, args.real_chips)
    x1 = pset.images[:1]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = FileSources(model, Path(args.model), Path(tmp), None, None, show_progress=False)
        for i, (name, engine, changes, calib) in enumerate(chosen):
            quant = changes.get("quant", "int8")
            fmt = ExportFormat(f"{engine}_{'fp32' if quant == 'float32' else 'int8'}")
            recipe = dataclasses.replace(defaults.recipe(), **{k: v for k, v in changes.items() if k != "quant"})
            path = Path(tmp) / f"v{i}{fmt.suffix}"
            file_meta = dataclasses.replace(meta, quantization=fmt.quantization)
            t0 = time.perf_counter()
            sources.write(fmt, path, file_meta, recipe, calibs.get(calib), int8_io=False)
            build_s = time.perf_counter() - t0
            eng = open_engine(path, threads=1)
            got = run_in_batches(eng.run, pset.images)
            rep = compare_outputs(
                reference, got, meta.cam_weights, meta.cam_bias, pset.labels, (args.size, args.size), meta.threshold
            )
            problems = check_parity(rep, fmt.quantization, Tolerances())
            ts = time_calls(lambda: eng.run(x1), 3, args.runs)
            row = {
                "variant": name,
                "engine": engine,
                "quant": quant,
                "recipe": dataclasses.asdict(recipe),
                "calibration": calibs[calib].source if calib else None,
                "size_mb": path.stat().st_size / 1e6,
                "median_ms": float(np.median(ts)),
                "build_s": build_s,
                "passed": not problems,
                "problems": problems,
                **rep,
            }
            rows.append(row)
            print(
                f"{name:56s} {row['size_mb']:5.2f} MB {row['median_ms']:6.2f} ms  agree "
                f"{rep['decision_agreement']:.3f}  AUC {rep.get('auc', float('nan')):.3f} (keras "
                f"{rep.get('auc_reference', float('nan')):.3f})  feat corr {rep['features_corr']:.3f}  CAM corr "
                f"{rep['cam_corr_mean']:.3f} (min {rep['cam_corr_min']:.3f})  IoU {rep['cam_iou_mean']:.3f}  "
                + ("pass" if not problems else "FAIL: " + "; ".join(problems)),
                flush=True,
            )

    for r in rows:
        base = next((b for b in rows if b["engine"] == r["engine"] and b["quant"] == "float32"), None)
        r["speedup_vs_float"] = base["median_ms"] / r["median_ms"] if base else None
    result = {"model": args.model, "size": args.size, "parity_n": args.parity_n, "threads": 1, "rows": rows}
    write_json(out / "int8_study.json", result)
    md = [
        "| variant | MB | ms (1 thread) | × float | decision agreement | AUC (Keras) | features corr | CAM corr mean "
        "(min) | CAM IoU@20% | parity |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        speedup = f"{r['speedup_vs_float']:.2f}" if r["speedup_vs_float"] else "–"
        md.append(
            f"| {r['variant']} | {r['size_mb']:.2f} | {r['median_ms']:.2f} | {speedup} | "
            f"{r['decision_agreement']:.3f} | "
            f"{r.get('auc', float('nan')):.3f} ({r.get('auc_reference', float('nan')):.3f}) | {r['features_corr']:.3f} "
            f"| {r['cam_corr_mean']:.3f} ({r['cam_corr_min']:.3f}) | {r['cam_iou_mean']:.3f} | "
            f"{'pass' if r['passed'] else 'fail'} |"
        )
    write_text(out / "int8_study.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
