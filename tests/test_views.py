"""Test-time views of scan tiles: the group maths against index formulas, the scan against turned images predicted
alone.
"""

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.cli import main
from shipcam.errors import ShipcamError
from shipcam.runtime import DetectionRule, Detector, resize_bilinear
from shipcam.runtime.engines.base import Engine
from shipcam.runtime.maths import sigmoid
from shipcam.runtime.metadata import ModelMetadata
from shipcam.runtime.views import Views, apply_view, undo_view
from shipcam.train.data.synthetic import SceneConfig, generate_scene

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_fp32.onnx"


def test_views_are_the_dihedral_group_written_as_index_formulas(rng):
    a = rng.normal(size=(2, 5, 5, 3))
    n = a.shape[1] - 1
    # One quarter turn counter-clockwise: out[i, j] = a[j, n - i]; a mirror: out[i, j] = a[i, n - j].
    turned = np.stack([[a[:, j, n - i] for j in range(5)] for i in range(5)]).transpose(2, 0, 1, 3)
    mirrored = a[:, :, ::-1]
    np.testing.assert_array_equal(apply_view(a, 1, False), turned)
    np.testing.assert_array_equal(apply_view(a, 0, True), mirrored)
    np.testing.assert_array_equal(
        apply_view(a, 1, True),
        np.stack([[mirrored[:, j, n - i] for j in range(5)] for i in range(5)]).transpose(2, 0, 1, 3),
    )
    assert [len(v.transforms) for v in Views] == [1, 2, 4, 8]
    seen = set()
    for k, m in Views.D4.transforms:
        v = apply_view(a, k, m)
        np.testing.assert_array_equal(undo_view(v, k, m), a)
        seen.add(v.tobytes())
    assert len(seen) == 8  # an asymmetric array has eight distinct views
    with pytest.raises(ValueError, match="received 'rot3'"):
        DetectionRule(views="rot3")
    assert DetectionRule(views="d4").views is Views.D4


def _scene(size: int) -> np.ndarray:
    return generate_scene(SceneConfig(size=size, ship_fraction=1.0), seed=7, index=3).image


def test_a_scan_with_views_is_the_mean_of_the_turned_tiles_predicted_alone():
    det = Detector.load(FIXTURE)
    scene = _scene(128)
    det.rule = dataclasses.replace(det.rule, views="rot4", confirm_views="none")
    res = det.scan(scene, tile=128)
    preds = [det.predict(np.ascontiguousarray(np.rot90(scene, k))) for k in range(4)]
    mean_cam = np.mean([np.rot90(p.cam, -k) for k, p in enumerate(preds)], axis=0)
    n = res.heatmap.shape[0]
    np.testing.assert_allclose(res.heatmap, resize_bilinear(mean_cam, n, n), atol=1e-5)
    assert res.tile_probabilities[0][2] == pytest.approx(float(sigmoid(np.mean([p.logit for p in preds]))), abs=1e-6)


def test_d4_views_make_the_scan_invariant_to_quarter_turns_and_mirrors():
    det = Detector.load(FIXTURE)
    scene = _scene(256)  # two by two tiles of 128 px without overlap: the tile grid maps onto itself when turned
    heat = {}
    for views in ("none", "d4"):
        det.rule = dataclasses.replace(det.rule, views=views)
        heat[views] = [
            det.scan(np.ascontiguousarray(apply_view(scene[None], k, m)[0]), tile=128, overlap=0.0).heatmap
            for k, m in ((0, False), (1, False), (3, True))
        ]
    for views, (plain, turned, mirrored) in heat.items():
        same = [
            np.allclose(plain, undo_view(h[None], k, m)[0], atol=1e-4)
            for h, (k, m) in ((turned, (1, False)), (mirrored, (3, True)))
        ]
        assert same == ([True, True] if views == "d4" else [False, False]), views  # the model alone is not invariant


def test_scan_command_takes_views_and_records_them(tmp_path):
    Image.fromarray(_scene(128)).save(tmp_path / "scene.png")
    assert (
        main(
            [
                "scan",
                str(FIXTURE),
                str(tmp_path / "scene.png"),
                "--tile",
                "64",
                "--views",
                "flip",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "o" / "scene_scan.json").read_text())["rule"]["views"] == "flip"


def test_predict_with_views_averages_the_turned_and_mirrored_images_predicted_alone():
    """A non-square image: its turned views are 96x64, their CAMs turned back are 64x96 again."""
    det = Detector.load(FIXTURE)
    image = _scene(128)[:64, :96]
    alone = {
        (k, m): det.predict(np.ascontiguousarray(np.rot90(image[:, ::-1] if m else image, k)))
        for k in range(4)
        for m in (False, True)
    }
    det.rule = dataclasses.replace(det.rule, views="d4")
    pred = det.predict(image)
    cams = [np.rot90(p.cam, -k)[:, ::-1] if m else np.rot90(p.cam, -k) for (k, m), p in alone.items()]
    assert pred.cam.shape == alone[(0, False)].cam.shape
    np.testing.assert_allclose(pred.cam, np.mean(cams, axis=0), atol=1e-5)
    assert pred.logit == pytest.approx(np.mean([p.logit for p in alone.values()]), abs=1e-5)
    assert pred.probability == pytest.approx(float(sigmoid(pred.logit)))


def test_predict_command_takes_views(tmp_path):
    Image.fromarray(_scene(128)[:64, :96]).save(tmp_path / "chip.png")
    assert (
        main(["predict", str(FIXTURE), str(tmp_path / "chip.png"), "--views", "rot4", "--out", str(tmp_path / "o")])
        == 0
    )
    (line,) = (tmp_path / "o" / "predictions.jsonl").read_text().splitlines()
    det = Detector.load(FIXTURE)
    det.rule = dataclasses.replace(det.rule, views="rot4")
    expected = det.predict(np.asarray(Image.open(tmp_path / "chip.png"))).probability
    assert json.loads(line)["probability"] == pytest.approx(expected, abs=1e-6)
    det.rule = dataclasses.replace(det.rule, views="none")
    # the views changed it
    assert det.predict(np.asarray(Image.open(tmp_path / "chip.png"))).probability != pytest.approx(expected, abs=1e-6)


class _BlockMeans(Engine):
    """A closed-form network with a fixed 32 x 64 input: the feature map is the mean red level of each 16 px block."""

    name = "block-means"

    def __init__(self):
        self.path, self.threads, self._lock = Path("<block-means>"), 1, threading.Lock()
        self.input_shape = (None, 32, 64, 3)
        self.metadata = ModelMetadata(
            cam_weights=[1.0],
            cam_bias=-0.5,
            pooling="max",
            backbone="blocks",
            feature_channels=1,
            input_scale=1 / 255,
            input_offset=0.0,
            input_size=[32, 64],
            train_size=32,
            feature_stride=16,
            gsd=3.0,
        )

    def _run(self, batch):
        n, h, w, _ = batch.shape
        f = batch[..., 0].reshape(n, h // 16, 16, w // 16, 16).mean(axis=(2, 4))[..., None]
        return {"logits": f.max(axis=(1, 2)) - 0.5, "features": f}


def test_a_mirror_changes_nothing_for_a_mirror_symmetric_network_and_turns_need_a_square_input(rng):
    det = Detector(_BlockMeans())
    image = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
    plain = det.predict(image)
    det.rule = dataclasses.replace(det.rule, views="flip")
    mirrored = det.predict(image)  # block means mirror with the image: the average of the two views is the plain map
    np.testing.assert_allclose(mirrored.cam, plain.cam, atol=1e-6)
    assert mirrored.logit == pytest.approx(plain.logit, abs=1e-6)
    det.rule = dataclasses.replace(det.rule, views="rot4")
    with pytest.raises(ShipcamError, match="square input; this model's fixed input is 32x64"):
        det.predict(image)


def _turned_back(det: Detector, crop: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """The CAM of one view of ``crop`` predicted alone, back in the crop's orientation (numpy's own rot90 and
    mirror)."""
    view = np.rot90(crop[:, ::-1] if mirrored else crop, turns)
    cam = np.rot90(det.predict(np.ascontiguousarray(view)).cam, -turns)
    return cam[:, ::-1] if mirrored else cam


@pytest.mark.parametrize(
    "views, confirm, others, threshold",
    [("none", "rot4", [(1, False), (2, False), (3, False)], 0.55), ("rot4", "d4", [(k, True) for k in range(4)], 0.5)],
)
def test_the_confirmation_averages_the_first_pass_with_the_other_views_of_a_crop_on_each_peak(
    views, confirm, others, threshold, monkeypatch
):
    """Around each first-pass detection the confirmation sees a crop of 1.5 training sizes centred on its
    peak (on the heat grid, inside the scene) in the views the first pass did not run, and averages their
    CAMs with the first pass's map: a detection stays when that clears the threshold near its peak."""
    det = Detector.load(FIXTURE)  # trained at 64 px, stride 32: 96 px crops in 128 px tiles
    scene = generate_scene(SceneConfig(size=256, ship_fraction=1.0), seed=1, index=0).image
    monkeypatch.setattr("shipcam.runtime.scan.CONFIRM_MARGIN", np.inf)  # every detection confirmed
    runs = {}
    for then in ("none", confirm):
        det.rule = dataclasses.replace(det.rule, threshold=threshold, isolation=False, views=views, confirm_views=then)
        runs[then] = det.scan(scene, tile=128, overlap=0.0)
    plain, checked = runs["none"], runs[confirm]
    det.rule = dataclasses.replace(det.rule, views="none", confirm_views="none")  # each view of a crop predicted alone
    t, cell, side, seen = np.log(threshold / (1 - threshold)), int(plain.cell), 96, len(Views(views).transforms)
    n = side // cell
    kept = {(d.x, d.y): d.score for d in checked.detections}
    assert plain.detections and set(kept) <= {(d.x, d.y) for d in plain.detections}
    assert 0 < len(kept) < len(plain.detections)  # the views kept some and dropped some
    for d in plain.detections:
        x0, y0 = (min(max(0, round((c - side / 2) / cell) * cell), 256 - side) for c in (d.x, d.y))
        crop = scene[y0 : y0 + side, x0 : x0 + side]
        rest = sum(_turned_back(det, crop, k, m) for k, m in others)
        mean = (plain.heatmap[y0 // cell :, x0 // cell :][:n, :n] * seen + resize_bilinear(rest, n, n)) / (
            seen + len(others)
        )
        cy, cx = int(d.y // cell) - y0 // cell, int(d.x // cell) - x0 // cell
        s = float(mean[max(0, cy - 2) : cy + 3, max(0, cx - 2) : cx + 3].max())
        assert ((d.x, d.y) in kept) == (s >= t)
        if (d.x, d.y) in kept:
            assert kept[d.x, d.y] == pytest.approx(s, abs=1e-5)
    changed = ~np.isclose(checked.heatmap, plain.heatmap, atol=1e-6)
    assert 0 < changed.mean() < 0.5  # the middles of the crops, not the scene


def test_detections_well_over_the_threshold_skip_the_confirmation_and_keep_their_first_pass_score(monkeypatch):
    """CONFIRM_MARGIN splits the first pass's detections: those more than the margin over the threshold are
    kept as scored; the others get what the full confirmation (checked above against each view) gives them."""
    det = Detector.load(FIXTURE)
    scene = generate_scene(SceneConfig(size=256, ship_fraction=1.0), seed=1, index=0).image
    t = np.log(0.4 / 0.6)

    def scan(confirm, margin):
        monkeypatch.setattr("shipcam.runtime.scan.CONFIRM_MARGIN", margin)
        det.rule = dataclasses.replace(det.rule, threshold=0.4, isolation=False, confirm_views=confirm)
        return {(d.x, d.y): d.score for d in det.scan(scene, tile=128, overlap=0.0).detections}

    plain, full = scan("none", np.inf), scan("rot4", np.inf)
    margin = float(np.median([s - t for s in plain.values()]))  # half the detections on each side
    part = scan("rot4", margin)
    sure = {xy for xy, s in plain.items() if s - t > margin}
    assert sure and len(sure) < len(plain)
    assert {xy: part[xy] for xy in sure} == {xy: plain[xy] for xy in sure}  # kept, with the first pass's score
    assert {xy: s for xy, s in part.items() if xy not in sure} == pytest.approx(
        {xy: s for xy, s in full.items() if xy not in sure}, abs=1e-5
    )
