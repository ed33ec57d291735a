"""Candidate decoding of a YOLOv8-seg / YOLO11-seg detection head output (native scan)."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeseg.ops._native import core
from edgeseg.ops.selection import row_indices

__all__ = ["Candidates", "class_keep_mask", "decode", "drop_batch"]


@dataclass
class Candidates:
    """Detections above the confidence threshold, before NMS."""

    boxes: NDArray[np.float32]  # float32 [k, 4] xyxy, model-input pixels
    scores: NDArray[np.float32]  # float32 [k]
    class_ids: NDArray[np.int32]  # int32 [k]
    anchors: NDArray[np.int32]  # int32 [k] anchor index into N
    coefs: NDArray[np.float32]  # float32 [k, nm] mask coefficients (nm may be 0)
    nonfinite: int  # anchors skipped because their box/score/coefficients held NaN or inf

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def select(self, idx: ArrayLike | slice) -> Candidates:
        """Candidates at ``idx`` (index array, boolean mask or slice); ``nonfinite`` is carried over."""
        pick = row_indices(idx, len(self), "candidates")
        return Candidates(
            boxes=self.boxes[pick],
            scores=self.scores[pick],
            class_ids=self.class_ids[pick],
            anchors=self.anchors[pick],
            coefs=self.coefs[pick],
            nonfinite=self.nonfinite,
        )


def _layout(shape: tuple[int, int], nc: int, layout: str) -> bool:
    """True for [C, N]. "auto": the dimension that can hold 4 + nc channels; if both can, the smaller
    one is C (anchors outnumber channels for every real input size); on a tie, [C, N]."""
    if layout == "cn":
        return True
    if layout == "nc":
        return False
    if layout != "auto":
        raise ValueError(f"layout must be 'auto', 'cn' or 'nc', got {layout!r}")
    a, b = shape
    need = 4 + nc
    if a >= need and b >= need:
        return a <= b
    if a >= need:
        return True
    if b >= need:
        return False
    raise ValueError(f"output shape {shape} has no dimension with at least 4 + nc = {need} channels")


def drop_batch(
    a: NDArray[Any], ndim: int, what: str, expected: str, error: type[Exception] = ValueError
) -> NDArray[Any]:
    """``a`` (``ndim``-D, or ``ndim+1``-D with a batch of 1) without its batch dimension; ``error`` naming
    ``what`` and the ``expected`` shapes otherwise."""
    if a.ndim == ndim + 1:
        if a.shape[0] != 1:
            raise error(f"{what} must have batch 1, got shape {a.shape}")
        a = a[0]
    if a.ndim != ndim:
        raise error(f"{what} must be {expected}, got shape {a.shape}")
    return a


def decode(
    output: NDArray[Any],
    nc: int,
    *,
    conf: float = 0.25,
    multi_label: bool = False,
    max_nms: int = 30000,
    classes: ArrayLike | None = None,
    layout: str = "auto",
    box_scale: tuple[float, float] = (1.0, 1.0),
) -> Candidates:
    """Decode candidates from a head output [C, N] (Ultralytics layout) or [N, C], optional batch dim of 1.

    Rows 0..3 are cx, cy, w, h (converted to xyxy, times ``box_scale`` = (sx, sy)), rows 4..4+nc the
    class scores (already sigmoid), the rest mask coefficients. An anchor is a candidate when its best
    class score is > ``conf`` (with ``multi_label``: every (anchor, class) with score > conf, anchor-major).
    ``classes`` keeps only those class ids (applied to the best class, as Ultralytics does). Anchors with
    NaN/inf class scores, and candidates with a NaN/inf box or coefficient, are counted in ``nonfinite``
    and never returned. When more than ``max_nms`` remain, the highest scores are kept (ties: earlier
    first) in their original order.
    """
    if not isinstance(output, np.ndarray):
        raise ValueError(f"output must be a numpy array, got {type(output).__name__}")
    if isinstance(nc, bool) or not isinstance(nc, Integral) or nc < 1:
        raise ValueError(f"nc must be a positive integer, got {nc!r}")
    nc = int(nc)
    if output.dtype != np.float32:
        if output.dtype not in (np.float16, np.float64):
            raise ValueError(f"output must be a float32 array (float16/float64 are converted), got {output.dtype}")
        output = output.astype(np.float32)
    output = drop_batch(output, 2, "output", "[C, N], [N, C] or [1, C, N]")
    cn = _layout(output.shape, nc, layout)
    if isinstance(conf, bool) or not isinstance(conf, Real) or not np.isfinite(conf):
        raise ValueError(f"conf must be a finite number, got {conf!r}")
    if isinstance(max_nms, bool) or not isinstance(max_nms, Integral) or max_nms < 1:
        raise ValueError(f"max_nms must be a positive integer, got {max_nms!r}")
    try:
        sx, sy = (float(v) for v in box_scale)
    except (TypeError, ValueError):
        raise ValueError(f"box_scale must be a pair of numbers (sx, sy), got {box_scale!r}") from None
    if not (np.isfinite(sx) and np.isfinite(sy)):
        raise ValueError(f"box_scale must be finite, got {box_scale!r}")
    keep = class_keep_mask(classes, nc)
    output = np.ascontiguousarray(output)
    boxes, scores, class_ids, anchors, coefs, nonfinite = core.decode(
        output, nc, float(conf), bool(multi_label), int(max_nms), keep, cn, sx, sy
    )
    return Candidates(boxes, scores, class_ids, anchors, coefs, int(nonfinite))


def class_keep_mask(classes: ArrayLike | None, nc: int) -> NDArray[np.uint8] | None:
    """uint8 [nc] mask of the class ids to keep (None: keep all); a clear ValueError for bad ids."""
    if classes is None:
        return None
    ids = np.asarray(classes).reshape(-1)
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"classes must be integer class ids, got {classes!r}")
    if ids.size and (ids.min() < 0 or ids.max() >= nc):
        raise ValueError(f"classes must be in 0..{nc - 1}, got {classes!r}")
    keep = np.zeros(nc, dtype=np.uint8)
    keep[ids.astype(np.intp)] = 1
    return keep
