"""Scan time per scene: ``python -m shipcam.benchmarks.scan_time MODEL SCENE... --threads 1 --repeats 3``.

Times ``Detector.scan`` end to end (tiling, engine, stitching, detections)
on whole scenes and prints the median of ``--repeats`` runs per scene, plus
a JSON line. To time another checkout's runtime (say, the one before a
change) with the same file and scenes, run this script with that checkout's
package first on ``PYTHONPATH`` (older runtimes have no ``rule``; this file
copes): the before/after ratio is only meaningful from one machine in one
sitting. ``--isolation-ab`` times
the scan with and without the isolation check, alternating, and prints the
ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("scenes", nargs="+")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tile", type=int)
    p.add_argument("--isolation-ab", action="store_true", help="alternate scans with and without the isolation check")
    args = p.parse_args(argv)

    import dataclasses

    from shipcam.runtime import Detector, read_image

    det = Detector.load(args.model, threads=args.threads)
    rules = {"on": det.rule, "off": dataclasses.replace(det.rule, isolation=False)} if args.isolation_ab and hasattr(det, "rule") else {"": getattr(det, "rule", None)}
    rows = []
    for path in args.scenes:
        image = read_image(path)
        det.scan(image[:512, :512], tile=args.tile)  # warm-up: first-call allocations out of the timing
        times: dict[str, list[float]] = {k: [] for k in rules}
        for _ in range(args.repeats):
            for key, rule in rules.items():
                if rule is not None:
                    det.rule = rule
                t0 = time.perf_counter()
                res = det.scan(image, tile=args.tile)
                times[key].append(time.perf_counter() - t0)
        n = len(getattr(res, "detections", None) or getattr(res, "boxes", []))
        for key, runs in times.items():
            label = f" isolation {key}" if key else ""
            rows.append({"scene": os.path.basename(path), "isolation": key or None, "size": list(image.shape[:2]), "median_s": statistics.median(runs), "runs": runs, "tiles": res.tiles, "detections": n})
            print(f"{os.path.basename(path)} {image.shape[1]}x{image.shape[0]}{label}: median {statistics.median(runs):.2f} s over {args.repeats} ({res.tiles} tiles)")
        if len(times) == 2:
            print(f"  on / off = {statistics.median(times['on']) / statistics.median(times['off']):.3f}")
    print(json.dumps({"model": args.model, "threads": args.threads, "engine": det.engine.name, "python": sys.version.split()[0], "scenes": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
