import numpy as np
import pytest

from shipcam.train.schedules import cyclic_lr, diverged, lr_sweep, smooth_losses, suggest_lr


def test_triangular_closed_form():
    base, top, half = 1e-4, 1e-3, 10

    def lr(s):
        return float(cyclic_lr(s, base, top, half, "triangular"))

    assert lr(0) == pytest.approx(base)
    assert lr(5) == pytest.approx(base + (top - base) * 0.5)
    assert lr(10) == pytest.approx(top)
    assert lr(15) == pytest.approx(base + (top - base) * 0.5)
    assert lr(20) == pytest.approx(base)
    assert lr(30) == pytest.approx(top)  # every cycle peaks at max


def test_triangular2_halves_each_cycle_and_exp_range_decays():
    base, top, half = 0.0, 1.0, 4
    peaks = [float(cyclic_lr(half + 2 * half * c, base, top, half, "triangular2")) for c in range(4)]
    assert peaks == pytest.approx([1.0, 0.5, 0.25, 0.125])
    g = 0.99
    for step in (4, 12, 20):
        assert float(cyclic_lr(step, 0.1, 1.1, half, "exp_range", gamma=g)) == pytest.approx(0.1 + 1.0 * g**step)


def test_keras_schedule_matches_numpy():
    from shipcam.train.callbacks import CyclicLR

    for mode in ("triangular", "triangular2", "exp_range"):
        sched = CyclicLR(1e-4, 1e-2, step_size=7, mode=mode, gamma=0.98)
        for step in (0, 3, 7, 11, 14, 29, 50):
            assert float(sched(step)) == pytest.approx(float(cyclic_lr(step, 1e-4, 1e-2, 7, mode, 0.98)), rel=1e-5)
        assert CyclicLR(**sched.get_config()).get_config() == sched.get_config()


def test_unknown_mode_and_bad_step_size_are_refused():
    with pytest.raises(ValueError, match="sawtooth"):
        cyclic_lr(1, 0.1, 1.0, 5, "sawtooth")
    with pytest.raises(ValueError, match="step_size"):
        cyclic_lr(1, 0.1, 1.0, 0)


def test_sweep_is_geometric_between_endpoints():
    lrs = lr_sweep(1e-6, 1.0, 7)
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 10.0)


def test_smoothing_is_bias_corrected():
    np.testing.assert_allclose(smooth_losses([2.0] * 10, beta=0.9), 2.0)  # no warm-up dip towards 0
    s = smooth_losses([1.0, 3.0], beta=0.5)
    assert s[1] == pytest.approx((0.5 * 0.5 * 1 + 0.5 * 3) / (1 - 0.25))


def test_divergence_and_suggestion_on_a_known_curve():
    lrs = lr_sweep(1e-5, 1.0, 101)
    x = np.log10(lrs)  # -5 .. 0
    loss = 1.0 - 0.8 / (1 + np.exp(-(x + 3) * 4))  # steepest fall at lr = 1e-3
    loss = np.where(x > -1.5, loss + (x + 1.5) ** 2 * 4, loss)  # blows up past ~3e-2
    s = suggest_lr(lrs, loss)
    assert s["steepest"] == pytest.approx(1e-3, rel=0.15)
    # the loss is lowest at x = -1.5, where the penalty starts; its 5-point average (grid step 0.05) is
    # lowest at x = -1.6: the window centred 0.05 later already holds a penalised point (+0.01 / 5), while
    # the sigmoid gains only ~7e-4 over that step
    assert s["min_over_10"] == pytest.approx(10**-1.6 / 10, rel=1e-9)
    assert diverged(5.0, 1.0) and not diverged(3.0, 1.0) and diverged(float("nan"), 1.0)
