"""shipcam: edge-deployed, explainable ship detection.

The distribution installs four packages under this namespace:

- ``shipcam.train``      Keras 3 transfer learning (needs the ``train`` extra)
- ``shipcam.export``     two-output TFLite / ONNX export with parity checks
- ``shipcam.runtime``    numpy + one engine: predictions, CAMs and boxes
- ``shipcam.benchmarks`` latency and quality tables

The package root holds only ``errors`` and the small utilities in
``_utils``; the command line, demo and report live in ``shipcam.cli`` (the
application tier, on top of everything). Importing it loads nothing but the
standard library.
"""

from shipcam.errors import ShipcamError

__version__ = "0.1.0"
__all__ = ["ShipcamError", "__version__"]
