"""The static web page (js/web/) in headless Chromium: its numbers against the conformance vectors, and a screenshot
that is not blank.

The page computes everything in the browser (onnxruntime-web or LiteRT.js, and js/src);
it writes its result as JSON into <pre id="result">, which the test polls for in real
time over the DevTools protocol (shipcam.benchmarks.browser).
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from shipcam.benchmarks.browser import Page, find_chromium, serve

ROOT = Path(__file__).resolve().parents[1]

VECTORS = json.loads((ROOT / "conformance" / "vectors.json").read_text())


@pytest.fixture(scope="module")
def server():
    if find_chromium() is None:
        pytest.skip(
            "SKIPPED LOUDLY: no Chromium here, the page was not tested in a browser (apt-get install chromium; `make "
            "test` tries)"
        )
    if not (ROOT / "js" / "node_modules" / "onnxruntime-web").is_dir():
        pytest.skip(
            "SKIPPED LOUDLY: js/node_modules is missing (cd js && npm ci --ignore-scripts; `make test` does it first)"
        )
    return f"{serve(ROOT)}/js/web/index.html"


def _result(url, tmp_path):
    with Page(url, tmp_path / "chrome") as page:
        state, got = page.result(timeout_s=180)
        assert state == "done", got
        return got, page.html()


@pytest.mark.parametrize("image", ["ship_64.png", "ship_96x128.png"])
def test_the_page_gives_the_vectors_numbers(server, tmp_path, image):
    case = next(
        c
        for c in VECTORS["cases"]
        if c["model"].endswith("tiny_fp32.onnx") and c["image"].endswith(image) and c["threshold"] == 0.2
    )
    got, dom = _result(f"{server}?image=../../conformance/{case['image']}&threshold=0.2", tmp_path)
    tol = VECTORS["tolerances"]
    assert abs(got["probability"] - case["probability"]) <= tol["probability_abs"] + 1e-6  # the page rounds to 1e-6
    cam = np.asarray(case["cam"])
    assert np.abs(np.asarray(got["cam"]).reshape(cam.shape) - cam).max() <= tol["cam_rel"] * np.ptp(cam)
    assert len(got["boxes"]) == len(case["boxes"])
    for g, e in zip(got["boxes"], case["boxes"]):
        assert all(abs(g[k] - e[k]) <= tol["box_abs_px"] for k in ("x", "y", "x0", "y0", "x1", "y1"))
    assert set(got["timings_ms"]) == {"decode", "preprocess", "inference", "cam", "draw"}
    assert "metadata" not in got and 'id="meta"><tbody><tr><th>alpha</th>' in dom.replace("\n", "")


def test_the_page_screenshot_is_not_blank(server, tmp_path):
    from PIL import Image

    shot = tmp_path / "page.png"
    with Page(f"{server}?threshold=0.2", tmp_path / "chrome", size=(1280, 760)) as page:
        assert page.result(timeout_s=180)[0] == "done"
        page.screenshot(shot)
    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (760, 1280) and pixels.std() > 20
    view = pixels[150:530, 570:1090]  # the CAM overlay's canvas
    assert view.std() > 10


def test_the_page_runs_a_tflite_file_on_litert_js_like_the_python_runtime(server, tmp_path, tiny_model_path):
    """LiteRT.js cannot resize inputs: a 64 px, batch-1 export (`--size 64 --batch 1`) of the session's tiny
    model, run in the page and by the Python runtime (LiteRT) on the same images."""
    if not (ROOT / "js" / "node_modules" / "@litertjs" / "core").is_dir():
        pytest.skip("SKIPPED LOUDLY: @litertjs/core is not installed in js/node_modules (npm ci --ignore-scripts)")
    from shipcam.export import ExportFormat, ExportOptions, export_model
    from shipcam.runtime import Detector, read_image

    site = tmp_path / "site"
    site.mkdir()
    for name in ("js", "conformance"):
        (site / name).symlink_to(ROOT / name)
    export_model(
        tiny_model_path,
        site / "m",
        ExportOptions(formats=[ExportFormat.TFLITE_FP32], size=64, batch=1, parity_n=8),
        show_progress=False,
    )
    model = next((site / "m").glob("*.tflite"))
    base = serve(site)  # the same page, served from a folder that also holds the export
    det = Detector.load(model)
    det.rule = dataclasses.replace(det.rule, threshold=0.2)
    tol = VECTORS["tolerances"]
    for image in ("ship_64.png", "ship_96x128.png"):  # the second is resized to the file's 64 px, as in Python
        got, _ = _result(
            f"{base}/js/web/index.html?model=../../m/{model.name}&image=../../conformance/images/{image}&threshold=0.2",
            tmp_path,
        )
        assert got["engine"] == "litert.js"
        ref = det.predict(read_image(ROOT / "conformance" / "images" / image))
        assert abs(got["probability"] - ref.probability) <= tol["probability_abs"] + 1e-6
        assert np.abs(np.asarray(got["cam"]).reshape(ref.cam.shape) - ref.cam).max() <= tol["cam_rel"] * np.ptp(ref.cam)
        assert len(got["boxes"]) == len(ref.detections)
        for g, e in zip(got["boxes"], ref.detections):
            assert abs(g["x"] - e.x) <= tol["box_abs_px"] and abs(g["y"] - e.y) <= tol["box_abs_px"]
