"""The file format's contract: the JSON Schema against an independent validator (jsonschema), and what a reader
refuses."""

import base64
import copy
import hashlib
import json
import re
import struct
import zlib
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
    # The fixtures are format 2 files of a model trained without a GSD (no gsd, no gsd_range); a format 1
    # document is the same without gsd_range (a format 2 reader reads it as [gsd, gsd]).
    assert doc["format_version"] == FORMAT_VERSION == 2 and "gsd_range" not in doc
    for d in ({**doc, "gsd": 1.5, "gsd_range": [1.5, 3.0]}, {**doc, "format_version": 1, "gsd": 1.5}):
        assert _reference_ok(d) and schema_errors(d) == []


def test_the_python_choices_are_the_schema_enums():
    """Literal types in the code and enums in the schema name the same values (what the exporter writes, readers
    accept).
    """
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


# --- statements of SPEC.md that a reader working from the text alone needs, each held here ---------------------

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT / "conformance"


def _spec_section(n: int) -> str:
    """Section ``n`` of SPEC.md, whitespace collapsed (statements wrap across lines)."""
    text = (ROOT / "SPEC.md").read_text()
    start = text.index(f"\n## {n}. ")
    end = text.find("\n## ", start + 1)
    return " ".join(text[start : end if end > 0 else None].split())


def _png16(path: Path, samples: np.ndarray, colour_type: int) -> None:
    """A 16-bit PNG written by hand (Pillow writes 16-bit grey only): colour type 0 grey, 2 RGB."""
    h, w = samples.shape[:2]
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grey_images_scale_linearly_to_8_bits_from_12_or_16_bits(tmp_path, suffix):
    """Section 3, image files: v = round(u * 255 / top), top 4095 when the image's maximum fits 12 bits, else 65535."""
    from PIL import Image

    from shipcam.runtime.image import read_image

    twelve = np.arange(4096, dtype=np.uint16).reshape(64, 64)  # every 12-bit value, maximum 4095
    over = twelve.copy()
    over[0, 0] = 4096  # one sample past 12 bits: the whole image scales from 65535
    full = np.arange(65536, dtype=np.uint32).astype(np.uint16).reshape(256, 256)  # every 16-bit value
    for name, u, top in (("twelve", twelve, 4095), ("over", over, 65535), ("full", full, 65535)):
        path = tmp_path / f"{name}{suffix}"
        Image.fromarray(u).save(path)
        with pytest.warns(UserWarning, match=rf"{re.escape(str(path))}: .*scaled to 8 bits from 0\.\.{top}$"):
            got = read_image(path)
        wide = u.astype(np.int64)
        assert not ((2 * 255 * wide) % (2 * top) == top).any()  # no sample falls halfway: ties never arise
        expected = (2 * 255 * wide + top) // (2 * top)  # round(u * 255 / top) in integers
        assert got.dtype == np.uint8 and got.shape == u.shape + (3,)
        assert np.array_equal(got, np.repeat(expected[..., None], 3, axis=2).astype(np.uint8)), name
    assert "top = 4095 when the image's largest sample is at most 4095" in _spec_section(3)


def test_16_bit_colour_images_keep_the_high_byte_without_the_12_bit_rule(tmp_path):
    from shipcam.runtime.image import read_image

    rng = np.random.default_rng(0)
    for name, high in (("twelve", 4096), ("full", 65536)):
        u = rng.integers(0, high, size=(6, 7, 3)).astype(np.uint16)
        u[0, 0] = [0, 255, 256]  # the edges of the high byte
        _png16(tmp_path / f"{name}.png", u, colour_type=2)
        assert np.array_equal(read_image(tmp_path / f"{name}.png"), (u >> 8).astype(np.uint8)), name
    assert "keep each sample's high byte, ⌊u / 256⌋, with no 12-bit rule" in _spec_section(3)


def _onnx_fixture_variant(tmp_path: Path, name: str, input_size, fixed_side):
    """The float fixture with its metadata's ``input_size`` and its graph's input height/width set independently."""
    onnx = pytest.importorskip("onnx")
    from shipcam.runtime import Detector
    from shipcam.runtime.metadata import METADATA_KEY

    model = onnx.load(str(FIXTURES / "tiny_fp32.onnx"))
    entry = next(e for e in model.metadata_props if e.key == METADATA_KEY)
    doc = json.loads(entry.value)
    doc["input_size"] = input_size
    entry.value = json.dumps(doc)
    if fixed_side is not None:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        dims[1].dim_value = dims[2].dim_value = fixed_side
    path = tmp_path / name
    onnx.save(model, str(path))
    return Detector.load(path, threads=1)


def test_the_graphs_fixed_input_size_wins_over_the_metadatas_input_size(tmp_path):
    """Section 1: a reader takes the fixed size from the graph, not from ``input_size``."""
    from PIL import Image

    from shipcam.errors import ImageError
    from shipcam.runtime import Detector
    from shipcam.runtime.resize import resize_bilinear

    image = np.asarray(Image.open(CONFORMANCE / "images" / "ship_96x128.png").convert("RGB"))
    # The metadata says 64, the graph is dynamic: the image runs at its own size.
    det = _onnx_fixture_variant(tmp_path, "meta64.onnx", 64, None)
    assert det.engine.fixed_size is None
    assert det.predict(image).cam.shape == (3, 4)
    with pytest.raises(ImageError, match="needs at least 32x32"):
        det.predict(image[:20, :20])  # a dynamic graph refuses images under the stride
    # The graph is fixed at 64 x 64, the metadata says null: the image is resized to 64 x 64 first.
    det = _onnx_fixture_variant(tmp_path, "graph64.onnx", None, 64)
    assert det.engine.fixed_size == (64, 64)
    p = det.predict(image)
    assert p.cam.shape == (2, 2) and p.image_size == (96, 128)
    plain = Detector.load(FIXTURES / "tiny_fp32.onnx", threads=1)
    x = resize_bilinear(plain.preprocess(image), 64, 64)
    assert abs(p.logit - float(plain.engine.run(x[None])["logits"][0, 0])) < 1e-5
    assert det.predict(image[:20, :20]).cam.shape == (2, 2)  # resized, not refused
    assert "the graph wins" in _spec_section(1)


@pytest.mark.parametrize("name", ["tiny_fp32.onnx", "tiny_int8.tflite"])
def test_the_shipped_dynamic_graphs_give_a_feature_map_of_floor_h_plus_1_over_32(name):
    """Section 1: h = floor((H + 1) / 32) for the shipped MobileNetV2 graphs with a dynamic input, neither ceil nor
    floor of H / 32.
    """
    engine = open_engine(FIXTURES / name, threads=1)
    assert engine.fixed_size is None
    sizes = [(32, 33), (49, 63), (63, 64), (65, 70), (70, 100), (95, 96), (97, 127), (129, 161)]
    for H, W in sizes:
        features = engine.run(np.zeros((1, H, W, 3), np.float32))["features"]
        assert features.shape[1:3] == ((H + 1) // 32, (W + 1) // 32), (H, W, features.shape)
    sides = [s for hw in sizes for s in hw]
    # the rule is neither
    assert any((s + 1) // 32 != -(-s // 32) for s in sides) and any((s + 1) // 32 != s // 32 for s in sides)
    text = _spec_section(1)
    assert "h = ⌊(H + 1) / 32⌋" in text and "MUST take them from the output" in text
    for side, cells in re.findall(r"(\d+)(?: px)? → (\d+)", text):
        assert (int(side) + 1) // 32 == int(cells), (side, cells)


# TFLite's schema.fbs, as SPEC.md section 2 gives it.
TFLITE_FIELDS = {
    "Model": {
        "version": 0,
        "operator_codes": 1,
        "subgraphs": 2,
        "description": 3,
        "buffers": 4,
        "metadata_buffer": 5,
        "metadata": 6,
        "signature_defs": 7,
    },
    "Metadata": {"name": 0, "buffer": 1},
    "Buffer": {"data": 0, "offset": 1, "size": 2},
}


def test_the_tflite_field_numbers_of_section_2_read_the_fixture_with_the_flatbuffers_library():
    """An independent reader (the flatbuffers package's Table, vtable slot 4 + 2i) at the spec's field numbers
    finds the metadata the runtime reads, and the schema version (3) at Model field 0."""
    flatbuffers = pytest.importorskip("flatbuffers")
    from flatbuffers.number_types import Uint32Flags
    from flatbuffers.table import Table

    from shipcam.runtime.metadata import ModelMetadata, tflite_metadata_entries

    text = _spec_section(2)
    for table, fields in TFLITE_FIELDS.items():
        assert f"`{table}` {{ " + ", ".join(f"`{k}` {v}" for k, v in fields.items()) + " }" in text, table
    M, MD, B = TFLITE_FIELDS["Model"], TFLITE_FIELDS["Metadata"], TFLITE_FIELDS["Buffer"]

    data = bytearray((FIXTURES / "tiny_int8.tflite").read_bytes())
    assert data[4:8] == b"TFL3"
    model = Table(data, flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))

    def slot(t: Table, field: int) -> int:
        return t.Offset(4 + 2 * field)

    def tables(t: Table, field: int) -> list[Table]:
        o = slot(t, field)
        return [Table(data, t.Indirect(t.Vector(o) + 4 * i)) for i in range(t.VectorLen(o))]

    assert model.Get(Uint32Flags, model.Pos + slot(model, M["version"])) == 3
    buffers = tables(model, M["buffers"])
    entries = {}
    for meta in tables(model, M["metadata"]):
        name = meta.String(meta.Pos + slot(meta, MD["name"])).decode()
        buffer = buffers[meta.Get(Uint32Flags, meta.Pos + slot(meta, MD["buffer"]))]
        o = slot(buffer, B["data"])
        start = buffer.Vector(o)
        entries[name] = bytes(data[start : start + buffer.VectorLen(o)])
    assert entries == tflite_metadata_entries(bytes(data))
    assert (
        ModelMetadata.from_json(entries["shipcam"]).to_json()
        == open_engine(FIXTURES / "tiny_int8.tflite").metadata.to_json()
    )


MANIFEST_KEYS = {"source", "shipcam_version", "created", "parity_set", "calibration", "options", "recommended", "files"}
MANIFEST_FILE_KEYS = {
    "file",
    "format",
    "engine",
    "quantization",
    "input_shape",
    "size_bytes",
    "sha256",
    "export_seconds",
    "parity",
    "passed",
    "problems",
}


def _recommended(files: list[dict]) -> str | None:
    """Section 2: the fastest file that passed; within 5% of it, the smallest, then the first name."""
    passed = sorted((e for e in files if e["passed"]), key=lambda e: e["latency_ms"])
    if not passed:
        return None
    tied = [e for e in passed if e["latency_ms"] <= 1.05 * passed[0]["latency_ms"]]
    return sorted(tied, key=lambda e: (e["size_bytes"], e["file"]))[0]["file"]


def test_the_export_manifest_has_the_keys_of_section_2():
    """The manifest `shipcam export` wrote beside the committed fixtures, against the spec's key list."""
    from shipcam.export.exporter import _recommend
    from shipcam.export.formats import ALL_FORMATS

    doc = json.loads((FIXTURES / "manifest.json").read_text())
    assert MANIFEST_KEYS <= set(doc)
    assert set(doc["source"]) == {"path", "sha256"} and re.fullmatch(r"[0-9a-f]{64}", doc["source"]["sha256"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["created"])
    quantizations = set(json.loads(SCHEMA_PATH.read_text())["properties"]["quantization"]["enum"])
    for e in doc["files"]:
        assert MANIFEST_FILE_KEYS <= set(e), e.keys()
        fmt = next(f for f in ALL_FORMATS if f.value == e["format"])
        assert (e["engine"], e["quantization"]) == (fmt.engine, fmt.quantization) and e["quantization"] in quantizations
        assert Path(e["file"]).name == e["file"]  # a name, no folder
        path = FIXTURES / e["file"]
        assert e["size_bytes"] == path.stat().st_size
        assert (
            re.fullmatch(r"[0-9a-f]{64}", e["sha256"]) and e["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        )
        assert e["input_shape"] == list(open_engine(path).input_shape) and e["input_shape"][3] == 3
        assert e["passed"] is (not e["problems"])
    # tiny_int8.tflite failed its parity: the one file that passed is recommended, whatever the timings
    assert doc["recommended"] == "tiny_fp32.onnx" and [e["file"] for e in doc["files"] if e["passed"]] == [
        "tiny_fp32.onnx"
    ]
    # The exporter's rule is the spec's, for every mix of passes, speeds and sizes.
    rng = np.random.default_rng(0)
    for _ in range(400):
        files = [
            {
                "file": f"m_{f.value}",
                "format": f.value,
                "passed": bool(rng.random() < 0.7),
                "latency_ms": float(rng.choice([2.0, 2.05, 2.09, 2.11, 3.0, 5.0])),
                "size_bytes": int(rng.choice([900_000, 1_000_000, 2_400_000])),
            }
            for f in ALL_FORMATS
        ]
        assert _recommend(files) == _recommended(files), files
    text = _spec_section(2)
    assert "the fastest entry that passed; among the entries that passed within 5% of" in text
    for key in MANIFEST_KEYS | MANIFEST_FILE_KEYS | {"timing", "latency_ms"}:
        assert f"`{key}`" in text, key


def test_a_file_is_checked_against_a_manifest_by_its_base_name_and_the_sha256_of_its_bytes(tmp_path):
    from shipcam.runtime import Detector
    from shipcam.runtime.manifest import check_against_manifest

    model = tmp_path / "models" / "m.onnx"
    model.parent.mkdir()
    model.write_bytes((FIXTURES / "tiny_fp32.onnx").read_bytes())
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    manifests = tmp_path / "elsewhere"
    manifests.mkdir()

    def manifest(doc) -> Path:
        path = manifests / f"manifest_{len(list(manifests.iterdir()))}.json"
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    # A hand-written manifest holding only what the check reads; it need not lie beside the file.
    good = manifest({"files": [{"file": "other.onnx", "sha256": "0" * 64}, {"file": "m.onnx", "sha256": digest}]})
    assert check_against_manifest(model, good) is True
    assert Detector.load(model, manifest=good).metadata.feature_channels == 1280
    changed = manifest({"files": [{"file": "m.onnx", "sha256": digest[::-1]}]})
    with pytest.raises(ModelFileError, match=r"m\.onnx: sha256 does not match"):
        Detector.load(model, manifest=changed)
    by_path = manifest({"files": [{"file": "models/m.onnx", "sha256": digest}]})  # entries name files, not paths
    with pytest.raises(ModelFileError, match=r"m\.onnx is not listed in"):
        check_against_manifest(model, by_path)
    assert check_against_manifest(model, by_path, required=False) is False  # `shipcam verify` skips it
    for not_one in ("not json", {"entries": []}):
        with pytest.raises(ModelFileError, match="not a shipcam manifest"):
            check_against_manifest(model, manifest(not_one))


def test_predicts_json_line_keys_file_as_given_order_and_rounding(tmp_path, monkeypatch):
    """Section 5: keys in order, `file` as given (not made absolute; pathlib's form), boxes strongest first,
    coordinates to 2 decimals, score to 4, probability and logit to 6."""
    import dataclasses

    from shipcam.cli import main
    from shipcam.runtime import Detector, read_image

    monkeypatch.chdir(CONFORMANCE)
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                str(FIXTURES / "tiny_fp32.onnx"),
                "./images/water_96.png",
                "images",
                "--threshold",
                "0.2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    folder = sorted(f"images/{p.name}" for p in (CONFORMANCE / "images").glob("*.png"))
    assert [r["file"] for r in lines] == ["images/water_96.png", *folder]

    det = Detector.load(FIXTURES / "tiny_fp32.onnx", threads=1)
    det.rule = dataclasses.replace(det.rule, threshold=0.2)
    decimals = {"x": 2, "y": 2, "x0": 2, "y0": 2, "x1": 2, "y1": 2, "score": 4, "probability": 6}
    assert any(len(r["boxes"]) > 1 for r in lines)  # the order is not vacuous
    for r in lines:
        assert list(r) == ["file", "probability", "logit", "is_ship", "boxes", "cam_shape", "timings_ms"]
        p = det.predict(read_image(r["file"]))
        for k in ("probability", "logit"):
            assert r[k] == round(r[k], 6) and abs(r[k] - getattr(p, k)) <= 0.5e-6 + 1e-12, (k, r[k], getattr(p, k))
        assert r["cam_shape"] == list(p.cam.shape)
        assert [b["score"] for b in r["boxes"]] == sorted((b["score"] for b in r["boxes"]), reverse=True)
        assert len(r["boxes"]) == len(p.detections)
        for b, d in zip(r["boxes"], p.detections):
            assert list(b) == list(decimals)
            raw = {
                "x": d.x,
                "y": d.y,
                "x0": d.box.x0,
                "y0": d.box.y0,
                "x1": d.box.x1,
                "y1": d.box.y1,
                "score": d.score,
                "probability": d.probability,
            }
            for k, n in decimals.items():
                assert b[k] == round(b[k], n) and abs(b[k] - raw[k]) <= 0.5 * 10.0**-n + 1e-12, (k, b[k], raw[k])
