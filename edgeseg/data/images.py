"""Image loading and rect-batch geometry shared by training and validation (numpy + cv2, no torch)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..opencv import require_cv2
from .errors import DatasetError

__all__ = ["load_resized", "rect_batches"]


def load_resized(path: str, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """BGR image with its long side resized to ``size`` (ceil, INTER_LINEAR) and its original (h0, w0)."""
    cv2 = require_cv2("reading a dataset")
    try:
        im = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    except (OSError, cv2.error):
        im = None
    if im is None:
        raise DatasetError(f"{path}: image can no longer be read (changed since the label scan?)")
    h0, w0 = im.shape[:2]
    r = size / max(h0, w0)
    if r != 1:
        w, h = min(math.ceil(w0 * r), size), min(math.ceil(h0 * r), size)
        im = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
    return im, (h0, w0)


def rect_batches(
    shapes_hw: Sequence[tuple[int, int]], batch_size: int, imgsz: int, stride: int, pad: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ultralytics' rectangular batches.

    Returns ``order`` (indices sorting the images by aspect ratio h/w), ``batch_shapes`` ([nb, 2] (h, w),
    each ``ceil(shape * imgsz / stride + pad) * stride``) and ``batch_index`` (batch of each sorted image).
    """
    n = len(shapes_hw)
    if n == 0:
        raise DatasetError("no images to batch")
    bi = np.floor(np.arange(n) / batch_size).astype(int)
    nb = int(bi[-1]) + 1
    s = np.asarray(shapes_hw, np.float64)
    ar = s[:, 0] / s[:, 1]
    order = ar.argsort()
    ar = ar[order]
    shapes: list[list[float]] = [[1, 1]] * nb
    for i in range(nb):
        ari = ar[bi == i]
        mini, maxi = ari.min(), ari.max()
        if maxi < 1:
            shapes[i] = [maxi, 1]
        elif mini > 1:
            shapes[i] = [1, 1 / mini]
    batch_shapes = np.ceil(np.array(shapes) * imgsz / stride + pad).astype(int) * stride
    return order, batch_shapes, bi
