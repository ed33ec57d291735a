"""Segmenter end to end on tiny synthetic models whose answer is known exactly."""

import numpy as np
import pytest

from edgeseg import Detections, Segmenter
from onnx_builders import save_seg_model

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    # one class-1 box centred (32, 32), 20x20 in a 64x64 input -> xyxy (22, 22, 42, 42)
    return save_seg_model(tmp_path_factory.mktemp("m") / "seg.onnx")


def test_exact_box_mask_and_timings(model):
    seg = Segmenter(model)
    det = seg(np.zeros((64, 64, 3), np.uint8))
    assert isinstance(det, Detections) and len(det) == 1
    np.testing.assert_allclose(det.xyxy[0], [22, 22, 42, 42], atol=1e-4)
    assert det.class_id.tolist() == [1] and det.class_names == ["class1"]
    np.testing.assert_allclose(det.confidence, [0.9], atol=1e-6)
    assert det.image_shape == (64, 64)
    assert det.mask_area.tolist() == [400]
    full = det.masks.full()[0]
    assert full[22:42, 22:42].all() and full.sum() == 400
    assert set(det.timings) == {"preprocess", "inference", "postprocess"}
    assert all(v >= 0 for v in det.timings.values())


def test_boxes_scale_back_to_original_pixels(model):
    # 128x256 (h x w) image: scale 0.25, padded 16 rows top -> box maps to x*4, (y-16)*4
    det = Segmenter(model)(np.zeros((128, 256, 3), np.uint8))
    np.testing.assert_allclose(det.xyxy[0], [88, 24, 168, 104], atol=1e-3)
    assert det.image_shape == (128, 256)
    assert det.masks.image_shape == (128, 256)
    assert abs(int(det.mask_area[0]) - 80 * 80) <= 2 * 80


def test_input_resolution_masks_agree_with_retina(model):
    image = np.zeros((100, 100, 3), np.uint8)
    retina = Segmenter(model)(image)
    coarse = Segmenter(model, retina_masks=False)(image)
    a, b = retina.masks.full()[0], coarse.masks.full()[0]
    # input-resolution masks are cropped at prototype resolution (4 input px per cell here), so their
    # edge is up to about a cell coarser; they cover the retina mask and overlap it well
    assert (a & b).sum() == a.sum()
    assert (a & b).sum() / (a | b).sum() > 0.6


def test_conf_threshold_and_class_filter(model):
    image = np.zeros((64, 64, 3), np.uint8)
    assert len(Segmenter(model, conf=0.95)(image)) == 0
    assert len(Segmenter(model, classes=[0])(image)) == 0
    assert len(Segmenter(model, classes=["class1"])(image)) == 1
    empty = Segmenter(model, conf=0.95)(image)
    assert empty.masks is not None and len(empty.masks) == 0 and empty.image_shape == (64, 64)


def test_batches_return_lists(model):
    seg = Segmenter(model)
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    out = seg(frames)
    assert isinstance(out, list) and len(out) == 3 and all(len(d) == 1 for d in out)
    assert len(seg([frames[0], frames[1]])) == 2


def test_gray_and_path_inputs(model, tmp_path):
    import cv2

    seg = Segmenter(model)
    assert len(seg(np.zeros((64, 64), np.uint8))) == 1
    path = tmp_path / "img.png"
    cv2.imwrite(str(path), np.zeros((64, 64, 3), np.uint8))
    assert len(seg(path)) == 1 and len(seg(str(path))) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"conf": 1.5},
        {"conf": -0.1},
        {"iou": 2},
        {"conf": "high"},
        {"max_det": 0},
        {"on_nonfinite": "ignore"},
        {"classes": [7]},
        {"classes": ["dog"]},
    ],
)
def test_bad_settings(model, kwargs):
    with pytest.raises(ValueError):
        Segmenter(model, **kwargs)


def test_unknown_backend_option(model):
    with pytest.raises(TypeError):
        Segmenter(model, no_such_option=1)


def test_properties_and_warmup(model):
    seg = Segmenter(model, intra_op_threads=1)
    assert seg.names == {0: "class0", 1: "class1"}
    assert seg.metadata.task == "segment" and seg.metadata.imgsz == (64, 64)
    assert seg.input_spec.shape == (64, 64)
    seg.warmup(2)
    assert "onnxruntime" in repr(seg)


def test_import_edgeseg_is_light():
    import subprocess
    import sys

    code = (
        "import sys, edgeseg; "
        "assert 'onnxruntime' not in sys.modules and 'torch' not in sys.modules "
        "and 'edgeseg.segmenter' not in sys.modules; "
        "edgeseg.Segmenter; assert 'onnxruntime' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
