"""bench and eval on tiny settings: the table's rows and columns, and metrics against hand-computed cases."""

import json
from pathlib import Path

import numpy as np
import pytest

from shipcam.benchmarks.bench import BenchConfig, run_bench
from shipcam.evaluation.evaluate import localisation_scores, mask_boxes


def test_bench_produces_every_row_and_column(exported, tiny_model_path, tmp_path):
    out, manifest = exported
    cfg = BenchConfig(
        model=str(tiny_model_path), export_dir=str(out), sizes=[64], threads=[1], warmup=1, runs=3, quality_n=8, batch=2
    )
    result = run_bench(cfg, tmp_path, show_progress=False)
    rows = {r["row"]: r for r in result["rows"]}
    expected = {"keras_predict", "keras_function+cam", "keras_gradcam"} | {e["file"] for e in manifest["files"]}
    assert set(rows) == expected
    for name, r in rows.items():
        for col in (
            "threads",
            "input",
            "median_ms",
            "p90_ms",
            "e2e_median_ms",
            "ips_b1",
            "speedup_vs_keras_predict",
            "auc",
        ):
            assert col in r, (name, col)
        assert r["threads"] == 1 and r["input"] == 64 and r["median_ms"] > 0
    for e in manifest["files"]:
        r = rows[e["file"]]
        # the file on disk
        assert r["size_mb"] == pytest.approx((out / e["file"]).stat().st_size / 1e6) and r["peak_rss_mb"] > 10
    fp32 = rows[next(e["file"] for e in manifest["files"] if e["format"] == "onnx_fp32")]
    assert fp32["agreement"] == 1.0 and fp32["cam_corr"] > 0.999  # ONNX fp32 decides as Keras does on every image
    assert fp32["auc"] == pytest.approx(rows["keras_predict"]["auc"], abs=1e-3)
    # the markdown holds one line per row, in order, with the JSON's numbers as printed
    table = [
        line.split("|")[1:-1]
        for line in (tmp_path / "bench.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| row ")
    ]
    saved = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [c[0].strip() for c in table] == [r["row"] for r in saved]
    assert [float(c[4]) for c in table] == [round(r["median_ms"], 2) for r in saved]
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
    from shipcam.evaluation.evaluate import evaluate
    from shipcam.train.data.synthetic import SceneConfig
    from shipcam.train.data.writer import write_synthetic_dataset

    out, _ = exported
    data = write_synthetic_dataset(
        tmp_path / "d", 16, SceneConfig(size=64, ship_fraction=0.5), seed=8, show_progress=False
    )
    r = evaluate(out / "tiny_fp32.onnx", data, tmp_path / "e", worst=2, show_progress=False)
    c, loc = r["classification"], r["localisation"]
    # the confusion counts, recomputed from the dataset's labels and the runtime's own decisions
    from shipcam.runtime import Detector, read_image
    from shipcam.train.data.sources import load_dataset

    det = Detector.load(out / "tiny_fp32.onnx")
    samples = load_dataset(data, show_progress=False)
    truth = samples.labels.astype(bool)
    said = np.array([det.predict(read_image(path)).is_ship for path in samples.paths])
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (
        int((truth & said).sum()),
        int((~truth & said).sum()),
        int((truth & ~said).sum()),
        int((~truth & ~said).sum()),
    )
    assert loc["images_with_ships"] == int(truth.sum())
    assert loc["box_recall@0.5"] <= loc["box_recall@0.3"] and loc["maxboxacc@0.5"] >= loc["box_recall@0.5"] - 1e-9
    assert json.loads((tmp_path / "e" / "eval.json").read_text())["classification"]["n"] == 16


def test_ab_interleaves_every_file_and_writes_json(tmp_path):
    from shipcam.benchmarks.ab import main

    fixtures = Path(__file__).parent / "fixtures"
    files = [str(fixtures / "tiny_fp32.onnx"), str(fixtures / "tiny_int8.tflite")]
    assert main([*files, "--size", "64", "--runs", "5", "--out", str(tmp_path / "ab.json")]) == 0
    rows = json.loads((tmp_path / "ab.json").read_text())["rows"]
    assert [r["file"] for r in rows] == files and [r["engine"] for r in rows] == ["OnnxEngine", "LiteRTEngine"]
    assert all(r["threads"] == 1 and r["input"] == 64 and r["median_ms"] > 0 for r in rows)


def test_ab_takes_turns_and_its_statistics_have_closed_forms(monkeypatch):
    """Engines on a fake clock: A costs 1, 2, ..., 10 ms in turn, B 2.75 ms. Calls alternate A B A B
    (warm-up included); A's median is 5.5 and p90 9.1 (linear interpolation), and B runs 2x A."""
    from shipcam.benchmarks import ab
    from shipcam.runtime import engines

    clock, calls = [0.0], []

    class Fake:
        def __init__(self, name, costs):
            self.name, self.costs, self.n = name, costs, 0

        def run(self, x):
            calls.append(self.name)
            clock[0] += self.costs[self.n % len(self.costs)] / 1e3
            self.n += 1

    fakes = {"a": Fake("a", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), "b": Fake("b", [2.75])}
    monkeypatch.setattr(engines, "open_engine", lambda path, threads: fakes[str(path)])
    monkeypatch.setattr(ab, "time", type("FakeTime", (), {"perf_counter": staticmethod(lambda: clock[0])}))
    rows = ab.interleaved_latency(["a", "b"], size=8, threads=1, runs=10, warmup=2)
    assert calls == ["a", "b"] * 12
    assert rows[0]["median_ms"] == pytest.approx(5.5) and rows[0]["p90_ms"] == pytest.approx(9.1)
    assert rows[1]["median_ms"] == pytest.approx(2.75) and rows[1]["speedup_vs_first"] == pytest.approx(2.0)
    assert rows[0]["engine"] == "Fake"


def test_time_calls_times_only_the_runs(monkeypatch):
    from shipcam._utils import timing as clockwork
    from shipcam.benchmarks import timing

    clock, n = [0.0], [0]

    def call():  # the k-th call takes k ms
        n[0] += 1
        clock[0] += n[0] / 1e3

    monkeypatch.setattr(clockwork, "time", type("FakeTime", (), {"perf_counter": staticmethod(lambda: clock[0])}))
    assert timing.time_calls(call, warmup=3, runs=4) == pytest.approx([4, 5, 6, 7])


def test_interleaved_timing_gives_each_function_its_own_calls(monkeypatch):
    """Calls take turns (a b a b ...): a takes 1 ms, b 3 ms, and a slow spell lands on both alike."""
    from shipcam._utils import timing as clockwork

    clock, spell = [0.0], {3: 10.0}  # the 4th round is 10 ms slower for everyone
    rounds = [0]

    def make(ms, last):
        def call():
            clock[0] += (ms + spell.get(rounds[0], 0.0)) / 1e3
            rounds[0] += last

        return call

    monkeypatch.setattr(clockwork, "time", type("FakeTime", (), {"perf_counter": staticmethod(lambda: clock[0])}))
    ms = clockwork.time_interleaved([make(1.0, 0), make(3.0, 1)], warmup=1, runs=4)
    assert ms.shape == (2, 4)
    assert ms[0] == pytest.approx([1, 1, 11, 1]) and ms[1] == pytest.approx([3, 3, 13, 3])


def test_robustness_perturbations_move_labels_with_the_pixels():
    """rot90 and a GSD change carry each label onto the pixel it marked; a blurred impulse has variance sigma^2."""
    from shipcam.benchmarks.robustness import PERTURBATIONS, gaussian_blur, perturb
    from shipcam.runtime.labels import SceneLabel
    from shipcam.runtime.scoring import LabelledScene

    img = np.zeros((60, 90, 3), np.uint8)
    img[20:24, 70:74] = 255  # a bright 4 px square centred on pixel (71.5, 21.5)
    scene = LabelledScene(Path("s.png"), img, [SceneLabel(71.5, 21.5, 12.0, "ship")], 3.0)
    for name in PERTURBATIONS:
        out = perturb(scene, name)
        lab = out.labels[0]
        assert out.image.dtype == np.uint8 and out.image.ndim == 3, name
        if name.startswith("cumulus"):  # clouds move nothing: a fifth of the scene whitened, a tenth opaque
            assert out.labels == scene.labels and out.image.shape == img.shape
            assert (
                np.mean(out.image.min(axis=2) > 0) == pytest.approx(0.2, abs=0.03)
                and np.mean(out.image.min(axis=2) == 255) > 0.05
            )
            continue
        ys, xs = np.nonzero(out.image.mean(axis=2) > 100)
        assert abs(xs.mean() - lab.x) < 0.25 and abs(ys.mean() - lab.y) < 0.25, (name, xs.mean(), ys.mean(), lab)
        assert lab.length_m == 12.0
    # 3 / 2.5 = 1.2x
    assert perturb(scene, "GSD 2.5 m").gsd == 2.5 and perturb(scene, "GSD 2.5 m").image.shape[:2] == (
        72,
        108,
    )
    assert perturb(scene, "rot90").image.shape[:2] == (90, 60)
    with pytest.raises(ValueError, match="'tilt'"):
        perturb(scene, "tilt")

    impulse = np.zeros((41, 41), np.float32)
    impulse[20, 20] = 1.0
    b = gaussian_blur(impulse, 2.0)
    yy, xx = np.mgrid[:41, :41] - 20
    assert b.sum() == pytest.approx(1.0, abs=1e-5)
    assert (b * xx**2).sum() == pytest.approx(4.0, rel=0.02) and (b * yy**2).sum() == pytest.approx(4.0, rel=0.02)


def test_scan_time_scaling_gives_every_process_count_the_same_detections(tmp_path, capsys):
    """The same scans spread over 1 and 2 worker processes find the same detections as one in-process scan."""
    import dataclasses

    from PIL import Image

    from shipcam.benchmarks.scan_time import main
    from shipcam.runtime import Detector, read_image
    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    model = str(Path(__file__).parent / "fixtures" / "tiny_fp32.onnx")
    paths = []
    for i in range(2):
        paths.append(str(tmp_path / f"s{i}.png"))
        # ships 60 m inside the edges
        Image.fromarray(generate_scene(SceneConfig(size=192, ship_fraction=1.0), seed=4, index=i).image).save(paths[-1])
    assert main([model, *paths, "--processes", "1,2", "--jobs", "4", "--threshold", "0.3"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = report["scaling"]
    assert [r["processes"] for r in rows] == [1, 2] and all(r["jobs"] == 4 and r["scenes_per_s"] > 0 for r in rows)
    det = Detector.load(model, threads=1)
    det.rule = dataclasses.replace(det.rule, threshold=0.3)  # the barely-trained model's CAM stays below logit 0
    expected = 2 * sum(len(det.scan(read_image(p)).detections) for p in paths)  # each scene twice in 4 jobs
    assert expected > 0 and [r["detections"] for r in rows] == [expected, expected]


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        (
            "--views",
            "none,flip,none/rot4",
            {
                "views none": ({"views": "none", "confirm_views": "none"}, {}),
                "views flip": ({"views": "flip", "confirm_views": "none"}, {}),
                "views none/rot4": ({"views": "none", "confirm_views": "rot4"}, {}),
            },
        ),
        (
            "--rules",
            "isolation=false;confirm_views=none,isolation=true",
            {
                "isolation=false;confirm_views=none": ({"isolation": False, "confirm_views": "none"}, {}),
                "isolation=true": ({"isolation": True}, {}),
            },
        ),
        (
            "--tilings",
            "64:0.25,96:0.125",
            {
                "tile 64:0.25": ({}, {"tile": 64, "overlap": 0.25}),
                "tile 96:0.125": ({}, {"tile": 96, "overlap": 0.125}),
            },
        ),
    ],
)
def test_scan_time_alternates_variants_and_reports_each_ones_detections(tmp_path, capsys, flag, value, expected):
    import dataclasses

    from PIL import Image

    from shipcam.benchmarks.scan_time import main
    from shipcam.runtime import Detector, read_image
    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    model = str(Path(__file__).parent / "fixtures" / "tiny_fp32.onnx")
    path = tmp_path / "scene.png"
    Image.fromarray(generate_scene(SceneConfig(size=192, ship_fraction=1.0), seed=3, index=0).image).save(path)
    assert main([model, str(path), "--tile", "64", "--repeats", "1", "--threshold", "0.05", flag, value]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scenes"]
    assert [r["variant"] for r in rows] == list(expected)
    det = Detector.load(model)
    for r, (rule, scan_kw) in zip(rows, expected.values()):
        det.rule = dataclasses.replace(det.rule, threshold=0.05, **rule)
        res = det.scan(read_image(path), **{"tile": 64, **scan_kw})
        assert (r["tiles"], r["detections"]) == (res.tiles, len(res.detections))


def test_bench_names_the_cpus_int8_features_and_each_int8_files_speed_against_its_own_float_file():
    from shipcam.benchmarks.bench import _speedups, int8_features, int8_lines

    x86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\n"
    assert int8_features(x86) == ["AVX-512 VNNI", "AVX-512"] and int8_features(arm) == [
        "ARM dot product",
        "ARM int8 matrix multiply",
    ]
    assert int8_features("flags\t\t: fpu sse2 avx2 fma\n") == []
    rows = [
        {"row": r, "threads": t, "input": 224, "median_ms": ms, "e2e_median_ms": ms + 0.5}
        for r, t, ms in [
            ("best_fp32.onnx", 1, 6.0),
            ("best_int8.onnx", 1, 4.0),
            ("best_fp32.onnx", 2, 3.0),
            ("best_int8.onnx", 2, 4.0),
            ("best_int8.tflite", 1, 2.0),
        ]
    ]
    _speedups(rows)
    # no best_fp32.tflite row: no ratio
    assert [r.get("int8_speedup_vs_fp32") for r in rows] == [
        None,
        1.5,
        None,
        0.75,
        None,
    ]
    assert int8_lines({"rows": rows}) == [
        "best_int8.onnx, 1 thread(s), 224 px: 1.50x its fp32 file (4.00 ms)",
        "best_int8.onnx, 2 thread(s), 224 px: 0.75x its fp32 file (4.00 ms)",
    ]


def test_the_ablation_moves_a_named_constant_for_one_variant_and_puts_it_back():
    from shipcam.benchmarks.ablation import VARIANTS, _constants
    from shipcam.runtime import isolation

    before = isolation.CONTRAST
    with _constants({"isolation.CONTRAST": 3.0}):
        assert isolation.CONTRAST == 3.0
    assert isolation.CONTRAST == before
    with pytest.raises(ValueError, match="no constant 'NOPE'"):
        with _constants({"isolation.NOPE": 1}):
            pass
    assert all("." not in k or k.split(".")[0] in ("isolation", "scan") for v in VARIANTS.values() for k in v)


def test_loso_trains_the_recipe_of_a_demo_with_scenes():
    """Not the scene-less demo's, which draws twice the synthetic scenes to make up for the missing real chips."""
    from shipcam.benchmarks.loso import scenes_recipe
    from shipcam.train.recipes import SYNTHETIC_SCENES

    recipe = scenes_recipe()
    assert recipe["synthetic_n"] == SYNTHETIC_SCENES
    assert recipe["mining_rounds"] >= 1 and recipe["real_ratio"] > 0
    assert "scenes" not in recipe and "real_labels" not in recipe


def test_loso_rule_variants_parse_to_detection_rule_overrides():
    import dataclasses

    from shipcam.benchmarks.loso import parse_rules
    from shipcam.runtime.detections import DetectionRule

    rules = parse_rules(
        "default:; network alone: isolation=false, confirm_views=none ;tight:threshold=0.9,nms_radius_m=100"
    )
    assert rules == {
        "default": {},
        "network alone": {"isolation": False, "confirm_views": "none"},
        "tight": {"threshold": 0.9, "nms_radius_m": 100},
    }
    for overrides in rules.values():  # each is a valid rule
        dataclasses.replace(DetectionRule(), **overrides)
