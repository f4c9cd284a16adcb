import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "mobilenet_v2_1.0_imagenet_no_top.weights.h5"


@pytest.fixture(autouse=True)
def _scans_see_a_fresh_process(monkeypatch):
    """Scans run in the test process: its own memory (TensorFlow, Ray, earlier tests) is not the scan's, so the
    memory budget sees what a fresh `shipcam scan` process would hold, plus what the test itself adds."""
    from shipcam._utils import memory
    from shipcam.runtime import budget
    from shipcam.runtime.budget import FRESH_PROCESS_MB

    start = memory.current_rss_mb()
    if start is not None:
        monkeypatch.setattr(
            budget, "process_rss_mb", lambda: FRESH_PROCESS_MB + max(0.0, memory.current_rss_mb() - start)
        )


@pytest.fixture(scope="session")
def imagenet_weights() -> Path:
    if not SHARED_WEIGHTS.is_file():
        pytest.skip("../shared/weights is absent (a user's clone): ImageNet checks skipped")
    return SHARED_WEIGHTS


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small synthetic dataset in the Airbus layout, shared by the data and training tests."""
    from shipcam.train.data.synthetic import SceneConfig
    from shipcam.train.data.writer import write_synthetic_dataset

    root = tmp_path_factory.mktemp("data") / "synthetic"
    return write_synthetic_dataset(root, 48, SceneConfig(size=64, ship_fraction=0.5), seed=3, show_progress=False)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, synthetic_dir) -> Path:
    """MobileNetV2 alpha 0.35 trained for a few steps at 64 px: real (non-1e-10) activations, seconds to make."""
    import keras

    from shipcam.train.backbones import get_backbone
    from shipcam.train.data.pipeline import make_dataset
    from shipcam.train.data.sources import load_dataset
    from shipcam.train.metrics import logit_loss
    from shipcam.train.model import build_classifier, save_classifier

    keras.utils.set_random_seed(0)
    samples = load_dataset(synthetic_dir, show_progress=False)
    ds = make_dataset(samples, get_backbone("mobilenet_v2"), 64, 16, training=True)
    model = build_classifier("mobilenet_v2", "max", alpha=0.35, weights=None)
    model.compile(keras.optimizers.Adam(2e-3), logit_loss(), jit_compile=False)
    model.fit(ds.repeat(), steps_per_epoch=15, epochs=3, verbose=0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return save_classifier(model, path, extra={"train_size": 64})


@pytest.fixture(scope="session")
def exported(tmp_path_factory, tiny_model_path):
    """Every format exported once for the session (parity reported, not enforced, for int8 on a barely-trained
    model)."""
    from shipcam.export import ExportOptions, export_model

    out = tmp_path_factory.mktemp("export")
    manifest = export_model(
        tiny_model_path, out, ExportOptions(calib=16, parity_n=24, fail_on_parity=False), show_progress=False
    )
    return out, manifest
