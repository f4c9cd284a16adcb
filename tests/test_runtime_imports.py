import subprocess
import sys

# What an edge device must not need: the training stack, image decoders, the archive-scale extras.
HEAVY = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai_edge_litert", "PIL", "rasterio", "ray", "pyarrow")
# The package and its modules that run files and archives: each imports numpy only until it is used.
MODULES = (
    "shipcam.runtime",
    "shipcam.runtime.image",
    "shipcam.runtime.cam",
    "shipcam.runtime.files",
    "shipcam.runtime.archive",
)


def test_runtime_import_loads_no_training_framework():
    code = f"import sys, {', '.join(MODULES)}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing shipcam.runtime loaded: {out}"


def test_synthetic_generator_needs_no_tensorflow():
    code = "import sys, shipcam.train.data.synthetic as s; s.generate_scene(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
