"""shipcam: edge-deployed, explainable ship detection.

The distribution installs four packages under this namespace:

- ``shipcam.train``      Keras 3 transfer learning (needs the ``train`` extra)
- ``shipcam.export``     two-output TFLite / ONNX export with parity checks
- ``shipcam.runtime``    numpy + one engine: predictions, CAMs and boxes
- ``shipcam.benchmarks`` latency and quality tables

This umbrella package holds only the CLI and a few helpers shared by all of
them; importing it loads nothing but the standard library.
"""

from shipcam.errors import ShipcamError

__version__ = "0.1.0"
__all__ = ["ShipcamError", "__version__"]
