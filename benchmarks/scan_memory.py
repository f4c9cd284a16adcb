"""Peak memory of ``shipcam scan`` with its defaults, against an unbounded run of the same scene.

    python -m shipcam.benchmarks.scan_memory MODEL SCENE [SCENE ...] [--huge 20000] --work DIR

Each scene is scanned twice in a child process: with the default budget
(``--max-memory-mb`` 400) and unbounded (``--max-memory-mb none --batch 8``,
what a scan did before it had a budget). Peak RSS is the child's
``ru_maxrss`` as the kernel reports it to the parent (``wait4``), so nothing
the scan does to its own counters can hide a peak. ``--huge N`` adds an N x N
tiled GeoTIFF (``benchmarks.huge_scene``). Prints a table and writes
``DIR/scan_memory.json``; the detections of the two runs must be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

UNBOUNDED = ["--max-memory-mb", "none", "--batch", "8"]


def scan_in_child(model: str, scene: Path, out: Path, extra: list[str]) -> dict:
    """``shipcam scan`` in a child process: its ``_scan.json``, peak RSS (MB), wall seconds and detections."""
    cmd = [sys.executable, "-m", "shipcam.cli", "scan", model, str(scene), "--out", str(out), *extra]
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if child.returncode:
        raise SystemExit(f"scan failed ({child.returncode}): {' '.join(cmd)}\n{err.strip().splitlines()[-1:]}")
    info = json.loads((out / f"{scene.stem}_scan.json").read_text())
    found = json.loads((out / info["outputs"]["detections"]).read_text())["features"]
    return {"info": info, "peak_rss_mb": usage.ru_maxrss / 1024.0, "wall_s": wall, "features": found}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("scenes", nargs="*")
    p.add_argument("--huge", type=int, help="also scan an N x N px tiled GeoTIFF, written to --work once")
    p.add_argument("--work", default="runs/scan_memory")
    p.add_argument("--threads", type=int, default=1)
    args, scan_args = p.parse_known_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    scenes = [Path(s) for s in args.scenes]
    if args.huge:
        from shipcam.benchmarks.huge_scene import write_scene

        huge = work / f"huge_{args.huge}.tif"
        if not huge.exists():
            write_scene(huge, args.huge, ships=400)
        scenes.append(huge)
    rows = []
    for scene in scenes:
        common = ["--threads", str(args.threads), *scan_args]
        bounded = scan_in_child(args.model, scene, work / f"{scene.stem}_default", common)
        free = scan_in_child(args.model, scene, work / f"{scene.stem}_unbounded", common + UNBOUNDED)
        mem = bounded["info"]["memory"]
        rows.append(
            {
                "scene": scene.name,
                "size": bounded["info"]["size"],
                "tiles": bounded["info"]["tiles"],
                "budget_mb": mem["budget_mb"],
                "batch": mem["batch"],
                "estimate_mb": mem["estimate_mb"]["total"],
                "peak_rss_mb": round(bounded["peak_rss_mb"], 1),
                "scan_s": bounded["info"]["scan_seconds"],
                "unbounded_peak_rss_mb": round(free["peak_rss_mb"], 1),
                "unbounded_scan_s": free["info"]["scan_seconds"],
                "detections": len(bounded["features"]),
                "identical": bounded["features"] == free["features"],
                "engine": bounded["info"]["engine"],
            }
        )
    print(
        "| scene | px | tiles | batch | estimate | **peak RSS** | scan s | unbounded: peak RSS | scan s | detections |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        same = "identical" if r["identical"] else "DIFFERENT"
        print(
            f"| {r['scene']} | {r['size'][0]} x {r['size'][1]} | {r['tiles']} | {r['batch']} "
            f"| {r['estimate_mb']:.0f} MB "
            f"| **{r['peak_rss_mb']:.0f} MB** | {r['scan_s']:.1f} | {r['unbounded_peak_rss_mb']:.0f} MB "
            f"| {r['unbounded_scan_s']:.1f} | {r['detections']}, {same} |"
        )
    (work / "scan_memory.json").write_text(json.dumps({"model": args.model, "rows": rows}, indent=1))
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
