"""``shipcam train --distributed jax``: the data shards, the cluster's configuration and its errors, and a real
two-process training on Keras' JAX backend (skipped without JAX)."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from shipcam.errors import ShipcamError
from shipcam.train.backbones import get_backbone
from shipcam.train.data.pipeline import make_dataset
from shipcam.train.data.sources import load_dataset
from shipcam.train.distributed import ADDRESSES, NUM_PROCESSES, PROCESS_ID, Cluster, free_port

HAS_JAX = importlib.util.find_spec("jax") is not None
NO_JAX = 'JAX is not installed: pip install "shipcam[distributed]" to run the JAX backend\'s training tests'


def _cluster_env(port_or_address, n, k) -> dict:
    address = port_or_address if isinstance(port_or_address, str) else f"localhost:{port_or_address}"
    return {ADDRESSES: address, NUM_PROCESSES: str(n), PROCESS_ID: str(k)}


def _train(args: list[str], env: dict | None = None, timeout: float = 120, **kw):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KERAS_DISTRIBUTION_")}, **(env or {})}
    cmd = [sys.executable, "-m", "shipcam.cli", "train", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)


def _one_line_error(r, *fragments: str) -> str:
    """Exit code 2 and one line on stderr, naming each fragment; no traceback."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr[-2000:])
    assert lines[0].startswith("shipcam train: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# --- the cluster as Keras' three variables describe it


def test_cluster_reads_keras_distribution_variables():
    c = Cluster.from_env(_cluster_env("10.0.0.1:1234,10.0.0.2:2345", 2, 1))
    assert (c.num_processes, c.process_id, c.host, c.port, c.is_main) == (2, 1, "10.0.0.1", 1234, False)
    assert c.shard == (2, 1) and c.local_batch(16) == 8
    assert c.run_dir("runs/x").as_posix() == "runs/x/process1"
    assert Cluster.from_env(_cluster_env("[::1]:99", 3, 0)).host == "::1"
    single = Cluster.from_env({})
    assert (single.num_processes, single.shard, single.run_dir("runs/x").as_posix()) == (1, None, "runs/x")
    assert Cluster.from_env({NUM_PROCESSES: "1"}).num_processes == 1


@pytest.mark.parametrize(
    "env, named",
    [
        ({ADDRESSES: "localhost", NUM_PROCESSES: "2", PROCESS_ID: "0"}, "'localhost'"),
        ({ADDRESSES: "localhost:70000", NUM_PROCESSES: "2", PROCESS_ID: "0"}, "'localhost:70000'"),
        ({ADDRESSES: "a:1,b:2,c:3", NUM_PROCESSES: "2", PROCESS_ID: "0"}, "'a:1,b:2,c:3'"),
        ({ADDRESSES: "localhost:1234", NUM_PROCESSES: "2", PROCESS_ID: "2"}, "'2'"),
        ({ADDRESSES: "localhost:1234", NUM_PROCESSES: "two", PROCESS_ID: "0"}, "'two'"),
        ({ADDRESSES: "localhost:1234", NUM_PROCESSES: "0", PROCESS_ID: "0"}, "'0'"),
        ({ADDRESSES: "localhost:1234"}, "KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID"),
    ],
)
def test_bad_cluster_variables_name_the_value(env, named):
    with pytest.raises(ShipcamError, match="KERAS_DISTRIBUTION_") as e:
        Cluster.from_env(env)
    assert named in str(e.value)


def test_the_global_batch_must_split_evenly():
    with pytest.raises(ShipcamError, match="received 15"):
        Cluster(num_processes=2).local_batch(15)


# --- the shards


def _rows(x, y) -> list[tuple]:
    """Each image as a hashable row (its label and pixels), to compare batches as multisets."""
    x, y = np.asarray(x), np.asarray(y)
    return sorted((float(y[i, 0]), x[i].round(4).tobytes()) for i in range(len(x)))


@pytest.mark.parametrize("balanced", [False, True])
def test_shards_make_together_the_one_process_batches(synthetic_dir, balanced):
    """Two passes of the one-process pipeline against its two halves: step for step, the same images."""
    samples = load_dataset(synthetic_dir, show_progress=False)
    spec, n, batch = get_backbone("mobilenet_v2"), 2, 8
    steps = 2 * (len(samples) // batch)  # two passes: the reshuffle stays in step too
    kw = dict(seed=5, augment=False, balanced=balanced)
    one = list(make_dataset(samples, spec, 32, batch, True, **kw).repeat().take(steps))
    shards = [
        list(make_dataset(samples, spec, 32, batch // n, True, shard=(n, k), **kw).repeat().take(steps))
        for k in range(n)
    ]
    assert len(samples) % batch == 0 and len(one) == steps
    for b in range(steps):
        local = [shards[k][b] for k in range(n)]
        assert all(len(x) == batch // n for x, _ in local)
        together = _rows(np.concatenate([x for x, _ in local]), np.concatenate([y for _, y in local]))
        assert together == _rows(*one[b]), f"step {b}: the shards' images are not the one-process batch"


def test_validation_shards_cover_the_set_but_its_remainder(synthetic_dir):
    samples = load_dataset(synthetic_dir, show_progress=False).subset(np.arange(47))  # 47 = 3 x 15 + 2
    spec, n = get_backbone("mobilenet_v2"), 3
    every = _rows(*[np.concatenate(a) for a in zip(*make_dataset(samples, spec, 32, 64, False))])
    parts = [list(make_dataset(samples, spec, 32, 4, False, shard=(n, k))) for k in range(n)]
    assert {len(p) for p in parts} == {4} and {tuple(len(x) for x, _ in p) for p in parts} == {(4, 4, 4, 3)}
    got = _rows(*[np.concatenate(a) for a in zip(*[b for p in parts for b in p])])
    assert len(got) == 45 and set(got) <= set(every)


# --- errors: one line, within seconds, before Keras loads (the processes meet only where JAX is installed)


def test_options_that_cannot_work_are_one_line(tmp_path):
    run = ["--run-dir", str(tmp_path / "run")]
    _one_line_error(_train([*run, "--distributed", "jax", "--num-processes", "0"]), "--num-processes", "received 0")
    _one_line_error(_train([*run, "--strategy", "multiworker"]), "multiworker", "--distributed jax")
    _one_line_error(_train([*run, "--distributed", "jax", "--num-processes", "2", "--batch-size", "15"]), "15")
    _one_line_error(_train([*run, "--num-processes", "2"]), "--distributed jax")
    _one_line_error(
        _train([*run, "--distributed", "jax", "--strategy", "mirrored"]), "--strategy mirrored", "--distributed jax"
    )
    _one_line_error(_train(run + ["--distributed", "jax"], {ADDRESSES: "localhost:0x1", NUM_PROCESSES: "2"}), "0x1")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)
def test_a_process_that_never_joins_is_named(tmp_path):
    r = _train(
        ["--run-dir", str(tmp_path / "run"), "--distributed", "jax", "--batch-size", "12", "--join-timeout", "1"],
        _cluster_env(free_port(), 3, 0),
    )
    _one_line_error(r, "processes 1, 2 of 3 did not join within 1 s", "KERAS_DISTRIBUTION_PROCESS_ID=1")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)
def test_a_wrong_port_or_host_is_one_line(tmp_path):
    run = ["--run-dir", str(tmp_path / "run"), "--distributed", "jax", "--join-timeout", "1"]
    port = free_port()  # nobody listens there
    _one_line_error(
        _train(run, _cluster_env(port, 2, 1)), f"process 1: nothing answered at localhost:{port} within 1 s"
    )
    line = _one_line_error(_train(run, _cluster_env("nohost.invalid:1234", 2, 1)), "nohost.invalid")
    assert "cannot resolve" in line or "nothing answered" in line  # without DNS at all, the name cannot be looked up


@pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)
def test_processes_started_with_other_options_stop_together(tmp_path):
    port, procs = free_port(), []
    for k, batch in enumerate(["16", "8"]):
        args = [
            "--run-dir",
            str(tmp_path / "run"),
            "--distributed",
            "jax",
            "--batch-size",
            batch,
            "--join-timeout",
            "60",
        ]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KERAS_DISTRIBUTION_")},
            **_cluster_env(port, 2, k),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "shipcam.cli", "train", *args], env=env, stderr=subprocess.PIPE, text=True
            )
        )
    for p in procs:
        r = subprocess.CompletedProcess(p.args, p.wait(timeout=120), "", p.stderr.read())
        _one_line_error(r, "process 1", "other training options", "batch_size: 8 vs 16")


# --- the JAX backend


@pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)
def test_lr_range_test_sets_every_steps_rate_on_jax(tmp_path):
    """On JAX, fit trains on a copy of the variables: the rate the callback writes must reach each step.

    Reference: the loss is the mean output (plus a constant), so every SGD step moves the bias by exactly
    minus that step's rate: after the sweep it has moved by the sum of its rates.
    """
    script = textwrap.dedent(
        """
        import json, sys
        import keras, numpy as np
        from shipcam.train.callbacks import LRRangeTest
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        model.compile(keras.optimizers.SGD(1.0), loss=lambda y, p: keras.ops.mean(p) + 10.0)
        cb = LRRangeTest(1e-3, 1e-1, num_steps=8)  # two epochs of four steps: the sweep crosses an epoch's end
        x, y = np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32)
        model.fit(x, y, batch_size=1, epochs=2, callbacks=[cb], verbose=0)
        print(json.dumps({"bias": float(model.layers[-1].bias.numpy()[0]), "lrs": cb.lrs}))
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    sweep = 1e-3 * 100 ** (np.arange(8) / 7)
    assert out["lrs"] == pytest.approx(sweep, rel=1e-6)
    assert out["bias"] == pytest.approx(-sweep.sum(), rel=1e-5)


@pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)
def test_two_local_processes_train_one_model(tmp_path):
    """Two JAX processes (cyclical rate, checkpoints, the TensorFlow-side finish): identical copies, one run folder."""
    run = tmp_path / "run"
    args = ["--run-dir", str(run), "--backbone", "mobilenet_v2_s16", "--weights", "none", "--size", "32"]
    args += ["--synthetic-n", "40", "--batch-size", "8", "--scratch-epochs", "2", "--steps-per-epoch", "1"]
    args += ["--clr", "triangular", "--no-augment", "--target-fa", "none", "--export", "none"]
    args += ["--distributed", "jax", "--num-processes", "2"]
    # XLA's cheapest code generation: compiling the training step is most of this test's time, and what is
    # checked here (the two copies agree) does not depend on how fast the step runs.
    xla = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    r = _train(args, {"XLA_FLAGS": xla}, timeout=900)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])

    import csv

    with open(run / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in history] == [1, 2] and all(np.isfinite(float(row["loss"])) for row in history)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["distributed"]["processes"] == 2 and metrics["distributed"]["ranks_max_abs_weight_diff"] == 0.0
    assert 0.0 <= metrics["auc"] <= 1.0 and (run / "curves.png").exists()
    # Process 1 keeps checkpoints of its own, and no logs or plots.
    other = run / "process1"
    assert (other / "best.keras").exists() and (other / "state.json").exists()
    assert not (other / "history.csv").exists() and not (other / "curves.png").exists()

    # Independently of the trainer's own check: the two processes' files hold the same weights, BatchNorm included.
    from shipcam.train.model import load_classifier

    w0, w1 = load_classifier(run / "best.keras").get_weights(), load_classifier(other / "best.keras").get_weights()
    assert len(w0) == len(w1) and all(np.array_equal(a, b) for a, b in zip(w0, w1))
