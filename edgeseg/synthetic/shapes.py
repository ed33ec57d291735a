"""Exact shape polygons (float64 [k, 2], pixel x/y) for the procedural shapes dataset.

Every generator takes a centre ``(cx, cy)``, a circumradius ``r`` (the shape fits in the circle of
radius ``r`` around the centre) and a rotation ``angle`` in radians, and returns the vertices in
order. ``random_shape`` samples the per-class parameters (aspect, triangle angles, star arms) from a
numpy Generator, so a class is defined by its geometry, never by its colour.
"""

from __future__ import annotations

import math

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star")


def _check(r: float, name: str = "r") -> float:
    r = float(r)
    if not math.isfinite(r) or r <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {r!r}")
    return r


def _place(pts: np.ndarray, cx: float, cy: float, angle: float) -> np.ndarray:
    """Rotate local points by ``angle`` about the origin and move them to (cx, cy)."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return pts @ rot.T + np.array([cx, cy], np.float64)


def circle(cx: float, cy: float, r: float, aspect: float = 1.0, angle: float = 0.0, n: int = 0) -> np.ndarray:
    """Ellipse with semi-axes ``r`` and ``r * aspect`` (``aspect`` in (0, 1]) as an n-gon.

    ``n=0`` picks enough vertices for sub-pixel accuracy at this radius.
    """
    r = _check(r)
    if not 0 < aspect <= 1:
        raise ValueError(f"aspect must be in (0, 1], got {aspect!r}")
    if n == 0:
        n = int(np.clip(math.ceil(2 * math.pi * r / 2.0), 24, 256))
    if n < 8:
        raise ValueError(f"n must be >= 8 (or 0 for automatic), got {n!r}")
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return _place(np.stack([r * np.cos(t), r * aspect * np.sin(t)], 1), cx, cy, angle)


def square(cx: float, cy: float, r: float, aspect: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """Rectangle with half-diagonal ``r`` and side ratio ``aspect`` (1 = square)."""
    r = _check(r)
    if not 0 < aspect <= 1:
        raise ValueError(f"aspect must be in (0, 1], got {aspect!r}")
    a = r / math.sqrt(1 + aspect * aspect)
    b = a * aspect
    pts = np.array([[-a, -b], [a, -b], [a, b], [-a, b]], np.float64)
    return _place(pts, cx, cy, angle)


def triangle(
    cx: float, cy: float, r: float, angles: tuple[float, float, float] = (60.0, 60.0, 60.0), angle: float = 0.0
) -> np.ndarray:
    """Triangle inscribed in the circle of radius ``r`` with interior ``angles`` in degrees (sum 180)."""
    r = _check(r)
    a = np.asarray(angles, np.float64)
    if a.shape != (3,) or np.any(a <= 0) or abs(a.sum() - 180.0) > 1e-6:
        raise ValueError(f"angles must be three positive degrees summing to 180, got {angles!r}")
    # Inscribed-angle theorem: the side opposite angle A spans a central angle 2A.
    central = np.radians(2 * a)
    t = np.array([0.0, central[2], central[2] + central[0]]) - math.pi / 2
    return _place(np.stack([r * np.cos(t), r * np.sin(t)], 1), cx, cy, angle)


def star(cx: float, cy: float, r: float, inner: float = 0.45, points: int = 5, angle: float = 0.0) -> np.ndarray:
    """Star with ``points`` arms, outer radius ``r`` and inner radius ``r * inner``."""
    r = _check(r)
    if not 0 < inner < 1:
        raise ValueError(f"inner must be in (0, 1), got {inner!r}")
    if int(points) != points or points < 3:
        raise ValueError(f"points must be an integer >= 3, got {points!r}")
    k = 2 * int(points)
    t = np.arange(k) * (2 * math.pi / k) - math.pi / 2
    rad = np.where(np.arange(k) % 2 == 0, r, r * inner)
    return _place(np.stack([rad * np.cos(t), rad * np.sin(t)], 1), cx, cy, angle)


def random_shape(class_id: int, rng: np.random.Generator, cx: float, cy: float, r: float) -> np.ndarray:
    """A polygon of class ``class_id`` (index into CLASS_NAMES) with randomly drawn shape parameters."""
    if int(class_id) != class_id or not 0 <= class_id < len(CLASS_NAMES):
        raise ValueError(f"class_id must be an integer in [0, {len(CLASS_NAMES)}), got {class_id!r}")
    angle = float(rng.uniform(0, 2 * math.pi))
    name = CLASS_NAMES[int(class_id)]
    if name == "circle":
        return circle(cx, cy, r, aspect=float(rng.uniform(0.85, 1.0)), angle=angle)
    if name == "square":
        return square(cx, cy, r, aspect=float(rng.uniform(0.85, 1.0)), angle=angle)
    if name == "triangle":
        # Every interior angle >= 35 degrees: no slivers that could pass for something else.
        extra = rng.dirichlet((2.0, 2.0, 2.0)) * (180.0 - 3 * 35.0)
        return triangle(cx, cy, r, angles=tuple(35.0 + extra), angle=angle)
    return star(cx, cy, r, inner=float(rng.uniform(0.38, 0.55)), points=int(rng.integers(5, 7)), angle=angle)


def polygon_area(poly: np.ndarray) -> float:
    """Absolute shoelace area of a [k, 2] polygon."""
    p = np.asarray(poly, np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"polygon must have shape [k, 2], got {p.shape}")
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
