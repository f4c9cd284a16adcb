"""Wall-clock timing of a call, the one loop every benchmark uses (shared with the exporter's timing)."""

from __future__ import annotations

from shipcam._utils.timing import time_calls, time_interleaved

__all__ = ["time_calls", "time_interleaved"]
