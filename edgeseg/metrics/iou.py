"""Intersection-over-union between boxes and between masks, numpy only.

Both functions return an ``[n, m]`` matrix. By default they compute in float64 with the ``eps``
Ultralytics adds to the union (1e-7). ``dtype=np.float32`` repeats Ultralytics' (torch float32)
arithmetic operation for operation, so IoUs that land exactly on a threshold (common for small masks:
30/40 = 0.75) fall on the same side as in ``yolo val``; ``eps=0`` gives pycocotools' plain
``inter / union``. A zero union always gives IoU 0, never NaN.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7

# float32 sums of 0/1 values are exact up to 2**24; beyond that the mask product falls back to float64.
_FLOAT32_EXACT = 1 << 24


def _as_boxes(boxes, name: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape [n, 4] (x1, y1, x2, y2), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    return arr


def _ratio(inter: np.ndarray, union: np.ndarray, eps: float, dtype) -> np.ndarray:
    denom = union + dtype(eps)
    return np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)


def _check_dtype(dtype):
    dtype = np.dtype(dtype).type
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    return dtype


def box_iou(boxes1, boxes2, eps: float = EPS, dtype=np.float64) -> np.ndarray:
    """IoU of every box in ``boxes1`` [n, 4] with every box in ``boxes2`` [m, 4], both xyxy.

    Boxes with x2 < x1 or y2 < y1 count as empty (area clipped to 0).
    """
    dtype = _check_dtype(dtype)
    a = _as_boxes(boxes1, "boxes1").astype(dtype)
    b = _as_boxes(boxes2, "boxes2").astype(dtype)
    zero = dtype(0)
    area_a = np.maximum(a[:, 2] - a[:, 0], zero) * np.maximum(a[:, 3] - a[:, 1], zero)
    area_b = np.maximum(b[:, 2] - b[:, 0], zero) * np.maximum(b[:, 3] - b[:, 1], zero)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.maximum(rb - lt, zero)
    inter = wh[..., 0] * wh[..., 1]
    return _ratio(inter, area_a[:, None] + area_b[None, :] - inter, eps, dtype)


def flatten_masks(masks, name: str = "masks") -> np.ndarray:
    """Return masks as a boolean ``[n, P]`` matrix (P pixels per mask).

    Accepts ``[n, H, W]`` or already-flattened ``[n, H*W]`` arrays of dtype bool or any integer
    type (non-zero = foreground). Float masks are refused: threshold them first, the right
    threshold (0.5 on sigmoid outputs, 0 on logits) is the caller's decision.
    """
    arr = np.asarray(masks)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape [n, H, W] or [n, H*W], got {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"{name} must be bool or integer (0/1), got dtype {arr.dtype}; threshold float masks first"
            )
        arr = arr != 0
    return arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:])))


def mask_iou(masks1, masks2, eps: float = EPS, dtype=np.float64) -> np.ndarray:
    """IoU of every mask in ``masks1`` with every mask in ``masks2``.

    Masks are ``[n, H, W]`` or flattened ``[n, H*W]`` (bool or 0/1 integers) and must have the same
    number of pixels. Intersections are one float32 matrix product (``m1 @ m2.T``), which is exact
    for masks of up to 2**24 pixels; larger masks use float64 for the counts.
    """
    dtype = _check_dtype(dtype)
    a = flatten_masks(masks1, "masks1")
    b = flatten_masks(masks2, "masks2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"masks1 and masks2 must have the same resolution, got {a.shape[1]} and {b.shape[1]} pixels")
    count = np.float32 if a.shape[1] < _FLOAT32_EXACT else np.float64
    inter = (a.astype(count) @ b.astype(count).T).astype(dtype)
    area_a = a.sum(1, dtype=np.int64).astype(dtype)
    area_b = b.sum(1, dtype=np.int64).astype(dtype)
    return _ratio(inter, area_a[:, None] + area_b[None, :] - inter, eps, dtype)
