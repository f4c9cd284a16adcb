"""The Python runtime against the committed conformance vectors (conformance/vectors.json, SPEC.md).

The vectors are the contract every runtime (this one, the JavaScript one)
is held to; this test fails when a change to the runtime's maths, its
metadata reading or its detection rule moves any number past the
tolerances written in the vectors (regenerate them deliberately with
conformance/make_vectors.py, and say why in the commit).
"""

import base64
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.runtime import Detector
from shipcam.runtime.schema import schema_errors

HERE = Path(__file__).resolve().parents[1] / "conformance"
VECTORS = json.loads((HERE / "vectors.json").read_text())
TOL = VECTORS["tolerances"]


@pytest.fixture(scope="module")
def detectors():
    return {m: Detector.load(HERE / m, threads=1) for m in VECTORS["metadata"]}


def test_paths_in_the_vectors_are_relative_to_their_folder():
    """SPEC.md section 8: ``model`` and ``image`` name files relative to the folder of vectors.json."""
    paths = set(VECTORS["metadata"]) | {c["model"] for c in VECTORS["cases"]} | {c["image"] for c in VECTORS["cases"]}
    for p in paths:
        assert not Path(p).is_absolute() and (HERE / p).is_file(), p
    # ... not to the repository root or the working directory: the models lie outside conformance/
    assert any(not (HERE.parent / p).is_file() for p in VECTORS["metadata"])


@pytest.mark.parametrize("model", sorted(VECTORS["metadata"]))
def test_metadata_read_from_the_file_is_the_vectors(detectors, model):
    expected = VECTORS["metadata"][model]
    assert schema_errors(expected) == []
    assert json.loads(detectors[model].metadata.to_json()) == expected


@pytest.mark.parametrize(
    "case",
    VECTORS["cases"],
    ids=lambda c: f"{Path(c['model']).name}-{Path(c['image']).stem}-t{c['threshold']}-{c['views']}-gsd{c['gsd']}",
)
def test_predictions_match_the_vectors(detectors, case):
    det = detectors[case["model"]]
    det.rule = dataclasses.replace(
        det.rule, **{**VECTORS["rule"], "threshold": case["threshold"], "views": case["views"]}
    )
    p = det.predict(np.asarray(Image.open(HERE / case["image"]).convert("RGB")), gsd=case["gsd"])
    assert abs(p.probability - case["probability"]) <= TOL["probability_abs"]
    assert abs(p.logit - case["logit"]) <= TOL["logit_abs"]
    assert p.is_ship == case["is_ship"]
    cam = np.asarray(case["cam"])
    assert list(p.cam.shape) == case["cam_shape"] == list(cam.shape)
    assert np.abs(p.cam - cam).max() <= TOL["cam_rel"] * max(float(np.ptp(cam)), 1e-6)
    got = [d.to_dict() for d in p.detections]
    assert [d.score for d in p.detections] == sorted((d.score for d in p.detections), reverse=True)  # strongest first
    assert len(got) == len(case["boxes"])
    for g, e in zip(got, case["boxes"]):
        for k in ("x", "y", "x0", "y0", "x1", "y1"):
            assert abs(g[k] - e[k]) <= TOL["box_abs_px"], (k, g, e)
        assert abs(g["score"] - e["score"]) <= TOL["logit_abs"]


@pytest.mark.parametrize(
    "case",
    VECTORS["resize_bilinear"],
    ids=lambda c: "x".join(map(str, np.shape(c["in"]))) + "->" + "x".join(map(str, c["out_shape"])),
)
def test_bilinear_resize_is_exact_to_the_float32_bit(case):
    """SPEC.md section 4: float32 arithmetic, the height first. Each case rounds differently the other way round."""
    from shipcam.runtime.resize import resize_bilinear

    a = np.asarray(case["in"], np.float32)
    expected = np.asarray(case["out"], np.float32)
    assert np.array_equal(resize_bilinear(a, *case["out_shape"]), expected)
    assert not np.array_equal(resize_bilinear(a.T, *case["out_shape"][::-1]).T, expected)  # width first: other bits


@pytest.mark.parametrize("case", VECTORS["detect_in_cam"], ids=lambda c: c["name"].split(":")[0])
def test_the_detection_rule_on_given_cams(detectors, case):
    """SPEC.md section 5, steps 2-7, on CAMs given in the vectors: the window's clamp, the fallback, the order."""
    det = detectors[next(iter(VECTORS["metadata"]))]
    det.rule = dataclasses.replace(det.rule, **{**VECTORS["rule"], **case["rule"]})
    got = [
        d.to_dict()
        for d in det.detect_in_cam(np.asarray(case["cam"], np.float32), tuple(case["image_size"]), case["gsd"])
    ]
    assert len(got) == len(case["boxes"]), (got, case["boxes"])
    for g, e in zip(got, case["boxes"]):
        for k in ("x", "y", "x0", "y0", "x1", "y1"):
            assert abs(g[k] - e[k]) <= TOL["box_abs_px"], (k, g, e)
        assert abs(g["score"] - e["score"]) <= TOL["logit_abs"]


def test_tflite_metadata_at_the_field_numbers_of_section_2():
    """A flatbuffer holding only Model.metadata and Model.buffers (one entry in Buffer.data, one at offset/size)."""
    from shipcam.runtime.metadata import tflite_metadata_entries

    layout = VECTORS["tflite_metadata_layout"]
    got = tflite_metadata_entries(base64.b64decode(layout["file_base64"]))
    assert {k: v.decode("utf-8") for k, v in got.items()} == layout["entries"]


def test_shipcam_js_predict_agrees_with_shipcam_predict_on_real_images(tmp_path):
    """The two command lines on the same file and real PlanetScope crops (../shared/realdata; skipped
    without): probability within 1e-5, the same boxes. Sizes vary, so the fully convolutional path too."""
    import shutil
    import subprocess

    from shipcam.cli import main
    from shipcam.runtime import read_image

    root = Path(__file__).resolve().parents[1]
    scene = root.parent / "shared" / "realdata" / "scene_1.png"
    if not scene.is_file():
        pytest.skip("../shared/realdata is absent: real-image agreement not checked")
    if shutil.which("node") is None or not (root / "js" / "node_modules" / "onnxruntime-node").is_dir():
        pytest.skip("SKIPPED LOUDLY: node or js/node_modules missing (cd js && npm ci --ignore-scripts)")
    image = read_image(scene)
    crops = []
    for i, (x, y, w, h) in enumerate(
        [(1640, 420, 96, 96), (1860, 400, 160, 128), (880, 680, 224, 224), (300, 1200, 128, 128)]
    ):
        path = tmp_path / f"real_{i}.png"
        Image.fromarray(image[y : y + h, x : x + w]).save(path)
        crops.append(path)
    model = root / "tests" / "fixtures" / "tiny_fp32.onnx"
    args: list[str] = []  # the file's threshold in both
    assert main(["predict", str(model), *map(str, crops), "--out", str(tmp_path / "py"), *args]) == 0
    py = {
        Path(r["file"]).name: r
        for r in map(json.loads, (tmp_path / "py" / "predictions.jsonl").read_text().splitlines())
    }
    node = subprocess.run(
        ["node", str(root / "js" / "bin" / "shipcam-js.mjs"), "predict", str(model), *map(str, crops), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert node.returncode == 0, node.stderr
    js = {Path(r["file"]).name: r for r in map(json.loads, node.stdout.splitlines())}
    assert set(js) == set(py) == {p.name for p in crops}
    assert any(p["boxes"] for p in py.values())  # the box comparison below is not vacuous
    for name, p in py.items():
        assert abs(js[name]["probability"] - p["probability"]) <= 1e-5 and js[name]["is_ship"] == p["is_ship"]
        assert len(js[name]["boxes"]) == len(p["boxes"])
        for a, b in zip(js[name]["boxes"], p["boxes"]):
            assert all(abs(a[k] - b[k]) <= TOL["box_abs_px"] for k in ("x", "y", "x0", "y0", "x1", "y1"))
