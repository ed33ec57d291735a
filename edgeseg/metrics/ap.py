"""Average precision per class from accumulated true-positive flags.

Two ways of turning a precision/recall curve into AP, chosen with ``mode``:

* ``"ultralytics"`` (what ``edgeseg val`` reports, so its numbers match ``yolo val``): add the
  sentinels (recall 0, precision 1) and (recall 1, precision 0), take the precision envelope, sample
  it with linear interpolation (``np.interp``) at 101 recall points ``linspace(0, 1, 101)`` and
  integrate with the trapezoidal rule.
* ``"coco"``: pycocotools' ``COCOeval.accumulate``: precision envelope, then for each of the 101
  recall thresholds the envelope value at the first detection whose recall reaches it
  (``np.searchsorted(recall, thresholds, side="left")``), 0 where recall never reaches it, and the
  plain mean of the 101 values.

Precision/recall/F1 are reported at one confidence for all classes: the maximum of the class-mean
F1 curve smoothed with a box filter of 10% width, as Ultralytics does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("ultralytics", "coco")
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
CONF_GRID = np.linspace(0.0, 1.0, 1000)


def smooth(y: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Box-filter ``y`` with an odd window of about ``2 * fraction * len(y)`` samples, edges padded."""
    y = np.asarray(y, dtype=np.float64)
    n = round(len(y) * fraction * 2) // 2 + 1
    pad = n // 2
    padded = np.concatenate((np.full(pad, y[0]), y, np.full(pad, y[-1])))
    return np.convolve(padded, np.ones(n) / n, mode="valid")


def _envelope(precision: np.ndarray) -> np.ndarray:
    """Make precision non-increasing in recall: each value becomes the max of itself and all later ones."""
    return np.maximum.accumulate(precision[::-1])[::-1]


def compute_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Ultralytics AP: envelope with sentinels, np.interp at 101 recall points, trapezoidal integral."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = _envelope(np.concatenate(([1.0], precision, [0.0])))
    sampled = np.interp(RECALL_POINTS, mrec, mpre)
    return float(np.trapezoid(sampled, RECALL_POINTS))


def coco_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """pycocotools AP: envelope, precision at ``searchsorted(recall, t, 'left')`` per threshold, mean."""
    recall = np.asarray(recall, dtype=np.float64)
    if recall.size == 0:
        return 0.0
    pr = _envelope(np.asarray(precision, dtype=np.float64))
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.zeros(RECALL_POINTS.size)
    valid = idx < recall.size
    sampled[valid] = pr[idx[valid]]
    return float(sampled.mean())


@dataclass
class APResult:
    """Per-class results; rows follow ``classes`` (the classes that have ground truth)."""

    classes: np.ndarray  # [nc] int
    n_targets: np.ndarray  # [nc] ground-truth instances per class
    ap: np.ndarray  # [nc, n_thresholds]
    precision: np.ndarray  # [nc] at the max-F1 confidence
    recall: np.ndarray  # [nc]
    f1: np.ndarray  # [nc]
    conf_at_max_f1: float

    @property
    def mp(self) -> float:
        return float(self.precision.mean()) if self.precision.size else 0.0

    @property
    def mr(self) -> float:
        return float(self.recall.mean()) if self.recall.size else 0.0

    @property
    def ap50(self) -> np.ndarray:
        return self.ap[:, 0] if self.ap.size else np.zeros(0)

    @property
    def ap50_95(self) -> np.ndarray:
        return self.ap.mean(1) if self.ap.size else np.zeros(0)

    @property
    def map50(self) -> float:
        return float(self.ap[:, 0].mean()) if self.ap.size else 0.0

    @property
    def map50_95(self) -> float:
        return float(self.ap.mean()) if self.ap.size else 0.0


def _check_inputs(tp, conf, pred_cls, target_cls):
    tp = np.asarray(tp)
    if tp.ndim == 1:
        tp = tp[:, None]
    if tp.ndim != 2:
        raise ValueError(f"tp must have shape [n_pred, n_thresholds], got {tp.shape}")
    conf = np.asarray(conf, dtype=np.float64).reshape(-1)
    pred_cls = np.asarray(pred_cls).reshape(-1)
    target_cls = np.asarray(target_cls).reshape(-1)
    if not (tp.shape[0] == conf.size == pred_cls.size):
        raise ValueError(
            f"tp, conf and pred_cls must have one row per prediction, got {tp.shape[0]}, {conf.size}, {pred_cls.size}"
        )
    if not np.all(np.isfinite(conf)):
        raise ValueError("conf contains NaN or infinite scores")
    return tp.astype(np.float64), conf, pred_cls, target_cls


def ap_per_class(tp, conf, pred_cls, target_cls, mode: str = "ultralytics", eps: float = 1e-16) -> APResult:
    """AP per class at every IoU threshold column of ``tp``.

    Args:
        tp: bool ``[n_pred, n_thresholds]``, True where a prediction is a true positive.
        conf: ``[n_pred]`` scores. pred_cls: ``[n_pred]`` classes. target_cls: ``[n_gt]`` classes of
            all ground-truth instances. Predictions of classes without ground truth are ignored
            (both Ultralytics and pycocotools leave such classes out of the mean).
        mode: ``"ultralytics"`` or ``"coco"`` (see the module docstring).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    tp, conf, pred_cls, target_cls = _check_inputs(tp, conf, pred_cls, target_cls)
    order = np.argsort(-conf) if mode == "ultralytics" else np.argsort(-conf, kind="mergesort")
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order]

    classes, n_targets = np.unique(target_cls, return_counts=True)
    nc, nt = classes.size, tp.shape[1]
    ap = np.zeros((nc, nt))
    p_curve = np.zeros((nc, CONF_GRID.size))
    r_curve = np.zeros((nc, CONF_GRID.size))
    for ci, c in enumerate(classes):
        sel = pred_cls == c
        n_gt = n_targets[ci]
        if not sel.any():
            continue
        tpc = tp[sel].cumsum(0)
        fpc = (1.0 - tp[sel]).cumsum(0)
        recall = tpc / (n_gt + eps)
        precision = tpc / (tpc + fpc)
        r_curve[ci] = np.interp(-CONF_GRID, -conf[sel], recall[:, 0], left=0)
        p_curve[ci] = np.interp(-CONF_GRID, -conf[sel], precision[:, 0], left=1)
        if mode == "coco":  # pycocotools' exact arithmetic: no eps on recall, spacing(1) on precision
            recall = tpc / n_gt
            precision = tpc / (tpc + fpc + np.spacing(1))
        integrate = compute_ap if mode == "ultralytics" else coco_ap
        for j in range(nt):
            ap[ci, j] = integrate(recall[:, j], precision[:, j])

    if nc == 0:
        empty = np.zeros(0)
        return APResult(classes.astype(int), n_targets, ap, empty, empty, empty, 0.0)
    f1_curve = 2 * p_curve * r_curve / (p_curve + r_curve + eps)
    best = int(smooth(f1_curve.mean(0), 0.1).argmax())
    return APResult(
        classes=classes.astype(int),
        n_targets=n_targets,
        ap=ap,
        precision=p_curve[:, best],
        recall=r_curve[:, best],
        f1=f1_curve[:, best],
        conf_at_max_f1=float(CONF_GRID[best]),
    )
