"""Plain numpy greedy NMS reference (torchvision.ops.nms semantics, float32 arithmetic)."""

from __future__ import annotations

import numpy as np


def iou_one(box, boxes):
    """float32 IoU of one xyxy box against many; 0 where the union is not positive."""
    f = np.float32
    box, boxes = box.astype(f), boxes.astype(f)
    w = np.maximum(f(0), np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]))
    h = np.maximum(f(0), np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]))
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where(union > 0, iou, f(0))


def nms(boxes, scores, class_ids=None, *, iou=0.7, max_det=300):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32)
    cls = np.zeros(len(boxes), np.int64) if class_ids is None else np.asarray(class_ids, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_det:
            break
        rest = order[pos + 1 :]
        hit = (iou_one(boxes[i], boxes[rest]) > np.float32(iou)) & (cls[rest] == cls[i])
        suppressed[rest[hit]] = True
    return np.array(keep, dtype=np.int64)


def topk_pairs(anchors, scores, k):
    """YOLO26's one-to-one selection, as its head does it in the graph (torch's select_topk on the pairs)."""
    anchors = np.asarray(anchors, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    uniq = np.unique(anchors)
    best = np.array([scores[anchors == u].max() for u in uniq], np.float32)
    order = np.lexsort((uniq, -best))  # best score descending, then lower anchor
    kept = set(uniq[order[:k]].tolist())
    idx = np.array([i for i in range(len(anchors)) if anchors[i] in kept], np.int64)
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return idx[:k]
