"""The file format's contract: the JSON Schema against an independent validator (jsonschema), and what a reader refuses."""

import base64
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from shipcam.errors import ModelFileError
from shipcam.runtime.engines import open_engine
from shipcam.runtime.metadata import FORMAT_VERSION, ModelMetadata
from shipcam.runtime.schema import SCHEMA_PATH, load_schema, schema_errors

jsonschema = pytest.importorskip("jsonschema")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def doc():
    return json.loads(open_engine(FIXTURES / "tiny_fp32.onnx").metadata.to_json())


def _reference_ok(d) -> bool:
    return jsonschema.Draft202012Validator(load_schema()).is_valid(d)


def test_the_schema_is_valid_json_schema_and_the_exported_files_follow_it(doc):
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))
    for name in ("tiny_fp32.onnx", "tiny_int8.tflite"):
        d = json.loads(open_engine(FIXTURES / name).metadata.to_json())
        assert _reference_ok(d) and schema_errors(d) == []
    # The committed fixtures are format 1 files (no gsd_range): a format 2 reader reads them as [gsd, gsd].
    assert doc["format_version"] == 1 and FORMAT_VERSION == 2
    d = {**doc, "format_version": 2, "gsd_range": [1.5, 3.0]}
    assert _reference_ok(d) and schema_errors(d) == []


def test_the_python_choices_are_the_schema_enums():
    """Literal types in the code and enums in the schema name the same values (what the exporter writes, readers accept)."""
    from typing import get_args

    from shipcam.export.formats import ALL_FORMATS
    from shipcam.runtime.metadata import Quantization

    props = json.loads(SCHEMA_PATH.read_text())["properties"]
    assert set(get_args(Quantization)) == set(props["quantization"]["enum"])
    assert {f.quantization for f in ALL_FORMATS} <= set(props["quantization"]["enum"])


BREAKS = {
    "missing cam_bias": lambda d: d.pop("cam_bias"),
    "pooling enum": lambda d: d.__setitem__("pooling", "sum"),
    "scale not positive": lambda d: d.__setitem__("input_scale", 0),
    "channels a string": lambda d: d.__setitem__("feature_channels", "1280"),
    "channels a bool": lambda d: d.__setitem__("feature_channels", True),
    "threshold 1": lambda d: d.__setitem__("threshold", 1.0),
    "weights not base64": lambda d: d.__setitem__("cam_weights", "not base64!"),
    "input_size 0": lambda d: d.__setitem__("input_size", 0),
    "gsd negative": lambda d: d.__setitem__("gsd", -3.0),
    "gsd_range one value": lambda d: d.__setitem__("gsd_range", [1.5]),
    "gsd_range not positive": lambda d: d.__setitem__("gsd_range", [0, 3.0]),
    "gsd_range a number": lambda d: d.__setitem__("gsd_range", 1.5),
    "sha256 short": lambda d: d.__setitem__("source_sha256", "abc"),
    "not an object": lambda d: None,
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_our_validator_agrees_with_jsonschema_and_the_reader_refuses(doc, name):
    d = copy.deepcopy(doc)
    if name == "not an object":
        d = [d]
    else:
        BREAKS[name](d)
    assert not _reference_ok(d)
    assert schema_errors(d), name
    with pytest.raises(ModelFileError, match="model.onnx"):
        ModelMetadata.from_json(json.dumps(d), source="model.onnx")


def test_unknown_keys_are_ignored_and_reader_level_checks_hold(doc):
    d = copy.deepcopy(doc)
    d["added_in_a_later_minor_release"] = {"x": 1}
    assert _reference_ok(d) and schema_errors(d) == []
    assert ModelMetadata.from_json(json.dumps(d)).feature_channels == doc["feature_channels"]
    short = copy.deepcopy(doc)
    short["cam_weights"] = base64.b64encode(np.zeros(3, "<f4").tobytes()).decode()
    assert _reference_ok(short)  # the schema cannot count bytes in base64; the reader does
    with pytest.raises(ModelFileError, match="cam_weights holds 12 bytes; 1280 float32 channels need 5120"):
        ModelMetadata.from_json(json.dumps(short), source="m")
    newer = copy.deepcopy(doc)
    newer["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ModelFileError, match="newer than this shipcam reads"):
        ModelMetadata.from_json(json.dumps(newer), source="m")


def test_the_exporter_side_refuses_to_write_what_the_spec_forbids(doc):
    m = ModelMetadata.from_json(json.dumps(doc))
    m.threshold = 1.5
    with pytest.raises(ModelFileError, match=r"metadata.threshold: must be < 1, received 1.5"):
        m.to_json()
