"""The application tier: the ``shipcam`` command line, the demo and its report.

It sits on top of every library (benchmarks, export, train, runtime) and
nothing imports it back.
"""

from shipcam.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
