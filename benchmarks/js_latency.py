"""Python beside JavaScript:
``python -m shipcam.benchmarks.js_latency MODEL.onnx IMAGE [--runs 30] [--threads 1] [--browser 1 2]``.

Times ``Detector.predict`` (ONNX Runtime) on one image, then runs
``node js/bench/latency.mjs`` on the same file and image, and with
``--browser`` the web page (js/web, onnxruntime-web WebAssembly) in headless
Chromium with each thread count given, and prints every runtime's per-stage
medians side by side (one sitting, one machine) and a JSON line. Needs node
and ``js/node_modules`` (``cd js && npm ci --ignore-scripts``); the browser
column needs Chromium.

The page runs in real time (``benchmarks/browser.py``: headless runs with a
virtual-time budget freeze ``performance.now()`` during compute), served with
cross-origin isolation headers, which WebAssembly threads need.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipcam.benchmarks.browser import BrowserError, Page, find_chromium, serve

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("image")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--browser",
        type=int,
        nargs="*",
        metavar="THREADS",
        help="also time the web page in headless Chromium with these thread counts",
    )
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
    node = subprocess.run(
        [
            "node",
            str(ROOT / "js" / "bench" / "latency.mjs"),
            args.model,
            args.image,
            "--runs",
            str(args.runs),
            "--threads",
            str(args.threads),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if node.returncode:
        print(
            f"node failed: {node.stderr.strip().splitlines()[-1] if node.stderr.strip() else node.returncode}",
            file=sys.stderr,
        )
        return 1
    js = json.loads(node.stdout.strip().splitlines()[-1])["median_ms"]
    web = {t: page_latency(args.model, args.image, args.runs, t) for t in (args.browser or [])}
    print(
        f"{args.model} on {args.image} {image.shape[1]}x{image.shape[0]}, Python and Node {args.threads} thread(s), "
        f"median of {args.runs}"
    )
    cols = [f"browser WASM, {t} thread{'s' if t > 1 else ''} (ms)" for t in web]
    print(
        "| stage | Python (ms) | Node.js (ms) | "
        + " | ".join(cols)
        + (" |" if cols else "")
        + "\n|---|---:|---:|"
        + "---:|" * len(cols)
    )
    for k in py:
        print(
            f"| {k} | {py[k]:.2f} | {js[k]:.2f} | "
            + " | ".join(f"{w['median_ms'][k]:.2f}" for w in web.values())
            + (" |" if cols else "")
        )
    print(
        json.dumps(
            {
                "model": args.model,
                "image": args.image,
                "threads": args.threads,
                "runs": args.runs,
                "python_ms": py,
                "node_ms": js,
                "browser": {str(t): w for t, w in web.items()},
            }
        )
    )
    return 0


def page_latency(model: str, image: str, runs: int, threads: int, timeout_s: float = 600.0) -> dict:
    """The page's own per-stage medians (``?bench=N``) for ``model`` on ``image`` in headless Chromium."""
    if find_chromium() is None:
        raise SystemExit("--browser needs Chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory(
        ignore_cleanup_errors=True
    ) as site:  # Chromium's helpers may still write its profile
        for name, target in (
            ("js", ROOT / "js"),
            ("model" + Path(model).suffix, Path(model).resolve()),
            ("image" + Path(image).suffix, Path(image).resolve()),
        ):
            os.symlink(target, Path(site) / name)
        base = serve(site, isolated=True)
        url = (
            f"{base}/js/web/index.html?model=../../model{Path(model).suffix}"
            f"&image=../../image{Path(image).suffix}&threads={threads}&bench={runs}"
        )
        try:
            with Page(url, Path(site) / "chrome") as page:
                state, result = page.result(timeout_s)
        except BrowserError as e:
            raise SystemExit(str(e)) from None
    if state != "done":
        raise SystemExit(f"the page failed: {result.get('error')}")
    if result["bench"]["threads"] != threads:
        raise SystemExit(
            f"the page ran {result['bench']['threads']} thread(s), asked {threads} (cross-origin isolated: "
            f"{result['bench']['cross_origin_isolated']})"
        )
    return result["bench"]


if __name__ == "__main__":
    sys.exit(main())
