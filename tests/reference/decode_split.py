"""Plain numpy split-output decoding reference (same contract as edgeseg.ops.decode_split)."""

from __future__ import annotations

import math

import numpy as np


def _threshold(conf, scale, zp, is_float):
    conf = float(np.float32(conf))
    if conf <= 0:
        return -np.inf
    if conf >= 1:
        return np.inf
    logit = math.log(conf / (1 - conf))
    return np.float32(logit) if is_float else math.floor(logit / scale + zp)


def _deq(x, q):
    s, z = q
    return (x.astype(np.float32) - np.float32(z)) * np.float32(s)


def _hwc(a, hw, c, cn):
    a = np.asarray(a).reshape(-1)
    return a.reshape(c, hw).T if cn else a.reshape(hw, c)


def decode_split(
    box,
    cls,
    coef,
    *,
    sizes,
    strides,
    nc,
    nm,
    reg_max=16,
    cn=False,
    box_q=None,
    cls_q=None,
    coef_q=None,
    conf=0.25,
    multi_label=False,
    max_nms=30000,
    classes=None,
):
    """Returns dict(boxes, scores, class_ids, anchors, coefs, nonfinite) and the dense [4+nc+nm, N] array."""
    n = len(sizes)
    unit = [(1.0, 0)] * n
    box_q, cls_q, coef_q = box_q or unit, cls_q or unit, coef_q or unit
    is_float = np.asarray(cls[0]).dtype == np.float32
    keep = np.ones(nc, bool) if classes is None else np.isin(np.arange(nc), classes)
    out_b, out_s, out_c, out_a, out_m = [], [], [], [], []
    dense = []
    nonfinite = 0
    offset = 0
    for lv, ((h, w), s) in enumerate(zip(sizes, strides)):
        hw = h * w
        qb = _hwc(box[lv], hw, 4 * reg_max, cn)
        qc = _hwc(cls[lv], hw, nc, cn)
        qm = _hwc(coef[lv], hw, nm, cn)
        b = _deq(qb, box_q[lv]).reshape(hw, 4, reg_max)
        if reg_max == 1:  # YOLO26: the distances themselves
            d = b[..., 0]
        else:
            e = np.exp(b - b.max(-1, keepdims=True))
            d = (e * np.arange(reg_max, dtype=np.float32)).sum(-1) / e.sum(-1)  # [hw, 4]
        ay, ax = np.divmod(np.arange(hw), w)
        ax = ax.astype(np.float32) + 0.5
        ay = ay.astype(np.float32) + 0.5
        x1, y1, x2, y2 = ax - d[:, 0], ay - d[:, 1], ax + d[:, 2], ay + d[:, 3]
        cx, cy = (x1 + x2) / 2 * s, (y1 + y2) / 2 * s
        bw, bh = (x2 - x1) * s, (y2 - y1) * s
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1).astype(np.float32)
        logits = _deq(qc, cls_q[lv])
        scores = 1 / (1 + np.exp(-logits))
        coefs = _deq(qm, coef_q[lv])
        dense.append(np.concatenate([np.stack([cx, cy, bw, bh], 1), scores, coefs], 1))
        thr = _threshold(conf, cls_q[lv][0], cls_q[lv][1], is_float)
        raw = qc.astype(np.float64)
        for a in range(hw):
            row = raw[a]
            if not np.isfinite(row).all():
                nonfinite += 1
                continue
            best = int(np.argmax(row))
            if not row[best] > thr:
                continue
            ents = (
                [(k, scores[a, k]) for k in range(nc) if row[k] > thr and keep[k]]
                if multi_label
                else ([(best, scores[a, best])] if keep[best] else [])
            )
            if not ents:
                continue
            if not (np.isfinite(xyxy[a]).all() and np.isfinite(coefs[a]).all()):
                nonfinite += 1
                continue
            for k, sc in ents:
                out_b.append(xyxy[a]), out_s.append(sc), out_c.append(k), out_a.append(offset + a)
                out_m.append(coefs[a])
        offset += hw
    sc = np.array(out_s, np.float32)
    idx = np.arange(len(sc))
    if len(idx) > max_nms:
        idx = np.sort(np.lexsort((idx, -sc))[:max_nms])
    res = {
        "boxes": np.array(out_b, np.float32).reshape(-1, 4)[idx],
        "scores": sc[idx],
        "class_ids": np.array(out_c, np.int32)[idx],
        "anchors": np.array(out_a, np.int32)[idx],
        "coefs": np.array(out_m, np.float32).reshape(len(out_m), nm)[idx],
        "nonfinite": nonfinite,
    }
    return res, np.concatenate(dense, 0).T.astype(np.float32)
