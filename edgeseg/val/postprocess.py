"""Per-image post-processing for validation, as Ultralytics' ``SegmentationValidator`` (8.4) does it.

From one image's raw outputs (predictions ``[4+nc+nm, N]`` / ``[N, 4+nc+nm]`` and prototypes):

1. **decode** with ``multi_label=True`` at ``conf=0.001`` (every (anchor, class) pair scoring above it
   is a candidate; at most 30000 kept), then **class-aware NMS** at IoU 0.7, at most 300 detections;
2. **masks** as ``ops.process_mask`` (``retina_masks=False``, the validator's default): the mask
   logits ``coefs @ protos`` stay at prototype resolution (1/4 of the input), are cropped to the box
   scaled by ``(mw / W, mh / H)`` and thresholded at 0. The crop is Ultralytics' CPU ``crop_mask``:
   fewer than 50 masks use rounded integer box edges (with Python slice semantics), otherwise the
   fractional comparison ``x1 <= col < x2``;
3. boxes stay in model-input pixels, unclipped: Ultralytics 8.4 compares them with the ground-truth
   boxes in the same letterboxed input space (``DetectionValidator._prepare_batch`` no longer maps
   either side to original-image pixels).

Ground-truth masks are the overlap index map at 1/4 of the input (``k`` = instance ``k-1``); when its
size differs from the prediction masks, each instance mask is resized bilinearly (half-pixel centres,
``align_corners=False``) and thresholded at 0.5, as ``SegmentationValidator._prepare_batch`` does.

Everything here is numpy (plus the native decode/NMS); no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..opencv import require_cv2
from ..ops.decode import Candidates, decode, drop_batch
from ..ops.layouts import decode_end2end_rows, one2one_select
from ..ops.nms import nms

__all__ = [
    "VAL_CONF",
    "VAL_IOU",
    "VAL_MAX_DET",
    "VAL_MAX_NMS",
    "ValPredictions",
    "crop_mask",
    "gt_masks_from_overlap",
    "postprocess",
    "process_mask",
]

VAL_CONF = 0.001
VAL_IOU = 0.7
VAL_MAX_DET = 300
VAL_MAX_NMS = 30000
CROP_LOOP_BELOW = 50  # Ultralytics crop_mask on CPU: n < 50 masks -> rounded integer edges


@dataclass
class ValPredictions:
    """One image's detections after validation post-processing."""

    boxes: np.ndarray  # float32 [n, 4] xyxy, model-input pixels (not clipped)
    scores: np.ndarray  # float32 [n], descending
    classes: np.ndarray  # int64 [n]
    masks: np.ndarray  # bool [n, mh, mw] at prototype resolution
    nonfinite: int = 0  # candidates dropped because the model produced NaN/inf for them

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, mask_shape: tuple[int, int]) -> ValPredictions:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            np.zeros((0, *mask_shape), bool),
        )


def _protos_chw(protos: np.ndarray, layout: str) -> np.ndarray:
    p = drop_batch(np.asarray(protos), 3, "protos", "[nm, mh, mw] or [mh, mw, nm]")
    if layout == "hwc":
        p = p.transpose(2, 0, 1)
    elif layout != "chw":
        raise ValueError(f"protos layout must be 'chw' or 'hwc', got {layout!r}")
    return np.ascontiguousarray(p, dtype=np.float32)


def crop_mask(masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Bool [n, h, w]: True where a pixel is inside its box, as Ultralytics' CPU ``crop_mask`` keeps it.

    ``boxes`` [n, 4] xyxy in mask pixels. With fewer than 50 masks the box edges are rounded (half to
    even) and used as slice bounds (so a rounded edge below 0 wraps around, as in Ultralytics);
    otherwise pixel ``(r, c)`` is kept when ``x1 <= c < x2`` and ``y1 <= r < y2``.
    """
    n, h, w = masks.shape
    b = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
    if n < CROP_LOOP_BELOW:
        keep = np.ones((n, h, w), dtype=bool)
        for i, (x1, y1, x2, y2) in enumerate(np.round(b).astype(np.int64).tolist()):
            keep[i, :y1] = False
            keep[i, y2:] = False
            keep[i, :, :x1] = False
            keep[i, :, x2:] = False
        return keep
    cols = np.arange(w, dtype=np.float32)[None, None, :]
    rows = np.arange(h, dtype=np.float32)[None, :, None]
    x1, y1, x2, y2 = (b[:, k, None, None] for k in range(4))
    return ((cols >= x1) & (cols < x2)) & ((rows >= y1) & (rows < y2))


def process_mask(protos: np.ndarray, coefs: np.ndarray, boxes: np.ndarray, input_shape: tuple[int, int]) -> np.ndarray:
    """Ultralytics ``process_mask(protos, coefs, boxes, shape=input_shape)`` (no upsampling).

    protos: float [nm, mh, mw]; coefs: [n, nm]; boxes: [n, 4] xyxy in input pixels; input_shape: (H, W).
    Returns bool [n, mh, mw].
    """
    nm, mh, mw = protos.shape
    coefs = np.asarray(coefs, dtype=np.float32).reshape(-1, nm) if np.size(coefs) else np.zeros((0, nm), np.float32)
    n = coefs.shape[0]
    if n == 0:
        return np.zeros((0, mh, mw), dtype=bool)
    ih, iw = int(input_shape[0]), int(input_shape[1])
    logits = (coefs @ protos.reshape(nm, -1)).reshape(n, mh, mw)
    ratios = np.array([mw / iw, mh / ih, mw / iw, mh / ih], dtype=np.float32)
    keep = crop_mask(logits, np.asarray(boxes, dtype=np.float32).reshape(n, 4) * ratios)
    return (logits > 0) & keep


def postprocess(
    preds: np.ndarray,
    protos: np.ndarray,
    nc: int,
    input_shape: tuple[int, int],
    *,
    conf: float = VAL_CONF,
    iou: float = VAL_IOU,
    max_det: int = VAL_MAX_DET,
    max_nms: int = VAL_MAX_NMS,
    preds_layout: str = "auto",
    protos_layout: str = "chw",
    box_scale: tuple[float, float] = (1.0, 1.0),
    topk: int | None = None,
) -> ValPredictions:
    """Decode + NMS + masks for one image, the way ``yolo val`` does it (see the module docstring).

    ``preds``: [C, N] / [N, C] (optional batch dim of 1) with boxes cx, cy, w, h (times ``box_scale``
    gives input pixels), sigmoid class scores, mask coefficients. ``preds_layout``: "cn", "nc" or
    "auto"; or "e2e" for an end-to-end head's final rows [K, 6+nm] (x1, y1, x2, y2, score, class,
    coefficients): those above ``conf`` are kept, at most ``max_det``, without NMS (Ultralytics' ``nms=False``).
    ``protos``: [nm, mh, mw] ("chw") or [mh, mw, nm] ("hwc"), optional batch dim of 1.
    ``input_shape``: the model input (H, W) the image was letterboxed to.
    ``topk``: dense predictions of YOLO26's one-to-one branch exported without its top-k: the end-to-end
    selection of ``topk`` pairs (:func:`edgeseg.ops.layouts.one2one_select`) instead of NMS, at most ``max_det``.
    """
    p = _protos_chw(protos, protos_layout)
    mask_shape = p.shape[1:]
    if preds_layout == "e2e":
        rows = drop_batch(np.asarray(preds), 2, "end-to-end rows", "[K, 6 + nm]")
        cands = decode_end2end_rows(rows, nc, conf=conf, max_nms=max_det, box_scale=box_scale)
        return _with_masks(cands, p, input_shape, mask_shape)
    cands = decode(
        np.asarray(preds),
        nc,
        conf=conf,
        multi_label=True,
        max_nms=max_nms,
        layout=preds_layout,
        box_scale=box_scale,
    )
    if len(cands) == 0:
        return _with_masks(cands, p, input_shape, mask_shape)
    if topk is not None:
        return _with_masks(one2one_select(cands, topk, nc=nc, max_nms=max_det), p, input_shape, mask_shape)
    keep = nms(cands.boxes, cands.scores, cands.class_ids, iou=iou, max_det=max_det)
    return _with_masks(cands.select(keep), p, input_shape, mask_shape)


def _with_masks(cands: Candidates, p: np.ndarray, input_shape: tuple[int, int], mask_shape) -> ValPredictions:
    if len(cands) == 0:
        out = ValPredictions.empty(mask_shape)
        out.nonfinite = cands.nonfinite
        return out
    if cands.coefs.shape[1] != p.shape[0]:
        raise ValueError(
            f"predictions carry {cands.coefs.shape[1]} mask coefficients but there are {p.shape[0]} prototypes"
        )
    masks = process_mask(p, cands.coefs, cands.boxes, input_shape)
    return ValPredictions(
        boxes=cands.boxes.astype(np.float32),
        scores=cands.scores.astype(np.float32),
        classes=cands.class_ids.astype(np.int64),
        masks=masks,
        nonfinite=cands.nonfinite,
    )


def gt_masks_from_overlap(overlap: np.ndarray, n: int, mask_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Per-instance bool masks [n, h, w] from an overlap index map (value k = instance k - 1).

    With ``mask_shape`` different from the map's size, each 0/1 mask is resized bilinearly
    (``align_corners=False``) and thresholded at > 0.5, as Ultralytics does.
    """
    m = np.asarray(overlap)
    if m.ndim != 2:
        raise ValueError(f"overlap map must be 2-D, got shape {m.shape}")
    shape = tuple(int(v) for v in (mask_shape if mask_shape is not None else m.shape))
    if n == 0:
        return np.zeros((0, *shape), dtype=bool)
    masks = m[None] == np.arange(1, n + 1, dtype=np.int64)[:, None, None]
    if masks.shape[1:] == shape:
        return masks
    cv2 = require_cv2("resizing validation masks")
    out = np.empty((n, *shape), dtype=bool)
    for i in range(n):
        resized = cv2.resize(masks[i].astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        out[i] = resized > 0.5
    return out
