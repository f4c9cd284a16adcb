"""The isolation check: closed forms for the statistics, drawn scenes for the verdicts, and the scan end to end."""

import threading
from pathlib import Path

import numpy as np
import pytest

from shipcam.runtime import Detector
from shipcam.runtime.boxes import Box
from shipcam.runtime.detections import Detection, DetectionRule
from shipcam.runtime.engines.base import Engine
from shipcam.runtime.isolation import Isolation, isolation_at, local_std, noise_floor, split_isolated
from shipcam.runtime.metadata import ModelMetadata

GSD = 3.0


def _water(h=400, w=400, seed=0, sigma=2.0):
    return (70 + np.random.default_rng(seed).normal(0, sigma, (h, w))).astype(np.float32)


def _rect(g, x0, y0, x1, y1, value=200.0):
    g[y0:y1, x0:x1] = value
    return g


def test_local_std_closed_forms():
    assert np.allclose(local_std(np.full((20, 20), 7.0)), 0.0, atol=1e-3)
    # Columns alternating 0 / 10: an interior 5 x 5 window holds 3 columns of one and 2 of the other,
    # so var = p (1 - p) 10^2 with p = 2/5, std = 10 * sqrt(6) / 5.
    stripes = np.tile(np.array([0.0, 10.0]), (20, 10))
    assert np.allclose(local_std(stripes)[5:-5, 5:-5], 10 * np.sqrt(6) / 5, atol=1e-4)
    # 16-bit products: the same contrast on a bright mean (float32 sums must not cancel it away) ...
    assert np.allclose(local_std(stripes + 40000.0)[5:-5, 5:-5], 10 * np.sqrt(6) / 5, atol=1e-3)
    # ... and on uint8, the exact integer path.
    assert np.allclose(local_std(stripes.astype(np.uint8))[5:-5, 5:-5], 10 * np.sqrt(6) / 5, atol=1e-4)


def test_noise_floor_scales_with_the_noise_and_ignores_a_city_half():
    quiet, loud = noise_floor(_water(sigma=2.0), GSD), noise_floor(_water(sigma=4.0), GSD)
    assert loud / quiet == pytest.approx(2.0, rel=0.05)
    # The 10th percentile of a 25-sample std of N(0, 2) noise lies below 2 (chi distribution, 24 dof).
    assert 1.2 < quiet < 2.0
    half_city = _water(sigma=2.0)
    half_city[:, 200:] = np.random.default_rng(1).uniform(0, 255, (400, 200))
    assert noise_floor(half_city, GSD) == pytest.approx(quiet, rel=0.15)
    # At 1.5 m/px the check bins 2 x 2 pixels: independent noise averages down by 2.
    assert noise_floor(_water(800, 800, sigma=4.0), GSD / 2) == pytest.approx(quiet, rel=0.05)


@pytest.mark.parametrize("fill", [0, 255])
def test_a_no_data_margin_or_a_clipped_cloud_leaves_the_floor_and_the_verdict_alone(fill):
    """Half the scene exactly flat (no-data fill, a saturated cloud): the floor is the water's, and a ship stays a ship.

    Counted in, the flat half would put the 10th percentile at zero: every speck of noise over
    4 x half a grey level joins the sea into one object, and the ship with it.
    """
    water = np.clip(np.rint(_water(sigma=2.0)), 0, 255).astype(np.uint8)
    quiet = noise_floor(water, GSD)
    g = water.copy()
    g[:, :200] = fill
    assert noise_floor(g, GSD) == pytest.approx(quiet, rel=0.1)
    _rect(g, 260, 200, 320, 212)  # a 180 m x 36 m ship on the water half
    assert isolation_at(g, 290, 206, GSD, noise_floor(g, GSD))[0] is Isolation.ISOLATED
    assert noise_floor(np.full((300, 300, 3), fill, np.uint8), GSD) == 0.0  # nothing but fill: no noise to measure


@pytest.mark.parametrize("scale", [1, 2])
def test_verdicts_on_drawn_scenes(scale):
    """Ship at sea, breakwater, ship against a quay, a city, open water and a speck; the same at half the GSD."""
    s = scale
    g = _water(400 * s, 400 * s)
    _rect(g, 60 * s, 100 * s, 120 * s, 115 * s)  # a 180 m x 45 m ship
    _rect(g, 0, 300 * s, 400 * s, 306 * s, 150)  # a breakwater across the scene
    _rect(g, 250 * s, 40 * s, 400 * s, 60 * s, 120)  # a dull quay from the right edge ...
    _rect(g, 270 * s, 60 * s, 330 * s, 72 * s)  # ... with a bright ship moored against it
    _rect(g, 250 * s, 150 * s, 400 * s, 170 * s)  # a quay as bright as ...
    _rect(g, 270 * s, 170 * s, 330 * s, 182 * s)  # ... the ship against it
    g[350 * s : 352 * s, 200 * s : 202 * s] = 200  # a 6 m speck
    _rect(g, 195 * s, 240 * s, 205 * s, 243 * s)  # a 30 m x 9 m boat
    gsd = GSD / s
    floor = noise_floor(g, gsd)

    def at(x, y):
        return isolation_at(g, x * s, y * s, gsd, floor)

    verdict, box, centre = at(95, 110)  # a peak 5 px (15 m) off the hull's centre still finds it
    assert verdict is Isolation.ISOLATED
    assert box == (60 * s, 100 * s, 120 * s, 115 * s)  # end-exclusive, the dilation undone
    # A uniform hull's strongest contrast is its outline, whose mean is the rectangle's centre.
    assert centre == pytest.approx((90 * s, 107.5 * s), abs=0.6)
    assert at(150, 303)[0] is Isolation.ATTACHED  # 1.2 km of breakwater
    # Moored: a ship that outshines its quay is the object's strong core; one the quay matches is not told apart.
    verdict, box, _ = at(300, 66)
    assert (
        verdict is Isolation.ISOLATED
        and box[0] == 270 * s
        and box[2] == 330 * s
        and 60 * s <= box[1] <= 62 * s
        and box[3] == 72 * s
    )
    assert at(300, 176)[0] is Isolation.ATTACHED
    assert at(200, 200)[0] is Isolation.EMPTY  # calm water
    assert at(201, 351)[0] is Isolation.EMPTY  # too small for a ship
    assert at(200, 241)[0] is Isolation.EMPTY  # a boat: under the shortest ship, 40 m


def test_a_ship_beside_a_pier_is_still_isolated_and_the_nearest_object_decides():
    g = _water()
    _rect(g, 0, 200, 400, 204, 150)  # a long pier
    _rect(g, 150, 170, 210, 182)  # a ship 18 px (54 m) off it
    floor = noise_floor(g, GSD)
    assert isolation_at(g, 180, 176, GSD, floor)[0] is Isolation.ISOLATED
    assert isolation_at(g, 180, 198, GSD, floor)[0] is Isolation.ATTACHED  # nearer the pier than the hull


def test_a_ship_under_way_is_found_through_its_fading_wake():
    """A 180 m hull trailing a 1.5 km wake that fades with distance: the object runs out of any window,
    its strong core is the hull (and the wake's brightest start), and the point stays on the hull."""
    g = _water(400, 900)
    _rect(g, 100, 195, 160, 207)
    x = np.arange(160, 900)
    g[197:205, 160:] += (90 * np.exp(-(x - 160) / 150.0))[None, :].astype(np.float32)  # e-fold every 450 m
    floor = noise_floor(g, GSD)
    verdict, box, (cx, cy) = isolation_at(g, 130, 201, GSD, floor)
    assert verdict is Isolation.ISOLATED and 100 <= cx <= 160 and 195 <= cy <= 207
    assert box[0] == 100 and box[2] - box[0] <= 400 / GSD  # never longer than the longest ship


def test_a_pier_with_a_bright_end_that_leads_to_a_bright_shore_stays_attached():
    """A faint deck running 600 m from a city to a bright platform: inside the first window it looks like a
    wake behind a hull; the wider window sees the shore it leads to."""
    g = _water()
    g[:60] = np.random.default_rng(5).uniform(100, 250, (60, 400))
    _rect(g, 197, 60, 203, 260, 110)
    _rect(g, 185, 255, 215, 268, 220)
    assert isolation_at(g, 200, 262, GSD, noise_floor(g, GSD))[0] is Isolation.ATTACHED


def test_a_city_is_attached():
    g = _water()
    rng = np.random.default_rng(3)
    for y in range(0, 400, 12):  # blocks of roofs 8 px apart by 4 px streets
        for x in range(200, 400, 12):
            g[y : y + 8, x : x + 8] = rng.uniform(90, 240)
    assert isolation_at(g, 300, 200, GSD, noise_floor(g, GSD))[0] is Isolation.ATTACHED


def test_split_isolated_moves_points_to_objects_and_keeps_one_per_object():
    g = _water()
    _rect(g, 100, 100, 160, 112)
    image = np.repeat(g[..., None], 3, axis=-1).clip(0, 255).astype(np.uint8)
    dets = [
        Detection(140.0, 110.0, Box(120, 90, 170, 125, 3.0), 3.0),  # on the hull, off centre
        Detection(110.0, 104.0, Box(100, 95, 130, 115, 2.0), 2.0),  # a second peak on the same hull
        Detection(300.0, 300.0, Box(280, 280, 320, 320, 1.0), 1.0),  # open water
    ]
    kept, rejected = split_isolated(image, dets, GSD, DetectionRule())
    assert [d.score for d in kept] == [3.0] and [d.score for d in rejected] == [2.0, 1.0]
    (k,) = kept
    assert (k.x, k.y) == pytest.approx((130.0, 106.0), abs=0.6)  # the hull's centre
    assert (k.box.x0, k.box.y0, k.box.x1, k.box.y1) == (100, 90, 170, 125)  # grown to hold the hull


def test_two_peaks_on_a_ship_under_way_keep_one_detection_though_their_boxes_differ():
    """The fading core is taken from the strongest contrast near each peak: from the hull's middle and from
    its stern, one hull with its wake comes back with boxes a pixel apart and one centre (seen on a blurred
    real scene, where it made a ship's second peak a false alarm)."""
    g = _water(400, 900)
    _rect(g, 100, 195, 160, 207)
    x = np.arange(160, 900)
    g[197:205, 160:] += (90 * np.exp(-(x - 160) / 150.0))[None, :].astype(np.float32)
    image = np.repeat(g[..., None], 3, axis=-1).clip(0, 255).astype(np.uint8)
    floor = noise_floor(image, GSD)
    middle, stern = isolation_at(image, 130, 201, GSD, floor), isolation_at(image, 170, 201, GSD, floor)
    assert middle.kind is stern.kind is Isolation.ISOLATED and middle.box != stern.box  # the case this test is about
    dets = [
        Detection(130.0, 201.0, Box(120, 190, 140, 210, 3.0), 3.0),
        Detection(170.0, 201.0, Box(160, 190, 180, 210, 2.0), 2.0),
    ]
    kept, rejected = split_isolated(image, dets, GSD, DetectionRule())
    assert [d.score for d in kept] == [3.0] and [d.score for d in rejected] == [2.0]
    assert 100 <= kept[0].x <= 160  # on the hull


class PositiveEverywhere(Engine):
    """An analytic network: features = mean brightness of each 16 px block / 255, CAM = features + 2 > 0 everywhere."""

    name = "positive"

    def __init__(self):
        self.path, self.threads, self._lock = Path("<positive>"), 1, threading.Lock()
        self.input_shape = (None, None, None, 3)
        self.metadata = ModelMetadata(
            cam_weights=[1.0],
            cam_bias=2.0,
            pooling="max",
            backbone="blocks",
            feature_channels=1,
            input_scale=1 / 255,
            input_offset=0.0,
            input_size=None,
            train_size=64,
            feature_stride=16,
            gsd=GSD,
        )

    def _run(self, batch):
        n, h, w, _ = batch.shape
        f = batch[..., 0].reshape(n, h // 16, 16, w // 16, 16).mean(axis=(2, 4))[..., None]
        return {"logits": f.max(axis=(1, 2)) + 2.0, "features": f}


def test_scan_rejects_peaks_off_isolated_objects(monkeypatch):
    """A CAM positive over the whole scene: without the check a lattice of detections, with it one per ship
    (the check vetoing every peak, however sure)."""
    from shipcam.runtime import isolation

    monkeypatch.setattr(isolation, "TRUST_MARGIN", np.inf)
    g = _water(600, 600)
    _rect(g, 100, 100, 160, 114)
    _rect(g, 400, 420, 470, 436)
    image = np.repeat(g[..., None], 3, axis=-1).clip(0, 255).astype(np.uint8)
    det = Detector(PositiveEverywhere())
    loose = det.scan(image, gsd=GSD)
    det.rule = DetectionRule(threshold=det.threshold, isolation=False)
    everywhere = det.scan(image, gsd=GSD)
    assert len(everywhere.detections) > 6 and len(loose.detections) == 2
    centres = sorted((round(d.x), round(d.y)) for d in loose.detections)
    assert centres == [(130, 107), (435, 428)]
    assert len(loose.rejected) == len(everywhere.detections) - 2


def test_ships_of_the_generator_at_sea_are_isolated_and_their_boxes_match_the_masks():
    """Ground truth from train.data.synthetic's masks: calm open sea (no swell, whitecaps, glint or hard negatives), no
    wakes, no coast.
    """
    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    calm = dict(
        swell_prob=0.0, whitecap_prob=0.0, glint_prob=0.0, shallow_prob=0.0, thin_cloud_prob=0.0, confuser_prob=0.0
    )
    cfg = SceneConfig(
        size=384,
        ship_fraction=1.0,
        max_ships=3,
        moving_fraction=0.0,
        coast_prob=0.0,
        cloud_prob=0.0,
        ship_length_m=(60.0, 300.0),
        **calm,
    )
    verdicts, inside = [], []
    for i in range(6):
        scene = generate_scene(cfg, seed=3, index=i)
        g = scene.image.astype(np.float32)
        floor = noise_floor(g, GSD)
        for m in scene.masks:
            ys, xs = np.nonzero(m)
            verdict, box, _ = isolation_at(g, xs.mean(), ys.mean(), GSD, floor)
            verdicts.append(verdict)
            if box is not None:
                # the object lies on the hulls it touches (two may lie side by side) plus a pixel of shadow, never
                # beyond
                touched = [h for h in scene.masks if h[box[1] : box[3], box[0] : box[2]].any()]
                hy, hx = np.nonzero(np.any(touched, axis=0))
                inside.append(
                    box[0] >= hx.min() - 2
                    and box[1] >= hy.min() - 2
                    and box[2] <= hx.max() + 3
                    and box[3] <= hy.max() + 3
                )
        free = ~_near(scene.mask, 40)
        yy, xx = np.nonzero(free)
        pick = np.random.default_rng(i).choice(len(yy), 10, replace=False)
        assert all(isolation_at(g, xx[j], yy[j], GSD, floor)[0] is Isolation.EMPTY for j in pick)
    # Some generated hulls are faint (grey on grey-green, only a short bright part standing out) or cut by
    # the scene's edge: most, not all.
    assert len(verdicts) >= 10 and verdicts.count(Isolation.ISOLATED) >= 0.7 * len(verdicts)
    assert all(inside)


def _near(mask, r):
    """Pixels within r (Chebyshev) of the mask."""
    out = mask.copy()
    for _ in range(r):
        p = np.pad(out, 1)
        out = (
            out
            | p[:-2, 1:-1]
            | p[2:, 1:-1]
            | p[1:-1, :-2]
            | p[1:-1, 2:]
            | p[:-2, :-2]
            | p[2:, 2:]
            | p[:-2, 2:]
            | p[2:, :-2]
        )
    return out


def test_the_point_stays_on_the_hull_when_a_fainter_wake_stretches_the_box():
    g = _water()
    _rect(g, 150, 100, 190, 110)  # hull: x 150-190
    fade = np.linspace(5, 40, 70)  # a wake trailing 70 px (210 m) to the left, fading out
    g[102:108, 80:150] += fade[None, :]
    v = isolation_at(g, 170, 105, GSD, noise_floor(g, GSD))
    assert v.kind is Isolation.ISOLATED and v.box[0] < 100  # the box holds the wake ...
    assert 150 <= v.centre[0] <= 190  # ... the point stays on the hull


def test_a_peak_the_network_is_sure_of_is_kept_where_no_isolated_object_is_found(monkeypatch):
    """TRUST_MARGIN: the check vetoes peaks near the threshold; one far over it stays, at the network's point,
    unless a kept detection already lies within half the shortest ship."""
    from shipcam.runtime import isolation

    g = _water()
    _rect(g, 0, 200, 400, 206, 150)  # a breakwater across the scene: never an isolated object
    image = np.repeat(g[..., None], 3, axis=-1).clip(0, 255).astype(np.uint8)
    sure, unsure = (
        Detection(200.0, 203.0, Box(190, 195, 210, 210, 6.0), 6.0),
        Detection(100.0, 203.0, Box(90, 195, 110, 210, 2.0), 2.0),
    )
    twin = Detection(204.0, 203.0, Box(194, 195, 214, 210, 5.5), 5.5)  # a second peak on the sure one
    monkeypatch.setattr(isolation, "TRUST_MARGIN", np.inf)
    kept, rejected = split_isolated(image, [sure, twin, unsure], GSD, DetectionRule())
    assert kept == [] and len(rejected) == 3
    monkeypatch.setattr(isolation, "TRUST_MARGIN", 4.0)  # threshold 0.5: logit 0, so 6 is sure, 2 is not
    kept, rejected = split_isolated(image, [sure, twin, unsure], GSD, DetectionRule())
    assert kept == [sure] and rejected == [twin, unsure]
