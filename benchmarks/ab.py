"""Interleaved A/B latency of exported files: the speed ratio a noisy machine can still give.

    python -m shipcam.benchmarks.ab EXP/best_fp32.tflite EXP/best_int8.tflite --size 224 --threads 1

Timing one file after the other lets a neighbour's burst land on one of them;
here the files take turns call by call (A B C A B C ...), so slow spells hit
all of them alike. Prints the median and p90 of the bare engine call per file
and each file's speed relative to the first, and writes JSON.

Use it at 1 thread. With more, the engines' worker pools (ONNX Runtime's spin
after each call) compete with the next engine's call and every multi-threaded
number comes out slower than single-threaded; measure those with
``shipcam bench``, one file at a time.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

__all__ = ["interleaved_latency", "main"]


def interleaved_latency(
    paths: list[str | Path], size: int, threads: int, runs: int = 200, warmup: int = 10, seed: int = 0
) -> list[dict]:
    """Median/p90 engine-call time (ms) of each file, calls interleaved, batch 1, same input for all."""
    from shipcam.runtime.engines import open_engine

    engines = [open_engine(p, threads=threads) for p in paths]
    x = np.random.default_rng(seed).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    for _ in range(warmup):
        for e in engines:
            e.run(x)
    times = [[] for _ in engines]
    for _ in range(runs):
        for t, e in zip(times, engines):
            t0 = time.perf_counter()
            e.run(x)
            t.append((time.perf_counter() - t0) * 1e3)
    base = float(np.median(times[0]))
    return [
        {
            "file": str(p),
            "engine": type(e).__name__,
            "threads": threads,
            "input": size,
            "median_ms": float(np.median(t)),
            "p90_ms": float(np.percentile(t, 90)),
            "speedup_vs_first": base / float(np.median(t)),
        }
        for p, e, t in zip(paths, engines, times)
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="exported files; ratios are relative to the first")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--out", default="runs/ab.json")
    args = ap.parse_args(argv)

    from shipcam._utils.io import write_json

    if args.threads > 1:
        print(
            f"note: --threads {args.threads}: interleaved worker pools disturb each other; read these numbers with care"
        )
    rows = interleaved_latency(args.files, args.size, args.threads, args.runs)
    print("| file | engine | threads | input | median ms | p90 ms | x first |\n|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {Path(r['file']).name} | {r['engine']} | {r['threads']} | {r['input']} | {r['median_ms']:.2f} | "
            f"{r['p90_ms']:.2f} | {r['speedup_vs_first']:.2f} |"
        )
    machine = {
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "runs": args.runs,
    }
    write_json(args.out, {"machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
