"""The runtime on real Ultralytics exports and real images (onnxruntime, no mocks).

Reference boxes for bus.jpg (810x1080) are the well-known objects: the bus and the people in front of it.
"""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from edgeseg import Segmenter
from edgeseg.image_io import read_image
from shared_paths import SHARED

MODELS = SHARED / "models"
IMAGES = SHARED / "data" / "images"
INT8_320 = MODELS / "yolov8n-seg_int8.onnx"
DQ_640 = MODELS / "yolov8n-seg-coco-dq.onnx"

if not (INT8_320.exists() and DQ_640.exists() and (IMAGES / "bus.jpg").exists()):
    pytest.skip("shared models/images not available", allow_module_level=True)

# (class name, approximate xyxy) in bus.jpg
BUS_OBJECTS = [
    ("bus", (20, 230, 800, 740)),
    ("person", (50, 398, 245, 905)),
    ("person", (220, 405, 345, 860)),
    ("person", (670, 390, 810, 878)),
]
PARTIAL_PERSON = ("person", (0, 552, 75, 872))  # cut by the left edge: a low score on small inputs


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _match(det, name, box, min_iou=0.75):
    """Index of the detection of class ``name`` that overlaps ``box`` best (IoU >= min_iou)."""
    best, best_iou = None, 0.0
    for i, (cls, xyxy) in enumerate(zip(det.class_names, det.xyxy)):
        iou = _iou(xyxy, box)
        if cls == name and iou > best_iou:
            best, best_iou = i, iou
    assert best is not None and best_iou >= min_iou, f"no {name} near {box}: {det.to_rows(polygons=None)}"
    return best


def _check_mask_covers_its_box(det, i):
    x1, y1, x2, y2 = det.xyxy[i]
    mask = det.masks.full([i])[0]
    ys, xs = np.nonzero(mask)
    box_area = (x2 - x1) * (y2 - y1)
    inside = (xs >= x1 - 1) & (xs <= x2 + 1) & (ys >= y1 - 1) & (ys <= y2 + 1)
    assert inside.mean() > 0.98, "mask pixels must lie in the box"
    assert inside.sum() > 0.25 * box_area, f"mask covers only {inside.sum() / box_area:.0%} of its box"
    # (0.25: the man cut by the right edge fills only ~30% of his box.) The mask spans the object: (nearly) top to bottom and most of the width of its box
    assert ys.max() - ys.min() > 0.8 * (y2 - y1) and xs.max() - xs.min() > 0.6 * (x2 - x1)


@pytest.fixture(scope="module")
def bus():
    return read_image(IMAGES / "bus.jpg")


@pytest.fixture(scope="module")
def int8():
    return Segmenter(INT8_320)


@pytest.fixture(scope="module")
def dq():
    return Segmenter(DQ_640)


def test_int8_320_bus(int8, bus):
    assert int8.input_spec.shape == (320, 320) and int8.names[5] == "bus"
    det = int8(bus)
    assert det.image_shape == (1080, 810)
    found = [_match(det, name, box) for name, box in BUS_OBJECTS]
    assert len(set(found)) == 4
    for i in found:
        _check_mask_covers_its_box(det, i)
    # masks of different people do not overlap much
    people = [i for i in found if det.class_names[i] == "person"]
    full = det.masks.full(people)
    assert (full.sum(0) > 1).sum() < 0.05 * full.any(0).sum()


def test_int8_320_finds_the_partial_person_at_low_conf(bus):
    det = Segmenter(INT8_320, conf=0.1)(bus)
    for name, box in [*BUS_OBJECTS, PARTIAL_PERSON]:
        _check_mask_covers_its_box(det, _match(det, name, box, min_iou=0.7))
    assert det.class_names.count("person") == 4


def test_int8_320_zidane(int8):
    det = int8(IMAGES / "zidane.jpg")
    people = det.with_class("person")
    assert len(people) == 2
    centres = sorted(float((b[0] + b[2]) / 2) for b in people.xyxy)
    assert centres[0] < 700 < centres[1]  # one man on the left, one on the right
    for i in range(2):
        _check_mask_covers_its_box(people, i)


def test_dq_640_bus(dq, bus):
    det = dq(bus)
    assert dq.input_spec.shape == (640, 640)
    found = [_match(det, name, box) for name, box in [*BUS_OBJECTS, PARTIAL_PERSON]]
    assert len(set(found)) == 5 and det.class_names.count("person") == 4
    for i in found:
        _check_mask_covers_its_box(det, i)
    scores = det.confidence[found]
    assert (scores[:4] > 0.7).all() and 0.25 < scores[4] < 0.5


def test_dq_640_polygons_outline_the_people(dq, bus):
    det = dq(bus).with_class("person").with_min_confidence(0.5)
    polygons = det.polygons("largest")
    assert len(polygons) == len(det) == 3
    for (x1, y1, x2, y2), polys in zip(det.xyxy, polygons):
        pts = polys[0]
        assert len(pts) >= 20
        assert pts[:, 0].min() >= x1 - 2 and pts[:, 0].max() <= x2 + 2
        assert pts[:, 1].min() >= y1 - 2 and pts[:, 1].max() <= y2 + 2
        assert pts[:, 1].max() - pts[:, 1].min() > 0.8 * (y2 - y1)  # head to feet


def test_input_resolution_masks_close_to_retina(int8, bus):
    retina = int8(bus)
    coarse = Segmenter(INT8_320, retina_masks=False)(bus)
    assert len(coarse) == len(retina)
    np.testing.assert_allclose(coarse.xyxy, retina.xyxy, atol=1e-3)
    a, b = retina.masks.full(), coarse.masks.full()
    for i in range(len(retina)):
        iou = (a[i] & b[i]).sum() / (a[i] | b[i]).sum()
        assert iou > 0.85, f"instance {i}: IoU {iou:.2f}"


def test_same_result_for_path_and_array_and_repeat(int8, bus):
    first = int8(IMAGES / "bus.jpg")
    second = int8(bus)
    np.testing.assert_array_equal(first.xyxy, second.xyxy)
    np.testing.assert_array_equal(first.masks.data, second.masks.data)
