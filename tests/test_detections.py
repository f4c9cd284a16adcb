"""Detections as CAM peaks, the antialiased resize and the real-scene matching: closed forms and brute force."""

from pathlib import Path

import numpy as np
import pytest

from shipcam.runtime.detections import DetectionRule, detect, find_peaks
from shipcam.runtime.labels import SceneLabel, match_detections, read_labels
from shipcam.runtime.maths import logit, sigmoid
from shipcam.runtime.resize import resize_antialiased

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"
LABELS = Path(__file__).resolve().parents[1] / "labels" / "realdata.csv"


def _brute_peaks(heat, min_score, r):
    """Greedy NMS written the slow, obvious way."""
    h, w = heat.shape
    pad = np.pad(heat, 1, constant_values=-np.inf)
    cands = [
        (heat[y, x], y, x)
        for y in range(h)
        for x in range(w)
        if heat[y, x] >= min_score and heat[y, x] >= pad[y : y + 3, x : x + 3].max()
    ]
    cands.sort(key=lambda t: (-t[0], t[1] * w + t[2]))
    kept = []
    for s, y, x in cands:
        if all((y - ky) ** 2 + (x - kx) ** 2 > r * r for ky, kx, _ in kept):
            kept.append((y, x, float(s)))
    return kept


def test_peaks_match_brute_force_nms(rng):
    for trial in range(5):
        heat = rng.normal(size=(23, 31)).astype(np.float32)
        r = [1.5, 3.0, 4.2, 7.0, 0.5][trial]
        assert find_peaks(heat, 0.3, r) == _brute_peaks(heat, 0.3, r)


def test_positive_everywhere_gives_bounded_detections():
    """A CAM above threshold over the whole scene (the all-layers model on a city) must not become one scene-sized
    box."""
    H, W, cell, gsd = 1776, 2824, 8, 3.0
    heat = np.full((H // cell, W // cell), 2.5, np.float32)
    rule = DetectionRule(nms_radius_m=150, max_length_m=400)
    found = detect(heat, cell, gsd, rule, (H, W))
    longest = rule.max_length_m / gsd
    assert len(found) > 1
    for d in found:
        assert d.box.x1 - d.box.x0 <= longest and d.box.y1 - d.box.y0 <= longest
    # plateau peaks form a lattice at least one NMS radius apart
    pts = np.array([[d.x, d.y] for d in found])
    gaps = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1)) + np.eye(len(pts)) * 1e9
    assert gaps.min() >= rule.nms_radius_m / gsd - cell


def test_box_grows_to_half_the_peak_height_over_the_threshold():
    heat = np.full((40, 40), -3.0, np.float32)
    heat[10:14, 20:30] = 2.0  # a ship-shaped warm region, 4 x 10 cells
    heat[12, 25] = 4.0
    (d,) = detect(heat, 8, 3.0, DetectionRule())  # level = BOX_LEVEL 0.5 * 4 = 2: the region, not beyond
    assert (d.box.x0, d.box.y0, d.box.x1, d.box.y1) == (160, 80, 240, 112)
    assert (d.x, d.y) == (25.5 * 8, 12.5 * 8) and d.score == pytest.approx(4.0)
    assert d.probability == pytest.approx(1 / (1 + np.exp(-4.0)))


def test_threshold_and_sigmoid_closed_forms():
    assert logit(0.5) == 0.0 and sigmoid(logit(0.8)) == pytest.approx(0.8)
    assert sigmoid(-800.0) == pytest.approx(0.0) and sigmoid(800.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="received 1.0"):
        logit(1.0)
    heat = np.zeros((10, 10), np.float32)
    heat[5, 5] = logit(0.6)
    assert len(detect(heat, 8, 3.0, DetectionRule(threshold=0.55))) == 1
    assert detect(heat, 8, 3.0, DetectionRule(threshold=0.65)) == []
    with pytest.raises(ValueError, match="received 1.5"):
        DetectionRule(threshold=1.5)
    with pytest.raises(ValueError, match="max_length_m must be longer than the shortest ship .* received 30"):
        DetectionRule(max_length_m=30.0)


def test_antialiased_resize_matches_tensorflow(rng):
    tf = pytest.importorskip("tensorflow")
    img = rng.uniform(0, 255, (97, 130, 3)).astype(np.float32)
    for h, w in [(31, 40), (48, 65), (97, 130), (150, 200), (10, 131)]:
        ref = tf.image.resize(img, (h, w), method="bilinear", antialias=True).numpy()
        # float32 summation order, 2e-5 of the range
        np.testing.assert_allclose(resize_antialiased(img, h, w), ref, atol=5e-3)


def test_antialiased_resize_of_a_constant_is_constant_and_box_averages():
    assert np.allclose(resize_antialiased(np.full((50, 70), 7.0), 13, 9), 7.0)
    # halving a 2-periodic stripe pattern averages it (a plain bilinear would alias it)
    stripes = np.tile([0.0, 100.0], 50)[None].repeat(4, 0)
    assert np.allclose(resize_antialiased(stripes, 4, 50)[:, 2:-2], 50.0, atol=1e-3)


def test_matching_counts_hits_duplicates_ignores_and_false_alarms():
    labels = [SceneLabel(100, 100, 240, "ship"), SceneLabel(400, 100, 90, "ship"), SceneLabel(700, 700, 300, "ignore")]
    pts = np.array([[110, 95], [105, 100], [420, 100], [690, 710], [300, 300]])
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    m = match_detections(pts, scores, labels, gsd=3.0)
    # ship 1: R = 120 m / 3 = 40 px, hit at 11 px; the second detection on it is a duplicate (false alarm);
    # ship 2: R = max(60, 45) m = 20 px, the detection at 20 px counts; near the ignore: neither; far: false alarm
    assert m.status.tolist() == [1, -1, 1, 0, -1] and m.found.tolist() == [True, True]
    # strongest first: the weaker detection near ship 1 is the duplicate whatever the input order
    m2 = match_detections(pts[::-1], scores[::-1], labels, gsd=3.0)
    assert m2.status.tolist() == [-1, 0, 1, -1, 1]
    assert match_detections(pts, scores, labels, gsd=3.0, radius_m=15).tp == 1  # 5 px radius: only the 5 px hit


def test_labels_file_reads_and_names_bad_rows(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("scene,x,y,length_m,label,note\na.png,1,2,30,ship,x\na.png,5,5,10,boat,y\n")
    with pytest.raises(Exception, match=r"line 3.*'boat'"):
        read_labels(p)
    p.write_text("scene,x,y\n")
    with pytest.raises(Exception, match="missing column"):
        read_labels(p)


@pytest.mark.skipif(not (REAL / "scene_1.png").exists(), reason="../shared/realdata is not present")
def test_committed_labels_cover_both_real_scenes():
    from PIL import Image

    labels, _ = read_labels(LABELS)
    assert set(labels) == {"scene_1.png", "scene_2.png"}
    for name, labs in labels.items():
        w, h = Image.open(REAL / name).size
        ships = [lab for lab in labs if lab.label == "ship"]
        assert len(ships) >= 5
        assert all(0 <= lab.x < w and 0 <= lab.y < h for lab in labs)
