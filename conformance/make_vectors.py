"""Regenerate the conformance vectors from the Python runtime: ``.venv/bin/python conformance/make_vectors.py``.

Writes ``images/*.png`` (synthetic scenes, lossless) and ``vectors.json``:
for each model file (the committed test fixtures, ONNX float32 and TFLite
int8) and each image, what a conforming runtime must give (SPEC.md): the
metadata it reads from the file, the probability and logit, the CAM at
feature resolution, and ``predict``'s detections, without and with
test-time views and at a GSD outside the model's, with the tolerances to
meet; and cases of the pieces a reader writes itself (SPEC.md sections 2, 4
and 5): bilinear resizes exact to the float32 bit, the detection rule on
given CAMs, and TFLite metadata laid out as section 2 says. Every path in it
(``model``, ``image``) is relative to this folder. Any runtime (this one in
CI, the JavaScript one, yours) checks itself against this file.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
MODELS = ["../tests/fixtures/tiny_fp32.onnx", "../tests/fixtures/tiny_int8.tflite"]
# ship_70x100: sides that are not multiples of the stride (the feature map is 2 x 3: SPEC.md section 1).
IMAGES = {
    "ship_64.png": (64, 64, 1),
    "ship_96x128.png": (96, 128, 4),
    "water_96.png": (96, 96, 9),
    "ship_70x100.png": (70, 100, 2),
}
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
        scene = generate_scene(
            SceneConfig(size=max(h, w), ship_fraction=0.0 if name.startswith("water") else 1.0), seed=7, index=index
        ).image[:h, :w]
        Image.fromarray(scene).save(HERE / "images" / name)
        out[name] = np.asarray(Image.open(HERE / "images" / name).convert("RGB"))
    return out


def _resize_cases() -> list[dict]:
    """``resize_bilinear`` on small float32 maps (SPEC.md section 4), exact: in each case resizing the width
    first would round differently, so a reader that does not resize rows first fails it."""
    from shipcam.runtime.resize import resize_bilinear

    rng = np.random.default_rng(5)
    out = []
    for h, w, H, W in [(3, 4, 13, 17), (5, 7, 3, 4), (2, 3, 7, 10)]:
        a = rng.normal(size=(h, w)).astype(np.float32)
        got = resize_bilinear(a, H, W)
        assert (got != resize_bilinear(a.T, W, H).T).any(), "a case where the order does not matter tests nothing"
        out.append({"in": a.tolist(), "out_shape": [H, W], "out": got.tolist()})
    return out


def _predict_rule() -> dict:
    """The defaults of the rule fields predict uses (the scan-only ones and the per-case views left out)."""
    import dataclasses

    from shipcam.runtime.detections import DetectionRule

    keep = [f.name for f in dataclasses.fields(DetectionRule) if not f.metadata["scans_only"] and f.name != "views"]
    return {k: v for k, v in DetectionRule.defaults().items() if k in keep}


# predict's boxes from a given CAM (SPEC.md section 5): Detector.detect_in_cam / detectInCam.
_BG = -1.0  # below T = logit(0.5) = 0
DETECT_CASES = [
    {
        "name": "window half-size clamped to 0: max_length_m / g / cy / 2 - 0.5 < 0, each box one cell",
        "cam": [[_BG, _BG, _BG], [_BG, 3.0, 2.5], [_BG, 2.0, _BG]],
        "image_size": [384, 384],
        "gsd": 20.0,
        "rule": _predict_rule(),
    },
    {
        "name": "no cell reaches T: the strongest peak with T replaced by max(G), in the level L too",
        "cam": [[-1.0, -1.0], [-2.0, -2.0]],
        "image_size": [64, 64],
        "gsd": 3.0,
        "rule": _predict_rule(),
    },
    {
        "name": "strongest first, equal scores in raster order of their grid cells",
        "cam": [[2.0, _BG, _BG, _BG, _BG, 3.0], [_BG] * 6, [_BG] * 6, [3.0, _BG, _BG, _BG, _BG, _BG]],
        "image_size": [128, 192],
        "gsd": 3.0,
        "rule": _predict_rule(),
    },
]


def _detect_cases(det) -> list[dict]:
    out = []
    for case in DETECT_CASES:
        det.rule = dataclasses.replace(det.rule, **case["rule"])
        found = det.detect_in_cam(np.asarray(case["cam"], np.float32), tuple(case["image_size"]), case["gsd"])
        out.append({**case, "boxes": [d.to_dict() for d in found]})
    return out


def _tflite_layout() -> dict:
    """A minimal TFLite flatbuffer built with the field numbers of SPEC.md section 2 (no graph: only what a
    metadata reader walks). One entry's bytes sit in its buffer's ``data``; the other's, as in files over
    2 GB, after the flatbuffer at ``offset``/``size``. Fields a reader must skip (description,
    metadata_buffer) are filled, so a reader that counts fields wrong reads the wrong thing."""
    import flatbuffers

    inline, outside = b'{"entry": "in Buffer.data"}', b'{"entry": "at Buffer.offset/size, after the flatbuffer"}'

    def build(offset: int) -> bytes:
        b = flatbuffers.Builder(0)
        names = [b.CreateString("min_runtime_version"), b.CreateString("shipcam")]
        description = b.CreateString("a TFLite file's metadata, without a graph")
        data = b.CreateByteVector(inline)
        buffers = []
        b.StartObject(3)  # Buffer 0: empty, as in every TFLite file
        buffers.append(b.EndObject())
        b.StartObject(3)  # Buffer 1: data (field 0)
        b.PrependUOffsetTRelativeSlot(0, data, 0)
        buffers.append(b.EndObject())
        b.StartObject(3)  # Buffer 2: offset (field 1), size (field 2)
        b.PrependUint64Slot(1, offset, 0)
        b.PrependUint64Slot(2, len(outside), 0)
        buffers.append(b.EndObject())
        metas = []
        for name, buffer in zip(names, (1, 2)):
            b.StartObject(2)  # Metadata { name: 0, buffer: 1 }
            b.PrependUOffsetTRelativeSlot(0, name, 0)
            b.PrependUint32Slot(1, buffer, 0)
            metas.append(b.EndObject())

        def vector(offsets):
            b.StartVector(4, len(offsets), 4)
            for o in reversed(offsets):
                b.PrependUOffsetTRelative(o)
            return b.EndVector()

        buffer_vec, meta_vec = vector(buffers), vector(metas)
        b.StartVector(4, 1, 4)  # metadata_buffer: [1], a field a reader skips
        b.PrependInt32(1)
        metadata_buffer = b.EndVector()
        b.StartObject(8)  # Model { version: 0, ..., description: 3, buffers: 4, metadata_buffer: 5, metadata: 6 }
        b.PrependUint32Slot(0, 3, 0)
        b.PrependUOffsetTRelativeSlot(3, description, 0)
        b.PrependUOffsetTRelativeSlot(4, buffer_vec, 0)
        b.PrependUOffsetTRelativeSlot(5, metadata_buffer, 0)
        b.PrependUOffsetTRelativeSlot(6, meta_vec, 0)
        b.Finish(b.EndObject(), file_identifier=b"TFL3")
        return bytes(b.Output())

    size = len(build(1))  # the offset's value does not change the flatbuffer's length
    offset = -(-size // 16) * 16
    head = build(offset)
    assert len(head) == size
    data = head + bytes(offset - size) + outside
    return {
        "file_base64": base64.b64encode(data).decode("ascii"),
        "entries": {"min_runtime_version": inline.decode(), "shipcam": outside.decode()},
    }


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
            settings = [
                (det.metadata.threshold, "none", None),
                (0.2, "none", None),
                (det.metadata.threshold, "flip", None),
                (0.2, "flip", None),
                (0.2, "d4", None),
                (0.2, "none", 2 * det.gsd),
            ]
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
    from shipcam.runtime.metadata import tflite_metadata_entries

    detect_cases = _detect_cases(Detector.load(HERE / MODELS[0], threads=1))
    layout = _tflite_layout()
    got = tflite_metadata_entries(base64.b64decode(layout["file_base64"]))
    assert {k: v.decode() for k, v in got.items()} == layout["entries"], got

    # Every field's default (cases set their own threshold and views): the one source of the JS runtime's defaults.
    rule = DetectionRule.defaults()
    doc = {
        "format_version": 1,
        "generated_by": "conformance/make_vectors.py (shipcam Python runtime)",
        "tolerances": TOLERANCES,
        "rule": rule,
        "box_level": BOX_LEVEL,
        "metadata": metadata,
        "cases": cases,
        "resize_bilinear": _resize_cases(),
        "detect_in_cam": detect_cases,
        "tflite_metadata_layout": layout,
    }
    (HERE / "vectors.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(cases)} cases -> {HERE / 'vectors.json'}")


if __name__ == "__main__":
    main()
