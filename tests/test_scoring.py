"""Real-scene scoring (eval-scenes, --real-val) on a scene whose answer is known by construction.

The engine here is analytic: its one feature channel is the mean brightness of
each 32x32 block, and the CAM head is ``mean - 0.5``. A white block is then a
CAM peak of +0.5 at its centre and black is -0.5, so which squares become
detections, and so every count in the report, follows from the drawing alone.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.runtime import Detector, load_scenes, score_scenes
from shipcam.runtime.engines.base import Engine
from shipcam.runtime.metadata import ModelMetadata

B = 32  # block = feature stride


class BlockEngine(Engine):
    name = "blocks"

    def __init__(self):  # no file: the network is a closed form
        self.path, self.threads, self._lock = Path("<blocks>"), 1, threading.Lock()
        self.input_shape = (None, None, None, 3)
        self.metadata = ModelMetadata(
            cam_weights=[1.0],
            cam_bias=-0.5,
            pooling="max",
            backbone="blocks",
            feature_channels=1,
            input_scale=1 / 255,
            input_offset=0.0,
            input_size=None,
            train_size=64,
            feature_stride=B,
            gsd=3.0,
        )

    def _run(self, batch):
        n, h, w, _ = batch.shape
        f = batch[..., 0].reshape(n, h // B, B, w // B, B).mean(axis=(2, 4))[..., None]
        return {"logits": f.max(axis=(1, 2)) - 0.5, "features": f}


def _detector() -> Detector:
    """The block model with the isolation check off: these tests are about counting, and the sweep's
    low end (plateaus on black) is exactly what the check would remove (tests/test_isolation.py)."""
    det = Detector(BlockEngine())
    det.rule = dataclasses.replace(det.rule, isolation=False)
    return det


# Block (row, col) centres in pixels: (r + 0.5) * 32.
SHIPS_DRAWN = [(2, 3), (8, 15)]  # labelled and painted: found
SHIP_MISSED = (12, 6)  # labelled, not painted
NEAR_IGNORE = (5, 20)  # painted next to an `ignore` label: neither way
FALSE_ALARMS = [(1, 10), (14, 22)]  # painted, unlabelled


def _centre(rc):
    return (rc[1] + 0.5) * B, (rc[0] + 0.5) * B


@pytest.fixture()
def scene(tmp_path):
    img = np.zeros((16 * B, 24 * B, 3), np.uint8)
    for r, c in SHIPS_DRAWN + [NEAR_IGNORE] + FALSE_ALARMS:
        img[r * B : (r + 1) * B, c * B : (c + 1) * B] = 255
    Image.fromarray(img).save(tmp_path / "s.png")
    rows = ["scene,x,y,length_m,label,note"]
    for rc in SHIPS_DRAWN + [SHIP_MISSED]:
        rows.append("s.png,%g,%g,90,ship," % _centre(rc))
    x, y = _centre(NEAR_IGNORE)
    rows.append(f"s.png,{x + 10},{y - 10},30,ignore,buoy")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_scores_follow_from_the_drawing(scene):
    scenes, failed = load_scenes([scene / "s.png"], scene / "labels.csv")
    assert failed == [] and scenes[0].gsd == 3.0
    total = score_scenes(_detector(), scenes)["total"]
    mpx = 16 * B * 24 * B / 1e6
    assert (total["ships"], total["found"], total["true_positives"], total["false_alarms"]) == (3, 2, 2, 2)
    assert total["recall"] == pytest.approx(2 / 3)
    assert total["precision"] == pytest.approx(0.5)
    assert total["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert total["fa_per_mpx"] == pytest.approx(2 / mpx)
    assert total["fa_per_km2"] == pytest.approx(2 / (mpx * 9.0))  # 3 m/px: 9 m^2 per pixel


def test_a_scene_without_any_detection_scores_zero_recall_and_an_empty_curve(scene):
    """With the isolation check on, a black scene has no object at any peak: nothing to sweep."""
    Image.fromarray(np.zeros((16 * B, 24 * B, 3), np.uint8)).save(scene / "s.png")
    scenes, _ = load_scenes([scene / "s.png"], scene / "labels.csv")
    result = score_scenes(Detector(BlockEngine()), scenes)
    assert (result["total"]["found"], result["total"]["false_alarms"], result["total"]["recall"]) == (0, 0, 0.0)
    assert result["pr"] == []


def test_eval_scenes_writes_its_report_and_a_monotone_pr_curve(scene):
    from shipcam.evaluation.scenes import evaluate_scenes

    out = scene / "eval"
    report = evaluate_scenes("<blocks>", [str(scene)], scene / "labels.csv", out, detector=_detector())
    assert report["total"]["found"] == 2 and report["failed"] == []
    saved = json.loads((out / "eval.json").read_text())
    assert saved["total"] == pytest.approx(report["total"])
    # the ship left unpainted is the one listed as missed; the two painted squares without a label are the false alarms
    (row,) = saved["scenes"]
    assert [(m["x"], m["y"]) for m in row["missed"]] == [_centre(SHIP_MISSED)]
    fa = sorted((round(a["x"]), round(a["y"])) for a in row["false_alarm_points"])
    assert len(fa) == 2 and all(
        min(np.hypot(x - cx, y - cy) for cx, cy in map(_centre, FALSE_ALARMS)) < B for x, y in fa
    )
    pr = json.loads((out / "pr_curve.json").read_text())
    # Every painted square peaks at the same score: the CAM is upsampled 4x with half-pixel centres,
    # so the sample nearest a block's centre sits 1/8 block off on both axes: (7/8)^2 - 0.5.
    # One point of the curve holds all five; lower down the sweep reaches the flat black sea
    # (-0.5), whose plateaus find the unpainted ship too.
    at = [p for p in pr if p["score"] == pytest.approx(0.875**2 - 0.5, abs=1e-6)]
    assert len(at) == 1 and at[0]["recall"] == pytest.approx(2 / 3) and at[0]["false_alarms"] == 2
    assert pr[-1]["score"] < 0 and pr[-1]["recall"] == 1.0
    assert all(a["recall"] <= b["recall"] for a, b in zip(pr, pr[1:]))
    assert Image.open(out / "s_eval.png").size == (24 * B, 16 * B)


def test_unlabelled_scene_is_named(scene, tmp_path):
    from shipcam.errors import ShipcamError

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(scene / "other.png")
    with pytest.raises(ShipcamError, match="other.png: not in"):
        load_scenes([scene / "other.png"], scene / "labels.csv")
