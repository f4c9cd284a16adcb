"""int8 calibration from larger images, resized as training does or not: ``python -m shipcam.benchmarks.calibration_resize MODEL.keras SIZE OUT``.

Calibration images larger than the model's size are downsized. Training resizes with
``tf.image.resize(antialias=True)``; the exporter's calibration does the same
(``resize_antialiased``) since issue 10, where it used a plain bilinear resize before.
This writes a folder of synthetic scenes at twice ``SIZE``, exports int8 TFLite and
ONNX calibrated from it both ways, and prints each file's parity against Keras
(CAM correlation, decision agreement, AUC drop) as a table and ``OUT/result.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]

COLUMNS = ("cam_corr_mean", "cam_corr_ship_mean", "decision_agreement", "auc_drop")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("size", type=int, help="the model's training size; calibration scenes are twice as large")
    p.add_argument("out")
    p.add_argument("--calib", type=int, default=128)
    p.add_argument("--parity-n", type=int, default=100)
    args = p.parse_args(argv)

    import shipcam.runtime.resize as resize
    from shipcam._utils.io import write_json
    from shipcam.export import ExportFormat, ExportOptions, export_model
    from shipcam.train.data.synthetic import SceneConfig
    from shipcam.train.data.writer import write_synthetic_dataset

    out = Path(args.out)
    data = out / "calib"
    if not data.exists():
        write_synthetic_dataset(data, args.calib, SceneConfig(size=2 * args.size, ship_fraction=0.5), seed=77, show_progress=False)
    antialiased = resize.resize_antialiased
    result = {}
    try:
        for name in ("bilinear", "antialiased"):
            # folder_calibration imports resize_antialiased when called: swapping the module's name swaps its resize
            resize.resize_antialiased = antialiased if name == "antialiased" else resize.resize_bilinear
            opts = ExportOptions(formats=[ExportFormat.TFLITE_INT8, ExportFormat.ONNX_INT8], calib=args.calib, calib_data=str(data), parity_n=args.parity_n, fail_on_parity=False)
            manifest = export_model(args.model, out / name, opts, show_progress=False)
            result[name] = {e["format"]: {k: e["parity"][k] for k in COLUMNS} for e in manifest["files"]}
    finally:
        resize.resize_antialiased = antialiased
    print(f"{args.model}: int8 calibrated on {args.calib} scenes of {2 * args.size} px resized to {args.size}, parity on {args.parity_n}")
    print("| calibration resize | file | " + " | ".join(COLUMNS) + " |\n|---|---|" + "---:|" * len(COLUMNS))
    for name, files in result.items():
        for fmt, r in files.items():
            print(f"| {name} | {fmt} | " + " | ".join(f"{r[k]:.3f}" for k in COLUMNS) + " |")
    write_json(out / "result.json", {"model": args.model, "size": args.size, "calib": args.calib, "parity_n": args.parity_n, "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
