"""Score an archive of scenes on Ray Data, resumably: what ``shipcam scan-archive`` calls.

Scenes are independent, so the archive is data-parallel: Ray Data streams
the scene list through ``map_batches`` with an actor pool, each actor
holding one Detector (one thread) and scanning whole scenes exactly as
``shipcam scan`` does (GeoTIFFs window by window), writing the same files
into ``OUT/scenes/<key>/``. The driver only collects one small row per
scene. A scene is done when its ``_scan.json`` exists (written last,
atomically), so a rerun skips it; a scene that fails is recorded with its
error and the rest go on. At the end every scene's detections go into one
Parquet table (``detections.parquet``; GeoParquet, points in OGC:CRS84,
when geopandas is installed), read from each scene's detections file
(GeoJSON, or GeoPackage with ``--crs native``).

Inputs may be fsspec URLs (``s3://bucket/scenes/``, ``gs://.../*.tif``,
``https://...``) where fsspec and the protocol's package are installed: an
actor copies each such scene to a local temporary file, scans it, and
deletes it, so remote archives need disk for one scene per actor, not all.

Actors ask for a fraction of a CPU each: an actor pool that takes every CPU
of a 2-CPU machine starves Ray's other tasks and hangs.

Ray, pyarrow, fsspec and geopandas (``shipcam[scale]``) are imported when they
are used: importing this module loads numpy and the standard library only.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Iterator
from urllib.parse import urlparse

from shipcam._utils.io import atomic_path, write_json
from shipcam._utils.progress import progress
from shipcam.errors import ShipcamError
from shipcam.runtime.budget import FRESH_PROCESS_MB, process_rss_mb
from shipcam.runtime.files import open_exported, scan_file
from shipcam.runtime.image import IMAGE_SUFFIXES

__all__ = ["collect_scenes", "scan_archive", "scene_keys"]

SCENE_SUFFIXES = tuple(sorted(set(IMAGE_SUFFIXES) | {".jp2"}))


Scene = Path | str  # a local path, or an fsspec URL (kept as text: Path would fold its "//")


def is_url(scene: Scene) -> bool:
    return isinstance(scene, str) and "://" in scene


def _stem(scene: Scene) -> str:
    return PurePosixPath(urlparse(scene).path).stem if is_url(scene) else Path(scene).stem


def collect_scenes(inputs: list[str]) -> list[Scene]:
    """Scene files from folders, globs, text files of paths (one per line, # comments) and fsspec URLs, in order, once
    each.
    """
    found: list[Scene] = []
    for item in inputs:
        p = Path(item)
        if "://" in item:
            found += _collect_url(item)
        elif p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix.lower() in SCENE_SUFFIXES)
        elif p.is_file() and p.suffix.lower() in SCENE_SUFFIXES:
            found.append(p)
        elif p.is_file():  # a list of paths, relative to the list's folder
            for line in p.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line) if Path(line).is_absolute() else p.parent / line
                    found.append(q)  # missing ones fail as scenes, recorded, not here
        elif glob.has_magic(item):
            matches = sorted(
                Path(m) for m in glob.glob(item, recursive=True) if Path(m).suffix.lower() in SCENE_SUFFIXES
            )
            if not matches:
                raise ShipcamError(f"{item}: the pattern matches no scene ({', '.join(SCENE_SUFFIXES)})")
            found += matches
        else:
            raise ShipcamError(f"{item}: no such file, folder or pattern")
    seen, unique = set(), []
    for q in found:
        r = q if is_url(q) else Path(q).resolve()
        if r not in seen:
            seen.add(r)
            unique.append(q)
    if not unique:
        raise ShipcamError(f"no scenes in {inputs}")
    return unique


def _collect_url(item: str) -> list[str]:
    """The scene URLs an fsspec URL names: one file, every scene under a folder, or a glob's matches."""
    try:
        import fsspec
    except ImportError:
        raise ShipcamError(f'{item}: reading URLs needs fsspec: pip install "shipcam[scale]"') from None
    try:
        fs, path = fsspec.core.url_to_fs(item)
        if glob.has_magic(path):
            names = fs.glob(path)
        elif fs.isdir(path):
            names = fs.find(path)
        elif fs.isfile(path):
            names = [path]
        else:
            raise ShipcamError(f"{item}: no such file, folder or pattern")
    except ShipcamError:
        raise
    except Exception as e:  # noqa: BLE001 - a missing protocol package, credentials, network: one line
        raise ShipcamError(f"{item}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    urls = sorted(fs.unstrip_protocol(n) for n in names if PurePosixPath(n).suffix.lower() in SCENE_SUFFIXES)
    if not urls:
        raise ShipcamError(f"{item}: no scene there ({', '.join(SCENE_SUFFIXES)})")
    return urls


def scene_keys(paths: list[Scene]) -> list[str]:
    """The output folder name of each scene: its stem, plus a hash of its path or URL where stems collide."""
    stems = [_stem(p) for p in paths]
    full = [p if is_url(p) else str(Path(p).resolve()) for p in paths]
    return [
        s if stems.count(s) == 1 else f"{s}-{hashlib.sha1(f.encode()).hexdigest()[:8]}" for s, f in zip(stems, full)
    ]


@contextlib.contextmanager
def _local_file(scene: str) -> Iterator[str]:
    """A scene as a local file: the path itself, or an fsspec URL copied into a temporary folder, removed after."""
    if not is_url(scene):
        yield scene
        return
    import fsspec

    with tempfile.TemporaryDirectory(prefix="shipcam-scene-") as tmp:
        local = os.path.join(tmp, PurePosixPath(urlparse(scene).path).name)
        with fsspec.open(scene, "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield local


class _ScanActor:
    """One Detector per actor; scans the scenes of each batch (one by default) into ``out/scenes/<key>``."""

    def __init__(self, model: str, out: str, options: dict):
        self.det = open_exported(model, options.get("engine", "auto"), threads=1)
        self.out, self.options = Path(out), options
        # A Ray worker idles at about 200-270 MB (Ray's own runtime and the engine): the budget bounds what a
        # scene adds on top of that, so a scene fits under Ray exactly when it fits a fresh `shipcam scan`.
        self.idle_mb = process_rss_mb()

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        rows = {"key": [], "path": [], "ok": [], "error": [], "detections": [], "seconds": []}
        for key, path in zip(batch["key"], batch["path"]):
            t0 = time.perf_counter()
            try:
                with _local_file(str(path)) as local:
                    s = scan_file(
                        "",
                        local,
                        str(self.out / "scenes" / str(key)),
                        detector=self.det,
                        process_mb=_added_mb(self.idle_mb),
                        progress=False,
                        threads=1,
                        **{k: v for k, v in self.options.items() if k != "engine"},
                    )
                ok, error, n = True, "", int(s["detections"])
            except Exception as e:  # noqa: BLE001 - one bad scene is recorded; the archive goes on
                ok, error, n = False, _one_line(e, path), -1
            for k, v in (
                ("key", str(key)),
                ("path", str(path)),
                ("ok", ok),
                ("error", error),
                ("detections", n),
                ("seconds", time.perf_counter() - t0),
            ):
                rows[k].append(v)
        return {k: np.array(v) for k, v in rows.items()}


def _added_mb(idle_mb: float | None) -> float | None:
    """What this worker holds beyond its idle footprint plus a fresh scan process's base (None: unknown)."""
    now = process_rss_mb()
    if now is None or idle_mb is None:
        return None
    return FRESH_PROCESS_MB + max(0.0, now - idle_mb)


def _one_line(e: Exception, path) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text if str(path) in text else f"{path}: {type(e).__name__}: {text}"


def scan_archive(
    model: str,
    inputs: list[str],
    out: str,
    address: str | None = None,
    workers: int | None = None,
    options: dict | None = None,
) -> dict:
    """Scan every scene not done yet; returns the summary also written to ``out/summary.json``."""
    paths = collect_scenes(inputs)
    if not Path(model).is_file():
        raise ShipcamError(f"{model}: no such model file")
    out_dir = Path(out)
    keys = scene_keys(paths)
    finished = [_done(out_dir, k, p) for k, p in zip(keys, paths)]
    done = [(k, p) for (k, p), f in zip(zip(keys, paths), finished) if f]
    todo = [(k, p) for (k, p), f in zip(zip(keys, paths), finished) if not f]
    print(f"{len(paths)} scenes: {len(done)} already done, {len(todo)} to scan -> {out_dir}", file=sys.stderr)
    failed, scanned, t0 = [], 0, time.perf_counter()
    info: dict = {}
    if todo:
        rows, info = _run_ray(model, todo, out_dir, address, workers, options or {})
        for row in rows:
            if row["ok"]:
                scanned += 1
            else:
                failed.append({"scene": row["path"], "error": row["error"]})
    seconds = time.perf_counter() - t0
    table = _write_parquet(out_dir, [(k, p) for k, p in zip(keys, paths) if _done(out_dir, k, p)])
    summary = {
        "model": str(model),
        "scenes": len(paths),
        "skipped_done": len(done),
        "scanned": scanned,
        "failed": failed,
        "seconds": round(seconds, 2),
        "scenes_per_second": round(scanned / seconds, 4) if scanned and seconds else None,
        **info,
        **table,
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def _done(out_dir: Path, key: str, path: Scene) -> bool:
    return (out_dir / "scenes" / key / f"{_stem(path)}_scan.json").is_file()


def _run_ray(
    model: str, todo: list[tuple[str, Scene]], out_dir: Path, address: str | None, workers: int | None, options: dict
) -> tuple[list[dict], dict]:
    try:
        import ray
        from ray.data import ActorPoolStrategy
    except ImportError:
        raise ImportError('scan-archive runs on Ray Data: pip install "shipcam[scale]"', name="ray") from None
    _init_ray(ray, address)
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        n = max(1, min(workers or int(cpus), len(todo)))
        # Fractional CPUs: n actors together take at most 90% of the cluster, leaving room for Ray's own tasks.
        per_actor = min(1.0, 0.9 * cpus / n)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ours counts scenes
        ctx.print_on_execution_start = False
        ds = ray.data.from_items([{"key": k, "path": str(p)} for k, p in todo], override_num_blocks=len(todo))
        ds = ds.map_batches(
            _ScanActor,
            batch_size=1,
            compute=ActorPoolStrategy(size=n),
            num_cpus=per_actor,
            max_restarts=0,  # a crashed actor fails its scene (recorded) instead of being rebuilt
            fn_constructor_kwargs={
                "model": str(Path(model).resolve()),
                "out": str(out_dir.resolve()),
                "options": options,
            },
        )
        rows = list(progress(ds.iter_rows(), total=len(todo), desc="scenes"))
        return rows, {
            "workers": n,
            "cpus_per_worker": round(per_actor, 3),
            "ray_cpus": cpus,
            "address": address or "local",
        }
    finally:
        ray.shutdown()


def _init_ray(ray, address: str | None) -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local, private cluster: no token banner
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address is None:
        ray.init(num_cpus=os.cpu_count(), **kwargs)
        return
    if address != "auto":  # Ray retries an unreachable head for minutes: knock first
        _check_reachable(address)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:  # unreachable or malformed: the user's address
        raise ShipcamError(
            f"--address {address}: cannot connect to a Ray cluster "
            f"({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    import socket

    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ShipcamError(f"--address {address}: expected host:port, ray://host:port or auto")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ShipcamError(f"--address {address}: no Ray head answers there ({e.strerror or e})") from None


def _write_parquet(out_dir: Path, done: list[tuple[str, Scene]]) -> dict:
    """One row per detection of every finished scene, from the detections file each scan wrote.

    With geopandas installed the file is GeoParquet: a ``geometry`` column of
    the peaks in OGC:CRS84 (longitude, latitude): as the scan wrote them
    (GeoJSON), or reprojected from the scene's CRS (``--crs native``'s
    GeoPackage); scenes in pixels (PNG, JPEG, no CRS) get null geometries.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, list] = {
        k: []
        for k in ("scene", "key", "x", "y", "x0", "y0", "x1", "y1", "score", "probability", "map_x", "map_y", "crs")
    }
    for key, path in done:
        folder = out_dir / "scenes" / key
        info = json.loads((folder / f"{_stem(path)}_scan.json").read_text())
        name = info.get("outputs", {}).get("detections") or f"{_stem(path)}_detections.geojson"
        crs, rows = _scene_detections(folder / name)
        for r in rows:
            for k, v in (("scene", str(path)), ("key", key), ("crs", crs), *r.items()):
                cols[k].append(v)
    table = pa.table(cols)
    frame = _geodataframe(table)
    with atomic_path(out_dir / "detections.parquet") as tmp:
        if frame is not None:
            frame.to_parquet(tmp, index=False)
        else:
            pq.write_table(table, tmp)
    return {
        "parquet": str(out_dir / "detections.parquet"),
        "detections": table.num_rows,
        "geoparquet": frame is not None,
    }


_PIXEL = ("x", "y", "x0", "y0", "x1", "y1")


def _scene_detections(path: Path) -> tuple[str, list[dict]]:
    """(CRS of map_x/map_y or "pixel", one row per detection) of a scan's GeoJSON or GeoPackage."""
    if path.suffix == ".gpkg":
        import struct

        import pyogrio.raw

        meta, _, wkb, values = pyogrio.raw.read(path, layer="detections")
        fields = dict(zip(meta["fields"], values))
        rows = []
        for i, g in enumerate(wkb):
            if "peak_x" in fields:  # --geometry box: the polygon is the box, the peak is in the properties
                mx, my = float(fields["peak_x"][i]), float(fields["peak_y"][i])
            else:  # a Point's WKB, either byte order
                mx, my = struct.unpack("<dd" if g[0] == 1 else ">dd", bytes(g[5:21]))
            rows.append(
                {
                    **{k: float(fields[f"pixel_{k}"][i]) for k in _PIXEL},
                    "score": float(fields["score"][i]),
                    "probability": float(fields["probability"][i]),
                    "map_x": mx,
                    "map_y": my,
                }
            )
        return meta["crs"], rows
    geo = json.loads(path.read_text())
    if "crs" in geo:  # written before RFC 7946 outputs: a resumed archive keeps its finished scenes
        crs = geo["crs"]["properties"]["name"]
        return crs, [
            {
                **{k: f["properties"]["pixel"][k] for k in _PIXEL},
                "score": f["properties"]["score"],
                "probability": f["properties"]["probability"],
                "map_x": None if crs == "pixel" else f["geometry"]["geometries"][0]["coordinates"][0],
                "map_y": None if crs == "pixel" else f["geometry"]["geometries"][0]["coordinates"][1],
            }
            for f in geo["features"]
        ]
    lonlat = geo.get("properties", {}).get("coordinates") == "wgs84"
    rows = []
    for f in geo["features"]:
        props, g = f["properties"], f["geometry"]
        mx, my = (None, None)
        if lonlat:  # the peak: a Point's coordinates, or in the properties beside a box's Polygon
            mx, my = g["coordinates"] if g["type"] == "Point" else (props["peak_x"], props["peak_y"])
        rows.append(
            {
                **{k: props[f"pixel_{k}"] for k in _PIXEL},
                "score": props["score"],
                "probability": props["probability"],
                "map_x": mx,
                "map_y": my,
            }
        )
    return ("OGC:CRS84" if lonlat else "pixel"), rows


def _geodataframe(table):
    """The table with a point geometry per row in OGC:CRS84, or None without geopandas."""
    try:
        import geopandas as gpd
        import pandas as pd
    except ImportError:
        return None
    df = table.to_pandas()
    parts = [gpd.GeoSeries([], crs="OGC:CRS84")]
    for crs, rows in df.groupby("crs", sort=False):
        points = None
        if crs != "pixel":  # scene pixels are not a place on Earth
            try:
                xy = gpd.points_from_xy(rows["map_x"], rows["map_y"])
                points = gpd.GeoSeries(xy, index=rows.index, crs=crs).to_crs("OGC:CRS84")
            except Exception:  # noqa: BLE001 - a native CRS with no way to WGS 84 (an engineering CRS): no place either
                points = None
        parts.append(
            points if points is not None else gpd.GeoSeries([None] * len(rows), index=rows.index, crs="OGC:CRS84")
        )
    geometry = pd.concat(parts).reindex(df.index)
    return gpd.GeoDataFrame(df, geometry=geometry, crs="OGC:CRS84")
