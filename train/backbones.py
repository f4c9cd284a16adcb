"""What shipcam knows about each backbone, without importing Keras.

Export writes this into every model file; the runtime reads it back, so the
preprocessing at inference is the training preprocessing by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["BackboneSpec", "BACKBONES", "get_backbone", "BackboneName", "Pooling", "BUNDLED_WEIGHTS", "resolve_weights"]

# ImageNet MobileNetV2 1.0 without its top, carried by the repository (weights/README.md: provenance, licences).
BUNDLED_WEIGHTS = Path(__file__).with_name("weights") / "mobilenet_v2_1.0_imagenet_no_top.weights.h5"
AUTO = "auto"

BackboneName = Literal["mobilenet_v2", "mobilenet_v2_s16", "xception"]
Pooling = Literal["max", "avg"]


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    keras_class: str  # attribute of keras.applications
    stride: int  # input pixels per feature-map cell
    min_size: int  # smallest input the architecture accepts
    # x_model = x_uint8 * scale + offset, RGB order: both use "tf"-mode preprocessing.
    scale: float = 1 / 127.5
    offset: float = -1.0
    imagenet_alphas: tuple[float, ...] = ()
    # The layer whose output is the feature map, when it is not the application's last: an earlier,
    # finer map has CAM cells half the size and features that see less context around each cell.
    feature_layer: str | None = None


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v2": BackboneSpec(
        "mobilenet_v2", "MobileNetV2", stride=32, min_size=32, imagenet_alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
    ),
    # MobileNetV2 cut before its last stride-2 stage: the 576-channel expansion of block 13, stride 16.
    "mobilenet_v2_s16": BackboneSpec(
        "mobilenet_v2_s16",
        "MobileNetV2",
        stride=16,
        min_size=32,
        imagenet_alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
        feature_layer="block_13_expand_relu",
    ),
    "xception": BackboneSpec("xception", "Xception", stride=32, min_size=71),
}


def get_backbone(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"Unknown backbone. Expected one of {sorted(BACKBONES)}. Received: backbone={name!r}"
        ) from None


def resolve_weights(weights: str | None, backbone: str = "mobilenet_v2", alpha: float = 1.0) -> str | None:
    """``"auto"``: the bundled ImageNet file when it fits (MobileNetV2 1.0), else Keras' ``"imagenet"`` download;
    anything else as given.
    """
    if weights != AUTO:
        return weights
    if backbone.startswith("mobilenet_v2") and alpha == 1.0 and BUNDLED_WEIGHTS.is_file():
        return str(BUNDLED_WEIGHTS)
    return "imagenet"
