"""edgeseg.ops.track: the native tracker vs the numpy reference, the Kalman numbers, the assignment, bad input."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeseg.ops.masks import MaskSet
from edgeseg.ops.track import LOST, TENTATIVE, TRACKED, TrackerConfig, TrackerCore, linear_assignment
from reference import track as ref

FAST = settings(max_examples=80, deadline=None)
W, H = 640, 480


# ---- scenes --------------------------------------------------------------------------------------------


def _mask(rng, box, shape):
    """A 0/1 bitmap over the box's pixel rectangle: an ellipse, a left or a right bar, with a few flipped pixels."""
    x0, x1 = (int(np.clip(v, 0, W)) for v in (np.floor(box[0]), np.ceil(box[2])))
    y0, y1 = (int(np.clip(v, 0, H)) for v in (np.floor(box[1]), np.ceil(box[3])))
    x1, y1 = max(x0, x1), max(y0, y1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    w, h = max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)
    if shape == 0:
        m = ((xx + 0.5 - cx) / (w / 2)) ** 2 + ((yy + 0.5 - cy) / (h / 2)) ** 2 <= 1
    elif shape == 1:
        m = xx < box[0] + w * 0.4
    else:
        m = xx >= box[2] - w * 0.4
    m = m ^ (rng.random(m.shape) < 0.03)
    return np.array([x0, y0, x1, y1], np.int32), m.astype(np.uint8).reshape(-1)


def make_scene(seed, *, nobj, nframes, ncls, gaps, masks):
    """Frames of (boxes, scores, class_ids, MaskSet | None, steps): objects moving with noise, births, deaths,
    dropouts, low scores, false positives, a few degenerate boxes, shuffled order."""
    rng = np.random.default_rng(seed)
    objs = []
    for _ in range(nobj):
        objs.append(
            {
                "c": rng.uniform([60, 60], [W - 60, H - 60]),
                "v": rng.normal(0, 4, 2),
                "wh": rng.uniform(20, 120, 2),
                "cls": int(rng.integers(0, ncls)),
                "start": int(rng.integers(0, max(1, nframes // 2))),
                "end": int(rng.integers(nframes // 2, nframes + 1)),
                "seen": rng.uniform(0.6, 1.0),
                "score": rng.choice([rng.uniform(0.55, 0.98), rng.uniform(0.15, 0.6)], p=[0.8, 0.2]),
                "shape": int(rng.integers(0, 3)),
            }
        )
    frames, t = [], 0
    for _ in range(nframes):
        steps = int(rng.choice([1, 2, 3, 5], p=[0.7, 0.15, 0.1, 0.05])) if gaps else 1
        t += steps
        boxes, scores, cls, shapes = [], [], [], []
        for o in objs:
            o["c"] = o["c"] + o["v"] * steps
            if not (o["start"] <= t <= o["end"] * (3 if gaps else 1)) or rng.random() > o["seen"]:
                continue
            wh = o["wh"] * rng.uniform(0.95, 1.05, 2)
            c = o["c"] + rng.normal(0, 1.5, 2)
            boxes.append(np.r_[c - wh / 2, c + wh / 2])
            scores.append(np.clip(o["score"] + rng.normal(0, 0.08), 0.02, 0.99))
            cls.append(o["cls"] if rng.random() > 0.05 else int(rng.integers(0, ncls)))
            shapes.append(o["shape"])
        for _ in range(rng.poisson(0.7)):  # false positives, some at low score
            c, wh = rng.uniform([0, 0], [W, H]), rng.uniform(10, 80, 2)
            boxes.append(np.r_[c - wh / 2, c + wh / 2])
            scores.append(rng.uniform(0.05, 0.9))
            cls.append(int(rng.integers(0, ncls)))
            shapes.append(int(rng.integers(0, 3)))
        if boxes and rng.random() < 0.05:  # a zero-width box
            boxes[0][2] = boxes[0][0]
        order = rng.permutation(len(boxes))
        b = np.array([boxes[i] for i in order], np.float32).reshape(-1, 4)
        s = np.array([scores[i] for i in order], np.float32)
        k = np.array([cls[i] for i in order], np.int32)
        ms = None
        if masks:
            parts = [_mask(rng, b[i].astype(np.float64), shapes[order[i]]) for i in range(len(b))]
            rects = np.array([p[0] for p in parts], np.int32).reshape(-1, 4)
            sizes = [len(p[1]) for p in parts]
            offsets = np.zeros(len(parts) + 1, np.int64)
            offsets[1:] = np.cumsum(sizes)
            data = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.uint8)
            ms = MaskSet(rects, data, offsets, (H, W))
        frames.append((b, s, k, ms, steps))
    return frames


def assert_same_tracks(core, reference, where):
    got, want = core.tracks(), reference.tracks()
    for name in ("track_id", "state", "class_id", "hits", "age", "frames_since_update"):
        np.testing.assert_array_equal(getattr(got, name), want[name], err_msg=f"{where}: {name}")
    np.testing.assert_allclose(got.xyxy, want["box"], rtol=1e-9, atol=1e-6, err_msg=f"{where}: box")
    np.testing.assert_allclose(got.score, want["score"], rtol=0, atol=0, err_msg=f"{where}: score")


def run_both(frames, config):
    core = TrackerCore(config)
    reference = ref.Tracker(**config.as_dict())
    history = []
    for f, (b, s, k, ms, steps) in enumerate(frames):
        got = core.update(b, s, k, ms, steps)
        want = reference.update(b, s, k, ms, steps)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want, err_msg=f"frame {f}: ids")
        assert_same_tracks(core, reference, f"frame {f}")
        history.append(got)
    return history


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    nobj=st.integers(0, 8),
    nframes=st.integers(1, 30),
    ncls=st.integers(1, 3),
    gaps=st.booleans(),
    masks=st.booleans(),
    mask_weight=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    class_consistent=st.booleans(),
    min_hits=st.integers(1, 3),
    lost_frames=st.integers(0, 10),
    high=st.floats(0.3, 0.7),
    low=st.floats(0.05, 0.3),
    match=st.floats(0.05, 0.6),
)
def test_matches_numpy_reference(
    seed, nobj, nframes, ncls, gaps, masks, mask_weight, class_consistent, min_hits, lost_frames, high, low, match
):
    config = TrackerConfig(
        high_thresh=high,
        low_thresh=low,
        new_track_thresh=min(0.95, high + 0.1),
        match_thresh=match,
        low_match_thresh=min(0.9, match + 0.25),
        tentative_match_thresh=min(0.9, match + 0.1),
        min_hits=min_hits,
        lost_frames=lost_frames,
        mask_weight=mask_weight,
        class_consistent=class_consistent,
    )
    frames = make_scene(seed, nobj=nobj, nframes=nframes, ncls=ncls, gaps=gaps, masks=masks)
    run_both(frames, config)


def test_long_scene_with_masks_matches_reference():
    frames = make_scene(7, nobj=10, nframes=80, ncls=2, gaps=True, masks=True)
    history = run_both(frames, TrackerConfig(mask_weight=0.5, lost_frames=8))
    ids = np.concatenate(history)
    assert ids.max() >= 5  # the scene does confirm tracks
    assert (ids == -1).any()


def test_default_config_reference_on_many_frames():
    frames = make_scene(11, nobj=12, nframes=120, ncls=3, gaps=False, masks=False)
    run_both(frames, TrackerConfig())


# ---- the Kalman filter by hand -------------------------------------------------------------------------


def test_kalman_numbers_by_hand():
    # Birth at (cx, cy, a, h) = (100, 50, 0.5, 40): cov diag (2 h / 20)^2 = 16 (position), (10 h / 160)^2 = 6.25
    # (velocity). Predict: P_pp = 16 + 6.25 + (h / 20)^2 = 26.25, P_pv = 6.25. Update with cx = 106: R = 4,
    # cx = 100 + 6 * 26.25 / 30.25, vcx = 6 * 6.25 / 30.25; the other coordinates are measured unchanged.
    for tracker in (TrackerCore(TrackerConfig()), ref.Tracker()):
        box = np.array([[90, 30, 110, 70]], np.float32)
        one, cls = np.array([0.9], np.float32), np.array([0], np.int32)
        assert tracker.update(box, one, cls).tolist() == [-1]
        assert tracker.update(box + np.float32([6, 0, 6, 0]), one, cls).tolist() == [1]
        cx = 100 + 6 * 26.25 / 30.25
        vx = 6 * 6.25 / 30.25
        t = tracker.tracks()
        t = t if isinstance(t, dict) else t.__dict__
        np.testing.assert_allclose(t["xyxy" if "xyxy" in t else "box"], [[cx - 10, 30, cx + 10, 70]], rtol=1e-12)
        # two frames without detections: lost, predicted twice with the velocity
        assert tracker.update(np.zeros((0, 4), np.float32), one[:0], cls[:0], None, 2).tolist() == []
        t = tracker.tracks()
        t = t if isinstance(t, dict) else t.__dict__
        np.testing.assert_allclose(
            t["xyxy" if "xyxy" in t else "box"], [[cx + 2 * vx - 10, 30, cx + 2 * vx + 10, 70]], rtol=1e-12
        )
        assert t["state"].tolist() == [LOST]
        assert t["frames_since_update"].tolist() == [2]
        assert t["age"].tolist() == [3]
        assert t["hits"].tolist() == [2]


def test_prediction_stops_at_the_lost_buffer():
    """A gap of 100 frames with lost_frames = 3 extrapolates 4 frames of motion, not 100."""
    box = np.array([[90, 30, 110, 70]], np.float32)
    one, cls = np.array([0.9], np.float32), np.array([0], np.int32)
    for tracker in (TrackerCore(TrackerConfig(lost_frames=3)), ref.Tracker(lost_frames=3)):
        tracker.update(box, one, cls)
        tracker.update(box + np.float32([6, 0, 6, 0]), one, cls)
        vx = 6 * 6.25 / 30.25
        far = box + np.float32([6 + 4 * vx, 0, 6 + 4 * vx, 0])
        assert tracker.update(far, one, cls, None, 100).tolist() == [1]
        t = tracker.tracks()
        assert (t.hits if hasattr(t, "hits") else t["hits"]).tolist() == [3]
    core = TrackerCore(TrackerConfig(lost_frames=3))
    core.update(box, one, cls, None, 2**31 - 1)
    core.update(box, one, cls, None, 2**31 - 1)  # fast: the prediction is capped
    assert core.tracks().age.tolist() == [2**31 - 1]
    with pytest.raises(ValueError, match="steps must be in"):
        core.update(box, one, cls, None, 2**31)


def test_states_and_confirmation():
    core = TrackerCore(TrackerConfig(min_hits=3, lost_frames=2))
    box = np.array([[10, 10, 50, 90], [200, 200, 260, 300]], np.float32)
    sc, cl = np.array([0.9, 0.7], np.float32), np.array([0, 1], np.int32)
    assert core.update(box, sc, cl).tolist() == [-1, -1]
    assert core.tracks().state.tolist() == [TENTATIVE, TENTATIVE]
    assert core.update(box, sc, cl).tolist() == [-1, -1]
    assert core.update(box, sc, cl).tolist() == [1, 2]  # ids in track order at confirmation
    assert core.tracks().state.tolist() == [TRACKED, TRACKED]
    # a low-score detection keeps a tracked track (stage 2) but does not start one
    assert core.update(box[:1], np.array([0.3], np.float32), cl[:1]).tolist() == [1]
    assert core.tracks().state.tolist() == [TRACKED, LOST]
    core.update(box[:1], sc[:1], cl[:1])
    assert core.tracks().track_id.tolist() == [1, 2]
    assert core.tracks().frames_since_update.tolist() == [0, 2]
    core.update(box[:1], sc[:1], cl[:1])  # track 2 unseen for 3 frames > lost_frames = 2
    assert core.tracks().track_id.tolist() == [1]
    core.reset()
    assert len(core.tracks()) == 0
    core.update(box, sc, cl)
    assert core.tracks().track_id.tolist() == [0, 0]


def test_min_hits_one_and_degenerate_boxes():
    core = TrackerCore(TrackerConfig(min_hits=1))
    box = np.array([[10, 10, 50, 90], [100, 100, 100, 150], [100, 100, 150, 100]], np.float32)
    sc, cl = np.full(3, 0.9, np.float32), np.zeros(3, np.int32)
    assert core.update(box, sc, cl).tolist() == [1, -1, -1]  # zero-size boxes neither match nor start tracks
    assert core.update(box, sc, cl).tolist() == [1, -1, -1]


def test_class_consistency():
    box = np.array([[10, 10, 50, 90]], np.float32)
    sc = np.array([0.9], np.float32)
    for consistent, want in ((True, [-1]), (False, [1])):
        core = TrackerCore(TrackerConfig(min_hits=1, class_consistent=consistent))
        assert core.update(box, sc, np.array([0], np.int32)).tolist() == [1]
        assert core.update(box, sc, np.array([3], np.int32)).tolist() == ([2] if consistent else want)
        assert sorted(core.tracks().class_id.tolist()) == ([0, 3] if consistent else [3])


# ---- the assignment ------------------------------------------------------------------------------------


def brute_force(cost, limit):
    n, m = cost.shape
    best, best_rows = 0.0, [-1] * n
    for k in range(min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                if all(cost[r, c] < limit for r, c in zip(rows, cols)):
                    total = sum(cost[r, c] - limit for r, c in zip(rows, cols))
                    if total < best:
                        best, best_rows = total, [-1] * n
                        for r, c in zip(rows, cols):
                            best_rows[r] = c
    return best_rows


@settings(max_examples=150, deadline=None)
@given(n=st.integers(0, 5), m=st.integers(0, 5), seed=st.integers(0, 2**32 - 1), limit=st.floats(0.05, 1.5))
def test_assignment_is_optimal(n, m, seed, limit):
    cost = np.random.default_rng(seed).random((n, m))
    want = brute_force(cost, limit)
    assert linear_assignment(cost, limit).tolist() == want
    assert ref.linear_assignment(cost, limit).tolist() == want


def test_assignment_matches_scipy_on_larger_matrices():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(5)
    for _ in range(30):
        n, m = rng.integers(1, 40, 2)
        cost, limit = rng.random((n, m)), rng.uniform(0.2, 0.9)
        # lap's extension: dummy rows and columns at limit / 2, dummy x dummy at 0
        big = np.full((n + m, n + m), limit / 2)
        big[:n, :m] = cost
        big[n:, m:] = 0
        rows, cols = optimize.linear_sum_assignment(big)
        want = [int(c) if c < m else -1 for r, c in zip(rows, cols) if r < n]
        got = linear_assignment(cost, limit)
        assert got.tolist() == want
        assert ref.linear_assignment(cost, limit).tolist() == want


def test_assignment_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        linear_assignment(np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="finite"):
        linear_assignment(np.array([[np.nan]]), 0.5)
    with pytest.raises(ValueError, match="limit"):
        linear_assignment(np.zeros((2, 2)), float("inf"))
    assert linear_assignment(np.zeros((0, 3)), 0.5).tolist() == []
    assert linear_assignment(np.zeros((3, 0)), 0.5).tolist() == [-1, -1, -1]


# ---- bad input -----------------------------------------------------------------------------------------

BOX = np.array([[10, 10, 50, 90]], np.float32)
SC = np.array([0.9], np.float32)
CL = np.array([0], np.int32)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.array([[10, 10, np.nan, 90]], np.float32), SC, CL), "boxes must be finite"),
        ((BOX, np.array([np.inf], np.float32), CL), "scores must be finite"),
        ((np.zeros((1, 5), np.float32), SC, CL), r"boxes must have shape \[n, 4\]"),
        ((BOX, np.zeros(2, np.float32), CL), r"scores must have shape \[1\]"),
        ((BOX, SC, np.zeros(2, np.int32)), r"class_ids must have shape \[1\]"),
        ((BOX, SC, np.array([0.5])), "class_ids must be integers"),
        ((BOX, SC, np.array([2**40])), "int32"),
        ((np.array([["a"] * 4]), SC, CL), "numeric"),
        ((BOX, SC, CL, None, 0), r"steps must be in \[1, "),
        ((BOX, SC, CL, None, True), "steps must be an integer"),
        ((BOX, SC, CL, None, 1.5), "steps must be an integer"),
        ((BOX, SC, CL, MaskSet.empty((H, W))), r"rects must have shape \[1, 4\]"),
        ((BOX, SC, CL, np.zeros((1, 4))), "masks must be a MaskSet"),
    ],
)
def test_bad_update_raises_value_error(args, match):
    core = TrackerCore()
    with pytest.raises(ValueError, match=match):
        core.update(*args)
    assert len(core.tracks()) == 0  # nothing happened


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"high_thresh": 1.5}, r"high_thresh must be in \[0, 1\]"),
        ({"high_thresh": float("nan")}, "high_thresh must be a finite number"),
        ({"low_thresh": 0.6}, "low_thresh .* must be <= high_thresh"),
        ({"new_track_thresh": 0.4}, "new_track_thresh .* must be >= high_thresh"),
        ({"match_thresh": 1.0}, r"match_thresh must be in \[0, 1\)"),
        ({"min_hits": 0}, "min_hits must be in"),
        ({"min_hits": 2.0}, "min_hits must be an integer"),
        ({"lost_frames": -1}, "lost_frames must be in"),
        ({"lost_frames": 10**7}, "lost_frames must be in"),
        ({"mask_weight": 2}, "mask_weight must be in"),
        ({"mask_weight": True}, "mask_weight must be a finite number"),
        ({"class_consistent": "yes"}, "class_consistent must be a bool"),
    ],
)
def test_bad_config_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrackerConfig(**kwargs)


def test_native_core_checks_config_and_masks_too():
    from edgeseg import _core

    with pytest.raises(ValueError, match="high_thresh"):
        _core.Tracker(high_thresh=2.0)
    with pytest.raises(ValueError, match="new_track_thresh must be >= high_thresh"):
        _core.Tracker(new_track_thresh=0.1)
    t = _core.Tracker()
    rects = np.array([[10, 10, 50, 90]], np.int32)
    with pytest.raises(ValueError, match="together"):
        t.update(BOX, SC, CL, rects, None, None)
    with pytest.raises(ValueError, match="offsets do not match"):
        t.update(BOX, SC, CL, rects, np.zeros(5, np.uint8), np.array([0, 5], np.int64))
    with pytest.raises(ValueError, match="data has 5 bytes"):
        t.update(BOX, SC, CL, rects, np.zeros(5, np.uint8), np.array([0, 3200], np.int64))
    with pytest.raises(ValueError, match="x0 <= x1"):
        t.update(BOX, SC, CL, np.array([[50, 10, 10, 90]], np.int32), np.zeros(0, np.uint8), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="dtype"):
        t.update(BOX.astype(np.float64), SC, CL)


def test_accepts_lists_and_other_dtypes():
    a, b = TrackerCore(TrackerConfig(min_hits=1)), TrackerCore(TrackerConfig(min_hits=1))
    assert a.update([[10, 10, 50, 90]], [0.9], [0]).tolist() == b.update(BOX, SC, CL).tolist() == [1]
    assert a.update([], [], []).tolist() == []


# ---- threads -------------------------------------------------------------------------------------------


def test_threads_with_separate_trackers_match_sequential_runs():
    scenes = [make_scene(100 + i, nobj=10, nframes=60, ncls=2, gaps=True, masks=i % 2 == 1) for i in range(4)]
    config = TrackerConfig(mask_weight=0.4)

    def run(frames):
        core = TrackerCore(config)
        return [core.update(b, s, k, ms, st_) for b, s, k, ms, st_ in frames]

    want = [run(f) for f in scenes]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, scenes * 2))
    for i, g in enumerate(got):
        for a, b in zip(g, want[i % 4]):
            np.testing.assert_array_equal(a, b)
