"""Scan time per scene: ``python -m shipcam.benchmarks.scan_time MODEL SCENE... --threads 1 --repeats 3``.

Times ``Detector.scan`` end to end (tiling, engine, stitching, detections)
on whole scenes and prints the median of ``--repeats`` runs per scene, plus
a JSON line. To time another checkout's runtime (say, the one before a
change) with the same file and scenes, run this script with that checkout's
package first on ``PYTHONPATH`` (older runtimes have no ``rule``; this file
copes): the before/after ratio is only meaningful from one machine in one
sitting. ``--isolation-ab`` times
the scan with and without the isolation check, alternating, and prints the
ratio; ``--views none,rot4``, ``--tilings 448:0.25,896:0.125`` and
``--rules isolation=false,isolation=true`` do the same for test-time views, for
tile sizes and overlaps, and for any detection-rule setting.

``--file-ratio`` times the whole command path instead, file to GeoJSON
(``shipcam scan``'s ``scan_file``: decoding, tiling, engine, stitching,
detections, heatmap PNG, GeoJSON), against the engine alone on the same
tiles at the same resolution (cropping, preprocessing and ``engine.run``
on the same batches), alternating, and prints the ratio of the medians.

``--processes 1,4,16`` measures multi-core scaling instead: ``--jobs`` scans
(the scenes in turn) spread over that many worker processes, each with its
own one-thread Detector, as ``scan-archive``'s actors are; it prints scenes
per second and the speed-up over the first count.
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
    p.add_argument(
        "--gsd", type=float, help="the scenes' metres/pixel (default: not passed, so the model's: no resampling)"
    )
    p.add_argument("--threshold", type=float, help="decision threshold on the probability (default: the file's)")
    p.add_argument("--isolation-ab", action="store_true", help="alternate scans with and without the isolation check")
    p.add_argument(
        "--views",
        help="comma list of VIEWS/CONFIRM test-time views on every tile / confirming detections (none, flip, rot4, d4; "
        "a bare VIEWS confirms with none), e.g. none,none/flip,rot4: alternate scans with each",
    )
    p.add_argument("--tilings", help="comma list of TILE:OVERLAP (e.g. 448:0.25,896:0.125): alternate scans with each")
    p.add_argument(
        "--rules",
        help="comma list of detection-rule settings FIELD=VALUE[;FIELD=VALUE] (JSON values), e.g. "
        "'isolation=false;confirm_views=none,gap_look=true': alternate scans with each",
    )
    p.add_argument(
        "--file-ratio",
        action="store_true",
        help="time shipcam scan from file to GeoJSON against the engine alone on the same tiles",
    )
    p.add_argument("--processes", help="comma list of worker-process counts: time --jobs scans spread over each")
    p.add_argument("--jobs", type=int, default=16, help="scans per --processes row (default: 16)")
    args = p.parse_args(argv)
    if args.processes:
        return _scaling(args)
    if args.file_ratio:
        return _file_ratio(args)

    import dataclasses

    from shipcam.runtime import read_image

    det = _detector(args.model, args.threads, args.threshold)
    rule = getattr(det, "rule", None)
    kw = _scan_kwargs(args.tile, args.gsd)
    variants = {"": (rule, kw)}  # label -> (detection rule, scan keywords), alternated run by run
    if args.isolation_ab and rule is not None:
        variants = {"isolation on": (rule, kw), "isolation off": (dataclasses.replace(rule, isolation=False), kw)}
    elif args.views:
        variants = {f"views {v}": (dataclasses.replace(rule, **_views(v)), kw) for v in args.views.split(",")}
    elif args.rules:
        variants = {r: (dataclasses.replace(rule, **_setting(r)), kw) for r in args.rules.split(",")}
    elif args.tilings:
        variants = {
            f"tile {t}": (rule, {**kw, "tile": int(t.split(":")[0]), "overlap": float(t.split(":")[1])})
            for t in args.tilings.split(",")
        }
    rows = []
    for path in args.scenes:
        image = read_image(path)
        det.scan(image[:512, :512], **kw)  # warm-up: first-call allocations out of the timing
        times: dict[str, list[float]] = {k: [] for k in variants}
        results = {}
        for _ in range(args.repeats):
            for key, (rule, scan_kw) in variants.items():
                if rule is not None:
                    det.rule = rule
                t0 = time.perf_counter()
                results[key] = det.scan(image, **scan_kw)
                times[key].append(time.perf_counter() - t0)
        first = statistics.median(next(iter(times.values())))
        for key, runs in times.items():
            res = results[key]
            n = len(getattr(res, "detections", None) or getattr(res, "boxes", []))
            label = f" {key}" if key else ""
            rows.append(
                {
                    "scene": os.path.basename(path),
                    "variant": key or None,
                    "size": list(image.shape[:2]),
                    "median_s": statistics.median(runs),
                    "runs": runs,
                    "tiles": res.tiles,
                    "detections": n,
                }
            )
            ratio = f", {statistics.median(runs) / first:.3f} x the first" if len(times) > 1 else ""
            print(
                f"{os.path.basename(path)} {image.shape[1]}x{image.shape[0]}{label}: median "
                f"{statistics.median(runs):.2f} s over {args.repeats} ({res.tiles} tiles, {n} detections){ratio}"
            )
    print(
        json.dumps(
            {
                "model": args.model,
                "threads": args.threads,
                "gsd": args.gsd,
                "engine": det.engine.name,
                "python": sys.version.split()[0],
                "scenes": rows,
            }
        )
    )
    return 0


def engine_only(
    det, image, tile: int | None = None, overlap: float = 0.25, batch: int = 8, gsd: float | None = None
) -> int:
    """The engine's own work of a scan: the same tiles, cropped, preprocessed and run in the same batches. Returns the
    tile count.
    """
    import numpy as np

    from shipcam.runtime.resize import resize_antialiased
    from shipcam.runtime.scan import _crop, _starts

    work = det.working_gsd(gsd)
    factor = 1.0 if gsd is None else gsd / work
    if factor != 1.0:
        image = resize_antialiased(image, round(image.shape[0] * factor), round(image.shape[1] * factor))
    H, W = image.shape[:2]
    tile = min(int(tile or 2 * (det.metadata.train_size or 112)), H, W)
    step = max(1, int(round(tile * (1 - overlap))))
    positions = [(x, y) for y in _starts(H, tile, step) for x in _starts(W, tile, step)]
    for i in range(0, len(positions), batch):
        det.engine.run(det.preprocess(np.stack([_crop(image, x, y, tile) for x, y in positions[i : i + batch]])))
    return len(positions)


def _file_ratio(args) -> int:
    import tempfile

    from shipcam.runtime import read_image
    from shipcam.runtime.files import scan_file

    det = _detector(args.model, args.threads, args.threshold)
    rows = []
    for path in args.scenes:
        image = read_image(path)
        det.scan(image[:512, :512])  # warm-up
        file_s, engine_s = [], []
        with tempfile.TemporaryDirectory() as out:
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                summary = scan_file(args.model, path, out, tile=args.tile, gsd=args.gsd, detector=det, progress=False)
                file_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                # the decoded image: decoding is the command's work
                tiles = engine_only(det, image, args.tile, gsd=summary["gsd"])
                engine_s.append(time.perf_counter() - t0)
        ratio = statistics.median(file_s) / statistics.median(engine_s)
        rows.append(
            {
                "scene": os.path.basename(path),
                "file_to_geojson_s": statistics.median(file_s),
                "engine_s": statistics.median(engine_s),
                "ratio": ratio,
                "tiles": tiles,
                "detections": summary["detections"],
                "runs": {"file": file_s, "engine": engine_s},
            }
        )
        print(
            f"{os.path.basename(path)}: file to GeoJSON {statistics.median(file_s):.2f} s, engine alone on the same "
            f"{tiles} tiles {statistics.median(engine_s):.2f} s: {ratio:.2f}x (medians of {args.repeats}, "
            f"{args.threads} threads)"
        )
    print(
        json.dumps(
            {
                "model": args.model,
                "threads": args.threads,
                "engine": det.engine.name,
                "python": sys.version.split()[0],
                "scenes": rows,
            }
        )
    )
    return 0


def _views(text: str) -> dict:
    """'rot4' or 'none/flip' -> the DetectionRule fields (views on every tile, views confirming detections)."""
    views, _, confirm = text.partition("/")
    return {"views": views, "confirm_views": confirm or "none"}


def _setting(text: str) -> dict:
    """'isolation=false;confirm_views=none' -> DetectionRule fields, values read as JSON (a bare word as a string)."""
    out = {}
    for item in text.split(";"):
        field, _, value = item.partition("=")
        try:
            out[field] = json.loads(value)
        except json.JSONDecodeError:
            out[field] = value
    return out


def _scan_kwargs(tile: int | None, gsd: float | None) -> dict:
    """``gsd`` only when given: older runtimes (before/after timings) have no such argument."""
    return {"tile": tile, **({"gsd": gsd} if gsd else {})}


def _detector(model: str, threads: int, threshold: float | None):
    import dataclasses

    from shipcam.runtime import Detector

    det = Detector.load(model, threads=threads)
    if threshold is not None:
        det.rule = dataclasses.replace(det.rule, threshold=threshold)
    return det


_worker = None


def _init(model: str, threshold: float | None) -> None:
    global _worker
    _worker = _detector(model, 1, threshold)


def _scan_one(job: tuple[str, int | None, float | None]) -> int:
    from shipcam.runtime import read_image

    path, tile, gsd = job
    return len(_worker.scan(read_image(path), **_scan_kwargs(tile, gsd)).detections)


def _scaling(args) -> int:
    """Scenes per second with N worker processes of one thread each (reading included, Detector load not)."""
    import multiprocessing as mp

    counts = [int(c) for c in args.processes.split(",")]
    jobs = [(args.scenes[i % len(args.scenes)], args.tile, args.gsd) for i in range(args.jobs)]
    ctx = mp.get_context("spawn")  # no engine state forked into the workers
    rows = []
    for n in counts:
        with ctx.Pool(n, initializer=_init, initargs=(args.model, args.threshold)) as pool:
            # warm-up: the workers have loaded (initializer) and most have scanned
            pool.map(_scan_one, [jobs[0]] * n, chunksize=1)
            t0 = time.perf_counter()
            found = pool.map(_scan_one, jobs, chunksize=1)
            wall = time.perf_counter() - t0
        rows.append(
            {
                "processes": n,
                "jobs": len(jobs),
                "wall_s": wall,
                "scenes_per_s": len(jobs) / wall,
                "detections": sum(found),
            }
        )
        speedup = rows[-1]["scenes_per_s"] / rows[0]["scenes_per_s"]
        print(
            f"{n:3d} processes x 1 thread: {len(jobs)} scans in {wall:.1f} s, {len(jobs) / wall:.2f} scenes/s, "
            f"{speedup:.2f}x {counts[0]} process(es)",
            flush=True,
        )
    print(
        json.dumps(
            {
                "model": args.model,
                "gsd": args.gsd,
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "scaling": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
