"""Tracker evaluation on the synthetic clips with identities (edgeseg.synthetic.tracks): the detector inputs, the
trackers compared, and HOTA / CLEAR MOT / IDF1 computed by TrackEval.

Shared by ``tests/test_tracking_eval.py`` and ``benchmarks/tracking.py``.

Inputs (one :class:`edgeseg.detections.Detections` per frame, built before any tracker runs):

- :func:`noisy_detections`: the ground truth made into a detector's output, seeded: boxes jittered, scores that
  drop with occlusion (so ByteTrack's low-score stage has work), random misses (more for occluded objects) and
  short-lived false positives; true classes; the ground truth's visible masks ride along.
- :func:`model_detections`: the built-in demo model (ONNX Runtime) at a low confidence threshold.

Trackers (:func:`run_tracker`): ``ours`` (:class:`edgeseg.tracking.Tracker`), ``ours+mask`` (box and mask IoU
blended), and, when the ``trackers`` package is installed, its ``bytetrack`` (with our thresholds, and with its
defaults) and ``ocsort`` (our thresholds). Our thresholds are passed where a tracker has the same setting; every
one keeps a lost track 30 frames at 30 fps. Only the ``update`` call is timed, on prebuilt inputs of the
tracker's own type (ours returns its rows as edgeseg Detections, masks included when the input has them; theirs
get boxes, scores and classes).

Metrics (:func:`evaluate`): TrackEval's HOTA, CLEAR and Identity classes fed in memory, the way its MOTChallenge
2D-box dataset feeds them: class-agnostic, similarity = box IoU, tracker boxes that match (IoU >= 0.5) an
``ignore`` object (fewer than 10 % of its pixels visible) removed first, ids relabelled per sequence.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edgeseg.detections import Detections
from edgeseg.ops.masks import MaskSet
from edgeseg.synthetic.shapes import CLASS_NAMES
from edgeseg.synthetic.tracks import TrackingClip

NAMES = dict(enumerate(CLASS_NAMES))

# Our tracker's thresholds (its defaults, spelled out) and the same ones in the other trackers' terms.
OURS = {
    "high_thresh": 0.5,
    "low_thresh": 0.1,
    "new_track_thresh": 0.6,
    "match_thresh": 0.2,
    "low_match_thresh": 0.3,
    "tentative_match_thresh": 0.3,
    "min_hits": 2,
    "lost_frames": 30,
}
MASK_WEIGHT = 0.5
BYTETRACK = {  # trackers.ByteTrackTracker: one IoU threshold for both stages
    "lost_track_buffer": 30,
    "frame_rate": 30.0,
    "track_activation_threshold": 0.6,
    "minimum_consecutive_frames": 2,
    "minimum_iou_threshold": 0.2,
    "high_conf_det_threshold": 0.5,
}
BYTETRACK_DEFAULTS = {"lost_track_buffer": 30, "frame_rate": 30.0}
OCSORT = {
    "lost_track_buffer": 30,
    "frame_rate": 30.0,
    "minimum_consecutive_frames": 2,
    "minimum_iou_threshold": 0.2,
    "high_conf_det_threshold": 0.5,
}
TRACKERS = ("ours", "ours+mask", "ours-run", "bytetrack", "bytetrack-defaults", "ocsort")
OURS_VARIANTS = {  # name -> settings on top of OURS
    "ours": {},
    "ours+mask": {"mask_weight": MASK_WEIGHT},
    "ours-run": {"mask_weight": MASK_WEIGHT, "class_consistent": False},  # edgeseg run --track's defaults
}


# -- inputs --------------------------------------------------------------------------------------------------
def noisy_detections(
    clip: TrackingClip,
    seed: int = 0,
    jitter: float = 0.03,
    miss: float = 0.05,
    miss_occluded: float = 0.3,
    false_positives: float = 0.1,
    masks: bool = True,
) -> list[Detections]:
    """The clip's ground truth as a noisy detector would report it, one Detections per frame (seeded); the
    classes are the true ones (class errors are the model input's business).

    - score: a steady quality per object, U(0.75, 0.95), times a factor falling from 1 (visible fraction >= 0.7)
      to 0.45 (0.1 visible), plus N(0, 0.05), clipped to [0.1, 0.99]: occluded objects fall to ByteTrack's
      second stage, as the demo model's scores do;
    - box: each side moved by N(0, max(1, ``jitter`` x box size)) px (about 2 px for a 60 px object);
    - misses: probability ``miss``, ``miss_occluded`` under 40 % visible;
    - false positives: ``false_positives`` new ones per frame (Poisson), each lasting 1-4 frames at a random
      place, 20-70 px, score U(0.1, 0.5) (one in ten U(0.5, 0.8): some start tracks), a filled-box mask.

    Masks are the ground truth's visible masks of the rows kept.
    """
    rng = np.random.default_rng((seed, 7))
    w, h = clip.size
    quality = {o.id: float(rng.uniform(0.75, 0.95)) for o in clip.objects}
    clutter: list[list[Any]] = []  # [box, score, class, frames left]
    out = []
    for truth in clip.gt:
        n = len(truth)
        vis = truth.visible.astype(np.float64)
        keep = rng.random(n) >= np.where(vis < 0.4, miss_occluded, miss)
        factor = 0.45 + 0.55 * np.clip((vis - 0.1) / 0.6, 0.0, 1.0)
        base = np.array([quality[int(i)] for i in truth.ids])
        score = np.clip(base * factor + rng.normal(0, 0.05, n), 0.1, 0.99)
        size = np.maximum(truth.xyxy[:, 2:] - truth.xyxy[:, :2], 1.0)
        sigma = np.maximum(1.0, jitter * np.concatenate([size, size], axis=1))  # x0, y0, x1, y1
        boxes = truth.xyxy + rng.normal(0, 1, (n, 4)) * sigma
        for _ in range(int(rng.poisson(false_positives))):
            bw, bh = rng.uniform(20, 70, 2)
            x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            fp_score = rng.uniform(0.5, 0.8) if rng.random() < 0.1 else rng.uniform(0.1, 0.5)
            box = np.array([x0, y0, x0 + bw, y0 + bh])
            clutter.append([box, fp_score, int(rng.integers(len(CLASS_NAMES))), int(rng.integers(1, 5))])
        fp_boxes = np.array([c[0] + rng.normal(0, 1.5, 4) for c in clutter]).reshape(-1, 4)
        fp_scores = np.array([c[1] for c in clutter])
        fp_classes = np.array([c[2] for c in clutter], np.int32)
        for c in clutter:
            c[3] -= 1
        clutter = [c for c in clutter if c[3] > 0]
        xyxy = np.concatenate([boxes[keep], fp_boxes])
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, w)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, h)
        mask_set = None
        if masks:
            mask_set = _join_masks(truth.masks.select(np.flatnonzero(keep)), fp_boxes, (h, w))
        out.append(
            Detections(
                xyxy=xyxy,
                confidence=np.concatenate([score[keep], fp_scores]),
                class_id=np.concatenate([truth.class_id[keep], fp_classes]),
                names=NAMES,
                masks=mask_set,
                image_shape=(h, w),
            )
        )
    return out


def _join_masks(masks: MaskSet, boxes: NDArray[np.float64], shape: tuple[int, int]) -> MaskSet:
    """``masks`` followed by a filled-rectangle mask for each of ``boxes``."""
    h, w = shape
    rects = np.round(boxes).astype(np.int64).reshape(-1, 4)
    rects[:, [0, 2]] = np.clip(rects[:, [0, 2]], 0, w)
    rects[:, [1, 3]] = np.clip(rects[:, [1, 3]], 0, h)
    rects[:, 2:] = np.maximum(rects[:, 2:], rects[:, :2])
    sizes = (rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])
    all_rects = np.concatenate([masks.rects.astype(np.int64), rects])
    data = np.concatenate([masks.data, np.ones(int(sizes.sum()), np.uint8)])
    offsets = np.concatenate([masks.offsets, masks.offsets[-1] + np.cumsum(sizes)])
    return MaskSet(all_rects, data, offsets, shape)


def model_detections(clip: TrackingClip, conf: float = 0.1, agnostic_nms: bool = False) -> list[Detections]:
    """The built-in demo model's detections on every frame (needs onnxruntime and cv2); ``agnostic_nms``: NMS
    across classes, as ``edgeseg run --track`` runs the detector."""
    from edgeseg.assets import demo_model_path
    from edgeseg.segmenter import Segmenter

    seg = Segmenter(demo_model_path(), conf=conf, agnostic_nms=agnostic_nms)
    return [seg(frame) for frame in clip.frames()]


# -- trackers ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """A tracker's output on one clip: per frame the track ids (int64 [k]) and boxes (float32 [k, 4]) of the rows
    it reports as tracked, and the microseconds its ``update`` took."""

    tracker: str
    ids: list[NDArray[np.int64]]
    boxes: list[NDArray[np.float32]]
    update_us: NDArray[np.float64]

    @property
    def median_us(self) -> float:
        return float(np.median(self.update_us))


def available_trackers() -> tuple[str, ...]:
    """The names in TRACKERS whose packages import here."""
    try:
        import edgeseg.tracking  # noqa: F401
    except ImportError:
        return ()
    try:
        import trackers  # noqa: F401
    except ImportError:
        return tuple(OURS_VARIANTS)
    return TRACKERS


def to_supervision(detections: Sequence[Detections]) -> list[Any]:
    """supervision.Detections (boxes, scores, classes; no masks: the trackers compared use boxes) per frame."""
    import supervision as sv

    return [
        sv.Detections(xyxy=d.xyxy.astype(np.float32), confidence=d.confidence, class_id=d.class_id.astype(int))
        for d in detections
    ]


def run_tracker(name: str, detections: Sequence[Detections], prebuilt: Sequence[Any] | None = None) -> Run:
    """Run tracker ``name`` (one of TRACKERS) over a clip's detections; ``prebuilt``: the supervision inputs when
    the caller has them (:func:`to_supervision`), for the ``trackers`` ones."""
    if name in OURS_VARIANTS:
        from edgeseg.tracking import Tracker

        tracker = Tracker(**{**OURS, **OURS_VARIANTS[name]})
        ids, boxes, times = [], [], []
        for t, d in enumerate(detections):
            t0 = time.perf_counter_ns()
            result = tracker.update(d, frame_index=t)
            times.append(time.perf_counter_ns() - t0)
            if result.tracker_id is None:
                raise ValueError(f"{name}: update returned rows without tracker_id in frame {t}")
            ids.append(result.tracker_id.astype(np.int64))
            boxes.append(result.xyxy.astype(np.float32))
        return Run(name, ids, boxes, np.array(times, np.float64) / 1e3)
    import trackers

    options = {"bytetrack": BYTETRACK, "bytetrack-defaults": BYTETRACK_DEFAULTS, "ocsort": OCSORT}
    if name not in options:
        raise ValueError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKERS)}")
    cls = trackers.OCSORTTracker if name == "ocsort" else trackers.ByteTrackTracker
    tracker = cls(**options[name])
    inputs = prebuilt if prebuilt is not None else to_supervision(detections)
    ids, boxes, times = [], [], []
    for sv_det in inputs:
        t0 = time.perf_counter_ns()
        result = tracker.update(sv_det)
        times.append(time.perf_counter_ns() - t0)
        tid = np.asarray(result.tracker_id, np.int64).reshape(-1)
        tracked = tid >= 0  # -1: not (yet) a confirmed track
        ids.append(tid[tracked])
        boxes.append(np.asarray(result.xyxy, np.float32).reshape(-1, 4)[tracked])
    return Run(name, ids, boxes, np.array(times, np.float64) / 1e3)


# -- metrics -------------------------------------------------------------------------------------------------
def box_iou(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """IoU [len(a), len(b)] of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 1e-9)


def sequence_data(
    clip: TrackingClip, ids: Sequence[NDArray[np.int64]], boxes: Sequence[NDArray[np.float32]], ignore: bool = True
) -> dict[str, Any]:
    """TrackEval's per-sequence input (what its datasets' ``get_preprocessed_seq_data`` returns) for the clip's
    first ``len(ids)`` frames; ``ignore``: remove tracker boxes matched to the ground truth's ignore objects."""
    from scipy.optimize import linear_sum_assignment

    if len(ids) != len(boxes) or len(ids) > clip.n_frames:
        raise ValueError(f"need the same number of id and box frames, at most {clip.n_frames}")
    gt_ids, tr_ids, sims = [], [], []
    for t, (tid, tbox) in enumerate(zip(ids, boxes)):
        truth = clip.gt[t]
        tid = np.asarray(tid, np.int64).reshape(-1)
        tbox = np.asarray(tbox, np.float64).reshape(-1, 4)
        if len(np.unique(tid)) != len(tid):
            raise ValueError(f"frame {t}: a track id is reported twice: {tid.tolist()}")
        if ignore and len(truth.ignore_ids) and len(tid):
            score = box_iou(truth.ignore_xyxy, tbox)
            score[score < 0.5 - np.finfo(float).eps] = 0
            rows, cols = linear_sum_assignment(-score)
            drop = cols[score[rows, cols] > 0]
            keep = np.setdiff1d(np.arange(len(tid)), drop)
            tid, tbox = tid[keep], tbox[keep]
        gt_ids.append(truth.ids)
        tr_ids.append(tid)
        sims.append(box_iou(truth.xyxy, tbox))
    gt_unique = np.unique(np.concatenate(gt_ids)) if gt_ids else np.zeros(0, np.int64)
    tr_unique = np.unique(np.concatenate(tr_ids)) if tr_ids else np.zeros(0, np.int64)
    return {
        "num_timesteps": len(gt_ids),
        "num_gt_ids": len(gt_unique),
        "num_tracker_ids": len(tr_unique),
        "num_gt_dets": int(sum(len(g) for g in gt_ids)),
        "num_tracker_dets": int(sum(len(r) for r in tr_ids)),
        "gt_ids": [np.searchsorted(gt_unique, g).astype(int) for g in gt_ids],
        "tracker_ids": [np.searchsorted(tr_unique, r).astype(int) for r in tr_ids],
        "similarity_scores": sims,
    }


def evaluate(clip: TrackingClip, run: Run, ignore: bool = True) -> dict[str, float]:
    """HOTA, DetA, AssA, MOTA, IDF1 (fractions), IDSW, FP, FN (counts) of ``run`` on ``clip`` (TrackEval)."""
    return evaluate_sequences([(clip, run)], ignore)


def evaluate_sequences(pairs: Sequence[tuple[TrackingClip, Run]], ignore: bool = True) -> dict[str, float]:
    """:func:`evaluate` over several (clip, run) pairs combined as TrackEval combines sequences (counts summed,
    AssA weighted by true positives): one score for a set of scenarios."""
    from trackeval.metrics import CLEAR, HOTA, Identity

    quiet = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    metrics = {"HOTA": HOTA(), "CLEAR": CLEAR(quiet), "Identity": Identity(quiet)}
    per_seq: dict[str, dict[str, Any]] = {k: {} for k in metrics}
    for k, (clip, run) in enumerate(pairs):
        data = sequence_data(clip, run.ids, run.boxes, ignore)
        for name, metric in metrics.items():
            per_seq[name][f"{clip.name}-{k}"] = metric.eval_sequence(data)
    res = {
        name: (next(iter(per_seq[name].values())) if len(pairs) == 1 else metric.combine_sequences(per_seq[name]))
        for name, metric in metrics.items()
    }
    hota, clear, ident = res["HOTA"], res["CLEAR"], res["Identity"]
    return {
        "HOTA": float(np.mean(hota["HOTA"])),
        "DetA": float(np.mean(hota["DetA"])),
        "AssA": float(np.mean(hota["AssA"])),
        "MOTA": float(clear["MOTA"]),
        "IDF1": float(ident["IDF1"]),
        "IDSW": int(clear["IDSW"]),
        "FP": int(clear["CLR_FP"]),
        "FN": int(clear["CLR_FN"]),
    }


def true_crossings(clip: TrackingClip, start: Sequence[float], end: Sequence[float]) -> tuple[int, int]:
    """(in, out) crossings of the directed segment ``start -> end`` by the objects' true centres, counted while an
    object is in the frame's ground truth and its centre is within the segment's extent; ``in`` is from the left
    of the line to its right as seen on the image (edgeseg.zones.LineZone's convention)."""
    s, e = np.asarray(start, np.float64), np.asarray(end, np.float64)
    d = e - s
    length = float(np.hypot(d[0], d[1]))
    crossings = [0, 0]
    for k, obj in enumerate(clip.objects):
        side = 0
        for t in range(clip.n_frames):
            if obj.id not in clip.gt[t].ids:
                continue
            p = clip.centres[k, t]
            along = float((p - s) @ d) / length
            if not 0.0 <= along <= length:
                continue
            new = 1 if d[0] * (p[1] - s[1]) - d[1] * (p[0] - s[0]) > 0 else -1
            if side and new != side:
                crossings[0 if new == 1 else 1] += 1
            side = new
    return crossings[0], crossings[1]


def truth_run(clip: TrackingClip, n_frames: int | None = None) -> Run:
    """The ground truth as a tracker's output (ids = object ids): a perfect score."""
    gt = clip.gt[: n_frames or clip.n_frames]
    return Run("truth", [g.ids for g in gt], [g.xyxy for g in gt], np.zeros(len(gt)))


def metrics_available() -> bool:
    try:
        import trackeval.metrics  # noqa: F401
    except ImportError:
        return False
    return True
