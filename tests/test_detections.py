"""Detections: validation, slicing, filters and JSON rows."""

import dataclasses
import json

import numpy as np
import pytest

from edgeseg.detections import Detections
from edgeseg.ops.masks import MaskSet

NAMES = {0: "person", 1: "bus", 2: "dog"}


def _maskset(rects, shape=(50, 60)):
    """Masks that fill each rect's left half."""
    rects = np.asarray(rects, np.int32)
    bitmaps = []
    for x0, y0, x1, y1 in rects:
        bm = np.zeros((y1 - y0, x1 - x0), np.uint8)
        bm[:, : (x1 - x0) // 2] = 1
        bitmaps.append(bm.ravel())
    offsets = np.concatenate([[0], np.cumsum([b.size for b in bitmaps])]).astype(np.int64)
    return MaskSet(rects, np.concatenate(bitmaps), offsets, shape)


@pytest.fixture
def det():
    rects = [[0, 0, 10, 10], [10, 10, 30, 20], [5, 5, 45, 45]]
    return Detections(
        xyxy=np.array(rects, np.float32),
        confidence=np.array([0.9, 0.5, 0.3]),
        class_id=np.array([0, 1, 0]),
        names=NAMES,
        masks=_maskset(rects),
        timings={"preprocess": 1.0, "inference": 2.0, "postprocess": 3.0},
    )


def test_fields_are_normalised(det):
    assert det.xyxy.dtype == np.float32 and det.confidence.dtype == np.float32
    assert det.class_id.dtype == np.int32
    assert len(det) == 3 and det.image_shape == (50, 60)
    assert det.class_names == ["person", "bus", "person"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (1, [1]),
        (-1, [2]),
        (slice(0, 2), [0, 1]),
        (np.array([True, False, True]), [0, 2]),
        (np.array([2, 0]), [2, 0]),
        ([1], [1]),
        (np.array([], dtype=np.int64), []),
    ],
)
def test_indexing(det, key, expected):
    sub = det[key]
    assert isinstance(sub, Detections)
    assert sub.confidence.tolist() == pytest.approx(det.confidence[expected].tolist())
    assert len(sub.masks) == len(expected)
    for j, i in enumerate(expected):
        assert np.array_equal(sub.masks.bitmap(j), det.masks.bitmap(i))
    assert sub.names is det.names and sub.image_shape == det.image_shape


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (3, IndexError),
        (-4, IndexError),
        (np.array([True, False]), IndexError),
        (np.array([0.5]), IndexError),
        (np.array([5]), IndexError),
        (True, TypeError),
    ],
)
def test_bad_indexing(det, key, error):
    with pytest.raises(error):
        det[key]


def test_iteration_yields_single_rows(det):
    rows = list(det)
    assert [len(r) for r in rows] == [1, 1, 1]
    assert rows[1].class_names == ["bus"]


def test_filters(det):
    assert det.with_class("person").confidence.tolist() == pytest.approx([0.9, 0.3])
    assert det.with_class(1).class_names == ["bus"]
    assert len(det.with_class("dog")) == 0
    assert det.with_min_confidence(0.5).confidence.tolist() == pytest.approx([0.9, 0.5])
    with pytest.raises(ValueError, match="unknown class"):
        det.with_class("cat")
    with pytest.raises(ValueError):
        det.with_min_confidence(2)


def test_areas(det):
    assert det.box_area.tolist() == [100, 200, 1600]
    assert det.mask_area.tolist() == [50, 100, 800]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"xyxy": np.zeros((2, 3))}, "xyxy"),
        ({"confidence": np.zeros(2)}, "confidence"),
        ({"class_id": np.zeros(4)}, "class_id"),
        ({"class_id": np.array([0.5, 1, 2])}, "integers"),
        ({"xyxy": np.array([[0, 0, np.nan, 1]] * 3)}, "NaN"),
        ({"masks": _maskset([[0, 0, 2, 2]])}, "masks"),
        ({"tracker_id": np.array([1, 2])}, "tracker_id"),
        ({"tracker_id": np.array([1.0, 2.0, 3.0])}, "integers"),
    ],
)
def test_validation(det, kwargs, match):
    fields = {
        "xyxy": det.xyxy,
        "confidence": det.confidence,
        "class_id": det.class_id,
        "names": NAMES,
        "masks": det.masks,
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Detections(**fields)


def test_empty():
    empty = Detections.empty(NAMES, (10, 20))
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4) and empty.image_shape == (10, 20)
    assert empty.summary() == "no detections"
    assert empty.to_rows() == [] and len(empty[np.zeros(0, bool)]) == 0


def test_summary_and_rows(det):
    assert det.summary() == "2 person, 1 bus"
    rows = det.to_rows(polygons=None)
    assert rows[1] == {"class_id": 1, "name": "bus", "confidence": 0.5, "box": [10.0, 10.0, 30.0, 20.0]}
    record = det.to_dict(polygons=None)
    assert json.loads(json.dumps(record))["timings"]["inference"] == 2.0


def test_polygons_follow_masks(det):
    polys = det.polygons("largest")
    assert len(polys) == 3
    # instance 1: left half of rect (10, 10)-(30, 20) -> x in [10, 20], y in [10, 20]
    pts = np.concatenate(polys[1])
    assert pts[:, 0].min() >= 9.5 and pts[:, 0].max() <= 20.5
    assert pts[:, 1].min() >= 9.5 and pts[:, 1].max() <= 20.5
    rows = det.to_rows()
    assert "polygons" in rows[0] and json.dumps(rows)


def test_names_as_list():
    d = Detections(xyxy=[[0, 0, 1, 1]], confidence=[0.4], class_id=[7], names=["a", "b"])
    assert d.class_names == ["7"]  # id outside the names: shown as the id
    with pytest.raises(TypeError):
        Detections(xyxy=[[0, 0, 1, 1]], confidence=[0.4], class_id=[0], names="ab")


def test_tracker_id_follows_the_rows(det):
    assert det.tracker_id is None and "tracker_id" not in det.to_rows(polygons=None)[0]
    tracked = dataclasses.replace(det, tracker_id=np.array([7, 3, 9], np.int32))
    assert tracked.tracker_id is not None and tracked.tracker_id.dtype == np.int64
    sub = tracked[np.array([2, 0])]
    assert sub.tracker_id is not None and sub.tracker_id.tolist() == [9, 7]
    # masks stay aligned with the ids: row 0 of the slice is the old row 2
    assert sub.masks is not None and sub.masks.rects[0].tolist() == [5, 5, 45, 45]
    assert [row["tracker_id"] for row in tracked.to_rows(polygons=None)] == [7, 3, 9]
    assert [d.tracker_id.tolist() for d in tracked if d.tracker_id is not None] == [[7], [3], [9]]
