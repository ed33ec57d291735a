"""The labels of one image as the transforms see them: pixel xyxy boxes, fixed-length polygons, classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SEGMENT_POINTS = 1000  # every polygon is resampled to this many points (more if one polygon has more)


def resample_polygon(poly: np.ndarray, n: int) -> np.ndarray:
    """Resample a closed polygon [k, 2] to ``n`` points along its outline.

    The outline is closed (first point appended). If it has fewer than ``n`` points, evenly spaced points
    are added and every original vertex is kept; otherwise ``n`` evenly spaced samples are taken.
    """
    s = np.concatenate([poly, poly[:1]], 0).astype(np.float64)
    m = len(s)
    xp = np.arange(m)
    if m < n:
        x = np.linspace(0, m - 1, n - m)
        x = np.insert(x, np.searchsorted(x, xp), xp)
    else:
        x = np.linspace(0, m - 1, n)
    return np.stack([np.interp(x, xp, s[:, 0]), np.interp(x, xp, s[:, 1])], 1).astype(np.float32)


def resample_polygons(polys: Sequence[np.ndarray], n: int = SEGMENT_POINTS) -> np.ndarray:
    """Stack polygons into [len, n', 2] with n' = n, or longest + 1 if a polygon has n points or more."""
    if not len(polys):
        return np.zeros((0, n, 2), np.float32)
    longest = max(len(p) for p in polys)
    n = longest + 1 if longest > n else n
    return np.stack([p.astype(np.float32) if len(p) == n else resample_polygon(p, n) for p in polys], 0)


def boxes_from_segments(segments: np.ndarray) -> np.ndarray:
    if not len(segments):
        return np.zeros((0, 4), np.float32)
    return np.concatenate([segments.min(1), segments.max(1)], 1).astype(np.float32)


@dataclass
class Instances:
    """``boxes`` [n, 4] xyxy pixels, ``segments`` [n, K, 2] pixels, ``cls`` [n] int64."""

    boxes: np.ndarray
    segments: np.ndarray
    cls: np.ndarray

    @classmethod
    def empty(cls, points: int = SEGMENT_POINTS) -> Instances:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0, points, 2), np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.cls)

    def __getitem__(self, idx) -> Instances:
        return Instances(self.boxes[idx], self.segments[idx], self.cls[idx])

    def copy(self) -> Instances:
        return Instances(self.boxes.copy(), self.segments.copy(), self.cls.copy())

    def scale(self, sx: float, sy: float, boxes_only: bool = False) -> None:
        self.boxes = self.boxes * np.array([sx, sy, sx, sy], np.float32)
        if not boxes_only:
            self.segments = self.segments * np.array([sx, sy], np.float32)

    def add_offset(self, dx: float, dy: float) -> None:
        self.boxes = self.boxes + np.array([dx, dy, dx, dy], np.float32)
        self.segments = self.segments + np.array([dx, dy], np.float32)

    def clip(self, w: float, h: float) -> None:
        self.boxes = self.boxes.copy()
        self.boxes[:, 0::2] = self.boxes[:, 0::2].clip(0, w)
        self.boxes[:, 1::2] = self.boxes[:, 1::2].clip(0, h)
        self.segments = self.segments.copy()
        self.segments[..., 0] = self.segments[..., 0].clip(0, w)
        self.segments[..., 1] = self.segments[..., 1].clip(0, h)

    def fliplr(self, w: float) -> None:
        b = self.boxes.copy()
        b[:, 0], b[:, 2] = w - self.boxes[:, 2], w - self.boxes[:, 0]
        self.boxes = b
        self.segments = self.segments.copy()
        self.segments[..., 0] = w - self.segments[..., 0]

    def box_areas(self) -> np.ndarray:
        return (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])

    def remove_zero_area(self) -> np.ndarray:
        """Drop instances whose box has no area; returns the keep mask."""
        keep = self.box_areas() > 0
        if not keep.all():
            self.boxes, self.segments, self.cls = self.boxes[keep], self.segments[keep], self.cls[keep]
        return keep

    @staticmethod
    def concatenate(items: list[Instances]) -> Instances:
        n = max(x.segments.shape[1] for x in items)
        segs = [
            x.segments
            if x.segments.shape[1] == n
            else (resample_polygons(list(x.segments), n) if len(x) else np.zeros((0, n, 2), np.float32))
            for x in items
        ]
        return Instances(
            np.concatenate([x.boxes for x in items]).astype(np.float32),
            np.concatenate(segs).astype(np.float32),
            np.concatenate([x.cls for x in items]).astype(np.int64),
        )
