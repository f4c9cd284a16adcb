"""Inference engines behind one interface; each imports its library only when constructed."""

from __future__ import annotations

from pathlib import Path

from shipcam.runtime.engines.base import OUTPUTS, Engine, default_threads

__all__ = ["Engine", "OUTPUTS", "default_threads", "open_engine", "ENGINES"]

ENGINES = ("auto", "onnx", "litert")


def open_engine(path: str | Path, engine: str = "auto", threads: int | None = None) -> Engine:
    """Open ``path`` with the named engine; ``auto`` picks by file type (.onnx / .tflite)."""
    path = Path(path)
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine. Expected one of {list(ENGINES)}. Received: engine={engine!r}")
    if engine == "auto":
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            engine = "onnx"
        elif suffix in (".tflite", ".lite"):
            engine = "litert"
        else:
            raise ValueError(
                f"cannot pick an engine for {path.name!r}: expected a .onnx or .tflite file (or pass engine=)"
            )
    if engine == "onnx":
        from shipcam.runtime.engines.onnx import OnnxEngine

        return OnnxEngine(path, threads)
    from shipcam.runtime.engines.litert import LiteRTEngine

    return LiteRTEngine(path, threads)
