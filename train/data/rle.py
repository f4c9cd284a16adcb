"""Run-length encoding of masks as the Airbus Ship Detection challenge defines it.

Pixels are numbered from 1, top to bottom then left to right (column-major);
the string lists ``start length`` pairs of runs of mask pixels. An empty
string means no ship.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rle_encode", "rle_decode"]


def rle_encode(mask: np.ndarray) -> str:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, received shape {mask.shape}")
    flat = np.concatenate([[0], mask.astype(bool).T.reshape(-1).view(np.uint8), [0]])
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # 1-based positions where runs start/stop
    starts, stops = edges[0::2], edges[1::2]
    return " ".join(f"{a} {b - a}" for a, b in zip(starts, stops))


def rle_decode(rle: str | float | None, shape: tuple[int, int]) -> np.ndarray:
    """Decode an RLE string into a bool mask of ``shape`` (height, width).

    ``None``, ``""`` and NaN (pandas' empty cell) decode to an empty mask.
    """
    height, width = shape
    flat = np.zeros(height * width, bool)
    if rle is None or (isinstance(rle, float) and np.isnan(rle)) or not str(rle).strip():
        return flat.reshape(width, height).T
    try:
        nums = np.asarray(str(rle).split(), dtype=np.int64)
    except ValueError:
        raise ValueError(f"RLE must be integers 'start length ...', received {str(rle)[:60]!r}") from None
    if nums.size % 2:
        raise ValueError(f"RLE needs start/length pairs, received {nums.size} numbers")
    starts, lengths = nums[0::2] - 1, nums[1::2]
    if (starts < 0).any() or (lengths < 0).any() or (starts + lengths > flat.size).any():
        raise ValueError(f"RLE runs fall outside a {height}x{width} image")
    for a, n in zip(starts, lengths):
        flat[a : a + n] = True
    return flat.reshape(width, height).T
