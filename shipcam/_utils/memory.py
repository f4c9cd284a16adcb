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


def current_rss_mb() -> float | None:
    """VmRSS from /proc (None where there is no /proc): what the process holds now, not its peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Restart VmHWM at the current resident set (Linux 4.0+), so a peak can be measured around one step.

    Returns False where that is not possible; ``peak_rss_mb`` then keeps the process's lifetime peak.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
