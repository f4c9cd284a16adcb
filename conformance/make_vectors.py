"""Regenerate the conformance vectors from the Python runtime: ``.venv/bin/python conformance/make_vectors.py``.

Writes ``images/*.png`` (synthetic scenes, lossless) and ``vectors.json``:
for each model file (the committed test fixtures, ONNX float32 and TFLite
int8) and each image, what a conforming runtime must give (SPEC.md): the
metadata it reads from the file, the probability and logit, the CAM at
feature resolution, and ``predict``'s detections, without and with
test-time views and at a GSD outside the model's, with the tolerances to
meet. Any runtime (this one in CI, the JavaScript one, yours) checks itself
against this file.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
MODELS = ["../tests/fixtures/tiny_fp32.onnx", "../tests/fixtures/tiny_int8.tflite"]
IMAGES = {"ship_64.png": (64, 64, 1), "ship_96x128.png": (96, 128, 4), "water_96.png": (96, 96, 9)}
TOLERANCES = {
    "probability_abs": 1e-5,  # |p - p_expected|
    "logit_abs": 1e-4,
    "cam_rel": 1e-4,  # max |cam - cam_expected| / (max - min of cam_expected)
    "box_abs_px": 0.01,  # detection points and box corners; scores as logits
}


def _images() -> dict[str, np.ndarray]:
    from PIL import Image

    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    out = {}
    for name, (h, w, index) in IMAGES.items():
        scene = generate_scene(SceneConfig(size=max(h, w), ship_fraction=0.0 if name.startswith("water") else 1.0), seed=7, index=index).image[:h, :w]
        Image.fromarray(scene).save(HERE / "images" / name)
        out[name] = np.asarray(Image.open(HERE / "images" / name).convert("RGB"))
    return out


def main() -> None:
    from shipcam.runtime import Detector

    (HERE / "images").mkdir(exist_ok=True)
    images = _images()
    cases, metadata = [], {}
    for model in MODELS:
        det = Detector.load(HERE / model, threads=1)
        metadata[model] = json.loads(det.metadata.to_json())
        for name, image in images.items():
            # the file's threshold, and one low enough that every image has boxes; without views, mirrored, all 8
            # and one at twice the model's GSD (no model here has a range): resampled 2x before the forward pass
            settings = [(det.metadata.threshold, "none", None), (0.2, "none", None), (det.metadata.threshold, "flip", None), (0.2, "flip", None), (0.2, "d4", None), (0.2, "none", 2 * det.gsd)]
            for threshold, views, gsd in settings:
                det.rule = dataclasses.replace(det.rule, threshold=threshold, views=views)
                p = det.predict(image, gsd=gsd)
                cases.append(
                    {
                        "model": model,
                        "image": f"images/{name}",
                        "threshold": threshold,
                        "views": views,
                        "gsd": gsd,
                        "probability": p.probability,
                        "logit": p.logit,
                        "is_ship": p.is_ship,
                        "cam_shape": list(p.cam.shape),
                        "cam": np.asarray(p.cam, np.float64).round(7).tolist(),
                        "boxes": [d.to_dict() for d in p.detections],
                    }
                )
    from shipcam.runtime.detections import BOX_LEVEL, DetectionRule

    # Every field's default (cases set their own threshold and views): the one source of the JS runtime's defaults.
    rule = DetectionRule.defaults()
    doc = {"format_version": 1, "generated_by": "conformance/make_vectors.py (shipcam Python runtime)", "tolerances": TOLERANCES, "rule": rule, "box_level": BOX_LEVEL, "metadata": metadata, "cases": cases}
    (HERE / "vectors.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(cases)} cases -> {HERE / 'vectors.json'}")


if __name__ == "__main__":
    main()
