"""Multi-worker training, verified: ``python -m shipcam.benchmarks.multiworker --work DIR``.

Runs ``shipcam train --strategy multiworker`` as two local worker processes
(``TF_CONFIG`` on localhost) and the same training as one process at the same
global batch, then compares the per-epoch training loss from each run's
``history.csv`` (printed as a table, plus a JSON line). When a worker fails,
it prints the worker's last error line instead, and exits 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

TRAIN = [
    "--weights",
    "none",
    "--size",
    "64",
    "--synthetic-n",
    "96",
    "--batch-size",
    "16",
    "--scratch-epochs",
    "3",
    "--steps-per-epoch",
    "4",
    "--no-randomize",
    "--seed",
    "0",
    "--balance",
    "none",
    "--dropout",
    "0",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _losses(run: Path) -> list[float]:
    with open(run / "history.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def _last_error(log: str) -> str:
    lines = [line for line in log.splitlines() if "Error" in line or "error:" in line]
    return lines[-1].strip() if lines else log.strip().splitlines()[-1] if log.strip() else "(no output)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="runs/multiworker")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--rtol", type=float, default=0.05, help="per-epoch loss tolerance, relative")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "shipcam.cli", "train", *TRAIN]

    single = subprocess.run(
        [*cmd, "--run-dir", str(work / "single")], capture_output=True, text=True, timeout=args.timeout
    )
    ports = [_free_port(), _free_port()]
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{q}" for q in ports]}, "task": {"type": "worker", "index": i}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs.append(
            subprocess.Popen(
                [*cmd, "--strategy", "multiworker", "--run-dir", str(work / f"worker{i}")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = [pr.communicate(timeout=args.timeout)[0] for pr in procs]
    result = {
        "train_args": TRAIN,
        "global_batch": 16,
        "single_rc": single.returncode,
        "worker_rc": [pr.returncode for pr in procs],
    }
    if single.returncode or any(pr.returncode for pr in procs):
        result["single_error"] = _last_error(single.stdout + single.stderr) if single.returncode else None
        result["worker_errors"] = [_last_error(log) if pr.returncode else None for log, pr in zip(logs, procs)]
        print(f"single worker: rc {single.returncode}; two workers: rc {result['worker_rc']}")
        for i, err in enumerate(result["worker_errors"]):
            if err:
                print(f"worker {i}: {err}")
        print(json.dumps(result))
        return 1
    one, two = _losses(work / "single"), _losses(work / "worker0")
    result.update(
        single_loss=one, multiworker_loss=two, within=all(abs(a - b) <= args.rtol * abs(a) for a, b in zip(one, two))
    )
    print("| epoch | loss, 1 worker | loss, 2 workers |")
    print("|---:|---:|---:|")
    for e, (a, b) in enumerate(zip(one, two), 1):
        print(f"| {e} | {a:.4f} | {b:.4f} |")
    print(json.dumps(result))
    return 0 if result["within"] else 1


if __name__ == "__main__":
    sys.exit(main())
