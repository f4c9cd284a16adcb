"""Peak resident memory of this process."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """VmHWM from /proc (reset by exec), else ru_maxrss.

    ``ru_maxrss`` survives ``exec``: a child started from a process that had
    TensorFlow loaded reports the parent's high-water mark, so it is only the
    fallback where /proc is missing.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
