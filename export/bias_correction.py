"""Weights put on the int8 grid, with bias correction: what makes int8 keep the CAM.

Measured on the ImageNet MobileNetV2 fine-tuned on sea scenes: quantizing only
the weights (per channel, activations left in float) already drops the
correlation of the ``features`` map with float from 1 to 0.85 — the same loss
as the full int8 file. The error is systematic, not noise: sea scenes are low
contrast, so a filter's response is dominated by the sum of its weights times
the local mean, and rounding shifts that sum. Correcting each output channel by
the expected shift ``(W_q - W) · E[x]`` (Nagel et al. 2019, *Data-Free
Quantization*, §4.2, here in its empirical form with calibration means)
restores 0.994 in that simulation, and takes the real int8 files' CAM
correlation from 0.86 to 0.98 (BENCHMARKS.md, "int8 and the CAM").

The correction has to reach the converters, which quantize the weights
themselves: TFLite and ONNX Runtime both quantize per output channel,
symmetric, to [-qmax, qmax] with scale ``max|w| / qmax`` (127; 64 for ORT's
7-bit weights). A kernel already on that grid stays exactly on it when
BatchNorm is folded into it (folding scales each output channel by a
constant), so the converters re-quantize it without change and fold in the
corrected BatchNorm mean (or bias) computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipcam._utils.progress import progress

__all__ = ["quantize_per_channel", "conv_input_means", "correct_for_int8", "CorrectionReport"]

QMAX = 127  # symmetric int8 weights, as both converters quantize them


def quantize_per_channel(kernel: np.ndarray, axis: int = -1, qmax: int = QMAX) -> np.ndarray:
    """``kernel`` rounded to the symmetric grid of each slice along ``axis``: scale ``max|w| / qmax``.

    ``qmax`` 127 is int8; 64 is ONNX Runtime's ``reduce_range`` (7-bit) weights.
    """
    kernel = np.asarray(kernel, np.float32)
    axis = axis % kernel.ndim
    reduce = tuple(i for i in range(kernel.ndim) if i != axis)
    amax = np.max(np.abs(kernel), axis=reduce, keepdims=True)
    scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    return (np.clip(np.round(kernel / scale), -qmax, qmax) * scale).astype(np.float32)


@dataclass
class CorrectionReport:
    corrected: list[str]  # layers put on the grid with their shift corrected
    skipped: list[str]  # conv layers with neither a bias nor a BatchNorm to absorb the shift (left to the converter)
    max_shift: float  # largest |expected output shift| corrected, in the layer's output units
    qmax: int = QMAX
    depthwise_qmax: int = QMAX

    def to_dict(self) -> dict:
        return {
            "method": "per-channel weight grid + bias correction",
            "weight_qmax": self.qmax,
            "depthwise_qmax": self.depthwise_qmax,
            "corrected_layers": len(self.corrected),
            "skipped_layers": self.skipped,
            "max_shift": self.max_shift,
        }


def _kernels(layer) -> list[tuple]:
    """``(variable, depthwise)`` for each kernel a converter quantizes in a Keras conv layer."""
    import keras

    if isinstance(layer, keras.layers.SeparableConv2D):
        return [(layer.depthwise_kernel, True), (layer.pointwise_kernel, False)]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [(layer.kernel, True)]
    if isinstance(layer, keras.layers.Conv2D):
        return [(layer.kernel, False)]
    return []


def _grid(kernel: np.ndarray, depthwise: bool, qmax: int = QMAX) -> np.ndarray:
    """The converters' grid: per output channel. Conv2D (kh, kw, in, out): the last axis.
    Depthwise (kh, kw, C, multiplier): each (C, multiplier) pair is an output channel."""
    if not depthwise:
        return quantize_per_channel(kernel, -1, qmax)
    kh, kw, c, m = kernel.shape
    return quantize_per_channel(kernel.reshape(kh, kw, c * m), -1, qmax).reshape(kernel.shape)


def _absorber(layer, candidates):
    """Where a shift of ``layer``'s output can be cancelled: its own bias, else the BatchNorm reading it."""
    import keras

    if getattr(layer, "activation", None) not in (None, keras.activations.linear):
        return None, None  # a non-linearity inside the layer: the shift is no longer W_q·E[x] - W·E[x]
    if getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
        return "bias", layer
    out = layer.output
    readers = [bn for bn in candidates if bn.input is out]
    return ("bn", readers[0]) if len(readers) == 1 else (None, None)


def _response_to_mean(layer, mean: np.ndarray) -> np.ndarray:
    """The layer's output at an interior pixel for an input constant at ``mean``: ``W · E[x]`` (+ bias).

    Calling the layer itself keeps every conv type (plain, depthwise, separable,
    strided, dilated) correct without re-deriving its algebra.
    """
    k = max(max(getattr(layer, "kernel_size", (1, 1))), 1) * max(getattr(layer, "dilation_rate", (1, 1))[0], 1)
    side = 4 * k + 1
    x = np.full((1, side, side, mean.shape[0]), mean, np.float32)
    y = np.asarray(layer(x))
    return y[0, y.shape[1] // 2, y.shape[2] // 2].astype(np.float64)


def _convs(model) -> list:
    return [layer for layer in model.get_layer("backbone").layers if _kernels(layer)]


def conv_input_means(model, images: np.ndarray, batch: int = 8, show_progress: bool = True) -> dict[str, np.ndarray]:
    """Per-channel mean of every backbone conv's input over ``images``, by layer name, in one pass.

    Computed on the float model; the same dict serves every copy corrected for a different grid.
    """
    import keras

    base = model.get_layer("backbone")
    convs = _convs(model)
    probe = keras.Model(base.input, [layer.input for layer in convs])
    sums = [np.zeros(layer.input.shape[-1], np.float64) for layer in convs]
    count = 0
    for i in progress(
        range(0, len(images), batch), total=-(-len(images) // batch), desc="bias correction", enabled=show_progress
    ):
        outs = probe(images[i : i + batch], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for s, o in zip(sums, outs):
            s += np.asarray(o, np.float64).mean(axis=(1, 2)).sum(axis=0)
        count += len(images[i : i + batch])
    return {layer.name: s / count for layer, s in zip(convs, sums)}


def correct_for_int8(
    model,
    images: np.ndarray | None = None,
    qmax: int = QMAX,
    depthwise_qmax: int | None = None,
    batch: int = 8,
    show_progress: bool = True,
    means: dict[str, np.ndarray] | None = None,
) -> CorrectionReport:
    """Put ``model``'s backbone conv kernels on the int8 grid and cancel the mean shift. Modifies ``model``.

    ``qmax``: the converter's weight grid, 127 (int8) or 64 (7-bit, ONNX ``reduce_range`` weights);
    ``depthwise_qmax`` for depthwise kernels (default: the same).

    ``images``: preprocessed calibration images (N, H, W, 3); their per-channel
    means at each conv's input are what the shift is computed from. Pass
    ``means`` (from :func:`conv_input_means` on the float model) instead to
    skip that pass.
    """
    import keras

    depthwise_qmax = qmax if depthwise_qmax is None else depthwise_qmax
    if means is None:
        if images is None:
            raise ValueError("correct_for_int8 needs calibration images or their conv input means")
        means = conv_input_means(model, images, batch, show_progress)
    bns = [layer for layer in model.get_layer("backbone").layers if isinstance(layer, keras.layers.BatchNormalization)]

    corrected, skipped, max_shift = [], [], 0.0
    for layer in _convs(model):
        mean = means[layer.name]
        kind, target = _absorber(layer, bns)
        if kind is None:
            skipped.append(layer.name)
            continue
        before = _response_to_mean(layer, mean)
        for var, depthwise in _kernels(layer):
            var.assign(_grid(np.asarray(var), depthwise, depthwise_qmax if depthwise else qmax))
        shift = _response_to_mean(layer, mean) - before
        if kind == "bias":
            target.bias.assign(np.asarray(target.bias) - shift.astype(np.float32))
        else:  # BN normalises (y - mean): moving the mean by the shift cancels it
            target.moving_mean.assign(np.asarray(target.moving_mean) + shift.astype(np.float32))
        corrected.append(layer.name)
        max_shift = max(max_shift, float(np.abs(shift).max()))
    return CorrectionReport(corrected, skipped, max_shift, qmax, depthwise_qmax)
