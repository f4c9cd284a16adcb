"""CAM, resizing, boxes and metrics against closed forms and independent references."""

from collections import deque

import numpy as np
import pytest

from shipcam.runtime.boxes import boxes_from_cam, label_components
from shipcam.runtime.cam import class_activation_map, normalize_cam, resize_bilinear
from shipcam.runtime.metrics import binary_report, box_iou, cam_mask, mask_iou, pearson, pointing_game_hit, roc_auc


def test_cam_against_the_gap_and_gmp_logits(rng):
    feats = rng.normal(size=(4, 5, 6, 32)).astype(np.float32)
    w, b = rng.normal(size=32).astype(np.float32), 0.7
    cam = class_activation_map(feats, w, b)
    logit_gap = feats.mean(axis=(1, 2)) @ w + b
    np.testing.assert_allclose(cam.mean(axis=(1, 2)), logit_gap, rtol=1e-5)
    # For GMP the logit is the dense layer on the channel-wise maxima, not the CAM's maximum. With
    # non-negative weights no CAM cell exceeds it (each channel is at most its maximum), and the two are
    # equal when one cell holds every channel's maximum.
    wp = np.abs(w)
    logit_gmp = feats.max(axis=(1, 2)) @ wp + b
    assert (class_activation_map(feats, wp, b).max(axis=(1, 2)) <= logit_gmp + 1e-5).all()
    assert (
        class_activation_map(feats, wp, b).max(axis=(1, 2)) < logit_gmp - 1e-3
    ).any()  # random features: strictly below
    peaked = feats.copy()
    peaked[:, 2, 1] = feats.max(axis=(1, 2))
    np.testing.assert_allclose(class_activation_map(peaked, wp, b).max(axis=(1, 2)), logit_gmp, rtol=1e-5)


def test_cam_rejects_mismatched_channels():
    with pytest.raises(ValueError, match="channels"):
        class_activation_map(np.zeros((2, 2, 8)), np.zeros(7))


def test_resize_matches_tensorflow_bilinear(rng):
    tf = pytest.importorskip("tensorflow")
    x = rng.normal(size=(7, 5, 3)).astype(np.float32)
    for h, w in ((224, 160), (3, 2), (7, 5), (13, 29)):
        ref = tf.image.resize(x[None], (h, w), method="bilinear", antialias=False).numpy()[0]
        np.testing.assert_allclose(resize_bilinear(x, h, w), ref, atol=1e-5)
    np.testing.assert_allclose(
        resize_bilinear(x[..., 0], 14, 10), tf.image.resize(x[None, ..., :1], (14, 10)).numpy()[0, ..., 0], atol=1e-5
    )


def test_helpers_do_not_mutate_inputs(rng):
    cam = rng.normal(size=(6, 6)).astype(np.float32)
    before = cam.copy()
    resize_bilinear(cam, 30, 30), normalize_cam(cam), boxes_from_cam(cam, (96, 96)), cam_mask(cam)
    np.testing.assert_array_equal(cam, before)


def _bfs_labels(mask):
    """Independent reference: breadth-first flood fill."""
    h, w = mask.shape
    labels, n = np.zeros((h, w), int), 0
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not labels[y, x]:
                n += 1
                q = deque([(y, x)])
                labels[y, x] = n
                while q:
                    cy, cx = q.popleft()
                    for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                            labels[ny, nx] = n
                            q.append((ny, nx))
    return labels, n


def _snake(h=31, w=33):
    """One component that winds through every row: runs join only at alternating ends."""
    mask = np.zeros((h, w), bool)
    mask[::2] = True
    mask[1::4, -1] = mask[3::4, 0] = True
    return mask


@pytest.mark.parametrize(
    "mask",
    [np.random.default_rng(int(d * 10)).random((37, 41)) < d for d in (0.0, 0.3, 0.5, 0.6, 1.0)]
    + [_snake(), ~_snake(), np.eye(9, dtype=bool)],
    ids=["d0", "d0.3", "d0.5", "d0.6", "d1", "snake", "not-snake", "diagonal"],
)
def test_components_match_flood_fill(mask):
    ours, n = label_components(mask)
    ref, n_ref = _bfs_labels(mask)
    assert n == n_ref
    np.testing.assert_array_equal(ours, ref)  # same labels, numbered in raster order of first pixel


def test_boxes_find_two_separate_blobs_with_their_peaks():
    cam = np.full((8, 8), -2.0, np.float32)
    cam[1, 1], cam[6, 5] = 5.0, 3.0
    boxes = boxes_from_cam(cam, (256, 256), fraction=0.5)
    assert len(boxes) == 2 and boxes[0].score == pytest.approx(5.0) and boxes[1].score == pytest.approx(3.0)

    def cx(b):
        return (b.x0 + b.x1) / 2

    def cy(b):
        return (b.y0 + b.y1) / 2

    # cell (row 1, col 1) is centred at pixel 48 (32 px per cell); (6, 5) at (x=176, y=208)
    assert abs(cx(boxes[0]) - 48) <= 8 and abs(cy(boxes[0]) - 48) <= 8
    assert abs(cx(boxes[1]) - 176) <= 8 and abs(cy(boxes[1]) - 208) <= 8
    assert boxes_from_cam(np.zeros((4, 4)), (64, 64)) == []
    assert len(boxes_from_cam(cam, (256, 256), fraction=0.5, min_score=4.0)) == 1


def test_auc_against_pair_counting(rng):
    y = rng.random(200) < 0.3
    s = np.round(rng.normal(size=200) + y, 1)  # rounding makes ties
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert roc_auc(y, s) == pytest.approx(pairs)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_iou_pointing_game_and_report_hand_cases():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    a = np.zeros((4, 4), bool)
    a[:2, :2] = True
    b = np.zeros((4, 4), bool)
    b[1:3, 1:3] = True
    assert mask_iou(a, b) == pytest.approx(1 / 7)
    cam = np.zeros((4, 4))
    cam[3, 0] = 1
    assert not pointing_game_hit(cam, a) and pointing_game_hit(cam, a, tolerance=2)
    cam[0, 1] = 2
    assert pointing_game_hit(cam, a)
    r = binary_report([1, 1, 0, 0, 0], [0.9, 0.4, 0.6, 0.1, 0.2])
    assert (r["tp"], r["fn"], r["fp"], r["tn"]) == (1, 1, 1, 2)
    assert r["accuracy"] == pytest.approx(0.6) and r["majority_baseline"] == pytest.approx(0.6)
    assert (
        r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(0.5) and r["auc"] == pytest.approx(5 / 6)
    )
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0) and pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert mask_iou(cam_mask(np.array([[0.0, 1.0], [0.1, 0.3]]), 0.2), np.array([[0, 1], [0, 1]], bool)) == 1.0
