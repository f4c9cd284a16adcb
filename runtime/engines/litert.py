"""LiteRT (TFLite) engine: ``ai_edge_litert``, falling back to ``tflite_runtime``.

Outputs are addressed through the ``serving_default`` signature by name, never
by tensor index (TFLite's index order is not stable across conversions).
Int8 inputs/outputs are (de)quantized with the tensors' own scale/zero-point.
"""

from __future__ import annotations

import numpy as np

from shipcam.errors import ModelFileError
from shipcam.runtime.engines.base import Engine
from shipcam.runtime.metadata import read_tflite_metadata

__all__ = ["LiteRTEngine", "SIGNATURE"]

SIGNATURE = "serving_default"


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ImportError('the LiteRT engine needs ai-edge-litert: pip install "shipcam[runtime-litert]"') from None
    return Interpreter


class LiteRTEngine(Engine):
    name = "litert"

    def __init__(self, path, threads: int | None = None):
        super().__init__(path, threads)
        self.metadata = read_tflite_metadata(self.path)  # also rejects truncated / non-TFLite files
        Interpreter = _interpreter_class()
        try:
            # LiteRT defaults to one thread; shipcam always sets (and records) the count.
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
        except Exception as e:
            raise ModelFileError(f"{self.path}: LiteRT cannot load it ({type(e).__name__}: {str(e)[:200]})") from None
        signatures = self.interpreter.get_signature_list()
        if SIGNATURE not in signatures:
            raise ModelFileError(f"{self.path}: no '{SIGNATURE}' signature (found {sorted(signatures)})")
        self._check_outputs(signatures[SIGNATURE]["outputs"])
        (self.input_name,) = signatures[SIGNATURE]["inputs"]
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        in_detail = self.runner.get_input_details()[self.input_name]
        self._in_quant = self._quant(in_detail)
        self._out_quant = {k: self._quant(v) for k, v in self.runner.get_output_details().items()}
        sig = in_detail.get("shape_signature", in_detail["shape"])
        self.input_shape = tuple(None if d < 0 else int(d) for d in sig)
        self._allocated_shape: tuple[int, ...] | None = None

    @staticmethod
    def _quant(detail) -> tuple[np.dtype, float, int] | None:
        if detail["dtype"] not in (np.int8, np.uint8):
            return None
        scale, zero = detail["quantization"]
        return np.dtype(detail["dtype"]), float(scale), int(zero)

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = batch
        if self._in_quant is not None:
            dtype, scale, zero = self._in_quant
            info = np.iinfo(dtype)
            x = np.clip(np.round(batch / scale + zero), info.min, info.max).astype(dtype)
        # The runner resizes and re-allocates only when the shape changes: with
        # one tile size the interpreter is planned once.
        out = self.runner(**{self.input_name: x})
        result = {}
        for name in ("logits", "features"):
            y, q = out[name], self._out_quant.get(name)
            result[name] = (y.astype(np.float32) - q[2]) * q[1] if q is not None else y
        return result
