"""``shipcam verify FILE``: is this exported file intact, self-consistent and (with the model) faithful?

Without the Keras model it checks what the file alone can prove: it loads,
has both outputs and the CAM metadata, matches the sha256 recorded in a
``manifest.json`` beside it, and its ``logits`` equal ``pool(features) . w + b``
computed from its own metadata (the identity the CAM rests on). With the model
it re-runs the full parity comparison.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shipcam.errors import ModelFileError
from shipcam.export.exporter import ExportError
from shipcam.export.parity import Tolerances, check_parity, compare_outputs, parity_set, run_in_batches
from shipcam.runtime.manifest import MANIFEST, check_against_manifest

__all__ = ["verify_file"]


def verify_file(
    path: str | Path,
    model_path: str | Path | None = None,
    n: int = 32,
    size: int | None = None,
    threads: int = 1,
    tolerances: Tolerances | None = None,
) -> dict:
    from shipcam.runtime.engines import open_engine

    path = Path(path)
    checks: dict = {}
    manifest = path.parent / MANIFEST
    if (
        manifest.is_file() and path.is_file() and check_against_manifest(path, manifest, required=False)
    ):  # the hash first: a damaged file is named as such
        checks["manifest_sha256"] = "ok"
    engine = open_engine(path, threads=threads)  # raises ModelFileError on truncated / foreign files
    meta = engine.metadata
    result: dict = {"file": str(path), "quantization": meta.quantization, "checks": checks}

    size = size or engine.fixed_size and engine.fixed_size[0] or meta.train_size or 96
    pset = parity_set(n, size, meta.input_scale, meta.input_offset, seed=777)
    got = run_in_batches(engine.run, pset.images)
    if got["features"].shape[-1] != meta.feature_channels:
        raise ModelFileError(
            f"{path}: features have {got['features'].shape[-1]} channels, metadata says {meta.feature_channels}"
        )
    feats = got["features"].astype(np.float64)
    pooled = feats.max(axis=(1, 2)) if meta.pooling == "max" else feats.mean(axis=(1, 2))
    recomputed = pooled @ meta.cam_weights.astype(np.float64) + meta.cam_bias
    err = float(np.abs(recomputed - got["logits"][:, 0]).max() / (np.sqrt(np.mean(np.square(got["logits"]))) or 1.0))
    limit = 1e-3 if meta.quantization.startswith("float") else 0.25  # int8 requantizes between the two
    result["checks"]["head_identity_rel_err"] = err
    if err > limit:
        raise ModelFileError(
            f"{path}: logits disagree with pool(features).w + b by {err:.2e} x RMS (limit {limit}); metadata does not "
            "match the graph"
        )

    if model_path is not None:
        from shipcam.train.model import load_classifier, two_output_model

        model = load_classifier(model_path)
        two = two_output_model(model)
        reference = run_in_batches(lambda x: two(x, training=False), pset.images)
        report = compare_outputs(
            reference, got, meta.cam_weights, meta.cam_bias, pset.labels, (size, size), meta.threshold
        )
        problems = check_parity(report, meta.quantization, tolerances or Tolerances())
        result["parity"], result["problems"] = report, problems
        if problems:
            raise ExportError(f"{path}: " + "; ".join(problems))
    result["passed"] = True
    return result
