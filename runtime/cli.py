"""``shipcam predict`` and ``shipcam scan``: the runtime's command line (no TensorFlow)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from shipcam._io import write_json, write_text
from shipcam._memory import peak_rss_mb
from shipcam._progress import progress
from shipcam.errors import ImageError, ShipcamError
from shipcam.runtime.image import IMAGE_SUFFIXES

__all__ = ["predict_files", "scan_file", "collect_images"]


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


def predict_files(model: str, inputs: list[str], out: str, overlay: bool = False, engine: str = "auto", threads: int = 1) -> dict:
    from shipcam.runtime.detector import Detector

    det = Detector.load(model, engine=engine, threads=threads)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = collect_images(inputs)
    lines, errors, n_ship = [], 0, 0
    for path in progress(paths, total=len(paths), desc="predicting", enabled=len(paths) > 1):
        try:
            from shipcam.runtime.image import read_image

            image = read_image(path)
        except ImageError as e:
            errors += 1
            lines.append(json.dumps({"file": str(path), "error": str(e)}))
            print(f"skipping: {e}", file=sys.stderr)
            continue
        pred = det.predict(image)
        n_ship += pred.is_ship
        record = {"file": str(path), **pred.to_dict()}
        if overlay:
            from shipcam.runtime.overlay import overlay as draw, save_png

            png = out_dir / f"{path.stem}_cam.png"
            save_png(draw(image, pred.cam_image, pred.boxes, label=f"p(ship)={pred.probability:.2f}"), png)
            record["overlay"] = str(png)
        lines.append(json.dumps(record))
    write_text(out_dir / "predictions.jsonl", "\n".join(lines) + "\n")
    summary = {"model": str(model), "engine": det.engine.describe(), "images": len(paths), "ships": int(n_ship), "errors": errors}
    write_json(out_dir / "summary.json", summary)
    return summary


def scan_file(model: str, scene: str, out: str, tile: int | None = None, overlap: float = 0.25, engine: str = "auto", threads: int = 1, batch: int = 8) -> dict:
    from shipcam.runtime.cam import resize_bilinear
    from shipcam.runtime.detector import Detector
    from shipcam.runtime.image import read_image
    from shipcam.runtime.overlay import overlay, save_png

    det = Detector.load(model, engine=engine, threads=threads)
    t0 = time.perf_counter()
    image = read_image(scene)
    res = det.scan(image, tile=tile, overlap=overlap, batch=batch, progress=True)
    out_dir = Path(out)
    stem = Path(scene).stem
    H, W = image.shape[:2]
    heat = resize_bilinear(res.heatmap, H, W)
    lo, hi = float(res.heatmap.min()), float(res.heatmap.max())
    save_png(overlay(image, heat, res.boxes, alpha=0.5, vmin=max(lo, 0.0), vmax=max(hi, 1e-3)), out_dir / f"{stem}_heatmap.png")
    geo = _geojson(res.boxes, scene)
    write_json(out_dir / f"{stem}_boxes.geojson", geo)
    summary = {
        "scene": str(scene),
        "size": [W, H],
        "boxes": len(res.boxes),
        "tiles": res.tiles,
        "positive_tiles": res.positive_tiles,
        "scan_seconds": round(res.seconds, 3),
        "total_seconds": round(time.perf_counter() - t0, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "engine": det.engine.describe(),
        "tile": tile,
        "overlap": overlap,
        "crs": geo.get("crs", {}).get("properties", {}).get("name", "pixel"),
    }
    write_json(out_dir / f"{stem}_scan.json", summary)
    return summary


def _geojson(boxes, scene: str) -> dict:
    """Boxes as polygons: pixel coordinates, or the GeoTIFF's CRS when rasterio can read one."""
    transform, crs = None, None
    if Path(scene).suffix.lower() in (".tif", ".tiff"):
        try:
            import rasterio

            with rasterio.open(scene) as src:
                transform, crs = src.transform, src.crs
        except ImportError:
            print("note: install rasterio for geographic coordinates; writing pixel coordinates", file=sys.stderr)
        except Exception:  # not georeferenced
            transform = None

    def point(x, y):
        if transform is None:
            return [round(x, 2), round(y, 2)]
        gx, gy = transform * (x, y)
        return [gx, gy]

    features = []
    for b in boxes:
        ring = [point(b.x0, b.y0), point(b.x1, b.y0), point(b.x1, b.y1), point(b.x0, b.y1), point(b.x0, b.y0)]
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": {"score": round(b.score, 4), "pixel_box": b.to_dict()}})
    geo = {"type": "FeatureCollection", "features": features}
    geo["crs"] = {"type": "name", "properties": {"name": str(crs) if crs else "pixel"}}
    return geo
