"""``shipcam scan-archive``: inputs, a local Ray with 2 CPUs (in a child process with a timeout: never hangs), resume, failures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.cli import main
from shipcam.cli.archive import collect_scenes, scene_keys
from shipcam.errors import ShipcamError
from shipcam.train.data.synthetic import SceneConfig, generate_scene

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_fp32.onnx"
RULE = ["--threshold", "0.05", "--no-isolation", "--tile", "64"]


def _scenes(folder: Path, n=3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = SceneConfig(size=96, ship_fraction=1.0)
    paths = []
    for j in range(n):
        p = folder / f"s{j}.png"
        Image.fromarray(np.concatenate([generate_scene(cfg, seed=20 + j, index=i).image for i in range(3)], axis=1)).save(p)
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


def _archive(args, timeout=240):
    env = {**os.environ, "RAY_DISABLE_USAGE_STATS": "1"}
    return subprocess.run([sys.executable, "-m", "shipcam.cli", "scan-archive", *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_archive_on_local_ray_matches_scan_resumes_and_records_failures(tmp_path):
    pytest.importorskip("ray")
    scenes = _scenes(tmp_path / "in")
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    first = _archive([str(FIXTURE), str(tmp_path / "in"), "--out", str(out), "--workers", "2", *RULE])
    assert first.returncode == 1, first.stderr[-2000:]  # one scene could not be read: non-zero, after the rest
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scanned"] == 3 and summary["workers"] == 2 and summary["cpus_per_worker"] < 1
    assert [f["scene"] for f in summary["failed"]] == [str(tmp_path / "in" / "broken.png")] and "cannot decode" in summary["failed"][0]["error"]
    total = 0
    for p in scenes:  # identical to `shipcam scan` on each scene
        assert main(["scan", str(FIXTURE), str(p), "--out", str(tmp_path / "single"), *RULE]) == 0
        ours = json.loads((out / "scenes" / p.stem / f"{p.stem}_detections.geojson").read_text())
        assert ours == json.loads((tmp_path / "single" / f"{p.stem}_detections.geojson").read_text())
        total += len(ours["features"])
    import pyarrow.parquet as pq

    table = pq.read_table(out / "detections.parquet")
    assert table.num_rows == total == summary["detections"] > 0
    assert sorted(set(table.column("key").to_pylist())) == ["s0", "s1", "s2"]
    # Interrupted or not, a rerun scans only what is not done: here just the broken scene, again.
    again = _archive([str(FIXTURE), str(tmp_path / "in"), "--out", str(out), *RULE])
    summary = json.loads((out / "summary.json").read_text())
    assert again.returncode == 1 and summary["skipped_done"] == 3 and summary["scanned"] == 0 and len(summary["failed"]) == 1
    # An address where no Ray head listens: one line, at once.
    bad = _archive([str(FIXTURE), str(scenes[0]), "--out", str(tmp_path / "o2"), "--address", "127.0.0.1:9"], timeout=60)
    assert bad.returncode == 2 and "--address 127.0.0.1:9: no Ray head answers there" in bad.stderr and "Traceback" not in bad.stderr
