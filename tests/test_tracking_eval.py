"""Tracking evaluation: the clips with ground-truth identities (edgeseg.synthetic.tracks), the metric glue
(tests/tracking_eval.py, TrackEval) and our tracker's scores on them, against Roboflow trackers' ByteTrack."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from edgeseg.synthetic.tracks import MIN_VISIBLE, SCENARIOS, TrackingClip, tracking_clip  # noqa: E402
from tracking_eval import (  # noqa: E402
    Run,
    evaluate,
    evaluate_sequences,
    metrics_available,
    noisy_detections,
    run_tracker,
    sequence_data,
    true_crossings,
    truth_run,
)

ROOT = Path(__file__).resolve().parents[1]
W, H = 640, 360


@pytest.fixture(scope="module")
def clips() -> dict[str, TrackingClip]:
    return {name: tracking_clip(name) for name in SCENARIOS}


def presence(clip: TrackingClip) -> np.ndarray:
    """float [n_objects, n_frames]: visible fraction in the ground truth, 0 where the object is not in it."""
    out = np.zeros((len(clip.objects), clip.n_frames))
    for t, truth in enumerate(clip.gt):
        out[truth.ids - 1, t] = truth.visible
    return out


def inside(clip: TrackingClip, margin: np.ndarray | float = 0.0) -> np.ndarray:
    """bool [n_objects, n_frames]: the centre is at least ``margin`` (per object) inside the frame."""
    m = np.broadcast_to(np.asarray(margin, float).reshape(-1, 1), clip.centres.shape[:2])
    x, y = clip.centres[..., 0], clip.centres[..., 1]
    return (x >= m) & (x <= W - m) & (y >= m) & (y <= H - m)


def runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    padded = np.concatenate([[False], flags, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


# -- the clips ------------------------------------------------------------------------------------------------
def test_scenarios_are_long_enough_and_the_api_is_small(clips):
    for name, clip in clips.items():
        assert clip.n_frames >= 300 and clip.size == (W, H) and clip.fps == 30
        assert len(clip.gt) == clip.n_frames and clip.centres.shape == (len(clip.objects), clip.n_frames, 2)
        assert [o.id for o in clip.objects] == list(range(1, len(clip.objects) + 1))
        assert len({o.class_id for o in clip.objects}) >= 3, name  # several classes
    from edgeseg.synthetic import tracking_clip as lazy

    assert lazy is tracking_clip


def test_clips_are_deterministic():
    a, b = tracking_clip("crowd", seed=3, n_frames=12), tracking_clip("crowd", seed=3, n_frames=12)
    np.testing.assert_array_equal(a.centres, b.centres)
    for fa, fb in zip(a.frames(), b.frames()):
        np.testing.assert_array_equal(fa, fb)
    for ga, gb in zip(a.gt, b.gt):
        for field in ("ids", "class_id", "xyxy", "visible", "ignore_ids", "ignore_xyxy"):
            np.testing.assert_array_equal(getattr(ga, field), getattr(gb, field))
        np.testing.assert_array_equal(ga.masks.data, gb.masks.data)
    c = tracking_clip("crowd", seed=4, n_frames=12)
    assert not np.array_equal(a.centres, c.centres)  # the crowd's paths follow the seed
    d0, d1 = tracking_clip("exits", seed=0, n_frames=2), tracking_clip("exits", seed=1, n_frames=2)
    np.testing.assert_array_equal(d0.centres, d1.centres)  # scripted paths; only the looks change
    assert not np.array_equal(d0.render(0), d1.render(0))


def test_a_shorter_clip_is_the_start_of_the_full_one(clips):
    short = tracking_clip("exits", n_frames=25)
    full = clips["exits"]
    np.testing.assert_array_equal(short.centres, full.centres[:, :25])
    np.testing.assert_array_equal(short.render(24), full.render(24))
    np.testing.assert_array_equal(short.gt[24].xyxy, full.gt[24].xyxy)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: tracking_clip("nope"), "unknown scenario"),
        (lambda: tracking_clip("exits", seed=-1), "seed"),
        (lambda: tracking_clip("exits", seed=1.5), "seed"),
        (lambda: tracking_clip("exits", n_frames=0), "n_frames"),
        (lambda: tracking_clip("exits", n_frames=10_000), "n_frames"),
        (lambda: tracking_clip("exits", n_frames=3).render(3), "frame index"),
    ],
)
def test_bad_arguments_are_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_ground_truth_rows_are_consistent(clips):
    for name, clip in clips.items():
        classes = {o.id: o.class_id for o in clip.objects}
        for truth in clip.gt:
            ids = truth.ids
            assert len(np.unique(ids)) == len(ids), (name, truth.index)
            assert not set(ids.tolist()) & set(truth.ignore_ids.tolist())
            assert [classes[int(i)] for i in ids] == truth.class_id.tolist()
            b = truth.xyxy
            assert ((b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= W) & (b[:, 3] <= H)).all()
            assert ((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).all()
            np.testing.assert_array_equal(truth.masks.rects, b.astype(np.int32))
            assert ((truth.visible >= MIN_VISIBLE) & (truth.visible <= 1)).all()
            for i in range(len(ids)):  # boxes are tight around the visible pixels
                m = truth.masks.bitmap(i).astype(bool)
                assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any()
            if len(ids) > 1:  # a pixel shows one object at most
                assert truth.masks.full().sum(0).max() == 1


def test_visible_masks_are_the_rendered_pixels_of_each_object(clips):
    """Leaving one object out of a frame changes exactly the pixels the ground truth says it shows."""
    checked = 0
    for name in ("crossing", "occlusion"):
        clip = clips[name]
        for t in range(0, clip.n_frames, 23):
            frame = clip.render(t)
            truth = clip.gt[t]
            full = truth.masks.full()
            for row, oid in enumerate(truth.ids):
                changed = (frame != clip.render(t, hide={int(oid)})).any(2)
                assert not (changed & ~full[row]).any(), (name, t, oid)
                assert changed.sum() >= 0.9 * full[row].sum(), (name, t, oid)  # a texture may match the ground
                checked += 1
    assert checked > 50
    np.testing.assert_array_equal(next(iter(clips["crowd"].frames())), clips["crowd"].render(0))


def test_visible_fraction_and_centres_agree_with_the_geometry(clips):
    """An object well inside the frame that no other object's circle touches is wholly visible, its centre
    inside its box; objects off the frame are in no frame's ground truth."""
    for clip in clips.values():
        radius = np.array([o.radius for o in clip.objects])
        vis = presence(clip)
        well_inside = inside(clip, radius + 2)
        for t, truth in enumerate(clip.gt):
            c = clip.centres[:, t]
            dist = np.hypot(*(c[:, None] - c[None]).transpose(2, 0, 1))
            touching = (dist < radius[:, None] + radius[None] + 2).sum(1) > 1
            alone = well_inside[:, t] & ~touching
            assert (vis[alone, t] == 1.0).all(), (clip.name, t)
            for row, oid in enumerate(truth.ids):
                if alone[oid - 1]:
                    x0, y0, x1, y1 = truth.xyxy[row]
                    assert x0 <= c[oid - 1, 0] <= x1 and y0 <= c[oid - 1, 1] <= y1
        off = ~inside(clip, -radius - 1)
        assert not (vis[off] > 0).any()


def test_the_scenarios_have_their_events(clips):
    """Crossings with occlusion, full occlusion, exits with re-entry (short and long), stops."""
    # Crossings: two objects whose centres swap order along x (or y) while close in the other coordinate, the
    # farther one mostly hidden around that moment.
    clip = clips["crossing"]
    vis = presence(clip)
    found = []
    for i, j in itertools.combinations(range(len(clip.objects)), 2):
        oi, oj = clip.objects[i], clip.objects[j]
        d = clip.centres[i] - clip.centres[j]
        reach = oi.radius + oj.radius
        for axis in (0, 1):
            flips = np.flatnonzero(np.sign(d[1:, axis]) != np.sign(d[:-1, axis])) + 1
            for t in flips:
                if abs(d[t, 1 - axis]) < reach and inside(clip)[[i, j], t].all():
                    back = i if oi.z < oj.z else j
                    found.append((oi.class_id == oj.class_id, vis[back, max(t - 8, 0) : t + 8].min()))
    assert len(found) >= 3
    assert any(v < 0.5 for _, v in found)  # the nearer one hides the farther
    assert any(v == 0 for _, v in found)  # completely, for a moment
    assert any(same for same, v in found if v < 0.9)  # two of one class

    # Full occlusion: out of the ground truth for 10+ frames while its centre is well inside the frame.
    for name, least in (("occlusion", 30), ("crossing", 3)):
        clip = clips[name]
        radius = np.array([o.radius for o in clip.objects])
        hidden = (presence(clip) == 0) & inside(clip, radius + 1)
        longest = max((b - a for row in hidden for a, b in runs_of(row)), default=0)
        assert longest >= least, name

    # Exits and re-entries: gone from the ground truth with the centre off the frame, then back, same id.
    clip = clips["exits"]
    vis = presence(clip)
    radius = np.array([o.radius for o in clip.objects])
    absences = []
    for k in range(len(clip.objects)):
        for a, b in runs_of(vis[k] == 0):
            if a > 0 and b < clip.n_frames and (~inside(clip, -radius)[k, a:b]).any():
                absences.append(b - a)
    assert any(n < 30 for n in absences) and any(n > 90 for n in absences), absences

    # Stops: the centre still for 30+ frames while in the ground truth.
    for name in ("crossing", "occlusion", "exits"):
        clip = clips[name]
        still = np.concatenate(
            [np.zeros((len(clip.objects), 1), bool), (np.diff(clip.centres, axis=1) == 0).all(2)], 1
        ) & (presence(clip) > 0)
        assert max(b - a for row in still for a, b in runs_of(row)) >= 30, name


# -- the metric glue ------------------------------------------------------------------------------------------
needs_metrics = pytest.mark.skipif(not metrics_available(), reason="trackeval is not installed")


@needs_metrics
def test_metrics_of_the_truth_and_of_known_mistakes(clips):
    clip = clips["crossing"]
    perfect = evaluate(clip, truth_run(clip))
    assert perfect["HOTA"] == pytest.approx(1) and perfect["MOTA"] == pytest.approx(1)
    assert perfect["IDF1"] == pytest.approx(1) and perfect["IDSW"] == 0
    # Objects 3 and 4 (the two triangles) swap ids from frame 200 on: two switches, identity and association drop.
    truth = truth_run(clip)
    swapped = [ids.copy() for ids in truth.ids]
    for ids in swapped[200:]:
        a, b = ids == 3, ids == 4
        ids[a], ids[b] = 4, 3
    m = evaluate(clip, Run("swap", swapped, truth.boxes, truth.update_us))
    assert m["IDSW"] == 2 and m["MOTA"] < 1 and m["IDF1"] < 0.95 and m["AssA"] < 0.95
    assert m["DetA"] == pytest.approx(1)
    # An object missed in every frame: false negatives, no false positives.
    dropped = Run("drop", [i[i != 1] for i in truth.ids], [b[i != 1] for i, b in zip(truth.ids, truth.boxes)], [])
    m = evaluate(clip, dropped)
    assert m["FN"] == int((presence(clip)[0] > 0).sum()) and m["FP"] == 0
    # A box reported on an ignore object (a sliver of it visible) is neither a hit nor a false positive.
    t = next(t for t, g in enumerate(clip.gt) if len(g.ignore_ids))
    extra = Run(
        "extra",
        [np.append(i, 99) if k == t else i for k, i in enumerate(truth.ids)],
        [np.vstack([b, clip.gt[t].ignore_xyxy[:1]]) if k == t else b for k, b in enumerate(truth.boxes)],
        [],
    )
    assert evaluate(clip, extra)["FP"] == 0
    assert evaluate(clip, extra, ignore=False)["FP"] == 1
    with pytest.raises(ValueError, match="twice"):
        sequence_data(clip, [np.array([1, 1])], [np.zeros((2, 4))])


@needs_metrics
def test_in_memory_metrics_match_trackers_file_based_mot_evaluation(clips, tmp_path):
    """Our TrackEval feed against Roboflow trackers' own MOTChallenge-file evaluation (its TrackEval port)."""
    pytest.importorskip("trackers")
    from trackers.eval import evaluate_mot_sequence

    clip = clips["occlusion"]
    dets = noisy_detections(clip, seed=1)
    run = run_tracker("bytetrack", dets)

    def write(path, ids, boxes):
        with open(path, "w") as f:
            for t, (ii, bb) in enumerate(zip(ids, boxes)):
                for i, (x0, y0, x1, y1) in zip(ii, bb):
                    f.write(f"{t + 1},{i},{x0:.3f},{y0:.3f},{x1 - x0:.3f},{y1 - y0:.3f},1,1,1\n")

    truth = truth_run(clip)
    write(tmp_path / "gt.txt", truth.ids, truth.boxes)
    write(tmp_path / "tr.txt", run.ids, run.boxes)
    theirs = evaluate_mot_sequence(tmp_path / "gt.txt", tmp_path / "tr.txt", metrics=["CLEAR", "HOTA", "Identity"])
    ours = evaluate(clip, run, ignore=False)  # their files carry no ignore objects
    assert ours["HOTA"] == pytest.approx(theirs.HOTA.HOTA, abs=1e-3)
    assert ours["MOTA"] == pytest.approx(theirs.CLEAR.MOTA, abs=1e-3)
    assert ours["IDF1"] == pytest.approx(theirs.Identity.IDF1, abs=1e-3)
    assert ours["IDSW"] == theirs.CLEAR.IDSW


# -- our tracker on the noisy ground truth ---------------------------------------------------------------------
# Floors, on seed 0 of the noisy input (deterministic). Measured with the tracker's defaults (HOTA / IDF1 / IDSW):
# crossing 84.3 / 95.7 / 0, occlusion 76.9 / 81.1 / 2, exits 75.9 / 83.0 / 4, crowd 83.1 / 92.6 / 1; seeds 1-3
# stay above these floors too (lowest: crossing 82.6 / 90.9, occlusion 76.9 / 80.7, exits 75.1 / 82.3, crowd
# 83.1 / 92.5). The ceiling is set by the input, not the tracker: box jitter caps DetA near 85, and objects
# hidden for about a second or more (occlusion, exits) come back under a new id for every motion tracker.
# The floors fail a tracker that forgets a track after 2 missed frames (crossing 76.6 / 81.9 / 3 switches) or
# needs an IoU of 0.6 to match (11-14 switches in every scenario).
FLOORS = {  # scenario: (HOTA, IDF1, most ID switches)
    "crossing": (0.82, 0.90, 2),
    "occlusion": (0.75, 0.79, 4),
    "exits": (0.74, 0.81, 6),
    "crowd": (0.81, 0.90, 3),
}


@pytest.fixture(scope="module")
def noisy(clips):
    return {name: noisy_detections(clip, seed=0) for name, clip in clips.items()}


@pytest.fixture(scope="module")
def ours(clips, noisy):
    return {name: run_tracker("ours", noisy[name]) for name in clips}


@needs_metrics
@pytest.mark.parametrize("name", SCENARIOS)
def test_our_tracker_on_noisy_boxes(clips, ours, name):
    m = evaluate(clips[name], ours[name])
    hota, idf1, idsw = FLOORS[name]
    assert m["HOTA"] >= hota and m["IDF1"] >= idf1 and m["IDSW"] <= idsw, m


@needs_metrics
def test_ours_at_least_matches_bytetrack_on_the_same_boxes(clips, noisy, ours):
    """Over the four scenarios together (TrackEval's combined scores), ours >= Roboflow trackers' ByteTrack (our
    thresholds, the same boxes) on HOTA and IDF1; in no scenario more than half a point below it.

    On this input (true classes) the two are close to the same algorithm: measured on seed 0, combined HOTA 81.1
    vs 80.3, IDF1 89.4 vs 87.8; the difference is the crossing scenario (ByteTrack switches the two triangles),
    elsewhere they tie within 0.1 points."""
    pytest.importorskip("trackers")
    theirs = {name: run_tracker("bytetrack", noisy[name]) for name in clips}
    for name in clips:
        a, b = evaluate(clips[name], ours[name]), evaluate(clips[name], theirs[name])
        assert a["HOTA"] >= b["HOTA"] - 0.005 and a["IDF1"] >= b["IDF1"] - 0.005, (name, a, b)
    a = evaluate_sequences([(clips[n], ours[n]) for n in clips])
    b = evaluate_sequences([(clips[n], theirs[n]) for n in clips])
    assert a["HOTA"] >= b["HOTA"] and a["IDF1"] >= b["IDF1"], (a, b)


# Lines across the clips whose true crossings the tracked boxes can see: the objects cross them in the open (the
# crossing scenario, where objects also pass each other on the lines; the exits and crowd scenarios). Measured on
# the same input, a line through the big square of the occlusion scenario is not exact: objects cross it while
# hidden behind the square (they come back under a new id: 0/2 counted, 1/3 true) and the square's visible box
# jumps while others pass in front of it, so its centre is not the object's centre (7/8 counted, 1/1 true).
EXACT_LINES = [
    ("crossing", (320, 0), (320, 360)),
    ("crossing", (0, 180), (640, 180)),
    ("crossing", (200, 0), (200, 360)),
    ("exits", (320, 0), (320, 360)),
    ("exits", (200, 0), (200, 360)),
    ("crowd", (200, 0), (200, 360)),
]


@pytest.mark.parametrize(("name", "start", "end"), EXACT_LINES)
def test_line_counts_are_exact_on_known_crossings(clips, noisy, name, start, end):
    """Tracker + LineZone on the noisy boxes count exactly the crossings of the objects' true centres."""
    from edgeseg.tracking import Tracker
    from edgeseg.zones import LineZone

    truth = true_crossings(clips[name], start, end)
    assert sum(truth) >= 1  # the line is crossed at all
    zone, tracker = LineZone(start, end), Tracker()
    for t, detections in enumerate(noisy[name]):
        zone.update(tracker.update(detections, frame_index=t), t / 30)
    assert (zone.in_count, zone.out_count) == truth


# -- the benchmark, with the demo model ----------------------------------------------------------------------
@needs_metrics
def test_benchmark_quick_runs_with_the_demo_model():
    pytest.importorskip("onnxruntime")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "tracking.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "input demo model" in out and "input noisy ground truth" in out
    # Our tracker's row for the model input of each quick scenario: HOTA, DetA, AssA, MOTA, IDF1, IDSW, us.
    blocks = re.findall(r"\n(\w+): 60 frames[^\n]*input demo model[^\n]*per class[^\n]*\n(.*?)\n\n", out + "\n\n", re.S)
    assert {b[0] for b in blocks} == {"crossing", "exits"}, out
    for _, table in blocks:
        row = next(line for line in table.splitlines() if line.split()[0] == "ours")
        hota, *_ = (float(v) for v in row.split()[1:6])
        assert hota >= 60, out  # measured 69.4 (crossing) and 86.5 (exits)


def test_benchmark_runs_ours_alone_without_trackers_and_trackeval():
    """With trackers and trackeval unimportable (None in sys.modules), the benchmark times ours and says what it
    skips."""
    code = (
        "import runpy, sys\n"
        "for name in ('trackers', 'trackeval', 'trackeval.metrics', 'supervision'):\n"
        "    sys.modules[name] = None\n"
        "sys.argv = ['tracking.py', '--scenarios', 'exits', '--inputs', 'noisy', '--frames', '30']\n"
        f"runpy.run_path({str(ROOT / 'benchmarks' / 'tracking.py')!r}, run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "skipped: bytetrack" in out and "skipped: HOTA" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("ours", "bytetrack", "ocsort"))]
    assert [r[0] for r in rows] == ["ours", "ours+mask", "ours-run"]
    assert rows[0][1:7] == ["-"] * 6 and float(rows[0][7]) > 0
