"""Drawing detections onto images (no data logic: it only paints what Detections hold).

Masks are painted with numpy; boxes and labels need OpenCV (cv2), imported when they are drawn.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .detections import Detections
from .opencv import require_cv2

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
    if masks and detections.masks is not None and alpha > 0:
        for i in order:
            _paint_mask(out, detections.masks, int(i), class_color(detections.class_id[i]), float(alpha))
    if not (boxes or labels):
        return out
    cv2 = require_cv2("drawing boxes and labels")  # even with nothing to draw: fails on the first frame, not later
    thickness = max(1, round(sum(image.shape[:2]) / 2 / 400))
    names = detections.class_names
    for i in order:
        color = class_color(detections.class_id[i])
        x1, y1, x2, y2 = (int(round(v)) for v in detections.xyxy[i])
        if boxes:
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        if labels:
            _label(cv2, out, f"{names[i]} {detections.confidence[i]:.2f}", (x1, y1), color, thickness)
    return out


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
