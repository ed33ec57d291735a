"""Zones and lines: rasterising, mask occupancy, dwell and events, line crossings, configuration."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from edgeseg.detections import Detections
from edgeseg.ops.masks import MaskSet
from edgeseg.zones import (
    LineZone,
    PolygonZone,
    ZoneSet,
    anchor_points,
    load_zones,
    parse_line,
    parse_zone,
    points_in_polygon,
    rasterize_polygon,
)

NAMES = {0: "person", 1: "car", 2: "dog"}


# ---- helpers -------------------------------------------------------------------------------------------------


def brute_inside(polygon, shape):
    """Even-odd crossing test at every pixel centre, one edge at a time over the full frame (the reference)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    inside = np.zeros((h, w), bool)
    poly = np.asarray(polygon, np.float64)
    for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0)):
        if y1 == y2:
            continue
        crosses = (y1 > yy) != (y2 > yy)
        x_cross = (x2 - x1) * (yy - y1) / (y2 - y1) + x1
        inside ^= crosses & (xx < x_cross)
    return inside


def masked_detections(full_masks, class_ids=None, tracker_ids=None, rects=None):
    """Detections whose MaskSet holds each full-frame mask cropped to its rect (default: the mask's tight box)."""
    full_masks = [np.asarray(m, bool) for m in full_masks]
    shape = full_masks[0].shape
    rect_list, parts = [], []
    for i, m in enumerate(full_masks):
        if rects is not None:
            x0, y0, x1, y1 = rects[i]
        else:
            ys, xs = np.nonzero(m)
            x0, y0, x1, y1 = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(xs) else (0, 0, 0, 0)
        assert not m[:y0].any() and not m[y1:].any() and not m[:, :x0].any() and not m[:, x1:].any()
        rect_list.append([x0, y0, x1, y1])
        parts.append(m[y0:y1, x0:x1].astype(np.uint8).ravel())
    sizes = [len(p) for p in parts]
    masks = MaskSet(
        np.array(rect_list, np.int32), np.concatenate(parts), np.concatenate([[0], np.cumsum(sizes)]), shape
    )
    n = len(full_masks)
    return Detections(
        xyxy=np.array(rect_list, np.float32),
        confidence=np.full(n, 0.9, np.float32),
        class_id=np.zeros(n, np.int32) if class_ids is None else class_ids,
        names=NAMES,
        masks=masks,
        tracker_id=tracker_ids,
    )


def tracked(points, tracker_ids, class_ids=None, shape=(100, 100), half=2.0):
    """Tracked, maskless detections: small boxes centred on ``points``."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    n = len(pts)
    xyxy = np.concatenate([pts - half, pts + half], axis=1) if n else np.zeros((0, 4))
    return Detections(
        xyxy=xyxy,
        confidence=np.full(n, 0.9),
        class_id=np.zeros(n, np.int32) if class_ids is None else class_ids,
        names=NAMES,
        image_shape=shape,
        tracker_id=np.asarray(tracker_ids, np.int64).reshape(-1),
    )


def random_polygon(rng, shape, concave):
    h, w = shape
    k = int(rng.integers(3, 12))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radius = rng.uniform(0.2, 0.9, k) * min(h, w) if concave else np.full(k, rng.uniform(0.2, 0.9) * min(h, w))
    centre = rng.uniform([-0.3 * w, -0.3 * h], [1.3 * w, 1.3 * h])  # often partly outside the image
    pts = centre + radius[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if rng.random() < 0.5:
        pts = np.round(pts * 2) / 2  # integer and half-integer vertices: edges through pixel centres
    return pts


# ---- rasterising ---------------------------------------------------------------------------------------------


def test_square_rasterises_to_the_pixels_whose_centres_are_inside():
    r = rasterize_polygon([[10, 10], [20, 10], [20, 20], [10, 20]], (30, 40))
    expected = np.zeros((30, 40), bool)
    expected[10:20, 10:20] = True
    np.testing.assert_array_equal(r, expected)
    # two squares sharing an edge share no pixel and leave no gap
    a = rasterize_polygon([[0, 0], [10.5, 0], [10.5, 9], [0, 9]], (9, 20))
    b = rasterize_polygon([[10.5, 0], [20, 0], [20, 9], [10.5, 9]], (9, 20))
    assert not (a & b).any() and (a | b).all()


@pytest.mark.parametrize("concave", [False, True])
def test_rasteriser_equals_brute_force_point_in_polygon(concave):
    rng = np.random.default_rng(1 + concave)
    for _ in range(150):
        shape = (int(rng.integers(1, 60)), int(rng.integers(1, 60)))
        poly = random_polygon(rng, shape, concave)
        np.testing.assert_array_equal(rasterize_polygon(poly, shape), brute_inside(poly, shape))


def test_points_in_polygon_matches_the_raster_at_pixel_centres():
    rng = np.random.default_rng(5)
    poly = random_polygon(rng, (50, 50), True)
    yy, xx = np.mgrid[0:50, 0:50] + 0.5
    inside = points_in_polygon(np.stack([xx.ravel(), yy.ravel()], 1), poly).reshape(50, 50)
    np.testing.assert_array_equal(inside, rasterize_polygon(poly, (50, 50)))


def test_polygon_outside_or_beyond_the_image():
    assert not rasterize_polygon([[-50, -50], [-10, -50], [-10, -10]], (20, 20)).any()
    assert rasterize_polygon([[-1e6, -1e6], [1e6, -1e6], [1e6, 1e6], [-1e6, 1e6]], (20, 30)).all()
    with pytest.raises(ValueError, match="positive"):
        rasterize_polygon([[0, 0], [1, 0], [0, 1]], (0, 5))


# ---- occupancy by mask ---------------------------------------------------------------------------------------


def test_mask_trigger_is_right_where_the_box_centre_is_wrong():
    shape = (100, 100)
    zone_square = [[40, 40], [60, 40], [60, 60], [40, 60]]
    ell = np.zeros(shape, bool)
    ell[:, :10] = True  # vertical bar on the left
    ell[90:, :] = True  # bottom bar: the box is the whole image, its centre (50, 50) is in the zone
    ring = np.zeros(shape, bool)
    ring[20:80, 20:80] = True
    ring[30:70, 30:70] = False  # hollow: the zone sits in the hole
    dets = masked_detections([ell, ring], tracker_ids=[1, 2])
    by_mask = PolygonZone(zone_square, name="middle")
    by_centre = PolygonZone(zone_square, name="middle", trigger="center")
    np.testing.assert_array_equal(by_mask.fractions(dets), [0.0, 0.0])
    np.testing.assert_array_equal(by_mask.update(dets), [False, False])
    np.testing.assert_array_equal(by_centre.update(dets), [True, True])
    assert by_mask.current_count == 0 and by_centre.current_count == 2

    # the opposite: most of the mask is in the zone (left strip), the box centre is far right of it
    blob = np.zeros(shape, bool)
    blob[20:80, 0:30] = True
    blob[50, 30:100] = True  # a thin tail stretches the box to the right edge
    dets = masked_detections([blob])
    strip = [[0, 0], [30, 0], [30, 100], [0, 100]]
    zone = PolygonZone(strip, min_overlap=0.9)
    assert zone.fractions(dets)[0] == pytest.approx(1800 / 1870)
    assert zone.update(dets).tolist() == [True]
    assert PolygonZone(strip, trigger="center").update(dets).tolist() == [False]
    assert PolygonZone(strip, min_overlap=0.97).update(dets).tolist() == [False]


def test_mask_fraction_equals_a_full_frame_computation():
    rng = np.random.default_rng(7)
    for _ in range(40):
        shape = (int(rng.integers(20, 70)), int(rng.integers(20, 70)))
        h, w = shape
        full, rects = [], []
        for _ in range(int(rng.integers(1, 5))):
            x0, x1 = sorted(rng.integers(0, w + 1, 2))
            y0, y1 = sorted(rng.integers(0, h + 1, 2))
            m = np.zeros(shape, bool)
            m[y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) < rng.uniform(0.1, 0.9)
            full.append(m)
            rects.append([x0, y0, x1, y1])  # loose rects (as the mask decoder gives), some empty
        dets = masked_detections(full, rects=rects)
        poly = random_polygon(rng, shape, bool(rng.integers(2)))
        zone_pixels = brute_inside(poly, shape)
        expected = [(m & zone_pixels).sum() / m.sum() if m.sum() else 0.0 for m in full]
        np.testing.assert_allclose(PolygonZone(poly).fractions(dets), expected, rtol=0, atol=1e-12)


def test_mask_trigger_needs_masks_and_classes_filter():
    zone = PolygonZone([[0, 0], [100, 0], [100, 100], [0, 100]], name="yard")
    dets = tracked([[50, 50]], [1])
    with pytest.raises(ValueError, match=r"zone 'yard'.*no masks.*bottom_center"):
        zone.update(dets)
    assert zone.update(Detections.empty(NAMES, (100, 100)), 1.0).tolist() == []

    m = np.zeros((100, 100), bool)
    m[40:60, 40:60] = True
    dets = masked_detections([m, m, m], class_ids=[0, 1, 2])
    people = PolygonZone([[0, 0], [100, 0], [100, 100], [0, 100]], classes=["person", 2])
    assert people.update(dets).tolist() == [True, False, True]
    assert people.count_by_class == {"dog": 1, "person": 1}
    with pytest.raises(ValueError, match=r"zone 'zone': classes: unknown class name 'cat'"):
        PolygonZone([[0, 0], [1, 0], [0, 1]], classes="cat").update(dets)


def test_normalized_zone_follows_the_image_size():
    zone = PolygonZone([[0, 0], [0.5, 0], [0.5, 1], [0, 1]], normalized=True, trigger="center")
    assert zone.raster((10, 20))[:, :10].all() and not zone.raster((10, 20))[:, 10:].any()
    assert zone.raster((4, 8)).sum() == 16
    assert zone.update(tracked([[30, 5], [70, 5]], [1, 2], shape=(10, 100))).tolist() == [True, False]
    with pytest.raises(ValueError, match="within 0..1"):
        PolygonZone([[0, 0], [2, 0], [0, 1]], normalized=True)


# ---- dwell and events ----------------------------------------------------------------------------------------


def test_dwell_enter_and_leave_with_timestamps():
    zone = PolygonZone([[0, 0], [50, 0], [50, 100], [0, 100]], name="door", trigger="center", leave_after=1.0)
    inside, outside = [25, 50], [75, 50]
    events = {}
    for step in range(12):
        t = 10.0 + 0.5 * step
        if step < 2:
            dets = tracked([outside], [7])
        elif step in (5, 6):
            dets = tracked(np.zeros((0, 2)), [])  # the detector misses the track for 1 s: no leave/enter
        elif step < 9:
            dets = tracked([inside, outside], [7, 8], class_ids=[0, 1])
        else:
            dets = tracked([outside], [7])  # it walked out at t = 14.5 (last seen inside at 14.0)
        zone.update(dets, t)
        events[t] = zone.events
        if t == 13.0:
            assert zone.current_count == 0 and zone.tracks_inside == [7]  # unseen, not yet left
            assert zone.dwell == {7: 1.0}  # entered at 11.0, last seen inside at 12.0
    assert events[11.0] == [{"type": "enter", "zone": "door", "tracker_id": 7, "class": "person", "time": 11.0}]
    leaves = {t: e for t, e in events.items() if e and e[0]["type"] == "leave"}
    assert leaves == {
        15.5: [{"type": "leave", "zone": "door", "tracker_id": 7, "class": "person", "time": 14.0, "dwell_s": 3.0}]
    }
    assert sum(len(e) for e in events.values()) == 2
    assert zone.entered == 1 and zone.left == 1 and zone.tracks_inside == [] and zone.dwell == {}


def test_reentry_frame_counting_and_counts():
    zone = PolygonZone([[0, 0], [50, 0], [50, 100], [0, 100]], trigger="center", leave_after=0)
    seq = [20, 20, 80, 20]  # x of track 3 per frame, no times: frames count
    kinds = []
    for x in seq:
        zone.update(tracked([[x, 50], [10, 10]], [3, 4], class_ids=[1, 0]))
        kinds.append([(e["type"], e["tracker_id"], e["time"]) for e in zone.events])
    assert kinds == [[("enter", 3, 0.0), ("enter", 4, 0.0)], [], [("leave", 3, 1.0)], [("enter", 3, 3.0)]]
    assert zone.current_count == 2 and zone.count_by_class == {"car": 1, "person": 1}
    summary = ZoneSet([zone]).summary()
    assert summary == {
        "zones": {"zone": {"count": 2, "by_class": {"car": 1, "person": 1}, "tracks": [3, 4], "entered": 3, "left": 1}},
        "lines": {},
    }
    zone.update(tracked([], []), 10.0)
    with pytest.raises(ValueError, match="zone 'zone': time_s went backwards"):
        zone.update(tracked([], []), 9.0)


def test_untracked_detections_count_but_make_no_events():
    zone = PolygonZone([[0, 0], [50, 0], [50, 100], [0, 100]], trigger="center")
    dets = Detections(xyxy=[[10, 10, 20, 20]], confidence=[0.5], class_id=[0], names=NAMES, image_shape=(100, 100))
    assert zone.update(dets).tolist() == [True] and zone.events == [] and zone.current_count == 1


# ---- lines ---------------------------------------------------------------------------------------------------


def run_line(line, trajectories, times=None):
    """trajectories: per frame a dict {tracker_id: (x, y) or (x, y, class_id)}; returns all events."""
    events = []
    for f, frame in enumerate(trajectories):
        ids = list(frame)
        pts = [frame[i][:2] for i in ids]
        cls = [frame[i][2] if len(frame[i]) > 2 else 0 for i in ids]
        line.update(tracked(np.array(pts).reshape(-1, 2), ids, class_ids=cls), None if times is None else times[f])
        events.extend(line.events)
    return events


def test_straight_crossings_in_both_directions():
    line = LineZone([0, 50], [100, 50], name="gate", min_distance=5)  # drawn left to right: "in" is downward
    down = [{1: (30, y)} for y in range(10, 95, 5)]
    up = [{2: (60, y)} for y in range(90, 5, -5)]
    events = run_line(line, down + up, times=[0.1 * i for i in range(len(down) + len(up))])
    assert [(e["direction"], e["tracker_id"]) for e in events] == [("in", 1), ("out", 2)]
    assert events[0] == {
        "type": "cross",
        "line": "gate",
        "direction": "in",
        "tracker_id": 1,
        "class": "person",
        "time": pytest.approx(1.0),
    }
    assert line.in_count == 1 and line.out_count == 1
    reverse = LineZone([100, 50], [0, 50], min_distance=5)  # the same segment drawn right to left: swapped
    run_line(reverse, down + up)
    assert reverse.in_count == 1 and reverse.out_count == 1
    assert [e["direction"] for e in run_line(LineZone([100, 50], [0, 50]), down)] == ["out"]


def test_jitter_on_the_line_counts_once():
    line = LineZone([0, 50], [100, 50], min_distance=5)
    frames = [{1: (40, 20)}, {1: (40, 40)}]
    frames += [{1: (40 + (i % 3), 50 + (4 if i % 2 else -4))} for i in range(60)]  # hovering within the band
    frames += [{1: (42, 70)}, {1: (42, 90)}]
    assert [e["direction"] for e in run_line(line, frames)] == ["in"]
    # hovering then going back where it came from: nothing
    back = LineZone([0, 50], [100, 50], min_distance=5)
    assert run_line(back, [*frames[:-2], {1: (40, 20)}]) == []
    # real moves beyond the band each way count each time
    wide = LineZone([0, 50], [100, 50], min_distance=5)
    events = run_line(wide, [{1: (40, 50 + (10 if i % 2 else -10))} for i in range(6)])
    assert [e["direction"] for e in events] == ["in", "out", "in", "out", "in"]
    # a track first seen inside the band has no side until it leaves the band
    fresh = LineZone([0, 50], [100, 50], min_distance=5)
    assert run_line(fresh, [{5: (40, 48)}, {5: (40, 53)}, {5: (40, 80)}]) == []


def test_only_crossings_within_the_segment_count():
    line = LineZone([20, 50], [80, 50], min_distance=5)
    frames = []
    for tid, x in enumerate([95, 83, 86, 50, 17, 14, 0], start=1):
        frames += [{tid: (x, 10)}, {tid: (x, 90)}]
    events = run_line(line, frames)
    assert sorted(e["tracker_id"] for e in events) == [2, 4, 5]  # x 83 and 17 are within the 5 px margin
    # a diagonal trajectory crossing inside the segment although both ends lie outside its extent
    diag = LineZone([20, 50], [80, 50], min_distance=5)
    assert [e["direction"] for e in run_line(diag, [{1: (0, 0)}, {1: (100, 100)}])] == ["in"]
    # going around the end does not count, and the side is updated (coming back through does count)
    around = LineZone([20, 50], [80, 50], min_distance=5)
    path = [{1: (50, 20)}, {1: (95, 20)}, {1: (95, 80)}, {1: (50, 80)}, {1: (50, 20)}]
    assert [e["direction"] for e in run_line(around, path)] == ["out"]


def test_per_class_counts_and_rows():
    line = LineZone([0, 50], [100, 50], classes=["person", "car"])
    f0 = {1: (10, 20, 0), 2: (30, 20, 1), 3: (50, 20, 1), 4: (70, 20, 2)}
    f1 = {1: (10, 80, 0), 2: (30, 80, 1), 3: (50, 30, 1), 4: (70, 80, 2)}
    f2 = {3: (50, 80, 1)}
    run_line(line, [f0])
    dets = tracked([v[:2] for v in f1.values()], list(f1), class_ids=[v[2] for v in f1.values()])
    assert line.update(dets).tolist() == [1, 1, 0, 0]  # the dog (class 2) is not counted
    run_line(line, [f2])
    assert line.summary() == {"in": 3, "out": 0, "in_by_class": {"car": 2, "person": 1}, "out_by_class": {}}


def test_track_that_disappears_and_reappears():
    line = LineZone([0, 50], [100, 50], forget_after=2.0)
    frames = [{1: (50, 20)}, {1: (50, 30)}, {}, {}, {1: (50, 70)}]  # unseen for 2 frames, then across
    assert [e["direction"] for e in run_line(line, frames)] == ["in"]
    forgetful = LineZone([0, 50], [100, 50], forget_after=1.0)
    assert run_line(forgetful, frames) == []  # forgotten before it came back: its old side is unknown
    with pytest.raises(ValueError, match=r"line 'line' counts tracks.*tracker_id"):
        line.update(Detections(xyxy=[[0, 0, 1, 1]], confidence=[1], class_id=[0]))


def test_anchor_points():
    pts = anchor_points([[0, 10, 4, 30]], "bottom_center")
    np.testing.assert_array_equal(pts, [[2, 30]])
    np.testing.assert_array_equal(anchor_points([[0, 10, 4, 30]], "top_right"), [[4, 10]])
    # boxes of half-height 2 centred at y 45 then 49.5: the bottom goes from 3 px above to 1.5 px below the line
    frames = [{1: (50, 45)}, {1: (50, 49.5)}]
    assert len(run_line(LineZone([0, 50], [100, 50], anchor="bottom_center", min_distance=1), frames)) == 1
    assert run_line(LineZone([0, 50], [100, 50], anchor="center", min_distance=1), frames) == []


# ---- configuration -------------------------------------------------------------------------------------------


def test_parse_zone_and_line_strings():
    zone = parse_zone("door:100,200 400,200 400,500 100,500@trigger=bottom_center,min_overlap=0.3,classes=person,car")
    assert zone.name == "door" and zone.trigger == "bottom_center" and zone.min_overlap == 0.3
    assert zone.classes == ("person", "car")
    np.testing.assert_array_equal(zone.polygon, [[100, 200], [400, 200], [400, 500], [100, 500]])
    plain = parse_zone("0,0 1,0 1,1@normalized=true,classes=0", default_name="zone3")
    assert plain.name == "zone3" and plain.normalized and plain.classes == (0,) and plain.trigger == "mask"
    line = parse_line("gate:0,300 640,300@anchor=bottom_center,min_distance=8,classes=traffic light")
    assert line.name == "gate" and line.anchor == "bottom_center" and line.min_distance == 8
    assert line.classes == ("traffic light",)
    np.testing.assert_array_equal([line.start, line.end], [[0, 300], [640, 300]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("door:100,200 400,200", r"zone 'door': polygon needs at least 3 points"),
        ("door:100;200 400,200 1,1", r"zone 'door': polygon.*X,Y.*'100;200'"),
        ("door:0,0 1,1 2,2", r"zone 'door': polygon has no area"),
        ("door:0,0 9,0 0,9@colour=red", r"zone 'door': unknown key\(s\) 'colour'"),
        ("door:0,0 9,0 0,9@trigger=feet", r"zone 'door': trigger must be one of"),
        ("door:0,0 9,0 0,9@min_overlap=lots", r"zone 'door': min_overlap must be a number"),
        ("door:0,0 9,0 0,9@min_overlap=0", r"zone 'door': min_overlap must be in \(0, 1\]"),
        ("door:0,0 9,0 0,9@normalized=maybe", r"zone 'door': normalized must be true or false"),
        ("door:0,0 9,0 0,9@classes=", r"zone 'door': classes must be class ids"),
        ("door:0,0 9,0 0,9@trigger=center,person", r"zone 'door': expected KEY=VALUE"),
        ("door:0,0 9,0 0,nan", r"zone 'door': polygon must be finite"),
        (":0,0 9,0 0,9", r"zone name must be a non-empty string"),
        ("", r"NAME:X,Y"),
    ],
)
def test_bad_zone_strings(text, message):
    with pytest.raises(ValueError, match=message):
        parse_zone(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gate:0,0 1,1 2,2", r"line 'gate': a line is two points"),
        ("gate:5,5 5,5", r"line 'gate': end equals start"),
        ("gate:0,0 9,9@trigger=center", r"line 'gate': unknown key\(s\) 'trigger'"),
        ("gate:0,0 9,9@anchor=middle", r"line 'gate': anchor must be one of"),
        ("gate:0,0 9,9@min_distance=-1", r"line 'gate': min_distance must be >= 0"),
    ],
)
def test_bad_line_strings(text, message):
    with pytest.raises(ValueError, match=message):
        parse_line(text)


CONFIG = {
    "zones": [
        {"name": "door", "polygon": [[0, 0], [50, 0], [50, 100], [0, 100]], "trigger": "center", "classes": ["person"]},
        {"polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]], "normalized": True, "min_overlap": 0.25},
    ],
    "lines": [{"name": "gate", "start": [0, 50], "end": [100, 50], "anchor": "bottom_center", "min_distance": 3}],
}


def test_load_zones_from_json_and_yaml(tmp_path):
    path = tmp_path / "zones.json"
    path.write_text(json.dumps(CONFIG))
    zs = load_zones(path)
    assert [z.name for z in zs.zones] == ["door", "zone2"] and [ln.name for ln in zs.lines] == ["gate"]
    assert zs.zones[0].classes == ("person",) and zs.zones[1].normalized and zs.zones[1].min_overlap == 0.25
    assert zs.lines[0].anchor == "bottom_center" and zs.lines[0].min_distance == 3
    yaml = pytest.importorskip("yaml")
    ypath = tmp_path / "zones.yaml"
    ypath.write_text(yaml.safe_dump(CONFIG))
    assert repr(load_zones(ypath)) == repr(zs)


def test_zoneset_update_and_summary():
    zs = ZoneSet.from_config({**CONFIG, "zones": CONFIG["zones"][:1]})
    events = []
    for t, y in enumerate([20, 40, 60, 80]):
        events += zs.update(tracked([[25, y]], [9], shape=(100, 100)), float(t))
    assert [(e["type"], e.get("zone", e.get("line"))) for e in events] == [("enter", "door"), ("cross", "gate")]
    summary = zs.summary()
    assert summary["lines"]["gate"]["in"] == 1 and summary["zones"]["door"]["tracks"] == [9]
    json.dumps(summary)
    json.dumps(events)
    assert len(zs) == 2 and [type(x).__name__ for x in zs] == ["PolygonZone", "LineZone"]
    zs.reset()
    assert zs.summary()["lines"]["gate"]["in"] == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"zones": [{"name": "door", "polygon": [[0, 0], [9, 0], [0, 9]], "colour": 1}]}, r"zone 'door'.*'colour'"),
        ({"zones": [{"name": "door", "polygon": "0,0 9,0 0,9"}]}, r"zone 'door': polygon must be a list"),
        (
            {"zones": [{"name": "door", "polygon": [[0, 0], [9, "x"], [0, 9]]}]},
            r"zone 'door': polygon must be a number",
        ),
        ({"zones": [{"name": "door"}]}, r"zone 'door': polygon is missing"),
        (
            {"zones": [{"name": "door", "polygon": [[0, 0], [9, 0], [0, 9]], "min_overlap": "0.3"}]},
            r"zone 'door': min_overlap must be a number",
        ),
        (
            {"zones": [{"name": "door", "polygon": [[0, 0], [9, 0], [0, 9]], "classes": [True]}]},
            r"zone 'door': classes",
        ),
        ({"zones": [{"name": "a", "polygon": [[0, 0], [9, 0], [0, 9]]}] * 2}, r"two zones are named 'a'"),
        ({"lines": [{"name": "gate", "start": [0, 0]}]}, r"line 'gate': end is missing"),
        ({"lines": [{"name": "gate", "start": [0, 0], "end": [1]}]}, r"line 'gate': end must be an \[x, y\] point"),
        (
            {"lines": [{"name": "gate", "start": [0, 0], "end": [1, 1], "normalized": "yes"}]},
            r"line 'gate': normalized",
        ),
        ({"lines": {"name": "gate"}}, r"lines must be a list"),
        ({"zones": ["door"]}, r"zone 'zone1': must be a mapping"),
        ({"areas": []}, r"zone config: unknown key\(s\) 'areas'"),
        ({}, r"no zones and no lines"),
        ([1, 2], r"must be a mapping"),
    ],
)
def test_bad_configs(config, message):
    from edgeseg.zones import zoneset_from_config

    with pytest.raises(ValueError, match=message):
        zoneset_from_config(config)


def test_bad_zone_files(tmp_path):
    bad = tmp_path / "z.json"
    bad.write_text("{zones: [")
    with pytest.raises(ValueError, match=r"z.json: not valid JSON"):
        load_zones(bad)
    bad.write_text(json.dumps({"zones": [{"name": "door", "polygon": [[0, 0], [1, 1]]}]}))
    with pytest.raises(ValueError, match=r"z.json: zone 'door': polygon needs at least 3 points"):
        load_zones(bad)
    with pytest.raises(ValueError, match=r"must end in .json, .yaml or .yml"):
        (tmp_path / "z.txt").write_text("{}")
        load_zones(tmp_path / "z.txt")
    with pytest.raises(FileNotFoundError):
        load_zones(tmp_path / "missing.json")


def test_bad_yaml_and_missing_pyyaml(tmp_path, monkeypatch):
    ypath = tmp_path / "z.yml"
    ypath.write_text("zones: [")
    pytest.importorskip("yaml")
    with pytest.raises(ValueError, match=r"z.yml: not valid YAML"):
        load_zones(ypath)
    monkeypatch.setitem(sys.modules, "yaml", None)  # pyyaml not installed
    with pytest.raises(ValueError, match=r"reading YAML needs pyyaml"):
        load_zones(ypath)
