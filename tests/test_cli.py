import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.cli import build_parser, main

COMMANDS = [
    "demo",
    "generate",
    "train",
    "lr-find",
    "check",
    "export",
    "verify",
    "predict",
    "scan",
    "scan-archive",
    "bench",
    "eval",
    "eval-scenes",
    "calibrate",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: shipcam " + command in capsys.readouterr().out


def test_train_help_groups_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for group in ("model:", "data:", "schedule:", "system:"):
        assert group in out


def test_export_options_default_to_the_librarys_and_every_tolerance_is_an_option():
    from dataclasses import fields

    from shipcam.export import ExportOptions, Tolerances

    args = build_parser().parse_args(["export", "m.keras", "--out", "o", "--min-cam-corr-min", "0.5"])
    tol, options = Tolerances(), ExportOptions()
    for f in fields(Tolerances):
        assert getattr(args, f.name) == (0.5 if f.name == "min_cam_corr_min" else getattr(tol, f.name)), f.name
    assert (args.calib, args.parity_n, args.threads) == (options.calib, options.parity_n, options.threads)


def test_generate_writes_a_loadable_dataset(tmp_path, capsys):
    from shipcam.train.data.sources import load_dataset

    assert main(["generate", str(tmp_path / "d"), "-n", "12", "--size", "48", "--ship-fraction", "0.5"]) == 0
    s = load_dataset(tmp_path / "d", show_progress=False)
    assert len(s) == 12 and 0 < s.labels.sum() < 12
    info = json.loads((tmp_path / "d" / "shipcam_dataset.json").read_text())
    assert info["config"]["size"] == 48 and info["n"] == 12


def test_user_errors_are_one_line_not_a_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipcam.cli",
            "train",
            "--data",
            str(tmp_path / "nowhere"),
            "--weights",
            "none",
            "--run-dir",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and "nowhere" in proc.stderr and "not a folder" in proc.stderr


@pytest.mark.parametrize(
    "option, value, name",
    [
        ("--nms-radius-m", "-1", "nms_radius_m"),
        ("--max-length-m", "30", "max_length_m"),
        ("--threshold", "1.5", "threshold"),
    ],
)
def test_a_bad_detection_option_is_one_line_naming_the_value(tmp_path, capsys, option, value, name):
    scene = tmp_path / "scene.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(scene)
    model = str(Path(__file__).parent / "fixtures" / "tiny_fp32.onnx")
    assert main(["scan", model, str(scene), "--out", str(tmp_path / "o"), option, value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and name in err and f"received {float(value)}" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "command, scans", [("scan", True), ("scan-archive", True), ("eval-scenes", True), ("predict", False)]
)
def test_every_rule_field_is_an_option_whose_default_is_the_fields(command, scans):
    """The options come from DetectionRule's fields: one per field (scan-only ones left out of predict), each
    with the field's default in its help, grouped by the field's stage."""
    import argparse
    import dataclasses

    from shipcam.runtime.detections import STAGES, DetectionRule

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    options = {a.dest: a for a in sub._actions if hasattr(a, "field_default")}
    wanted = [f for f in dataclasses.fields(DetectionRule) if scans or not f.metadata["scans_only"]]
    assert sorted(options) == sorted(f.name for f in wanted)
    for f in wanted:
        default = DetectionRule.defaults()[f.name]
        assert options[f.name].field_default == default
        assert "--" + f.name.replace("_", "-") in options[f.name].option_strings
        assert f"(default: {f.metadata['shown'] or default})" in options[f.name].help
    titles = [g.title for g in sub._action_groups if g.title.startswith("detections: ")]
    assert titles == [f"detections: {t}" for s, t in STAGES.items() if any(f.metadata["stage"] == s for f in wanted)]


def test_the_rule_field_names_are_written_out_in_one_python_file_only():
    """No other product module lists the fields: the CLI, the vectors and the JS defaults are built from the
    dataclass. Benchmark scripts are left out: their variant tables set chosen values of named fields, as a
    user's command line does."""
    import dataclasses

    from shipcam.runtime.detections import DetectionRule

    root = Path(__file__).resolve().parents[1]
    # the distinctive ones: nms_radius_m, ...
    names = [f.name for f in dataclasses.fields(DetectionRule) if "_" in f.name]
    files = [
        p
        for p in root.rglob("*.py")
        if not {".venv", "tests", "benchmarks"} & set(p.parts) and p.name != "detections.py"
    ]
    for p in files:
        text = p.read_text()
        listed = [n for n in names if n in text]
        assert len(listed) <= 1, f"{p.relative_to(root)} writes out rule fields {listed}"


def test_weights_none_parses_to_none():
    args = build_parser().parse_args(["train", "--weights", "none"])
    assert args.weights is None


def test_calibrate_saves_the_threshold_that_export_reads(tiny_model_path, tmp_path, capsys):
    import shutil

    from shipcam.train.engine import KerasEngine

    model = tmp_path / "m.keras"
    shutil.copy(tiny_model_path, model)
    assert KerasEngine(model).metadata.threshold == 0.5
    assert main(["calibrate", str(model), "--scenes", "2", "--target-fa", "0.5"]) == 0
    printed = float(capsys.readouterr().out.split("threshold ")[1].split()[0])
    saved = KerasEngine(model).metadata.threshold
    assert saved >= 0.5 and saved == pytest.approx(printed, abs=5e-5)


def test_train_option_conflicts_are_one_line(capsys):
    assert main(["train", "--weights", "none", "--select", "real-f1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--real-val" in err
