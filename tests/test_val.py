"""Validation (edgeseg.val): post-processing units, dataset edge cases, and real mAP on coco8/coco128.

The coco128 test reproduces the numbers Ultralytics 8.4 reports for yolov8n-seg-coco-dq.pt
(``val(imgsz=640, batch=8)``, CPU): box mAP50 0.579, mAP50-95 0.426; mask mAP50 0.532, mAP50-95 0.346.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.data.errors import DatasetError
from edgeseg.metrics import SegmentMetrics
from edgeseg.val.data import ValDataset, load_split
from edgeseg.val.postprocess import ValPredictions, crop_mask, gt_masks_from_overlap, postprocess, process_mask
from edgeseg.val.validator import _rle_string, validate
from shared_paths import SHARED

MODELS = SHARED / "models"
DATA = SHARED / "data"
PT = MODELS / "yolov8n-seg-coco-dq.pt"
ONNX = MODELS / "yolov8n-seg-coco-dq.onnx"
COCO8 = DATA / "coco8-seg" / "coco8-seg.yaml"
COCO128 = DATA / "coco128-seg" / "coco128-seg.yaml"

needs_shared = pytest.mark.skipif(
    not (PT.exists() and ONNX.exists() and COCO8.exists()), reason="shared models/datasets not available"
)


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


needs_torch = pytest.mark.skipif(not _has("torch"), reason="torch not installed")
needs_ort = pytest.mark.skipif(not _has("onnxruntime"), reason="onnxruntime not installed")
needs_yaml = pytest.mark.skipif(not _has("yaml"), reason="pyyaml not installed")


# ---- post-processing on a synthetic head output ------------------------------------------------


def _head(rows, nc=2, nm=2):
    """[4+nc+nm, N] head output from rows (cx, cy, w, h, scores..., coefs...)."""
    a = np.array(rows, dtype=np.float32)
    assert a.shape[1] == 4 + nc + nm
    return np.ascontiguousarray(a.T)


def _protos(nm=2, size=16):
    p = np.zeros((nm, size, size), np.float32)
    p[0] = 1.0  # coef [1, 0] -> logit 1 everywhere; [-1, 0] -> -1 everywhere
    return p


def test_postprocess_multilabel_nms_and_masks():
    preds = _head(
        [
            [32, 32, 32, 32, 0.9, 0.5, 1, 0],  # two labels above conf: class 0 and class 1
            [33, 32, 32, 32, 0.8, 0.0, 1, 0],  # same object, class 0, lower score: suppressed by NMS
            [10, 10, 8, 8, 0.0005, 0.0002, 1, 0],  # below conf 0.001: never a candidate
            [52, 52, 8, 8, 0.3, 0.0, -1, 0],  # kept, but its mask logits are negative: empty mask
        ]
    )
    out = postprocess(preds, _protos(), nc=2, input_shape=(64, 64))
    assert isinstance(out, ValPredictions)
    np.testing.assert_allclose(out.scores, [0.9, 0.5, 0.3], rtol=1e-6)
    assert out.classes.tolist() == [0, 1, 0]
    np.testing.assert_allclose(out.boxes[0], [16, 16, 48, 48], atol=1e-5)
    np.testing.assert_allclose(out.boxes[2], [48, 48, 56, 56], atol=1e-5)
    assert out.masks.shape == (3, 16, 16) and out.masks.dtype == bool
    expect = np.zeros((16, 16), bool)
    expect[4:12, 4:12] = True  # box 16..48 at 1/4 scale
    assert np.array_equal(out.masks[0], expect) and np.array_equal(out.masks[1], expect)
    assert not out.masks[2].any()


def test_postprocess_layouts_and_batch_dims_agree():
    preds = _head([[32, 32, 32, 32, 0.9, 0.5, 1, 0], [20, 40, 10, 6, 0.2, 0.7, 1, 0]])
    protos = _protos()
    ref = postprocess(preds, protos, nc=2, input_shape=(64, 64))
    alt = postprocess(
        preds.T[None],
        protos.transpose(1, 2, 0)[None],
        nc=2,
        input_shape=(64, 64),
        preds_layout="nc",
        protos_layout="hwc",
    )
    for a, b in ((ref.boxes, alt.boxes), (ref.scores, alt.scores), (ref.classes, alt.classes), (ref.masks, alt.masks)):
        np.testing.assert_array_equal(a, b)


def test_postprocess_max_det_and_conf():
    rows = [[8 + 6 * i, 8, 4, 4, 0.1 + 0.01 * i, 0.0, 1, 0] for i in range(8)]
    out = postprocess(_head(rows), _protos(), nc=2, input_shape=(64, 64), max_det=3)
    assert len(out) == 3
    np.testing.assert_allclose(out.scores, [0.17, 0.16, 0.15], rtol=1e-5)
    out = postprocess(_head(rows), _protos(), nc=2, input_shape=(64, 64), conf=0.155)
    assert len(out) == 2


def test_postprocess_empty_predictions():
    preds = _head([[32, 32, 32, 32, 0.0001, 0.0, 1, 0]])
    out = postprocess(preds, _protos(), nc=2, input_shape=(64, 64))
    assert len(out) == 0
    assert out.boxes.shape == (0, 4) and out.masks.shape == (0, 16, 16)
    # an image with no predictions: its ground truth only counts as missed
    m = SegmentMetrics()
    gt = np.zeros((1, 16, 16), bool)
    gt[0, 2:6, 2:6] = True
    m.update(out.boxes, out.scores, out.classes, out.masks, np.array([[8, 8, 24, 24]]), [0], gt)
    r = m.compute()
    assert r.box.map50_95 == 0 and r.mask.map50_95 == 0


def test_process_mask_scales_boxes_to_proto_resolution():
    protos = _protos(size=20)  # input 80 x 80 -> prototypes at 1/4: 20 x 20
    masks = process_mask(protos, np.array([[1.0, 0.0]], np.float32), np.array([[40, 8, 80, 40]], np.float32), (80, 80))
    expect = np.zeros((20, 20), bool)
    expect[2:10, 10:20] = True
    assert np.array_equal(masks[0], expect)


def test_crop_mask_branches():
    rng = np.random.default_rng(0)
    n, h, w = 60, 12, 14
    boxes = np.stack([rng.uniform(0, 6, n), rng.uniform(0, 5, n), rng.uniform(7, 14, n), rng.uniform(6, 12, n)], 1)
    boxes = np.round(boxes).astype(np.float32)  # integer edges: both branches keep the same pixels
    many = crop_mask(np.zeros((n, h, w), np.float32), boxes)
    few = np.concatenate([crop_mask(np.zeros((10, h, w), np.float32), boxes[i : i + 10]) for i in range(0, n, 10)])
    assert np.array_equal(many, few)
    # fractional edges: >= 50 masks compare x1 <= col < x2; < 50 round the edges first
    b = np.array([[1.4, 0.6, 3.5, 2.5]], np.float32)
    few = crop_mask(np.zeros((1, 4, 5), np.float32), b)[0]
    assert np.array_equal(np.argwhere(few.any(0)).ravel(), [1, 2, 3])  # round(1.4)=1 .. round(3.5)=4
    assert np.array_equal(np.argwhere(few.any(1)).ravel(), [1])  # round(0.6)=1 .. round(2.5)=2
    many = crop_mask(np.zeros((50, 4, 5), np.float32), np.repeat(b, 50, 0))[0]
    assert np.array_equal(np.argwhere(many.any(0)).ravel(), [2, 3])
    assert np.array_equal(np.argwhere(many.any(1)).ravel(), [1, 2])


def test_gt_masks_from_overlap():
    ov = np.zeros((8, 8), np.uint8)
    ov[0:4, 0:4] = 1
    ov[2:4, 2:4] = 2  # the smaller instance covers the larger one
    m = gt_masks_from_overlap(ov, 2)
    assert m.shape == (2, 8, 8) and m[0].sum() == 12 and m[1].sum() == 4
    up = gt_masks_from_overlap(ov, 2, (16, 16))  # bilinear + > 0.5
    assert up.shape == (2, 16, 16) and up[1].sum() == 16
    assert gt_masks_from_overlap(ov, 0, (4, 4)).shape == (0, 4, 4)


def test_rle_string_matches_pycocotools():
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(1)
    for shape in ((7, 9), (1, 1), (30, 17)):
        for fill in (0.0, 0.3, 1.0):
            m = rng.random(shape) < fill
            ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            ours = _rle_string(m)
            assert ours["counts"] == ref["counts"].decode() and ours["size"] == list(ref["size"])


# ---- datasets ------------------------------------------------------------------------------------


def _mini_dataset(root: Path, with_unlabelled: bool = True, val_key: bool = True) -> Path:
    """2 coco8 val images with labels + (optionally) one image without a label file."""
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    src = DATA / "coco8-seg"
    for stem in ("000000000036", "000000000049"):
        shutil.copy(src / "images" / "val" / f"{stem}.jpg", root / "images" / "val")
        shutil.copy(src / "labels" / "val" / f"{stem}.txt", root / "labels" / "val")
    if with_unlabelled:
        cv2.imwrite(str(root / "images" / "val" / "blank.jpg"), np.full((240, 320, 3), 90, np.uint8))
    names = "names:\n" + "".join(f"  {i}: c{i}\n" for i in range(80))
    split = "val: images/val\n" if val_key else ""
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/val\n{split}{names}")
    return root / "data.yaml"


@needs_yaml
def test_missing_split_is_a_clear_error(tmp_path):
    if not COCO8.exists():
        pytest.skip("coco8-seg not available")
    with pytest.raises(DatasetError, match="no 'test' split"):
        load_split(COCO8, "test")
    with pytest.raises(DatasetError, match="no 'test' split"):
        validate(ONNX, COCO8, split="test", progress=False)  # fails before the model is loaded
    bad = tmp_path / "bad.yaml"
    bad.write_text("path: .\ntrain: .\nnames: [a]\n")
    with pytest.raises(DatasetError, match="'val'"):
        load_split(bad, "val")
    from edgeseg.cli import main

    assert main(["val", "--model", str(ONNX), "--data", str(COCO8), "--split", "test", "-q"]) == 1


@needs_shared
@needs_yaml
def test_val_dataset_rect_and_square(tmp_path):
    yaml_file = _mini_dataset(tmp_path)
    _cfg, sources = load_split(yaml_file, "val")
    sq = ValDataset(sources, nc=80, imgsz=640, input_shape=(640, 640), cache=False)
    assert len(sq) == 3
    items = [sq[i] for i in range(len(sq))]
    assert all(it.shape == (640, 640) and it.overlap.shape == (160, 160) for it in items)
    blank = next(it for it in items if it.im_file.endswith("blank.jpg"))
    assert len(blank) == 0 and blank.boxes.shape == (0, 4) and not blank.overlap.any()
    labelled = [it for it in items if len(it)]
    for it in labelled:  # boxes inside the letterboxed image, overlap values 1..n
        assert it.boxes.min() >= 0 and it.boxes[:, 2].max() <= 640 and it.boxes[:, 3].max() <= 640
        assert set(np.unique(it.overlap)) <= set(range(len(it) + 1))
    rect = ValDataset(sources, nc=80, imgsz=640, batch_size=2, rect=True, cache=False)
    shapes = [rect[i].shape for i in range(len(rect))]
    assert shapes[0] == shapes[1]  # one batch, one shape
    assert all(s[0] % 32 == 0 and s[1] % 32 == 0 and max(s) <= 672 for s in shapes)
    ars = [lb.shape[0] / lb.shape[1] for lb in rect.labels]
    assert ars == sorted(ars)


@needs_shared
@needs_ort
@needs_yaml
def test_images_without_labels_and_save_json(tmp_path):
    yaml_file = _mini_dataset(tmp_path / "ds")
    out = tmp_path / "preds.json"
    r = validate(ONNX, yaml_file, progress=False, save_json=out)
    assert r.n_images == 3 and r.rect is False and r.batch == 1 and r.imgsz == (640, 640)
    assert r.n_instances == sum(len(p.read_text().splitlines()) for p in (tmp_path / "ds" / "labels" / "val").iterdir())
    assert 0.2 < r.box.map50_95 <= 1 and 0.1 < r.mask.map50_95 <= 1
    import json

    records = json.loads(out.read_text())
    assert records and {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(records[0])
    assert {rec["file_name"] for rec in records} >= {"000000000036.jpg", "000000000049.jpg"}
    # without the blank image the score can only be the same or better (its detections are false positives)
    shutil.rmtree(tmp_path / "ds2", ignore_errors=True)
    r2 = validate(ONNX, _mini_dataset(tmp_path / "ds2", with_unlabelled=False), progress=False)
    assert r2.n_images == 2 and r2.n_instances == r.n_instances
    assert r2.box.map50_95 >= r.box.map50_95 - 1e-9


# ---- real models on coco8 --------------------------------------------------------------------------


@needs_shared
@needs_torch
@needs_ort
@needs_yaml
def test_coco8_pt_and_onnx():
    import torch

    from edgeseg.nn.load import load_model

    pt = validate(PT, COCO8, progress=False)  # rect batches of 8, as `yolo val`
    assert pt.rect and pt.batch == 8 and pt.n_images == 4 and pt.n_instances == 17
    assert pt.backend == "torch"
    for m in (pt.box, pt.mask):
        assert 0.4 < m.map50_95 < m.map50 <= 1
    onnx = validate(ONNX, COCO8, progress=False)  # fixed 640x640 input, one image at a time
    assert not onnx.rect and onnx.batch == 1 and onnx.backend == "onnxruntime"
    for m in (onnx.box, onnx.mask):
        assert 0.3 < m.map50_95 < m.map50 <= 1
    # the same preprocessing (square 640 letterbox) gives the same numbers for .pt and .onnx
    pt_sq = validate(PT, COCO8, rect=False, progress=False)
    assert abs(pt_sq.box.map50_95 - onnx.box.map50_95) < 0.02
    assert abs(pt_sq.mask.map50_95 - onnx.mask.map50_95) < 0.02
    assert abs(pt_sq.box.map50 - onnx.box.map50) < 0.02
    assert abs(pt_sq.mask.map50 - onnx.mask.map50) < 0.02
    # an in-memory (unfused, training-mode) model: evaluated in eval mode, then restored
    net, _ = load_model(PT)
    net.train()
    mem = validate(net, COCO8, progress=False)
    assert net.training
    assert mem.backend == "torch"
    assert abs(mem.box.map50_95 - pt.box.map50_95) < 0.01 and abs(mem.mask.map50_95 - pt.mask.map50_95) < 0.01
    assert isinstance(torch.__version__, str)


@needs_shared
@needs_ort
@needs_yaml
def test_cli_val_onnx(capsys):
    from edgeseg.cli import main

    assert main(["val", "--model", str(ONNX), "--data", str(COCO8), "-q"]) == 0
    out = capsys.readouterr().out
    assert "mAP50-95)" in out and "Speed:" in out
    row = next(line for line in out.splitlines() if line.split() and line.split()[0] == "all").split()
    assert row[1] == "4" and row[2] == "17"
    assert main(["val", "--model", str(ONNX), "--data", str(COCO8), "-q", "--json", "--mode", "coco"]) == 0
    import json

    res = json.loads(capsys.readouterr().out)
    assert res["mode"] == "coco" and res["images"] == 4 and 0 < res["mask"]["map50_95"] <= 1


def test_import_does_not_import_torch():
    code = (
        "import sys, edgeseg.val.validator, edgeseg.val.data, edgeseg.val.postprocess, edgeseg.cli.val; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---- coco128: the numbers Ultralytics 8.4 reports ------------------------------------------------

ULTRALYTICS_COCO128 = {"box50": 0.579, "box": 0.426, "mask50": 0.532, "mask": 0.346}


@pytest.mark.slow
@needs_shared
@needs_torch
@needs_yaml
@pytest.mark.skipif(not COCO128.exists(), reason="coco128-seg not available")
def test_coco128_matches_ultralytics():
    r = validate(PT, COCO128, imgsz=640, batch=8, progress=False)
    assert r.n_images == 128
    got = {"box50": r.box.map50, "box": r.box.map50_95, "mask50": r.mask.map50, "mask": r.mask.map50_95}
    for k, want in ULTRALYTICS_COCO128.items():
        assert abs(got[k] - want) <= 0.005, (k, got[k], want)
