"""Multi-object tracking by detection (ByteTrack-style), native.

:class:`TrackerCore` keeps the tracks; each :meth:`TrackerCore.update` takes one frame's detections and returns,
per detection, the id of the confirmed track it belongs to (-1 when none). The rules, float64 throughout:

1. Every track is predicted ``steps`` frames ahead (xyah Kalman filter with ByteTrack's constants; a lost
   track's height velocity is zeroed first). Prediction runs at most ``lost_frames + 1`` steps: a gap longer
   than the lost buffer extrapolates no further (``frames_since_update`` and ``age`` still grow by ``steps``).
2. High detections (score >= ``high_thresh``) are matched to confirmed tracks, tracked or lost
   (``match_thresh``).
3. Low detections (``low_thresh`` <= score < ``high_thresh``) are matched to the confirmed tracks left, tracked
   or lost (``low_match_thresh``; an occluded object often comes back with a low score, and a lost track found
   so is tracked again); tracked tracks still unmatched become lost. (ByteTrack itself leaves lost tracks out
   of this stage; letting them in measured +0.2 to +2 HOTA on the benchmark clips, ``benchmarks/tracking.py``.)
4. High detections left are matched to tentative tracks (``tentative_match_thresh``); a tentative track matched
   ``min_hits`` times in a row (birth included) is confirmed and given the next id (1, 2, ... in track order;
   ids are handed out only at confirmation). Unmatched tentative tracks are dropped.
5. High detections left with score >= ``new_track_thresh`` start tentative tracks, in detection order
   (confirmed at once when ``min_hits`` is 1).
6. Lost tracks unmatched for more than ``lost_frames`` frames are dropped.

Similarity is the IoU of the track's predicted box and the detection's box, or, when ``mask_weight`` w > 0 and
both have masks, ``(1 - w) * box_iou + w * mask_iou``: the track's last mask, shifted by its predicted motion
(rounded to whole pixels), against the detection's mask, counted on the masks' overlap only. A pair can match
only when its similarity is strictly above the stage's threshold and, with ``class_consistent``, the classes
agree; each stage takes the matching with the largest sum of ``similarity - threshold`` (exact assignment, as
``lap.lapjv(1 - sim, extend_cost=True, cost_limit=1 - threshold)``). Boxes with zero width or height take no
part. A :class:`TrackerCore` may be used from one thread at a time (calls are serialised); the update runs
without the GIL.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, fields
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeseg.ops._native import core
from edgeseg.ops.masks import MaskSet

__all__ = [
    "LOST",
    "MAX_STEPS",
    "TENTATIVE",
    "TRACKED",
    "TrackTable",
    "TrackerConfig",
    "TrackerCore",
    "linear_assignment",
]

TENTATIVE = 0
"""Track state: born, not yet confirmed (no id)."""
TRACKED = 1
"""Track state: confirmed and matched in its latest update."""
LOST = 2
"""Track state: confirmed, unmatched since ``frames_since_update`` frames."""

_I32 = np.iinfo(np.int32)
_MAX_LOST_FRAMES = 1_000_000
MAX_STEPS = 2**31 - 1
"""The largest ``steps`` of one update."""


def _number(value: Any, name: str, *, upper_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    v = float(value)
    if not (0.0 <= v < 1.0 if upper_open else 0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be in [0, {'1)' if upper_open else '1]'}, got {v}")
    return v


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if not low <= v <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {v}")
    return v


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings (validated on construction; see the module docstring for their meaning)."""

    high_thresh: float = 0.5
    low_thresh: float = 0.1
    new_track_thresh: float = 0.6
    match_thresh: float = 0.2
    low_match_thresh: float = 0.3
    tentative_match_thresh: float = 0.3
    min_hits: int = 2
    lost_frames: int = 30
    mask_weight: float = 0.0
    class_consistent: bool = True

    def __post_init__(self) -> None:
        values: dict[str, Any] = {
            "high_thresh": _number(self.high_thresh, "high_thresh"),
            "low_thresh": _number(self.low_thresh, "low_thresh"),
            "new_track_thresh": _number(self.new_track_thresh, "new_track_thresh"),
            "match_thresh": _number(self.match_thresh, "match_thresh", upper_open=True),
            "low_match_thresh": _number(self.low_match_thresh, "low_match_thresh", upper_open=True),
            "tentative_match_thresh": _number(self.tentative_match_thresh, "tentative_match_thresh", upper_open=True),
            "min_hits": _integer(self.min_hits, "min_hits", 1, 2**31 - 1),
            "lost_frames": _integer(self.lost_frames, "lost_frames", 0, _MAX_LOST_FRAMES),
            "mask_weight": _number(self.mask_weight, "mask_weight"),
        }
        if not isinstance(self.class_consistent, (bool, np.bool_)):
            raise ValueError(f"class_consistent must be a bool, got {self.class_consistent!r}")
        values["class_consistent"] = bool(self.class_consistent)
        if values["low_thresh"] > values["high_thresh"]:
            raise ValueError(f"low_thresh ({values['low_thresh']}) must be <= high_thresh ({values['high_thresh']})")
        if values["new_track_thresh"] < values["high_thresh"]:
            raise ValueError(
                f"new_track_thresh ({values['new_track_thresh']}) must be >= high_thresh ({values['high_thresh']}):"
                " only high detections start tracks"
            )
        for name, v in values.items():
            object.__setattr__(self, name, v)

    def as_dict(self) -> dict[str, Any]:
        """The settings as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class TrackTable:
    """The live tracks, one row each in creation order.

    Attributes:
        track_id: int64 [k] external ids (>= 1; 0 while tentative).
        state: int32 [k] :data:`TENTATIVE`, :data:`TRACKED` or :data:`LOST`.
        class_id: int32 [k].
        xyxy: float64 [k, 4] boxes of the Kalman state (after the latest update).
        score: float64 [k] score of the last matched detection.
        hits: int64 [k] matched updates, birth included.
        age: int64 [k] frames since birth.
        frames_since_update: int64 [k] frames since the last match (0 when matched in the latest update).
    """

    track_id: NDArray[np.int64]
    state: NDArray[np.int32]
    class_id: NDArray[np.int32]
    xyxy: NDArray[np.float64]
    score: NDArray[np.float64]
    hits: NDArray[np.int64]
    age: NDArray[np.int64]
    frames_since_update: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.track_id.shape[0])


def _floats(a: ArrayLike, name: str) -> NDArray[np.float32]:
    arr = np.asarray(a)
    if arr.dtype == np.float32:
        return arr
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float32)


def _class_ids(a: ArrayLike) -> NDArray[np.int32]:
    arr = np.asarray(a)
    if arr.dtype == np.int32:
        return arr
    if arr.dtype.kind not in "iu" and arr.size:
        raise ValueError(f"class_ids must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < _I32.min or arr.max() > _I32.max):
        raise ValueError("class_ids must fit in int32")
    return arr.astype(np.int32)


class TrackerCore:
    """The native tracker (see the module docstring). One thread at a time; ``reset()`` starts over."""

    __slots__ = ("_config", "_core")

    def __init__(self, config: TrackerConfig | None = None) -> None:
        if config is None:
            config = TrackerConfig()
        elif not isinstance(config, TrackerConfig):
            raise TypeError(f"config must be a TrackerConfig, got {type(config).__name__}")
        self._config = config
        self._core = core.Tracker(**config.as_dict())

    @property
    def config(self) -> TrackerConfig:
        """The settings (frozen)."""
        return self._config

    def update(
        self,
        boxes: ArrayLike,
        scores: ArrayLike,
        class_ids: ArrayLike,
        masks: MaskSet | None = None,
        steps: int = 1,
    ) -> NDArray[np.int64]:
        """Advance ``steps`` frames (>= 1) and associate one frame's detections.

        boxes: [n, 4] xyxy; scores: [n]; class_ids: [n] integers; masks: one mask per box or ``None`` (used only
        when ``mask_weight`` > 0). float32 / int32 arrays are used as they are. Returns int64 [n]: the id of the
        confirmed track each detection matched or started in this update, else -1.
        """
        if not (type(boxes) is np.ndarray and boxes.dtype == np.float32):
            boxes = _floats(boxes, "boxes")
            if boxes.size == 0:
                boxes = boxes.reshape(0, 4)
        if not (type(scores) is np.ndarray and scores.dtype == np.float32):
            scores = _floats(scores, "scores")
        if not (type(class_ids) is np.ndarray and class_ids.dtype == np.int32):
            class_ids = _class_ids(class_ids)
        if type(steps) is not int:
            if isinstance(steps, bool):
                raise ValueError("steps must be an integer >= 1, got a bool")
            try:
                steps = operator.index(steps)
            except TypeError:
                raise ValueError(f"steps must be an integer >= 1, got {steps!r}") from None
        if not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be in [1, {MAX_STEPS}], got {steps}")
        if masks is None:
            return self._core.update(boxes, scores, class_ids, None, None, None, steps)
        if not isinstance(masks, MaskSet):
            raise ValueError(f"masks must be a MaskSet or None, got {type(masks).__name__}")
        return self._core.update(boxes, scores, class_ids, masks.rects, masks.data, masks.offsets, steps)

    def tracks(self) -> TrackTable:
        """A copy of the live tracks."""
        return TrackTable(*self._core.tracks())

    def reset(self) -> None:
        """Drop every track; ids start again at 1."""
        self._core.reset()


def linear_assignment(cost: ArrayLike, limit: float) -> NDArray[np.int64]:
    """Exact assignment with ``lap.lapjv(cost, extend_cost=True, cost_limit=limit)`` semantics.

    Among pairs with ``cost < limit``, picks the matching (each row and column at most once) that minimises
    ``sum(cost - limit)``. Returns int64 [n]: the column of each row, -1 when the row is unassigned.
    """
    c = np.asarray(cost)
    if c.dtype.kind not in "fiu":
        raise ValueError(f"cost must be a numeric array, got dtype {c.dtype}")
    if c.ndim != 2:
        raise ValueError(f"cost must be 2-D [n, m], got shape {c.shape}")
    if isinstance(limit, bool) or not isinstance(limit, Real) or not math.isfinite(float(limit)):
        raise ValueError(f"limit must be a finite number, got {limit!r}")
    return core.linear_assignment(np.ascontiguousarray(c, dtype=np.float64), float(limit))
