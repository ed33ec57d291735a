"""Render one procedural scene: a textured background with shape objects and exact visible-part labels.

Objects are painted in order, later ones occluding earlier ones. An ``owner`` map records which
object each pixel shows; an object's visible mask is ``owner == index``. A placement is rejected
(and re-drawn) when it would leave any object, itself included, badly represented by one YOLO
polygon: visible area under 40 % of its full area (or under ``min_area`` pixels), or a visible part
split into pieces or given a hole (the fill of the largest outer contour must match the visible
mask with IoU >= 0.95). So every object in the image is labelled, and every label is the outer
contour of what is actually visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..opencv import require_cv2
from . import textures
from .shapes import CLASS_NAMES, polygon_area, random_shape

MIN_VISIBLE_FRACTION = 0.4
MIN_LABEL_IOU = 0.95
_SHIFT = 4  # fillPoly fractional bits: sub-pixel accurate shape edges


class Scene(NamedTuple):
    """``image`` uint8 BGR [h, w, 3]; ``labels`` [(class_id, polygon float64 [k, 2] pixels)];
    ``masks`` bool [h, w] visible mask of each label, same order."""

    image: np.ndarray
    labels: list[tuple[int, np.ndarray]]
    masks: list[np.ndarray]


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def rasterize(poly: np.ndarray, shape: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Fill a float polygon (pixels) into a bool mask of ``shape`` = (h, w); ``offset`` = (x0, y0)
    is subtracted first. Sub-pixel accurate (fixed point with 4 fractional bits)."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    mask = np.zeros(shape, np.uint8)
    pts = np.round((np.asarray(poly, np.float64) - offset) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask.astype(bool)


def outer_contour(mask: np.ndarray) -> tuple[np.ndarray | None, float]:
    """Largest outer contour of a bool mask (int [k, 2]) and the IoU of its fill with the mask."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    m = mask.astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None, 0.0
    best = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    filled = np.zeros_like(m)
    cv2.fillPoly(filled, [best], 1)
    inter = int(np.count_nonzero(filled & m))
    union = int(np.count_nonzero(filled | m))
    return best.reshape(-1, 2), inter / max(union, 1)


class _Obj(NamedTuple):
    cls: int
    full_area: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of its painted pixels (exclusive end)


def _bbox(poly: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(poly.min(0)).astype(int) - 1
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 2
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def _acceptable(owner: np.ndarray, objs: Sequence[_Obj], box, new_mask: np.ndarray, min_area: int) -> bool:
    """Would painting ``new_mask`` (at ``box``) keep every earlier object well labelled?"""
    x0, y0, x1, y1 = box
    hit = np.unique(owner[y0:y1, x0:x1][new_mask])
    for j in hit[hit >= 0]:
        o = objs[j]
        ox0, oy0, ox1, oy1 = o.box
        vis = owner[oy0:oy1, ox0:ox1] == j
        # Remove the part the new object covers, in the intersection of both boxes.
        ix0, iy0, ix1, iy1 = max(x0, ox0), max(y0, oy0), min(x1, ox1), min(y1, oy1)
        vis[iy0 - oy0 : iy1 - oy0, ix0 - ox0 : ix1 - ox0] &= ~new_mask[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        area = int(np.count_nonzero(vis))
        if area < max(min_area, MIN_VISIBLE_FRACTION * o.full_area):
            return False
        if outer_contour(vis)[1] < MIN_LABEL_IOU:
            return False
    return True


def _contrasting_color(rng: np.random.Generator, under: np.ndarray, tries: int = 6) -> np.ndarray:
    """A random colour at least ~60 (BGR distance) away from the mean of the pixels ``under`` it."""
    mean = under.reshape(-1, 3).mean(0) if under.size else np.zeros(3)
    best, best_d = None, -1.0
    for _ in range(tries):
        c = textures.random_color(rng)
        d = float(np.linalg.norm(c - mean))
        if d >= 60:
            return c
        if d > best_d:
            best, best_d = c, d
    if best is None:
        raise ValueError(f"tries must be at least 1, got {tries}")
    return best


def _photometric(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Mild brightness/contrast change, blur and sensor noise."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    out = cv2.addWeighted(img, float(rng.uniform(0.8, 1.2)), img, 0.0, float(rng.uniform(-20, 20)))  # saturates
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, 1.0)))
    if rng.random() < 0.5:
        # Luminance grain (one channel, broadcast) is a third of the cost of per-channel noise.
        grain = rng.standard_normal(out.shape[:2], np.float32) * np.float32(rng.uniform(1, 6))
        out = cv2.add(out, cv2.merge([grain, grain, grain]), dtype=cv2.CV_8U)
    return out


def render_scene(
    seed: int | np.random.Generator = 0,
    width: int = 320,
    height: int = 320,
    max_objects: int = 6,
    size_range: tuple[float, float] = (0.04, 0.4),
    attempts: int = 12,
) -> Scene:
    """Render a scene with 1..``max_objects`` objects (fewer when placements keep failing).

    Object size (circumscribed diameter) is log-uniform in ``size_range`` times min(width, height);
    classes are uniform over CLASS_NAMES; colours and textures are random and independent of class.
    """
    for name, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 16:
            raise ValueError(f"{name} must be an integer >= 16, got {v!r}")
    if isinstance(max_objects, bool) or not isinstance(max_objects, (int, np.integer)) or max_objects < 0:
        raise ValueError(f"max_objects must be an integer >= 0, got {max_objects!r}")
    lo, hi = (float(s) for s in size_range)
    if not 0 < lo <= hi <= 2:
        raise ValueError(f"size_range must satisfy 0 < lo <= hi <= 2, got {size_range!r}")
    rng = as_rng(seed)
    w, h = int(width), int(height)
    side = min(w, h)
    min_area = max(24, int(0.0004 * w * h))

    img = textures.background(rng, h, w)
    owner = np.full((h, w), -1, np.int16)
    objs: list[_Obj] = []
    n = int(rng.integers(1, max_objects + 1)) if max_objects else 0
    pending = None  # a class whose placement failed is tried again first (keeps classes balanced)
    for _ in range(n):
        cls = int(rng.integers(len(CLASS_NAMES))) if pending is None else pending
        pending = cls
        for _ in range(attempts):
            r = max(3.0, 0.5 * side * math.exp(rng.uniform(math.log(lo), math.log(hi))))
            poly = random_shape(cls, rng, rng.uniform(0, w), rng.uniform(0, h), r)
            box = _bbox(poly, w, h)
            x0, y0, x1, y1 = box
            if x1 <= x0 or y1 <= y0:
                continue
            mask = rasterize(poly, (y1 - y0, x1 - x0), (x0, y0))
            full = polygon_area(poly)
            area = int(np.count_nonzero(mask))
            if area < min_area or area < 0.6 * full or outer_contour(mask)[1] < MIN_LABEL_IOU:
                continue
            if not _acceptable(owner, objs, box, mask, min_area):
                continue
            crop = img[y0:y1, x0:x1]
            base = _contrasting_color(rng, crop[mask])
            crop[mask] = textures.fill(rng, y1 - y0, x1 - x0, base)[mask]
            owner[y0:y1, x0:x1][mask] = len(objs)
            objs.append(_Obj(cls, full, box))
            pending = None
            break

    img = _photometric(rng, img)
    labels, masks = [], []
    for j, o in enumerate(objs):
        vis = owner == j
        x0, y0, x1, y1 = o.box
        contour, _ = outer_contour(vis[y0:y1, x0:x1])
        if contour is None:  # cannot happen: placements keep every object visible
            continue
        labels.append((o.cls, contour.astype(np.float64) + (x0, y0)))  # noqa: RUF005 - numpy broadcast
        masks.append(vis)
    return Scene(img, labels, masks)
