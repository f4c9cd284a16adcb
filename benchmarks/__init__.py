"""shipcam.benchmarks: the product's latency and quality tables (``bench``) and the studies behind BENCHMARKS.md.

Evaluation commands (``eval``, ``eval-scenes``) live in ``shipcam.evaluation``;
``browser`` is test infrastructure (headless Chromium) kept here beside its
benchmark, ``js_latency``.
"""

from shipcam.benchmarks.bench import BenchConfig, run_bench

__all__ = ["BenchConfig", "run_bench"]
