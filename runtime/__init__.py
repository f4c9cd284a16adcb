"""shipcam.runtime: run an exported shipcam model and explain it, with numpy only.

Importing this package loads numpy and nothing else; ONNX Runtime or LiteRT
is imported when a model is loaded, Pillow when an image file is read.

    from shipcam.runtime import Detector
    det = Detector.load("ship_int8.tflite", threads=1)
    pred = det.predict(image)            # probability, CAM, boxes, timings
    scene = det.scan(big_image, gsd=3.0) # tiles, stitched heatmap, one detection per CAM peak
    sent = plan_downlink(big_image, scene.detections, "scene", budget_bytes=50_000)  # chips to send down

Image files in, result files out (``runtime.files``: what ``shipcam predict``
and ``shipcam scan`` run) and archives of scenes on Ray Data
(``runtime.archive``) are imported by name, not from here.
"""

from shipcam.runtime.boxes import Box, boxes_from_cam
from shipcam.runtime.cam import class_activation_map, normalize_cam
from shipcam.runtime.detections import Detection, DetectionRule, detect, find_peaks
from shipcam.runtime.detector import Detector, Prediction
from shipcam.runtime.downlink import Downlink, plan_downlink
from shipcam.runtime.engines import open_engine
from shipcam.runtime.image import read_image
from shipcam.runtime.metadata import ModelMetadata
from shipcam.runtime.resize import resize_antialiased, resize_bilinear
from shipcam.runtime.scan import ScanResult
from shipcam.runtime.scoring import LabelledScene, load_scenes, score_scenes

__all__ = [
    "Detector",
    "Prediction",
    "ScanResult",
    "Box",
    "Detection",
    "DetectionRule",
    "detect",
    "find_peaks",
    "resize_antialiased",
    "ModelMetadata",
    "open_engine",
    "read_image",
    "class_activation_map",
    "resize_bilinear",
    "normalize_cam",
    "boxes_from_cam",
    "LabelledScene",
    "load_scenes",
    "score_scenes",
    "Downlink",
    "plan_downlink",
]
