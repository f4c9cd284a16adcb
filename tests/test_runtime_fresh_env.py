"""The edge install: a fresh virtual environment with only shipcam[runtime-onnx] (no TensorFlow).

It loads the committed fixture (made by shipcam's export code, see
fixtures/make_fixtures.py), predicts on the committed input images (inputs.npy,
so a change to the synthetic generator cannot make the fixture stale), compares
with the Keras outputs recorded at export time, and checks that tensorflow,
keras and tf2onnx were never imported.
"""

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"

SCRIPT = r"""
import json, sys
import numpy as np
from shipcam.runtime import Detector
fx = sys.argv[1]
exp = json.load(open(fx + "/expected.json"))
det = Detector.load(fx + "/tiny_fp32.onnx", threads=1, manifest=fx + "/manifest.json")
imgs = np.load(fx + "/inputs.npy")
preds = det.predict(imgs)
logit_err = max(abs(p.logit - l) for p, l in zip(preds, exp["logits"]))
cams = np.array(exp["cams"])
cam_err = float(np.abs(np.stack([p.cam for p in preds]) - cams).max() / np.sqrt((cams ** 2).mean()))
print(json.dumps({"logit_err": logit_err, "cam_rel_err": cam_err, "boxes": sum(len(p.boxes) for p in preds),
                  "heavy": sorted(m for m in ("tensorflow", "keras", "tf2onnx", "onnx") if m in sys.modules)}))
"""


@pytest.mark.network
@pytest.mark.skipif(not (FIXTURES / "tiny_fp32.onnx").is_file(), reason="fixtures not generated")
def test_runtime_only_install_predicts_without_tensorflow(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{ROOT}[runtime-onnx]"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    listed = subprocess.run(
        [str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, env=env, check=True
    ).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert "onnxruntime" in installed and not installed & {"tensorflow", "tensorflow-cpu", "keras", "tf2onnx"}

    run = subprocess.run(
        [str(py), "-c", SCRIPT, str(FIXTURES)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["logit_err"] < 1e-3 and result["cam_rel_err"] < 1e-4, result
