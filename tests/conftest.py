import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "mobilenet_v2_1.0_imagenet_no_top.weights.h5"


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
