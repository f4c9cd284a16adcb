"""A huge scene in bounded memory: ``python -m shipcam.benchmarks.huge_scene MODEL --size 20000 --work DIR``.

Writes a ``size`` x ``size`` px RGB GeoTIFF (tiled, deflate; calm sea with
sensor noise and synthetic ships pasted in, block by block so the generator
itself stays small), then runs ``shipcam scan`` on it in a child process and
reads that process's peak RSS as the kernel reports it (``wait4``). Prints a table and a JSON
line. The GeoTIFF is kept for reruns (``--keep``) or deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def write_scene(path: Path, size: int, ships: int, seed: int = 0, block: int = 512) -> dict:
    """The GeoTIFF, written ``block`` rows at a time; returns where the ships went."""
    import rasterio
    from rasterio.transform import from_origin

    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    rng = np.random.default_rng(seed)
    chips = [
        c
        for c in (generate_scene(SceneConfig(size=96, ship_fraction=1.0), seed=seed, index=i) for i in range(64))
        if c.has_ship
    ]
    ys, xs = rng.integers(0, size - 96, ships), rng.integers(0, size - 96, ships)
    which = rng.integers(0, len(chips), ships)
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint8",
        crs="EPSG:32631",
        transform=from_origin(500000, 5000000, 3.0, 3.0),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
    )
    sea = np.array([38, 62, 78], np.uint8)
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as ds:
        for y0 in range(0, size, block):
            h = min(block, size - y0)
            rows = np.empty((h, size, 3), np.uint8)
            rows[:] = sea
            rows += rng.integers(0, 3, (h, size, 1), dtype=np.uint8)  # a grey level of sensor noise
            for y, x, k in zip(ys, xs, which):
                top, bottom = max(y, y0), min(y + 96, y0 + h)
                if top < bottom:
                    rows[top - y0 : bottom - y0, x : x + 96] = chips[k].image[top - y : bottom - y]
            ds.write(np.moveaxis(rows, -1, 0), window=rasterio.windows.Window(0, y0, size, h))
            print(f"\rwriting {path.name}: {min(y0 + h, size)}/{size} rows", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    tmp.replace(path)
    return {"ships_pasted": ships}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--size", type=int, default=20000)
    p.add_argument("--ships", type=int, default=400)
    p.add_argument("--work", default="runs/huge_scene")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the GeoTIFF (and reuse one already there)")
    args, scan_args = p.parse_known_args(argv)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    scene = work / f"huge_{args.size}.tif"
    t0 = time.perf_counter()
    if not scene.exists():
        write_scene(scene, args.size, args.ships)
    write_s = time.perf_counter() - t0
    from shipcam.benchmarks.scan_memory import scan_in_child

    run = scan_in_child(args.model, scene, work / "scan", ["--threads", str(args.threads), *scan_args])
    info, wall = run["info"], run["wall_s"]
    row = {
        "scene_px": [args.size, args.size],
        "megapixels": args.size * args.size / 1e6,
        "file_mb": scene.stat().st_size / 1e6,
        "decoded_mb": args.size * args.size * 3 / 1e6,
        "tiles": info["tiles"],
        "detections": info["detections"],
        "scan_s": info["scan_seconds"],
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(run["peak_rss_mb"], 1),
        "batch": info["memory"]["batch"],
        "engine": info["engine"],
        "write_s": round(write_s, 1),
    }
    print("| scene | file | decoded | tiles | detections | scan (s) | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.size} x {args.size} px ({row['megapixels']:.0f} Mpx) | {row['file_mb']:.0f} MB | "
        f"{row['decoded_mb']:.0f} MB | {row['tiles']} | {row['detections']} | {row['scan_s']:.0f} | "
        f"**{row['peak_rss_mb']:.0f} MB** |"
    )
    print(json.dumps(row))
    if not args.keep:
        scene.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
