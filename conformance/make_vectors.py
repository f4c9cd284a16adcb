"""Regenerate the conformance vectors from the Python runtime: ``.venv/bin/python conformance/make_vectors.py``.

Writes ``images/*.png`` (synthetic scenes, lossless) and ``vectors.json``:
for each model file (the committed test fixtures, ONNX float32 and TFLite
int8) and each image, what a conforming runtime must give (SPEC.md): the
metadata it reads from the file, the probability and logit, the CAM at
feature resolution, and ``predict``'s detections, without and with
test-time views, with the tolerances to
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
            for threshold, views in [(det.metadata.threshold, "none"), (0.2, "none"), (det.metadata.threshold, "flip"), (0.2, "flip"), (0.2, "d4")]:
                det.rule = dataclasses.replace(det.rule, threshold=threshold, views=views)
                p = det.predict(image)
                cases.append(
                    {
                        "model": model,
                        "image": f"images/{name}",
                        "threshold": threshold,
                        "views": views,
                        "probability": p.probability,
                        "logit": p.logit,
                        "is_ship": p.is_ship,
                        "cam_shape": list(p.cam.shape),
                        "cam": np.asarray(p.cam, np.float64).round(7).tolist(),
                        "boxes": [d.to_dict() for d in p.detections],
                    }
                )
    rule = {k: v for k, v in vars(Detector.load(HERE / MODELS[0]).rule).items() if k not in ("threshold", "views")}  # these: per case
    doc = {"format_version": 1, "generated_by": "conformance/make_vectors.py (shipcam Python runtime)", "tolerances": TOLERANCES, "rule": rule, "metadata": metadata, "cases": cases}
    (HERE / "vectors.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(cases)} cases -> {HERE / 'vectors.json'}")


if __name__ == "__main__":
    main()
