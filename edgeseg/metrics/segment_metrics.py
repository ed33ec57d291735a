"""Accumulates per-image box and mask matches and reports Ultralytics-style segmentation metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from .ap import MODES, APResult, ap_per_class
from .iou import box_iou, flatten_masks, mask_iou
from .matching import IOU_THRESHOLDS, match_predictions, match_predictions_greedy

COCO_MAX_DETS = 100

Names = Union[Mapping[int, str], Sequence[str], None]


@dataclass
class MetricResults:
    """Box or mask results: class means plus the per-class detail in ``per_class``."""

    precision: float
    recall: float
    map50: float
    map50_95: float
    per_class: APResult

    @property
    def fitness(self) -> float:
        return 0.1 * self.map50 + 0.9 * self.map50_95

    @property
    def ap_by_class(self) -> dict:
        """{class id: AP50-95} for every class that has ground truth."""
        return {int(c): float(a) for c, a in zip(self.per_class.classes, self.per_class.ap50_95)}

    @property
    def ap50_by_class(self) -> dict:
        return {int(c): float(a) for c, a in zip(self.per_class.classes, self.per_class.ap50)}

    @classmethod
    def from_ap(cls, res: APResult) -> MetricResults:
        return cls(res.mp, res.mr, res.map50, res.map50_95, res)


@dataclass
class SegmentResults:
    box: MetricResults
    mask: MetricResults
    fitness: float  # box fitness + mask fitness, as Ultralytics' SegmentMetrics

    def as_dict(self) -> dict:
        """Flat dict with Ultralytics' result keys."""
        out = {}
        for tag, m in (("B", self.box), ("M", self.mask)):
            out[f"metrics/precision({tag})"] = m.precision
            out[f"metrics/recall({tag})"] = m.recall
            out[f"metrics/mAP50({tag})"] = m.map50
            out[f"metrics/mAP50-95({tag})"] = m.map50_95
        out["fitness"] = self.fitness
        return out


def _classes(values, name: str) -> np.ndarray:
    arr = np.asarray(values).reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_float = arr.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise ValueError(f"{name} must hold integer class ids")
    return arr.astype(np.int64)


def _boxes(values, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values if values is not None else np.zeros((0, 4)), dtype=np.float64)
    if arr.size == 0 and n == 0:
        return np.zeros((0, 4))
    if arr.shape != (n, 4):
        raise ValueError(f"{name} must have shape [{n}, 4], got {arr.shape}")
    return arr


def _masks(values, n: int, name: str) -> np.ndarray | None:
    if values is None:
        if n:
            raise ValueError(f"{name} is None but there are {n} instances")
        return None
    flat = flatten_masks(values, name)
    if flat.shape[0] != n:
        raise ValueError(f"{name} has {flat.shape[0]} masks for {n} instances")
    return flat


class SegmentMetrics:
    """Box + mask metrics over a dataset, fed one image at a time.

    ``mode="ultralytics"`` (default, used by ``edgeseg val``) reproduces ``yolo val``: Ultralytics'
    matching and AP integration. ``mode="coco"`` reproduces pycocotools' COCOeval for the "all"
    area range and maxDets=100 (greedy score-ordered matching, searchsorted AP, at most 100
    detections per image and class), without crowd annotations.

    Masks of one image must share a resolution (Ultralytics evaluates at the mask-head resolution,
    e.g. 160x160 for 640 input); different images may use different resolutions.
    """

    def __init__(self, names: Names = None, iou_thresholds=IOU_THRESHOLDS, mode: str = "ultralytics"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.names = names
        self.iou_thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
        self.mode = mode
        self.reset()

    def reset(self) -> None:
        self._tp_box: list[np.ndarray] = []
        self._tp_mask: list[np.ndarray] = []
        self._conf: list[np.ndarray] = []
        self._pred_cls: list[np.ndarray] = []
        self._target_cls: list[np.ndarray] = []
        self._images_per_class: dict = {}
        self.n_images = 0

    def update(self, pred_boxes, pred_scores, pred_classes, pred_masks, gt_boxes, gt_classes, gt_masks) -> None:
        """Add one image: predictions (xyxy boxes, scores, classes, masks) and its ground truth.

        Masks are ``[n, H, W]`` (or ``[n, H*W]``) bool/0-1 arrays; ``None`` is accepted for an empty side.
        """
        scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(scores)):
            raise ValueError("pred_scores contains NaN or infinite values")
        n_pred = scores.size
        p_cls = _classes(pred_classes, "pred_classes")
        g_cls = _classes(gt_classes, "gt_classes")
        if p_cls.size != n_pred:
            raise ValueError(f"pred_classes has {p_cls.size} values for {n_pred} scores")
        n_gt = g_cls.size
        p_box = _boxes(pred_boxes, n_pred, "pred_boxes")
        g_box = _boxes(gt_boxes, n_gt, "gt_boxes")
        p_mask = _masks(pred_masks, n_pred, "pred_masks")
        g_mask = _masks(gt_masks, n_gt, "gt_masks")
        if p_mask is not None and g_mask is not None and p_mask.shape[1] != g_mask.shape[1]:
            raise ValueError(
                f"pred_masks and gt_masks must share a resolution, got {p_mask.shape[1]} and {g_mask.shape[1]} pixels"
            )

        order = np.argsort(-scores, kind="mergesort")  # NMS output order; a no-op for sorted input
        if self.mode == "coco":
            rank = np.zeros(n_pred, dtype=np.int64)
            for c in np.unique(p_cls):
                idx = order[p_cls[order] == c]
                rank[idx] = np.arange(idx.size)
            order = order[rank[order] < COCO_MAX_DETS]
        scores, p_cls, p_box = scores[order], p_cls[order], p_box[order]
        p_mask = p_mask[order] if p_mask is not None else None

        thr = self.iou_thresholds
        if n_pred and n_gt:
            # ultralytics: its float32 arithmetic and eps; coco: pycocotools' float64 inter / union
            kw = {"eps": 0.0, "dtype": np.float64} if self.mode == "coco" else {"dtype": np.float32}
            iou_b = box_iou(g_box, p_box, **kw)
            iou_m = mask_iou(g_mask, p_mask, **kw)
            if self.mode == "coco":
                tp_b = match_predictions_greedy(p_cls, g_cls, iou_b, scores, thr)
                tp_m = match_predictions_greedy(p_cls, g_cls, iou_m, scores, thr)
            else:
                tp_b = match_predictions(p_cls, g_cls, iou_b, thr)
                tp_m = match_predictions(p_cls, g_cls, iou_m, thr)
        else:
            tp_b = tp_m = np.zeros((scores.size, thr.size), dtype=bool)

        self._tp_box.append(tp_b)
        self._tp_mask.append(tp_m)
        self._conf.append(scores)
        self._pred_cls.append(p_cls)
        self._target_cls.append(g_cls)
        for c in np.unique(g_cls):
            self._images_per_class[int(c)] = self._images_per_class.get(int(c), 0) + 1
        self.n_images += 1

    def compute(self) -> SegmentResults:
        nt = self.iou_thresholds.size
        tp_b = np.concatenate(self._tp_box) if self._tp_box else np.zeros((0, nt), dtype=bool)
        tp_m = np.concatenate(self._tp_mask) if self._tp_mask else np.zeros((0, nt), dtype=bool)
        conf = np.concatenate(self._conf) if self._conf else np.zeros(0)
        p_cls = np.concatenate(self._pred_cls) if self._pred_cls else np.zeros(0, dtype=np.int64)
        t_cls = np.concatenate(self._target_cls) if self._target_cls else np.zeros(0, dtype=np.int64)
        box = MetricResults.from_ap(ap_per_class(tp_b, conf, p_cls, t_cls, mode=self.mode))
        mask = MetricResults.from_ap(ap_per_class(tp_m, conf, p_cls, t_cls, mode=self.mode))
        return SegmentResults(box=box, mask=mask, fitness=box.fitness + mask.fitness)

    def _name(self, c: int) -> str:
        if self.names is None:
            return str(c)
        try:
            return str(self.names[c])
        except (KeyError, IndexError):
            return str(c)

    def summary(self, results: SegmentResults | None = None, per_class: bool = True) -> str:
        """Text table in the layout of ``yolo val``: one 'all' row, then one row per class."""
        r = results if results is not None else self.compute()
        head = ("Class", "Images", "Instances", "Box(P", "R", "mAP50", "mAP50-95)", "Mask(P", "R", "mAP50", "mAP50-95)")
        rows = [
            (
                "all",
                self.n_images,
                int(r.box.per_class.n_targets.sum()),
                r.box.precision,
                r.box.recall,
                r.box.map50,
                r.box.map50_95,
                r.mask.precision,
                r.mask.recall,
                r.mask.map50,
                r.mask.map50_95,
            )
        ]
        if per_class:
            b, m = r.box.per_class, r.mask.per_class
            for i, c in enumerate(b.classes):
                rows.append(
                    (
                        self._name(int(c)),
                        self._images_per_class.get(int(c), 0),
                        int(b.n_targets[i]),
                        b.precision[i],
                        b.recall[i],
                        b.ap50[i],
                        b.ap50_95[i],
                        m.precision[i],
                        m.recall[i],
                        m.ap50[i],
                        m.ap50_95[i],
                    )
                )
        width = max([len(head[0])] + [len(str(row[0])) for row in rows]) + 2
        lines = [f"{head[0]:>{width}}" + "".join(f"{h:>11}" for h in head[1:])]
        for row in rows:
            lines.append(f"{row[0]:>{width}}{row[1]:>11}{row[2]:>11}" + "".join(f"{v:>11.3f}" for v in row[3:]))
        return "\n".join(lines)
