"""Test-time augmentation: each image (or scan tile) seen turned and mirrored, its CAMs turned back and averaged.

A CAM learnt from synthetic ships is not exactly invariant to orientation.
On the real scenes, some false alarms appear in one orientation only:
rotating the scenes by 90 degrees doubled the demo model's false alarms
(BENCHMARKS "the same scenes, perturbed"). A ship is a ship in every
orientation, so averaging the logit maps of an image's dihedral views keeps
what they agree on. The D4 average is exactly invariant to quarter turns and
mirrors of the image. Each view costs one more forward pass, so this is an
option and off by default.

Pure numpy. Views act on axes 1-2 of a batch: (N, H, W, C) images or (N, h, w) maps.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["Views", "apply_view", "undo_view"]


class Views(str, enum.Enum):
    """Which views of each image (or scan tile) ``predict`` and ``scan`` average (``DetectionRule.views``)."""

    NONE = "none"  # the tile as it is
    FLIP = "flip"  # and mirrored left-right
    ROT4 = "rot4"  # turned by 0, 90, 180 and 270 degrees
    D4 = "d4"  # all 8: the four turns, mirrored and not

    @property
    def transforms(self) -> tuple[tuple[int, bool], ...]:
        """(quarter turns, mirrored) of each view; the first is the tile itself."""
        turns = range(4) if self in (Views.ROT4, Views.D4) else range(1)
        mirrors = (False, True) if self in (Views.FLIP, Views.D4) else (False,)
        return tuple((k, m) for m in mirrors for k in turns)


def apply_view(batch: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """Mirror left-right first (when asked), then turn ``turns`` quarter turns counter-clockwise."""
    a = batch[:, :, ::-1] if mirrored else batch
    return np.rot90(a, turns, axes=(1, 2))


def undo_view(batch: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """The inverse of ``apply_view``: a map computed on a view, back in the tile's own orientation."""
    a = np.rot90(batch, -turns, axes=(1, 2))
    return a[:, :, ::-1] if mirrored else a
