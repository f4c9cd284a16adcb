"""Weights on the int8 grid with bias correction: the grid's closed form, the shift's closed form, the effect."""

import numpy as np
import pytest

from shipcam.export.bias_correction import QMAX, quantize_per_channel


@pytest.mark.parametrize("qmax", [QMAX, 64])
def test_grid_closed_form(rng, qmax):
    w = rng.normal(size=(3, 3, 4, 5)).astype(np.float32)
    q = quantize_per_channel(w, -1, qmax)
    scale = np.abs(w).max(axis=(0, 1, 2)) / qmax
    steps = q / scale
    assert np.allclose(steps, np.round(steps), atol=1e-4)  # on the grid
    assert np.allclose(np.abs(steps).max(axis=(0, 1, 2)), qmax)  # the largest weight of each channel is +-qmax steps
    assert np.all(np.abs(q - w) <= scale / 2 + 1e-7)  # rounding, never more than half a step
    assert np.array_equal(quantize_per_channel(q, -1, qmax), q)  # idempotent: the converters leave it unchanged


def test_grid_survives_batchnorm_folding(rng):
    """Folding BN scales each output channel (sign included); the folded kernel is still on its own grid."""
    w = rng.normal(size=(1, 1, 6, 8)).astype(np.float32)
    g = rng.uniform(-3, 3, size=8).astype(np.float32)
    q = quantize_per_channel(w, -1)
    assert np.allclose(quantize_per_channel(q * g, -1), q * g, rtol=1e-5, atol=1e-7)


def test_zero_channel_stays_zero():
    w = np.zeros((3, 3, 2, 2), np.float32)
    w[..., 1] = 0.5
    q = quantize_per_channel(w, -1)
    assert np.all(q[..., 0] == 0) and np.allclose(q[..., 1], 0.5)


def _toy_classifier():
    """Every conv type the backbones use: conv+BN, depthwise+BN, separable+BN, conv with its own bias, conv+ReLU."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="c1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn_dw")(x)
    x = keras.layers.SeparableConv2D(6, 3, padding="same", use_bias=False, name="sep")(x)
    x = keras.layers.BatchNormalization(name="bn_sep")(x)
    x = keras.layers.Conv2D(5, 1, use_bias=True, name="biased")(x)
    x = keras.layers.Conv2D(4, 1, use_bias=False, activation="relu", name="fused_relu")(x)
    backbone = keras.Model(inp, x, name="backbone")
    rng = np.random.default_rng(1)
    for layer in backbone.layers:  # non-trivial BN statistics, as in a trained network
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2, n).astype(np.float32))
            layer.beta.assign(rng.normal(0, 0.5, n).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0, 1, n).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2, n).astype(np.float32))
    outer_in = keras.Input((16, 16, 3))
    return keras.Model(outer_in, backbone(outer_in))


def _weights_only_grid(model):
    from shipcam.export.bias_correction import _grid, _kernels

    for layer in model.get_layer("backbone").layers:
        for var, depthwise in _kernels(layer):
            var.assign(_grid(np.asarray(var), depthwise))


def test_first_shift_matches_closed_form(rng):
    """bn1's mean moves by (W_q - W) . E[x], computed here by hand from the kernel and the input means."""
    from shipcam.export.bias_correction import correct_for_int8

    model = _toy_classifier()
    base = model.get_layer("backbone")
    x = (0.6 + 0.05 * rng.normal(size=(8, 16, 16, 3))).astype(np.float32)  # low contrast, non-zero mean: like sea
    w = np.asarray(base.get_layer("c1").kernel).copy()
    mu = np.asarray(base.get_layer("bn1").moving_mean).copy()
    relu_kernel = np.asarray(base.get_layer("fused_relu").kernel).copy()
    report = correct_for_int8(model, x, show_progress=False)
    expected = np.einsum("hwio,i->o", quantize_per_channel(w, -1) - w, x.mean(axis=(0, 1, 2)).astype(np.float64))
    assert np.allclose(np.asarray(base.get_layer("bn1").moving_mean) - mu, expected, atol=1e-5)
    assert set(report.corrected) == {"c1", "dw", "sep", "biased"}
    assert report.skipped == ["fused_relu"]  # a ReLU inside the layer: the shift is not linear
    assert np.array_equal(np.asarray(base.get_layer("fused_relu").kernel), relu_kernel)  # left to the converter


def test_correction_cancels_the_mean_shift(rng):
    """Same grid weights with and without correction: the corrected output mean is far closer to float."""
    from shipcam.export.bias_correction import correct_for_int8

    x = (0.6 + 0.05 * rng.normal(size=(16, 16, 16, 3))).astype(np.float32)
    float_model = _toy_classifier()

    grid_only = _toy_classifier()
    grid_only.set_weights(float_model.get_weights())
    _weights_only_grid(grid_only)
    corrected = _toy_classifier()
    corrected.set_weights(float_model.get_weights())
    correct_for_int8(corrected, x, show_progress=False)

    from shipcam.export.bias_correction import _grid, _kernels

    for layer in corrected.get_layer("backbone").layers:  # the converters will find every kernel already on the grid
        for var, depthwise in _kernels(layer) if layer.name != "fused_relu" else []:
            assert np.allclose(_grid(np.asarray(var), depthwise), np.asarray(var), atol=1e-6), layer.name

    def biased_output(model):  # the last linear output (the final ReLU layer is left to the converter)
        import keras

        base = model.get_layer("backbone")
        return np.asarray(keras.Model(base.input, base.get_layer("biased").output)(x, training=False))

    ref = biased_output(float_model)

    def channel_mean_error(model):
        return np.abs(biased_output(model).mean(axis=(0, 1, 2)) - ref.mean(axis=(0, 1, 2))).max()

    shift_grid, shift_corrected = channel_mean_error(grid_only), channel_mean_error(corrected)
    assert shift_grid > 1e-4  # the grid alone does move the output
    assert shift_corrected < 0.3 * shift_grid  # not 0: the ReLU6 between layers is not linear in the shift


@pytest.mark.parametrize("fmt", ["tflite_int8", "onnx_int8"])
def test_export_records_the_correction(exported, fmt):
    _, manifest = exported
    entry = next(e for e in manifest["files"] if e["format"] == fmt)
    assert manifest["options"]["bias_correction"] is True
    path = exported[0] / entry["file"]
    from shipcam.runtime.engines import open_engine

    meta = open_engine(path).metadata
    corr = meta.extra["weight_correction"]
    assert corr["corrected_layers"] == 52 and corr["skipped_layers"] == []  # every MobileNetV2 conv has a BN
    assert corr["weight_qmax"] == (127 if fmt == "tflite_int8" else 64)  # each engine's own weight grid
    assert corr["depthwise_qmax"] == 127
