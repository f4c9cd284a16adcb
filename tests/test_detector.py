import dataclasses
import json
import shutil
import threading

import numpy as np
import pytest
from helpers import assert_outputs_close

from shipcam.errors import ImageError, ModelFileError
from shipcam.export import ExportFormat
from shipcam.runtime import Detector, resize_antialiased, resize_bilinear
from shipcam.train.data.synthetic import SceneConfig, generate_scene

FP32 = [ExportFormat.TFLITE_FP32, ExportFormat.ONNX_FP32]


@pytest.fixture(scope="module")
def scenes():
    cfg = SceneConfig(size=64, ship_fraction=0.5)
    return np.stack([generate_scene(cfg, seed=99, index=i).image for i in range(8)])


@pytest.fixture(scope="module")
def keras_ref(tiny_model_path, scenes):
    import keras

    from shipcam.train.model import head_weights, load_classifier, two_output_model

    model = load_classifier(tiny_model_path)
    x = keras.applications.mobilenet_v2.preprocess_input(scenes.astype(np.float32))  # Keras' own preprocessing
    out = two_output_model(model)(x, training=False)
    w, b = head_weights(model)
    feats = np.asarray(out["features"], np.float64)
    return {"logits": np.asarray(out["logits"])[:, 0], "cam": feats @ w.astype(np.float64) + b}


@pytest.mark.parametrize("fmt", FP32, ids=lambda f: f.value)
def test_runtime_cam_equals_keras_cam(exported, keras_ref, scenes, fmt):
    out, _ = exported
    det = Detector.load(out / fmt.filename("tiny"), threads=1)
    preds = det.predict(scenes)
    cams = np.stack([p.cam for p in preds])
    assert_outputs_close(keras_ref["cam"], cams, what="CAM")
    assert_outputs_close(keras_ref["logits"], [p.logit for p in preds], what="logits")
    assert preds[0].cam_image.shape == (64, 64)
    assert set(preds[0].timings_ms) == {"preprocess", "inference", "cam"}


def test_preprocessing_matches_keras(exported, scenes):
    import keras

    out, _ = exported
    det = Detector.load(out / ExportFormat.ONNX_FP32.filename("tiny"))
    np.testing.assert_allclose(
        det.preprocess(scenes), keras.applications.mobilenet_v2.preprocess_input(scenes.astype(np.float32)), atol=1e-6
    )


def test_litert_and_onnx_agree(exported, scenes):
    out, _ = exported
    a = Detector.load(out / ExportFormat.TFLITE_FP32.filename("tiny")).predict(scenes)
    b = Detector.load(out / ExportFormat.ONNX_FP32.filename("tiny")).predict(scenes)
    assert_outputs_close([q.logit for q in b], [p.logit for p in a], what="logits")
    assert_outputs_close(np.stack([q.cam for q in b]), np.stack([p.cam for p in a]), what="CAM")


@pytest.mark.parametrize("fmt", FP32, ids=lambda f: f.value)
def test_concurrent_callers_get_serial_results(exported, fmt):
    out, _ = exported
    det = Detector.load(out / fmt.filename("tiny"), threads=1)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (s, s, 3), dtype=np.uint8) for s in (64, 96, 64, 128) * 3]
    serial = [det.predict(im).logit for im in images]
    results: dict[int, list[float]] = {}

    def worker(k):
        results[k] = [det.predict(im).logit for im in images]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert results[k] == serial


def test_scan_equals_predict_on_a_scene_that_is_one_tile(exported):
    out, _ = exported
    det = Detector.load(out / ExportFormat.ONNX_FP32.filename("tiny"))
    # the first pass only (tests/test_views.py checks the confirmation)
    det.rule = dataclasses.replace(det.rule, confirm_views="none")
    scene = generate_scene(SceneConfig(size=128, ship_fraction=1.0), seed=4, index=1).image
    one = det.scan(scene, tile=128)
    pred = det.predict(scene)
    assert one.tiles == 1 and one.tile_probabilities[0][2] == pytest.approx(pred.probability)
    # the stitched heatmap is the image's CAM upsampled to the heatmap's cells
    n = one.heatmap.shape[0]
    np.testing.assert_allclose(one.heatmap, resize_bilinear(pred.cam, n, n), atol=1e-5)


def test_scan_stitches_tiles_in_scene_coordinates(exported):
    """Each tile's CAM lands where the tile is: scanning a 3x2 mosaic by tiles of one scene each
    gives, cell for cell, the CAM of that scene predicted alone (interior cores and scene edges)."""
    out, _ = exported
    det = Detector.load(out / ExportFormat.ONNX_FP32.filename("tiny"))
    det.rule = dataclasses.replace(det.rule, confirm_views="none")  # the first pass only
    cfg = SceneConfig(size=128, ship_fraction=1.0)
    parts = [[generate_scene(cfg, seed=4, index=2 * r + c).image for c in range(3)] for r in range(2)]
    scene = np.concatenate([np.concatenate(row, 1) for row in parts], 0)
    res = det.scan(scene, tile=128, overlap=0.0)
    assert res.tiles == 6
    n = 128 // int(res.cell)
    for r in range(2):
        for c in range(3):
            alone = resize_bilinear(det.predict(parts[r][c]).cam, n, n)
            np.testing.assert_allclose(res.heatmap[r * n : (r + 1) * n, c * n : (c + 1) * n], alone, atol=1e-5)
    for d in det.scan(scene, tile=128, overlap=0.25, min_score=-50.0).detections:
        assert 0 <= d.box.x0 <= d.x <= d.box.x1 <= scene.shape[1] and 0 <= d.box.y0 <= d.y <= d.box.y1 <= scene.shape[0]


def test_scan_resamples_to_the_model_gsd(exported):
    out, _ = exported
    det = Detector.load(out / ExportFormat.ONNX_FP32.filename("tiny"))
    scene = generate_scene(SceneConfig(size=256, ship_fraction=1.0), seed=9, index=0).image
    # twice the model's resolution: scanned at half size
    half = det.scan(scene, tile=64, gsd=det.gsd / 2, min_score=-50.0)
    assert half.resample == pytest.approx(0.5) and half.cell == pytest.approx(2 * det.metadata.feature_stride // 4)
    same = det.scan(resize_antialiased(scene, 128, 128), tile=64, min_score=-50.0)
    np.testing.assert_allclose(half.heatmap, same.heatmap, atol=1e-4)
    assert [round(d.x) for d in half.detections] == [round(2 * d.x) for d in same.detections]


def test_a_scene_inside_the_gsd_range_runs_as_it_is_and_outside_is_brought_to_the_nearer_bound(exported):
    out, _ = exported
    det = Detector.load(out / ExportFormat.ONNX_FP32.filename("tiny"))
    det.gsd_range = (1.5, 3.0)
    assert [det.working_gsd(g) for g in (1.0, 1.5, 2.2, 3.0, 3.02, 4.5)] == [1.5, 1.5, 2.2, 3.0, 3.02, 3.0]
    with pytest.raises(ValueError, match="received -1"):
        det.working_gsd(-1)
    scene = generate_scene(SceneConfig(size=192, ship_fraction=1.0), seed=9, index=1).image
    inside = det.scan(scene, tile=64, gsd=2.2, min_score=-50.0)
    assert inside.resample == 1.0 and inside.heatmap.shape == det.scan(scene, tile=64, min_score=-50.0).heatmap.shape
    coarse = det.scan(scene, tile=64, gsd=4.5, min_score=-50.0)  # 4.5 m/px: enlarged 1.5x to the range's 3 m
    same = det.scan(resize_antialiased(scene, 288, 288), tile=64, min_score=-50.0, gsd=3.0)
    assert coarse.resample == pytest.approx(1.5)
    np.testing.assert_allclose(coarse.heatmap, same.heatmap, atol=1e-4)


def test_predict_with_a_gsd_outside_the_range_resamples_and_answers_in_the_image_pixels(exported):
    out, _ = exported
    det = Detector.load(out / ExportFormat.ONNX_FP32.filename("tiny"))
    det.gsd_range = (1.5, 3.0)
    chip = generate_scene(SceneConfig(size=80, ship_fraction=1.0), seed=9, index=2).image
    at_6m = det.predict(chip, gsd=6.0)  # an 80 px chip at 6 m is a 160 px one at the range's 3 m
    ref = det.predict(resize_antialiased(chip, 160, 160), gsd=3.0)
    assert at_6m.logit == pytest.approx(ref.logit, abs=1e-4) and at_6m.image_size == (80, 80)
    assert at_6m.cam_image.shape == (80, 80)
    assert [round(d.x, 3) for d in at_6m.detections] == [round(d.x / 2, 3) for d in ref.detections]
    assert det.predict(chip, gsd=2.0).logit == pytest.approx(det.predict(chip).logit, abs=1e-6)  # inside: as it is


def test_bad_inputs_are_named(exported, tmp_path):
    out, _ = exported
    det = Detector.load(out / ExportFormat.ONNX_FP32.filename("tiny"))
    with pytest.raises(ImageError, match="NaN"):
        det.predict(np.full((64, 64, 3), np.nan, np.float32))
    with pytest.raises(ImageError, match=r"received shape \(64, 64, 4\)"):
        det.predict(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(ImageError, match="zero size"):
        det.predict(np.zeros((0, 64, 3), np.uint8))
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(ImageError, match="x.jpg"):
        det.predict(tmp_path / "x.jpg")
    (tmp_path / "model.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelFileError, match="model.tflite"):
        Detector.load(tmp_path / "model.tflite")
    with pytest.raises(ValueError, match="cannot pick an engine"):
        Detector.load(tmp_path / "x.jpg")


def test_manifest_hash_is_enforced_when_given(exported, tmp_path):
    out, _ = exported
    name = ExportFormat.TFLITE_FP32.filename("tiny")
    Detector.load(out / name, manifest=out / "manifest.json")  # matches
    shutil.copy(out / name, tmp_path / name)
    manifest = json.loads((out / "manifest.json").read_text())
    for e in manifest["files"]:
        e["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="sha256 does not match"):
        Detector.load(tmp_path / name, manifest=tmp_path / "manifest.json")
