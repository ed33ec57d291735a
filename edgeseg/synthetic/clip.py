"""A short procedural video: shape objects gliding and spinning over a slowly panning textured background.

Same classes and appearance distribution as the shapes dataset, so the built-in default model has
something to segment offline (``edgeseg run --source demo``). ``iter_clip_frames`` yields frames
without touching the disk; ``make_clip`` collects them or writes an mp4.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..opencv import require_cv2
from . import textures
from .scenes import as_rng, rasterize
from .shapes import CLASS_NAMES, random_shape


class _Sprite(NamedTuple):
    local: np.ndarray  # polygon [k, 2] around (0, 0)
    patch: np.ndarray  # fill texture, square, centred on the polygon's origin
    pos: np.ndarray  # centre at frame 0 (x, y)
    vel: np.ndarray  # pixels per frame
    angle: float  # radians at frame 0
    spin: float  # radians per frame
    class_id: int


def _check_size(size) -> tuple[int, int]:
    try:
        w, h = size
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height), got {size!r}") from None
    for v in (w, h):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 32:
            raise ValueError(f"size must be two integers >= 32, got {size!r}")
    return int(w), int(h)


def _check_frames(n_frames, allow_none: bool) -> int | None:
    if n_frames is None and allow_none:
        return None
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be an integer >= 1{' or None' if allow_none else ''}, got {n_frames!r}")
    return int(n_frames)


def _sprites(rng: np.random.Generator, w: int, h: int, n: int) -> list[_Sprite]:
    side = min(w, h)
    classes = np.resize(rng.permutation(len(CLASS_NAMES)), n)  # every class appears when n >= 4
    out = []
    for cls in classes:
        r = 0.5 * side * math.exp(rng.uniform(math.log(0.08), math.log(0.3)))
        local = random_shape(int(cls), rng, 0.0, 0.0, r)
        s = 2 * int(math.ceil(r)) + 3
        patch = textures.fill(rng, s, s, textures.random_color(rng))
        speed = rng.uniform(0.6, 2.5) * side / 360.0
        d = rng.uniform(0, 2 * math.pi)
        out.append(
            _Sprite(
                local,
                patch,
                np.array([rng.uniform(0, w), rng.uniform(0, h)]),
                np.array([speed * math.cos(d), speed * math.sin(d)]),
                float(rng.uniform(0, 2 * math.pi)),
                float(rng.uniform(-0.04, 0.04)),
                int(cls),
            )
        )
    return out


def _bounce(p: float, lo: float, hi: float) -> float:
    """Free position ``p`` folded into [lo, hi] by reflection (a triangle wave: smooth bounces)."""
    span = hi - lo
    q = (p - lo) % (2 * span)
    return lo + q if q <= span else hi - (q - span)


def _pose(sp: _Sprite, t: int, w: int, h: int) -> tuple[float, float, float]:
    """Centre (x, y) and angle of a sprite at frame ``t``."""
    x = _bounce(sp.pos[0] + sp.vel[0] * t, 0.0, float(w))
    y = _bounce(sp.pos[1] + sp.vel[1] * t, 0.0, float(h))
    return x, y, sp.angle + sp.spin * t


def _draw(frame: np.ndarray, sp: _Sprite, t: int) -> None:
    h, w = frame.shape[:2]
    x, y, angle = _pose(sp, t, w, h)
    paint_sprite(frame, sp.local, sp.patch, x, y, angle)


def clip_poses(
    n_frames: int = 90, size: tuple[int, int] = (640, 360), seed: int = 0, n_objects: int | None = None
) -> tuple[list[tuple[int, np.ndarray]], np.ndarray]:
    """The objects of the clip :func:`iter_clip_frames` makes with the same arguments, for ground truth:
    ``(objects, poses)``, ``objects[i] = (class_id, polygon around (0, 0))`` in painting order (later ones hide
    earlier ones), ``poses[t, i] = (x, y, angle)``."""
    frame_count = _check_frames(n_frames, allow_none=False)
    w, h = _check_size(size)
    sprites = _setup(as_rng(seed), w, h, n_objects)[3]
    poses = np.array([[_pose(sp, t, w, h) for sp in sprites] for t in range(frame_count or 0)], np.float64)
    return [(sp.class_id, sp.local) for sp in sprites], poses.reshape(frame_count or 0, len(sprites), 3)


def sprite_region(
    local: np.ndarray, x: float, y: float, angle: float, size: tuple[int, int]
) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """Where a sprite lands in a frame of ``size`` = (w, h): ``(x0, y0, mask, rot)``.

    ``local`` (polygon around (0, 0)) turned by ``angle`` and moved to (x, y); ``mask`` is the bool bitmap of
    the pixels it covers inside the frame, its top-left pixel at (x0, y0); ``rot`` the 2x2 rotation. ``None``
    when no part of it is inside the frame.
    """
    w, h = size
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    poly = local @ rot.T + (x, y)
    x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), rasterize(poly, (y1 - y0, x1 - x0), (x0, y0)), rot


def paint_sprite(
    frame: np.ndarray,
    local: np.ndarray,
    patch: np.ndarray,
    x: float,
    y: float,
    angle: float,
    region: tuple[int, int, np.ndarray, np.ndarray] | None = None,
) -> tuple[int, int, np.ndarray] | None:
    """Paint a sprite into ``frame`` in place: polygon ``local`` (around (0, 0)) turned by ``angle`` and moved
    to (x, y), filled with the square texture ``patch`` (centred on the polygon's origin, turning with it).

    ``region`` is :func:`sprite_region`'s answer when the caller has it already. Returns ``(x0, y0, mask)``,
    the painted pixels (bool bitmap with its top-left pixel at (x0, y0)), or ``None`` when the sprite is
    outside the frame.
    """
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    h, w = frame.shape[:2]
    if region is None:
        region = sprite_region(local, x, y, angle, (w, h))
    if region is None:
        return None
    x0, y0, mask, rot = region
    y1, x1 = y0 + mask.shape[0], x0 + mask.shape[1]
    pc = (patch.shape[1] - 1) / 2.0
    # Patch pixel q -> crop pixel: rot (q - pc) + centre - crop origin; the texture turns with the shape.
    m = np.hstack([rot, (np.array([x - x0, y - y0]) - rot @ np.array([pc, pc]))[:, None]])
    tex = cv2.warpAffine(patch, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    crop = frame[y0:y1, x0:x1]
    crop[mask] = tex[mask]
    return x0, y0, mask


def iter_clip_frames(
    n_frames: int | None = 90, size: tuple[int, int] = (640, 360), seed: int = 0, n_objects: int | None = None
) -> Iterator[np.ndarray]:
    """Yield ``n_frames`` uint8 BGR frames of ``size`` = (width, height); ``n_frames=None`` never stops.

    ``n_objects`` defaults to a seeded draw in 4..7.
    """
    n_frames = _check_frames(n_frames, allow_none=True)
    w, h = _check_size(size)
    if n_objects is not None and (
        isinstance(n_objects, bool) or not isinstance(n_objects, (int, np.integer)) or n_objects < 0
    ):
        raise ValueError(f"n_objects must be an integer >= 0 or None, got {n_objects!r}")
    rng = as_rng(seed)
    return _frames(rng, n_frames, w, h, n_objects)


def _frames(
    rng: np.random.Generator, n_frames: int | None, w: int, h: int, n_objects: int | None
) -> Iterator[np.ndarray]:
    pad, bg, phase, sprites = _setup(rng, w, h, n_objects)
    t = 0
    while n_frames is None or t < n_frames:
        # Slow Lissajous pan of the background (period ~10 s at 30 fps).
        ox = int(round(pad + pad * math.sin(2 * math.pi * t / 300 + phase[0])))
        oy = int(round(pad + pad * math.sin(2 * math.pi * t / 420 + phase[1])))
        frame = bg[oy : oy + h, ox : ox + w].copy()
        for sp in sprites:
            _draw(frame, sp, t)
        yield frame
        t += 1


def _setup(
    rng: np.random.Generator, w: int, h: int, n_objects: int | None
) -> tuple[int, np.ndarray, np.ndarray, list[_Sprite]]:
    """Everything a clip draws from its seed, in the order it draws it: pad, background, pan phase, sprites."""
    n = int(rng.integers(4, 8)) if n_objects is None else int(n_objects)
    pad = max(4, min(w, h) // 12)
    bg = textures.background(rng, h + 2 * pad, w + 2 * pad)
    phase = rng.uniform(0, 2 * math.pi, 2)
    return pad, bg, phase, _sprites(rng, w, h, n)


def make_clip(
    path: str | os.PathLike | None = None,
    n_frames: int = 90,
    size: tuple[int, int] = (640, 360),
    fps: float = 30,
    seed: int = 0,
    n_objects: int | None = None,
) -> Path | list[np.ndarray]:
    """Render a clip: with ``path``, write an mp4 (``mp4v``) and return its Path; without, return the frames."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    frame_count = _check_frames(n_frames, allow_none=False)
    w, h = _check_size(size)
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.number)) or not 0 < fps <= 1000:
        raise ValueError(f"fps must be a number in (0, 1000], got {fps!r}")
    frames = iter_clip_frames(frame_count, (w, h), seed, n_objects)
    if path is None:
        return list(frames)
    path = Path(path).expanduser()
    if path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise ValueError(f"path must end in .mp4, .m4v or .mov, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise OSError(f"cv2.VideoWriter could not open {str(path)!r} with codec mp4v")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path
