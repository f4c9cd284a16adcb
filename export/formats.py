"""The formats ``shipcam export`` writes."""

from __future__ import annotations

from enum import Enum
from typing import cast

from shipcam.runtime.metadata import Quantization

__all__ = ["ExportFormat", "ALL_FORMATS", "parse_formats"]


class ExportFormat(str, Enum):
    TFLITE_FP32 = "tflite_fp32"
    TFLITE_FP16 = "tflite_fp16"
    TFLITE_INT8 = "tflite_int8"
    ONNX_FP32 = "onnx_fp32"
    ONNX_INT8 = "onnx_int8"

    @property
    def suffix(self) -> str:
        return ".onnx" if self.value.startswith("onnx") else ".tflite"

    @property
    def engine(self) -> str:
        return "onnx" if self.value.startswith("onnx") else "litert"

    @property
    def quantization(self) -> Quantization:
        return cast(Quantization, self.value.split("_")[1].replace("fp", "float"))

    @property
    def is_int8(self) -> bool:
        return self.value.endswith("int8")

    def filename(self, stem: str) -> str:
        return f"{stem}_{self.value.split('_')[1]}{self.suffix}"


ALL_FORMATS = tuple(ExportFormat)


def parse_formats(text: str | None) -> list[ExportFormat]:
    """``"all"`` or a comma list such as ``"tflite_fp32,onnx_int8"``."""
    if not text or text == "all":
        return list(ALL_FORMATS)
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            out.append(ExportFormat(part))
        except ValueError:
            raise ValueError(
                f"Unknown format. Expected 'all' or some of {[f.value for f in ALL_FORMATS]}. Received: {part!r}"
            ) from None
    return out
