"""Keras metrics for a model that outputs logits, and the loss the blog learned to get right."""

from __future__ import annotations

import keras

__all__ = ["classification_metrics", "compile_classifier", "logit_loss", "LogitPrecision", "LogitRecall"]

# Keras 3 on TensorFlow defaults to jit_compile="auto" (XLA). On CPU, XLA made a
# MobileNetV2/Xception train step ~4x slower to run and ~1.5x slower to compile
# (measured here: 5 Xception steps 5.1 s vs 1.2 s), so shipcam compiles without it.
# The JAX backend (--distributed jax) is the other way round: without jit it runs
# op by op, a MobileNetV2 step ~5x slower and its first step ~2.5x slower.
_JIT_COMPILE = False


def _jit_compile() -> bool:
    return keras.backend.backend() == "jax" or _JIT_COMPILE


@keras.saving.register_keras_serializable(package="shipcam")
class LogitPrecision(keras.metrics.Precision):
    """Precision at p = 0.5 on a logit output (Keras' thresholds must lie in [0, 1])."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, keras.ops.sigmoid(y_pred), sample_weight)


@keras.saving.register_keras_serializable(package="shipcam")
class LogitRecall(keras.metrics.Recall):
    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, keras.ops.sigmoid(y_pred), sample_weight)


def logit_loss():
    """Binary cross-entropy on logits. ``from_logits=False`` here clips the logits to
    [1e-7, 1 - 1e-7] as if they were probabilities: gradients vanish and the model
    learns nothing — the bug the overfit-one-batch check exists to catch."""
    return keras.losses.BinaryCrossentropy(from_logits=True)


def classification_metrics() -> list:
    return [
        keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy"),  # logit 0 == p 0.5
        LogitPrecision(name="precision"),
        LogitRecall(name="recall"),
        keras.metrics.AUC(from_logits=True, name="auc"),
    ]


def compile_classifier(model, optimizer="adam", loss=None, metrics: list | None = None) -> None:
    """Compile ``model`` as every shipcam training loop does: the logit loss unless ``loss`` is given, no XLA on
    TensorFlow."""
    model.compile(
        optimizer=optimizer,
        loss=loss if loss is not None else logit_loss(),
        metrics=metrics,
        jit_compile=_jit_compile(),
    )
