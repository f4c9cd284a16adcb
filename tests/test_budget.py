"""The memory budget: bad values refused in one line, the batch it picks from its own arithmetic, the same
detections whatever the batch, peaks found band by band as on the whole map, scenes that cannot fit refused."""

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.cli import main
from shipcam.errors import ShipcamError
from shipcam.runtime import Detector
from shipcam.runtime import detections as detections_module
from shipcam.runtime.boxes import Box
from shipcam.runtime.budget import MAX_BATCH, plan_scan
from shipcam.runtime.detections import find_peaks
from shipcam.runtime.files import scan_file
from shipcam.runtime.overlay import overlay
from shipcam.runtime.scene import ArrayScene
from shipcam.train.data.synthetic import SceneConfig, generate_scene

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_fp32.onnx"


def _scene(rows=2, cols=3, size=96):
    cfg = SceneConfig(size=size, ship_fraction=1.0)
    tiles = [[generate_scene(cfg, seed=7, index=r * cols + c).image for c in range(cols)] for r in range(rows)]
    return np.concatenate([np.concatenate(row, axis=1) for row in tiles], axis=0)


@pytest.mark.parametrize("value", ["0", "-3", "abc", "nan"])
def test_a_bad_budget_is_one_line_naming_it(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["scan", str(FIXTURE), str(tmp_path / "s.png"), "--max-memory-mb", value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "usage" not in err
    assert f"--max-memory-mb: expected a positive number of MB or 'none', received '{value}'" in err


def test_the_batch_is_what_the_budget_leaves_room_for():
    det = Detector.load(FIXTURE)
    args = dict(name="s.png", shape=(4000, 4000), factor=1.0, windowed=False, tile=1024, cell=8, process_mb=100.0)
    free = plan_scan(det, max_memory_mb=None, **args)
    e = free.estimate_mb
    fixed = sum(v for k, v in e.items() if k not in ("per_more_tile", "total"))
    assert free.batch == MAX_BATCH and e["scene"] == pytest.approx(4000 * 4000 * 7 / 1e6, abs=0.1)
    for more in (0.5, 2.5, 100.0):
        budget = fixed + more * e["per_more_tile"] + 0.2
        plan = plan_scan(det, max_memory_mb=budget, **args)
        assert plan.batch == min(MAX_BATCH, 1 + math.floor(more)), more
        assert plan.estimate_mb["total"] <= budget
    assert plan_scan(det, max_memory_mb=fixed + 100 * e["per_more_tile"], batch=3, **args).batch == 3


@pytest.mark.parametrize("heatmap, copies, overlay", [("png", 1.3, 32), ("cog", 2.0, 0), ("none", 1.3, 0)])
def test_the_heatmap_written_sets_its_share(heatmap, copies, overlay):
    det = Detector.load(FIXTURE)
    e = plan_scan(det, "s.tif", (4000, 4003), 1.0, True, 1024, 8, max_memory_mb=None, heatmap=heatmap).estimate_mb
    assert e["heatmap"] == pytest.approx(500 * 501 * 4 * copies / 1e6, abs=0.05) and e["overlay"] == overlay


def test_a_scene_that_cannot_fit_one_tile_is_refused_naming_what_it_needs():
    det = Detector.load(FIXTURE)
    with pytest.raises(ShipcamError, match=r"^big\.png: a scan needs about (\d+) MB even one 128 px tile at a time"):
        plan_scan(det, "big.png", (20000, 20000), 1.0, False, 128, 8, max_memory_mb=500.0, process_mb=100.0)
    with pytest.raises(ShipcamError, match="convert it to a tiled GeoTIFF"):
        plan_scan(det, "big.png", (20000, 20000), 1.0, False, 128, 8, max_memory_mb=500.0, process_mb=100.0)


def test_a_refusal_names_a_budget_that_runs_the_scene():
    det = Detector.load(FIXTURE)
    args = ("big.tif", (20000, 20000), 1.0, True, 128, 8)
    with pytest.raises(ShipcamError, match=r"--max-memory-mb (\d+) or more would run it$") as e:
        plan_scan(det, *args, max_memory_mb=150.0, process_mb=100.0, heatmap="cog")
    enough = float(re.search(r"--max-memory-mb (\d+) or more", str(e.value)).group(1))
    assert plan_scan(det, *args, max_memory_mb=enough, process_mb=100.0, heatmap="cog").batch >= 1
    with pytest.raises(ShipcamError):
        plan_scan(det, *args, max_memory_mb=enough - 10, process_mb=100.0, heatmap="cog")


def test_a_resample_that_would_not_fit_whole_goes_window_by_window():
    det = Detector.load(FIXTURE)
    args = dict(name="s.png", shape=(2000, 2000), factor=2.0, windowed=False, tile=128, cell=8, process_mb=100.0)
    whole = plan_scan(det, max_memory_mb=None, **args)
    assert not whole.window_resample and whole.estimate_mb["resample"] == pytest.approx(
        (2000 * 2000 + 4000 * 2000 + 4000 * 4000) * 12 / 1e6, abs=0.1
    )
    tight = plan_scan(det, max_memory_mb=whole.estimate_mb["total"] - whole.estimate_mb["resample"] + 1, **args)
    assert tight.window_resample and tight.estimate_mb["resample"] == 0


def test_resampling_window_by_window_finds_the_whole_resample_detections():
    det = Detector.load(FIXTURE)
    det.rule = dataclasses.replace(det.rule, threshold=0.05, isolation=False, confirm_views="none")
    image = _scene()
    whole = det.scan(image, tile=128, gsd=1.5)  # a 1.5 m scene for a 3 m model: halved
    windows = det.scan(ArrayScene(image), tile=128, gsd=1.5)
    assert len(whole.detections) >= 2 and len(windows.detections) == len(whole.detections)
    for a, b in zip(whole.detections, windows.detections):
        assert abs(a.x - b.x) <= 2 and abs(a.y - b.y) <= 2 and a.score == pytest.approx(b.score, abs=0.05)


def test_a_smaller_batch_gives_the_unbounded_detections(tmp_path):
    Image.fromarray(_scene()).save(tmp_path / "s.png")
    common = dict(tile=128, gsd=3.0, rule={"threshold": 0.05}, progress=False)
    free = scan_file(str(FIXTURE), str(tmp_path / "s.png"), str(tmp_path / "a"), max_memory_mb=None, batch=8, **common)
    one = scan_file(str(FIXTURE), str(tmp_path / "s.png"), str(tmp_path / "b"), batch=1, **common)
    assert free["memory"]["batch"] == 8 and one["memory"]["batch"] == 1
    a, b = (json.loads((tmp_path / d / "s_detections.geojson").read_text()) for d in "ab")
    assert len(a["features"]) > 0 and a["features"] == b["features"]


def _local_maxima_by_hand(heat, min_score):
    h, w = heat.shape
    out = []
    for y in range(h):
        for x in range(w):
            around = heat[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
            if heat[y, x] >= min_score and heat[y, x] >= around.max():
                out.append(y * w + x)
    return out


def test_peaks_found_band_by_band_are_the_whole_map_peaks(monkeypatch):
    rng = np.random.default_rng(3)
    heat = rng.integers(-3, 4, (37, 23)).astype(np.float32)  # coarse values: plateaus across band edges
    whole = find_peaks(heat, 0.0, 1.5)
    monkeypatch.setattr(detections_module, "PEAK_BAND", 4)
    assert find_peaks(heat, 0.0, 1.5) == whole
    cand = detections_module._candidates(heat, 0.0)
    assert cand.tolist() == _local_maxima_by_hand(heat, 0.0)


def test_a_box_under_a_pixel_is_drawn_as_a_dot():
    out = overlay(
        np.zeros((20, 20, 3), np.uint8),
        np.zeros((20, 20), np.float32),
        [Box(5.2, 6.1, 5.6, 6.5, 1.0)],
        alpha=0.5,
        vmin=0.0,
        vmax=1.0,
    )
    assert tuple(out[6, 5]) == (255, 255, 255)


def test_the_memory_benchmark_compares_with_an_unbounded_run(tmp_path):
    from shipcam.benchmarks import scan_memory

    Image.fromarray(_scene()).save(tmp_path / "s.png")
    work = tmp_path / "work"
    assert scan_memory.main([str(FIXTURE), str(tmp_path / "s.png"), "--work", str(work), "--gsd", "3"]) == 0
    (row,) = json.loads((work / "scan_memory.json").read_text())["rows"]
    assert row["identical"] and row["batch"] >= 1 and 0 < row["peak_rss_mb"] and row["budget_mb"] == 400


def test_block_reductions_are_numpys_reshaped_ones():
    from shipcam.runtime.resize import block_max, block_mean

    rng = np.random.default_rng(0)
    heat = rng.normal(size=(23, 17)).astype(np.float32)
    np.testing.assert_array_equal(block_max(heat, 4), heat[:20, :16].reshape(5, 4, 4, 4).max(axis=(1, 3)))
    image = rng.integers(0, 256, (23, 17, 3), dtype=np.uint8)
    ref = image[:21, :15].reshape(7, 3, 5, 3, 3).astype(int).sum(axis=(1, 3)) // 9
    np.testing.assert_array_equal(block_mean(image, 3), ref)
