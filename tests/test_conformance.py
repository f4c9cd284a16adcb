"""The Python runtime against the committed conformance vectors (conformance/vectors.json, SPEC.md).

The vectors are the contract every runtime (this one, the JavaScript one)
is held to; this test fails when a change to the runtime's maths, its
metadata reading or its detection rule moves any number past the
tolerances written in the vectors (regenerate them deliberately with
conformance/make_vectors.py, and say why in the commit).
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shipcam.runtime import Detector
from shipcam.runtime.schema import schema_errors

HERE = Path(__file__).resolve().parents[1] / "conformance"
VECTORS = json.loads((HERE / "vectors.json").read_text())
TOL = VECTORS["tolerances"]


@pytest.fixture(scope="module")
def detectors():
    return {m: Detector.load(HERE / m, threads=1) for m in VECTORS["metadata"]}


@pytest.mark.parametrize("model", sorted(VECTORS["metadata"]))
def test_metadata_read_from_the_file_is_the_vectors(detectors, model):
    expected = VECTORS["metadata"][model]
    assert schema_errors(expected) == []
    assert json.loads(detectors[model].metadata.to_json()) == expected


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: f"{Path(c['model']).name}-{Path(c['image']).stem}-t{c['threshold']}")
def test_predictions_match_the_vectors(detectors, case):
    det = detectors[case["model"]]
    det.rule = dataclasses.replace(det.rule, threshold=case["threshold"], **{k: v for k, v in VECTORS["rule"].items()})
    p = det.predict(np.asarray(Image.open(HERE / case["image"]).convert("RGB")))
    assert abs(p.probability - case["probability"]) <= TOL["probability_abs"]
    assert abs(p.logit - case["logit"]) <= TOL["logit_abs"]
    assert p.is_ship == case["is_ship"]
    cam = np.asarray(case["cam"])
    assert list(p.cam.shape) == case["cam_shape"] == list(cam.shape)
    assert np.abs(p.cam - cam).max() <= TOL["cam_rel"] * max(float(np.ptp(cam)), 1e-6)
    got = [d.to_dict() for d in p.detections]
    assert len(got) == len(case["boxes"])
    for g, e in zip(got, case["boxes"]):
        for k in ("x", "y", "x0", "y0", "x1", "y1"):
            assert abs(g[k] - e[k]) <= TOL["box_abs_px"], (k, g, e)
        assert abs(g["score"] - e["score"]) <= TOL["logit_abs"]
