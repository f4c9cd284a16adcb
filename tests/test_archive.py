"""``shipcam scan-archive``: inputs, a local Ray with 2 CPUs (in a child process with a timeout: never hangs), resume,
failures.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.cli import main
from shipcam.errors import ShipcamError
from shipcam.runtime.archive import collect_scenes, scene_keys
from shipcam.train.data.synthetic import SceneConfig, generate_scene

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_fp32.onnx"
RULE = ["--threshold", "0.05", "--no-isolation", "--tile", "64"]


def _scenes(folder: Path, n=3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = SceneConfig(size=96, ship_fraction=1.0)
    paths = []
    for j in range(n):
        p = folder / f"s{j}.png"
        Image.fromarray(
            np.concatenate([generate_scene(cfg, seed=20 + j, index=i).image for i in range(3)], axis=1)
        ).save(p)
        paths.append(p)
    return paths


def test_inputs_from_folders_globs_and_lists(tmp_path):
    a = _scenes(tmp_path / "a", 2)
    b = _scenes(tmp_path / "b", 1)
    (tmp_path / "list.txt").write_text("# scenes\nb/s0.png\n\na/s1.png\n")
    got = collect_scenes([str(tmp_path / "a"), str(tmp_path / "list.txt"), str(tmp_path / "*" / "s0.png")])
    assert [p.resolve() for p in got] == [a[0].resolve(), a[1].resolve(), b[0].resolve()]  # in order, each once
    keys = scene_keys([a[0], b[0], a[1]])
    assert keys[2] == "s1" and keys[0] != keys[1] and keys[0].startswith("s0-")  # same stem, two folders
    with pytest.raises(ShipcamError, match="nope: no such file, folder or pattern"):
        collect_scenes([str(tmp_path / "nope")])
    with pytest.raises(ShipcamError, match="matches no scene"):
        collect_scenes([str(tmp_path / "*.jp2")])


def test_fsspec_urls_name_files_folders_and_globs(tmp_path):
    pytest.importorskip("fsspec")
    a = _scenes(tmp_path / "a", 2)
    folder = (tmp_path / "a").as_uri()  # file:///... through fsspec's LocalFileSystem, as s3:// would go through s3fs
    got = collect_scenes([folder, folder + "/s*.png", a[0].as_uri()])
    assert got == [a[0].as_uri(), a[1].as_uri()]  # URLs stay text (a Path would fold "//"), each once
    assert scene_keys(got) == ["s0", "s1"]
    with pytest.raises(ShipcamError, match="no such file, folder or pattern"):
        collect_scenes([folder + "/nope.png"])
    with pytest.raises(ShipcamError, match="nosuchprotocol://x"):
        collect_scenes(["nosuchprotocol://x/y.png"])


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _archive(args, timeout=240):
    env = {**os.environ, "RAY_DISABLE_USAGE_STATS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "shipcam.cli", "scan-archive", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _web_mercator_geotiff(path: Path, image: np.ndarray, x0: float, y0: float, gsd: float = 3.0) -> None:
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    H, W = image.shape[:2]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=W,
        height=H,
        count=3,
        dtype="uint8",
        crs="EPSG:3857",
        transform=Affine(gsd, 0, x0, 0, -gsd, y0),
    ) as ds:
        ds.write(np.moveaxis(image, 2, 0))


def _lon_lat_web_mercator(x: float, y: float) -> tuple[float, float]:
    """EPSG:3857 to degrees, the closed form (spherical Mercator, R = 6378137 m)."""
    r = 6378137.0
    return np.degrees(x / r), np.degrees(2 * np.arctan(np.exp(y / r)) - np.pi / 2)


def test_archive_on_local_ray_matches_scan_resumes_and_records_failures(tmp_path):
    pytest.importorskip("ray")
    scenes = _scenes(tmp_path / "in")
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    remote = _scenes(tmp_path / "remote", 1)[0].rename(tmp_path / "remote" / "far.png")  # read through fsspec
    inputs = [str(tmp_path / "in"), remote.as_uri()]
    geo = None
    if _has("rasterio") and _has("fsspec"):
        geo = tmp_path / "in" / "merc.tif"
        _web_mercator_geotiff(geo, np.asarray(Image.open(scenes[0]).convert("RGB")), 1_000_000.0, 6_000_000.0)
        scenes.append(geo)
    out = tmp_path / "out"
    first = _archive([str(FIXTURE), *inputs, "--out", str(out), "--workers", "2", *RULE])
    assert first.returncode == 1, first.stderr[-2000:]  # one scene could not be read: non-zero, after the rest
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scanned"] == len(scenes) + 1 and summary["workers"] == 2 and summary["cpus_per_worker"] < 1
    assert [f["scene"] for f in summary["failed"]] == [
        str(tmp_path / "in" / "broken.png")
    ] and "cannot decode" in summary["failed"][0]["error"]
    total = 0
    for p in [*scenes, remote]:  # identical to `shipcam scan` on each scene, the URL's too
        assert main(["scan", str(FIXTURE), str(p), "--out", str(tmp_path / "single"), *RULE]) == 0
        ours = json.loads((out / "scenes" / p.stem / f"{p.stem}_detections.geojson").read_text())
        assert ours == json.loads((tmp_path / "single" / f"{p.stem}_detections.geojson").read_text())
        total += len(ours["features"])
    import pyarrow.parquet as pq

    table = pq.read_table(out / "detections.parquet")
    assert table.num_rows == total == summary["detections"] > 0
    assert sorted(set(table.column("key").to_pylist())) == sorted(p.stem for p in [*scenes, remote])
    assert summary["geoparquet"] == _has("geopandas")
    if summary["geoparquet"]:  # GeoParquet: points in OGC:CRS84, null where a scene has no CRS
        gpd = pytest.importorskip("geopandas")
        frame = gpd.read_parquet(out / "detections.parquet")
        assert (
            frame.crs.to_string() == "OGC:CRS84"
            and json.loads(pq.read_schema(out / "detections.parquet").metadata[b"geo"])["primary_column"] == "geometry"
        )
        merc = frame[frame["key"] == "merc"]
        assert len(merc) > 0 and frame[frame["key"] != "merc"].geometry.isna().all()
        for (_, row), point in zip(merc.iterrows(), merc.geometry):
            lon, lat = _lon_lat_web_mercator(1_000_000.0 + 3.0 * row["x"], 6_000_000.0 - 3.0 * row["y"])
            assert (point.x, point.y) == pytest.approx((lon, lat), abs=1e-7)
    # Interrupted or not, a rerun scans only what is not done: here just the broken scene, again.
    again = _archive([str(FIXTURE), *inputs, "--out", str(out), *RULE])
    summary = json.loads((out / "summary.json").read_text())
    assert (
        again.returncode == 1
        and summary["skipped_done"] == len(scenes) + 1
        and summary["scanned"] == 0
        and len(summary["failed"]) == 1
    )
    # An address where no Ray head listens: one line, at once.
    bad = _archive(
        [str(FIXTURE), str(scenes[0]), "--out", str(tmp_path / "o2"), "--address", "127.0.0.1:9"], timeout=60
    )
    assert (
        bad.returncode == 2
        and "--address 127.0.0.1:9: no Ray head answers there" in bad.stderr
        and "Traceback" not in bad.stderr
    )
