"""Shared assertions for the tests (importable: pytest puts tests/ on sys.path)."""

import numpy as np


def assert_outputs_close(ref, got, rel: float = 1e-4, what: str = "outputs") -> None:
    """``got`` equals ``ref`` to ``rel`` of the reference's magnitude (the larger of its range and its
    largest absolute value), the one tolerance for an engine against Keras or another engine.

    Relative to the whole array rather than elementwise: CAM cells and logits near zero carry
    float32 summation-order noise of the array's scale, not of their own.
    """
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    assert ref.shape == got.shape, f"{what}: shape {got.shape} != reference {ref.shape}"
    scale = max(float(np.ptp(ref)), float(np.abs(ref).max()), 1e-12)
    err = np.abs(got - ref)
    worst = np.unravel_index(int(np.argmax(err)), err.shape)
    assert err.max() <= rel * scale, f"{what}: max error {err.max():.3g} at {worst} > {rel:g} x scale {scale:.3g}"
