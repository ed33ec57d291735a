"""Deciding which predictions are true positives, at several IoU thresholds.

Two matchers, both returning ``correct`` of shape ``[n_pred, n_thresholds]``:

* :func:`match_predictions` -- Ultralytics' validator rule (its non-scipy path): at each threshold
  take all same-class (gt, pred) pairs with IoU >= t, order them by IoU (highest first), keep the
  first pair of every prediction, then the first remaining pair of every ground truth. After the
  first de-duplication the pairs are ordered by prediction index, so a ground truth claimed by
  several predictions goes to the one with the lowest index (with NMS output sorted by score: the
  most confident), exactly as Ultralytics does.
* :func:`match_predictions_greedy` -- pycocotools' ``COCOeval.evaluateImg`` rule: predictions in
  descending score order each take the still-unmatched ground truth with the highest IoU >= t.

``iou`` is laid out ``[n_true, n_pred]`` as in Ultralytics (``box_iou(gt_boxes, pred_boxes)``).
A float32 ``iou`` is compared with float32 thresholds, as Ultralytics' float32 tensors are
(0.55 becomes float32(0.55)); anything else is compared in float64.
"""

from __future__ import annotations

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def _check(pred_classes, true_classes, iou, iou_thresholds):
    pred_classes = np.asarray(pred_classes).reshape(-1)
    true_classes = np.asarray(true_classes).reshape(-1)
    iou = np.asarray(iou)
    iou = iou.astype(np.float32 if iou.dtype == np.float32 else np.float64, copy=False)
    if iou.ndim == 1 and iou.size == 0:
        iou = iou.reshape(true_classes.size, pred_classes.size)
    if iou.shape != (true_classes.size, pred_classes.size):
        raise ValueError(
            f"iou must have shape [n_true, n_pred] = [{true_classes.size}, {pred_classes.size}], got {iou.shape}"
        )
    thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    if thresholds.size == 0 or np.any((thresholds <= 0) | (thresholds > 1)):
        raise ValueError("iou_thresholds must be a non-empty list of values in (0, 1]")
    thresholds = thresholds.astype(iou.dtype)
    return pred_classes, true_classes, iou, thresholds


def match_predictions(pred_classes, true_classes, iou, iou_thresholds=IOU_THRESHOLDS) -> np.ndarray:
    """Ultralytics-compatible matching; returns bool ``correct[n_pred, n_thresholds]``."""
    pred_classes, true_classes, iou, thresholds = _check(pred_classes, true_classes, iou, iou_thresholds)
    correct = np.zeros((pred_classes.size, thresholds.size), dtype=bool)
    if pred_classes.size == 0 or true_classes.size == 0:
        return correct
    iou = np.where(true_classes[:, None] == pred_classes[None, :], iou, iou.dtype.type(0))  # other classes: 0
    for k, t in enumerate(thresholds):
        pairs = np.stack(np.nonzero(iou >= t), axis=1)  # rows: (gt, pred)
        if pairs.shape[0] == 0:
            continue
        if pairs.shape[0] > 1:
            pairs = pairs[iou[pairs[:, 0], pairs[:, 1]].argsort()[::-1]]
            pairs = pairs[np.unique(pairs[:, 1], return_index=True)[1]]
            pairs = pairs[np.unique(pairs[:, 0], return_index=True)[1]]
        correct[pairs[:, 1], k] = True
    return correct


def match_predictions_greedy(pred_classes, true_classes, iou, pred_scores, iou_thresholds=IOU_THRESHOLDS) -> np.ndarray:
    """pycocotools-compatible greedy matching; returns bool ``correct[n_pred, n_thresholds]``.

    Predictions are visited by descending score (stable for ties); each takes the unmatched
    same-class ground truth with the highest IoU >= t (on equal IoU the later ground truth, like
    pycocotools). All ground truths are treated as non-crowd and not ignored.
    """
    pred_classes, true_classes, iou, thresholds = _check(pred_classes, true_classes, iou, iou_thresholds)
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    if scores.size != pred_classes.size:
        raise ValueError(f"pred_scores has {scores.size} values for {pred_classes.size} predictions")
    correct = np.zeros((pred_classes.size, thresholds.size), dtype=bool)
    if pred_classes.size == 0 or true_classes.size == 0:
        return correct
    same = true_classes[:, None] == pred_classes[None, :]
    order = np.argsort(-scores, kind="mergesort")
    n_true = true_classes.size
    for k, t in enumerate(thresholds):
        floor = min(float(t), 1 - 1e-10)
        taken = np.zeros(n_true, dtype=bool)
        for d in order:
            ok = same[:, d] & ~taken & (iou[:, d] >= floor)
            if not ok.any():
                continue
            cand = np.where(ok, iou[:, d], -1.0)
            g = n_true - 1 - int(np.argmax(cand[::-1]))  # last index among the maxima
            taken[g] = True
            correct[d, k] = True
    return correct
