"""Which int8 recipe keeps the CAM? Every remedy, measured on one model in one run.

    python -m shipcam.benchmarks.int8_study MODEL.keras --size 224 --out runs/int8_study

For each variant: decision agreement and AUC against Keras, correlation of the
``features`` and of the CAMs, IoU of the CAMs thresholded at 20%, file size,
and the median latency of the engine call (1 thread, batch 1) next to the
float file of the same engine. Decision agreement alone would hide a CAM that
int8 broke; the CAM columns are the point.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from shipcam.benchmarks.timing import time_calls

VARIANTS = [
    # name, engine, options
    ("tflite fp32", "tflite", {"quant": "float32"}),
    ("tflite int8, 32 calib, all int8", "tflite", {"quant": "int8", "calib": 32, "tail": 0}),
    ("tflite int8, 200 calib, all int8", "tflite", {"quant": "int8", "calib": 200, "tail": 0}),
    ("tflite int8, 200 calib, last conv float", "tflite", {"quant": "int8", "calib": 200, "tail": 1}),
    ("tflite int8, 200 calib, last block float", "tflite", {"quant": "int8", "calib": 200, "tail": 3}),
    (
        "tflite int8, 200 calib, all int8, bias correction",
        "tflite",
        {"quant": "int8", "calib": 200, "tail": 0, "bc": True},
    ),
    ("tflite int16x8 (int16 activations), 200 calib", "tflite", {"quant": "int16x8", "calib": 200, "tail": 0}),
    ("onnx fp32", "onnx", {"quant": "float32"}),
    (
        "onnx int8 QDQ, 32 calib, minmax, per-channel",
        "onnx",
        {"quant": "int8", "calib": 32, "method": "minmax", "per_channel": True, "tail": 0},
    ),
    (
        "onnx int8 QDQ, 200 calib, minmax, per-tensor",
        "onnx",
        {"quant": "int8", "calib": 200, "method": "minmax", "per_channel": False, "tail": 0},
    ),
    (
        "onnx int8 QDQ, 200 calib, minmax, per-channel",
        "onnx",
        {"quant": "int8", "calib": 200, "method": "minmax", "per_channel": True, "tail": 0},
    ),
    (
        "onnx int8 QDQ, 200 calib, percentile, per-channel",
        "onnx",
        {"quant": "int8", "calib": 200, "method": "percentile", "per_channel": True, "tail": 0},
    ),
    (
        "onnx int8 QDQ, 200 calib, minmax, per-channel, last conv float",
        "onnx",
        {"quant": "int8", "calib": 200, "method": "minmax", "per_channel": True, "tail": 1},
    ),
    (
        "onnx int8 QDQ, 200 calib, minmax, per-channel, last block float",
        "onnx",
        {"quant": "int8", "calib": 200, "method": "minmax", "per_channel": True, "tail": 3},
    ),
    (
        "onnx int8 QDQ, 200 calib, minmax, per-channel, bias correction",
        "onnx",
        {"quant": "int8", "calib": 200, "method": "minmax", "per_channel": True, "tail": 0, "bc": True},
    ),
    (
        "onnx int8 QDQ, 200 calib, minmax, per-channel, 7-bit weights (depthwise 8)",
        "onnx",
        {"quant": "int8", "calib": 200, "method": "minmax", "per_channel": True, "tail": 0, "bits": 7},
    ),
    (
        "onnx int8 QDQ, 200 calib, minmax, per-channel, 7-bit weights (depthwise 8), bias correction",
        "onnx",
        {"quant": "int8", "calib": 200, "method": "minmax", "per_channel": True, "tail": 0, "bits": 7, "bc": True},
    ),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--out", default="runs/int8_study")
    ap.add_argument("--parity-n", type=int, default=120)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--only", help="comma list of variant indices")
    args = ap.parse_args(argv)

    import onnx

    from shipcam._utils.io import write_json, write_text
    from shipcam.export.bias_correction import conv_input_means, correct_for_int8
    from shipcam.export.calibration import synthetic_calibration
    from shipcam.export.graph import save_two_output_savedmodel
    from shipcam.export.onnx import convert_onnx, embed_onnx_metadata, quantize_onnx
    from shipcam.export.parity import compare_outputs, parity_set, run_in_batches
    from shipcam.export.tflite import convert_tflite, embed_tflite_metadata, float_tail_tensors
    from shipcam.runtime.engines import open_engine
    from shipcam.runtime.manifest import sha256_file
    from shipcam.train.engine import model_metadata
    from shipcam.train.model import load_classifier, two_output_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_classifier(args.model)
    meta = model_metadata(model, sha256_file(args.model), None, "float32")
    pset = parity_set(args.parity_n, args.size, meta.input_scale, meta.input_offset, seed=2024)
    two = two_output_model(model)
    reference = run_in_batches(lambda x: two(x, training=False), pset.images)
    calibs = {n: synthetic_calibration(n, args.size, meta.input_scale, meta.input_offset, seed=2025) for n in (32, 200)}
    x1 = pset.images[:1]

    rows = []
    chosen = [VARIANTS[int(i)] for i in args.only.split(",")] if args.only else VARIANTS
    with tempfile.TemporaryDirectory() as tmp:
        sm = save_two_output_savedmodel(model, Path(tmp) / "sm", None)
        float_tflite = convert_tflite(sm, "float32")
        float_onnx = convert_onnx(model, None)
        corrected = {}  # weight grid (qmax) -> the int8-ready copy: weights on that grid, biases corrected
        grids = sorted({127 if o.get("bits", 8) == 8 else 64 for _, _, o in chosen if o.get("bc")})
        means = conv_input_means(model, calibs[200].images, show_progress=False) if grids else None
        for qmax in grids:
            fixed = load_classifier(args.model)
            print("bias correction:", correct_for_int8(fixed, qmax=qmax, depthwise_qmax=127, means=means).to_dict())
            corrected[qmax] = fixed
        sm_bc = save_two_output_savedmodel(corrected[127], Path(tmp) / "sm_bc", None) if 127 in corrected else None
        onnx_bc = {q: convert_onnx(m, None) for q, m in corrected.items()}
        for name, engine, o in chosen:
            t0 = time.perf_counter()
            path = Path(tmp) / (
                name.replace(" ", "_").replace(",", "") + (".tflite" if engine == "tflite" else ".onnx")
            )
            if engine == "tflite":
                if o["quant"] == "float32":
                    data = float_tflite
                else:
                    tail = float_tail_tensors(float_tflite, o["tail"]) if o["tail"] else None
                    data = convert_tflite(
                        sm_bc if o.get("bc") else sm,
                        o["quant"],
                        calibs[o["calib"]],
                        float_ops=tail,
                        show_progress=False,
                    )
                path.write_bytes(embed_tflite_metadata(data, meta))
            else:
                proto = float_onnx
                if o["quant"] == "int8":
                    bits = o.get("bits", 8)
                    source = onnx_bc[127 if bits == 8 else 64] if o.get("bc") else float_onnx
                    proto, _ = quantize_onnx(
                        source,
                        calibs[o["calib"]],
                        o["per_channel"],
                        o["method"],
                        o["tail"],
                        weight_bits=bits,
                        show_progress=False,
                    )
                embed_onnx_metadata(proto, meta)
                onnx.save(proto, path)
            build_s = time.perf_counter() - t0
            eng = open_engine(path, threads=1)
            got = run_in_batches(eng.run, pset.images)
            rep = compare_outputs(reference, got, meta.cam_weights, meta.cam_bias, pset.labels, (args.size, args.size))
            ts = time_calls(lambda: eng.run(x1), 3, args.runs)
            row = {
                "variant": name,
                "engine": engine,
                **o,
                "size_mb": path.stat().st_size / 1e6,
                "median_ms": float(np.median(ts)),
                "build_s": build_s,
                **rep,
            }
            rows.append(row)
            print(
                f"{name:66s} {row['size_mb']:6.2f} MB {row['median_ms']:7.2f} ms  agree "
                f"{rep['decision_agreement']:.3f}  AUC {rep.get('auc', float('nan')):.3f} (keras "
                f"{rep.get('auc_reference', float('nan')):.3f})  feat corr {rep['features_corr']:.3f}  CAM corr "
                f"{rep['cam_corr_mean']:.3f} (min {rep['cam_corr_min']:.3f}, ship {rep['cam_corr_ship_mean']:.3f})  "
                f"IoU {rep['cam_iou_mean']:.3f}",
                flush=True,
            )

    for r in rows:
        base = next((b for b in rows if b["engine"] == r["engine"] and b["quant"] == "float32"), None)
        r["speedup_vs_float"] = base["median_ms"] / r["median_ms"] if base else None
    result = {"model": args.model, "size": args.size, "parity_n": args.parity_n, "threads": 1, "rows": rows}
    write_json(out / "int8_study.json", result)
    md = [
        "| variant | MB | ms (1 thread) | × float | decision agreement | AUC (Keras) | features corr | CAM corr mean "
        "(min) | CAM corr, ship shown | CAM IoU@20% |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        md.append(
            f"| {r['variant']} | {r['size_mb']:.2f} | {r['median_ms']:.2f} | {r['speedup_vs_float']:.2f} | "
            f"{r['decision_agreement']:.3f} | "
            f"{r.get('auc', float('nan')):.3f} ({r.get('auc_reference', float('nan')):.3f}) | {r['features_corr']:.3f} "
            f"| {r['cam_corr_mean']:.3f} ({r['cam_corr_min']:.3f}) | {r['cam_corr_ship_mean']:.3f} | "
            f"{r['cam_iou_mean']:.3f} |"
        )
    write_text(out / "int8_study.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
