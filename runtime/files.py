"""Running an exported file on image files: what ``shipcam predict`` and ``shipcam scan`` call (no TensorFlow).

Image files in, the files a person, a GIS or a downlink reads out: ``predictions.jsonl``
and overlays for ``predict_files``; a heatmap (PNG overlay or COG), detections
(GeoJSON or GeoPackage), a scan summary and the downlink chips for
``scan_file``. Pillow, rasterio, pyproj and pyogrio are imported when they are
used, so importing this module loads numpy only.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from shipcam._utils.io import write_bytes, write_json, write_text
from shipcam._utils.memory import peak_rss_mb
from shipcam._utils.progress import progress
from shipcam.errors import ImageError, ShipcamError
from shipcam.runtime.budget import check_budget, plan_scan
from shipcam.runtime.image import IMAGE_SUFFIXES, image_size, read_image
from shipcam.runtime.scan import tile_size
from shipcam.runtime.scene import ArrayScene

__all__ = [
    "predict_files",
    "scan_file",
    "write_downlink",
    "collect_images",
    "scene_gsd",
    "open_exported",
    "OVERLAY_MAX_SIDE",
]

# Scan overlays are drawn at most this many pixels wide or high (from an averaged overview for a windowed
# scene): a picture to look at, cheap next to the scan itself; the detections carry the exact positions.
# At 2048 px the overlay of a 5 Mpx scene cost a third of the network's time on 2 threads, at 1024 a tenth.
OVERLAY_MAX_SIDE = 1024


def collect_images(inputs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ShipcamError(f"{p}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            raise ShipcamError(f"{p}: no such file or folder")
    return paths


def open_exported(model: str | Path, engine: str = "auto", threads: int = 1):
    """``Detector.load`` for the command line: a wrong file type is a one-line error naming the file."""
    from shipcam.runtime.detector import Detector

    if Path(model).suffix.lower() == ".keras" and engine == "auto":
        raise ShipcamError(
            f"{model}: a Keras model; this command runs exported files (.onnx, .tflite): make one with `shipcam export "
            f"{model} --out DIR`"
        )
    try:
        return Detector.load(model, engine=engine, threads=threads)
    except ValueError as e:  # unknown suffix or engine: the user's choice, not a bug
        raise ShipcamError(f"{model}: {e}") from None


def predict_files(
    model: str,
    inputs: list[str],
    out: str,
    overlay: bool = False,
    engine: str = "auto",
    threads: int = 1,
    rule: dict | None = None,
    gsd: float | None = None,
) -> dict:
    """Predict every image; unreadable or too-small ones are listed in ``failed`` (the CLI then exits non-zero).

    ``rule``: detection-rule settings over the file's (test-time views, threshold, ...). ``gsd``
    (the images' metres/pixel) resamples images outside the model's range, as ``scan`` does.
    """
    from shipcam.runtime.image import read_image

    det = open_exported(model, engine, threads)
    if rule:
        det.rule = dataclasses.replace(det.rule, **rule)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = collect_images(inputs)
    lines, failed, n_ship = [], [], 0
    for path in progress(paths, total=len(paths), desc="predicting", enabled=len(paths) > 1):
        try:
            image = read_image(path)
            pred = det.predict(image, gsd=gsd)
        except ImageError as e:
            message = str(e) if str(path) in str(e) else f"{path}: {e}"
            failed.append(str(path))
            lines.append(json.dumps({"file": str(path), "error": message}))
            print(f"skipping: {message}", file=sys.stderr)
            continue
        n_ship += pred.is_ship
        record = {"file": str(path), **pred.to_dict()}
        if overlay:
            from shipcam.runtime.overlay import overlay as draw
            from shipcam.runtime.overlay import save_png

            png = out_dir / f"{path.stem}_cam.png"
            save_png(draw(image, pred.cam_image, pred.boxes, label=f"p(ship)={pred.probability:.2f}"), png)
            record["overlay"] = str(png)
        lines.append(json.dumps(record))
    write_text(out_dir / "predictions.jsonl", "\n".join(lines) + "\n")
    summary = {
        "model": str(model),
        "engine": det.engine.describe(),
        "gsd": gsd,
        "model_gsd_range": list(det.gsd_range),
        "images": len(paths),
        "ships": int(n_ship),
        "errors": len(failed),
        "failed": failed,
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def scene_gsd(scene: str | Path, given: float | None, georef=None) -> tuple[float, str]:
    """The scene's metres/pixel and where it came from: ``--gsd``, the GeoTIFF transform, or assumed.

    Assumed: PlanetScope's 3 m, as ``eval-scenes`` assumes, so one PNG gives the same
    detections in both. (Assuming the model's own GSD would scan a 3 m scene at half
    scale with a 1.5 m/px model, and find few ships.) ``georef``: the scene's
    ``Georeference`` when already read.
    """
    from shipcam.runtime.geojson import read_georeference
    from shipcam.runtime.scoring import DEFAULT_SCENE_GSD

    if given is not None:
        return float(given), "--gsd"
    gsd = (georef or read_georeference(scene)).gsd
    if gsd:
        return gsd, "georeference"
    return DEFAULT_SCENE_GSD, "assumed"


def scan_file(
    model: str,
    scene: str,
    out: str,
    tile: int | None = None,
    overlap: float = 0.25,
    engine: str = "auto",
    threads: int = 1,
    batch: int | None = None,
    gsd: float | None = None,
    rule: dict | None = None,
    detector=None,
    downlink: dict | None = None,
    max_memory_mb: float | None = None,
    process_mb: float | None = None,
    progress: bool = True,
    crs: str = "wgs84",
    geometry: str = "point",
    heatmap: str = "png",
) -> dict:
    """Scan one scene: the detections, the heatmap and ``<stem>_scan.json`` (written last) in ``out``.

    Detections: ``<stem>_detections.geojson`` (RFC 7946: WGS 84 longitude/latitude
    for a georeferenced scene with ``crs="wgs84"``, scene pixels for the others)
    or, with ``crs="native"``, ``<stem>_detections.gpkg`` in the scene's CRS;
    one ``Point`` (``geometry="point"``) or ``Polygon`` (``"box"``) each.
    Heatmap: ``<stem>_heatmap.png`` (``"png"``, an overlay to look at),
    ``<stem>_heatmap.tif`` (``"cog"``, a Cloud-Optimised GeoTIFF in the scene's
    CRS, logit units) or none. With ``downlink`` (``crops`` folder,
    ``budget_kb``, ``size``, ``fmt``, ``quality``), also the chips and manifest
    an on-board computer would send. GeoTIFF/JP2 scenes are read window by
    window when rasterio is installed; PNG/JPEG ones are decoded whole.
    ``max_memory_mb`` bounds the process's resident set (``runtime.budget``:
    the batch, at most ``batch``, and how a resample is done follow from it;
    a scene that cannot fit is refused); None, the default here, sets no
    limit, as this process may hold other things. The command line's default
    is ``budget.DEFAULT_MAX_MEMORY_MB``. ``process_mb``: what the budget counts
    as already held (default: the process's resident set now). A choice the scene cannot meet
    (``crs="native"`` without a CRS) is an error before anything is written.
    """
    from shipcam.runtime.geojson import CRS_CHOICES, GEOMETRIES, HEATMAP_FORMATS, read_georeference

    for name, value, choices in (("crs", crs, CRS_CHOICES), ("geometry", geometry, GEOMETRIES)):
        if value not in choices:
            raise ShipcamError(f"--{name} must be one of {', '.join(choices)}, received {value!r}")
    if heatmap not in HEATMAP_FORMATS:
        raise ShipcamError(f"--heatmap must be one of {', '.join(HEATMAP_FORMATS)}, received {heatmap!r}")
    max_memory_mb = check_budget(max_memory_mb)
    if not Path(scene).is_file():
        raise ImageError(f"{scene}: no such file")
    georef = read_georeference(scene)
    # before reading a pixel or writing a byte
    outputs = _Outputs.choose(scene, georef, crs, geometry, heatmap, bool(downlink))
    det = detector or open_exported(model, engine, threads)
    if rule:  # options the user set, over the file's own rule
        det.rule = dataclasses.replace(det.rule, **rule)
    t0 = time.perf_counter()
    scene_m, source = scene_gsd(scene, gsd, georef)
    factor = scene_m / det.working_gsd(scene_m)
    image = _open_windowed(scene)
    try:
        H, W = image.shape[:2] if image is not None else image_size(scene)[::-1]
        h, w = max(1, round(H * factor)), max(1, round(W * factor))
        plan = plan_scan(
            det,
            str(scene),
            (H, W),
            factor,
            windowed=image is not None,
            tile=tile_size(det, h, w, tile),
            cell=max(1, det.metadata.feature_stride // 4),
            max_memory_mb=max_memory_mb,
            batch=batch,
            heatmap=outputs.heatmap,
            process_mb=process_mb,
        )
        if batch is not None and plan.batch < batch:
            print(
                f"note: {scene}: --batch {batch} lowered to {plan.batch} to stay under --max-memory-mb "
                f"{max_memory_mb:g}",
                file=sys.stderr,
            )
        if image is None:
            image = read_image(scene)
            if plan.window_resample:  # the resampled scene would not fit whole: resample it window by window
                image = ArrayScene(image)
        return _scan_opened(
            det, image, scene, out, scene_m, source, t0, tile, overlap, plan, downlink, progress, outputs
        )
    finally:
        if hasattr(image, "close"):  # a windowed scene holds its file open
            image.close()


@dataclasses.dataclass
class _Outputs:
    """What a scan writes, decided before it runs: coordinates, geometry, heatmap format, and the notes why."""

    georef: object  # geojson.Georeference
    coords: object  # geojson.Coordinates of the detections file
    manifest: object  # ... of the downlink manifest: WGS 84 or pixels, always GeoJSON
    geometry: str
    heatmap: str
    notes: list[str]

    @classmethod
    def choose(cls, scene, georef, crs: str, geometry: str, heatmap: str, downlink: bool = False) -> "_Outputs":
        from shipcam.runtime.geojson import output_coordinates

        coords, note = output_coordinates(scene, georef, crs)  # --crs native without a CRS: raises
        if coords.kind == "native" and importlib.util.find_spec("pyogrio") is None:
            raise ShipcamError(f"{scene}: --crs native writes a GeoPackage, which needs pyogrio: pip install pyogrio")
        notes = [note] if note else []
        manifest = coords
        if coords.kind == "native" and downlink:  # a manifest is RFC 7946 GeoJSON: WGS 84, whatever --crs says
            manifest, note = output_coordinates(scene, georef, "wgs84")
            notes += [f"{note} (the downlink manifest)"] if note else []
        if heatmap == "cog" and not georef.complete:
            why = georef.problem or "an image without a georeference"
            notes.append(f"{scene}: --heatmap cog needs a GeoTIFF/JP2 with a CRS ({why}): writing the PNG overlay")
            heatmap = "png"
        return cls(georef, coords, manifest, geometry, heatmap, notes)


def _scan_opened(
    det, image, scene, out, scene_m, source, t0, tile, overlap, plan, downlink, progress, outputs: _Outputs
) -> dict:
    from shipcam.runtime.geojson import detections_geojson, write_detections_gpkg, write_heatmap_geotiff

    if source == "assumed":
        print(
            f"note: {scene}: no ground sample distance (no --gsd, no georeference); assuming {scene_m:g} m/px "
            f"(PlanetScope); the model's range is {_gsd_text(det)}",
            file=sys.stderr,
        )
    for note in outputs.notes:
        print(f"note: {note}", file=sys.stderr)
    res = det.scan(image, tile=tile, overlap=overlap, batch=plan.batch, progress=progress, gsd=scene_m)
    out_dir = Path(out)
    stem = Path(scene).stem
    H, W = image.shape[:2]
    heatmap_file = None
    if outputs.heatmap == "png":
        heatmap_file = out_dir / f"{stem}_heatmap.png"
        _save_scan_overlay(image, res, heatmap_file)
    elif outputs.heatmap == "cog":
        heatmap_file = out_dir / f"{stem}_heatmap.tif"
        write_heatmap_geotiff(heatmap_file, res.heatmap, res.cell, outputs.georef)
    coords = outputs.coords
    about = {"scene": Path(scene).name, "size": [W, H], "geometry": outputs.geometry}
    if outputs.georef.crs_name and not coords.kind == "native":
        about["scene_crs"] = outputs.georef.crs_name
    if coords.kind == "native":
        detections_file = out_dir / f"{stem}_detections.gpkg"
        write_detections_gpkg(detections_file, res.detections, coords, outputs.geometry, about)
    else:
        detections_file = out_dir / f"{stem}_detections.geojson"
        write_json(detections_file, detections_geojson(res.detections, coords, outputs.geometry, collection=about))
    summary = {
        "scene": str(scene),
        "size": [W, H],
        "detections": len(res.detections),
        # above the threshold but not on an isolated object (land, quays, open water)
        "rejected_peaks": len(res.rejected),
        "gsd": scene_m,
        "gsd_source": source,
        "model_gsd": det.gsd,
        "model_gsd_range": list(det.gsd_range),
        "resample": round(res.resample, 6),
        "tiles": res.tiles,
        "positive_tiles": res.positive_tiles,
        "scan_seconds": round(res.seconds, 3),
        "total_seconds": round(time.perf_counter() - t0, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "memory": plan.to_dict(),  # the budget, the batch it chose and the estimate behind it
        "engine": det.engine.describe(),
        "rule": vars(det.rule),
        "tile": tile,
        "overlap": overlap,
        "crs": coords.crs_name or "pixel",  # the detections file's; "pixel": scene pixels
        "scene_crs": outputs.georef.crs_name,
        "coordinates": coords.kind,
        "geometry": outputs.geometry,
        "outputs": {"detections": detections_file.name, "heatmap": heatmap_file.name if heatmap_file else None},
        "notes": outputs.notes,
    }
    if downlink:
        summary["downlink"] = write_downlink(image, res.detections, scene, outputs.manifest, **downlink)
    write_json(out_dir / f"{stem}_scan.json", summary)
    return summary


def _gsd_text(det) -> str:
    lo, hi = det.gsd_range
    return f"{lo:g} m/px" if lo == hi else f"{lo:g}-{hi:g} m/px"


def write_downlink(
    image: np.ndarray,
    detections,
    scene: str | Path,
    coords,
    crops: str | Path,
    budget_kb: float | None = None,
    size: int = 96,
    fmt: str = "jpeg",
    quality: int = 90,
) -> dict:
    """Write the chips and ``<stem>_downlink.geojson`` into ``crops``; returns the byte count and the reduction.

    ``coords``: the manifest's ``geojson.Coordinates`` (WGS 84 or pixels; None: pixels).
    """
    from shipcam.runtime.downlink import plan_downlink

    stem = Path(scene).stem
    budget = None if budget_kb is None else int(budget_kb * 1000)
    try:
        plan = plan_downlink(image, detections, stem, budget, size=size, fmt=fmt, quality=quality, coords=coords)
    except ValueError as e:  # a budget, size or quality the user gave
        raise ShipcamError(f"{scene}: {e}") from None
    crops = Path(crops)
    crops.mkdir(parents=True, exist_ok=True)
    names = {c.name for c in plan.chips}
    for old in crops.glob(f"{stem}_[0-9][0-9][0-9].*"):  # chips of an earlier run of this scene (another budget)
        if old.name not in names:
            old.unlink()
    for c in plan.chips:
        write_bytes(crops / c.name, c.data)
    write_bytes(crops / f"{stem}_downlink.geojson", plan.manifest)
    H, W = image.shape[:2]
    scene_bytes, raw = Path(scene).stat().st_size, H * W * (image.shape[2] if image.ndim == 3 else 1)
    return {
        "crops": str(crops),
        "budget_bytes": budget,
        "chips": len(plan.chips),
        "left_out": plan.left_out,
        "bytes": plan.nbytes,
        "manifest_bytes": len(plan.manifest),
        "scene_file_bytes": scene_bytes,
        "scene_raw_bytes": raw,
        "fraction_of_file": plan.nbytes / scene_bytes,  # bytes sent over bytes of the scene file
        "fraction_of_raw": plan.nbytes / raw,  # ... over its decoded pixels (what a sensor holds)
        "chip_size": size,
        "format": fmt,
        "quality": quality if fmt == "jpeg" else None,
    }


def _open_windowed(scene: str | Path):
    """The scene read window by window (a GeoTIFF/JP2 when rasterio is there), else None: decoded whole."""
    from shipcam.runtime.scene import WINDOWED_SUFFIXES, open_raster

    if Path(scene).suffix.lower() in WINDOWED_SUFFIXES:
        try:
            return open_raster(scene)
        except ImportError:
            pass  # no rasterio: Pillow decodes plain TIFFs whole, under the same budget as PNG
    return None


def _save_scan_overlay(image, res, path: Path) -> None:
    """The heatmap over the scene (logit units, 0 = the p = 0.5 line), at most ``OVERLAY_MAX_SIDE`` px.

    A windowed scene's overlay is drawn from an averaged overview, so memory stays bounded. Fast PNG
    compression: at full compression, encoding a 5 Mpx overlay took twice as long as scanning the scene.
    """
    from shipcam.runtime.boxes import Box
    from shipcam.runtime.overlay import overlay, save_png
    from shipcam.runtime.resize import block_max, block_mean, resize_bilinear
    from shipcam.runtime.scene import WindowedScene

    H, W = image.shape[:2]
    if isinstance(image, WindowedScene):
        k = min(1.0, OVERLAY_MAX_SIDE / max(H, W))
        h, w = max(1, round(H * k)), max(1, round(W * k))
        small = image.overview(h, w)
    else:  # whole pixels averaged n x n: a tenth of an antialiased resample's cost, no aliasing
        n = -(-max(H, W) // OVERLAY_MAX_SIDE)
        small, k = block_mean(image, n), 1.0 / n
        h, w = small.shape[:2]
    # heat cells per overlay pixel: blocks of them reduced to their maximum first, so no ship's peak is skipped
    cells = max(1, min(res.heatmap.shape[0] // h, res.heatmap.shape[1] // w))
    heat = resize_bilinear(block_max(res.heatmap, cells), h, w)
    boxes = [Box(b.x0 * k, b.y0 * k, b.x1 * k, b.y1 * k, b.score) for b in res.boxes]
    hi = float(res.heatmap.max())
    save_png(overlay(small, heat, boxes, alpha=0.5, vmin=0.0, vmax=max(hi, 1e-3)), path, compress_level=1)
