"""Detections as GeoJSON (RFC 7946): one Feature per detection, its peak and its box.

Each Feature's geometry is a ``GeometryCollection`` of the peak (``Point``)
and the box (``Polygon``); its properties carry the score (logit units), the
probability and the box in pixels. Coordinates are geographic when an affine
``transform`` (GeoTIFF, via rasterio) is given, scene pixels otherwise; the
collection names which in ``crs``.
"""

from __future__ import annotations

from typing import Callable, Iterable

from shipcam.runtime.detections import Detection

__all__ = ["detections_geojson", "scene_georeference"]

Point = Callable[[float, float], list[float]]


def detections_geojson(
    detections: Iterable[Detection],
    transform=None,
    crs: str | None = None,
    properties: dict | None = None,
    feature_properties: list[dict] | None = None,
    pixel_box: bool = True,
) -> dict:
    """A FeatureCollection of ``detections``; ``transform`` maps (col, row) to map coordinates (an ``affine.Affine``).

    ``properties`` go on every Feature, ``feature_properties[i]`` on the i-th;
    ``pixel_box=False`` leaves out the pixel copy of the geometry (a compact manifest).
    """

    def point(x: float, y: float) -> list[float]:
        if transform is None:
            return [round(float(x), 2), round(float(y), 2)]
        t = transform  # an affine map (col, row) -> (x, y), written out: Affine's * is deprecated for @
        return [float(t.a * x + t.b * y + t.c), float(t.d * x + t.e * y + t.f)]

    features = []
    for i, d in enumerate(detections):
        b = d.box
        ring = [point(b.x0, b.y0), point(b.x1, b.y0), point(b.x1, b.y1), point(b.x0, b.y1), point(b.x0, b.y0)]
        features.append(
            {
                "type": "Feature",
                "id": i,
                "geometry": {
                    "type": "GeometryCollection",
                    "geometries": [
                        {"type": "Point", "coordinates": point(d.x, d.y)},
                        {"type": "Polygon", "coordinates": [ring]},
                    ],
                },
                "properties": {
                    "score": round(d.score, 4),
                    "probability": round(d.probability, 6),
                    **({"pixel": d.to_dict()} if pixel_box else {}),
                    **(properties or {}),
                    **(feature_properties[i] if feature_properties else {}),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs or "pixel"}},
        "features": features,
    }


def scene_georeference(path) -> tuple[object | None, str | None, float | None]:
    """(affine transform, CRS string, metres/pixel) of a GeoTIFF/JP2 through rasterio, or Nones.

    Returns Nones for files without georeferencing and when rasterio is not
    installed (the caller says so). The GSD is the transform's pixel width,
    converted from degrees at the scene's latitude for geographic CRSs.
    """
    try:
        import rasterio
    except ImportError:
        return None, None, None
    import math

    try:
        with rasterio.open(path) as src:
            transform, crs = src.transform, src.crs
    except rasterio.errors.RasterioIOError:
        return None, None, None
    if crs is None or transform.is_identity:
        return None, None, None
    px = math.hypot(transform.a, transform.d)
    if crs.is_geographic:
        lat = transform.f
        px *= 111_320.0 * math.cos(math.radians(lat))
    return transform, str(crs), px
