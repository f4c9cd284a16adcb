"""Regenerate docs/report.png and docs/web_page.png from the demo model: ``.venv/bin/python docs/make_pictures.py``.

Needs ``make demo`` (``runs/demo``), Chromium, ``js/node_modules`` (``cd js && npm ci --ignore-scripts``)
and ``../shared/realdata`` beside the checkout:

- ``report.png``: ``runs/demo/report.html`` rendered by headless Chromium, its top 2,400 px;
- ``web_page.png``: the static page of ``js/web/`` in Chromium, running the demo's recommended
  ``.onnx`` file on a 448 px crop of ``scene_1.png`` (anchored ships, 3 m/px). The demo trains on that
  scene when it is present: the picture shows what the page computes and how long each stage takes,
  not how well the model does on unseen scenes (BENCHMARKS.md, "Real scenes").
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CROP = (1600, 800, 448)  # x, y, side in scene_1 pixels: three anchored ships and part of a fourth


def main() -> int:
    from PIL import Image

    from shipcam.benchmarks.browser import HEADLESS_FLAGS, Page, find_chromium, serve

    chromium = find_chromium()
    demo = ROOT / "runs" / "demo"
    scene = ROOT.parent / "shared" / "realdata" / "scene_1.png"
    missing = [str(p) for p in (demo / "report.html", scene, ROOT / "js" / "node_modules") if not p.exists()]
    if chromium is None or missing:
        print(f"make_pictures: needs Chromium and {', '.join(missing) or 'nothing else'}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "report.png"
        args = [
            chromium,
            *HEADLESS_FLAGS,
            f"--user-data-dir={Path(tmp) / 'chrome'}",
            "--window-size=1280,2400",
            f"--screenshot={shot}",
            (demo / "report.html").as_uri(),
        ]
        subprocess.run(args, capture_output=True, timeout=180, check=True)
        Image.open(shot).convert("RGB").save(ROOT / "docs" / "report.png", optimize=True)

    manifest = json.loads((demo / "export" / "manifest.json").read_text())
    onnx = [e["file"] for e in manifest["files"] if e["file"].endswith(".onnx") and e["passed"]]
    model = demo / "export" / (manifest["recommended"] if str(manifest["recommended"]).endswith(".onnx") else onnx[0])
    x, y, side = CROP
    pictures = ROOT / "runs" / "pictures"  # served with the repository root, beside the page
    pictures.mkdir(parents=True, exist_ok=True)
    Image.open(scene).convert("RGB").crop((x, y, x + side, y + side)).save(pictures / "scene_1_crop.png")
    image = "../../runs/pictures/scene_1_crop.png"
    url = f"{serve(ROOT)}/js/web/index.html?model=../../{model.relative_to(ROOT)}&image={image}"
    with tempfile.TemporaryDirectory() as tmp, Page(url, Path(tmp) / "chrome", size=(1280, 900)) as page:
        state, result = page.result(timeout_s=180)
        if state != "done":
            print(f"make_pictures: the page did not finish: {result}", file=sys.stderr)
            return 1
        page.screenshot(ROOT / "docs" / "web_page.png")
    times = ", ".join(f"{k} {v:.1f}" for k, v in result["timings_ms"].items())
    print(
        f"docs/report.png, docs/web_page.png: P(ship) {result['probability']:.3f}, "
        f"{len(result['boxes'])} boxes; ms: {times}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
