"""Two-phase transfer learning with checkpoints that survive interruption.

Phase ``head``: the backbone frozen, only the dense logit (and dropout) learns.
Phase ``finetune``: the top ``finetune_layers`` of the backbone unfrozen at a
smaller rate, BatchNorm kept in inference mode (its statistics came from
ImageNet; a small batch would wreck them).

With ``weights=None`` a frozen random backbone has nothing to offer, so a
single ``scratch`` phase trains every layer instead.

Run folder::

    config.json         the resolved configuration (``--resume`` reads it back)
    state.json          finished phases, best validation AUC so far
    backup/<phase>/     Keras BackupAndRestore: weights, optimizer, epoch
    head.keras          the model after the head phase
    best.keras          best validation AUC across phases (atomic writes)
    history.csv         every epoch of every phase
    metrics.json        final validation metrics with the majority baseline
    curves.png          training curves
    processK/           with --distributed jax, process K's own checkpoints (K >= 1): what it resumes from
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from shipcam._utils.io import write_json
from shipcam.errors import ShipcamError
from shipcam.train.backbones import BackboneName, Pooling
from shipcam.train.schedules import CycleMode
from shipcam.train.threshold import DEFAULT_TARGET_FA, REVIEW_FA

# Keras warns on every fit that it ignores shuffle=True for a tf.data input: the pipeline shuffles.
warnings.filterwarnings("ignore", message=r".*`shuffle=True` was passed.*")

__all__ = ["TrainConfig", "train", "load_config", "prepare_data", "make_strategy", "set_trainable", "Phase"]

Phase = Literal["head", "finetune", "scratch", "mine"]
Strategy = Literal["default", "mirrored"]
Balance = Literal["none", "weights", "sample"]
Select = Literal["val_auc", "real_f1", "scene_recall"]


@dataclass
class TrainConfig:
    run_dir: str = "runs/train"
    data: str | None = None  # a dataset folder; None generates the synthetic default
    # --- model
    backbone: BackboneName = "mobilenet_v2"
    alpha: float = 0.35
    pooling: Pooling = "max"
    weights: str | None = "imagenet"  # "imagenet", None or a weights file
    dropout: float = 0.2
    # --- data
    size: int = 96
    batch_size: int = 16  # more updates per minute: what from-scratch training lacks most
    val_fraction: float = 0.2
    balance: Balance = "weights"
    augment: bool = True
    randomize: bool = True  # domain randomisation (colour, blur, noise, scale) on top of flips and turns
    synthetic_n: int = 2000
    gsd: float | None = (
        None  # metres/pixel of the training images: synthetic 3.0, Airbus 1.5, ShipsNet 3.0 unless given
    )
    gsd_range: list[float] | None = (
        None  # [min, max] m/px: synthetic scenes and real chips drawn across it (scale jitter over GSDs)
    )
    # labelled real scenes (files or folders) to cut training chips from
    scenes: list[str] = field(default_factory=list)
    real_ratio: float = 0.5  # share of the training images that are chips of those scenes
    mining_rounds: int = 1  # rounds of hard-negative mining on those scenes after the regular phases
    mining_epochs: int = 2  # epochs of each round
    # labelled real scenes scored each epoch (F1, recall, false alarms)
    real_val: list[str] = field(default_factory=list)
    real_labels: str | None = None  # their labels CSV (see labels/README.md)
    select: Select = (
        "val_auc"  # which score picks best.keras: real_f1 needs real_val; scene_recall scores held-out synthetic scenes
    )
    scene_val: int = 0  # held-out synthetic scenes (768 px) scored each epoch; select=scene_recall uses 16 when 0
    target_fa: float | None = (
        # threshold saved with best.keras: <= this many false alarms/Mpx on held-out synthetic scenes; None keeps 0.5
        DEFAULT_TARGET_FA
    )
    calibration_scenes: int = 16  # held-out synthetic scenes (768 px at the training GSD) for that threshold
    # --- schedule
    head_epochs: int = 3
    head_lr: float = 1e-3
    finetune_epochs: int = 6
    finetune_lr: float = 1e-4
    finetune_layers: int = 60  # top layers of the backbone to unfreeze; -1 = all
    finetune_bn: bool = False  # also train BatchNorm (batch statistics, momentum 0.9): adapts it to the target domain
    scratch_lr: float = 3e-3  # from the range test: flat loss up to ~5e-3; 1e-3 and 2e-3 learned slower
    scratch_epochs: int = 20
    clr: CycleMode | str | None = None  # a CycleMode value, or None: cosine decay
    clr_factor: float = 4.0  # max_lr = factor x base lr
    patience: int = 4
    head_only: bool = False  # only the frozen-backbone phase, whatever the weights (for comparisons)
    steps_per_epoch: int | None = None  # cap, for quick runs
    # --- system
    strategy: Strategy = "default"  # tf.distribute on one machine; several processes or machines: --distributed jax
    seed: int = 0
    tensorboard: bool = False
    verbose: int | str = "auto"  # auto: a progress bar on a terminal, one line per epoch in logs
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strategy == "multiworker":
            raise ValueError(MULTIWORKER_GONE)
        if self.strategy not in get_args(Strategy):
            raise ValueError(f"strategy must be one of {get_args(Strategy)}, received {self.strategy!r}")
        if self.select not in get_args(Select):
            raise ValueError(f"select must be one of {get_args(Select)}, received {self.select!r}")
        if self.select == "real_f1" and not self.real_val:
            raise ValueError(
                "select='real_f1' scores real scenes: give them with real_val (--real-val SCENE... --labels CSV)"
            )
        if (self.real_val or self.scenes) and not self.real_labels:
            raise ValueError(
                f"{'real_val' if self.real_val else 'scenes'}={self.real_val or self.scenes} needs real_labels (a "
                "labels CSV, see labels/README.md)"
            )
        if not 0.0 <= self.real_ratio < 1.0:
            raise ValueError(f"real_ratio must be in [0, 1), received {self.real_ratio}")
        if self.mining_rounds < 0 or self.mining_epochs < 0:
            raise ValueError(
                f"mining_rounds and mining_epochs must be >= 0, received {self.mining_rounds}, {self.mining_epochs}"
            )
        if self.gsd_range is not None:
            if len(self.gsd_range) != 2 or not 0 < self.gsd_range[0] <= self.gsd_range[1]:
                raise ValueError(
                    f"gsd_range must be [min, max] metres/pixel with 0 < min <= max, received {self.gsd_range}"
                )
            self.gsd_range = [float(v) for v in self.gsd_range]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def pretrained(self) -> bool:
        return self.weights is not None


MULTIWORKER_GONE = (
    "--strategy multiworker is no more: Keras 3 cannot fit under tf.distribute.MultiWorkerMirroredStrategy "
    "(keras-team/keras#20585); train on several processes or machines with --distributed jax"
)

# The log key each ``select`` choice reads.
MONITOR = {"val_auc": "val_auc", "real_f1": "real_f1", "scene_recall": "scene_recall_at_fa"}
# Synthetic scenes scored during training use another seed than the threshold's calibration scenes,
# so the threshold is not set on the scenes that chose the checkpoint.
SCENE_VAL_SEED = 20_011

# Ground sample distance of each public layout when --gsd is not given (metres/pixel).
LAYOUT_GSD = {"airbus": 1.5, "shipsnet": 3.0, "folders": 3.0}


def load_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ShipcamError(f"{run_dir}: no config.json, so nothing to resume (is this a shipcam run folder?)")
    try:
        return TrainConfig(**json.loads(path.read_text()))
    except (TypeError, ValueError) as e:  # a file from another version, or edited by hand
        raise ShipcamError(f"{path}: {e}") from None


def make_strategy(name: str):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        raise ShipcamError(MULTIWORKER_GONE)
    raise ValueError(f"Unknown strategy. Expected 'default' or 'mirrored'. Received: strategy={name!r}")


def prepare_data(config: TrainConfig, show_progress: bool = True):
    """Index (and if needed generate) the dataset and split it. Returns (train, val) Samples."""
    from shipcam.train.data.sources import load_dataset
    from shipcam.train.data.synthetic import SceneConfig
    from shipcam.train.data.writer import dataset_gsd, write_synthetic_dataset

    data = config.data
    if data is None:
        # Inside the run folder: a cache shared between runs would need every generator parameter in its name.
        config.gsd = config.gsd or (config.gsd_range[0] if config.gsd_range else 3.0)
        scene = SceneConfig(
            size=config.size, gsd=config.gsd, gsd_range=tuple(config.gsd_range) if config.gsd_range else None
        )
        data = str(Path(config.run_dir) / f"synthetic_{config.size}px_{config.synthetic_n}_seed{config.seed}")
        write_synthetic_dataset(data, config.synthetic_n, scene, seed=config.seed, show_progress=show_progress)
        config.data = data
    samples = load_dataset(data, show_progress=show_progress)
    if config.gsd is None:
        # Generated scenes are in the Airbus layout but not at Airbus' 1.5 m/px: their own record says what they are.
        config.gsd = dataset_gsd(data) or LAYOUT_GSD.get(samples.layout.value if samples.layout else "", 3.0)
    return samples.split(config.val_fraction, seed=config.seed)


def _phases(config: TrainConfig) -> list[tuple[str, int, float]]:
    if config.head_only:
        return [("head", config.head_epochs, config.head_lr)]
    if not config.pretrained:
        phases = [("scratch", config.scratch_epochs, config.scratch_lr)]
    else:
        phases = [
            ("head", config.head_epochs, config.head_lr),
            ("finetune", config.finetune_epochs, config.finetune_lr),
        ]
    rate = phases[-1][2] / 2  # a further fine-tuning at half the last phase's rate
    return phases + [
        (f"mine{r}", config.mining_epochs, rate) for r in range(1, config.mining_rounds + 1) if config.scenes
    ]


def set_trainable(model, phase: Phase, finetune_layers: int, train_bn: bool = False) -> None:
    import keras

    from shipcam.train.model import set_bn_momentum

    base = model.get_layer("backbone")
    if phase == "scratch":
        base.trainable = True
        return
    if phase == "head":
        base.trainable = False
        return
    base.trainable = True
    layers = base.layers
    cut = 0 if finetune_layers < 0 else max(0, len(layers) - finetune_layers)
    for i, layer in enumerate(layers):
        layer.trainable = i >= cut and (train_bn or not isinstance(layer, keras.layers.BatchNormalization))
    if train_bn:  # Keras' 0.999 would keep the ImageNet statistics for thousands of steps
        set_bn_momentum(base, 0.9)


def train(
    config: TrainConfig,
    resume: bool = False,
    extra_callbacks: list | None = None,
    show_progress: bool = True,
    cluster=None,
) -> dict:
    """Train per ``config``; with ``resume`` continue an interrupted run in ``config.run_dir``.

    ``cluster`` (a ``train.distributed.Cluster``): train as one of its
    processes on Keras' JAX backend, ``config.run_dir`` being this process's
    folder. The phases run as on one process; the evaluation, calibration and
    plots that follow them are left to a TensorFlow-backend ``train --resume``
    of process 0's folder (the CLI runs it).
    """
    labelled = []
    if (
        config.scenes
    ):  # before anything is written or TensorFlow loads: a bad labels file is one line and leaves nothing behind
        from shipcam.train.realdata import load_training_scenes

        labelled = load_training_scenes(config.scenes, config.real_labels)

    run = Path(config.run_dir)
    state_path = run / "state.json"
    if run.exists() and (run / "config.json").exists() and not resume:
        raise ShipcamError(f"{run} already holds a training run; resume it with --resume or choose another --run-dir")
    state = json.loads(state_path.read_text()) if resume and state_path.exists() else {"done": [], "phase": None}
    local_batch = config.batch_size
    if cluster is not None:  # before Keras loads: a bad address or a missing process is one line within seconds
        local_batch = cluster.local_batch(config.batch_size)
        cluster.use_backend()
        cluster.meet(config.to_dict(), _resume_point(run, state))
    run.mkdir(parents=True, exist_ok=True)

    import keras

    from shipcam.train.callbacks import BestCheckpoint, CyclicLR, MajorityBaseline, PhaseLogger, SceneScore
    from shipcam.train.data.pipeline import class_weights, make_dataset
    from shipcam.train.metrics import classification_metrics, compile_classifier
    from shipcam.train.model import build_classifier, load_classifier, save_classifier

    if cluster is None:
        strategy = make_strategy(config.strategy)
        keras.utils.set_random_seed(config.seed)
    else:  # seeded before JAX connects: each process builds its copy of the initial weights from the seed
        keras.utils.set_random_seed(config.seed)
        strategy = cluster.connect()
    main = cluster is None or cluster.is_main
    shard = cluster.shard if cluster is not None else None
    train_s, val_s = prepare_data(config, show_progress)
    gsd_range = tuple(config.gsd_range) if config.gsd_range else (config.gsd, config.gsd)
    if labelled and config.real_ratio > 0:
        from shipcam.train.realdata import concat_samples, real_samples

        n_real = round(config.real_ratio / (1 - config.real_ratio) * len(train_s))
        chips = real_samples(
            labelled, n_real, config.size, gsd_range, run / "real_chips", config.batch_size, config.seed
        )
        print(
            f"real scenes: {len(chips)} chips ({int(chips.labels.sum())} with ships) from "
            f"{', '.join(s.path.name for s in labelled)}; validation stays synthetic"
        )
        train_s = concat_samples(train_s, chips)
    write_json(run / "config.json", config.to_dict())  # after prepare_data resolved config.data
    baseline = MajorityBaseline(val_s.labels).baseline
    print(
        f"data: {len(train_s)} train / {len(val_s)} val images, {val_s.ship_fraction:.0%} ships in val "
        f"-> majority-class baseline accuracy {baseline:.3f}"
    )

    from shipcam.train.backbones import get_backbone

    spec = get_backbone(config.backbone)
    if config.size < spec.min_size:
        raise ValueError(f"{config.backbone} needs inputs of at least {spec.min_size} px, received size={config.size}")
    balanced = config.balance == "sample"
    train_ds = make_dataset(
        train_s, spec, config.size, local_batch, True, config.seed, config.augment, balanced, config.randomize, shard
    )
    val_ds = make_dataset(val_s, spec, config.size, local_batch, False, shard=shard)
    cw = class_weights(train_s.labels) if config.balance == "weights" else None

    info = {
        "train_size": config.size,
        "class_name": "ship",
        "gsd": config.gsd,
        "gsd_range": list(gsd_range) if config.gsd_range else None,
    }
    real = []
    if config.real_val:
        from shipcam.runtime.scoring import load_scenes

        real, failed = load_scenes(config.real_val, config.real_labels)
        if failed:
            raise ShipcamError(f"--real-val: could not read {', '.join(f['scene'] for f in failed)}")
        print(
            f"real-scene validation: {len(real)} scenes, {sum(lab.label == 'ship' for s in real for lab in s.labels)} "
            f"ships; best.keras by {config.select}"
        )

    scorers = [SceneScore(real, info, "real", REVIEW_FA)] if real else []
    n_scene = config.scene_val or (16 if config.select == "scene_recall" else 0)
    if n_scene:
        from shipcam.train.threshold import synthetic_labelled_scenes

        synthetic = synthetic_labelled_scenes(
            n_scene,
            size=max(768, 4 * config.size),
            gsd=config.gsd or 3.0,
            seed=SCENE_VAL_SEED,
            gsd_range=config.gsd_range,
        )
        scorers.append(
            SceneScore(
                synthetic, info, "scene", config.target_fa if config.target_fa is not None else DEFAULT_TARGET_FA
            )
        )

    t0 = time.perf_counter()
    interrupted = False
    model = None
    for phase, epochs, lr in _phases(config):
        if phase in state["done"] or epochs <= 0:
            continue
        mining = phase.startswith("mine")
        if mining:  # the model as it stands finds its own false alarms on the training scenes
            from shipcam.train.realdata import concat_samples, mined_samples

            mined = mined_samples(
                lambda: _detector(run / "best.keras", info),
                labelled,
                config.size,
                gsd_range,
                run / "real_chips" / phase,
                config.seed,
            )
            if mined is not None:
                train_s = concat_samples(train_s, mined)
                train_ds = make_dataset(
                    train_s,
                    spec,
                    config.size,
                    local_batch,
                    True,
                    config.seed,
                    config.augment,
                    balanced,
                    config.randomize,
                    shard,
                )
                cw = class_weights(train_s.labels) if config.balance == "weights" else None
            if (
                state.get("phase") != phase
            ):  # this round's best is the model, whatever the earlier phases scored on synthetic tiles
                state.pop("best_key", None)
                state["best_val_auc"] = -1.0
        state["phase"] = phase
        write_json(state_path, state)
        with strategy.scope():
            if phase == "finetune" and (run / "head.keras").exists():
                model = load_classifier(run / "head.keras")
            elif mining:
                model = load_classifier(run / "best.keras")
            else:
                model = build_classifier(
                    config.backbone, config.pooling, config.alpha, config.weights, config.dropout, config.size
                )
            set_trainable(
                model,
                "scratch" if mining and not config.pretrained else ("finetune" if mining else phase),
                config.finetune_layers,
                config.finetune_bn,
            )
            steps = config.steps_per_epoch or _steps(len(train_s), config.batch_size, shard is not None)
            if config.clr:
                schedule = CyclicLR(lr, lr * config.clr_factor, step_size=2 * steps, mode=config.clr)
            else:  # cosine decay to a tenth over the phase: calmer validation curves than a constant rate
                schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, epochs * steps), alpha=0.1)
            compile_classifier(model, keras.optimizers.Adam(schedule), metrics=classification_metrics())
        if cluster is None:  # BackupAndRestore needs a built model; JAX's fit builds it before the callbacks start,
            # and an eager call there would compile every layer's ops one by one (half a minute for MobileNetV2)
            model(np.zeros((1, config.size, config.size, 3), np.float32))

        callbacks = [
            keras.callbacks.BackupAndRestore(str(run / "backup" / phase)),
            MajorityBaseline(val_s.labels),
            # A network from scratch sits near chance for its first epochs (the demo's α 0.35: ~9 of 20), where
            # val AUC is BatchNorm noise; stopping on that noise ended one demo run at epoch 5 with AUC 0.54.
            keras.callbacks.EarlyStopping(
                "val_auc",
                mode="max",
                patience=config.patience,
                restore_best_weights=True,
                start_from_epoch=epochs // 2 if phase == "scratch" else 0,
            ),
            *scorers,  # before the callbacks that read their keys
            # Every process saves its own copy: Keras' save is a collective on a JAX cluster.
            BestCheckpoint(run / "best.keras", state, state_path, extra=info, monitor=MONITOR[config.select]),
            *([PhaseLogger(run / "history.csv", phase)] if main else []),
            *(extra_callbacks or []),
        ]
        if config.tensorboard and main:
            callbacks.append(keras.callbacks.TensorBoard(str(run / "tensorboard" / phase)))
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        print(
            f"phase {phase}: {epochs} epochs at lr {lr:g} ({config.clr or 'cosine decay'}), {trainable:,} trainable "
            "parameters"
        )
        try:
            model.fit(
                train_ds.repeat() if config.steps_per_epoch else train_ds,
                validation_data=val_ds,
                epochs=epochs,
                steps_per_epoch=config.steps_per_epoch,
                class_weight=cw,
                callbacks=callbacks,
                verbose=_verbosity(config.verbose),
            )
        except KeyboardInterrupt:
            interrupted = True
            where, again = run, ""
            if cluster is not None:  # every process resumes the run folder, process 0's
                where, again = (run if main else run.parent), " --distributed jax" + cluster.relaunch_option
            print(f"\ninterrupted during phase {phase}; continue with: shipcam train --resume {where}{again}")
            break
        if phase == "head":
            save_classifier(model, run / "head.keras", extra={"train_size": config.size})
        state["done"].append(phase)
        write_json(state_path, state)

    elapsed = time.perf_counter() - t0
    state["train_seconds"] = state.get("train_seconds", 0.0) + elapsed
    if cluster is not None and not interrupted and model is not None:
        # The copies must have stayed identical; a collective: every process checks.
        state["distributed"] = {
            "backend": "jax",
            "processes": cluster.num_processes,
            "global_batch": config.batch_size,
            "ranks_max_abs_weight_diff": cluster.weight_spread(model),
        }
    write_json(state_path, state)
    if interrupted:
        return {"interrupted": True, "state": state}
    if cluster is not None:
        return {"interrupted": False, "state": state}

    best = load_classifier(run / "best.keras", compile=False)
    compile_classifier(best, metrics=classification_metrics())
    metrics = {k: float(v) for k, v in best.evaluate(val_ds, return_dict=True, verbose=0).items()}
    if config.target_fa is not None:
        metrics["threshold"] = _calibrate(best, run, info, config)
    metrics.update(
        majority_baseline=baseline,
        n_train=len(train_s),
        n_val=len(val_s),
        val_ship_fraction=val_s.ship_fraction,
        train_seconds=state["train_seconds"],
        best_epoch=state.get("best_epoch"),
        **({"distributed": state["distributed"]} if "distributed" in state else {}),
    )
    write_json(run / "metrics.json", metrics)
    _plot_run(run)
    print(
        f"best model: val accuracy {metrics['accuracy']:.3f} (majority baseline {baseline:.3f}), "
        f"AUC {metrics['auc']:.3f}, precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f} "
        f"-> {run / 'best.keras'} ({state['train_seconds']:.0f}s training)"
    )
    return metrics


def calibrate_model(
    model,
    target_fa: float = DEFAULT_TARGET_FA,
    n_scenes: int = 16,
    gsd: float | None = None,
    path: str | Path | None = None,
    info: dict | None = None,
) -> dict:
    """Save in the ``.keras`` file the threshold at which held-out synthetic scenes give ``target_fa`` false alarms/Mpx.

    ``model`` is a path (rewritten in place, atomically) or an in-memory
    model saved to ``path``. See ``train.threshold``.
    """
    from shipcam.runtime.detector import Detector
    from shipcam.train.engine import KerasEngine
    from shipcam.train.model import load_classifier, model_info, save_classifier
    from shipcam.train.threshold import calibrate_threshold, synthetic_labelled_scenes

    if isinstance(model, (str, Path)):
        path, model = Path(model), load_classifier(model)
    info = {**model_info(model), **(info or {})}
    gsd = gsd or info.get("gsd") or 3.0
    size = int(info.get("train_size") or 96)
    scenes = synthetic_labelled_scenes(
        n_scenes, size=max(768, 4 * size), gsd=gsd, gsd_range=info.get("gsd_range") if gsd == info.get("gsd") else None
    )
    cal = calibrate_threshold(Detector(KerasEngine(model, info=info)), scenes, target_fa)
    save_classifier(model, path, extra={**info, "threshold": cal["threshold"]})
    return cal


def _calibrate(best, run: Path, info: dict, config: TrainConfig) -> dict:
    cal = calibrate_model(
        best, config.target_fa, config.calibration_scenes, config.gsd, path=run / "best.keras", info=info
    )
    print(
        f"threshold {cal['threshold']:.3f}: {cal['synthetic_fa_per_mpx']:.2f} false alarms/Mpx and recall "
        f"{cal['synthetic_recall']:.2f} on {cal['synthetic_scenes']} held-out synthetic scenes (target "
        f"{config.target_fa:g}/Mpx)"
    )
    return cal


def _detector(path: Path, info: dict):
    """A runtime ``Detector`` on the Keras model in ``path`` (what mining scans with)."""
    from shipcam.runtime.detector import Detector
    from shipcam.train.engine import KerasEngine
    from shipcam.train.model import load_classifier

    return Detector(KerasEngine(load_classifier(path, compile=False), info=info))


def _steps(n: int, batch_size: int, sharded: bool) -> int:
    """Steps in one pass over ``n`` images: sharded data drops the last partial global batch (see make_dataset)."""
    if sharded and n < batch_size:
        raise ShipcamError(f"{n} training images do not make one global batch of {batch_size}")
    return max(1, n // batch_size if sharded else int(np.ceil(n / batch_size)))


def _resume_point(run: Path, state: dict) -> dict:
    """Where this run folder would continue: finished phases, the current one, and its backup's epoch."""
    epoch = 0
    meta = run / "backup" / str(state.get("phase")) / "training_metadata.json"
    if meta.is_file():
        try:
            epoch = int(json.loads(meta.read_text()).get("epoch", 0))
        except (ValueError, TypeError):
            pass
    return {"done": list(state.get("done", [])), "phase": state.get("phase"), "epoch": epoch}


def _verbosity(v: int | str) -> int | str:
    import sys

    if v == "auto":
        return 1 if sys.stdout.isatty() else 2
    return v


def read_history(path: str | Path) -> tuple[dict[str, list[float]], list[int]]:
    """History columns across phases, and the indices where a new phase starts."""
    rows = list(csv.DictReader(open(path)))
    header = list(rows[0]) if rows else []
    history = {
        k: [float(r[k]) for r in rows if r.get(k) not in (None, "")] for k in header if k not in ("phase", "epoch")
    }
    starts = [i for i in range(1, len(rows)) if rows[i]["phase"] != rows[i - 1]["phase"]]
    return history, starts


def _plot_run(run: Path) -> None:
    from shipcam.train.plots import plot_history

    if (run / "history.csv").exists():
        history, starts = read_history(run / "history.csv")
        plot_history(history, run / "curves.png", starts)
