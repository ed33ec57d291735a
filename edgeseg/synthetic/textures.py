"""Random colours, backgrounds and object fill textures (uint8 BGR patches) for procedural scenes.

All functions draw only from the numpy Generator they are given, so a seed fixes the result.
"""

from __future__ import annotations

import math

import numpy as np

from ..opencv import require_cv2

BACKGROUND_KINDS = ("flat", "gradient", "noise", "stripes", "checker", "blobs")
FILL_KINDS = ("solid", "gradient", "stripes", "noise")


def random_color(rng: np.random.Generator) -> np.ndarray:
    """A random BGR colour, float32 [3] in [0, 255]."""
    return rng.uniform(0, 255, 3).astype(np.float32)


def _projection(h: int, w: int, angle: float) -> np.ndarray:
    """x cos(angle) + y sin(angle) on an h x w grid, float32."""
    y, x = np.ogrid[:h, :w]
    return (x * np.float32(math.cos(angle)) + y * np.float32(math.sin(angle))).astype(np.float32)


def _mix(t: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Per-pixel blend c1 * (1 - t) + c2 * t for t in [0, 1] [h, w] -> uint8 [h, w, 3]."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    idx = cv2.convertScaleAbs(np.ascontiguousarray(t, np.float32), alpha=255.0)  # t >= 0: round, saturate
    palette = np.clip(c1 + (c2 - c1) * np.linspace(0, 1, 256, dtype=np.float32)[:, None], 0, 255)
    return cv2.LUT(cv2.merge([idx, idx, idx]), palette.astype(np.uint8).reshape(256, 1, 3))


def gradient(rng: np.random.Generator, h: int, w: int, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    p = _projection(h, w, float(rng.uniform(0, 2 * math.pi)))
    lo, hi = float(p.min()), float(p.max())
    return _mix((p - lo) / max(hi - lo, 1e-6), c1, c2)


def stripes(rng: np.random.Generator, h: int, w: int, c1: np.ndarray, c2: np.ndarray, side: int) -> np.ndarray:
    period = float(rng.uniform(0.04, 0.25)) * side + 2.0
    p = _projection(h, w, float(rng.uniform(0, math.pi))) / period + float(rng.uniform(0, 1))
    t: np.ndarray
    if rng.random() < 0.5:  # hard stripes with a random duty cycle
        t = ((p % 1.0) < rng.uniform(0.3, 0.7)).astype(np.float32)
    else:  # soft sinusoidal bands
        t = 0.5 + 0.5 * np.sin(2 * math.pi * p)
    return _mix(t, c1, c2)


def checker(rng: np.random.Generator, h: int, w: int, c1: np.ndarray, c2: np.ndarray, side: int) -> np.ndarray:
    cell = float(rng.uniform(0.03, 0.15)) * side + 2.0
    a = float(rng.uniform(0, math.pi / 2))
    u = np.floor(_projection(h, w, a) / cell)
    v = np.floor(_projection(h, w, a + math.pi / 2) / cell)
    return _mix(((u + v) % 2).astype(np.float32), c1, c2)


def smooth_noise(rng: np.random.Generator, h: int, w: int, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Low-frequency value noise between two colours, plus a little fine grain."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    cells = int(rng.integers(2, 9))
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    t = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    t += rng.standard_normal((h, w), np.float32) * np.float32(0.05)
    return _mix(np.clip(t, 0, 1), c1, c2)


def blobs(rng: np.random.Generator, h: int, w: int, side: int) -> np.ndarray:
    """A flat colour covered with soft, blurred ellipses (shapeless clutter, never a class shape)."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    img = np.empty((h, w, 3), np.uint8)
    img[:] = random_color(rng).astype(np.uint8)
    for _ in range(int(rng.integers(3, 10))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        major = rng.uniform(0.1, 0.5) * side
        axes = (int(major) + 1, int(major * rng.uniform(0.2, 0.6)) + 1)  # elongated: never circle-like
        cv2.ellipse(
            img, centre, axes, float(rng.uniform(0, 180)), 0, 360, tuple(float(c) for c in random_color(rng)), -1
        )
    # Heavy blur (sigma 3-7 % of the side) so blobs have no crisp outline to mistake for an object.
    return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.03, 0.07) * side))


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A varied uint8 BGR background: one of BACKGROUND_KINDS, sometimes blended with a second."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    img = _one_background(rng, h, w)
    if rng.random() < 0.3:
        other = _one_background(rng, h, w)
        img = cv2.addWeighted(img, 0.5, other, 0.5, 0)
    return img


def _one_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    side = min(h, w)
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    c1, c2 = random_color(rng), random_color(rng)
    if kind == "flat":
        img = np.empty((h, w, 3), np.uint8)
        img[:] = c1.astype(np.uint8)
        return img
    if kind == "gradient":
        return gradient(rng, h, w, c1, c2)
    if kind == "noise":
        return smooth_noise(rng, h, w, c1, c2)
    if kind == "stripes":
        return stripes(rng, h, w, c1, c2, side)
    if kind == "checker":
        return checker(rng, h, w, c1, c2, side)
    return blobs(rng, h, w, side)


def fill(rng: np.random.Generator, h: int, w: int, base: np.ndarray) -> np.ndarray:
    """An object's fill texture (h x w, uint8 BGR) built around the colour ``base``."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    kind = FILL_KINDS[int(rng.integers(len(FILL_KINDS)))]
    side = max(min(h, w), 4)
    if kind == "solid":
        img = np.empty((h, w, 3), np.uint8)
        img[:] = base.astype(np.uint8)
        return img
    # Second colour: a shifted version of the base, so the object keeps one dominant colour.
    other = np.clip(base + rng.uniform(-110, 110, 3).astype(np.float32), 0, 255)
    if kind == "gradient":
        return gradient(rng, h, w, base, other)
    if kind == "stripes":
        return stripes(rng, h, w, base, other, side)
    noisy = base + rng.standard_normal((h, w, 3), np.float32) * np.float32(rng.uniform(8, 30))
    return cv2.convertScaleAbs(np.maximum(noisy, 0))
