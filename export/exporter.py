"""``shipcam export``: every format, each self-describing, each checked against Keras.

Output folder::

    <stem>_fp32.tflite  <stem>_fp16.tflite  <stem>_int8.tflite
    <stem>_fp32.onnx    <stem>_int8.onnx
    manifest.json       size, sha256, quantization and parity of every file

Each file is written under a temporary name and renamed once complete; the
manifest is written last.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shipcam._utils.io import write_bytes, write_json
from shipcam.errors import ShipcamError
from shipcam.export.formats import ExportFormat
from shipcam.export.parity import Tolerances, check_parity, compare_outputs, parity_set, run_in_batches
from shipcam.runtime.manifest import MANIFEST, sha256_file
from shipcam.train.engine import model_metadata

__all__ = ["ExportError", "ExportOptions", "export_model"]

OnnxMethod = Literal["minmax", "entropy", "percentile"]  # ONNX Runtime static calibration


class ExportError(ShipcamError):
    """An exported file missed its parity thresholds, or the export could not run."""


@dataclass
class ExportOptions:
    formats: list[ExportFormat] = field(default_factory=lambda: list(ExportFormat))
    size: int | None = None  # fixed input size; None keeps height/width dynamic
    batch: int | None = (
        None  # TFLite files: a fixed batch (LiteRT.js needs 1, it cannot resize inputs); None keeps it dynamic
    )
    calib: int = 200  # calibration images for int8
    calib_data: str | None = None  # a dataset folder; default: synthetic scenes
    calib_size: int | None = None  # default: the training size
    parity_n: int = 120  # held-out labelled scenes for parity and AUC
    seed: int = 2024
    int8_io: bool = False
    onnx_per_channel: bool = True
    onnx_method: OnnxMethod = "minmax"
    # int8: weights put on the converter's grid with their mean shift corrected (export/bias_correction.py).
    # ImageNet MobileNetV2 at 224, TFLite: CAM correlation 0.86 -> 0.98. False = plain post-training int8.
    bias_correction: bool = True
    # ONNX int8 conv weights in 7 bits (depthwise 8): ORT's uint8 x int8 GEMM saturates on x86 without VNNI
    # (export/onnx.py).
    onnx_weight_bits: int = 7
    # int8: keep the last N convolutions (the CAM's feature map) in float; 0 = all int8.
    # With bias correction it gains nothing measurable and costs 1.2 MB and ~10% latency.
    float_tail: int = 0
    tolerances: Tolerances = field(default_factory=Tolerances)
    fail_on_parity: bool = True
    threads: int = 1

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["formats"] = [f.value for f in self.formats]
        return d


def export_model(
    model_path: str | Path, out_dir: str | Path, options: ExportOptions | None = None, show_progress: bool = True
) -> dict:
    """Export ``model_path`` (.keras) to ``out_dir``; returns the manifest dict."""

    from shipcam.export.bias_correction import conv_input_means, correct_for_int8
    from shipcam.export.calibration import folder_calibration, synthetic_calibration
    from shipcam.export.graph import save_two_output_savedmodel
    from shipcam.export.onnx import convert_onnx, embed_onnx_metadata, quantize_onnx
    from shipcam.export.tflite import convert_tflite, embed_tflite_metadata, float_tail_tensors
    from shipcam.runtime.engines import open_engine
    from shipcam.train.model import load_classifier, two_output_model

    options = options or ExportOptions()
    model_path, out_dir = Path(model_path), Path(out_dir)
    model = load_classifier(model_path)  # names the file and what is wrong with it
    _check_writable(out_dir)
    source_sha = sha256_file(model_path)
    base_meta = model_metadata(model, source_sha, options.size, "float32")
    size = options.size or options.calib_size or base_meta.train_size or 224
    stem = model_path.stem

    # One labelled held-out set for every file; the Keras reference computed once.
    pset = parity_set(options.parity_n, size, base_meta.input_scale, base_meta.input_offset, options.seed)
    two = two_output_model(model)
    reference = run_in_batches(lambda x: two(x, training=False), pset.images)

    calibration = None
    if any(f.is_int8 for f in options.formats):
        if options.calib < 1:
            raise ExportError("int8 export needs calibration data: --calib N must be >= 1 (or drop the int8 formats)")
        if options.calib_data:
            calibration = folder_calibration(
                options.calib_data, options.calib, size, base_meta.input_scale, base_meta.input_offset
            )
        else:
            calibration = synthetic_calibration(
                options.calib, size, base_meta.input_scale, base_meta.input_offset, seed=options.seed + 1
            )

    entries, failures = [], []
    with tempfile.TemporaryDirectory(prefix="shipcam_export_") as tmp:
        savedmodel = save_two_output_savedmodel(model, Path(tmp) / "savedmodel", options.size, options.batch)
        float_onnx = None

        means = None  # conv input means of the float model: one pass, shared by the TFLite and ONNX copies

        def int8_source(qmax: int, depthwise_qmax: int):
            """A copy with weights on the converter's grid and corrected biases (parity still uses the original)."""
            nonlocal means
            if not options.bias_correction:
                return model, None
            if means is None:
                means = conv_input_means(model, calibration.images, show_progress=show_progress)
            corrected = load_classifier(model_path)
            return corrected, correct_for_int8(
                corrected, qmax=qmax, depthwise_qmax=depthwise_qmax, means=means
            ).to_dict()

        for fmt in options.formats:
            t0 = time.perf_counter()
            meta = dataclasses.replace(base_meta, quantization=fmt.quantization)
            path = out_dir / fmt.filename(stem)
            extra = {}
            if fmt.suffix == ".tflite":
                float_nodes, source = None, savedmodel
                if fmt.is_int8:
                    corrected, correction = int8_source(127, 127)
                    if correction is not None:
                        source = save_two_output_savedmodel(
                            corrected, Path(tmp) / "savedmodel_int8", options.size, options.batch
                        )
                    if options.float_tail > 0:
                        float_nodes = float_tail_tensors(convert_tflite(source, "float32"), options.float_tail)
                    meta.extra = {"float_nodes": float_nodes or [], "weight_correction": correction}
                data = convert_tflite(
                    source, fmt.quantization, calibration, options.int8_io, float_nodes, show_progress
                )
                write_bytes(path, embed_tflite_metadata(data, meta))
            else:
                if float_onnx is None:
                    float_onnx = convert_onnx(model, options.size)
                proto = float_onnx
                if fmt.is_int8:
                    # depthwise stay 8-bit
                    corrected, correction = int8_source(64 if options.onnx_weight_bits == 7 else 127, 127)
                    source = float_onnx if correction is None else convert_onnx(corrected, options.size)
                    proto, excluded = quantize_onnx(
                        source,
                        calibration,
                        options.onnx_per_channel,
                        options.onnx_method,
                        options.float_tail,
                        weight_bits=options.onnx_weight_bits,
                        show_progress=show_progress,
                    )
                    meta.extra = {
                        "float_nodes": excluded,
                        "calibration_method": options.onnx_method,
                        "per_channel": options.onnx_per_channel,
                        "weight_bits": options.onnx_weight_bits,
                        "weight_correction": correction,
                    }
                    extra["quantize_linear_nodes"] = sum(n.op_type == "QuantizeLinear" for n in proto.graph.node)
                embed_onnx_metadata(proto, meta)
                write_bytes(path, proto.SerializeToString())
            seconds = time.perf_counter() - t0

            engine = open_engine(path, threads=options.threads)
            got = run_in_batches(engine.run, pset.images)
            report = compare_outputs(reference, got, meta.cam_weights, meta.cam_bias, pset.labels, (size, size))
            problems = check_parity(report, fmt.quantization, options.tolerances)
            entries.append(
                {
                    "file": path.name,
                    "format": fmt.value,
                    "engine": fmt.engine,
                    "quantization": fmt.quantization,
                    "input_shape": list(engine.input_shape),
                    "size_bytes": path.stat().st_size,
                    "sha256": sha256_file(path),
                    "export_seconds": round(seconds, 2),
                    "parity": report,
                    "passed": not problems,
                    "problems": problems,
                    **extra,
                }
            )
            status = "ok" if not problems else "FAILED: " + "; ".join(problems)
            print(
                f"{path.name:32s} {path.stat().st_size / 1e6:7.2f} MB  logits err {report['logits_rel_err']:.1e}  "
                f"decision {report['decision_agreement']:.3f}  CAM corr {report['cam_corr_mean']:.3f} IoU "
                f"{report['cam_iou_mean']:.3f}  {status}"
            )
            if problems:
                failures.append(f"{path.name}: " + "; ".join(problems))

    manifest = {
        "source": {"path": str(model_path), "sha256": source_sha},
        "shipcam_version": base_meta.shipcam_version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parity_set": pset.source,
        "calibration": calibration.source if calibration is not None else None,
        "options": options.to_dict(),
        "recommended": _recommend(entries),
        "files": entries,
    }
    write_json(out_dir / MANIFEST, manifest)
    if failures and options.fail_on_parity:
        raise ExportError(
            "exported files missed their parity thresholds (see manifest.json):\n  " + "\n  ".join(failures)
        )
    return manifest


def _recommend(entries: list[dict]) -> str | None:
    """The smallest file that passed with the best CAM among quantized ones, else the float ONNX."""
    passed = [e for e in entries if e["passed"]]
    for fmt in ("tflite_int8", "onnx_int8", "tflite_fp32", "onnx_fp32"):
        for e in passed:
            if e["format"] == fmt:
                return e["file"]
    return None


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise ExportError(f"{out_dir}: cannot write there ({e.strerror or e})") from None
