"""Overfit one batch: the cheapest test that a model, loss and optimizer can learn at all.

A healthy setup drives the loss on a single repeated batch close to zero and
classifies it perfectly within a few dozen steps. A sigmoid/logit mix-up (the
blog's first model), a frozen network, a zero learning rate or broken labels
cannot, and this check fails loudly instead of wasting a training run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from shipcam.errors import ShipcamError

__all__ = ["SanityCheckError", "SanityReport", "overfit_one_batch"]


class SanityCheckError(ShipcamError):
    """The model could not overfit a single batch."""


@dataclass
class SanityReport:
    steps: int
    initial_loss: float
    final_loss: float
    batch_accuracy: float
    losses: list[float]
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def overfit_one_batch(
    model,
    x: np.ndarray,
    y: np.ndarray,
    loss=None,
    steps: int = 60,
    learning_rate: float = 1e-3,
    max_loss_ratio: float = 0.1,
    raise_on_failure: bool = True,
) -> SanityReport:
    """Train ``model`` (compiled here, in place) on one batch for ``steps`` steps.

    Passes when the final loss is below ``max_loss_ratio`` x the initial loss
    *and* every example of the batch is classified right (logit sign).
    """
    import keras

    from shipcam.train.metrics import compile_classifier

    y = np.asarray(y, np.float32).reshape(-1, 1)
    if len(np.unique(y)) < 2:
        raise ValueError("the sanity batch needs both classes (ship and no ship) to mean anything")
    compile_classifier(model, keras.optimizers.Adam(learning_rate), loss)
    losses = []
    for _ in range(steps):
        out = model.train_on_batch(x, y, return_dict=True)
        losses.append(float(out["loss"]))
    # Judge the forward pass the loss saw (training mode): on one tiny batch, a fresh
    # network can separate examples through BatchNorm's batch statistics, which
    # inference-mode moving averages cannot follow. This checks the loop, not generalisation.
    logits = np.asarray(model(x, training=True)).reshape(-1)
    accuracy = float(np.mean((logits > 0) == (y.reshape(-1) > 0.5)))
    initial, final = losses[0], float(np.mean(losses[-3:]))
    passed = bool(np.isfinite(final) and final < max_loss_ratio * initial and accuracy == 1.0)
    report = SanityReport(steps, initial, final, accuracy, losses, passed)
    if not passed and raise_on_failure:
        raise SanityCheckError(
            f"overfit-one-batch failed: loss {initial:.4f} -> {final:.4f} in {steps} steps "
            f"(needed < {max_loss_ratio:.0%} of the start), batch accuracy {accuracy:.2f} (needed 1.00). "
            "Check the loss (from_logits=True on a logit output), the learning rate and the labels."
        )
    return report
