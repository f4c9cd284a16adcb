"""TFLite conversion (float32, float16, full-integer int8) and metadata embedding.

int8 files keep **float inputs and outputs** with int8 inside: the converter
adds one QUANTIZE at the input and DEQUANTIZE at the two outputs (microseconds
next to the network), and every runtime path stays identical. The runtime also
handles int8 I/O files (``int8_io=True``) by using the tensors' own
scale/zero-point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from shipcam.runtime.metadata import METADATA_KEY, ModelMetadata, Quantization

__all__ = ["convert_tflite", "embed_tflite_metadata", "float_head_tensors", "float_tail_tensors"]


def convert_tflite(
    savedmodel_dir: str | Path,
    quantization: Quantization | Literal["int16x8"],
    calibration=None,
    int8_io: bool = False,
    float_ops: list[str] | None = None,
    show_progress: bool = True,
) -> bytes:
    """Convert the two-output SavedModel. ``quantization``: float32 | float16 | int8 | int16x8.

    ``int16x8``: int8 weights with int16 activations (LiteRT's 16x8 mode):
    256x finer activations than int8, but reference kernels (no XNNPACK).

    ``float_ops``: for int8, node names (or name prefixes) kept in float via
    the quantization debugger's deny-list — the remedy for sensitive layers.
    """
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel_dir), signature_keys=["serving_default"])
    if quantization == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quantization in ("int8", "int16x8"):
        if calibration is None or len(calibration) == 0:
            raise ValueError("int8 export needs calibration data (--calib N synthetic scenes or --calib-data DIR)")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: calibration.representative_dataset("image", show_progress)
        if quantization == "int16x8":
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
        elif float_ops:
            # Selective quantization: builtins int8 where possible, float kernels allowed for the deny-listed nodes.
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        else:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io and quantization == "int8":
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        if float_ops and quantization == "int8":
            return _convert_with_denylist(conv, calibration, float_ops, show_progress)
    elif quantization != "float32":
        raise ValueError(
            f"Unknown quantization. Expected float32, float16, int8 or int16x8. Received: {quantization!r}"
        )
    return conv.convert()


def _convert_with_denylist(conv, calibration, float_ops, show_progress) -> bytes:
    import tensorflow as tf

    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=conv,
        debug_dataset=lambda: ([x[None]] for x in calibration.images),  # the debugger wants lists, not dicts
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_ops)),
    )
    return debugger.get_nondebug_quantized_model()


def embed_tflite_metadata(tflite_bytes: bytes, metadata: ModelMetadata) -> bytes:
    """Add (or replace) the ``shipcam`` metadata entry: a named buffer in the flatbuffer."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    payload = np.frombuffer(metadata.to_json().encode("utf-8"), dtype=np.uint8)
    buf = schema.BufferT()
    buf.data = payload
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _name(m) != METADATA_KEY] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(entry) -> str:
    n = entry.name
    return n.decode() if isinstance(n, bytes) else str(n)


def _conv_ops(float_tflite: bytes) -> tuple[list[dict], dict[int, str], list[int]]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=float_tflite)
    ops = it._get_ops_details()  # execution order; public API has no op listing
    tensors = {t["index"]: t["name"] for t in it.get_tensor_details()}
    convs = [i for i, op in enumerate(ops) if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    return ops, tensors, convs


def float_tail_tensors(float_tflite: bytes, n_convs: int) -> list[str]:
    """Output tensor names of the ops from the ``n_convs``-th last convolution to the end.

    Read from the float model's execution order; these names are what the
    quantization debugger's ``denylisted_nodes`` matches.
    """
    if n_convs <= 0:
        return []
    ops, tensors, convs = _conv_ops(float_tflite)
    start = convs[-n_convs] if len(convs) >= n_convs else 0
    return [tensors[o] for op in ops[start:] for o in op["outputs"] if o in tensors]


def float_head_tensors(float_tflite: bytes, n_convs: int) -> list[str]:
    """Output tensor names of the ops from the input up to and including the ``n_convs``-th convolution."""
    if n_convs <= 0:
        return []
    ops, tensors, convs = _conv_ops(float_tflite)
    end = convs[n_convs - 1] if len(convs) >= n_convs else len(ops) - 1
    return [tensors[o] for op in ops[: end + 1] for o in op["outputs"] if o in tensors]
