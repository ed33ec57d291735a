"""Validation metrics for instance segmentation (numpy only, usable without torch).

``SegmentMetrics`` (default ``mode="ultralytics"``) reproduces the numbers ``yolo val`` reports;
``mode="coco"`` reproduces pycocotools' COCOeval (area "all", maxDets 100, no crowd).
"""

from .ap import APResult, ap_per_class, coco_ap, compute_ap, smooth
from .iou import box_iou, flatten_masks, mask_iou
from .matching import IOU_THRESHOLDS, match_predictions, match_predictions_greedy
from .segment_metrics import MetricResults, SegmentMetrics, SegmentResults

__all__ = [
    "IOU_THRESHOLDS",
    "APResult",
    "MetricResults",
    "SegmentMetrics",
    "SegmentResults",
    "ap_per_class",
    "box_iou",
    "coco_ap",
    "compute_ap",
    "flatten_masks",
    "mask_iou",
    "match_predictions",
    "match_predictions_greedy",
    "smooth",
]
