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
    assert main(["predict", str(FIXTURE), str(tmp_path), "--overlay", "--out", str(tmp_path / "out")]) == 0
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
    assert main(["scan", str(FIXTURE), str(tmp_path / "scene.png"), "--tile", "64", "--out", str(tmp_path / "o")]) == 0
    geo = json.loads((tmp_path / "o" / "scene_boxes.geojson").read_text())
    assert geo["type"] == "FeatureCollection" and geo["crs"]["properties"]["name"] == "pixel"
    for f in geo["features"]:
        xs = [p[0] for p in f["geometry"]["coordinates"][0]]
        ys = [p[1] for p in f["geometry"]["coordinates"][0]]
        assert 0 <= min(xs) and max(xs) <= 384 and 0 <= min(ys) and max(ys) <= 90
    assert Image.open(tmp_path / "o" / "scene_heatmap.png").size == (384, 90)
    info = json.loads((tmp_path / "o" / "scene_scan.json").read_text())
    assert info["tiles"] >= 6 and info["peak_rss_mb"] > 0


def test_missing_inputs_are_named(tmp_path, capsys):
    assert main(["predict", str(FIXTURE), str(tmp_path / "nothing_here")]) == 2
    assert "nothing_here" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(FIXTURE), str(tmp_path / "empty")]) == 2
    assert "no images" in capsys.readouterr().err
