"""``shipcam predict`` and ``shipcam scan`` on the committed fixture (runtime only, seconds)."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from shipcam.cli import main
from shipcam.train.data.synthetic import SceneConfig, generate_scene

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_fp32.onnx"


def test_predict_writes_jsonl_and_overlays(tmp_path):
    for i in range(3):
        Image.fromarray(generate_scene(SceneConfig(size=64), seed=1, index=i).image).save(tmp_path / f"s{i}.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 no")
    # one unreadable input: the rest is processed, the exit status says not everything was (as gzip and cp do)
    assert main(["predict", str(FIXTURE), str(tmp_path), "--overlay", "--out", str(tmp_path / "out")]) == 1
    lines = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    bad = [r for r in lines if "error" in r]
    assert len(bad) == 1 and "broken.jpg" in bad[0]["error"]
    for r in lines:
        if "error" not in r:
            assert 0 <= r["probability"] <= 1 and set(r["timings_ms"]) == {"preprocess", "inference", "cam"}
            assert Image.open(r["overlay"]).size == (64, 64)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["engine"]["threads"] == 1 and summary["errors"] == 1


def test_scan_writes_heatmap_and_geojson(tmp_path):
    cfg = SceneConfig(size=96, ship_fraction=1.0)
    scene = np.concatenate([generate_scene(cfg, seed=2, index=i).image for i in range(4)], axis=1)[:90]
    Image.fromarray(scene).save(tmp_path / "scene.png")
    args = [
        "scan",
        str(FIXTURE),
        str(tmp_path / "scene.png"),
        "--tile",
        "64",
        "--out",
        str(tmp_path / "o"),
        "--threshold",
        "0.05",
    ]
    assert main(args) == 0
    geo = json.loads((tmp_path / "o" / "scene_detections.geojson").read_text())
    assert geo["type"] == "FeatureCollection" and geo["features"] and "crs" not in geo and "bbox" not in geo
    assert geo["properties"] == {"coordinates": "pixel", "scene": "scene.png", "size": [384, 90], "geometry": "point"}
    for f in geo["features"]:
        point, p = f["geometry"], f["properties"]
        assert point["type"] == "Point" and point["coordinates"] == [p["pixel_x"], p["pixel_y"]]
        assert (
            0 <= p["pixel_x0"] <= point["coordinates"][0] <= p["pixel_x1"] <= 384
            and 0 <= p["pixel_y0"] <= point["coordinates"][1] <= p["pixel_y1"] <= 90
        )
        assert p["probability"] >= 0.05
    assert Image.open(tmp_path / "o" / "scene_heatmap.png").size == (384, 90)
    info = json.loads((tmp_path / "o" / "scene_scan.json").read_text())
    assert info["tiles"] >= 6 and info["peak_rss_mb"] > 0 and info["gsd_source"] == "assumed" and info["gsd"] == 3.0
    assert info["detections"] == len(geo["features"])


def test_predict_refuses_unreadable_and_tiny_images_with_nonzero_exit(tmp_path, capsys):
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert main(["predict", str(FIXTURE), str(tmp_path / "dot.png"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "dot.png" in err and "at least 32x32" in err and "Traceback" not in err
    assert main(["predict", str(FIXTURE), str(tmp_path / "empty.jpg"), "--out", str(tmp_path / "o")]) == 1
    assert "empty.jpg" in capsys.readouterr().err


def test_missing_inputs_are_named(tmp_path, capsys):
    assert main(["predict", str(FIXTURE), str(tmp_path / "nothing_here")]) == 2
    assert "nothing_here" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(FIXTURE), str(tmp_path / "empty")]) == 2
    assert "no images" in capsys.readouterr().err
