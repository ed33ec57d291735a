"""Drawing detections, zones and lines onto images (no data logic: it only paints what they hold).

Masks and zone fills are painted with numpy; boxes, outlines and labels need OpenCV (cv2), imported when they
are drawn. Tracked detections (``tracker_id`` set) are coloured by track id and labelled "#7 person 0.87", so an
id switch shows as a change of colour; untracked ones are coloured by class.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import NDArray

from .detections import Detections
from .opencv import require_cv2
from .zones import LineZone, PolygonZone, ZoneSet

if TYPE_CHECKING:  # pragma: no cover
    from .ops.masks import MaskSet

# A fixed 20-colour palette (BGR): hues stepped by the golden ratio, alternating saturation/value, so that
# neighbouring class ids get clearly different colours. Class id c uses PALETTE[c % 20].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (45, 66, 224),
    (255, 118, 89),
    (51, 255, 146),
    (189, 79, 224),
    (245, 255, 51),
    (89, 199, 255),
    (224, 45, 111),
    (102, 255, 89),
    (95, 51, 255),
    (224, 152, 79),
    (51, 255, 214),
    (255, 89, 240),
    (156, 224, 45),
    (89, 143, 255),
    (255, 51, 58),
    (79, 224, 116),
    (163, 51, 255),
    (255, 229, 89),
    (45, 201, 224),
    (255, 89, 185),
)


def class_color(class_id: int) -> tuple[int, int, int]:
    """The BGR colour used for a class."""
    return PALETTE[int(class_id) % len(PALETTE)]


def track_color(tracker_id: int) -> tuple[int, int, int]:
    """The BGR colour used for a track (consecutive ids get clearly different colours)."""
    return PALETTE[int(tracker_id) % len(PALETTE)]


def _row_colors(detections: Detections) -> list[tuple[int, int, int]]:
    if detections.tracker_id is not None:
        return [track_color(t) for t in detections.tracker_id]
    return [class_color(c) for c in detections.class_id]


def draw(
    image: NDArray[Any],
    detections: Detections,
    *,
    alpha: float = 0.5,
    boxes: bool = True,
    labels: bool = True,
    masks: bool = True,
) -> NDArray[np.uint8]:
    """Return a copy of a BGR uint8 image with masks (translucent), boxes and "name 0.87" labels drawn.

    Tracked detections are coloured by track id and labelled "#7 name 0.87"; untracked ones by class.

    Boxes and labels need OpenCV (:class:`~edgeseg.opencv.OpenCVNotInstalledError` without it); masks alone
    (``boxes=False, labels=False``) do not.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"draw needs a uint8 BGR image of shape (H, W, 3), got {shape}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if detections.image_shape is not None and tuple(detections.image_shape) != image.shape[:2]:
        raise ValueError(
            f"detections are for an image of shape {tuple(detections.image_shape)}, "
            f"not {image.shape[:2]}: draw on the image that was segmented"
        )
    out: NDArray[np.uint8] = image.copy()
    order = np.argsort(detections.confidence, kind="stable")  # most confident drawn last, on top
    colors = _row_colors(detections)
    if masks and detections.masks is not None and alpha > 0:
        for i in order:
            _paint_mask(out, detections.masks, int(i), colors[i], float(alpha))
    if not (boxes or labels):
        return out
    cv2 = require_cv2("drawing boxes and labels")  # even with nothing to draw: fails on the first frame, not later
    thickness = max(1, round(sum(image.shape[:2]) / 2 / 400))
    names = detections.class_names
    ids = detections.tracker_id
    for i in order:
        color = colors[i]
        x1, y1, x2, y2 = (int(round(v)) for v in detections.xyxy[i])
        if boxes:
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        if labels:
            text = f"{names[i]} {detections.confidence[i]:.2f}"
            if ids is not None:
                text = f"#{int(ids[i])} {text}"
            _label(cv2, out, text, (x1, y1), color, thickness)
    return out


ZoneItems = Union[ZoneSet, Iterable[Union[PolygonZone, LineZone]]]

# zones and lines are coloured by their position in the set, from the palette's end (away from class 0's colour)
ZONE_COLORS: tuple[tuple[int, int, int], ...] = tuple(
    PALETTE[(len(PALETTE) - 1 - 3 * k) % len(PALETTE)] for k in range(20)
)


def zone_color(index: int) -> tuple[int, int, int]:
    """The BGR colour of the zone or line at position ``index`` of what :func:`draw_zones` is given."""
    return ZONE_COLORS[int(index) % len(ZONE_COLORS)]


def draw_zones(
    image: NDArray[Any],
    zones: ZoneItems,
    *,
    alpha: float = 0.25,
    labels: bool = True,
) -> NDArray[np.uint8]:
    """Return a copy of a BGR uint8 image with zones (translucent fill, outline, "name: count") and lines
    (the segment, an arrow pointing to its "in" side, "name in 3 out 1") drawn.

    Counts are those of the zones' and lines' last update. Needs OpenCV for outlines and text.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"draw_zones needs a uint8 BGR image of shape (H, W, 3), got {shape}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    items = list(zones)
    for item in items:
        if not isinstance(item, (PolygonZone, LineZone)):
            raise TypeError(f"draw_zones draws PolygonZone and LineZone objects, got {type(item).__name__}")
    cv2 = require_cv2("drawing zones and lines")
    out: NDArray[np.uint8] = image.copy()
    shape = (int(image.shape[0]), int(image.shape[1]))
    thickness = max(1, round(sum(shape) / 2 / 400))
    for index, item in enumerate(items):
        if isinstance(item, PolygonZone) and alpha > 0:
            _blend(out, item.raster(shape), zone_color(index), float(alpha))
    for index, item in enumerate(items):
        color = zone_color(index)
        if isinstance(item, PolygonZone):
            points = item.points(shape)
            poly = np.round(points).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [poly], True, color, thickness, cv2.LINE_AA)
            if labels:
                top = int(np.argmin(points[:, 1] * shape[1] + points[:, 0]))  # the topmost (then leftmost) vertex
                corner = (int(round(points[top, 0])), int(round(points[top, 1])) + 1)
                _label(cv2, out, f"{item.name}: {item.current_count}", corner, color, thickness)
        else:
            start, end = item.endpoints(shape)
            a = (int(round(start[0])), int(round(start[1])))
            b = (int(round(end[0])), int(round(end[1])))
            cv2.line(out, a, b, color, thickness + 1, cv2.LINE_AA)
            for p in (a, b):
                cv2.circle(out, p, thickness + 2, color, -1, cv2.LINE_AA)
            direction = end - start
            length = float(np.hypot(direction[0], direction[1]))
            normal = np.array([-direction[1], direction[0]]) / length  # points to the right-hand ("in") side
            middle = (start + end) / 2
            tip = middle + normal * max(12.0, 6.0 * thickness)
            cv2.arrowedLine(
                out,
                (int(round(middle[0])), int(round(middle[1]))),
                (int(round(tip[0])), int(round(tip[1]))),
                color,
                thickness,
                cv2.LINE_AA,
                tipLength=0.4,
            )
            if labels:
                text = f"{item.name} in {item.in_count} out {item.out_count}"
                _label(cv2, out, text, (int(round(middle[0])), int(round(middle[1]))), color, thickness)
    return out


def _blend(out: NDArray[np.uint8], region: NDArray[np.bool_], color: tuple[int, int, int], alpha: float) -> None:
    pixels = out[region].astype(np.float32)
    out[region] = (pixels * (1.0 - alpha) + np.array(color, dtype=np.float32) * alpha + 0.5).astype(np.uint8)


def _paint_mask(out: NDArray[np.uint8], maskset: MaskSet, i: int, color: tuple[int, int, int], alpha: float) -> None:
    x1, y1, x2, y2 = (int(v) for v in maskset.rects[i])
    bitmap = maskset.bitmap(i)
    if bitmap.size == 0:
        return
    roi = out[y1:y2, x1:x2]
    bitmap = bitmap[: roi.shape[0], : roi.shape[1]].astype(bool)
    pixels = roi[bitmap].astype(np.float32)
    roi[bitmap] = (pixels * (1.0 - alpha) + np.array(color, dtype=np.float32) * alpha + 0.5).astype(np.uint8)


def _label(
    cv2: ModuleType,
    out: NDArray[np.uint8],
    text: str,
    corner: tuple[int, int],
    color: tuple[int, int, int],
    thickness: int,
) -> None:
    scale = thickness / 3
    font_thickness = max(thickness - 1, 1)
    (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, font_thickness)
    h, w = out.shape[:2]
    x = min(max(corner[0], 0), max(w - tw, 0))
    y = corner[1] - th - baseline - 3 if corner[1] - th - baseline - 3 >= 0 else corner[1]  # above, else inside
    y = min(max(y, 0), max(h - th - baseline - 3, 0))
    cv2.rectangle(out, (x, y), (x + tw + 2, y + th + baseline + 3), color, -1, cv2.LINE_AA)
    text_color = (255, 255, 255) if sum(color) < 450 else (0, 0, 0)
    cv2.putText(
        out, text, (x + 1, y + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, text_color, font_thickness, cv2.LINE_AA
    )
