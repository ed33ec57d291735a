"""YOLO26-seg exports on the runtime (real models from ../shared, onnxruntime, no mocks).

``yolo26n-seg-shapes.onnx`` is Ultralytics' end-to-end (NMS-free) export: output0 [1, 300, 38] = x1, y1, x2,
y2 (input pixels), score, class, 32 coefficients; the one-to-many exports (ONNX, OpenVINO) have the v8 layout
[1, 40, 2100] and need NMS. The model is weak (10 epochs on the shapes set): scores rarely pass 0.25, so the
tests run at conf 0.05.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from edgeseg import Segmenter
from edgeseg.backends.base import identify_outputs
from edgeseg.errors import ModelOutputError
from edgeseg.image_io import read_image
from edgeseg.ops.layouts import EndToEndLayout, SingleOutputLayout
from shared_paths import SHARED

MODELS = SHARED / "models"
E2E = MODELS / "yolo26n-seg-shapes.onnx"
ONE2MANY = MODELS / "yolo26n-seg-shapes-one2many.onnx"
OPENVINO = MODELS / "yolo26n-seg-shapes_openvino_model"
VAL = SHARED / "data" / "shapes-seg" / "images" / "val"

if not (E2E.exists() and ONE2MANY.exists() and VAL.is_dir()):
    pytest.skip("shared YOLO26 models / shapes-seg images not available", allow_module_level=True)

CONF = 0.05
# val images (sorted) with several end-to-end rows above CONF (the model finds little in most images)
FEW = (4, 6, 9, 51)


def _val_images() -> list:
    return sorted(p for p in VAL.iterdir() if p.suffix.lower() in (".jpg", ".png"))


def _image(i: int, size: tuple[int, int] | None = None) -> np.ndarray:
    img = read_image(_val_images()[i])
    if size is not None:  # another size and aspect: the letterbox scales and pads
        import cv2

        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    return img


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None] - inter)


@pytest.fixture(scope="module")
def e2e() -> Segmenter:
    return Segmenter(E2E, conf=CONF)


@pytest.fixture(scope="module")
def session():
    import onnxruntime as ort

    return ort.InferenceSession(str(E2E), providers=["CPUExecutionProvider"])


def _reference(seg: Segmenter, session, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (image pixels), scores, classes read straight from output0 above CONF, score order, and all rows."""
    blob, info = seg.preprocess(img)
    rows = session.run(None, {session.get_inputs()[0].name: blob})[0][0]
    keep = np.flatnonzero(rows[:, 4] > CONF)
    keep = keep[np.argsort(-rows[keep, 4], kind="stable")]
    boxes = (rows[keep, :4] - [info.pad_left, info.pad_top, info.pad_left, info.pad_top]) / info.scale
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, info.orig_w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, info.orig_h)
    return boxes, rows[keep, 4], rows[keep, 5].astype(int), rows


def test_end_to_end_export_is_read_as_end_to_end(e2e):
    layout = e2e.backend.output_layout
    assert isinstance(layout, EndToEndLayout)
    assert layout.kind == "end2end" and not layout.needs_nms
    assert (layout.nc, layout.nm, layout.preds_index, layout.protos_index) == (4, 32, 0, 1)
    assert e2e.names == {0: "circle", 1: "square", 2: "triangle", 3: "star"}
    assert e2e.metadata.end2end is True


@pytest.mark.parametrize("size", [None, (400, 560)])  # (w, h): 320x320 as stored, and letterboxed with padding
def test_detections_are_output0_read_directly(e2e, session, size):
    found = 0
    for i in FEW:
        img = _image(i, size)
        det = e2e(img)
        boxes, scores, classes, _ = _reference(e2e, session, img)
        # every row above conf is a detection (the segmenter drops only rows whose mask is empty: none here)
        assert len(det) == len(scores), (i, len(det), len(scores))
        np.testing.assert_allclose(det.xyxy, boxes, atol=1e-3)
        np.testing.assert_allclose(det.confidence, scores, rtol=1e-6)
        np.testing.assert_array_equal(det.class_id, classes)
        found += len(det)
    assert found >= 20  # 31 rows above 0.05 in these four images at 320x320


def test_no_nms_overlapping_rows_survive(session):
    """The export repeats a box with another class in the next rows; NMS across classes would keep one of them."""
    seg = Segmenter(E2E, conf=CONF, iou=0.5, agnostic_nms=True)
    pairs = 0
    for i in FEW:
        det = seg(_image(i))
        _, scores, _, _ = _reference(seg, session, _image(i))
        assert len(det) == len(scores)
        iou = _iou(det.xyxy, det.xyxy)
        np.fill_diagonal(iou, 0)
        pairs += int((iou > 0.5).sum()) // 2
    assert pairs >= 1, "expected overlapping detections from the raw rows"


def test_max_det_and_classes(e2e, session):
    img = _image(6)
    _, scores, classes, _ = _reference(e2e, session, img)
    assert len(scores) > 3
    top = Segmenter(E2E, conf=CONF, max_det=3)(img)
    np.testing.assert_allclose(top.confidence, scores[:3], rtol=1e-6)
    wanted = int(classes[0])
    only = Segmenter(E2E, conf=CONF, classes=[wanted])(img)
    assert len(only) == int((classes == wanted).sum()) and set(only.class_id.tolist()) == {wanted}


def test_masks_lie_inside_their_boxes(e2e):
    checked = 0
    for i in FEW:
        for size in (None, (400, 560)):
            det = e2e(_image(i, size))
            full = det.masks.full()
            for k, (x1, y1, x2, y2) in enumerate(det.xyxy):
                ys, xs = np.nonzero(full[k])
                assert len(xs) > 0
                assert xs.min() >= x1 - 1 and xs.max() <= x2 + 1 and ys.min() >= y1 - 1 and ys.max() <= y2 + 1
                checked += 1
    assert checked >= 40
    coarse = Segmenter(E2E, conf=CONF, retina_masks=False)(_image(51))
    assert len(coarse) > 0 and (coarse.masks.areas() > 0).all()


def _agreement(e2e: Segmenter, other: Segmenter, min_score: float) -> tuple[int, int, int]:
    """(end-to-end boxes with score >= min_score, those with a one-to-many box of the same class at IoU >= 0.5,
    those with a one-to-many box of any class at IoU >= 0.5) over the val images."""
    total = same = anyclass = 0
    for path in _val_images():
        img = read_image(path)
        a, b = e2e(img), other(img)
        k = a.confidence >= min_score
        total += int(k.sum())
        if not k.any() or len(b) == 0:
            continue
        iou = _iou(a.xyxy[k], b.xyxy) >= 0.5
        same += int((iou & (a.class_id[k][:, None] == b.class_id[None])).any(1).sum())
        anyclass += int(iou.any(1).sum())
    return total, same, anyclass


def _check_agreement(e2e: Segmenter, other: Segmenter) -> None:
    # Measured on the 64 val images (onnxruntime, fp16 one-to-many): score >= 0.1: 15 end-to-end boxes, 14 with
    # a same-class one-to-many box, 15 with one of any class; score >= 0.25: 3 of 3. The one miss is a box the
    # end-to-end head repeats with a second (wrong) class. Bounds leave room for one or two more borderline
    # boxes: >= 75% same class, >= 90% any class.
    total, same, anyclass = _agreement(e2e, other, 0.1)
    assert total >= 10, total
    assert same >= 0.75 * total, (total, same)
    assert anyclass >= 0.9 * total, (total, anyclass)
    total, same, _ = _agreement(e2e, other, 0.25)
    assert total >= 2 and same == total, (total, same)


def test_one_to_many_onnx_runs_and_agrees(e2e):
    other = Segmenter(ONE2MANY, conf=CONF)
    layout = other.backend.output_layout
    assert isinstance(layout, SingleOutputLayout) and layout.needs_nms and (layout.nc, layout.nm) == (4, 32)
    assert other.metadata.end2end is False
    _check_agreement(e2e, other)


def test_one_to_many_openvino_runs_and_agrees(e2e):
    pytest.importorskip("openvino")
    if not OPENVINO.is_dir():
        pytest.skip("OpenVINO export not available")
    other = Segmenter(OPENVINO, conf=CONF)
    assert other.backend.output_layout.needs_nms and other.backend.output_layout.nc == 4
    _check_agreement(e2e, other)


def test_layout_detection_by_shape_and_metadata():
    e2e_shapes = [(1, 300, 38), (1, 32, 80, 80)]
    assert isinstance(identify_outputs(e2e_shapes, nc_hint=4, end2end=True), EndToEndLayout)
    assert isinstance(identify_outputs(e2e_shapes, nc_hint=4), EndToEndLayout)  # no end2end key: by shape
    # outputs in the other order
    assert identify_outputs(e2e_shapes[::-1], nc_hint=80).preds_index == 1
    # the one-to-many layout stays dense even when the metadata says nothing
    dense = identify_outputs([(1, 40, 2100), (1, 32, 80, 80)], nc_hint=4)
    assert isinstance(dense, SingleOutputLayout) and dense.nc == 4
    # end2end=True on a dense shape, an end-to-end model without class names, shapes that fit nothing
    with pytest.raises(ModelOutputError, match="end2end"):
        identify_outputs([(1, 40, 2100), (1, 32, 80, 80)], nc_hint=4, end2end=True)
    with pytest.raises(ModelOutputError, match="names"):
        identify_outputs(e2e_shapes, nc_hint=None, end2end=True)
    with pytest.raises(ModelOutputError):
        identify_outputs([(1, 300, 37), (1, 32, 80, 80)], nc_hint=4)


def test_end_to_end_layout_rejects_bad_outputs():
    layout = EndToEndLayout(preds_index=0, protos_index=1, protos_layout="chw", nc=4, nm=32)
    protos = np.zeros((1, 32, 80, 80), np.float32)
    with pytest.raises(ModelOutputError, match="6 \\+ 32"):
        layout.decode([np.zeros((1, 300, 40), np.float32), protos])
    rows = np.zeros((1, 5, 38), np.float32)
    rows[0, :, :4] = [10, 10, 50, 50]
    rows[0, :, 4] = [0.9, 0.8, np.nan, 0.7, 0.1]
    rows[0, :, 5] = [0, 1, 2, 3, 0]
    candidates, _ = layout.decode([rows, protos], conf=0.25)
    assert candidates.scores.tolist() == pytest.approx([0.9, 0.8, 0.7]) and candidates.nonfinite == 1
    assert candidates.class_ids.tolist() == [0, 1, 3] and candidates.anchors.tolist() == [0, 1, 3]
    with pytest.raises(ValueError, match="classes"):
        layout.decode([rows, protos], classes=[7])
    rows[0, 0, 5] = 9
    with pytest.raises(ModelOutputError, match="class id"):
        layout.decode([rows, protos])


def test_info_shows_the_end_to_end_layout():
    result = subprocess.run(
        [sys.executable, "-m", "edgeseg", "info", str(E2E)], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    assert "end2end" in result.stdout and "no NMS" in result.stdout and "[1, 300, 38]" in result.stdout


def test_ultralytics_end_to_end_onnx_validates_like_the_checkpoints_end_to_end_head():
    from edgeseg.val.validator import validate

    data = str(SHARED / "data" / "shapes-seg" / "shapes-seg.yaml")
    onnx = validate(str(E2E), data=data, imgsz=320, progress=False).as_dict()
    # Ultralytics' nms=False val of the checkpoint (SOURCES.md): box / mask mAP50-95 0.0166 / 0.0284
    assert abs(onnx["metrics/mAP50-95(B)"] - 0.0166) <= 0.005
    assert abs(onnx["metrics/mAP50-95(M)"] - 0.0284) <= 0.005
    with pytest.raises(ValueError, match="head is fixed at export"):
        validate(str(E2E), data=data, imgsz=320, progress=False, end2end=False)
