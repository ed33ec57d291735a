"""edgeseg.tracking.Tracker on Detections: stable ids, crossings, the lost buffer, frame gaps, masks."""

from __future__ import annotations

import numpy as np
import pytest

from edgeseg.detections import Detections
from edgeseg.ops.masks import MaskSet
from edgeseg.tracking import Tracker, lost_buffer

H, W = 480, 640


def full_mask(rect):
    x0, y0, x1, y1 = rect
    return np.ones((y1 - y0, x1 - x0), np.uint8)


def bar_mask(rect, lo, hi):
    """Foreground only for columns lo <= x < hi (image coordinates)."""
    x0, y0, x1, y1 = rect
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    m[:, max(lo - x0, 0) : max(hi - x0, 0)] = 1
    return m


def make(boxes, scores=None, classes=None, bitmaps=None):
    """Detections with a mask per row (the bitmap over the box's integer rectangle; full boxes by default)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    rects = np.column_stack([np.floor(boxes[:, :2]), np.ceil(boxes[:, 2:])]).astype(np.int32).reshape(-1, 4)
    rects[:, [0, 2]] = np.clip(rects[:, [0, 2]], 0, W)
    rects[:, [1, 3]] = np.clip(rects[:, [1, 3]], 0, H)
    if bitmaps is None:
        bitmaps = [full_mask(r) for r in rects]
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = np.cumsum([b.size for b in bitmaps])
    data = np.concatenate([b.reshape(-1) for b in bitmaps]) if n else np.zeros(0, np.uint8)
    return Detections(
        xyxy=boxes,
        confidence=np.full(n, 0.9, np.float32) if scores is None else np.asarray(scores, np.float32),
        class_id=np.zeros(n, np.int32) if classes is None else np.asarray(classes, np.int32),
        masks=MaskSet(rects, data, offsets, (H, W)),
    )


def box_at(cx, cy, w=40, h=80):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def ids_by_row(out, n_in, boxes):
    """tracker_id per input row (-1 where the row was not returned), found by box."""
    ids = np.full(n_in, -1, np.int64)
    for i, b in enumerate(np.asarray(boxes, np.float32)):
        hit = np.flatnonzero((out.xyxy == b).all(axis=1))
        if hit.size:
            ids[i] = out.tracker_id[hit[0]]
    return ids


def test_ids_stable_for_objects_moving_apart():
    tracker = Tracker()
    rng = np.random.default_rng(0)
    seen = []
    for f in range(25):
        boxes = [box_at(300 - 6 * f, 240), box_at(300 + 6 * f, 240 + 3 * f), box_at(320, 100 + 5 * f)]
        boxes = np.asarray(boxes) + rng.normal(0, 0.5, (3, 4))
        out = tracker.update(make(boxes))
        assert out.tracker_id is not None
        if f == 0:
            assert len(out) == 0  # tentative (min_hits=2)
            continue
        seen.append(ids_by_row(out, 3, boxes.astype(np.float32)))
    seen = np.array(seen)
    assert (seen == seen[0]).all() and sorted(seen[0]) == [1, 2, 3]


def test_two_crossing_objects_keep_their_ids():
    tracker = Tracker()
    first = None
    for f in range(50):
        a, b = box_at(80 + 10 * f, 240), box_at(570 - 10 * f, 262)  # they cross around frame 24
        out = tracker.update(make([a, b]))
        if f == 0:
            continue
        ids = ids_by_row(out, 2, [a, b])
        first = ids if first is None else first
        assert ids.tolist() == first.tolist(), f"frame {f}"
    assert sorted(first.tolist()) == [1, 2]


def _gap_run(tracker, missing, frame_index=False):
    """An object seen for 5 frames, missing (detected nowhere) for `missing` frames, then seen again: its ids
    before and after. With frame_index, the frames are numbered 0, 2, 4, ... (every other frame is skipped)."""
    d = make([box_at(200, 200)])
    empty = make([])
    index = iter(range(0, 1000, 2 if frame_index else 1))
    before = after = None
    for _ in range(5):
        out = tracker.update(d, next(index) if frame_index else None)
        before = out.tracker_id.tolist() or before
    for _ in range(missing):
        assert len(tracker.update(empty, next(index) if frame_index else None)) == 0
    for _ in range(3):
        out = tracker.update(d, next(index) if frame_index else None)
        after = after or out.tracker_id.tolist()
    return before, after


def test_object_missing_comes_back_within_the_lost_buffer():
    assert _gap_run(Tracker(lost_frames=4), 4) == ([1], [1])
    assert _gap_run(Tracker(lost_frames=4), 5) == ([1], [2])
    assert _gap_run(Tracker(), 30) == ([1], [1])
    assert _gap_run(Tracker(), 31) == ([1], [2])
    # counted in frames of the stream: every other frame processed, 2 missing updates are 4 frames
    assert _gap_run(Tracker(lost_frames=5), 2, frame_index=True) == ([1], [1])
    assert _gap_run(Tracker(lost_frames=5), 3, frame_index=True) == ([1], [2])


def test_unobserved_frames_are_not_absence():
    """Frames skipped with frame_index were not looked at: a tracked object found again after a gap longer than
    the lost buffer keeps its id (the lost buffer counts frames in which it was looked for and not found)."""
    tracker = Tracker(lost_frames=4)
    d = make([box_at(200, 200)])
    tracker.update(d, 0)
    assert tracker.update(d, 1).tracker_id.tolist() == [1]
    assert tracker.update(d, 50).tracker_id.tolist() == [1]
    assert tracker.update(make([]), 51).tracker_id.tolist() == []
    assert tracker.tracks.state.tolist() == [2]  # lost
    assert tracker.update(d, 57).tracker_id.tolist() == [1]  # matched before the lost buffer is applied
    assert tracker.update(make([]), 58).tracker_id.tolist() == []
    assert len(tracker.update(make([]), 63)) == 0
    assert len(tracker.tracks) == 0  # 6 frames unmatched > 4 once absent


def test_lost_buffer_in_seconds():
    assert _gap_run(Tracker(lost_seconds=0.5, frame_rate=10), 5) == ([1], [1])
    assert _gap_run(Tracker(lost_seconds=0.5, frame_rate=10), 6) == ([1], [2])
    assert Tracker(lost_seconds=0.1, frame_rate=30).config.lost_frames == 3  # not 4 from 3.0000000000000004
    assert Tracker(lost_seconds=0.11, frame_rate=30).config.lost_frames == 4
    assert lost_buffer(None, None, None) == 30
    with pytest.raises(ValueError, match="needs frame_rate"):
        Tracker(lost_seconds=1.0)
    with pytest.raises(ValueError, match="not both"):
        Tracker(lost_frames=10, lost_seconds=1.0, frame_rate=30)
    with pytest.raises(ValueError, match="only with lost_seconds"):
        Tracker(frame_rate=30)
    with pytest.raises(ValueError, match="frame_rate must be > 0"):
        Tracker(lost_seconds=1.0, frame_rate=0)
    with pytest.raises(ValueError, match="lost_seconds must be a finite number"):
        Tracker(lost_seconds=float("nan"), frame_rate=30)


def test_frame_index_gaps_predict_over_the_skipped_frames():
    """An object moving 12 px/frame, 40 px wide; after 6 frames only every 5th frame is processed (60 px apart,
    no overlap with the last box): with frame_index the tracker predicts over the gap and keeps the id."""

    def run(use_index):
        tracker = Tracker()
        got = []
        for f in list(range(6)) + list(range(10, 60, 5)):
            out = tracker.update(make([box_at(100 + 12 * f, 240)]), f if use_index else None)
            got.append(out.tracker_id.tolist())
        return got

    with_index = run(True)
    assert with_index[1:] == [[1]] * (len(with_index) - 1)
    without = run(False)
    assert without[6] == []  # frames treated as consecutive: the prediction is far off and the track is lost


def test_bad_frame_index():
    tracker = Tracker()
    d = make([box_at(200, 200)])
    tracker.update(d, 10)
    for bad in (10, 9):
        with pytest.raises(ValueError, match="frame_index must increase: got"):
            tracker.update(d, bad)
    for bad in (True, 11.0, "12"):
        with pytest.raises(ValueError, match="frame_index must be an integer"):
            tracker.update(d, bad)
    tracker.update(d, 11)
    tracker.update(d)  # None: the next frame (12)
    with pytest.raises(ValueError, match="got 12 after 12"):
        tracker.update(d, 12)
    tracker.update(d, np.int64(13))
    assert tracker.tracks.age.tolist() == [3]
    tracker.update(d, 2**40)  # a huge gap is fine (the prediction stops at the lost buffer)
    assert tracker.tracks.age.tolist() == [3 + 2**31 - 1]
    with pytest.raises(TypeError, match="Detections"):
        tracker.update(d.xyxy)  # type: ignore[arg-type]


def test_class_consistency():
    for consistent in (True, False):
        tracker = Tracker(class_consistent=consistent)
        box = [box_at(200, 200)]
        for _ in range(3):
            assert tracker.update(make(box, classes=[0])).tracker_id.tolist() in ([], [1])
        out = tracker.update(make(box, classes=[5]))
        if consistent:  # a class-5 detection cannot continue a class-0 track: it starts its own
            assert len(out) == 0
            assert sorted(tracker.tracks.class_id.tolist()) == [0, 5]
        else:
            assert out.tracker_id.tolist() == [1] and out.class_id.tolist() == [5]
            assert tracker.tracks.class_id.tolist() == [5]


def test_reset():
    tracker = Tracker()
    d = make([box_at(200, 200), box_at(400, 200)])
    for f in range(3):
        tracker.update(d, f)
    assert sorted(tracker.tracks.track_id.tolist()) == [1, 2]
    tracker.reset()
    assert len(tracker.tracks) == 0
    tracker.update(d, 0)  # the frame index is forgotten too
    assert sorted(tracker.update(d, 1).tracker_id.tolist()) == [1, 2]


def test_tracker_id_aligned_with_masks_after_slicing():
    tracker = Tracker()
    rng = np.random.default_rng(1)
    for f in range(8):
        boxes = [box_at(100 + 60 * i + 3 * f, 200 + 10 * i) for i in range(6)]
        scores = [0.9, 0.3, 0.95, 0.05, 0.8, 0.9]  # one low (kept by stage 2 only once tracked), one ignored
        bitmaps = []
        for b in boxes:
            x0, y0, x1, y1 = int(np.floor(b[0])), int(np.floor(b[1])), int(np.ceil(b[2])), int(np.ceil(b[3]))
            bitmaps.append((rng.random((y1 - y0, x1 - x0)) < 0.5).astype(np.uint8))
        d = make(boxes, scores=scores, bitmaps=bitmaps)
        out = tracker.update(d)
        if f == 0:
            continue
        assert len(out) == 4 and out.masks is not None and len(out.masks) == 4
        rows = [0, 2, 4, 5]
        np.testing.assert_array_equal(out.xyxy, d.xyxy[rows])
        for j, i in enumerate(rows):
            np.testing.assert_array_equal(out.masks.bitmap(j), d.masks.bitmap(i))
        assert out.tracker_id.tolist() == [1, 2, 3, 4]
        one = out[2]
        assert one.tracker_id.tolist() == [3]
        np.testing.assert_array_equal(one.masks.bitmap(0), d.masks.bitmap(4))
        assert out.to_rows(polygons=None)[1]["tracker_id"] == 2


def test_mask_weight_separates_overlapping_boxes():
    """Two objects with heavily overlapping boxes; A's mask is a bar on its left, B's on its right. They swap
    sides while their boxes barely move: box IoU alone pairs A with B's detection, mask IoU pairs them right."""
    a0, b0 = [100, 100, 200, 300], [120, 100, 220, 300]
    first = make([a0, b0], bitmaps=[bar_mask(a0, 100, 140), bar_mask(b0, 180, 220)])
    a1, b1 = [118, 100, 218, 300], [102, 100, 202, 300]  # A moved right, B moved left
    second = make([a1, b1], bitmaps=[bar_mask(a1, 118, 158), bar_mask(b1, 162, 202)])
    results = {}
    for w in (0.0, 0.9):
        tracker = Tracker(mask_weight=w)
        tracker.update(first)
        ids0 = tracker.update(first).tracker_id.tolist()
        assert ids0 == [1, 2]
        results[w] = ids_by_row(tracker.update(second), 2, second.xyxy).tolist()
    assert results[0.9] == [1, 2]  # the masks keep each object's id
    assert results[0.0] == [2, 1]  # boxes alone swap them


def test_masks_are_ignored_without_mask_weight():
    frames = [make([box_at(100 + 5 * f, 200), box_at(300, 200 + 4 * f)]) for f in range(10)]
    a, b = Tracker(), Tracker()
    for d in frames:
        no_masks = Detections(xyxy=d.xyxy, confidence=d.confidence, class_id=d.class_id)
        assert a.update(d).tracker_id.tolist() == b.update(no_masks).tracker_id.tolist()


def test_empty_detections_and_output_fields():
    tracker = Tracker()
    d = Detections.empty(names={0: "person"}, image_shape=(H, W))
    out = tracker.update(d)
    assert len(out) == 0 and out.tracker_id is not None and out.tracker_id.dtype == np.int64
    d = make([box_at(200, 200)])
    d = Detections(
        xyxy=d.xyxy,
        confidence=d.confidence,
        class_id=d.class_id,
        names={0: "person"},
        masks=d.masks,
        timings={"inference": 1.5},
    )
    tracker.update(d)
    out = tracker.update(d)
    assert out.names == {0: "person"} and out.timings == {"inference": 1.5} and out.image_shape == (H, W)
    assert out.tracker_id.tolist() == [1]


def test_bad_config():
    with pytest.raises(ValueError, match="high_thresh"):
        Tracker(high_thresh=2)
    with pytest.raises(ValueError, match="mask_weight"):
        Tracker(mask_weight=-0.1)
    with pytest.raises(ValueError, match="lost_frames"):
        Tracker(lost_frames=-1)
