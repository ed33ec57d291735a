"""Polygons (pixel coordinates) to training masks at 1/ratio of the image resolution.

Each polygon is filled at full resolution (coordinates truncated to int) and the 0/1 mask is resized
to (h // ratio, w // ratio) with bilinear interpolation, as Ultralytics does. The overlap form is one
index map: instances are sorted by mask area, largest first, instance k (1-based, in that order) is
drawn with value k, and a smaller instance covers a larger one where they overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..opencv import require_cv2


def polygon_to_mask(shape: tuple[int, int], polygon: np.ndarray, ratio: int = 1, value: int = 1) -> np.ndarray:
    """One polygon [k, 2] -> uint8 mask of size (h // ratio, w // ratio)."""
    cv2 = require_cv2("reading a dataset")
    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), np.uint8)
    pts = np.asarray(polygon, np.float64).reshape(-1, 2)
    cv2.fillPoly(mask, [pts.astype(np.int32)], color=value)
    nh, nw = h // ratio, w // ratio
    return cv2.resize(mask, (nw, nh)) if (nh, nw) != (h, w) else mask


def polygons_to_masks(
    shape: tuple[int, int], polygons: Sequence[np.ndarray] | np.ndarray, ratio: int = 4
) -> np.ndarray:
    """Per-instance 0/1 masks [n, h // ratio, w // ratio] uint8; ``polygons`` is a list or an [n, k, 2] array."""
    nh, nw = int(shape[0]) // ratio, int(shape[1]) // ratio
    if not len(polygons):
        return np.zeros((0, nh, nw), np.uint8)
    return np.stack([polygon_to_mask(shape, p, ratio) for p in polygons], 0)


def polygons_to_overlap_mask(
    shape: tuple[int, int], polygons: Sequence[np.ndarray] | np.ndarray, ratio: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Index map [h // ratio, w // ratio] and the area order.

    Returns ``(index_map, order)``: reorder the instances with ``order`` so that value k in the map
    is instance k - 1. The map is uint8, or int32 beyond 255 instances.
    """
    nh, nw = int(shape[0]) // ratio, int(shape[1]) // ratio
    n = len(polygons)
    dtype = np.int32 if n > 255 else np.uint8
    out = np.zeros((nh, nw), dtype)
    if not n:
        return out, np.zeros(0, np.int64)
    ms = polygons_to_masks(shape, polygons, ratio)
    areas = ms.reshape(n, -1).sum(1)
    order = np.argsort(-areas)
    for k, i in enumerate(order, 1):  # later (smaller) instances are drawn on top
        out[ms[i] > 0] = k
    return out, order.astype(np.int64)
