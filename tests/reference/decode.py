"""Plain numpy candidate-decoding reference (same contract as edgeseg.ops.decode)."""

from __future__ import annotations

import numpy as np


def decode(output, nc, *, conf=0.25, multi_label=False, max_nms=30000, classes=None, cn=True, box_scale=(1.0, 1.0)):
    """Returns dict(boxes, scores, class_ids, anchors, coefs, nonfinite)."""
    x = np.asarray(output, dtype=np.float32)
    if x.ndim == 3:
        x = x[0]
    if cn:
        x = x.T  # [N, C]
    _n, c = x.shape
    nm = c - 4 - nc
    scores = x[:, 4 : 4 + nc]
    bad_score = ~np.isfinite(scores).all(axis=1)
    nonfinite = int(bad_score.sum())
    safe = np.where(bad_score[:, None], -np.inf, scores)
    best, arg = safe.max(axis=1), safe.argmax(axis=1)
    cand = ~bad_score & (best > np.float32(conf))
    keep = np.ones(nc, bool) if classes is None else np.isin(np.arange(nc), classes)

    anchors, cls, sc = [], [], []
    for a in np.nonzero(cand)[0]:
        if multi_label:
            for k in range(nc):
                if scores[a, k] > np.float32(conf) and keep[k]:
                    anchors.append(a), cls.append(k), sc.append(scores[a, k])
        elif keep[arg[a]]:
            anchors.append(a), cls.append(arg[a]), sc.append(best[a])
    anchors = np.array(anchors, dtype=np.int64)
    cls = np.array(cls, dtype=np.int32)
    sc = np.array(sc, dtype=np.float32)

    raw = x[anchors, :4]
    half_w, half_h = raw[:, 2] / np.float32(2), raw[:, 3] / np.float32(2)
    sx, sy = np.float32(box_scale[0]), np.float32(box_scale[1])
    boxes = np.stack(
        [(raw[:, 0] - half_w) * sx, (raw[:, 1] - half_h) * sy, (raw[:, 0] + half_w) * sx, (raw[:, 1] + half_h) * sy],
        axis=1,
    ).astype(np.float32)
    coefs = x[anchors, 4 + nc :]
    ok = np.isfinite(raw).all(1) & np.isfinite(boxes).all(1) & np.isfinite(coefs).all(1)
    nonfinite += len(np.unique(anchors[~ok]))

    idx = np.nonzero(ok)[0]
    if len(idx) > max_nms:
        order = np.lexsort((idx, -sc[idx]))[:max_nms]
        idx = np.sort(idx[order])
    return {
        "boxes": boxes[idx].reshape(-1, 4),
        "scores": sc[idx],
        "class_ids": cls[idx],
        "anchors": anchors[idx].astype(np.int32),
        "coefs": coefs[idx].reshape(len(idx), nm),
        "nonfinite": nonfinite,
    }
