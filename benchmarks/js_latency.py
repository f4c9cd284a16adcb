"""Python beside JavaScript: ``python -m shipcam.benchmarks.js_latency MODEL.onnx IMAGE [--runs 30] [--threads 1]``.

Times ``Detector.predict`` (ONNX Runtime) on one image, then runs
``node js/bench/latency.mjs`` on the same file and image, and prints both
runtimes' per-stage medians side by side (one sitting, one machine) and a
JSON line. Needs node and ``js/node_modules`` (``cd js && npm ci --ignore-scripts``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("image")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    from shipcam.runtime import Detector, read_image

    det = Detector.load(args.model, threads=args.threads)
    image = read_image(args.image)
    for _ in range(3):
        det.predict(image)
    stages: dict[str, list[float]] = {"preprocess": [], "inference": [], "cam": [], "total": []}
    for _ in range(args.runs):
        t0 = time.perf_counter()
        pred = det.predict(image)
        stages["total"].append((time.perf_counter() - t0) * 1e3)
        for k in ("preprocess", "inference", "cam"):
            stages[k].append(pred.timings_ms[k])
    py = {k: statistics.median(v) for k, v in stages.items()}
    node = subprocess.run(["node", str(ROOT / "js" / "bench" / "latency.mjs"), args.model, args.image, "--runs", str(args.runs), "--threads", str(args.threads)], capture_output=True, text=True, timeout=600)
    if node.returncode:
        print(f"node failed: {node.stderr.strip().splitlines()[-1] if node.stderr.strip() else node.returncode}", file=sys.stderr)
        return 1
    js = json.loads(node.stdout.strip().splitlines()[-1])["median_ms"]
    print(f"{args.model} on {args.image} {image.shape[1]}x{image.shape[0]}, {args.threads} thread(s), median of {args.runs}")
    print("| stage | Python (ms) | Node.js (ms) |\n|---|---:|---:|")
    for k in py:
        print(f"| {k} | {py[k]:.2f} | {js[k]:.2f} |")
    print(json.dumps({"model": args.model, "image": args.image, "threads": args.threads, "runs": args.runs, "python_ms": py, "node_ms": js}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
