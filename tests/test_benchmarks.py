"""bench and eval on tiny settings: the table's rows and columns, and metrics against hand-computed cases."""

import json
from pathlib import Path

import numpy as np
import pytest

from shipcam.benchmarks.bench import BenchConfig, run_bench, to_markdown
from shipcam.benchmarks.evaluate import localisation_scores, mask_boxes


def test_bench_produces_every_row_and_column(exported, tiny_model_path, tmp_path):
    out, manifest = exported
    cfg = BenchConfig(model=str(tiny_model_path), export_dir=str(out), sizes=[64], threads=[1], warmup=1, runs=3, quality_n=8, batch=2)
    result = run_bench(cfg, tmp_path, show_progress=False)
    rows = {r["row"]: r for r in result["rows"]}
    expected = {"keras_predict", "keras_function+cam", "keras_gradcam"} | {e["file"] for e in manifest["files"]}
    assert set(rows) == expected
    for name, r in rows.items():
        for col in ("threads", "input", "median_ms", "p90_ms", "e2e_median_ms", "ips_b1", "speedup_vs_keras_predict", "auc"):
            assert col in r, (name, col)
        assert r["threads"] == 1 and r["input"] == 64 and r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"]
    for e in manifest["files"]:
        r = rows[e["file"]]
        assert r["size_mb"] == pytest.approx(e["size_bytes"] / 1e6) and r["peak_rss_mb"] > 10
        assert 0 <= r["agreement"] <= 1 and -1 <= r["cam_corr"] <= 1
    assert rows["keras_predict"]["speedup_vs_keras_predict"] == pytest.approx(1.0)
    assert rows[next(e["file"] for e in manifest["files"] if e["format"] == "onnx_fp32")]["cam_corr"] > 0.999
    md = (tmp_path / "bench.md").read_text()
    assert md == to_markdown(json.loads((tmp_path / "bench.json").read_text())) and "keras_gradcam" in md
    assert (tmp_path / "bench.png").stat().st_size > 5000
    assert result["machine"]["cores"] >= 1 and "onnxruntime" in result["machine"]["versions"]


def test_mask_boxes_and_one_to_one_matching():
    m1 = np.zeros((10, 10), bool)
    m1[2:4, 3:7] = True
    m2 = np.zeros((10, 10), bool)
    m2[8, 8] = True
    assert mask_boxes([m1, m2]) == [(3, 2, 7, 4), (8, 8, 9, 9)]
    gt = [(0, 0, 10, 10), (20, 20, 30, 30)]
    pred = [(0, 0, 10, 5), (1, 1, 11, 11), (50, 50, 60, 60)]
    # IoU 0.5 for the half box, 81/119 for the shifted one: one ship matched once, never twice
    assert localisation_scores(pred, gt, 0.5) == (1, 1, 3)
    assert localisation_scores(pred, gt, 0.7) == (0, 0, 3)
    assert localisation_scores([], gt, 0.3) == (0, 0, 0)


def test_eval_on_a_dataset_with_masks(exported, tmp_path):
    from shipcam.benchmarks.evaluate import evaluate
    from shipcam.train.data.synthetic import SceneConfig
    from shipcam.train.data.writer import write_synthetic_dataset

    out, _ = exported
    data = write_synthetic_dataset(tmp_path / "d", 16, SceneConfig(size=64, ship_fraction=0.5), seed=8, show_progress=False)
    r = evaluate(out / "tiny_fp32.onnx", data, tmp_path / "e", worst=2, show_progress=False)
    c, loc = r["classification"], r["localisation"]
    assert c["n"] == 16 and c["tp"] + c["fp"] + c["fn"] + c["tn"] == 16
    assert 0 <= loc["pointing_game"] <= 1 and loc["images_with_ships"] == c["tp"] + c["fn"]
    assert loc["box_recall@0.5"] <= loc["box_recall@0.3"] and loc["maxboxacc@0.5"] >= loc["box_recall@0.5"] - 1e-9
    assert json.loads((tmp_path / "e" / "eval.json").read_text())["classification"]["n"] == 16


def test_ab_interleaves_every_file_and_writes_json(tmp_path):
    from shipcam.benchmarks.ab import main

    fixtures = Path(__file__).parent / "fixtures"
    files = [str(fixtures / "tiny_fp32.onnx"), str(fixtures / "tiny_int8.tflite")]
    assert main([*files, "--size", "64", "--runs", "5", "--out", str(tmp_path / "ab.json")]) == 0
    rows = json.loads((tmp_path / "ab.json").read_text())["rows"]
    assert [r["file"] for r in rows] == files and [r["engine"] for r in rows] == ["OnnxEngine", "LiteRTEngine"]
    assert rows[0]["speedup_vs_first"] == pytest.approx(1.0)
    for r in rows:
        assert r["threads"] == 1 and r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"]
        assert r["speedup_vs_first"] == pytest.approx(rows[0]["median_ms"] / r["median_ms"])
