"""The application tier: the ``shipcam`` command line, the demo and its report.

It sits on top of every library (benchmarks, evaluation, export, train,
runtime) and nothing imports it back. Commands parse their arguments, call
the library and print; the work lives in the libraries.
"""

from shipcam.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
