"""Zones and lines: occupancy, dwell times, enter/leave events and line crossings (numpy only, no cv2).

:class:`PolygonZone` says which detections are inside a polygon -- by **mask** (the fraction of the instance's
mask pixels inside the polygon, computed from the box region of the mask only) or by an **anchor** point of the
box (``"bottom_center"``, ...). With tracked detections (``Detections.tracker_id``) it also keeps which tracks
are inside, their dwell times, and ``enter``/``leave`` events. :class:`LineZone` counts tracks crossing a directed
line segment. :class:`ZoneSet` holds several of both for the command line: one ``update`` per frame, events out,
:meth:`ZoneSet.summary` for occupancy and counts.

Conventions (all documented here once):

* **Pixels.** Coordinates are image pixels, x to the right and y down, with pixel ``(col, row)`` covering
  ``[col, col+1) x [row, row+1)``: its centre is ``(col + 0.5, row + 0.5)``. A config item may instead say
  ``normalized: true``; then every coordinate is a fraction 0..1 of the image width (x) or height (y), and
  the zone follows the image size (rasterised per image shape).
* **Rasterising.** A pixel belongs to a polygon when its centre is inside by the **even-odd** rule (crossing
  number; a self-overlapping polygon has holes where it overlaps itself). A centre exactly on a left edge is
  inside, on a right edge outside, so two polygons sharing an edge never share a pixel. The polygon is
  rasterised once per image shape (a numpy scanline fill, cached), and clipped to the image.
* **Time.** ``update(detections, time_s)`` takes a time in seconds on any clock that does not go backwards: the
  frame index / fps of a video, or the capture time of a live frame. With ``time_s=None`` each update is one
  time unit after the previous one (frame counting): dwell times, ``leave_after`` and ``forget_after`` are
  then counted in frames.
* **Leaving.** A track is inside from the first update that finds it inside (an ``enter`` event). It leaves
  when it has not been found inside for more than ``leave_after`` (it moved out, or the detector or the
  tracker lost it): brief misses make no leave/enter pair. The ``leave`` event carries the time the track was
  last seen inside and ``dwell_s`` = that time minus the time it entered.
* **Line sides.** For the directed line ``start -> end``, the signed distance of a point is positive on the
  **right-hand side** as seen on the image (y down): for a horizontal line drawn left to right, right is
  *below* the line. ``in`` is a crossing from the left side to the right side, ``out`` the opposite. A
  track's side changes only when its anchor is more than ``min_distance`` pixels on the other side (a
  hysteresis band), and a side change counts only if the track crossed the line within the segment (plus
  ``min_distance`` pixels at either end). A track first seen inside the band has no side until it leaves it.

CLI strings (:func:`parse_zone`, :func:`parse_line`)::

    NAME:X,Y X,Y X,Y ...[@KEY=VALUE,KEY=VALUE,...]       e.g.  door:100,200 400,200 400,500 100,500@trigger=bottom_center
    NAME:X,Y X,Y[@KEY=VALUE,...]                         e.g.  gate:0,300 640,300@anchor=bottom_center,classes=person,car

``classes=`` takes a comma-separated list of class ids or names (a bare item after ``classes=`` continues the
list). Keys are the config keys below; ``normalized=true`` marks 0..1 coordinates.

Config files (:func:`load_zones`; ``.json`` always, ``.yaml``/``.yml`` when pyyaml is installed)::

    normalized: false          # optional default for every item
    zones:
      - {name: door, polygon: [[100, 200], [400, 200], [400, 500], [100, 500]], trigger: mask,
         min_overlap: 0.5, classes: [person], leave_after: 1.0, normalized: false}
    lines:
      - {name: gate, start: [0, 300], end: [640, 300], anchor: center, classes: [person, car],
         min_distance: 5, forget_after: 30, normalized: false}
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .detections import Detections, class_id_of

__all__ = [
    "ANCHORS",
    "LineZone",
    "PolygonZone",
    "ZoneSet",
    "anchor_points",
    "line_from_config",
    "load_zones",
    "parse_line",
    "parse_zone",
    "points_in_polygon",
    "rasterize_polygon",
    "zone_from_config",
    "zoneset_from_config",
]

# anchor name -> (fraction of the box width, fraction of the box height) from its top-left corner
ANCHORS: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "top_left": (0.0, 0.0),
    "top_center": (0.5, 0.0),
    "top_right": (1.0, 0.0),
    "center_left": (0.0, 0.5),
    "center_right": (1.0, 0.5),
    "bottom_left": (0.0, 1.0),
    "bottom_center": (0.5, 1.0),
    "bottom_right": (1.0, 1.0),
}
TRIGGERS = ("mask", *ANCHORS)

Classes = Union[Sequence[Union[int, str]], int, str, None]
Zone = Union["PolygonZone", "LineZone"]

_ZONE_KEYS = ("name", "polygon", "trigger", "min_overlap", "classes", "leave_after", "normalized")
_LINE_KEYS = ("name", "start", "end", "anchor", "classes", "min_distance", "forget_after", "normalized")


# ---- geometry ------------------------------------------------------------------------------------------------


def _edges(polygon: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    xi, yi = polygon[:, 0], polygon[:, 1]
    xj, yj = np.roll(xi, -1), np.roll(yi, -1)
    return xi, yi, xj, yj


def points_in_polygon(points: ArrayLike, polygon: ArrayLike) -> NDArray[np.bool_]:
    """bool [m]: which points [m, 2] are inside the polygon [k, 2] by the even-odd rule.

    A point exactly on a left edge is inside, on a right edge outside (the rule :func:`rasterize_polygon` applies
    to pixel centres).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    xi, yi, xj, yj = _edges(np.asarray(polygon, dtype=np.float64).reshape(-1, 2))
    px, py = pts[:, :1], pts[:, 1:]
    crosses = (yi > py) != (yj > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = (xj - xi) * (py - yi) / (yj - yi) + xi
    hits = crosses & (px < x_cross)
    inside: NDArray[np.bool_] = (np.count_nonzero(hits, axis=1) % 2) == 1
    return inside


def _first_pixel_at_or_after(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The smallest integer c with c + 0.5 >= x (exact: the rounding of x - 0.5 is corrected)."""
    c = np.ceil(x - 0.5)
    c = np.where(c - 0.5 >= x, c - 1, c)  # (c - 1) + 0.5 is exact
    return np.where(c + 0.5 < x, c + 1, c)


def rasterize_polygon(polygon: ArrayLike, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """bool [H, W]: pixels whose centre is inside the polygon [k, 2] (pixels, even-odd rule), clipped to the image.

    A scanline fill: per row, the crossings of the row's centre line with the polygon's edges are sorted and
    filled pairwise. It equals :func:`points_in_polygon` at every pixel centre.
    """
    h, w = (int(v) for v in shape)
    if h < 1 or w < 1:
        raise ValueError(f"shape must be positive (H, W), got {tuple(shape)}")
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    out = np.zeros((h, w), dtype=bool)
    if len(poly) < 3 or not np.isfinite(poly).all():
        return out
    # rows whose centre (row + 0.5) can lie strictly within the polygon's vertical extent
    r0 = int(max(0.0, min(float(h), math.floor(poly[:, 1].min() - 0.5))))
    r1 = int(max(0.0, min(float(h), math.ceil(poly[:, 1].max() + 0.5))))
    if r1 <= r0:
        return out
    xi, yi, xj, yj = _edges(poly)
    py = (np.arange(r0, r1, dtype=np.float64) + 0.5)[:, None]
    crosses = (yi > py) != (yj > py)  # [rows, edges]; half-open in y, so every row has an even number
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = (xj - xi) * (py - yi) / (yj - yi) + xi  # the same expression as points_in_polygon
    x_cross = np.sort(np.where(crosses, x_cross, np.inf), axis=1)
    most = int(np.count_nonzero(crosses, axis=1).max())
    if most == 0:
        return out
    starts, ends = x_cross[:, 0:most:2], x_cross[:, 1:most:2]  # inside: starts <= centre < ends
    valid = np.isfinite(starts) & np.isfinite(ends)
    rows = np.broadcast_to(np.arange(r1 - r0)[:, None], starts.shape)[valid]
    lo = np.clip(_first_pixel_at_or_after(starts[valid]), 0, w).astype(np.int64)
    hi = np.clip(_first_pixel_at_or_after(ends[valid]), 0, w).astype(np.int64)
    keep = lo < hi
    diff = np.zeros((r1 - r0, w + 1), dtype=np.int32)
    np.add.at(diff, (rows[keep], lo[keep]), 1)
    np.add.at(diff, (rows[keep], hi[keep]), -1)
    # one flat running sum: every row's entries (w + 1 of them, the last one for ends at w) add up to 0
    depth = np.cumsum(diff.reshape(-1), dtype=np.int32).reshape(r1 - r0, w + 1)
    out[r0:r1] = depth[:, :w] > 0
    return out


def anchor_points(xyxy: ArrayLike, anchor: str) -> NDArray[np.float64]:
    """float64 [n, 2]: the anchor point (e.g. ``"bottom_center"``) of each box [n, 4] (x1, y1, x2, y2)."""
    if anchor not in ANCHORS:
        raise ValueError(f"unknown anchor {anchor!r}; choose one of {', '.join(ANCHORS)}")
    fx, fy = ANCHORS[anchor]
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    x = boxes[:, 0] + fx * (boxes[:, 2] - boxes[:, 0])
    y = boxes[:, 1] + fy * (boxes[:, 3] - boxes[:, 1])
    return np.stack([x, y], axis=1)


# ---- validation helpers --------------------------------------------------------------------------------------


def _where(kind: str, name: str, key: str) -> str:
    return f"{kind} {name!r}: {key}"


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{where} must be finite, got {value!r}")
    return number


def _points(value: Any, where: str, normalized: bool) -> NDArray[np.float64]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{where} must be a list of [x, y] points, got {value!r}")
    rows: list[tuple[float, float]] = []
    for point in value:
        if isinstance(point, np.ndarray):
            point = point.tolist()
        if isinstance(point, (str, bytes)) or not isinstance(point, Sequence) or len(point) != 2:
            raise ValueError(f"{where} must be a list of [x, y] points, got the point {point!r}")
        rows.append((_number(point[0], where), _number(point[1], where)))
    pts = np.array(rows, dtype=np.float64).reshape(-1, 2)
    if normalized and pts.size and (pts.min() < 0.0 or pts.max() > 1.0):
        raise ValueError(f"{where}: normalized coordinates must lie within 0..1, got {value!r}")
    return pts


def _point(value: Any, where: str, normalized: bool) -> NDArray[np.float64]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{where} must be an [x, y] point, got {value!r}")
    point: NDArray[np.float64] = _points([value], where, normalized)[0]
    return point


def _classes(value: Classes, where: str) -> tuple[int | str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (int, str, np.integer)) else value
    if not isinstance(items, (Sequence, np.ndarray)) or isinstance(items, (str, bytes)):
        raise ValueError(f"{where} must be a list of class ids or names, got {value!r}")
    out: list[int | str] = []
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool) and int(item) >= 0:
            out.append(int(item))
        elif isinstance(item, str) and item.strip():
            out.append(item.strip())
        else:
            raise ValueError(f"{where} must be class ids (integers >= 0) or names, got {item!r}")
    if not out:
        raise ValueError(f"{where} is empty: leave it out to count every class")
    return tuple(out)


def _name(value: Any, kind: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{kind} name must be a non-empty string, got {value!r}")
    return value.strip()


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{where} must be true or false, got {value!r}")


def _scale(points: NDArray[np.float64], normalized: bool, shape: tuple[int, int]) -> NDArray[np.float64]:
    if not normalized:
        return points
    h, w = shape
    scaled: NDArray[np.float64] = points * np.array([w, h], dtype=np.float64)
    return scaled


class _Clock:
    """The time model of the module docstring: seconds, or frame counting when no time is given."""

    def __init__(self, kind: str, name: str) -> None:
        self.where = f"{kind} {name!r}"
        self.now: float | None = None

    def advance(self, time_s: float | None) -> float:
        if time_s is None:
            now = 0.0 if self.now is None else self.now + 1.0
        else:
            now = _number(time_s, f"{self.where}: time_s")
            if self.now is not None and now < self.now:
                raise ValueError(
                    f"{self.where}: time_s went backwards ({now} after {self.now}); use one zone set per source"
                )
        self.now = now
        return now


def _selected(detections: Detections, classes: tuple[int | str, ...] | None, where: str) -> NDArray[np.bool_]:
    if classes is None:
        return np.ones(len(detections), dtype=bool)
    ids: list[int] = []
    for cls in classes:
        try:
            ids.append(class_id_of(detections.names, cls))
        except ValueError:
            known = list(detections.names.values()) if isinstance(detections.names, Mapping) else list(detections.names)
            raise ValueError(f"{where}: unknown class name {cls!r} (the model's classes: {known})") from None
    return np.isin(detections.class_id, ids)


def _by_class(names: list[str], rows: NDArray[np.bool_]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, hit in zip(names, rows):
        if hit:
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


# ---- polygon zones -------------------------------------------------------------------------------------------


@dataclass
class _Visit:
    entered: float  # time the track was first found inside
    last_inside: float  # last time it was found inside
    class_name: str


class PolygonZone:
    """A polygon region: which detections are inside, how many per class, and (with tracks) dwell and events.

    Args:
        polygon: [k >= 3, 2] vertices in pixels (or 0..1 fractions with ``normalized=True``).
        name: shown in events, summaries and drawings.
        trigger: ``"mask"`` (inside when at least ``min_overlap`` of the mask's pixels are inside; needs masks)
            or an anchor of the box (:data:`ANCHORS`: ``"center"``, ``"bottom_center"``, ...), inside when the
            point is inside the polygon.
        min_overlap: the mask fraction for ``trigger="mask"``, in (0, 1].
        classes: class ids or names that count (``None``: all).
        leave_after: a track leaves once it has not been found inside for longer than this (seconds, or updates
            when no times are given).
        normalized: coordinates are fractions of the image width and height.
    """

    kind = "zone"

    def __init__(
        self,
        polygon: ArrayLike,
        *,
        name: str = "zone",
        trigger: str = "mask",
        min_overlap: float = 0.5,
        classes: Classes = None,
        leave_after: float = 1.0,
        normalized: bool = False,
    ) -> None:
        self.name = _name(name, "zone")

        def where(key: str) -> str:
            return _where("zone", self.name, key)

        self.normalized = _bool(normalized, where("normalized"))
        points = _points(polygon, where("polygon"), self.normalized)
        if len(points) < 3:
            raise ValueError(f"{where('polygon')} needs at least 3 points, got {len(points)}")
        x, y = points[:, 0], points[:, 1]
        area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))
        extent = float(np.ptp(points, axis=0).max())
        if area <= 1e-9 * extent * extent or area == 0.0:
            raise ValueError(f"{where('polygon')} has no area (its points lie on one line): {points.tolist()}")
        self.polygon = points
        if not isinstance(trigger, str) or trigger not in TRIGGERS:
            raise ValueError(f"{where('trigger')} must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
        self.trigger = trigger
        self.min_overlap = _number(min_overlap, where("min_overlap"))
        if not 0.0 < self.min_overlap <= 1.0:
            raise ValueError(f"{where('min_overlap')} must be in (0, 1], got {min_overlap!r}")
        self.classes = _classes(classes, where("classes"))
        self.leave_after = _number(leave_after, where("leave_after"))
        if self.leave_after < 0:
            raise ValueError(f"{where('leave_after')} must be >= 0, got {leave_after!r}")
        self._rasters: dict[tuple[int, int], tuple[NDArray[np.uint8], tuple[int, int, int, int]]] = {}
        self.reset()

    def reset(self) -> None:
        """Forget tracks, counts and the clock (the polygon and its rasters stay)."""
        self._clock = _Clock("zone", self.name)
        self._visits: dict[int, _Visit] = {}
        self.inside: NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self.current_count = 0
        self.count_by_class: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []
        self.entered = 0
        self.left = 0

    def __repr__(self) -> str:
        return f"PolygonZone(name={self.name!r}, points={len(self.polygon)}, trigger={self.trigger!r})"

    # -- geometry --

    def points(self, shape: tuple[int, int]) -> NDArray[np.float64]:
        """The polygon in pixels of an image of ``shape`` (H, W)."""
        return _scale(self.polygon, self.normalized, shape)

    def raster(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """bool [H, W]: the zone's pixels in an image of ``shape`` (cached per shape)."""
        pixels: NDArray[np.bool_] = self._raster(shape)[0] != 0
        return pixels

    def _raster(self, shape: tuple[int, int]) -> tuple[NDArray[np.uint8], tuple[int, int, int, int]]:
        key = (int(shape[0]), int(shape[1]))
        hit = self._rasters.get(key)
        if hit is None:
            mask = rasterize_polygon(self.points(key), key)
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            bounds = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1) if rows.size else (0, 0, 0, 0)
            if len(self._rasters) >= 4:  # a camera that changes resolution now and then: keep the last few
                self._rasters.pop(next(iter(self._rasters)))
            hit = (mask.astype(np.uint8) * np.uint8(255), bounds)  # 255: `& bitmap` keeps any nonzero mask value
            self._rasters[key] = hit
        return hit

    def fractions(self, detections: Detections) -> NDArray[np.float64]:
        """float64 [n]: the fraction of each detection's mask pixels inside the zone (0 for an empty mask).

        Only each mask's box region is read (``raster[y0:y1, x0:x1] & bitmap``).
        """
        masks = detections.masks
        if masks is None:
            raise ValueError(
                f"zone {self.name!r} counts by mask (trigger='mask') but the detections have no masks; "
                "use an anchor trigger such as trigger=bottom_center"
            )
        zone, (bx0, by0, bx1, by1) = self._raster(masks.image_shape)
        out = np.zeros(len(masks), dtype=np.float64)
        for i in range(len(masks)):
            x0, y0, x1, y1 = (int(v) for v in masks.rects[i])
            if x1 <= bx0 or x0 >= bx1 or y1 <= by0 or y0 >= by1:
                continue  # the box misses the zone
            bitmap = masks.bitmap(i)
            total = np.count_nonzero(bitmap)
            if total:
                out[i] = np.count_nonzero(zone[y0:y1, x0:x1] & bitmap) / total
        return out

    def contains(self, detections: Detections) -> NDArray[np.bool_]:
        """bool [n]: which detections are inside (trigger and classes applied); no state changes."""
        selected = _selected(detections, self.classes, f"zone {self.name!r}: classes")
        if not len(detections):
            return selected
        if self.trigger == "mask":
            inside: NDArray[np.bool_] = self.fractions(detections) >= self.min_overlap
        else:
            polygon = self.polygon
            if self.normalized:
                if detections.image_shape is None:
                    raise ValueError(
                        f"zone {self.name!r} has normalized coordinates but the detections do not say their image shape"
                    )
                polygon = self.points(detections.image_shape)
            inside = points_in_polygon(anchor_points(detections.xyxy, self.trigger), polygon)
        return inside & selected

    # -- per frame --

    def update(self, detections: Detections, time_s: float | None = None) -> NDArray[np.bool_]:
        """Test one frame's detections; returns bool [n] (which rows are inside) and updates the counts and events.

        ``current_count``/``count_by_class`` describe this frame; ``events`` holds this update's ``enter`` and
        ``leave`` events (tracked detections only; see the module docstring for the time model).
        """
        now = self._clock.advance(time_s)
        inside = self.contains(detections)
        self.inside = inside
        self.current_count = int(np.count_nonzero(inside))
        names = detections.class_names
        self.count_by_class = _by_class(names, inside)
        self.events = []
        if detections.tracker_id is not None:
            for row in np.flatnonzero(inside):
                tid = int(detections.tracker_id[row])
                visit = self._visits.get(tid)
                if visit is None:
                    self._visits[tid] = _Visit(now, now, names[row])
                    self.entered += 1
                    self.events.append(
                        {"type": "enter", "zone": self.name, "tracker_id": tid, "class": names[row], "time": now}
                    )
                else:
                    visit.last_inside, visit.class_name = now, names[row]
        for tid, visit in list(self._visits.items()):
            if now - visit.last_inside > self.leave_after:
                del self._visits[tid]
                self.left += 1
                self.events.append(
                    {
                        "type": "leave",
                        "zone": self.name,
                        "tracker_id": tid,
                        "class": visit.class_name,
                        "time": visit.last_inside,
                        "dwell_s": visit.last_inside - visit.entered,
                    }
                )
        return inside

    @property
    def tracks_inside(self) -> list[int]:
        """Ids of the tracks inside (including those briefly unseen, within ``leave_after``)."""
        return sorted(self._visits)

    @property
    def dwell(self) -> dict[int, float]:
        """Track id -> time inside so far (entered to last seen inside), for the tracks inside."""
        return {tid: v.last_inside - v.entered for tid, v in sorted(self._visits.items())}

    def summary(self) -> dict[str, Any]:
        """JSON-friendly state after the last update."""
        return {
            "count": self.current_count,
            "by_class": dict(self.count_by_class),
            "tracks": self.tracks_inside,
            "entered": self.entered,
            "left": self.left,
        }


# ---- lines ---------------------------------------------------------------------------------------------------


@dataclass
class _LineTrack:
    side: int  # -1 left, +1 right, 0 not known yet (only seen within the band)
    s: float  # last signed distance from the line (pixels, + on the right)
    t: float  # last position along the line (pixels from start)
    crossing: float | None  # where (pixels along the line) the track last crossed the infinite line
    last_seen: float


class LineZone:
    """Counts tracks crossing the directed segment ``start -> end`` (``in``: left to right, ``out``: back).

    Args:
        start, end: the segment's ends in pixels (or 0..1 fractions with ``normalized=True``).
        name: shown in events, summaries and drawings.
        anchor: the box point whose trajectory is followed (:data:`ANCHORS`).
        classes: class ids or names that count (``None``: all).
        min_distance: half-width of the hysteresis band in pixels, and the margin beyond the segment's ends
            within which a crossing still counts.
        forget_after: a track unseen for longer than this is forgotten (seconds, or updates without times).
        normalized: coordinates are fractions of the image width and height.
    """

    kind = "line"

    def __init__(
        self,
        start: ArrayLike,
        end: ArrayLike,
        *,
        name: str = "line",
        anchor: str = "center",
        classes: Classes = None,
        min_distance: float = 5.0,
        forget_after: float = 30.0,
        normalized: bool = False,
    ) -> None:
        self.name = _name(name, "line")

        def where(key: str) -> str:
            return _where("line", self.name, key)

        self.normalized = _bool(normalized, where("normalized"))
        self.start = _point(start, where("start"), self.normalized)
        self.end = _point(end, where("end"), self.normalized)
        if np.array_equal(self.start, self.end):
            raise ValueError(f"{where('end')} equals start: a line needs two different points")
        if not isinstance(anchor, str) or anchor not in ANCHORS:
            raise ValueError(f"{where('anchor')} must be one of {', '.join(ANCHORS)}, got {anchor!r}")
        self.anchor = anchor
        self.classes = _classes(classes, where("classes"))
        self.min_distance = _number(min_distance, where("min_distance"))
        if self.min_distance < 0:
            raise ValueError(f"{where('min_distance')} must be >= 0, got {min_distance!r}")
        self.forget_after = _number(forget_after, where("forget_after"))
        if self.forget_after < 0:
            raise ValueError(f"{where('forget_after')} must be >= 0, got {forget_after!r}")
        self.reset()

    def reset(self) -> None:
        """Forget tracks, counts and the clock."""
        self._clock = _Clock("line", self.name)
        self._tracks: dict[int, _LineTrack] = {}
        self.in_count = 0
        self.out_count = 0
        self.in_by_class: dict[str, int] = {}
        self.out_by_class: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"LineZone(name={self.name!r}, start={self.start.tolist()}, end={self.end.tolist()})"

    def endpoints(self, shape: tuple[int, int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(start, end) in pixels of an image of ``shape`` (H, W)."""
        return _scale(self.start, self.normalized, shape), _scale(self.end, self.normalized, shape)

    def update(self, detections: Detections, time_s: float | None = None) -> NDArray[np.int8]:
        """Follow one frame's tracks; returns int8 [n]: +1 for a row that crossed in, -1 out, 0 otherwise.

        ``events`` holds this update's crossings. Raises ValueError for untracked detections.
        """
        if detections.tracker_id is None:
            raise ValueError(
                f"line {self.name!r} counts tracks, but these detections are not tracked (no tracker_id): "
                "run a tracker (edgeseg.tracking) before the lines"
            )
        now = self._clock.advance(time_s)
        self.events = []
        crossed = np.zeros(len(detections), dtype=np.int8)
        selected = _selected(detections, self.classes, f"line {self.name!r}: classes")
        if len(detections):
            start, end = self.start, self.end
            if self.normalized:
                if detections.image_shape is None:
                    raise ValueError(
                        f"line {self.name!r} has normalized coordinates but the detections do not say their image shape"
                    )
                start, end = self.endpoints(detections.image_shape)
            direction = end - start
            length = float(np.hypot(direction[0], direction[1]))
            unit = direction / length
            rel = anchor_points(detections.xyxy, self.anchor) - start
            s_all = unit[0] * rel[:, 1] - unit[1] * rel[:, 0]  # + on the right (y down)
            t_all = rel @ unit
            names = detections.class_names
            for row in np.flatnonzero(selected):
                tid = int(detections.tracker_id[row])
                direction_sign = self._follow(tid, float(s_all[row]), float(t_all[row]), now, length)
                if direction_sign:
                    crossed[row] = direction_sign
                    label = "in" if direction_sign > 0 else "out"
                    counts = self.in_by_class if direction_sign > 0 else self.out_by_class
                    counts[names[row]] = counts.get(names[row], 0) + 1
                    if direction_sign > 0:
                        self.in_count += 1
                    else:
                        self.out_count += 1
                    self.events.append(
                        {
                            "type": "cross",
                            "line": self.name,
                            "direction": label,
                            "tracker_id": tid,
                            "class": names[row],
                            "time": now,
                        }
                    )
        for tid in [tid for tid, track in self._tracks.items() if now - track.last_seen > self.forget_after]:
            del self._tracks[tid]
        return crossed

    def _follow(self, tid: int, s: float, t: float, now: float, length: float) -> int:
        band = self.min_distance
        side = 1 if s > band else -1 if s < -band else 0
        track = self._tracks.get(tid)
        if track is None:
            self._tracks[tid] = _LineTrack(side, s, t, None, now)
            return 0
        if (track.s > 0) != (s > 0):  # crossed the infinite line since the last observation: where?
            track.crossing = track.t + (t - track.t) * (0.0 - track.s) / (s - track.s)
        track.s, track.t, track.last_seen = s, t, now
        if side == 0 or side == track.side:
            return 0
        previous, track.side = track.side, side
        if previous == 0 or track.crossing is None:
            return 0
        return side if -band <= track.crossing <= length + band else 0

    def summary(self) -> dict[str, Any]:
        """JSON-friendly counts."""
        return {
            "in": self.in_count,
            "out": self.out_count,
            "in_by_class": dict(sorted(self.in_by_class.items())),
            "out_by_class": dict(sorted(self.out_by_class.items())),
        }


# ---- the set -------------------------------------------------------------------------------------------------


class ZoneSet:
    """Zones and lines updated together, one frame at a time (one set per video source)."""

    def __init__(self, zones: Iterable[PolygonZone] = (), lines: Iterable[LineZone] = ()) -> None:
        self.zones = list(zones)
        self.lines = list(lines)
        for kind, items, cls in (("zone", self.zones, PolygonZone), ("line", self.lines, LineZone)):
            seen: set[str] = set()
            for item in items:
                if not isinstance(item, cls):
                    raise TypeError(f"{kind}s must be {cls.__name__} objects, got {type(item).__name__}")
                if item.name in seen:
                    raise ValueError(f"two {kind}s are named {item.name!r}: give each its own name ('NAME:...')")
                seen.add(item.name)

    def __len__(self) -> int:
        return len(self.zones) + len(self.lines)

    def __iter__(self) -> Iterator[Zone]:
        yield from self.zones
        yield from self.lines

    def __repr__(self) -> str:
        return f"ZoneSet(zones={[z.name for z in self.zones]}, lines={[ln.name for ln in self.lines]})"

    def reset(self) -> None:
        for item in self:
            item.reset()

    def update(self, detections: Detections, time_s: float | None = None) -> list[dict[str, Any]]:
        """Update every zone and line with one frame; returns this frame's events (zones first, then lines)."""
        events: list[dict[str, Any]] = []
        for item in self:
            item.update(detections, time_s)
            events.extend(item.events)
        return events

    def summary(self) -> dict[str, Any]:
        """``{"zones": {name: {count, by_class, tracks, entered, left}}, "lines": {name: {in, out, ...}}}``."""
        return {
            "zones": {z.name: z.summary() for z in self.zones},
            "lines": {ln.name: ln.summary() for ln in self.lines},
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ZoneSet:
        """A set from a config mapping (the format of :func:`load_zones`)."""
        return zoneset_from_config(config)


# ---- configuration -------------------------------------------------------------------------------------------


def _check_keys(item: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = [str(k) for k in item if k not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")


def zone_from_config(item: Any, default_name: str = "zone", normalized: bool = False) -> PolygonZone:
    """A :class:`PolygonZone` from one config mapping (keys: name, polygon, trigger, min_overlap, classes, ...)."""
    if not isinstance(item, Mapping):
        raise ValueError(f"zone {default_name!r}: must be a mapping of keys {', '.join(_ZONE_KEYS)}, got {item!r}")
    name = _name(item.get("name", default_name), "zone")
    _check_keys(item, _ZONE_KEYS, f"zone {name!r}")
    if "polygon" not in item:
        raise ValueError(f"zone {name!r}: polygon is missing")
    options = {k: v for k, v in item.items() if k not in ("name", "polygon")}
    options.setdefault("normalized", normalized)
    return PolygonZone(item["polygon"], name=name, **options)


def line_from_config(item: Any, default_name: str = "line", normalized: bool = False) -> LineZone:
    """A :class:`LineZone` from one config mapping (keys: name, start, end, anchor, classes, min_distance, ...)."""
    if not isinstance(item, Mapping):
        raise ValueError(f"line {default_name!r}: must be a mapping of keys {', '.join(_LINE_KEYS)}, got {item!r}")
    name = _name(item.get("name", default_name), "line")
    _check_keys(item, _LINE_KEYS, f"line {name!r}")
    for key in ("start", "end"):
        if key not in item:
            raise ValueError(f"line {name!r}: {key} is missing")
    options = {k: v for k, v in item.items() if k not in ("name", "start", "end")}
    options.setdefault("normalized", normalized)
    return LineZone(item["start"], item["end"], name=name, **options)


def zoneset_from_config(config: Any) -> ZoneSet:
    """A :class:`ZoneSet` from ``{"zones": [...], "lines": [...], "normalized": false}`` (module docstring)."""
    if not isinstance(config, Mapping):
        raise ValueError(f"a zone config must be a mapping with 'zones' and/or 'lines', got {type(config).__name__}")
    _check_keys(config, ("zones", "lines", "normalized"), "zone config")
    normalized = _bool(config.get("normalized", False), "zone config: normalized")
    built: dict[str, list[Any]] = {"zones": [], "lines": []}
    for key, make, prefix in (("zones", zone_from_config, "zone"), ("lines", line_from_config, "line")):
        items = config.get(key) or []
        if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
            raise ValueError(f"zone config: {key} must be a list, got {items!r}")
        built[key] = [make(item, f"{prefix}{i + 1}", normalized) for i, item in enumerate(items)]
    if not built["zones"] and not built["lines"]:
        raise ValueError("zone config defines no zones and no lines")
    return ZoneSet(built["zones"], built["lines"])


def load_zones(path: str | Path) -> ZoneSet:
    """Read zones and lines from a ``.json`` file, or ``.yaml``/``.yml`` (needs pyyaml)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"zone file {file} does not exist")
    suffix = file.suffix.lower()
    text = file.read_text(encoding="utf-8")
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ValueError(
                    f"{file}: reading YAML needs pyyaml (`pip install pyyaml`); or write the zones as JSON"
                ) from None
            data = yaml.safe_load(text)
        else:
            raise ValueError(f"{file}: a zone file must end in .json, .yaml or .yml")
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}: not valid JSON: {exc}") from None
    except ValueError:
        raise
    except Exception as exc:  # yaml.YAMLError (pyyaml is optional, so its type is not named here)
        raise ValueError(f"{file}: not valid YAML: {exc}") from None
    try:
        return zoneset_from_config(data)
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}") from None


def _split_spec(text: str, kind: str, default_name: str) -> tuple[str, list[str], dict[str, Any]]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a {kind} must be given as 'NAME:X,Y X,Y ...[@KEY=VALUE,...]', got {text!r}")
    body, _, opts = text.partition("@")
    name, colon, coords = body.partition(":")
    if not colon:
        name, coords = default_name, body
    name = _name(name, kind)
    options: dict[str, Any] = {}
    key = ""
    for part in opts.split(",") if opts.strip() else []:
        part = part.strip()
        if "=" in part:
            key, _, value = part.partition("=")
            key = key.strip()
            if key in options:
                raise ValueError(f"{kind} {name!r}: {key} is given twice")
            options[key] = value.strip()
        elif key == "classes" and part:
            options["classes"] += "," + part  # classes=person,car: the list goes on
        else:
            raise ValueError(f"{kind} {name!r}: expected KEY=VALUE after '@', got {part!r} in {text!r}")
    return name, coords.split(), options


def _option(kind: str, name: str, key: str, value: str) -> Any:
    where = _where(kind, name, key)
    if key == "classes":
        return [int(c) if c.strip().isdigit() else c.strip() for c in value.split(",")]
    if key == "normalized":
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{where} must be true or false, got {value!r}")
    if key in ("min_overlap", "min_distance", "leave_after", "forget_after"):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where} must be a number, got {value!r}") from None
    return value


def _coords(tokens: list[str], kind: str, name: str, key: str) -> list[list[float]]:
    points = []
    for token in tokens:
        xy = token.split(",")
        try:
            if len(xy) != 2:
                raise ValueError
            points.append([float(xy[0]), float(xy[1])])
        except ValueError:
            raise ValueError(
                f"{_where(kind, name, key)}: points are written X,Y separated by spaces, got {token!r}"
            ) from None
    return points


def parse_zone(text: str, *, default_name: str = "zone") -> PolygonZone:
    """A :class:`PolygonZone` from a CLI string ``NAME:X,Y X,Y X,Y ...[@KEY=VALUE,...]`` (module docstring)."""
    name, tokens, options = _split_spec(text, "zone", default_name)
    item: dict[str, Any] = {"name": name, "polygon": _coords(tokens, "zone", name, "polygon")}
    _check_keys(options, _ZONE_KEYS[2:], f"zone {name!r}")
    item.update({k: _option("zone", name, k, v) for k, v in options.items()})
    return zone_from_config(item)


def parse_line(text: str, *, default_name: str = "line") -> LineZone:
    """A :class:`LineZone` from a CLI string ``NAME:X1,Y1 X2,Y2[@KEY=VALUE,...]`` (module docstring)."""
    name, tokens, options = _split_spec(text, "line", default_name)
    points = _coords(tokens, "line", name, "points")
    if len(points) != 2:
        raise ValueError(f"line {name!r}: a line is two points 'X1,Y1 X2,Y2', got {len(points)}")
    item: dict[str, Any] = {"name": name, "start": points[0], "end": points[1]}
    _check_keys(options, _LINE_KEYS[3:], f"line {name!r}")
    item.update({k: _option("line", name, k, v) for k, v in options.items()})
    return line_from_config(item)
