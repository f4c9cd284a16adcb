"""Outputs GIS tools open as they are, checked through GDAL/OGR (pyogrio, rasterio) and pyproj, not our own parser.

The scene: dark water in UTM zone 10N (EPSG:32610, off San Francisco) at 3 m,
with two bright hulls drawn at known pixels. The engine is analytic (its one
feature is the brightness of each 16 px block, its CAM that minus 0.5), so
the heatmap peaks on the hulls by construction; the command-line cases run
the committed tiny model.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.cli import main
from shipcam.runtime import Detector
from shipcam.runtime.engines.base import Engine
from shipcam.runtime.files import scan_file
from shipcam.runtime.metadata import ModelMetadata

rasterio = pytest.importorskip("rasterio")
pyproj = pytest.importorskip("pyproj")
pyogrio = pytest.importorskip("pyogrio")
from affine import Affine  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_fp32.onnx"
GSD = 3.0
TRANSFORM = Affine(GSD, 0, 550_000.0, 0, -GSD, 4_185_000.0)  # UTM 10N: 37.8 N, 122.4 W
UTM = "EPSG:32610"
H, W = 192, 256
HULLS = [(48, 64, 48, 96), (128, 144, 160, 208)]  # (row0, row1, col0, col1): 48 x 144 m and 48 x 144 m
B = 16  # the analytic engine's block (feature stride); a heatmap cell is B / 4 = 4 px
LOCAL_CS = 'LOCAL_CS["site grid",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
# A Shapefile's field names have 10 characters: GDAL writes "probabilit", and says so.
SHAPEFILE_NAMES = pytest.mark.filterwarnings("ignore:Normalized/laundered field name")
TINY = ["--tile", "64", "--threshold", "0.05", "--no-isolation", "--gsd", "3"]


class Brightness(Engine):
    name = "brightness"

    def __init__(self):
        self.path, self.threads, self._lock = Path("<brightness>"), 1, threading.Lock()
        self.input_shape = (None, None, None, 3)
        self.metadata = ModelMetadata(
            cam_weights=[1.0],
            cam_bias=-0.5,
            pooling="max",
            backbone="blocks",
            feature_channels=1,
            input_scale=1 / 255,
            input_offset=0.0,
            input_size=None,
            train_size=64,
            feature_stride=B,
            gsd=GSD,
        )

    def _run(self, batch):
        n, h, w, _ = batch.shape
        f = batch[..., 0].reshape(n, h // B, B, w // B, B).mean(axis=(2, 4))[..., None]
        return {"logits": f.max(axis=(1, 2)) - 0.5, "features": f}


def _detector() -> Detector:
    det = Detector(Brightness())
    det.rule = dataclasses.replace(det.rule, isolation=False)
    return det


def _image() -> np.ndarray:
    img = np.clip(np.random.default_rng(0).normal(20, 3, (H, W, 3)), 0, 255).astype(np.uint8)
    for r0, r1, c0, c1 in HULLS:
        img[r0:r1, c0:c1] = 240
    return img


def _geotiff(path: Path, crs=UTM, transform=TRANSFORM) -> Path:
    img = _image()
    with rasterio.open(
        path, "w", driver="GTiff", width=W, height=H, count=3, dtype="uint8", crs=crs, transform=transform
    ) as ds:
        ds.write(np.moveaxis(img, -1, 0))
    return path


def _scan(tmp_path, name="scene", out="o", **kw) -> dict:
    scene = _geotiff(tmp_path / f"{name}.tif")
    return scan_file("", str(scene), str(tmp_path / out), detector=_detector(), progress=False, **kw)


def _lonlat(px, py, crs=UTM):
    """Scene pixels to longitude/latitude, by hand: the GeoTIFF's transform, then pyproj."""
    x, y = TRANSFORM.c + GSD * np.asarray(px, float), TRANSFORM.f - GSD * np.asarray(py, float)
    return pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)


def _on_a_hull(px, py, slack=2 * B / 4) -> bool:
    return any(c0 - slack <= px <= c1 + slack and r0 - slack <= py <= r1 + slack for r0, r1, c0, c1 in HULLS)


@SHAPEFILE_NAMES
def test_geojson_is_rfc7946_in_lon_lat_and_gdal_reads_it(tmp_path):
    s = _scan(tmp_path)
    path = tmp_path / "o" / "scene_detections.geojson"
    assert s["outputs"] == {"detections": path.name, "heatmap": "scene_heatmap.png"} and s["coordinates"] == "wgs84"
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4326" and info["geometry_type"] == "Point" and info["features"] == s["detections"]
    geo = json.loads(path.read_text())
    assert "crs" not in geo and geo["properties"]["coordinates"] == "wgs84"
    feats = geo["features"]
    assert len(feats) >= 2
    for f in feats:
        p, (lon, lat) = f["properties"], f["geometry"]["coordinates"]
        assert f["geometry"]["type"] == "Point"
        assert (lon, lat) == pytest.approx(_lonlat(p["pixel_x"], p["pixel_y"]), abs=1e-7)  # the known detection
        west, south, east, north = f["bbox"]
        assert west <= lon <= east and south <= lat <= north
        assert [p["box_west"], p["box_south"], p["box_east"], p["box_north"]] == f["bbox"]
        # the extent of the box's four corners (UTM's grid is turned a little against the meridians)
        lons, lats = _lonlat([p["pixel_x0"], p["pixel_x1"]] * 2, [p["pixel_y0"]] * 2 + [p["pixel_y1"]] * 2)
        assert f["bbox"] == pytest.approx([min(lons), min(lats), max(lons), max(lats)], abs=1e-7)
    assert geo["bbox"] == [min(f["bbox"][k] for f in feats) for k in (0, 1)] + [
        max(f["bbox"][k] for f in feats) for k in (2, 3)
    ]
    for r0, r1, c0, c1 in HULLS:  # each hull has its detection, at the hull
        assert any(c0 <= f["properties"]["pixel_x"] <= c1 and r0 <= f["properties"]["pixel_y"] <= r1 for f in feats)
    # GDAL reads it and converts it as it is: GeoPackage and Shapefile, the CRS and the points kept
    frame = pyogrio.read_dataframe(path)
    for out in (tmp_path / "d.gpkg", tmp_path / "shp" / "d.shp"):
        out.parent.mkdir(exist_ok=True)
        pyogrio.write_dataframe(frame, out)
        back = pyogrio.read_dataframe(out)
        assert back.crs.to_epsg() == 4326 and list(back.geom_type) == ["Point"] * len(feats)
        np.testing.assert_allclose(np.c_[back.geometry.x, back.geometry.y], np.c_[frame.geometry.x, frame.geometry.y])


def test_geometry_box_writes_polygons_mapped_corner_by_corner(tmp_path):
    _scan(tmp_path, geometry="box")
    path = tmp_path / "o" / "scene_detections.geojson"
    assert pyogrio.read_info(path)["geometry_type"] == "Polygon"
    frame = pyogrio.read_dataframe(path)
    assert frame.crs.to_epsg() == 4326 and set(frame.geom_type) == {"Polygon"}
    for f in json.loads(path.read_text())["features"]:
        p = f["properties"]
        ring = f["geometry"]["coordinates"][0]
        assert len(ring) == 5 and ring[0] == ring[-1]
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))
        assert area > 0  # counterclockwise: RFC 7946's right-hand rule
        xs, ys = [p["pixel_x0"], p["pixel_x1"], p["pixel_x1"], p["pixel_x0"]], [p[f"pixel_y{k}"] for k in "0011"]
        lon, lat = _lonlat(xs, ys)
        np.testing.assert_allclose(sorted(map(tuple, ring[:4])), sorted(zip(lon, lat)), rtol=0, atol=1e-7)
        assert (p["peak_x"], p["peak_y"]) == pytest.approx(_lonlat(p["pixel_x"], p["pixel_y"]), abs=1e-7)
        assert _on_a_hull(p["pixel_x"], p["pixel_y"])


@SHAPEFILE_NAMES
@pytest.mark.parametrize("geometry", ["point", "box"])
def test_crs_native_writes_a_geopackage_in_the_scenes_crs(tmp_path, geometry):
    s = _scan(tmp_path, crs="native", geometry=geometry)
    path = tmp_path / "o" / "scene_detections.gpkg"
    assert s["outputs"]["detections"] == path.name and not (tmp_path / "o" / "scene_detections.geojson").exists()
    info = pyogrio.read_info(path)
    assert info["crs"] == UTM and info["geometry_type"] == geometry.replace("point", "Point").replace("box", "Polygon")
    assert info["features"] == s["detections"] >= 2 and info["layer_metadata"]["coordinates"] == "native"
    frame = pyogrio.read_dataframe(path)
    peaks = np.c_[frame["pixel_x"], frame["pixel_y"]]
    utm = np.c_[TRANSFORM.c + GSD * peaks[:, 0], TRANSFORM.f - GSD * peaks[:, 1]]
    if geometry == "point":
        np.testing.assert_allclose(np.c_[frame.geometry.x, frame.geometry.y], utm, atol=1e-6)
    else:
        np.testing.assert_allclose(np.c_[frame["peak_x"], frame["peak_y"]], utm, atol=1e-6)
        b = frame.geometry.bounds
        np.testing.assert_allclose(b["minx"], TRANSFORM.c + GSD * frame["pixel_x0"], atol=1e-6)
        np.testing.assert_allclose(b["maxy"], TRANSFORM.f - GSD * frame["pixel_y0"], atol=1e-6)
    pyogrio.write_dataframe(frame, tmp_path / "d.shp")  # and on to a Shapefile, the CRS with it (a .prj)
    assert pyogrio.read_dataframe(tmp_path / "d.shp").crs.to_epsg() == 32610


def test_cog_heatmap_lies_on_the_scene_in_its_crs(tmp_path):
    s = _scan(tmp_path, heatmap="cog")
    path = tmp_path / "o" / "scene_heatmap.tif"
    assert s["outputs"]["heatmap"] == path.name and not (tmp_path / "o" / "scene_heatmap.png").exists()
    expected = _detector().scan(_image(), gsd=GSD)
    cell_m = expected.cell * GSD
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 32610 and ds.dtypes == ("float32",) and ds.count == 1
        assert ds.block_shapes == [(512, 512)] and ds.compression.name == "deflate"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        left, bottom, right, top = ds.bounds
        assert (left, top) == pytest.approx((TRANSFORM.c, TRANSFORM.f), abs=1e-6)
        assert right == pytest.approx(TRANSFORM.c + W * GSD, abs=cell_m) and bottom == pytest.approx(
            TRANSFORM.f - H * GSD, abs=cell_m
        )
        heat = ds.read(1)
        np.testing.assert_array_equal(heat, expected.heatmap)  # the scan's heatmap, logit units
        row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
        x, y = ds.xy(row, col)  # the maximum's cell centre, in metres
    px, py = (x - TRANSFORM.c) / GSD, (TRANSFORM.f - y) / GSD
    assert _on_a_hull(px, py)


@pytest.mark.parametrize("cog", [None, False])
def test_large_heatmaps_are_tiled_with_overviews_with_or_without_gdals_cog_driver(tmp_path, cog):
    from shipcam.runtime.geojson import Georeference, write_heatmap_geotiff

    heat = np.random.default_rng(1).normal(size=(1100, 1300)).astype(np.float32)
    g = Georeference(TRANSFORM, rasterio.crs.CRS.from_string(UTM))
    driver = write_heatmap_geotiff(tmp_path / "h.tif", heat, 4.0, g, cog=cog)
    assert driver == ("GTiff" if cog is False else "COG")
    with rasterio.open(tmp_path / "h.tif") as ds:
        assert ds.block_shapes == [(512, 512)] and ds.overviews(1) == [2, 4]
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"  # overviews before the full-resolution tiles
        assert ds.transform == Affine(12.0, 0, TRANSFORM.c, 0, -12.0, TRANSFORM.f)
        np.testing.assert_array_equal(ds.read(1), heat)
    assert [p.name for p in tmp_path.iterdir()] == ["h.tif"]  # no temporary file left


@pytest.mark.parametrize("crs", ["wgs84", "native"])
def test_downlink_manifest_is_compact_rfc7946(tmp_path, crs):
    s = _scan(tmp_path, downlink=dict(crops=str(tmp_path / "c"), size=32), crs=crs)  # native: still lon/lat
    raw = (tmp_path / "c" / "scene_downlink.geojson").read_bytes()
    manifest = json.loads(raw)
    assert b" " not in raw and "crs" not in manifest and manifest["shipcam"]["coordinates"] == "wgs84"
    assert pyogrio.read_info(tmp_path / "c" / "scene_downlink.geojson")["crs"] == "EPSG:4326"
    assert manifest["shipcam"]["sent"] == s["downlink"]["chips"] == len(manifest["features"]) >= 2
    for f in manifest["features"]:
        assert f["geometry"]["type"] == "Point" and set(f) == {"type", "id", "geometry", "properties"}
        x0, y0, x1, y1 = f["properties"]["window"]
        lon, lat = f["geometry"]["coordinates"]
        cx, cy = _lonlat((x0 + x1) / 2, (y0 + y1) / 2)  # the chip's centre: within half a chip of the peak
        assert abs(lon - cx) < 1e-3 and abs(lat - cy) < 1e-3


def test_geoparquet_of_an_archive_builds_from_every_kind_of_output(tmp_path):
    pytest.importorskip("geopandas")
    pytest.importorskip("pyarrow")
    from shipcam.runtime.archive import _write_parquet

    out = tmp_path / "archive"
    kinds = {"pt": {}, "bx": dict(geometry="box"), "np": dict(crs="native"), "nb": dict(crs="native", geometry="box")}
    for key, kw in kinds.items():
        _scan(tmp_path, name=key, out=f"archive/scenes/{key}", **kw)
    Image.fromarray(_image()).save(tmp_path / "px.png")
    scan_file("", str(tmp_path / "px.png"), str(out / "scenes" / "px"), detector=_detector(), progress=False, gsd=GSD)
    done = [(k, tmp_path / f"{k}.tif") for k in kinds] + [("px", tmp_path / "px.png")]
    table = _write_parquet(out, done)
    import geopandas as gpd

    frame = gpd.read_parquet(out / "detections.parquet")
    assert table["geoparquet"] and frame.crs.to_string() == "OGC:CRS84" and len(frame) == table["detections"]
    assert frame[frame["key"] == "px"].geometry.isna().all() and (frame[frame["key"] == "px"]["crs"] == "pixel").all()
    geo = frame[frame["key"] != "px"]
    assert len(geo) == 4 * len(frame[frame["key"] == "px"]) > 0  # the same detections, whatever the output
    lon, lat = _lonlat(geo["x"], geo["y"])
    np.testing.assert_allclose(np.c_[geo.geometry.x, geo.geometry.y], np.c_[lon, lat], atol=1e-7)


def test_png_scene_says_its_coordinates_are_pixels(tmp_path, capsys):
    Image.fromarray(_image()).save(tmp_path / "scene.png")
    args = ["scan", str(FIXTURE), str(tmp_path / "scene.png"), "--out", str(tmp_path / "o"), *TINY]
    assert main(args + ["--heatmap", "cog"]) == 0
    geo = json.loads((tmp_path / "o" / "scene_detections.geojson").read_text())
    assert geo["properties"]["coordinates"] == "pixel" and geo["properties"]["size"] == [W, H]
    assert "bbox" not in geo and "crs" not in geo and geo["features"]  # no bbox: pixels are no lon/lat range
    assert all("bbox" not in f and f["geometry"]["type"] == "Point" for f in geo["features"])
    captured = capsys.readouterr()
    note = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert note == [
        f"note: {tmp_path / 'scene.png'}: --heatmap cog needs a GeoTIFF/JP2 with a CRS (an image without a "
        "georeference): writing the PNG overlay"
    ]
    assert (tmp_path / "o" / "scene_heatmap.png").exists() and "coordinates: scene pixels" in captured.out
    s = json.loads((tmp_path / "o" / "scene_scan.json").read_text())
    assert s["coordinates"] == "pixel" and s["crs"] == "pixel" and s["outputs"]["heatmap"] == "scene_heatmap.png"


def test_geotiff_without_a_crs_falls_back_to_pixels_with_a_note(tmp_path, capsys):
    scene = _geotiff(tmp_path / "nocrs.tif", crs=None)
    assert main(["scan", str(FIXTURE), str(scene), "--out", str(tmp_path / "o"), *TINY]) == 0
    err = capsys.readouterr().err
    assert f"note: {scene}: a transform but no CRS: coordinates in scene pixels\n" in err and "Traceback" not in err
    geo = json.loads((tmp_path / "o" / "nocrs_detections.geojson").read_text())
    assert geo["properties"]["coordinates"] == "pixel" and "bbox" not in geo and geo["features"]
    for f in geo["features"]:
        assert f["geometry"]["coordinates"] == [f["properties"]["pixel_x"], f["properties"]["pixel_y"]]
    assert json.loads((tmp_path / "o" / "nocrs_scan.json").read_text())["notes"] == [
        f"{scene}: a transform but no CRS: coordinates in scene pixels"
    ]


def test_crs_without_a_way_to_wgs84_falls_back_to_pixels_and_native_keeps_it(tmp_path, capsys):
    scene = _geotiff(tmp_path / "site.tif", crs=rasterio.crs.CRS.from_wkt(LOCAL_CS))
    assert main(["scan", str(FIXTURE), str(scene), "--out", str(tmp_path / "o"), *TINY]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and f"{scene}: its CRS cannot be transformed to WGS 84" in notes[0]
    assert notes[0].endswith("coordinates in scene pixels") and "Traceback" not in err
    geo = json.loads((tmp_path / "o" / "site_detections.geojson").read_text())
    assert geo["properties"]["coordinates"] == "pixel" and "bbox" not in geo
    # --crs native needs no WGS 84: a GeoPackage and a COG in the site grid
    args = ["scan", str(FIXTURE), str(scene), "--out", str(tmp_path / "n"), "--crs", "native", "--heatmap", "cog"]
    assert main(args + TINY) == 0
    assert "site grid" in pyogrio.read_info(tmp_path / "n" / "site_detections.gpkg")["crs"]
    with rasterio.open(tmp_path / "n" / "site_heatmap.tif") as ds:
        assert "site grid" in ds.crs.to_wkt() and ds.transform.a == pytest.approx(GSD * 8)


@pytest.mark.parametrize("name", ["nocrs.tif", "scene.png"])
def test_crs_native_without_a_crs_is_a_one_line_error_and_writes_nothing(tmp_path, capsys, name):
    scene = tmp_path / name
    if name.endswith(".tif"):
        _geotiff(scene, crs=None)
    else:
        Image.fromarray(_image()).save(scene)
    out = tmp_path / "o"
    assert main(["scan", str(FIXTURE), str(scene), "--out", str(out), "--crs", "native", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{scene}: --crs native needs a GeoTIFF/JP2 with a CRS" in err
    assert "Traceback" not in err and not (out.exists() and any(out.iterdir()))


def test_without_pyproj_a_georeferenced_scene_falls_back_to_pixels_with_a_note(tmp_path, monkeypatch):
    import sys

    from shipcam.runtime.geojson import output_coordinates, read_georeference

    scene = _geotiff(tmp_path / "scene.tif")
    monkeypatch.setitem(sys.modules, "pyproj", None)  # as if not installed: `import pyproj` raises ImportError
    coords, note = output_coordinates(scene, read_georeference(scene))
    assert coords.kind == "pixel" and note == (
        f"{scene}: reprojecting to WGS 84 needs pyproj (pip install pyproj), which is not installed: "
        "coordinates in scene pixels"
    )


def test_scan_archive_passes_the_output_choices_to_every_scene(tmp_path, monkeypatch):
    """The options reach scan_file's keywords (the Ray run itself: tests/test_archive.py)."""
    import shipcam.runtime.archive as archive

    seen = {}

    def fake(model, inputs, out, address=None, workers=None, options=None):
        seen.update(options)
        summary = {"scenes": 0, "scanned": 0, "skipped_done": 0, "failed": [], "scenes_per_second": None}
        return {**summary, "detections": 0, "parquet": str(tmp_path / "detections.parquet")}

    monkeypatch.setattr(archive, "scan_archive", fake)
    args = ["scan-archive", str(FIXTURE), str(tmp_path), "--crs", "native", "--geometry", "box", "--heatmap", "cog"]
    assert main(args) == 0
    assert {k: seen[k] for k in ("crs", "geometry", "heatmap")} == {
        "crs": "native",
        "geometry": "box",
        "heatmap": "cog",
    }
