"""shipcam.export: two-output, self-describing TFLite and ONNX files with parity checks."""

from shipcam.export.exporter import ExportError, ExportOptions, export_model
from shipcam.export.formats import ALL_FORMATS, ExportFormat, parse_formats
from shipcam.export.parity import Tolerances
from shipcam.export.verify import verify_file

__all__ = [
    "export_model",
    "verify_file",
    "ExportOptions",
    "ExportFormat",
    "ExportError",
    "Tolerances",
    "ALL_FORMATS",
    "parse_formats",
]
