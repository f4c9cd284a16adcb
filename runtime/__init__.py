"""shipcam.runtime: run an exported shipcam model and explain it, with numpy only.

Importing this package loads numpy and nothing else; the ONNX Runtime and
LiteRT engines are imported when a model is loaded.
"""

from shipcam.runtime.cam import class_activation_map, normalize_cam, resize_bilinear

__all__ = ["class_activation_map", "normalize_cam", "resize_bilinear"]
