"""Tracking of :class:`~edgeseg.detections.Detections` across frames (ByteTrack-style, native core).

``Tracker.update(detections)`` returns the rows that belong to a confirmed track, in input order, with
``tracker_id`` set (masks stay aligned). The association rules are those of :mod:`edgeseg.ops.track`.
A tracker is used by one thread at a time (one per video stream).
"""

from __future__ import annotations

import math
import operator
from numbers import Real

import numpy as np

from edgeseg.detections import Detections
from edgeseg.ops.track import MAX_STEPS, TrackerConfig, TrackerCore, TrackTable

__all__ = ["TrackTable", "Tracker", "TrackerConfig", "lost_buffer"]

_DEFAULT_LOST_FRAMES = 30


def _positive(value: float | None, name: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    v = float(value)
    if v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {v}")
    return v


def lost_buffer(lost_frames: int | None, lost_seconds: float | None, frame_rate: float | None) -> int:
    """Frames a lost track is kept: ``lost_frames`` (default 30), or ``ceil(lost_seconds * frame_rate)``.

    Giving both ``lost_frames`` and ``lost_seconds`` is an error, as are ``lost_seconds`` without
    ``frame_rate`` and ``frame_rate`` without ``lost_seconds``. A product within 1e-9 of a whole number counts as
    that number (``0.1 * 30`` is 3 frames).
    """
    if lost_seconds is None:
        if frame_rate is not None:
            raise ValueError("frame_rate is used only with lost_seconds (the lost buffer in seconds)")
        return _DEFAULT_LOST_FRAMES if lost_frames is None else lost_frames
    if lost_frames is not None:
        raise ValueError("give the lost buffer as lost_frames or as lost_seconds, not both")
    if frame_rate is None:
        raise ValueError("lost_seconds needs frame_rate (frames per second) to count frames")
    frames = _positive(lost_seconds, "lost_seconds", allow_zero=True) * _positive(
        frame_rate, "frame_rate", allow_zero=False
    )
    return max(0, math.ceil(frames - 1e-9))


class Tracker:
    """Gives detections stable ids across the frames of one stream.

    Keyword settings as :class:`edgeseg.ops.track.TrackerConfig`, except the lost buffer: ``lost_frames``
    (default 30) or ``lost_seconds`` with ``frame_rate`` (see :func:`lost_buffer`). Masks are used only when
    ``mask_weight`` > 0. Not thread-safe for concurrent use: one tracker per stream, one thread at a time.
    """

    __slots__ = ("_core", "_last_index", "_use_masks")

    def __init__(
        self,
        *,
        high_thresh: float = 0.5,
        low_thresh: float = 0.1,
        new_track_thresh: float = 0.6,
        match_thresh: float = 0.2,
        low_match_thresh: float = 0.3,
        tentative_match_thresh: float = 0.3,
        min_hits: int = 2,
        lost_frames: int | None = None,
        lost_seconds: float | None = None,
        frame_rate: float | None = None,
        mask_weight: float = 0.0,
        class_consistent: bool = True,
    ) -> None:
        config = TrackerConfig(
            high_thresh=high_thresh,
            low_thresh=low_thresh,
            new_track_thresh=new_track_thresh,
            match_thresh=match_thresh,
            low_match_thresh=low_match_thresh,
            tentative_match_thresh=tentative_match_thresh,
            min_hits=min_hits,
            lost_frames=lost_buffer(lost_frames, lost_seconds, frame_rate),
            mask_weight=mask_weight,
            class_consistent=class_consistent,
        )
        self._core = TrackerCore(config)
        self._use_masks = config.mask_weight > 0
        self._last_index: int | None = None

    def update(self, detections: Detections, frame_index: int | None = None) -> Detections:
        """Track one frame. Returns the rows with a confirmed track, in input order, ``tracker_id`` set.

        ``frame_index``: the frame's number in the stream, when frames may be skipped: the tracker predicts
        over the gap since the previous index (which must be smaller). ``None``: the frame after the previous one.
        Skipped frames were not looked at: they do not count as frames in which a track was missing.
        """
        if not isinstance(detections, Detections):
            raise TypeError(f"detections must be Detections, got {type(detections).__name__}")
        last = self._last_index
        if frame_index is None:
            steps = 1
            index = None if last is None else last + 1
        else:
            if isinstance(frame_index, (bool, np.bool_)):
                raise ValueError("frame_index must be an integer, got a bool")
            try:
                index = operator.index(frame_index)
            except TypeError:
                raise ValueError(f"frame_index must be an integer, got {frame_index!r}") from None
            if last is None:
                steps = 1
            elif index <= last:
                raise ValueError(f"frame_index must increase: got {index} after {last}")
            else:
                steps = min(index - last, MAX_STEPS)  # longer gaps predict no further (see edgeseg.ops.track)
        d = detections
        masks = d.masks if self._use_masks else None
        ids = self._core.update(d.xyxy, d.confidence, d.class_id, masks, steps)
        self._last_index = index
        rows = np.flatnonzero(ids >= 0)
        if len(rows) == len(ids):
            return d.with_tracker_id(ids)
        return d.with_tracker_id(ids[rows], rows)

    @property
    def config(self) -> TrackerConfig:
        """The settings (frozen; ``lost_frames`` is the lost buffer in frames)."""
        return self._core.config

    @property
    def tracks(self) -> TrackTable:
        """A copy of the live tracks (tentative, tracked and lost)."""
        return self._core.tracks()

    def reset(self) -> None:
        """Drop every track and forget the frame index; ids start again at 1."""
        self._core.reset()
        self._last_index = None
