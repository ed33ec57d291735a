"""Box geometry for training: format conversion, CIoU and distance encoding (anchor grids and distance
decoding are the head's: :func:`edgeseg.nn.head.make_anchors`, :func:`edgeseg.nn.head.dist2bbox`).

All functions are pure torch and work on whatever device/dtype their inputs carry.
Boxes are ``xyxy`` (corners) or ``xywh`` (centre + size) along the last dimension.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "bbox2dist",
    "bbox_iou",
    "xywh2xyxy",
    "xyxy2xywh",
]

CIOU_EPS = 1e-7


def _check_last_dim(t: torch.Tensor, name: str, size: int = 4) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim == 0 or t.shape[-1] != size:
        raise ValueError(f"{name} must have last dimension {size}, got shape {tuple(t.shape)}")


def xywh2xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """Centre/size boxes -> corner boxes (new tensor)."""
    _check_last_dim(boxes, "boxes")
    centre, size = boxes[..., :2], boxes[..., 2:]
    half = size / 2
    return torch.cat((centre - half, centre + half), dim=-1)


def xyxy2xywh(boxes: torch.Tensor) -> torch.Tensor:
    """Corner boxes -> centre/size boxes (new tensor)."""
    _check_last_dim(boxes, "boxes")
    top_left, bottom_right = boxes[..., :2], boxes[..., 2:]
    return torch.cat(((top_left + bottom_right) / 2, bottom_right - top_left), dim=-1)


def bbox_iou(
    box1: torch.Tensor, box2: torch.Tensor, xywh: bool = False, ciou: bool = True, eps: float = CIOU_EPS
) -> torch.Tensor:
    """Element-wise (broadcasting) IoU or Complete-IoU between two box sets.

    Returns a tensor with a trailing dimension of 1. CIoU follows Zheng et al. 2020:
    ``IoU - rho^2 / c^2 - alpha * v`` with ``v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2`` and
    ``alpha = v / (v - IoU + 1)``, the trade-off ``alpha`` treated as a constant (no gradient).
    """
    _check_last_dim(box1, "box1")
    _check_last_dim(box2, "box2")
    if xywh:
        box1, box2 = xywh2xyxy(box1), xywh2xyxy(box2)
    ax1, ay1, ax2, ay2 = box1.chunk(4, -1)
    bx1, by1, bx2, by2 = box2.chunk(4, -1)
    aw, ah = ax2 - ax1, (ay2 - ay1).clamp(eps)
    bw, bh = bx2 - bx1, (by2 - by1).clamp(eps)

    inter_w = (ax2.minimum(bx2) - ax1.maximum(bx1)).clamp(0)
    inter_h = (ay2.minimum(by2) - ay1.maximum(by1)).clamp(0)
    inter = inter_w * inter_h
    union = aw * ah + bw * bh - inter + eps
    iou = inter / union
    if not ciou:
        return iou

    enclose_w = ax2.maximum(bx2) - ax1.minimum(bx1)
    enclose_h = ay2.maximum(by2) - ay1.minimum(by1)
    diag2 = enclose_w.pow(2) + enclose_h.pow(2) + eps
    centre_dist2 = ((bx1 + bx2 - ax1 - ax2).pow(2) + (by1 + by2 - ay1 - ay2).pow(2)) / 4
    v = (4 / math.pi**2) * (torch.atan(bw / bh) - torch.atan(aw / ah)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (centre_dist2 / diag2 + v * alpha)


def bbox2dist(anchor_points: torch.Tensor, bbox: torch.Tensor, max_dist: float) -> torch.Tensor:
    """xyxy boxes -> (l, t, r, b) distances from anchor points, clamped to ``[0, max_dist]``.

    For DFL targets with ``reg_max`` bins pass ``max_dist = reg_max - 1 - 0.01`` so that the right
    bin index of every target stays inside the distribution.
    """
    _check_last_dim(bbox, "bbox")
    if max_dist < 0:
        raise ValueError(f"max_dist must be >= 0, got {max_dist}")
    top_left, bottom_right = bbox.chunk(2, -1)
    return torch.cat((anchor_points - top_left, bottom_right - anchor_points), -1).clamp(0, max_dist)
