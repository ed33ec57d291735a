"""Polygons (outer contours) of instance masks, traced natively on each compact bitmap."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edgeseg.ops._native import core
from edgeseg.ops.masks import MaskSet

__all__ = ["polygons"]


def polygons(masks: MaskSet, strategy: str = "largest") -> list[list[NDArray[np.float32]]]:
    """Outer contours of every instance as float32 [k, 2] (x, y) arrays in original-image pixels.

    strategy "largest": per instance a list with only the contour of most points (ties: larger
    area); "all": every external contour. Empty masks give []. Holes are not reported; points are
    the corners of the pixel-centre border path (like OpenCV's CHAIN_APPROX_SIMPLE).
    """
    if not isinstance(masks, MaskSet):
        raise ValueError(f"masks must be a MaskSet, got {type(masks).__name__}")
    if strategy not in ("largest", "all"):
        raise ValueError(f"strategy must be 'largest' or 'all', got {strategy!r}")
    return core.polygons(masks.rects, masks.data, masks.offsets, strategy == "all")
