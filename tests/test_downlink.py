"""The on-board downlink filter: chip windows in closed form, the budget, lossless chips, and ``shipcam scan
--crops``."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.cli import main
from shipcam.runtime.boxes import Box
from shipcam.runtime.detections import Detection
from shipcam.runtime.downlink import chip_window, plan_downlink
from shipcam.train.data.synthetic import SceneConfig, generate_scene

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_fp32.onnx"


def _det(x, y, score):
    return Detection(x, y, Box(x - 5, y - 5, x + 5, y + 5, score), score)


def test_chip_windows_are_centred_and_moved_inside_the_scene():
    assert chip_window(100, 80, 32, (200, 300)) == (84, 64, 116, 96)
    assert chip_window(3, 197, 32, (200, 300)) == (0, 168, 32, 200)  # corner: moved in, still 32 px
    assert chip_window(50, 10, 32, (20, 300)) == (34, 0, 66, 20)  # scene lower than a chip: clipped
    with pytest.raises(ValueError, match="received 0"):
        chip_window(1, 1, 0, (10, 10))


@pytest.fixture
def scene():
    return np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)  # noise: chips do not compress away


def test_png_chips_are_the_scene_pixels_and_the_manifest_names_them(scene):
    dets = [_det(40, 50, 1.0), _det(300, 230, 3.0), _det(160, 120, 2.0)]
    plan = plan_downlink(scene, dets, "s", size=48, fmt="png")
    assert [c.detection.score for c in plan.chips] == [3.0, 2.0, 1.0] and plan.left_out == 0
    assert [c.window for c in plan.chips] == [(272, 192, 320, 240), (136, 96, 184, 144), (16, 26, 64, 74)]
    for c in plan.chips:
        x0, y0, x1, y1 = c.window
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(c.data))), scene[y0:y1, x0:x1])
    geo = json.loads(plan.manifest)
    assert [f["properties"]["chip"] for f in geo["features"]] == ["s_000.png", "s_001.png", "s_002.png"]
    assert geo["features"][0]["geometry"] == {"type": "Point", "coordinates": [300, 230]}  # one Point a chip
    assert geo["shipcam"] == {"scene": "s", "detections": 3, "sent": 3, "coordinates": "pixel"}
    assert "crs" not in geo and "bbox" not in geo  # no image has pixels in a CRS
    assert b" " not in plan.manifest  # compact: every byte goes down the link


def test_the_budget_buys_the_strongest_chips_and_is_never_exceeded(scene):
    dets = [_det(30 + 50 * i, 40 + 30 * (i % 5), float(i)) for i in range(6)]
    full = plan_downlink(scene, dets, "s", size=40, fmt="jpeg", quality=80)
    sizes = [len(c.data) for c in full.chips]
    assert len(full.chips) == 6 and min(sizes) > 1000  # noise at q80: kilobytes a chip
    for budget in [500, sizes[0] + 400, sum(sizes[:3]) + 700, sum(sizes) + 2000, full.nbytes]:
        plan = plan_downlink(scene, dets, "s", budget, size=40, fmt="jpeg", quality=80)
        k = len(plan.chips)
        assert plan.nbytes <= budget
        assert [c.name for c in plan.chips] == [c.name for c in full.chips[:k]]  # a prefix of the ranking
        assert plan.left_out == 6 - k
        if k < 6:  # sending the next one as well (its chip and its manifest entry) would not have fitted
            top = sorted(dets, key=lambda d: -d.score)[: k + 1]
            assert plan_downlink(scene, top, "s", size=40, fmt="jpeg", quality=80).nbytes > budget
    assert len(plan_downlink(scene, dets, "s", full.nbytes, size=40, fmt="jpeg", quality=80).chips) == 6
    assert len(plan_downlink(scene, dets, "s", full.nbytes - 1, size=40, fmt="jpeg", quality=80).chips) == 5
    with pytest.raises(ValueError, match="received -1"):
        plan_downlink(scene, dets, "s", -1)
    with pytest.raises(ValueError, match="budget 100 bytes is below the empty manifest"):
        plan_downlink(scene, dets, "s", 100)


def test_scan_writes_chips_within_the_budget_and_clears_stale_ones(tmp_path, capsys):
    cfg = SceneConfig(size=96, ship_fraction=1.0)
    image = np.concatenate([generate_scene(cfg, seed=2, index=i).image for i in range(4)], axis=1)[:90]
    Image.fromarray(image).save(tmp_path / "scene.png")
    base = [
        "scan",
        str(FIXTURE),
        str(tmp_path / "scene.png"),
        "--tile",
        "64",
        "--out",
        str(tmp_path / "o"),
        "--threshold",
        "0.05",
        "--no-isolation",
        "--crops",
        str(tmp_path / "c"),
        "--chip-size",
        "32",
    ]
    assert main(base) == 0
    info = json.loads((tmp_path / "o" / "scene_scan.json").read_text())["downlink"]
    chips = sorted((tmp_path / "c").glob("scene_*.jpg"))
    assert (
        info["chips"] == len(chips) == json.loads((tmp_path / "o" / "scene_scan.json").read_text())["detections"] >= 2
    )
    sent = sum(p.stat().st_size for p in chips) + (tmp_path / "c" / "scene_downlink.geojson").stat().st_size
    assert info["bytes"] == sent and info["fraction_of_file"] == pytest.approx(
        sent / (tmp_path / "scene.png").stat().st_size
    )
    assert all(Image.open(p).size == (32, 32) for p in chips)
    budget = (sent - chips[-1].stat().st_size) / 1000  # one chip fewer fits
    assert main(base + ["--downlink-budget-kb", f"{budget:.3f}"]) == 0
    left = sorted((tmp_path / "c").glob("scene_*.jpg"))
    assert (
        len(left) < len(chips)
        and sum(p.stat().st_size for p in left) + (tmp_path / "c" / "scene_downlink.geojson").stat().st_size
        <= budget * 1000
    )
    assert "downlink:" in capsys.readouterr().out
    # a budget with nowhere to put the chips: one line, non-zero
    assert main(base[:-4] + ["--downlink-budget-kb", "10"]) == 2
    assert "needs --crops" in capsys.readouterr().err
    assert main(base + ["--downlink-budget-kb", "0.05"]) == 2
    err = capsys.readouterr().err
    assert "scene.png: downlink budget 50 bytes is below the empty manifest" in err and "Traceback" not in err
