"""References for polygons: OpenCV's external contours and rasterising polygons back to masks."""

from __future__ import annotations

import cv2
import numpy as np


def opencv_contours(bitmap: np.ndarray, origin=(0, 0)) -> list[np.ndarray]:
    """cv2.findContours(RETR_EXTERNAL, CHAIN_APPROX_SIMPLE) as float32 [k, 2] (x, y) arrays."""
    cs = cv2.findContours(
        np.ascontiguousarray(bitmap != 0, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )[0]
    return [(c.reshape(-1, 2) + np.asarray(origin)).astype(np.float32) for c in cs]


def fill_holes(bitmap: np.ndarray) -> np.ndarray:
    """Foreground plus every background pixel not 4-connected to the image border."""
    h, w = bitmap.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = bitmap != 0
    outside = pad.copy()
    cv2.floodFill(outside, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 2, flags=4)
    return outside[1:-1, 1:-1] != 2


def rasterise(polys: list[np.ndarray], shape) -> np.ndarray:
    """Fill polygons (vertices at pixel centres, edges included) into a bool mask of shape (H, W)."""
    out = np.zeros(shape, np.uint8)
    for p in polys:
        pts = np.round(p).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(out, [pts], 1)
        cv2.polylines(out, [pts], True, 1)
    return out != 0
