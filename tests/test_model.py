import zipfile

import numpy as np
import pytest

from shipcam.errors import ModelFileError
from shipcam.train.model import build_classifier, head_weights, load_classifier, save_classifier, two_output_model


@pytest.fixture(scope="module")
def tiny():
    return build_classifier("mobilenet_v2", "max", alpha=0.35, weights=None)


@pytest.mark.parametrize("size, cells", [(64, 2), (96, 3), (128, 4)])
def test_any_input_size_and_feature_grid(tiny, size, cells):
    out = two_output_model(tiny)(np.random.default_rng(0).normal(size=(2, size, size, 3)).astype(np.float32))
    assert tuple(out["logits"].shape) == (2, 1)
    assert tuple(out["features"].shape) == (2, cells, cells, 1280)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_logit_is_the_dense_layer_on_pooled_features(pooling):
    m = build_classifier("mobilenet_v2", pooling, alpha=0.35, weights=None)
    m.get_layer("logit").set_weights(
        [np.random.default_rng(1).normal(size=(1280, 1)).astype(np.float32), np.array([0.3], np.float32)]
    )
    x = np.random.default_rng(2).normal(size=(3, 64, 64, 3)).astype(np.float32)
    out = two_output_model(m)(x)
    feats = np.asarray(out["features"])
    w, b = head_weights(m)
    pooled = feats.max(axis=(1, 2)) if pooling == "max" else feats.mean(axis=(1, 2))
    np.testing.assert_allclose(
        np.asarray(out["logits"])[:, 0], pooled @ w + b, rtol=1e-4, atol=1e-5 * np.abs(pooled @ w).max()
    )


def test_save_load_round_trip_keeps_weights_and_info(tiny, tmp_path):
    path = save_classifier(tiny, tmp_path / "m.keras", extra={"train_size": 64})
    with zipfile.ZipFile(path) as z:
        assert "shipcam.json" in z.namelist()
    back = load_classifier(path)
    assert back._shipcam_info["backbone"] == "mobilenet_v2" and back._shipcam_info["train_size"] == 64
    assert back._shipcam_info["pooling"] == "max" and back._shipcam_info["alpha"] == 0.35
    x = np.random.default_rng(3).normal(size=(1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(tiny(x)), np.asarray(back(x)))
    assert not list(tmp_path.glob(".*part"))  # no temp leftovers


def test_bad_model_files_are_named(tmp_path):
    import keras

    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(ModelFileError, match="junk.keras"):
        load_classifier(junk)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_classifier(tmp_path / "missing.keras")
    inp = keras.Input((None, None, 3))
    plain = keras.Model(inp, keras.layers.Conv2D(2, 3, name="conv")(inp))
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(ModelFileError, match=r"expected layers 'pooler' and 'logit', found \[.*'conv'"):
        load_classifier(tmp_path / "plain.keras")


def test_choices_are_validated_with_the_received_value():
    with pytest.raises(ValueError, match="pooling='median'"):
        build_classifier(pooling="median", weights=None)
    with pytest.raises(ValueError, match="backbone='resnet'"):
        build_classifier(backbone="resnet", weights=None)
    with pytest.raises(ModelFileError, match="weights file not found"):
        build_classifier(weights="/nonexistent/w.h5")


def test_xception_builds_and_trains_a_step_at_71px():
    from shipcam.train.metrics import logit_loss

    m = build_classifier("xception", "max", weights=None)
    m.compile("adam", logit_loss(), jit_compile=False)
    x = np.random.default_rng(0).normal(size=(2, 71, 71, 3)).astype(np.float32)
    before = [w.copy() for w in m.get_layer("logit").get_weights()]
    loss = m.train_on_batch(x, np.array([[0.0], [1.0]], np.float32))
    assert np.isfinite(loss)
    assert not np.allclose(before[0], m.get_layer("logit").get_weights()[0])
    assert two_output_model(m)(x)["features"].shape[-1] == 2048


def test_imagenet_weights_from_a_file(imagenet_weights):
    m = build_classifier("mobilenet_v2", alpha=1.0, weights=imagenet_weights)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)
    feats = np.asarray(two_output_model(m)(x)["features"])
    assert np.abs(feats).mean() > 0.1  # real activations, not the ~1e-10 of a fresh network
    # every backbone variable holds one of the file's arrays (Keras warns of "freshly-initialized" layers otherwise
    # hidden)
    import h5py

    with h5py.File(imagenet_weights) as f:
        stored = []
        f.visititems(lambda _, v: stored.append(np.asarray(v)) if isinstance(v, h5py.Dataset) else None)
    by_shape = {}
    for a in stored:
        by_shape.setdefault(a.shape, []).append(a)
    backbone = m.get_layer("backbone").weights
    assert len(backbone) == len(stored) == 260
    assert all(any(np.array_equal(np.asarray(w), a) for a in by_shape.get(tuple(w.shape), [])) for w in backbone)
    with pytest.raises(ModelFileError, match="cannot load into mobilenet_v2"):
        build_classifier("mobilenet_v2", alpha=0.35, weights=imagenet_weights)  # width mismatch
