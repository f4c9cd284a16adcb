"""The main job end to end on a tiny setting, and its report rendered in a real headless browser."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@pytest.mark.slow
def test_quick_demo_writes_a_report_that_renders(tmp_path):
    from shipcam.cli.demo import run_demo

    out = tmp_path / "demo"
    result = run_demo(out, quick=True)
    report = Path(result["report"])
    assert report.is_file()
    for f in ("train/metrics.json", "export/manifest.json", "bench/bench.json", "lr_find/lr_finder.png", "train/curves.png", "samples.png"):
        assert (out / f).exists(), f
    assert len(json.loads((out / "export/manifest.json").read_text())["files"]) == 5
    stamp = (out / "train/metrics.json").stat().st_mtime
    run_demo(out, quick=True)  # a rerun reuses every finished step
    assert (out / "train/metrics.json").stat().st_mtime == stamp

    if CHROMIUM is None:
        pytest.skip("no Chromium here: report checked for files only (apt-get install chromium)")
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chrome'}"]
    dom = subprocess.run([*args, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert 'data-images-ok="true"' in dom, "an image in report.html did not decode in the browser"
    assert int(dom.split('data-images="')[1].split('"')[0]) >= 10
    shot = tmp_path / "report.png"
    subprocess.run([*args, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120)
    from PIL import Image
    import numpy as np

    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (2400, 1280) and pixels.std() > 20  # not a blank page


def test_demo_recipe_transfers_from_imagenet_when_it_has_weights(tmp_path):
    from shipcam.cli.demo import AUTO, SHARED_WEIGHTS, demo_recipe

    with_weights = demo_recipe(str(tmp_path / "w.h5"))
    assert (with_weights["alpha"], with_weights["size"], with_weights["gsd"], with_weights["finetune_layers"]) == (1.0, 224, 1.5, 30)
    scratch = demo_recipe(None)
    assert (scratch["alpha"], scratch["size"], scratch["weights"]) == (0.35, 96, None) and "gsd" not in scratch  # the generator's 3 m/px
    assert demo_recipe(AUTO)["weights"] == (str(SHARED_WEIGHTS) if SHARED_WEIGHTS.is_file() else None)
    assert demo_recipe(AUTO, quick=True)["weights"] is None  # the test suite's tiny demo stays from scratch
