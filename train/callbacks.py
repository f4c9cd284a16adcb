"""Thin Keras 3 wrappers around the pure schedule maths in ``schedules``."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np

from shipcam._utils.io import write_json
from shipcam.train.schedules import CycleMode, cyclic_lr, diverged, lr_sweep, smooth_losses

__all__ = ["CyclicLR", "LRRangeTest", "MajorityBaseline", "BestCheckpoint", "SceneScore", "PhaseLogger"]


@keras.saving.register_keras_serializable(package="shipcam")
class CyclicLR(keras.optimizers.schedules.LearningRateSchedule):
    """Cyclical learning rate as an optimizer schedule (evaluated in-graph per step)."""

    def __init__(self, base_lr: float, max_lr: float, step_size: float, mode: str = "triangular", gamma: float = 1.0):
        self.base_lr, self.max_lr, self.step_size = float(base_lr), float(max_lr), float(step_size)
        self.mode, self.gamma = CycleMode(mode).value, float(gamma)

    def __call__(self, step):
        return cyclic_lr(step, self.base_lr, self.max_lr, self.step_size, self.mode, self.gamma, xp=keras.ops)

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "max_lr": self.max_lr,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
        }


class LRRangeTest(keras.callbacks.Callback):
    """Set an exponentially growing rate each batch, record the loss, stop on divergence."""

    def __init__(self, start_lr: float, end_lr: float, num_steps: int, beta: float = 0.98, stop_factor: float = 4.0):
        super().__init__()
        self.rates = lr_sweep(start_lr, end_lr, num_steps)
        self.beta, self.stop_factor = beta, stop_factor
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.stopped_early = False

    def on_train_batch_begin(self, batch, logs=None):
        step = len(self.lrs)
        if step >= len(self.rates):
            self.model.stop_training = True
            return
        # The JAX backend trains on a copy of the variables within an epoch; writing the rate into the variable
        # alone would be lost. Syncing first makes the next step read the variables, the new rate included.
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        self.model.optimizer.learning_rate = float(self.rates[step])

    def on_train_batch_end(self, batch, logs=None):
        if len(self.lrs) >= len(self.rates):
            return
        # Keras reports the running mean over the epoch; the range test wants the batch loss.
        mean = float(logs["loss"])
        n = batch + 1
        prev_mean = getattr(self, "_prev_mean", 0.0) if batch > 0 else 0.0
        loss = mean * n - prev_mean * (n - 1)
        self._prev_mean = mean
        self.lrs.append(float(self.rates[len(self.lrs)]))
        self.losses.append(loss)
        smoothed = smooth_losses(self.losses, self.beta)
        if len(self.losses) > 5 and diverged(smoothed[-1], float(np.min(smoothed)), self.stop_factor):
            self.stopped_early = True
            self.model.stop_training = True


class MajorityBaseline(keras.callbacks.Callback):
    """Log the majority-class accuracy next to ``val_accuracy``: 0.78 is what 'always no ship' scores on Airbus."""

    def __init__(self, val_labels: np.ndarray):
        super().__init__()
        p = float(np.mean(val_labels))
        self.baseline = max(p, 1 - p)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_majority_baseline"] = self.baseline


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model (atomically, with shipcam's info) whenever ``monitor`` beats the best so far.

    ``monitor`` is ``val_auc`` or a ``SceneScore`` key (``real_f1``,
    ``scene_recall_at_fa``); ties, common with a few dozen ships, go to the
    better ``val_auc``. ``state`` is the run's state dict, shared across phases and
    persisted to ``state_path``, so the best survives a phase change and a
    resume.
    """

    def __init__(self, path: Path, state: dict, state_path: Path, extra: dict | None = None, monitor: str = "val_auc"):
        super().__init__()
        self.path, self.state, self.state_path, self.extra, self.monitor = (
            Path(path),
            state,
            Path(state_path),
            extra,
            monitor,
        )

    def on_epoch_end(self, epoch, logs=None):
        from shipcam.train.model import save_classifier

        logs = logs or {}
        key = [float(logs.get(self.monitor, np.nan)), float(logs.get("val_auc", np.nan))]
        if not np.isfinite(key[0]):
            return
        # runs saved before best_key
        legacy = self.state.get("best_val_auc", -1.0) if self.monitor == "val_auc" else -1.0
        best = self.state.get("best_key") or [legacy, legacy]
        if key > best:
            self.state["best_key"] = key
            self.state["best_val_auc"] = key[1]
            self.state["best_monitor"] = self.monitor
            self.state["best_epoch"] = {"phase": self.state.get("phase"), "epoch": epoch + 1, self.monitor: key[0]}
            save_classifier(self.model, self.path, extra=self.extra)
            write_json(self.state_path, self.state)


class SceneScore(keras.callbacks.Callback):
    """Score the model on labelled scenes after each epoch and put it in the logs.

    The same scan and matching as ``shipcam eval-scenes`` (``runtime.scoring``),
    on the model as it stands. Logs ``{prefix}_f1``, ``_recall`` and
    ``_fa_mpx`` at threshold 0.5, and ``{prefix}_recall_at_fa``: the recall
    at the threshold that keeps false alarms at or under ``target_fa`` per
    megapixel, the operating point ``train.threshold`` later saves. ``real``
    scenes are hand-labelled; ``scene`` ones are held-out synthetic scenes,
    which measure what tile AUC cannot (peaks on a city, a breakwater) with
    no real data involved. Put it before the callbacks that read those keys.
    """

    def __init__(self, scenes: list, info: dict, prefix: str = "real", target_fa: float = 1.0):
        super().__init__()
        self.scenes, self.info, self.prefix, self.target_fa = scenes, info, prefix, target_fa

    def on_epoch_end(self, epoch, logs=None):
        from shipcam.runtime.detector import Detector
        from shipcam.runtime.scoring import score_scenes
        from shipcam.train.engine import KerasEngine

        result = score_scenes(Detector(KerasEngine(self.model, info=self.info)), self.scenes)
        total = result["total"]
        at_fa = max([p["recall"] for p in result["pr"] if p["fa_per_mpx"] <= self.target_fa], default=0.0)
        if logs is not None:
            k = self.prefix
            logs.update(
                {
                    f"{k}_f1": total["f1"],
                    f"{k}_recall": total["recall"],
                    f"{k}_fa_mpx": total["fa_per_mpx"],
                    f"{k}_recall_at_fa": at_fa,
                }
            )
        print(
            f" - {self.prefix} scenes: F1 {total['f1']:.3f}, found {total['found']}/{total['ships']}, "
            f"{total['fa_per_mpx']:.1f} false alarms/Mpx; recall {at_fa:.2f} at <= {self.target_fa:g}/Mpx"
        )


class PhaseLogger(keras.callbacks.Callback):
    """Append each epoch to one CSV for all phases (phase name + the phase's epoch number)."""

    def __init__(self, path: Path, phase: str):
        super().__init__()
        self.path, self.phase = Path(path), phase

    def on_epoch_end(self, epoch, logs=None):
        row = {"phase": self.phase, "epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        if self.path.exists():
            with open(self.path, newline="") as f:
                fields = next(csv.reader(f))
        else:
            fields = list(row)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if f.tell() == 0:
                w.writeheader()
            w.writerow(row)
