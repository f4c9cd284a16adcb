"""``shipcam export``: every format, each self-describing, each checked against Keras.

Output folder::

    <stem>_fp32.tflite  <stem>_fp16.tflite  <stem>_int8.tflite
    <stem>_fp32.onnx    <stem>_int8.onnx
    manifest.json       size, sha256, quantization and parity of every file

Each file is written under a temporary name and renamed once complete; the
manifest is written last. An int8 file that misses its parity is rebuilt once
with ``INT8_FALLBACK`` and replaced if that passes; each file's engine call is
timed on this machine and ``recommended`` is the fastest file that passed.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from shipcam._utils.io import write_bytes, write_json
from shipcam.errors import ShipcamError
from shipcam.export.formats import ExportFormat
from shipcam.export.parity import Tolerances, check_parity, compare_outputs, parity_set, run_in_batches
from shipcam.runtime.manifest import MANIFEST, sha256_file
from shipcam.train.engine import model_metadata

__all__ = ["ExportError", "ExportOptions", "FileSources", "Int8Recipe", "export_model"]

OnnxMethod = Literal["minmax", "entropy", "percentile"]  # ONNX Runtime static calibration
TIMING_BUDGET_S = 2.0  # the timing that picks ``recommended``: about this long for all files together
# The second int8 recipe: residual streams equalized and the first two convolutions (the input and the first
# feature maps) in float. On a backbone fine-tuned with BatchNorm it cuts the logit error of int8 by a fifth
# (decision 032); on models the default recipe already serves, it is not needed and not tried.
INT8_FALLBACK = {"equalize": 1.0, "float_head": 2}


class ExportError(ShipcamError):
    """An exported file missed its parity thresholds, or the export could not run."""


@dataclass(frozen=True)
class Int8Recipe:
    """How an int8 file is made; each field is a remedy measured in BENCHMARKS.md ("int8 and the CAM")."""

    bias_correction: bool = True
    onnx_weight_bits: int = 7
    onnx_method: OnnxMethod = "minmax"
    onnx_per_channel: bool = True
    float_tail: int = 0
    float_head: int = 0
    equalize: float = 0.0


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
    # int8: keep the first N convolutions in float: the input and the first feature maps are rounded
    # nowhere (BENCHMARKS.md, "int8 and the CAM")
    float_head: int = 0
    # int8: residual-stream channel equalization strength, 0 (off) to 1 (export/equalization.py)
    equalize: float = 0.0
    # int8: a file that misses its parity is rebuilt once with INT8_FALLBACK's changes and replaced if that passes
    int8_fallback: bool = True
    tolerances: Tolerances = field(default_factory=Tolerances)
    fail_on_parity: bool = True
    threads: int = 1

    def recipe(self) -> Int8Recipe:
        return Int8Recipe(
            self.bias_correction,
            self.onnx_weight_bits,
            self.onnx_method,
            self.onnx_per_channel,
            self.float_tail,
            self.float_head,
            self.equalize,
        )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["formats"] = [f.value for f in self.formats]
        return d


def export_model(
    model_path: str | Path, out_dir: str | Path, options: ExportOptions | None = None, show_progress: bool = True
) -> dict:
    """Export ``model_path`` (.keras) to ``out_dir``; returns the manifest dict."""

    from shipcam.export.calibration import folder_calibration, synthetic_calibration
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

    entries, engines, failures = [], [], []
    with tempfile.TemporaryDirectory(prefix="shipcam_export_") as tmp:
        sources = FileSources(model, model_path, Path(tmp), options.size, options.batch, show_progress)

        def build(fmt: ExportFormat, recipe: Int8Recipe, path: Path):
            meta = dataclasses.replace(base_meta, quantization=fmt.quantization)
            extra = sources.write(fmt, path, meta, recipe, calibration, options.int8_io)
            engine = open_engine(path, threads=options.threads)
            got = run_in_batches(engine.run, pset.images)
            report = compare_outputs(
                reference, got, meta.cam_weights, meta.cam_bias, pset.labels, (size, size), meta.threshold
            )
            return extra, engine, report, check_parity(report, fmt.quantization, options.tolerances)

        for fmt in options.formats:
            t0 = time.perf_counter()
            path = out_dir / fmt.filename(stem)
            recipe = options.recipe()
            extra, engine, report, problems = build(fmt, recipe, path)
            if fmt.is_int8:
                second = dataclasses.replace(recipe, **INT8_FALLBACK)
                if problems and options.int8_fallback and second != recipe:
                    # One more recipe, kept only if it passes: the manifest names both tries.
                    first_try = {
                        "recipe": dataclasses.asdict(recipe),
                        "problems": problems,
                        "parity": {k: report[k] for k in ("decision_agreement", "cam_corr_mean", "cam_corr_min")},
                    }
                    trial = Path(tmp) / path.name
                    extra2, _, report2, problems2 = build(fmt, second, trial)
                    first_try["fallback_problems"] = problems2
                    if not problems2:
                        write_bytes(path, trial.read_bytes())
                        engine = open_engine(path, threads=options.threads)
                        recipe, extra, report, problems = second, extra2, report2, problems2
                    extra["first_try"] = first_try
                extra["int8_recipe"] = dataclasses.asdict(recipe)
            seconds = time.perf_counter() - t0
            engines.append(engine)
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
                f"decision {report['decision_agreement']:.3f}  CAM corr {report['cam_corr_mean']:.3f} (min "
                f"{report['cam_corr_min']:.3f}) IoU {report['cam_iou_mean']:.3f}  {status}"
            )
            if problems:
                failures.append(f"{path.name}: " + "; ".join(problems))

    timing = _time_files(engines, entries, pset.images[:1], options)
    manifest = {
        "source": {"path": str(model_path), "sha256": source_sha},
        "shipcam_version": base_meta.shipcam_version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parity_set": pset.source,
        "calibration": calibration.source if calibration is not None else None,
        "options": options.to_dict(),
        "timing": timing,
        "recommended": _recommend(entries),
        "files": entries,
    }
    write_json(out_dir / MANIFEST, manifest)
    if failures and options.fail_on_parity:
        raise ExportError(
            "exported files missed their parity thresholds (see manifest.json):\n  " + "\n  ".join(failures)
        )
    return manifest


class FileSources:
    """What the files of one export are made from, each built once: the frozen SavedModel, the float ONNX graph,
    the conv input means on the calibration images and the copies prepared for each int8 recipe and weight grid
    (``benchmarks/int8_study.py`` builds its variants with it too)."""

    def __init__(self, model, model_path: Path, tmp: Path, size: int | None, batch: int | None, show_progress: bool):
        self.model, self.model_path, self.tmp = model, model_path, tmp
        self.size, self.batch, self.show_progress = size, batch, show_progress
        self._cache: dict = {}

    def _once(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def prepared(self, recipe: Int8Recipe | None, qmax: int, calibration) -> tuple[object, dict]:
        """The model an int8 file is converted from: the original, or a copy with its residual streams equalized
        and/or its weights on the converter's grid (depthwise: 8 bits) with corrected biases; and what was done."""
        if recipe is None or not (recipe.bias_correction or recipe.equalize):
            return self.model, {}
        from shipcam.export.bias_correction import conv_input_means, correct_for_int8
        from shipcam.export.equalization import equalize_streams
        from shipcam.train.model import load_classifier

        def make():
            copy, done = load_classifier(self.model_path), {}
            if recipe.equalize:
                done["equalization"] = equalize_streams(copy, calibration.images, recipe.equalize).to_dict()
            if recipe.bias_correction:
                means = self._once(  # of the model as it will be corrected: equalization moves them
                    ("means", recipe.equalize, _key(calibration)),
                    lambda: conv_input_means(copy, calibration.images, show_progress=self.show_progress),
                )
                done["weight_correction"] = correct_for_int8(copy, qmax=qmax, depthwise_qmax=127, means=means).to_dict()
            return copy, done

        return self._once(("prepared", recipe.equalize, recipe.bias_correction, qmax, _key(calibration)), make)

    def savedmodel(self, recipe: Int8Recipe | None = None, qmax: int = 127, calibration=None) -> Path:
        """The frozen two-output SavedModel of ``prepared``'s model (the original without a recipe)."""
        from shipcam.export.graph import save_two_output_savedmodel

        model, _ = self.prepared(recipe, qmax, calibration)
        folder = self.tmp / f"savedmodel_{len(self._cache)}"  # a new folder for each new model
        return self._once(
            ("savedmodel", id(model)), lambda: save_two_output_savedmodel(model, folder, self.size, self.batch)
        )

    def onnx(self, recipe: Int8Recipe | None = None, qmax: int = 127, calibration=None):
        from shipcam.export.onnx import convert_onnx

        model, _ = self.prepared(recipe, qmax, calibration)
        return self._once(("onnx", id(model)), lambda: convert_onnx(model, self.size))

    def write(self, fmt: ExportFormat, path: Path, meta, recipe: Int8Recipe, calibration, int8_io: bool) -> dict:
        """Write ``fmt`` to ``path`` with ``meta`` embedded (its ``extra`` filled in for int8); returns the
        manifest entry's format-specific keys. Parity always compares with the original model, not a copy."""
        from shipcam.export.onnx import embed_onnx_metadata, quantize_onnx
        from shipcam.export.tflite import (
            convert_tflite,
            embed_tflite_metadata,
            float_head_tensors,
            float_tail_tensors,
        )

        extra: dict = {}
        if fmt.suffix == ".tflite":
            source, float_nodes = self.savedmodel(), None
            if fmt.is_int8:
                source = self.savedmodel(recipe, 127, calibration)
                done = self.prepared(recipe, 127, calibration)[1]
                if recipe.float_tail > 0 or recipe.float_head > 0:
                    float_tflite = self._once("float_tflite", lambda: convert_tflite(self.savedmodel(), "float32"))
                    float_nodes = float_head_tensors(float_tflite, recipe.float_head) + float_tail_tensors(
                        float_tflite, recipe.float_tail
                    )
                meta.extra = {"float_nodes": float_nodes or [], "weight_correction": None, **done}
            data = convert_tflite(
                source, fmt.quantization, calibration, int8_io, float_nodes, show_progress=self.show_progress
            )
            write_bytes(path, embed_tflite_metadata(data, meta))
        else:
            proto = self.onnx()
            if fmt.is_int8:
                qmax = 64 if recipe.onnx_weight_bits == 7 else 127  # depthwise stay 8-bit
                done = self.prepared(recipe, qmax, calibration)[1]
                proto, excluded = quantize_onnx(
                    self.onnx(recipe, qmax, calibration),
                    calibration,
                    recipe.onnx_per_channel,
                    recipe.onnx_method,
                    recipe.float_tail,
                    weight_bits=recipe.onnx_weight_bits,
                    show_progress=self.show_progress,
                    float_head=recipe.float_head,
                )
                meta.extra = {
                    "float_nodes": excluded,
                    "calibration_method": recipe.onnx_method,
                    "per_channel": recipe.onnx_per_channel,
                    "weight_bits": recipe.onnx_weight_bits,
                    "weight_correction": None,
                    **done,
                }
                extra["quantize_linear_nodes"] = sum(n.op_type == "QuantizeLinear" for n in proto.graph.node)
            embed_onnx_metadata(proto, meta)
            write_bytes(path, proto.SerializeToString())
        return extra


def _key(calibration) -> str | None:
    return None if calibration is None else calibration.source


# Two files whose latencies are this close are a tie on a shared machine (sequential runs move by more):
# the smaller one is recommended, so the choice does not flip between exports of the same model.
LATENCY_TIE = 0.05


def _time_files(engines: list, entries: list[dict], image: np.ndarray, options: ExportOptions) -> dict:
    """Each file's engine call, batch 1 at the parity size, at ``options.threads``: ``latency_ms`` per entry.

    The files take turns call by call so that load from other processes lands on all of them alike; the
    number of rounds keeps the whole measurement near ``TIMING_BUDGET_S``.
    """
    from shipcam._utils.cpu import cpu_name, int8_features
    from shipcam._utils.timing import time_calls, time_interleaved

    x = np.repeat(image, options.batch or 1, axis=0)
    calls = [lambda e=e: e.run(x) for e in engines]
    round_ms = sum(float(np.median(time_calls(c, 2, 3))) for c in calls)  # also the warm-up
    runs = int(np.clip(TIMING_BUDGET_S * 1e3 / max(round_ms, 1e-3), 10, 100))
    ms = time_interleaved(calls, 1, runs)
    for entry, row in zip(entries, ms):
        entry["latency_ms"] = round(float(np.median(row)), 3)
    return {
        "what": "median engine call, the files taking turns",
        "threads": options.threads,
        "batch": len(x),
        "size": list(image.shape[1:3]),
        "runs": runs,
        "cpu": cpu_name(),
        "cpu_int8_features": int8_features(),
    }


def _recommend(entries: list[dict]) -> str | None:
    """The fastest file that passed on the exporting machine; within ``LATENCY_TIE`` of it, the smallest."""
    passed = [e for e in entries if e["passed"]]
    if not passed:
        return None
    latency = [e.get("latency_ms") if e.get("latency_ms") is not None else float("inf") for e in passed]
    fastest = min(latency)
    tied = [e for e, t in zip(passed, latency) if t <= fastest * (1 + LATENCY_TIE) or fastest == float("inf")]
    return min(tied, key=lambda e: (e["size_bytes"], e["file"]))["file"]


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise ExportError(f"{out_dir}: cannot write there ({e.strerror or e})") from None
