"""Training chips from labelled scenes: the geometry of a chip, the hull estimate, negatives clear of labels, and bad
labels files.
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.runtime.labels import SceneLabel
from shipcam.runtime.scoring import LabelledScene
from shipcam.train.data.scenes import (
    ChipConfig,
    estimate_hull,
    negative_chips,
    pasted_chips,
    positive_chips,
    rotated_chip,
    write_chips,
)

HEADER = "scene,x,y,length_m,label,note\n"


def _hull_scene(
    angle_deg: float = 30.0, length_px: float = 40.0, beam_px: float = 8.0, size: int = 200, seed: int = 0
) -> LabelledScene:
    """Calm water with one bright elliptical hull at the centre, turned by ``angle_deg``."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), (40, 60, 70), np.float32) + rng.normal(0, 1.5, (size, size, 3))
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    a = math.radians(angle_deg)
    u = (xx - size / 2) * math.cos(a) + (yy - size / 2) * math.sin(a)
    v = -(xx - size / 2) * math.sin(a) + (yy - size / 2) * math.cos(a)
    img[(u / (length_px / 2)) ** 2 + (v / (beam_px / 2)) ** 2 <= 1] = (200, 80, 60)
    labels = [SceneLabel(size / 2, size / 2, length_px * 3.0, "ship")]
    return LabelledScene(Path("hull.png"), np.clip(img, 0, 255).astype(np.uint8), labels, 3.0)


def test_a_chip_at_angle_zero_and_its_own_scale_is_the_crop(rng):
    image = rng.integers(0, 255, (60, 80, 3)).astype(np.uint8)
    chip = rotated_chip(image, 40.0, 30.0, 32, 0.0, 32)
    np.testing.assert_allclose(chip, image[14:46, 24:56], atol=1e-3)


def test_a_quarter_turn_is_np_rot90_of_the_crop(rng):
    image = rng.integers(0, 255, (60, 80, 3)).astype(np.uint8)
    turned = rotated_chip(image, 40.0, 30.0, 32, math.pi / 2, 32)
    # Chip pixel (row v, column u) reads the image at (x, y) = (-v, u) from the centre: the crop turned
    # counter-clockwise once.
    np.testing.assert_allclose(turned, np.rot90(image[14:46, 24:56], k=1), atol=1e-3)


def test_beyond_the_edge_the_scene_is_mirrored_not_smeared(rng):
    image = rng.integers(0, 255, (40, 40, 3)).astype(np.uint8)
    # columns sample x = -8..7: half the window lies left of the image
    chip = rotated_chip(image, 0.0, 20.0, 16, 0.0, 16)
    # x = -k reads x = k (reflection about the first pixel)
    np.testing.assert_allclose(chip[:, 1:8], chip[:, 9:][:, ::-1], atol=1e-3)
    np.testing.assert_allclose(chip[:, 8:], image[12:28, :8], atol=1e-3)


def test_a_larger_window_is_averaged_down_not_aliased():
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, axis=2)
    chip = rotated_chip(checker, 32.0, 32.0, 64, 0.0, 32)  # 2 px per chip pixel
    assert np.abs(chip - 127.5).max() < 1.0  # a one-pixel checkerboard averages to grey, it does not alias


@pytest.mark.parametrize("angle", [0.0, 30.0, 100.0, 160.0])
def test_the_hull_estimate_recovers_axis_and_length(angle):
    scene = _hull_scene(angle)
    hull = estimate_hull(scene, scene.labels[0])
    diff = (math.degrees(hull.angle) - angle + 90) % 180 - 90  # an axis, not a heading
    assert abs(diff) < 5 and hull.length == pytest.approx(40, rel=0.15) and hull.at_sea


def test_positive_chips_hold_the_ship_and_negatives_keep_clear_of_every_label():
    scene = _hull_scene(size=600)
    cfg = ChipConfig(size=48, gsd_range=(3.0, 3.0), per_ship=6, offset=0.2)
    rng = np.random.default_rng(1)
    red = lambda c: ((c[..., 0] > 150) & (c[..., 1] < 120)).sum()  # noqa: E731
    assert all(red(c) > 20 for c in positive_chips(scene, cfg, rng))
    negatives = negative_chips(scene, 40, cfg, rng)
    assert len(negatives) == 40 and all(red(c) == 0 for c in negatives)


def test_a_pasted_ship_lands_on_other_water_in_the_water_colour():
    donor = _hull_scene(size=300)
    host = _hull_scene(size=600, seed=2)
    host = host._replace(image=np.full_like(host.image, (20, 90, 110)), labels=[])
    cfg = ChipConfig(size=64, gsd_range=(3.0, 3.0), pasted_per_ship=5)
    chips = pasted_chips([donor], [host], cfg, np.random.default_rng(3))
    assert len(chips) == 5
    for c in chips:
        hull = (c[..., 0] > 150) & (c[..., 1] < 120)
        assert hull.sum() > 20
        water = c[~hull & (np.abs(c - (20, 90, 110)).max(axis=2) < 12)]
        assert len(water) > 0.7 * (64 * 64 - hull.sum())  # the host's water stays, with no halo of the donor's


def test_write_chips_leaves_a_complete_folder_or_nothing(tmp_path):
    from shipcam.train.data.sources import load_dataset

    root = write_chips(tmp_path / "chips", [np.zeros((8, 8, 3))] * 2, [np.ones((8, 8, 3))] * 3)
    s = load_dataset(root, show_progress=False)
    assert len(s) == 5 and s.labels.sum() == 2 and not (tmp_path / "chips.part").exists()


# --- bad labels files: one line naming the file, the row and the value; nothing written ---


def _scene_dir(tmp_path) -> Path:
    d = tmp_path / "scenes"
    d.mkdir()
    Image.fromarray(np.full((120, 160, 3), 50, np.uint8)).save(d / "a.png")
    return d


BAD = {
    "a scene that is not there": (HEADER + "a.png,10,10,90,ship,\nmissing.png,20,20,90,ship,\n", "missing.png"),
    "coordinates outside the image": (HEADER + "a.png,10,10,90,ship,\na.png,500,20,90,ship,\n", "x=500"),
    "an unknown label": (HEADER + "a.png,10,10,90,boat,\n", "'boat'"),
    "an empty CSV": ("", "empty"),
    "a header and no rows": (HEADER, "no labels"),
    "duplicate rows": (
        HEADER + "a.png,10,10,90,ship,\na.png,30,30,90,ship,\na.png,10,10,90,ship,\n",
        "line 4: duplicates line 2",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_labels_file_is_one_line_and_leaves_nothing_behind(tmp_path, case):
    text, needle = BAD[case]
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    run = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipcam.cli",
            "train",
            "--scenes",
            str(_scene_dir(tmp_path)),
            "--labels",
            str(labels),
            "--weights",
            "none",
            "--run-dir",
            str(run),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert str(labels) in err and needle in err
    assert not run.exists()


def test_scenes_given_as_files_may_leave_out_other_labelled_scenes(tmp_path):
    """Leave-one-scene-out trains on one file of a labels CSV that covers two scenes: that is not an error."""
    from shipcam.train.realdata import load_training_scenes

    d = _scene_dir(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text(HEADER + "a.png,10,10,90,ship,\nother.png,20,20,90,ship,\n")
    (scene,) = load_training_scenes([str(d / "a.png")], labels)
    assert scene.path.name == "a.png" and len(scene.labels) == 1
