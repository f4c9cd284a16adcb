"""shipcam.benchmarks: latency/quality tables (``bench``) and dataset evaluation (``eval``)."""

from shipcam.benchmarks.bench import BenchConfig, run_bench
from shipcam.benchmarks.evaluate import evaluate

__all__ = ["BenchConfig", "run_bench", "evaluate"]
