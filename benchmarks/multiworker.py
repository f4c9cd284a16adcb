"""Training on several processes, verified: ``python -m shipcam.benchmarks.multiworker --work DIR``.

Trains the same small model (synthetic scenes, global batch 16, a few
epochs of a few steps, no augmentation) twice with ``shipcam train
--distributed jax``: as one process and as two local processes. With the
same seed, the two processes' local batches of a step are together the one
process's batch (``make_dataset``'s ``shard``), so:

- the per-epoch training losses agree (``loss_max_rel_diff``, at most ``--rtol``);
- the two processes end with the same weights (``ranks_max_abs_weight_diff``, 0):
  the trainer's own check of the final weights, and each process's
  ``best.keras`` read back here;
- the ``.keras`` file exports, in the TensorFlow process the trainer starts,
  to fp32 files that pass parity (``export_parity_ok``).

Then a third two-process run is started by hand, as on a cluster (the
``KERAS_DISTRIBUTION_*`` variables); process 1 is killed in epoch 2, and the
same two commands with ``--resume`` finish it from the epoch-1 checkpoint.

Prints a table of per-epoch losses and writes ``DIR/multiworker.json``; exits
1 when a check fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from shipcam.train.distributed import ADDRESSES, NUM_PROCESSES, PROCESS_ID, free_port

# 80 scenes: 64 training images, 4 global batches of 16, so every epoch is one whole pass on 1 or 2 processes.
# The rate: Adam's first steps move weights whose gradient is near zero by +-lr whatever its size, so float
# rounding (which one process sums in another order than two) grows with the rate; at the from-scratch
# recipe's 3e-3, reordering the images inside each batch of one process moves the epoch losses by up to 15%.
TRAIN = [
    "--weights",
    "none",
    "--size",
    "64",
    "--synthetic-n",
    "80",
    "--batch-size",
    "16",
    "--scratch-epochs",
    "3",
    "--steps-per-epoch",
    "4",
    "--no-augment",
    "--seed",
    "0",
    "--balance",
    "none",
    "--dropout",
    "0",
    "--target-fa",
    "none",
]
DEFAULT_LR = 1e-4
EXPORT = "tflite_fp32,onnx_fp32"
_EPOCH_LINE = re.compile(r"^\s*(\d+)/\1 - (\d+)s ")


def _losses(run: Path) -> list[tuple[int, float]]:
    with open(run / "history.csv") as f:
        return [(int(r["epoch"]), float(r["loss"])) for r in csv.DictReader(f)]


def _epoch_seconds(log: str) -> list[int]:
    """Keras' per-epoch wall time (whole seconds) from its one-line-per-epoch output."""
    return [int(m.group(2)) for m in map(_EPOCH_LINE.match, log.splitlines()) if m]


def _weights(path: Path):
    from shipcam.train.model import load_classifier

    return load_classifier(path).get_weights()


def _max_abs_diff(a: list, b: list) -> float:
    import numpy as np

    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return float("inf")
    return max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b))


def _train(work: Path, name: str, n: int, train: list[str], timeout: float, export: str = "none") -> dict:
    cmd = [sys.executable, "-m", "shipcam.cli", "train", *train, "--run-dir", str(work / name)]
    cmd += ["--distributed", "jax", "--num-processes", str(n), "--export", export]
    t0 = time.perf_counter()
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    (work / f"{name}.log").write_text(r.stdout + r.stderr)
    return {
        "rc": r.returncode,
        "wall_s": round(time.perf_counter() - t0, 1),
        "epoch_s": _epoch_seconds(r.stdout),
        "error": (r.stderr.strip().splitlines() or [""])[-1] if r.returncode else None,
    }


def _cluster(work: Path, run: Path, train: list[str], resume: bool, port: int) -> list[subprocess.Popen]:
    """Two processes started by hand, each with its KERAS_DISTRIBUTION_* variables, as on two machines."""
    procs = []
    for k in range(2):
        env = {
            **os.environ,
            ADDRESSES: f"localhost:{port}",
            NUM_PROCESSES: "2",
            PROCESS_ID: str(k),
            "PYTHONUNBUFFERED": "1",
        }
        args = ["--resume", str(run)] if resume else [*train, "--run-dir", str(run)]
        log = open(work / f"resume_{'second' if resume else 'first'}_process{k}.log", "w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "shipcam.cli", "train", *args, "--distributed", "jax", "--export", "none"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()
    return procs


def _kill_and_resume(work: Path, train: list[str], timeout: float) -> dict:
    """Kill process 1 in epoch 2, then process 0, and resume both: the run must go on from epoch 2."""
    run = work / "resume"
    t0 = time.perf_counter()
    procs = _cluster(work, run, train, False, free_port())
    log1 = work / "resume_first_process1.log"
    killed = False
    while time.perf_counter() - t0 < timeout and all(p.poll() is None for p in procs):
        # Process 1 has begun epoch 2 and process 0 has logged epoch 1: both wrote their epoch-1 checkpoints.
        logged = (run / "history.csv").exists() and len(_losses(run)) >= 1
        if logged and "Epoch 2/" in log1.read_text(errors="replace"):
            time.sleep(1.0)  # inside epoch 2
            procs[1].send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.2)
    # Process 0 would wait on the dead one until JAX's heartbeat gives up (100 s); a launcher kills it, so here.
    procs[0].kill()
    for p in procs:
        p.wait()
    first = {
        "killed": "process 1 in epoch 2" if killed else None,
        "history_epochs_before": [e for e, _ in _losses(run)] if (run / "history.csv").exists() else [],
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    t1 = time.perf_counter()
    procs = _cluster(work, run, train, True, free_port())
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
    logs = [(work / f"resume_second_process{k}.log").read_text(errors="replace") for k in range(2)]
    state = json.loads((run / "state.json").read_text()) if (run / "state.json").exists() else {}
    epochs = [e for e, _ in _losses(run)] if (run / "history.csv").exists() else []
    starts = [re.findall(r"^Epoch (\d+)/", log, re.M)[:1] for log in logs]
    result = {
        **first,
        "resume_rc": [p.returncode for p in procs],
        "resumed_at_epoch": [int(s[0]) if s else None for s in starts],
        "history_epochs": epochs,
        "ranks_max_abs_weight_diff": state.get("distributed", {}).get("ranks_max_abs_weight_diff"),
        "resume_wall_s": round(time.perf_counter() - t1, 1),
    }
    result["ok"] = (
        killed
        and result["resume_rc"] == [0, 0]
        and result["resumed_at_epoch"] == [2, 2]
        and epochs == [1, 2, 3]
        and result["ranks_max_abs_weight_diff"] == 0.0
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="runs/multiworker")
    p.add_argument("--timeout", type=float, default=1200, help="seconds per training run")
    p.add_argument("--rtol", type=float, default=0.05, help="per-epoch loss tolerance, relative")
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"--scratch-lr of the runs (default: {DEFAULT_LR:g})")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="skip the kill-and-resume run")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train = [*TRAIN, "--scratch-lr", f"{args.lr:g}"]

    runs = {
        "single": _train(work, "single", 1, train, args.timeout),
        "two": _train(work, "two", 2, train, args.timeout, EXPORT),
    }
    result = {"train_args": train, "global_batch": 16, "processes": 2, "runs": runs}
    failed = {name: r["error"] for name, r in runs.items() if r["rc"]}
    if failed:
        for name, err in failed.items():
            print(f"{name}: {err}")
        result["ok"] = False
        (work / "multiworker.json").write_text(json.dumps(result, indent=2) + "\n")
        return 1

    one, two = _losses(work / "single"), _losses(work / "two")
    rel = [abs(a - b) / abs(a) for (_, a), (_, b) in zip(one, two)]
    metrics = json.loads((work / "two" / "metrics.json").read_text())
    final = metrics["distributed"]["ranks_max_abs_weight_diff"]
    files = _max_abs_diff(_weights(work / "two" / "best.keras"), _weights(work / "two" / "process1" / "best.keras"))
    manifest = json.loads((work / "two" / "export" / "manifest.json").read_text())
    result.update(
        single_loss=[v for _, v in one],
        two_process_loss=[v for _, v in two],
        loss_max_rel_diff=max(rel) if len(one) == len(two) and one else float("inf"),
        ranks_max_abs_weight_diff=max(final, files),
        ranks_final_weights_max_abs_diff=final,
        ranks_best_keras_max_abs_diff=files,
        export_parity_ok=bool(manifest["files"]) and all(e["passed"] for e in manifest["files"]),
        exported=[e["file"] for e in manifest["files"]],
    )
    print("| epoch | loss, 1 process | loss, 2 processes | relative difference |")
    print("|---:|---:|---:|---:|")
    for (e, a), (_, b), r in zip(one, two, rel):
        print(f"| {e} | {a:.6f} | {b:.6f} | {r:.1e} |")
    print(
        f"weights, process 0 vs 1: max |diff| {result['ranks_max_abs_weight_diff']:g}; exported "
        f"{', '.join(map(str, result['exported']))}: parity {'ok' if result['export_parity_ok'] else 'FAILED'}"
    )
    ok = result["loss_max_rel_diff"] <= args.rtol and result["ranks_max_abs_weight_diff"] == 0.0
    ok = ok and result["export_parity_ok"] and len(one) == len(two) == 3
    if args.resume:
        result["resume"] = _kill_and_resume(work, train, args.timeout)
        r = result["resume"]
        print(
            f"resume: {r['killed']}; history before {r['history_epochs_before']}, resumed at epoch "
            f"{r['resumed_at_epoch']} -> {r['history_epochs']}; weights max |diff| {r['ranks_max_abs_weight_diff']}"
        )
        ok = ok and r["ok"]
    result["ok"] = ok
    (work / "multiworker.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("loss_max_rel_diff", "ranks_max_abs_weight_diff", "export_parity_ok")}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
