import subprocess
import sys


def test_runtime_import_loads_no_training_framework():
    code = (
        "import sys, shipcam.runtime, shipcam.runtime.image, shipcam.runtime.cam;"
        "heavy=[m for m in ('tensorflow','keras','tf2onnx','onnx','onnxruntime','ai_edge_litert','PIL') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing shipcam.runtime loaded: {out}"


def test_synthetic_generator_needs_no_tensorflow():
    code = "import sys, shipcam.train.data.synthetic as s; s.generate_scene(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
