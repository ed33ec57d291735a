"""Greedy non-maximum suppression (torchvision.ops.nms semantics) and YOLO26's NMS-free one-to-one selection
(:func:`topk_pairs`), native."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeseg.ops._native import core

__all__ = ["nms", "topk_pairs"]

_I32 = np.iinfo(np.int32)


def _floats(a: ArrayLike, name: str) -> NDArray[np.float32]:
    arr = np.asarray(a)
    if arr.dtype == np.float32:
        return np.ascontiguousarray(arr)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)) or arr.dtype == bool:
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def nms(
    boxes: ArrayLike,
    scores: ArrayLike,
    class_ids: ArrayLike | None = None,
    *,
    iou: float = 0.7,
    agnostic: bool = False,
    max_det: int = 300,
) -> NDArray[np.int64]:
    """Indices (int64) of the boxes kept by greedy NMS, in score-descending order, at most ``max_det``.

    Boxes are xyxy [n, 4]; order is by score descending with ties kept in input order; a box is
    suppressed when its IoU with a kept box of the same class is > ``iou``. ``class_ids=None`` or
    ``agnostic=True`` treats all boxes as one class. Zero-area boxes have IoU 0 and are kept.
    """
    b = _floats(boxes, "boxes")
    s = _floats(scores, "scores")
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape [n, 4], got {b.shape}")
    if s.ndim != 1 or s.shape[0] != b.shape[0]:
        raise ValueError(f"scores must have shape ({b.shape[0]},) to match boxes, got {s.shape}")
    if isinstance(iou, bool) or not isinstance(iou, Real) or not np.isfinite(iou):
        raise ValueError(f"iou must be a finite number, got {iou!r}")
    if isinstance(max_det, bool) or not isinstance(max_det, Integral) or max_det < 1:
        raise ValueError(f"max_det must be a positive integer, got {max_det!r}")
    c: NDArray[Any] | None = None
    if class_ids is not None and not agnostic:
        c = np.asarray(class_ids)
        if not np.issubdtype(c.dtype, np.integer):
            raise ValueError(f"class_ids must be integers, got dtype {c.dtype}")
        if c.shape != (b.shape[0],):
            raise ValueError(f"class_ids must have shape ({b.shape[0]},) to match boxes, got {c.shape}")
        if c.dtype != np.int32:
            if c.size and (c.min() < _I32.min or c.max() > _I32.max):
                raise ValueError("class_ids must fit in int32")
            c = c.astype(np.int32)
        c = np.ascontiguousarray(c)
    return core.nms(b, s, c, float(iou), int(max_det))


def topk_pairs(anchors: ArrayLike, scores: ArrayLike, k: int) -> NDArray[np.int64]:
    """YOLO26's one-to-one selection (what its end-to-end head does in the graph), for (anchor, class) pairs:
    the ``k`` anchors with the highest best score are kept (ties: lower anchor first), then the ``k``
    highest-scoring pairs of those anchors (ties: input order). Returns int64 indices into the pairs, by score
    descending. Pairs are typically a multi-label decode's candidates (every pair above the threshold), which
    gives the end-to-end head's rows above that threshold."""
    s = _floats(scores, "scores")
    a = np.asarray(anchors)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"anchors must be a 1-D integer array, got {a.dtype} {a.shape}")
    if s.shape != a.shape:
        raise ValueError(f"scores must have shape {a.shape} to match anchors, got {s.shape}")
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if a.dtype != np.int32:
        if a.size and (a.min() < _I32.min or a.max() > _I32.max):
            raise ValueError("anchors must fit in int32")
        a = a.astype(np.int32)
    return core.topk_pairs(np.ascontiguousarray(a), s, int(k))
