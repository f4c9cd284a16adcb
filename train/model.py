"""The shipcam classifier: backbone -> global pooling -> one dense logit.

Layers are named so that export and CAM code find them without guessing:

- ``backbone``  the Keras application (include_top=False), a nested model
- ``pooler``    GlobalMaxPooling2D (default, as in the blog) or GlobalAveragePooling2D
- ``dropout``   optional regularisation before the head
- ``logit``     Dense(1) with no activation: the model outputs a logit

The pre-pooling feature map is ``model.get_layer("pooler").input``, the
``features`` output of every exported file.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

from shipcam.errors import ModelFileError, ShipcamError
from shipcam.train.backbones import get_backbone

__all__ = [
    "build_classifier",
    "two_output_model",
    "save_classifier",
    "load_classifier",
    "model_info",
    "head_weights",
    "set_bn_momentum",
]

POOLERS = {"max": "GlobalMaxPooling2D", "avg": "GlobalAveragePooling2D"}
_INFO_NAME = "shipcam.json"  # stored inside the .keras zip beside Keras' own files


def build_classifier(
    backbone: str = "mobilenet_v2",
    pooling: str = "max",
    alpha: float = 1.0,
    weights: str | os.PathLike | None = "imagenet",
    dropout: float = 0.0,
    input_size: int | None = None,
):
    """Build the classifier. ``weights``: ``"imagenet"`` (Keras download), ``None``, or a weights file.

    ``input_size`` is only used for Keras' ImageNet weight lookup; the graph
    always accepts ``(None, None, 3)`` so any image size runs.
    """
    import keras

    spec = get_backbone(backbone)
    if pooling not in POOLERS:
        raise ValueError(f"Unknown `pooling` type. Expected one of {sorted(POOLERS)}. Received: pooling={pooling!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), received dropout={dropout}")
    weights_path = None
    if weights not in (None, "imagenet"):
        weights_path = Path(weights)
        if not weights_path.is_file():
            raise ModelFileError(f"weights file not found: {weights_path}")
        weights = None
    if weights == "imagenet" and spec.imagenet_alphas and alpha not in spec.imagenet_alphas:
        raise ValueError(f"ImageNet weights exist for alpha in {spec.imagenet_alphas}; received alpha={alpha}")

    # === Layers ===
    app = getattr(keras.applications, spec.keras_class)
    kwargs: dict[str, Any] = {"include_top": False, "weights": weights, "input_shape": (None, None, 3)}
    if spec.keras_class == "MobileNetV2":
        kwargs["alpha"] = alpha
    try:
        base = app(**kwargs)
    except Exception as e:  # urllib/OSError wrapped in various Keras errors when offline
        if weights != "imagenet":
            raise
        raise ShipcamError(
            f"could not get Keras' ImageNet weights for {backbone} (alpha={alpha}): {type(e).__name__}: "
            f"{str(e)[:200]}. "
            "Without internet, use --weights none (random init) or --weights PATH (a backbone .weights.h5 file)."
        ) from None
    if weights_path is not None:
        try:
            with warnings.catch_warnings():
                # Keras 3.15 warns about its own bookkeeping containers (no weights) that
                # files written by earlier versions lack; every layer's weights still load
                warnings.filterwarnings("ignore", message="Skipping nested container", category=UserWarning)
                base.load_weights(str(weights_path))
        except Exception as e:  # Keras raises several types for a mismatched file
            raise ModelFileError(
                f"{weights_path}: cannot load into {backbone} (alpha={alpha}): {type(e).__name__}: {e}"
            ) from None
    if spec.feature_layer:  # an earlier map: the application up to that layer, its weights already loaded
        base = keras.Model(base.input, base.get_layer(spec.feature_layer).output)
    base.name = "backbone"  # Keras 3 names are settable; export finds the map by this name
    if weights is None and weights_path is None:
        # Fresh BatchNorm with Keras' momentum 0.999 needs thousands of steps before
        # its moving statistics mean anything; inference would see ~1e-10 activations.
        set_bn_momentum(base, 0.9)

    # === Functional Model ===
    inputs = keras.Input((None, None, 3), name="image")
    features = base(inputs)
    x = getattr(keras.layers, POOLERS[pooling])(name="pooler")(features)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    model = keras.Model(inputs, logit, name=f"shipcam_{backbone}_{pooling}")

    # === Config ===
    model._shipcam_info = {
        "backbone": backbone,
        "alpha": alpha if spec.keras_class == "MobileNetV2" else None,
        "pooling": pooling,
        "dropout": dropout,
        "weights": "imagenet" if weights == "imagenet" else (str(weights_path) if weights_path else None),
        "input_size": input_size,
    }
    return model


def set_bn_momentum(model, momentum: float) -> None:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def two_output_model(model):
    """``{"logits": (N, 1), "features": (N, h, w, C)}`` over the same weights (no copy)."""
    import keras

    try:
        pooler, dense = model.get_layer("pooler"), model.get_layer("logit")
    except ValueError:
        names = [layer.name for layer in model.layers]
        raise ModelFileError(
            f"model {model.name!r} is not a shipcam classifier: expected layers 'pooler' and 'logit', found {names}"
        ) from None
    del dense
    return keras.Model(model.input, {"logits": model.output, "features": pooler.input}, name=f"{model.name}_two_output")


def head_weights(model):
    """The CAM's ``(w (C,), b)`` from the ``logit`` layer, as float32 numpy."""
    import numpy as np

    kernel, bias = model.get_layer("logit").get_weights()
    return kernel[:, 0].astype(np.float32), float(bias[0])


def model_info(model) -> dict:
    """What the builder recorded, or what can be inferred from a foreign model's layers."""
    info = dict(getattr(model, "_shipcam_info", {}) or {})
    if not info.get("backbone"):
        layer_names = {layer.name for layer in model.get_layer("backbone").layers} if _has(model, "backbone") else set()
        info["backbone"] = "xception" if "block1_conv1" in layer_names else "mobilenet_v2"
    if not info.get("pooling") and _has(model, "pooler"):
        cls = type(model.get_layer("pooler")).__name__
        info["pooling"] = {v: k for k, v in POOLERS.items()}.get(cls, cls)
    return info


def _has(model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


def save_classifier(model, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Save as ``.keras`` (atomically) with shipcam's info inside the archive."""
    from shipcam._utils.io import atomic_path

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files are saved as .keras, received {path}")
    info = {**model_info(model), **(extra or {})}
    with atomic_path(path) as tmp:
        keras_tmp = tmp.with_suffix(".keras")  # Keras insists on the suffix
        try:
            model.save(keras_tmp)
            with zipfile.ZipFile(keras_tmp, "a") as z:
                z.writestr(_INFO_NAME, json.dumps(info, indent=2, default=str))
            os.replace(keras_tmp, tmp)
        finally:
            keras_tmp.unlink(missing_ok=True)
    return path


def load_classifier(path: str | os.PathLike, compile: bool = False):
    """Load a shipcam ``.keras`` file; errors name the file instead of a Keras traceback."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a Keras .keras model (not a zip archive; truncated or another format?)")
    try:
        model = keras.saving.load_model(path, compile=compile)
    except Exception as e:
        raise ModelFileError(f"{path}: Keras could not load it: {type(e).__name__}: {str(e)[:300]}") from None
    with zipfile.ZipFile(path) as z:
        if _INFO_NAME in z.namelist():
            model._shipcam_info = json.loads(z.read(_INFO_NAME))
    two_output_model(model)  # validates the pooler + logit head, naming what was found
    return model
