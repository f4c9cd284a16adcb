"""Matplotlib without a display, and PNGs written atomically: the one setup every picture uses."""

from __future__ import annotations

from pathlib import Path

from shipcam._utils.io import atomic_path

__all__ = ["pyplot", "save_png"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only: no display on servers and CI)."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            'pictures need matplotlib: pip install "shipcam[train]" (or matplotlib)', name="matplotlib"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, dpi: int = 110, tight: bool = False) -> Path:
    """Write ``fig`` to ``path`` as PNG under a temporary name, then close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    return Path(path)
