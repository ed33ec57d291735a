"""Clips with ground-truth identities, for evaluating trackers: scripted shape objects over a panning background.

    from edgeseg.synthetic.tracks import SCENARIOS, tracking_clip
    clip = tracking_clip("crossing", seed=0)
    for frame, truth in zip(clip.frames(), clip.gt):
        truth.ids, truth.class_id, truth.xyxy, truth.visible, truth.masks  # one row per object in the frame

The objects look like the demo clip's (same classes, shapes and textures; :func:`.clip.paint_sprite` draws both),
so the built-in demo model finds them. Each object follows a script of piecewise-linear moves at set speeds and
stops; objects are painted in a fixed depth order, so where two overlap the nearer one hides the farther. The
scenarios (640x360 at 30 fps):

- ``crossing``: head-on crossings in horizontal lanes (a square hiding a circle completely for a moment; two
  triangles of one size and speed), a fast square overtaking a slow one, a star that comes down, stops and goes
  on while a fast circle passes behind it.
- ``occlusion``: a big, slowly drifting square in front of two circles of the same size that pass behind it
  from opposite sides (hidden together for a while), a star that stops half behind it, a triangle that passes
  in front of it and a square that crosses behind it.
- ``exits``: objects leave the frame and come back: a circle for about half a second at the right edge (back
  in the other direction), a triangle for about half a second at the left edge, a square for more than three
  seconds (back in through the top edge at another place); one object stops twice; two enter late.
- ``crowd``: nine objects on seeded random paths with stops (the seed changes the paths; in the others it
  changes only the looks and the background).

**Identity across absences.** An object keeps its id for the whole clip: one that leaves (behind another or out
of the frame) and comes back is the same object, as a person who steps out and returns is. The ground truth
therefore asks a tracker to re-identify it; whether it should after a long absence is left to the metrics:
HOTA's association score and IDF1 count a new id as an association error, and CLEAR MOT counts an ID switch
(against the object's last id, however long ago). A motion-only tracker with a lost buffer shorter than the
absence (ByteTrack's default of 30 frames, against the square's 3+ s in ``exits``) is expected to lose these.

**Per-frame ground truth** (:class:`FrameTruth`): an object is in a frame's ground truth when at least
``MIN_VISIBLE`` (10 %) of its pixels are visible (in the frame and not hidden by a nearer object); its box is
the bounding box of its visible pixels (pixel edges: a mask pixel (x, y) spans [x, x + 1)), its mask the visible
pixels. Objects with fewer visible pixels (but some) are listed as ``ignore`` boxes: an evaluation should
neither ask for them nor punish a tracker that reports them (MOTChallenge's distractors). ``clip.centres`` holds
each object's true centre in every frame (also outside the frame), so line crossings can be computed exactly.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..ops.masks import MaskSet
from . import textures
from .clip import clip_poses, paint_sprite, sprite_region
from .scenes import rasterize
from .shapes import CLASS_NAMES, random_shape

FPS = 30.0
SIZE = (640, 360)  # width, height
MIN_VISIBLE = 0.1  # fraction of an object's pixels that must be visible for it to be in a frame's ground truth
SCENARIOS = ("crossing", "occlusion", "exits", "crowd")

CIRCLE, SQUARE, TRIANGLE, STAR = range(4)


@dataclass(frozen=True)
class TrackObject:
    """One scripted object: ``id`` (>= 1, its identity in every frame), class, circumradius (pixels) and depth
    (``z``: larger is nearer; nearer objects hide farther ones)."""

    id: int
    class_id: int
    radius: float
    z: int


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one frame: one row per object with at least ``MIN_VISIBLE`` of its pixels visible.

    Attributes:
        index: frame number (0-based).
        ids: int64 [n] object ids (>= 1; the same object has the same id in every frame).
        class_id: int32 [n] class ids (index into ``CLASS_NAMES``).
        xyxy: float32 [n, 4] box of the visible pixels (x0, y0, x1, y1; pixel edges, x1 and y1 exclusive).
        visible: float32 [n] visible fraction of each object's pixels (in (MIN_VISIBLE, 1]).
        masks: the visible pixels, one box-sized bitmap per row (``masks.rects`` equals ``xyxy``).
        ignore_ids: int64 [m] objects with some, but fewer than ``MIN_VISIBLE``, of their pixels visible.
        ignore_xyxy: float32 [m, 4] their visible boxes.
    """

    index: int
    ids: NDArray[np.int64]
    class_id: NDArray[np.int32]
    xyxy: NDArray[np.float32]
    visible: NDArray[np.float32]
    masks: MaskSet
    ignore_ids: NDArray[np.int64]
    ignore_xyxy: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class _Look:
    local: np.ndarray  # polygon around (0, 0)
    patch: np.ndarray  # fill texture
    angle: float  # radians at frame 0
    spin: float  # radians per frame


class TrackingClip:
    """A rendered scenario: ``gt`` (a :class:`FrameTruth` per frame), ``frames()`` (uint8 BGR images, rendered
    on demand), ``objects`` and ``centres`` (float64 [n_objects, n_frames, 2], each object's true centre in
    every frame, also when it is outside the frame). Build it with :func:`tracking_clip`."""

    def __init__(
        self,
        name: str,
        seed: int,
        objects: Sequence[TrackObject],
        centres: np.ndarray,
        looks: Sequence[_Look],
        background: np.ndarray,
        pan: np.ndarray,
    ) -> None:
        self.name = name
        self.seed = seed
        self.size = SIZE
        self.fps = FPS
        self.class_names = CLASS_NAMES
        self.objects = tuple(objects)
        self.centres = centres
        self.centres.flags.writeable = False
        self._looks = tuple(looks)
        self._background = background
        self._pan = pan  # int [n_frames, 2] background offset (x, y) of each frame
        self._order = sorted(range(len(self.objects)), key=lambda i: self.objects[i].z)  # far to near
        self.gt: tuple[FrameTruth, ...] = tuple(self._truth(t) for t in range(self.n_frames))

    @property
    def n_frames(self) -> int:
        return int(self.centres.shape[1])

    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        return f"TrackingClip({self.name!r}, seed={self.seed}, frames={self.n_frames}, objects={len(self.objects)})"

    def _angle(self, index: int, t: int) -> float:
        """Rotation (radians) of object row ``index`` (0-based, not its id) in frame ``t``."""
        look = self._looks[index]
        return look.angle + look.spin * t

    def frames(self) -> Iterator[np.ndarray]:
        """The frames in order (uint8 BGR [360, 640, 3]), each rendered when asked for."""
        for t in range(self.n_frames):
            yield self.render(t)

    def render(self, t: int, hide: Collection[int] = ()) -> np.ndarray:
        """Frame ``t``; objects whose id is in ``hide`` are left out (the others are painted as in the clip)."""
        t = self._check_index(t)
        w, h = self.size
        ox, oy = (int(v) for v in self._pan[t])
        frame = self._background[oy : oy + h, ox : ox + w].copy()
        for i in self._order:
            if self.objects[i].id in hide:
                continue
            look = self._looks[i]
            x, y = self.centres[i, t]
            paint_sprite(frame, look.local, look.patch, float(x), float(y), self._angle(i, t))
        return frame

    def _check_index(self, t: int) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < self.n_frames:
            raise ValueError(f"frame index must be an integer in [0, {self.n_frames}), got {t!r}")
        return int(t)

    def _truth(self, t: int) -> FrameTruth:
        painted = [
            (self.objects[i].id, self.objects[i].class_id, self._looks[i].local, *self.centres[i, t], self._angle(i, t))
            for i in self._order
        ]
        return frame_truth(t, self.size, painted)


def frame_truth(
    t: int, size: tuple[int, int], painted: Sequence[tuple[int, int, np.ndarray, float, float, float]]
) -> FrameTruth:
    """Frame ``t``'s ground truth from its objects in painting order (later ones hide earlier ones): each
    ``(id, class_id, polygon around (0, 0), x, y, angle)``."""
    w, h = size
    owner = np.full((h, w), -1, np.int32)
    regions: dict[int, tuple[int, int, np.ndarray]] = {}
    full_px: dict[int, int] = {}
    for k, (_, _, local, x, y, a) in enumerate(painted):
        region = sprite_region(local, float(x), float(y), float(a), (w, h))
        if region is None:
            continue
        x0, y0, mask, rot = region
        owner[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]][mask] = k
        regions[k] = (x0, y0, mask)
        # All its pixels, in the frame or not: the polygon rasterised in its own box.
        poly = local @ rot.T + (x, y)
        bx0, by0 = np.floor(poly.min(0)).astype(int) - 1
        bx1, by1 = np.ceil(poly.max(0)).astype(int) + 2
        full_px[k] = int(np.count_nonzero(rasterize(poly, (by1 - by0, bx1 - bx0), (bx0, by0))))
    rows: list[tuple[int, int, tuple[int, int, int, int], float, np.ndarray]] = []
    ignored: list[tuple[int, tuple[int, int, int, int]]] = []
    for k in sorted(regions, key=lambda k: painted[k][0]):
        x0, y0, mask = regions[k]
        vis = owner[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] == k
        n_vis = int(np.count_nonzero(vis))
        if n_vis == 0:
            continue
        ys, xs = np.nonzero(vis)
        box = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)
        fraction = min(1.0, n_vis / max(full_px[k], 1))
        if fraction < MIN_VISIBLE:
            ignored.append((painted[k][0], box))
            continue
        bitmap = vis[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        rows.append((painted[k][0], painted[k][1], box, fraction, bitmap))
    rects = np.array([r[2] for r in rows], np.int32).reshape(-1, 4)
    sizes = [r[4].size for r in rows]
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    data = np.concatenate([r[4].reshape(-1) for r in rows]).astype(np.uint8) if rows else np.zeros(0, np.uint8)
    return FrameTruth(
        index=t,
        ids=np.array([r[0] for r in rows], np.int64),
        class_id=np.array([r[1] for r in rows], np.int32),
        xyxy=rects.astype(np.float32),
        visible=np.array([r[3] for r in rows], np.float32),
        masks=MaskSet(rects, data, offsets, (h, w)),
        ignore_ids=np.array([g[0] for g in ignored], np.int64),
        ignore_xyxy=np.array([g[1] for g in ignored], np.float32).reshape(-1, 4),
    )


def demo_truth(n_frames: int = 180, size: tuple[int, int] = SIZE, seed: int = 0) -> list[FrameTruth]:
    """Ground truth of the demo clip (``edgeseg run --source demo``: :func:`.clip.iter_clip_frames` with these
    arguments), one :class:`FrameTruth` per frame; object ids 1, 2, ... in painting order."""
    objects, poses = clip_poses(n_frames, size, seed)
    return [
        frame_truth(t, size, [(k + 1, cls, local, *poses[t, k]) for k, (cls, local) in enumerate(objects)])
        for t in range(len(poses))
    ]


# -- scripts -----------------------------------------------------------------------------------------------
# An actor: (class, radius, z, start (x, y), legs); a leg is ("to", x, y, speed px/frame) or ("wait", frames).
_Leg = tuple[str, float, float, float]
_Actor = tuple[int, float, int, tuple[float, float], list[_Leg]]


def _to(x: float, y: float, speed: float) -> _Leg:
    return ("to", float(x), float(y), float(speed))


def _wait(frames: int) -> _Leg:
    return ("wait", float(frames), 0.0, 0.0)


def _path(start: tuple[float, float], legs: Sequence[_Leg], n_frames: int) -> np.ndarray:
    """Centre in each of ``n_frames`` frames: ``start`` in frame 0, then the legs; the last place held."""
    pos = np.array(start, np.float64)
    out = [pos]
    for kind, a, b, c in legs:
        if kind == "wait":
            out.extend([pos] * int(a))
            continue
        target = np.array((a, b), np.float64)
        steps = max(1, math.ceil(float(np.hypot(*(target - pos))) / c))
        out.extend(pos + (target - pos) * (k / steps) for k in range(1, steps + 1))
        pos = target
    while len(out) < n_frames:
        out.append(pos)
    return np.array(out[:n_frames])


def _crossing() -> tuple[int, list[_Actor]]:
    return 300, [
        # Head-on in a lane: the big square hides the circle completely for a moment.
        (CIRCLE, 22, 1, (-40, 104), [_to(680, 104, 2.6)]),
        (SQUARE, 42, 2, (680, 108), [_to(-40, 108, 2.6)]),
        # Two triangles of one size and speed, head-on, the nearer one hiding most of the other.
        (TRIANGLE, 30, 3, (60, 250), [_wait(20), _to(600, 250, 2.0)]),
        (TRIANGLE, 30, 4, (600, 262), [_wait(20), _to(60, 262, 2.0)]),
        # Comes down, stops, goes on; a fast circle passes behind it while it stands.
        (STAR, 32, 5, (470, -40), [_to(470, 180, 1.8), _wait(50), _to(470, 420, 1.8)]),
        (CIRCLE, 22, 0, (-30, 430), [_to(670, 80, 3.5)]),
        # Overtaking in one direction: a fast square passes in front of a slow one.
        (SQUARE, 26, 6, (-30, 318), [_to(670, 318, 1.2)]),
        (SQUARE, 30, 7, (-40, 326), [_wait(120), _to(680, 326, 3.5)]),
    ]


def _occlusion() -> tuple[int, list[_Actor]]:
    return 300, [
        (SQUARE, 78, 10, (250, 180), [_to(390, 180, 0.5)]),
        (CIRCLE, 22, 1, (-30, 175), [_to(670, 175, 2.5)]),
        (CIRCLE, 22, 2, (670, 190), [_wait(30), _to(-30, 190, 2.5)]),
        (TRIANGLE, 28, 11, (320, -40), [_wait(60), _to(320, 400, 1.6)]),
        (STAR, 30, 3, (670, 60), [_to(430, 150, 2.0), _wait(100), _to(670, 40, 2.0)]),
        (SQUARE, 26, 4, (130, 400), [_wait(120), _to(470, -40, 1.8)]),
    ]


def _exits() -> tuple[int, list[_Actor]]:
    return 360, [
        # Out at the right edge for about half a second, back in the other direction, a stop, on.
        (CIRCLE, 26, 1, (420, 200), [_to(672, 200, 2.5), _wait(5), _to(560, 230, 2.5), _wait(40), _to(300, 300, 2.0)]),
        # Out through the top for more than three seconds, back in at another place.
        (SQUARE, 30, 2, (200, 120), [_to(200, -60, 2.0), _wait(100), _to(380, 150, 2.0), _to(600, 60, 1.5)]),
        # Out at the left edge for about half a second, back at nearly the same place.
        (TRIANGLE, 28, 3, (150, 250), [_to(-34, 250, 3.0), _wait(8), _to(120, 280, 3.0), _to(260, 200, 1.5)]),
        # Stays: two stops.
        (STAR, 32, 4, (480, 80), [_to(400, 100, 1.0), _wait(60), _to(520, 90, 1.5), _wait(45), _to(450, 60, 1.0)]),
        # Enters late from the bottom, leaves for good at the right.
        (CIRCLE, 24, 5, (320, 420), [_wait(150), _to(320, 180, 2.0), _to(700, 100, 2.5)]),
        # Enters late from the left.
        (SQUARE, 24, 0, (-50, 320), [_wait(200), _to(600, 320, 2.5)]),
    ]


def _crowd(rng: np.random.Generator) -> tuple[int, list[_Actor]]:
    w, h = SIZE
    actors: list[_Actor] = []
    classes = np.resize(rng.permutation(len(CLASS_NAMES)), 9)
    depth = rng.permutation(9)
    for k in range(9):
        r = float(rng.uniform(18, 40))
        if rng.random() < 0.4:  # enters from an edge
            side = int(rng.integers(4))
            u = float(rng.uniform(0.1, 0.9))
            start = [(-r - 5, u * h), (w + r + 5, u * h), (u * w, -r - 5), (u * w, h + r + 5)][side]
        else:
            start = (float(rng.uniform(r, w - r)), float(rng.uniform(r, h - r)))
        legs: list[_Leg] = []
        if rng.random() < 0.3:
            legs.append(_wait(int(rng.integers(10, 120))))
        for _ in range(int(rng.integers(3, 7))):
            legs.append(_to(rng.uniform(r, w - r), rng.uniform(r, h - r), rng.uniform(1.0, 3.5)))
            if rng.random() < 0.3:
                legs.append(_wait(int(rng.integers(15, 60))))
        actors.append((int(classes[k]), r, int(depth[k]), start, legs))
    return 300, actors


def tracking_clip(name: str, seed: int = 0, n_frames: int | None = None) -> TrackingClip:
    """Build scenario ``name`` (one of ``SCENARIOS``) with ground truth; ``seed`` (int >= 0) draws the looks (and
    the paths of ``crowd``); ``n_frames`` keeps the first frames only (default: all, 300 or 360)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    seed_int = _check_seed(seed)
    looks_rng = np.random.default_rng((seed_int, SCENARIOS.index(name), 0))
    if name == "crowd":
        length, actors = _crowd(np.random.default_rng((seed_int, SCENARIOS.index(name), 1)))
    else:
        length, actors = {"crossing": _crossing, "occlusion": _occlusion, "exits": _exits}[name]()
    if n_frames is not None:
        if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or not 1 <= n_frames <= length:
            raise ValueError(f"n_frames must be an integer in [1, {length}] or None, got {n_frames!r}")
        length = int(n_frames)
    w, h = SIZE
    pad = max(4, min(w, h) // 12)
    background = textures.background(looks_rng, h + 2 * pad, w + 2 * pad)
    phase = looks_rng.uniform(0, 2 * math.pi, 2)
    t = np.arange(length)
    pan = np.stack(  # the demo clip's slow Lissajous pan
        [
            np.round(pad + pad * np.sin(2 * math.pi * t / 300 + phase[0])),
            np.round(pad + pad * np.sin(2 * math.pi * t / 420 + phase[1])),
        ],
        1,
    ).astype(np.int64)
    mean = background.reshape(-1, 3).mean(0)
    objects, looks, centres = [], [], []
    for k, (cls, r, z, start, legs) in enumerate(actors):
        local = random_shape(cls, looks_rng, 0.0, 0.0, r)
        s = 2 * math.ceil(r) + 3
        patch = textures.fill(looks_rng, s, s, _contrasting(looks_rng, mean))
        looks.append(
            _Look(local, patch, float(looks_rng.uniform(0, 2 * math.pi)), float(looks_rng.uniform(-0.02, 0.02)))
        )
        objects.append(TrackObject(k + 1, int(cls), float(r), int(z)))
        centres.append(_path(start, legs, length))
    return TrackingClip(name, seed_int, objects, np.stack(centres), looks, background, pan)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _contrasting(rng: np.random.Generator, mean: np.ndarray, tries: int = 8) -> np.ndarray:
    """A random colour at least 80 (BGR distance) from ``mean``, or the farthest of ``tries`` draws."""
    best, best_d = textures.random_color(rng), -1.0
    for _ in range(tries):
        c = textures.random_color(rng)
        d = float(np.linalg.norm(c - mean))
        if d >= 80:
            return c
        if d > best_d:
            best, best_d = c, d
    return best
