"""The main job end to end on a tiny setting, and its report rendered in a real headless browser."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shipcam.benchmarks.browser import HEADLESS_FLAGS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_quick_demo_writes_a_report_that_renders(tmp_path):
    from shipcam.cli.demo import run_demo

    out = tmp_path / "demo"
    result = run_demo(out, quick=True)
    report = Path(result["report"])
    assert report.is_file()
    for f in (
        "train/metrics.json",
        "export/manifest.json",
        "bench/bench.json",
        "lr_find/lr_finder.png",
        "train/curves.png",
        "samples.png",
    ):
        assert (out / f).exists(), f
    assert len(json.loads((out / "export/manifest.json").read_text())["files"]) == 5
    stamp = (out / "train/metrics.json").stat().st_mtime
    run_demo(out, quick=True)  # a rerun reuses every finished step
    assert (out / "train/metrics.json").stat().st_mtime == stamp

    if CHROMIUM is None:
        pytest.skip("no Chromium here: report checked for files only (apt-get install chromium)")
    args = [CHROMIUM, *HEADLESS_FLAGS, f"--user-data-dir={tmp_path / 'chrome'}"]
    dom = subprocess.run([*args, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert 'data-images-ok="true"' in dom, "an image in report.html did not decode in the browser"
    assert int(dom.split('data-images="')[1].split('"')[0]) >= 10
    shot = tmp_path / "report.png"
    subprocess.run(
        [*args, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120
    )
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (2400, 1280) and pixels.std() > 20  # not a blank page


def test_demo_recipe_transfers_from_imagenet_when_it_has_weights(tmp_path):
    from shipcam.train.backbones import BUNDLED_WEIGHTS
    from shipcam.train.recipes import AUTO, GSD_RANGE, demo_recipe

    with_weights = demo_recipe(str(tmp_path / "w.h5"))
    assert (
        with_weights["backbone"],
        with_weights["alpha"],
        with_weights["size"],
        with_weights["gsd_range"],
        with_weights["finetune_layers"],
    ) == ("mobilenet_v2_s16", 1.0, 224, GSD_RANGE, 30)
    assert "scenes" not in with_weights  # no real scenes given: synthetic only
    scratch = demo_recipe(None)
    assert (scratch["alpha"], scratch["size"], scratch["weights"]) == (
        0.35,
        96,
        None,
    ) and "gsd_range" not in scratch  # the generator's 3 m/px
    # the repository carries them
    assert demo_recipe(AUTO)["weights"] == str(BUNDLED_WEIGHTS) and BUNDLED_WEIGHTS.is_file()
    assert demo_recipe(AUTO, quick=True)["weights"] is None  # the test suite's tiny demo stays from scratch


def test_demo_recipe_trains_on_labelled_scenes_when_given(tmp_path):
    from shipcam.train.recipes import AUTO, demo_recipe

    r = demo_recipe(AUTO, scenes=tmp_path, labels=tmp_path / "labels.csv")
    assert r["scenes"] == [str(tmp_path)] and r["real_labels"] == str(tmp_path / "labels.csv")
    assert r["real_ratio"] == 0.5 and r["mining_rounds"] == 1
    # the real chips are half the training images: without them, twice the synthetic scenes keep the count
    assert demo_recipe(AUTO)["synthetic_n"] == r["synthetic_n"] / (1 - r["real_ratio"])


def test_the_bundled_weights_are_the_imagenet_file_their_readme_names():
    import hashlib

    from shipcam.train.backbones import BUNDLED_WEIGHTS

    digest = hashlib.sha256(BUNDLED_WEIGHTS.read_bytes()).hexdigest()
    assert digest in (BUNDLED_WEIGHTS.parent / "README.md").read_text()
