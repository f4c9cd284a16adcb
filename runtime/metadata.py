"""The metadata every exported shipcam file carries, and how to read it without TensorFlow.

One JSON document under the key ``shipcam``:

- ONNX: an entry of ``ModelProto.metadata_props`` (ONNX Runtime exposes it as
  ``session.get_modelmeta().custom_metadata_map``);
- TFLite: a ``Model.metadata`` entry named ``shipcam`` pointing at a buffer,
  read here with a few lines of flatbuffer parsing (no TensorFlow, no schema
  package).

The dense head travels as base64 little-endian float32 so the CAM weights are
bit-identical to the Keras ones.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from shipcam.errors import ModelFileError

__all__ = ["ModelMetadata", "METADATA_KEY", "Quantization", "read_tflite_metadata", "tflite_metadata_entries"]

# How a file's weights are stored: the schema's enum (metadata.schema.json), informative for readers.
Quantization = Literal["float32", "float16", "int8"]

METADATA_KEY = "shipcam"
FORMAT_VERSION = 2  # 2: gsd_range


@dataclass
class ModelMetadata:
    cam_weights: np.ndarray  # (C,) float32: the dense layer's kernel
    cam_bias: float
    pooling: str  # "max" | "avg"
    backbone: str
    feature_channels: int
    input_scale: float  # x_model = x_uint8 * scale + offset
    input_offset: float
    input_size: int | None  # fixed export size, or None when any size runs
    train_size: int | None = None
    alpha: float | None = None
    channel_order: str = "RGB"
    class_name: str = "ship"
    feature_stride: int = 32
    threshold: float = 0.5  # recommended decision threshold on the probability
    gsd: float | None = (
        None  # ground sample distance of the training images, metres/pixel (nominal when a range is given)
    )
    gsd_range: list[float] | None = (
        None  # [min, max] m/px the model was trained across: scenes inside it run as they are
    )
    quantization: Quantization = "float32"
    source_sha256: str = ""
    shipcam_version: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cam_weights = np.asarray(self.cam_weights, dtype=np.float32).reshape(-1)
        if self.cam_weights.size != self.feature_channels:
            raise ModelFileError(
                f"metadata inconsistent: {self.cam_weights.size} CAM weights for {self.feature_channels} feature "
                "channels"
            )
        if self.pooling not in ("max", "avg"):
            raise ModelFileError(f"metadata: unknown pooling {self.pooling!r}")
        if self.gsd_range is not None:
            self.gsd_range = [float(v) for v in self.gsd_range]

    @property
    def gsd_bounds(self) -> tuple[float, float] | None:
        """(min, max) metres/pixel scenes may have to run without resampling: ``gsd_range``, or ``gsd`` alone; None when
        unknown.
        """
        if self.gsd_range is not None:
            return self.gsd_range[0], self.gsd_range[1]
        return (float(self.gsd), float(self.gsd)) if self.gsd else None

    def to_json(self) -> str:
        """The document exported files carry; refuses to write one the schema (SPEC.md) would reject."""
        from shipcam.runtime.schema import schema_errors

        d = asdict(self)
        if d["gsd_range"] is None:  # absent means [gsd, gsd]: format 1 readers see the document they know
            del d["gsd_range"]
        d["cam_weights"] = base64.b64encode(self.cam_weights.astype("<f4").tobytes()).decode("ascii")
        text = json.dumps(d, sort_keys=True)
        errors = schema_errors(json.loads(text))
        if errors:
            raise ModelFileError(f"metadata breaks metadata.schema.json: {'; '.join(errors)}")
        return text

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "model") -> "ModelMetadata":
        from shipcam.runtime.schema import schema_errors

        try:
            d = json.loads(text)
            if (
                isinstance(d, dict)
                and isinstance(d.get("format_version"), int)
                and d["format_version"] > FORMAT_VERSION
            ):
                raise ModelFileError(
                    f"{source}: metadata format {d['format_version']} is newer than this shipcam reads "
                    f"({FORMAT_VERSION}); upgrade shipcam"
                )
            errors = schema_errors(d)
            if errors:
                raise ModelFileError(f"{source}: shipcam metadata breaks the format (SPEC.md): {'; '.join(errors[:3])}")
            weights = base64.b64decode(d["cam_weights"], validate=True)
            if len(weights) != 4 * d["feature_channels"]:
                raise ModelFileError(
                    f"{source}: cam_weights holds {len(weights)} bytes; {d['feature_channels']} float32 channels need "
                    f"{4 * d['feature_channels']}"
                )
            d["cam_weights"] = np.frombuffer(weights, dtype="<f4").copy()
            known = set(cls.__dataclass_fields__)
            return cls(**{k: v for k, v in d.items() if k in known})
        except ModelFileError:
            raise
        except (ValueError, KeyError, TypeError) as e:
            raise ModelFileError(f"{source}: unreadable shipcam metadata ({type(e).__name__}: {e})") from None


# --- minimal flatbuffer reading for TFLite's Model.metadata --------------------
# schema.fbs: table Model { version:0, operator_codes:1, subgraphs:2, description:3,
#   buffers:4, metadata_buffer:5, metadata:6, signature_defs:7 }
# table Metadata { name:string (0); buffer:uint (1) }
# table Buffer { data:[ubyte] (0); offset:ulong (1); size:ulong (2) }


class _FB:
    def __init__(self, buf: bytes):
        self.b = buf

    def u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.b, pos)[0]

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or None if absent."""
        vtable = table - struct.unpack_from("<i", self.b, table)[0]
        vt_size = struct.unpack_from("<H", self.b, vtable)[0]
        slot = 4 + 2 * index
        if slot >= vt_size:
            return None
        off = struct.unpack_from("<H", self.b, vtable + slot)[0]
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def vector(self, table: int, index: int) -> tuple[int, int]:
        pos = self.field(table, index)
        if pos is None:
            return 0, 0
        vec = self.deref(pos)
        return vec + 4, self.u32(vec)  # first element, length

    def string(self, table: int, index: int) -> str:
        start, n = self.vector(table, index)
        return self.b[start : start + n].decode("utf-8")


def tflite_metadata_entries(data: bytes) -> dict[str, bytes]:
    """All ``Model.metadata`` entries of a TFLite flatbuffer, by name."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (file identifier TFL3 missing)")
    fb = _FB(data)
    model = fb.deref(0)
    buffers, n_buffers = fb.vector(model, 4)
    meta, n_meta = fb.vector(model, 6)
    out = {}
    for i in range(n_meta):
        entry = fb.deref(meta + 4 * i)
        name = fb.string(entry, 0)
        pos = fb.field(entry, 1)
        index = fb.u32(pos) if pos is not None else 0
        if index >= n_buffers:
            raise ValueError(f"metadata {name!r} points at buffer {index} of {n_buffers}")
        buf = fb.deref(buffers + 4 * index)
        start, n = fb.vector(buf, 0)
        if n == 0:  # large models keep buffers after the flatbuffer: offset/size fields
            off_pos, size_pos = fb.field(buf, 1), fb.field(buf, 2)
            if off_pos is not None and size_pos is not None:
                start = struct.unpack_from("<Q", data, off_pos)[0]
                n = struct.unpack_from("<Q", data, size_pos)[0]
        out[name] = bytes(data[start : start + n])
    return out


def read_tflite_metadata(path: str | Path) -> ModelMetadata:
    path = Path(path)
    try:
        entries = tflite_metadata_entries(path.read_bytes())
    except (ValueError, struct.error, IndexError) as e:
        raise ModelFileError(f"{path}: not a readable TFLite model ({e}); truncated or another format?") from None
    if METADATA_KEY not in entries:
        raise ModelFileError(
            f"{path}: no shipcam metadata (found {sorted(entries) or 'none'}); export it with `shipcam export`"
        )
    return ModelMetadata.from_json(entries[METADATA_KEY], source=str(path))
