"""``KerasEngine``: a ``.keras`` model behind the runtime's engine interface.

Detector, eval, bench, parity and the training callbacks all open a model the
same way, ``run(batch) -> {"logits", "features"}``, whether it is an exported
file or the Keras model it came from. The metadata (CAM weights, preprocessing,
GSD) is built from the model itself, exactly as the exporter writes it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from shipcam.runtime.engines.base import Engine
from shipcam.runtime.metadata import ModelMetadata

__all__ = ["KerasEngine", "model_metadata"]


def model_metadata(
    model,
    source_sha256: str = "",
    input_size: int | None = None,
    quantization: str = "float32",
    info: dict | None = None,
) -> ModelMetadata:
    """What an exported file of ``model`` carries (the exporter adds the file's own hash and quantization).

    ``info`` adds to what the model recorded (a model still in training has
    not been saved with its train size and GSD yet).
    """
    from shipcam import __version__
    from shipcam.train.backbones import get_backbone
    from shipcam.train.model import head_weights, model_info

    info = {**model_info(model), **(info or {})}
    spec = get_backbone(info["backbone"])
    w, b = head_weights(model)
    return ModelMetadata(
        cam_weights=w,
        cam_bias=b,
        pooling=info.get("pooling", "max"),
        backbone=info["backbone"],
        alpha=info.get("alpha"),
        feature_channels=int(w.size),
        input_scale=spec.scale,
        input_offset=spec.offset,
        input_size=input_size,
        train_size=info.get("train_size") or info.get("input_size"),
        class_name=info.get("class_name", "ship"),
        feature_stride=spec.stride,
        threshold=float(info.get("threshold", 0.5)),
        gsd=info.get("gsd"),
        gsd_range=info.get("gsd_range"),
        quantization=quantization,
        source_sha256=source_sha256,
        shipcam_version=__version__,
    )


class KerasEngine(Engine):
    """Runs a shipcam Keras classifier (a path or an in-memory model) with the two-output contract."""

    name = "keras"

    def __init__(self, model, threads: int | None = None, info: dict | None = None):
        from shipcam.train.model import load_classifier, two_output_model

        if isinstance(model, (str, os.PathLike)):
            self.path = Path(model)
            model = load_classifier(self.path)
        else:
            self.path = Path(f"<in-memory {model.name}>")
        self.threads = int(threads) if threads else 0  # TensorFlow's own pools; recorded as 0 = TF default
        self._lock = threading.Lock()
        self.model = model
        self.two = two_output_model(model)
        self.metadata = model_metadata(model, info=info)
        self.input_shape = (None, None, None, 3)

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        out = self.two(batch, training=False)
        return {"logits": np.asarray(out["logits"]), "features": np.asarray(out["features"])}
