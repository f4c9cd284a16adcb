"""Detections as files GIS tools open as they are: GeoJSON (RFC 7946), GeoPackage, and the heatmap as a COG.

One Feature per detection with one geometry: the peak (``Point``, the
default) or the box (``Polygon``, its four corners mapped one by one). The
properties carry the score (logit units), the probability, the box in scene
pixels (``pixel_x0`` ...), and for a georeferenced scene the box's extent in
the output coordinates (``box_west`` ... ``box_north``).

Where the coordinates come from (``Coordinates``):

- ``wgs84`` (the default for a GeoTIFF/JP2 with a CRS): longitude/latitude,
  the scene's affine transform then pyproj from the scene's CRS to EPSG:4326;
  RFC 7946 GeoJSON, with a ``bbox`` per feature and for the collection.
- ``native``: the scene's own CRS, written as a GeoPackage (a format that
  carries its CRS; RFC 7946 GeoJSON cannot).
- ``pixel``: scene pixels (x right, y down) for images without a usable
  georeference; the collection says so (``"coordinates": "pixel"``) and has
  no bbox.

rasterio, pyproj and pyogrio are imported when they are used: importing this
module loads numpy only.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from pathlib import Path
from typing import Iterable

import numpy as np

from shipcam.errors import ShipcamError
from shipcam.runtime.detections import Detection

__all__ = [
    "CRS_CHOICES",
    "GEOMETRIES",
    "HEATMAP_FORMATS",
    "Coordinates",
    "Georeference",
    "detections_geojson",
    "output_coordinates",
    "read_georeference",
    "scene_georeference",
    "write_detections_gpkg",
    "write_heatmap_geotiff",
]

CRS_CHOICES = ("wgs84", "native")  # --crs
GEOMETRIES = ("point", "box")  # --geometry
HEATMAP_FORMATS = ("png", "cog", "none")  # --heatmap
GEOREFERENCED_SUFFIXES = (".tif", ".tiff", ".jp2")
LONLAT_DIGITS = 8  # about a millimetre: far below a pixel, and a compact file
COG_BLOCK = 512
# GDAL's block cache while the heatmap COG is written: one row of 512 px float32 tiles of a 5000 px map is 10 MB.
# Measured on a 5000 x 5000 map, the write added 73 MB at 16 MB and 120 MB at 64 MB, at the same speed.
COG_CACHE_MB = 16


@dataclasses.dataclass(frozen=True)
class Georeference:
    """What a scene file says about where it lies: an affine transform, a CRS (rasterio's), or neither.

    ``problem`` says, in a few words, why a scene has no usable georeference
    (no transform, no CRS, rasterio missing); None for a PNG/JPEG, which never
    has one, and for a complete one.
    """

    transform: object | None = None  # affine.Affine: (col, row) -> scene CRS
    crs: object | None = None  # rasterio.crs.CRS
    problem: str | None = None
    shape: tuple[int, int] | None = None  # (height, width) in pixels

    @property
    def complete(self) -> bool:
        return self.transform is not None and self.crs is not None

    @property
    def crs_name(self) -> str | None:
        """The CRS as ``EPSG:nnnn`` where it has a code, else its WKT."""
        if self.crs is None:
            return None
        return self.crs.to_string()

    @property
    def gsd(self) -> float | None:
        """Metres/pixel from the transform's pixel width (from degrees at the scene's latitude for a geographic CRS)."""
        if not self.complete:
            return None
        t = self.transform
        px = math.hypot(t.a, t.d)
        if self.crs.is_geographic:
            px *= 111_320.0 * math.cos(math.radians(t.f))
        return px


def read_georeference(path) -> Georeference:
    """The georeference of a GeoTIFF/JP2 through rasterio; an empty one for other files and unreadable ones.

    A file rasterio cannot open is not an error here (``problem`` says so): reading its pixels says what is
    wrong with it.
    """
    if Path(path).suffix.lower() not in GEOREFERENCED_SUFFIXES:
        return Georeference()
    try:
        import rasterio
    except ImportError:
        return Georeference(problem='rasterio is not installed (pip install "shipcam[geo]")')
    try:
        with rasterio.open(path) as src:
            transform, crs, shape = src.transform, src.crs, (src.height, src.width)
    except rasterio.errors.RasterioIOError:
        return Georeference(problem="rasterio cannot open it")
    if transform.is_identity:  # GDAL's default for a file without one
        return Georeference(crs=crs, problem="no georeferencing transform", shape=shape)
    if crs is None:
        return Georeference(transform=transform, problem="a transform but no CRS", shape=shape)
    return Georeference(transform, crs, shape=shape)


def scene_georeference(path) -> tuple[object | None, str | None, float | None]:
    """(affine transform, CRS string, metres/pixel) of a GeoTIFF/JP2 through rasterio, or Nones."""
    g = read_georeference(path)
    if not g.complete:
        return None, None, None
    return g.transform, g.crs_name, g.gsd


class Coordinates:
    """Scene pixels (x right, y down, 0 at the first pixel's corner) to an output's coordinates.

    ``kind``: ``pixel``, ``wgs84`` (longitude, latitude) or ``native`` (the
    scene's CRS). ``crs_name``/``crs_wkt``: the output's CRS (None for pixels).
    """

    def __init__(self, kind: str = "pixel", transform=None, crs_name: str | None = None, crs_wkt: str | None = None):
        self.kind, self.transform, self.crs_name, self.crs_wkt = kind, transform, crs_name, crs_wkt
        self._project = None  # pyproj's transform function, scene CRS -> WGS 84, for "wgs84"

    @property
    def pixel(self) -> bool:
        return self.kind == "pixel"

    def __call__(self, xs, ys) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
        if self.pixel:
            return x, y
        t = self.transform  # written out: Affine's * on tuples is deprecated
        mx, my = t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f
        if self._project is not None:
            mx, my = self._project(mx, my)
            mx, my = np.asarray(mx, np.float64), np.asarray(my, np.float64)
        return mx, my

    def describe(self) -> dict:
        """What the collection says about its coordinates: ``pixel``, ``wgs84`` or ``native``."""
        return {"coordinates": self.kind}


def _wgs84(g: Georeference) -> Coordinates | str:
    """Coordinates in WGS 84 longitude/latitude, or why the scene's CRS cannot give them."""
    try:
        import pyproj
    except ImportError:
        return "reprojecting to WGS 84 needs pyproj (pip install pyproj), which is not installed"

    try:
        src = pyproj.CRS.from_user_input(g.crs.to_string())  # EPSG:nnnn where it has a code, else its WKT
        tr = pyproj.Transformer.from_crs(src, pyproj.CRS.from_epsg(4326), always_xy=True)
    except pyproj.exceptions.ProjError as e:  # an engineering (local) CRS, or one PROJ does not know
        return f"its CRS cannot be transformed to WGS 84 ({str(e).splitlines()[0] if str(e) else 'no operation'})"
    c = Coordinates("wgs84", g.transform, "EPSG:4326")
    c._project = tr.transform
    H, W = g.shape or (1, 1)
    lon, lat = c([0, W, W, 0, W / 2], [0, 0, H, H, H / 2])  # the corners and the centre
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return "its CRS gives no WGS 84 position for the scene's corners"
    return c


def output_coordinates(scene, g: Georeference, crs: str = "wgs84") -> tuple[Coordinates, str | None]:
    """The coordinates ``--crs`` asks for, and a note when the scene falls back to pixels.

    ``--crs native`` without a CRS is an error (a ``ShipcamError`` naming the
    file): there is no native CRS to keep.
    """
    if crs not in CRS_CHOICES:
        raise ShipcamError(f"--crs must be one of {', '.join(CRS_CHOICES)}, received {crs!r}")
    if crs == "native":
        if not g.complete:
            raise ShipcamError(
                f"{scene}: --crs native needs a GeoTIFF/JP2 with a CRS, and this scene has none "
                f"({g.problem or 'no georeference'}): use --crs wgs84, which writes scene pixels for it"
            )
        return Coordinates("native", g.transform, g.crs_name, g.crs.to_wkt()), None
    if not g.complete:
        note = None if g.problem is None else f"{scene}: {g.problem}: coordinates in scene pixels"
        return Coordinates(), note
    c = _wgs84(g)
    if isinstance(c, str):
        return Coordinates(), f"{scene}: {c}: coordinates in scene pixels"
    return c, None


def _ring_ccw(ring: list[list[float]]) -> list[list[float]]:
    """The closed ring counterclockwise (RFC 7946's right-hand rule for an exterior ring)."""
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))
    return ring if area >= 0 else ring[::-1]


def _features(
    detections: list[Detection], coords: Coordinates, geometry: str, pixel_box: bool, digits: int | None
) -> list[tuple[dict, list[float] | None, dict]]:
    """(geometry, bbox or None, properties) per detection, all points mapped in one call."""
    if geometry not in GEOMETRIES:
        raise ShipcamError(f"--geometry must be one of {', '.join(GEOMETRIES)}, received {geometry!r}")
    if not detections:
        return []
    xs, ys = [], []
    for d in detections:
        b = d.box
        xs += [d.x, b.x0, b.x1, b.x1, b.x0]
        ys += [d.y, b.y0, b.y0, b.y1, b.y1]
    X, Y = coords(xs, ys)
    if coords.pixel:
        X, Y = np.round(X, 2), np.round(Y, 2)
    elif digits is not None:
        X, Y = np.round(X, digits), np.round(Y, digits)
    X, Y = X.reshape(-1, 5).tolist(), Y.reshape(-1, 5).tolist()
    out = []
    for d, px, py in zip(detections, X, Y):
        if geometry == "point":
            geom = {"type": "Point", "coordinates": [px[0], py[0]]}
        else:
            ring = [[px[k], py[k]] for k in (1, 2, 3, 4, 1)]
            geom = {"type": "Polygon", "coordinates": [_ring_ccw(ring)]}
        props = {"score": round(d.score, 4), "probability": round(d.probability, 6)}
        if pixel_box:
            p = d.to_dict()
            props.update({f"pixel_{k}": p[k] for k in ("x", "y", "x0", "y0", "x1", "y1")})
        bbox = None
        if not coords.pixel:
            bbox = [min(px[1:]), min(py[1:]), max(px[1:]), max(py[1:])]
            if pixel_box:
                props.update(zip(("box_west", "box_south", "box_east", "box_north"), bbox))
                if geometry == "box":  # the peak, which the polygon does not give
                    props.update(peak_x=px[0], peak_y=py[0])
        out.append((geom, bbox, props))
    return out


def detections_geojson(
    detections: Iterable[Detection],
    coords: Coordinates | None = None,
    geometry: str = "point",
    properties: dict | None = None,
    feature_properties: list[dict] | None = None,
    collection: dict | None = None,
    pixel_box: bool = True,
    bbox: bool = True,
    digits: int | None = LONLAT_DIGITS,
) -> dict:
    """A FeatureCollection of ``detections`` in ``coords`` (pixels when None): RFC 7946 for ``wgs84``.

    ``properties`` go on every Feature, ``feature_properties[i]`` on the i-th,
    ``collection`` into the collection's ``properties`` (after what it says
    about its coordinates). ``pixel_box=False`` and ``bbox=False`` leave out
    the pixel box and the bboxes (a compact manifest); ``digits`` rounds
    longitude/latitude (pixels are rounded to 0.01). A ``native`` collection
    is not GeoJSON's business: write it with ``write_detections_gpkg``.
    """
    coords = coords or Coordinates()
    if coords.kind == "native":
        raise ValueError("RFC 7946 GeoJSON is in WGS 84: write native coordinates with write_detections_gpkg")
    detections = list(detections)
    features = []
    boxes = []
    for i, (geom, box, props) in enumerate(_features(detections, coords, geometry, pixel_box, digits)):
        feature = {"type": "Feature", "id": i}
        if box is not None and bbox:
            feature["bbox"] = box
            boxes.append(box)
        feature["geometry"] = geom
        feature["properties"] = {**props, **(properties or {}), **(feature_properties[i] if feature_properties else {})}
        features.append(feature)
    out: dict = {"type": "FeatureCollection"}
    if boxes:
        out["bbox"] = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes)]
        out["bbox"].append(max(b[3] for b in boxes))
    # a foreign member (RFC 7946 section 6.1): what the numbers are, for readers of the file
    out["properties"] = {**coords.describe(), **(collection or {})}
    out["features"] = features
    return out


def _wkb(geom: dict) -> bytes:
    """A Point or Polygon as little-endian WKB."""
    if geom["type"] == "Point":
        return struct.pack("<BIdd", 1, 1, *geom["coordinates"])
    rings = geom["coordinates"]
    parts = [struct.pack("<BII", 1, 3, len(rings))]
    for ring in rings:
        parts.append(struct.pack("<I", len(ring)))
        parts += [struct.pack("<dd", x, y) for x, y in ring]
    return b"".join(parts)


def write_detections_gpkg(
    path: str | Path,
    detections: Iterable[Detection],
    coords: Coordinates,
    geometry: str = "point",
    collection: dict | None = None,
) -> Path:
    """``detections`` as a GeoPackage layer ``detections`` in ``coords``' CRS (through pyogrio), written atomically.

    ``collection`` goes into the layer's metadata (as text).
    """
    try:
        import pyogrio.raw
    except ImportError:
        raise ShipcamError(f"{path}: writing a GeoPackage needs pyogrio: pip install pyogrio") from None
    from shipcam._utils.io import atomic_path

    if coords.pixel:
        raise ValueError("a GeoPackage of scene pixels says nothing about where they are")
    rows = _features(list(detections), coords, geometry, True, None)
    names = ["score", "probability", *(f"pixel_{k}" for k in ("x", "y", "x0", "y0", "x1", "y1"))]
    names += ["box_west", "box_south", "box_east", "box_north"] + (["peak_x", "peak_y"] if geometry == "box" else [])
    fields = [np.array([props[n] for _, _, props in rows], np.float64) for n in names]
    wkb = np.array([_wkb(geom) for geom, _, _ in rows], dtype=object)
    meta = {k: str(v) for k, v in {**coords.describe(), **(collection or {})}.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        gpkg = tmp.with_suffix(".gpkg")  # the GPKG driver expects its extension
        try:
            pyogrio.raw.write(
                gpkg,
                wkb,
                fields,
                names,
                layer="detections",
                driver="GPKG",
                geometry_type="Point" if geometry == "point" else "Polygon",
                crs=coords.crs_wkt,
                layer_metadata=meta,
            )
            gpkg.replace(tmp)
        finally:
            gpkg.unlink(missing_ok=True)
    return path


def _cog_driver(rasterio) -> bool:
    with rasterio.Env() as env:
        return "COG" in env.drivers()


def write_heatmap_geotiff(path: str | Path, heatmap: np.ndarray, cell: float, g: Georeference, cog=None) -> str:
    """The heatmap (float32 logits) as a Cloud-Optimised GeoTIFF in the scene's CRS, written atomically.

    One heatmap cell is ``cell`` scene pixels, so its transform is the
    scene's scaled by ``cell``. Tiled 512 x 512, DEFLATE, overviews (averaged)
    down to one tile. GDAL's COG driver writes it where the installed GDAL has
    one (3.1 and later; ``cog=False`` forces the other way): otherwise a tiled
    GeoTIFF is written with its overviews, copied with
    ``copy_src_overviews`` so they come before the full-resolution tiles.
    The map goes through a temporary tiled file beside ``path``, a row of
    tiles at a time, under a small GDAL block cache: the write adds about
    0.7x the map's own memory (2.5x through an in-memory file and GDAL's
    default cache, measured on a 5000 x 5000 map).
    Returns the driver used ("COG" or "GTiff").
    """
    import rasterio
    import rasterio.shutil
    from affine import Affine
    from rasterio.windows import Window

    from shipcam._utils.io import atomic_path

    h, w = heatmap.shape
    t = g.transform
    cog = _cog_driver(rasterio) if cog is None else cog
    profile = dict(
        driver="GTiff",
        width=w,
        height=h,
        count=1,
        dtype="float32",
        crs=g.crs,
        transform=Affine(t.a * cell, t.b * cell, t.c, t.d * cell, t.e * cell, t.f),  # t * Affine.scale(cell)
    )
    factors = []
    while max(h, w) / 2 ** len(factors) > COG_BLOCK:  # halvings until the smallest fits one tile
        factors.append(2 ** (len(factors) + 1))
    creation = dict(compress="deflate")
    with atomic_path(path) as tmp, rasterio.Env(GDAL_CACHEMAX=COG_CACHE_MB * 2**20):
        src_path = tmp.with_name(tmp.name + ".src.tif")  # uncompressed: it is read once, then deleted
        try:
            with rasterio.open(src_path, "w", **profile, tiled=True, blockxsize=COG_BLOCK, blockysize=COG_BLOCK) as ds:
                for y in range(0, h, COG_BLOCK):
                    rows = np.ascontiguousarray(heatmap[y : y + COG_BLOCK], np.float32)
                    ds.write(rows, 1, window=Window(0, y, w, rows.shape[0]))
                ds.set_band_description(1, "ship CAM, logit units (0: p = 0.5)")
                ds.update_tags(cell_scene_pixels=f"{cell:g}", units="logit")
                if not cog and factors:
                    from rasterio.enums import Resampling

                    ds.build_overviews(factors, Resampling.average)
            with rasterio.open(src_path) as src:
                if cog:
                    rasterio.shutil.copy(
                        src,
                        tmp,
                        driver="COG",
                        blocksize=COG_BLOCK,
                        predictor="YES",
                        overview_resampling="average",
                        **creation,
                    )
                else:
                    rasterio.shutil.copy(
                        src,
                        tmp,
                        driver="GTiff",
                        tiled=True,
                        blockxsize=COG_BLOCK,
                        blockysize=COG_BLOCK,
                        copy_src_overviews=True,
                        predictor=3,
                        **creation,
                    )
        finally:
            src_path.unlink(missing_ok=True)
    return "COG" if cog else "GTiff"
