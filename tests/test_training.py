"""Training toolkit on tiny settings: sanity check, LR range test, resume. Seconds each, not speed tests."""

import csv
import json

import numpy as np
import pytest

from shipcam.train.backbones import get_backbone
from shipcam.train.data.pipeline import class_weights, make_dataset
from shipcam.train.data.sources import load_dataset
from shipcam.train.model import build_classifier
from shipcam.train.sanity import SanityCheckError, overfit_one_batch
from shipcam.train.trainer import TrainConfig, load_config, prepare_data, train


@pytest.fixture(scope="module")
def batch(synthetic_dir):
    samples = load_dataset(synthetic_dir, show_progress=False)
    pos, neg = np.flatnonzero(samples.labels == 1)[:4], np.flatnonzero(samples.labels == 0)[:4]
    x, y = next(
        iter(make_dataset(samples.subset(np.r_[pos, neg]), get_backbone("mobilenet_v2"), 64, 8, training=False))
    )
    return x.numpy(), y.numpy()


def test_pipeline_preprocesses_like_the_backbone(synthetic_dir):
    from shipcam.runtime.image import read_image

    samples = load_dataset(synthetic_dir, show_progress=False).subset([0, 1])
    x, y = next(iter(make_dataset(samples, get_backbone("mobilenet_v2"), 64, 2, training=False)))
    expected = read_image(samples.paths[0]).astype(np.float32) / 127.5 - 1.0  # MobileNetV2 "tf" mode
    np.testing.assert_allclose(x.numpy()[0], expected, atol=1e-5)
    np.testing.assert_array_equal(y.numpy()[:, 0], samples.labels.astype(np.float32))


def test_class_weights_balance_the_classes():
    w = class_weights(np.array([0] * 78 + [1] * 22))
    assert w[0] * 78 == pytest.approx(w[1] * 22) and w[0] * 78 + w[1] * 22 == pytest.approx(100)
    with pytest.raises(ValueError, match="both classes"):
        class_weights(np.zeros(5))


def test_sanity_check_passes_with_logit_loss(batch):
    model = build_classifier("mobilenet_v2", alpha=0.35, weights=None)
    report = overfit_one_batch(model, *batch, steps=40, learning_rate=2e-3)
    assert report.passed and report.final_loss < 0.1 * report.initial_loss and report.batch_accuracy == 1.0


def test_sanity_check_catches_the_blogs_probability_loss_on_logits(batch):
    import keras

    model = build_classifier("mobilenet_v2", alpha=0.35, weights=None)
    broken = keras.losses.BinaryCrossentropy(from_logits=False)  # the model outputs logits
    with pytest.raises(SanityCheckError, match="from_logits=True"):
        overfit_one_batch(model, *batch, loss=broken, steps=40, learning_rate=2e-3)


def test_lr_range_test_writes_curve_and_suggestion(synthetic_dir, tmp_path):
    from shipcam.train.lr_find import lr_range_test

    samples = load_dataset(synthetic_dir, show_progress=False)
    ds = make_dataset(samples, get_backbone("mobilenet_v2"), 64, 8, training=True)
    model = build_classifier("mobilenet_v2", alpha=0.35, weights=None)
    result = lr_range_test(model, ds, tmp_path, start_lr=1e-5, end_lr=10.0, num_steps=30, verbose=0)
    saved = json.loads((tmp_path / "lr_finder.json").read_text())
    # the file is the run
    assert saved["suggested_lr"] == result["suggested_lr"] and saved["lrs"] == pytest.approx(result["lrs"])
    lrs = np.array(saved["lrs"])
    # the geometric sweep's closed form, one rate per step actually taken
    np.testing.assert_allclose(lrs, 1e-5 * 1e6 ** (np.arange(len(lrs)) / 29), rtol=1e-6)
    # Adam at rates up to 10 blows MobileNetV2 up: the test stops early, and suggests a rate it saw before
    assert saved["diverged"] and 12 <= len(lrs) < 30 and saved["suggested_lr"] in saved["lrs"][:-5]
    assert (tmp_path / "lr_finder.png").stat().st_size > 5000


def _history(run):
    with open(run / "history.csv") as f:
        return [(r["phase"], int(r["epoch"])) for r in csv.DictReader(f)]


def test_interrupted_training_resumes_from_the_saved_epoch(synthetic_dir, tmp_path):
    import keras

    class StopAfterEpoch(keras.callbacks.Callback):  # Ctrl-C after an epoch, deterministically
        def __init__(self, epoch):
            super().__init__()
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 >= self.epoch:
                raise KeyboardInterrupt(f"stopped after epoch {epoch + 1}")

    run = tmp_path / "run"
    config = TrainConfig(
        run_dir=str(run),
        data=str(synthetic_dir),
        weights=None,
        size=64,
        batch_size=8,
        val_fraction=0.25,
        scratch_epochs=4,
        steps_per_epoch=2,
        patience=10,
        verbose=0,
        calibration_scenes=2,
    )
    result = train(config, extra_callbacks=[StopAfterEpoch(2)], show_progress=False)
    assert result["interrupted"]
    assert _history(run) == [("scratch", 1), ("scratch", 2)]
    assert (run / "best.keras").exists() and not (run / "metrics.json").exists()

    metrics = train(load_config(run), resume=True, show_progress=False)
    # Epochs 1-2 are not repeated: the run continues at epoch 3 and ends at 4.
    assert _history(run) == [("scratch", 1), ("scratch", 2), ("scratch", 3), ("scratch", 4)]
    # The majority baseline of a stratified 25% split, from the dataset's labels alone: each class sends
    # round(25%) of its images to validation, whatever the shuffle.
    labels = load_dataset(synthetic_dir, show_progress=False).labels
    n_val = [round(int(np.sum(labels == c)) * 0.25) for c in (0, 1)]
    assert metrics["n_val"] == sum(n_val) and metrics["majority_baseline"] == pytest.approx(max(n_val) / sum(n_val))
    assert 0.0 <= metrics["auc"] <= 1.0
    assert (run / "curves.png").exists() and json.loads((run / "config.json").read_text())["size"] == 64
    # The saved threshold is the calibrated one, and export metadata reads it from the file.
    from shipcam.train.engine import KerasEngine

    cal = metrics["threshold"]
    assert 0.5 <= cal["threshold"] < 1.0 and cal["synthetic_fa_per_mpx"] <= 1.0
    assert KerasEngine(run / "best.keras").metadata.threshold == pytest.approx(cal["threshold"])


def test_two_phases_with_frozen_then_unfrozen_backbone(synthetic_dir, tmp_path, imagenet_weights):
    run = tmp_path / "run2"
    config = TrainConfig(
        run_dir=str(run),
        data=str(synthetic_dir),
        weights=str(imagenet_weights),
        alpha=1.0,
        size=64,
        batch_size=8,
        head_epochs=1,
        finetune_epochs=1,
        finetune_layers=10,
        steps_per_epoch=2,
        verbose=0,
        target_fa=None,
    )
    train(config, show_progress=False)
    assert [p for p, _ in _history(run)] == ["head", "finetune"]
    assert (run / "head.keras").exists() and (run / "best.keras").exists()
    state = json.loads((run / "state.json").read_text())
    assert state["done"] == ["head", "finetune"]


def test_training_gsd_comes_from_the_generated_datasets_record(tmp_path):
    """Generated scenes use the Airbus layout; their GSD is what they were drawn at, not Airbus' 1.5 m/px.

    A model trained on 3 m/px scenes recorded as 1.5 m/px would make every scan upsample real scenes 2x
    (docs/decisions/019-demo-imagenet-224-px-at-1-5-m.md).
    """
    import shutil

    from shipcam.train.data.synthetic import SceneConfig
    from shipcam.train.data.writer import write_synthetic_dataset

    for gsd in (3.0, 1.5):
        data = write_synthetic_dataset(
            tmp_path / f"g{gsd}", 6, SceneConfig(size=64, ship_fraction=0.5, gsd=gsd), seed=1, show_progress=False
        )
        config = TrainConfig(run_dir=str(tmp_path / "run"), data=str(data))
        prepare_data(config, show_progress=False)
        assert config.gsd == gsd
    airbus = tmp_path / "airbus"  # the same files without the generator's record: a real Airbus download
    shutil.copytree(tmp_path / "g3.0", airbus)
    (airbus / "shipcam_dataset.json").unlink()
    config = TrainConfig(run_dir=str(tmp_path / "run"), data=str(airbus))
    prepare_data(config, show_progress=False)
    assert config.gsd == 1.5
    explicit = TrainConfig(run_dir=str(tmp_path / "run"), data=str(tmp_path / "g3.0"), gsd=0.5)
    prepare_data(explicit, show_progress=False)
    assert explicit.gsd == 0.5


def test_existing_run_is_not_overwritten(tmp_path):
    from shipcam.errors import ShipcamError

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ShipcamError, match="--resume"):
        train(TrainConfig(run_dir=str(tmp_path), weights=None))


def test_real_val_logs_real_f1_and_selects_on_it(synthetic_dir, tmp_path):
    """--real-val logs the real-scene score each epoch; --select real-f1 keeps the epoch that scored best,
    and the saved file scores exactly that when evaluated afresh (as eval-scenes does)."""
    from PIL import Image

    from shipcam.runtime import Detector, load_scenes, score_scenes
    from shipcam.train.data.synthetic import SceneConfig, generate_scene
    from shipcam.train.engine import KerasEngine

    scene = generate_scene(SceneConfig(size=192, ship_fraction=1.0, max_ships=3), seed=1, index=0)
    Image.fromarray(scene.image).save(tmp_path / "real.png")
    rows = ["scene,x,y,length_m,label,note"]
    for m in scene.masks:
        yy, xx = np.nonzero(m)
        rows.append(
            f"real.png,{xx.mean() + 0.5:.1f},{yy.mean() + 0.5:.1f},{3.0 * max(np.ptp(xx), np.ptp(yy)):.0f},ship,"
        )
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")

    run = tmp_path / "run"
    config = TrainConfig(
        run_dir=str(run),
        data=str(synthetic_dir),
        weights=None,
        size=64,
        batch_size=8,
        val_fraction=0.25,
        scratch_epochs=3,
        steps_per_epoch=2,
        patience=10,
        verbose=0,
        real_val=[str(tmp_path / "real.png")],
        real_labels=str(tmp_path / "labels.csv"),
        select="real_f1",
        target_fa=None,
        scene_val=2,
    )
    train(config, show_progress=False)
    with open(run / "history.csv") as f:
        hist = list(csv.DictReader(f))
    assert len(hist) == 3 and all("real_f1" in h and "real_fa_mpx" in h and "scene_recall_at_fa" in h for h in hist)
    assert all(0.0 <= float(h["scene_recall_at_fa"]) <= 1.0 for h in hist)
    keys = [(float(h["real_f1"]), float(h["val_auc"])) for h in hist]
    best = int(np.argmax([k[0] + 1e-9 * k[1] for k in keys]))  # ties on F1 go to val AUC
    state = json.loads((run / "state.json").read_text())
    assert state["best_epoch"]["epoch"] == best + 1 and state["best_monitor"] == "real_f1"

    scenes, _ = load_scenes([tmp_path / "real.png"], tmp_path / "labels.csv")
    again = score_scenes(Detector(KerasEngine(run / "best.keras")), scenes)["total"]
    assert again["f1"] == pytest.approx(keys[best][0], abs=1e-6)


def test_training_with_labelled_scenes_mixes_their_chips_and_mines_its_own_false_alarms(synthetic_dir, tmp_path):
    """--scenes: chips of the scene join the synthetic training set at --real-ratio (validation stays
    synthetic), a mining phase scans the scene with the model as it stands, adds windows around its
    strongest peaks away from every label as negatives, and trains on; the exported range is recorded."""
    from PIL import Image

    from shipcam.train.data.sources import load_dataset
    from shipcam.train.data.synthetic import SceneConfig, generate_scene
    from shipcam.train.engine import KerasEngine

    scene = generate_scene(
        SceneConfig(size=320, ship_fraction=1.0, max_ships=3, ship_length_m=(120.0, 250.0)), seed=2, index=1
    )
    Image.fromarray(scene.image).save(tmp_path / "scene.png")
    rows = ["scene,x,y,length_m,label,note"]
    for m in scene.masks:
        yy, xx = np.nonzero(m)
        rows.append(
            f"scene.png,{xx.mean() + 0.5:.1f},{yy.mean() + 0.5:.1f},{3.0 * max(np.ptp(xx), np.ptp(yy)):.0f},ship,"
        )
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")

    run = tmp_path / "run"
    config = TrainConfig(
        run_dir=str(run),
        data=str(synthetic_dir),
        weights=None,
        size=64,
        batch_size=8,
        val_fraction=0.25,
        scratch_epochs=1,
        steps_per_epoch=2,
        verbose=0,
        target_fa=None,
        gsd_range=[1.5, 3.0],
        scenes=[str(tmp_path / "scene.png")],
        real_labels=str(tmp_path / "labels.csv"),
        real_ratio=0.5,
        mining_rounds=1,
        mining_epochs=1,
    )
    metrics = train(config, show_progress=False)
    chips = load_dataset(run / "real_chips", show_progress=False)
    n_synthetic_train = (
        metrics["n_train"] - len(chips) - len(load_dataset(run / "real_chips" / "mine1", show_progress=False))
    )
    # --real-ratio 0.5: as many real chips as synthetic images
    assert len(chips) == pytest.approx(n_synthetic_train, rel=0.15)
    assert 0.3 < chips.ship_fraction < 0.5 and metrics["n_val"] == 12  # validation: the synthetic split alone
    mined = load_dataset(run / "real_chips" / "mine1", show_progress=False)
    assert len(mined) > 0 and mined.labels.sum() == 0
    with open(run / "history.csv") as f:
        assert [h["phase"] for h in csv.DictReader(f)] == ["scratch", "mine1"]
    assert KerasEngine(run / "best.keras").metadata.gsd_range == [1.5, 3.0]


def test_real_f1_selection_needs_scenes():
    with pytest.raises(ValueError, match="real_val"):
        TrainConfig(weights=None, select="real_f1")
    with pytest.raises(ValueError, match="select must be one of"):
        TrainConfig(weights=None, select="f1")


def test_threshold_for_a_false_alarm_rate_closed_form():
    from shipcam.train.threshold import threshold_for_fa_rate

    pr = [  # a sweep, strongest first
        {"threshold": 0.95, "fa_per_mpx": 0.0},
        {"threshold": 0.80, "fa_per_mpx": 0.5},
        {"threshold": 0.70, "fa_per_mpx": 1.0},
        {"threshold": 0.40, "fa_per_mpx": 3.0},
    ]
    assert threshold_for_fa_rate(pr, 1.0) == 0.70  # the lowest that stays at the target
    assert threshold_for_fa_rate(pr, 0.2) == 0.95
    assert threshold_for_fa_rate(pr, 10.0) == 0.5  # never below the floor
    too_noisy = [{"threshold": 0.9, "fa_per_mpx": 2.0}]
    assert 0.9 < threshold_for_fa_rate(too_noisy, 1.0) < 0.9 + 1e-12  # just above the strongest peak
    with pytest.raises(ValueError, match="received -1"):
        threshold_for_fa_rate(pr, -1)


def test_synthetic_calibration_scenes_call_ships_by_metres_not_pixels():
    """The hand labels' rule (hulls of ~45 m or more are ships, smaller boats `ignore`) at any GSD.

    At 1.5 m/px a 15 px rule would call 22-45 m boats ships, and the threshold
    would be set against boats the isolation check (40 m) never reports.
    """
    from shipcam.train.threshold import synthetic_labelled_scenes

    labels = [lab for scene in synthetic_labelled_scenes(6, 768, 1.5) for lab in scene.labels]
    boats = [lab for lab in labels if 22.5 <= lab.length_m < 45.0]
    assert boats and all(lab.label == "ignore" for lab in boats)
    # A hull reaches at most half its length (the mask's diagonal) from its centre: these lie whole inside.
    inside = [
        lab
        for lab in labels
        if lab.length_m >= 45.0 and min(lab.x, lab.y, 768 - lab.x, 768 - lab.y) > lab.length_m / 1.5 / 2 + 1
    ]
    assert inside and all(lab.label == "ship" for lab in inside)


def test_synthetic_calibration_scenes_call_a_hull_cut_by_the_edge_ignore():
    """As the hand labels do ('boat cut by the top edge'): the scan's edge rule never reports it, nor should it."""
    from shipcam.train.threshold import synthetic_labelled_scenes

    labels = [lab for scene in synthetic_labelled_scenes(16, 768, 3.0) for lab in scene.labels]
    # a 90 m hull 24 m from the edge crosses it unless it lies along it
    cut = [lab for lab in labels if lab.length_m >= 90.0 and min(lab.x, lab.y, 768 - lab.x, 768 - lab.y) < 8]
    assert cut and all(lab.label == "ignore" for lab in cut)
