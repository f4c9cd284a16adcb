"""Scenes read window by window: the same detections as in memory, resampled windows as the whole-scene resample, clear
refusals.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.cli import main
from shipcam.runtime import Detector
from shipcam.runtime.resize import resize_antialiased
from shipcam.train.data.synthetic import SceneConfig, generate_scene

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402  (rasterio.transform.from_origin warns under affine 3)

from shipcam.runtime.scene import ResampledScene, open_raster  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_fp32.onnx"


def _scene(rows=3, cols=4, size=96):
    cfg = SceneConfig(size=size, ship_fraction=1.0)
    return np.concatenate(
        [
            np.concatenate([generate_scene(cfg, seed=5, index=r * cols + c).image for c in range(cols)], axis=1)
            for r in range(rows)
        ],
        axis=0,
    )


def _geotiff(path, image, gsd=3.0, dtype="uint8"):
    H, W = image.shape[:2]
    data = image if dtype == "uint8" else image.astype(np.uint16) * 16  # 12-bit sensor counts
    profile = dict(
        driver="GTiff",
        width=W,
        height=H,
        count=3,
        dtype=dtype,
        crs="EPSG:32631",
        transform=Affine(gsd, 0, 500000, 0, -gsd, 5000000),
        tiled=True,
        blockxsize=64,
        blockysize=64,
    )
    if dtype == "uint16":
        profile["nbits"] = 12
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.moveaxis(data, -1, 0))
    return path


def test_windows_are_the_pixels_and_16_bit_is_scaled(tmp_path):
    image = _scene(1, 2)
    with open_raster(_geotiff(tmp_path / "a.tif", image)) as scene:
        assert scene.shape == image.shape
        np.testing.assert_array_equal(scene[10:70, 150:190], image[10:70, 150:190])
        np.testing.assert_array_equal(scene[-5:, :], image[-5:, :])  # negative and open slices as numpy's
        with pytest.raises(TypeError, match="two unit-step slices"):
            scene[::2, :]
    with open_raster(_geotiff(tmp_path / "b.tif", image, dtype="uint16")) as scene:  # 12 bits: 0..4095 -> 0..255
        np.testing.assert_allclose(
            scene[0:40, 0:40].astype(float), image[:40, :40].astype(float) * 16 * 255 / 4095, atol=0.51
        )


def test_resampled_windows_match_the_whole_scene_resample(tmp_path):
    image = _scene(1, 2)
    whole = resize_antialiased(image, image.shape[0] * 2, image.shape[1] * 2)
    with open_raster(_geotiff(tmp_path / "a.tif", image)) as scene:
        big = ResampledScene(scene, 2.0)
        assert big.shape[:2] == whole.shape[:2]
        for y0, x0 in [(0, 0), (50, 130), (150, 300)]:
            np.testing.assert_allclose(big[y0 : y0 + 40, x0 : x0 + 60], whole[y0 : y0 + 40, x0 : x0 + 60], atol=1e-3)


@pytest.mark.parametrize("isolation, least", [(False, 3), (True, 1)])
def test_windowed_scan_gives_the_in_memory_detections(tmp_path, isolation, least):
    image = _scene()
    path = _geotiff(tmp_path / "scene.tif", image)
    det = Detector.load(FIXTURE)
    det.rule = dataclasses.replace(det.rule, threshold=0.05, isolation=isolation)
    in_memory = det.scan(image, tile=64)
    with open_raster(path) as scene:
        windowed = det.scan(scene, tile=64)
    assert len(in_memory.detections) >= least
    assert windowed.detections == in_memory.detections
    np.testing.assert_array_equal(windowed.heatmap, in_memory.heatmap)


def test_scan_command_reads_geotiffs_by_window_and_writes_map_coordinates(tmp_path):
    pyproj = pytest.importorskip("pyproj")
    image = _scene()
    _geotiff(tmp_path / "scene.tif", image)
    Image.fromarray(image).save(tmp_path / "scene.png")
    common = ["--tile", "64", "--threshold", "0.05", "--no-isolation", "--gsd", "3"]
    assert main(["scan", str(FIXTURE), str(tmp_path / "scene.tif"), "--out", str(tmp_path / "t"), *common]) == 0
    assert main(["scan", str(FIXTURE), str(tmp_path / "scene.png"), "--out", str(tmp_path / "p"), *common]) == 0
    tif = json.loads((tmp_path / "t" / "scene_detections.geojson").read_text())
    png = json.loads((tmp_path / "p" / "scene_detections.geojson").read_text())
    assert tif["properties"]["coordinates"] == "wgs84" and tif["properties"]["scene_crs"] == "EPSG:32631"
    assert png["properties"]["coordinates"] == "pixel" and len(tif["features"]) == len(png["features"]) > 0
    to_lonlat = pyproj.Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    for f, g in zip(tif["features"], png["features"]):
        (px, py), (lon, lat) = g["geometry"]["coordinates"], f["geometry"]["coordinates"]
        # the affine transform by hand, then UTM 31N to longitude/latitude
        assert (lon, lat) == pytest.approx(to_lonlat.transform(500000 + 3 * px, 5000000 - 3 * py), abs=1e-7)
    assert Image.open(tmp_path / "t" / "scene_heatmap.png").size == (384, 288)


def test_png_over_the_memory_limit_is_refused_before_decoding(tmp_path, capsys):
    Image.fromarray(_scene(1, 1)).save(tmp_path / "scene.png")
    assert (
        main(
            ["scan", str(FIXTURE), str(tmp_path / "scene.png"), "--out", str(tmp_path / "o"), "--max-memory-mb", "0.01"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "scene.png: a scan needs about" in err and "over --max-memory-mb 0.01" in err and "GeoTIFF" in err
    assert "Traceback" not in err
