"""YOLO26-seg exports into every format, each carrying a head it can hold, and each giving the end-to-end head's
detections in edgeseg's runtime.

The reference is Ultralytics' own end-to-end ONNX of the same checkpoint (../shared/models/yolo26n-seg-shapes.onnx,
``nms=False``): float exports of yolo26n-seg-shapes.pt must find the same objects (class, score, box) on the shapes
val images at conf 0.05 (the model is weak, SOURCES.md: 76 objects in the 64 images). Formats that cannot hold the
in-graph top-k (ncnn, TFLite, Edge TPU) end the graph before it and the native core makes the same selection.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edgeseg import Segmenter
from edgeseg.exporters.common import ExportError
from shared_paths import SHARED

CKPT = SHARED / "models" / "yolo26n-seg-shapes.pt"
ULTRA_E2E = SHARED / "models" / "yolo26n-seg-shapes.onnx"
DATA = SHARED / "data" / "shapes-seg" / "shapes-seg.yaml"
VAL = SHARED / "data" / "shapes-seg" / "images" / "val"
pytestmark = pytest.mark.skipif(not (CKPT.exists() and ULTRA_E2E.exists()), reason="../shared is not available")
CONF = 0.05


@pytest.fixture(scope="module")
def reference():
    """Ultralytics' end-to-end ONNX on the val images: per image (classes, scores, boxes)."""
    seg = Segmenter(str(ULTRA_E2E), conf=CONF)
    images = sorted(VAL.glob("*.jpg"))
    return images, [seg(str(p)) for p in images]


def _same_detections(path, reference, *, box_tol=0.05, score_tol=1e-4, backend=None):
    images, want = reference
    seg = Segmenter(str(path), conf=CONF, backend=backend)
    total = 0
    for image, ref in zip(images, want):
        got = seg(str(image))
        assert len(got) == len(ref), (image.name, len(got), len(ref))
        if len(ref):
            np.testing.assert_array_equal(got.class_id, ref.class_id)
            np.testing.assert_allclose(got.confidence, ref.confidence, atol=score_tol)
            np.testing.assert_allclose(got.xyxy, ref.xyxy, atol=box_tol)
        total += len(got)
    assert total == 76  # SOURCES.md: Ultralytics' nms=False predictions at conf 0.05
    return seg


@pytest.mark.parametrize("head", ["end2end", "one2one"])
def test_onnx_heads_give_ultralytics_end_to_end_detections(tmp_path, reference, head):
    from edgeseg.exporters.onnx import export

    result = export(str(CKPT), imgsz=320, output=tmp_path / f"{head}.onnx", head=head)
    assert result.head == head
    if head == "end2end":
        assert result.output_shapes["output0"] == (1, 300, 38)
        assert result.metadata["end2end"] == "True" and "end2end_topk" not in result.metadata
    else:  # dense one-to-one rows; Ultralytics reads it as a one-to-many file (with NMS), edgeseg selects
        assert result.output_shapes["output0"] == (1, 40, 2100)
        assert result.metadata["end2end"] == "False" and result.metadata["end2end_topk"] == "300"
    seg = _same_detections(result.path, reference)
    layout = seg.backend.output_layout
    assert not layout.needs_nms and layout.kind == {"end2end": "end2end", "one2one": "one2one"}[head]


def test_onnx_one_to_many_head_needs_nms(tmp_path):
    from edgeseg.exporters.onnx import export

    result = export(str(CKPT), imgsz=320, output=tmp_path / "o2m.onnx", head="one2many")
    assert result.metadata["end2end"] == "False" and "end2end_topk" not in result.metadata
    assert Segmenter(str(result.path)).backend.output_layout.needs_nms


def test_one_to_one_export_validates_like_the_end_to_end_head(tmp_path):
    """validate() on the dense one-to-one export makes the end-to-end selection: Ultralytics' nms=False val
    figures of the checkpoint (SOURCES.md: box / mask mAP50-95 0.0166 / 0.0284) within half a point."""
    from edgeseg.exporters.onnx import export
    from edgeseg.val import validate

    path = export(str(CKPT), imgsz=320, output=tmp_path / "o2o.onnx", head="one2one").path
    metrics = validate(str(path), str(DATA), imgsz=320, progress=False).as_dict()
    assert abs(metrics["metrics/mAP50-95(B)"] - 0.0166) <= 0.005
    assert abs(metrics["metrics/mAP50-95(M)"] - 0.0284) <= 0.005


def test_openvino_end_to_end_export(tmp_path, reference):
    pytest.importorskip("openvino")
    from edgeseg.exporters.openvino import export

    result = export(str(CKPT), imgsz=320, output=tmp_path / "y26_openvino_model")
    assert result.head == "end2end" and result.output_shapes["output0"] == (1, 300, 38)
    _same_detections(result.path, reference)


def test_openvino_int8_keeps_the_top_k_and_scores_float(tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from edgeseg.exporters.openvino import export

    result = export(
        str(CKPT), imgsz=320, output=tmp_path / "y26_int8_openvino_model", int8=True, data=str(DATA), max_images=16
    )
    kinds = {n.rsplit("/", 1)[-1].split("_")[0] for n in result.ignored_nodes}
    assert {"TopK", "GatherElements", "Sigmoid", "ReduceMax"} <= kinds  # the selection and the score path
    seg = Segmenter(str(result.path), conf=CONF)
    assert seg.backend.output_layout.kind == "end2end"


def test_ncnn_export_ends_before_the_top_k(tmp_path, reference):
    pytest.importorskip("pnnx")
    pytest.importorskip("ncnn")
    from edgeseg.exporters.ncnn import export

    with pytest.raises(ExportError, match="TopK"):
        export(str(CKPT), imgsz=320, output=tmp_path / "a_ncnn_model", head="end2end")
    result = export(str(CKPT), imgsz=320, output=tmp_path / "y26_ncnn_model")
    assert result.head == "one2one"
    seg = _same_detections(result.path, reference, box_tol=0.05, score_tol=2e-4)
    assert seg.backend.output_layout.kind == "one2one"


def test_tflite_float_and_int8_split_exports(tmp_path, reference):
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("onnx2tf")
    from edgeseg.exporters.tflite import export

    with pytest.raises(ExportError, match="one2one"):
        export(str(CKPT), imgsz=320, output=tmp_path / "a.tflite", head="end2end")
    fp32 = export(str(CKPT), imgsz=320, output=tmp_path / "y26_fp32.tflite")
    assert fp32.head == "one2one"
    _same_detections(fp32.path, reference, score_tol=2e-4)
    int8 = export(
        str(CKPT), imgsz=320, precision="int8", data=str(DATA), fraction=0.05, output=tmp_path / "y26_int8.tflite"
    )
    assert int8.outputs == "split" and int8.metadata["reg_max"] == "1" and int8.metadata["end2end_topk"] == "300"
    layout = Segmenter(str(int8.path), conf=CONF).backend.output_layout
    assert layout.kind == "split-one2one" and layout.reg_max == 1 and not layout.needs_nms


def test_a_v8_model_has_no_other_head(tmp_path):
    from edgeseg.exporters.onnx import export

    v8 = SHARED / "models" / "yolov8n-seg-rand.pt"
    with pytest.raises(ExportError, match="needs a YOLO26 model"):
        export(str(v8), imgsz=64, output=tmp_path / "v8.onnx", head="end2end")
    with pytest.raises(ExportError, match="head must be one of"):
        export(str(CKPT), imgsz=64, output=tmp_path / "x.onnx", head="nms")


def test_export_report_compares_rows_and_names_each_head(tmp_path):
    from edgeseg.exporters.onnx import export
    from edgeseg.exporters.report import build_report

    images = sorted(VAL.glob("*.jpg"))[4:6]  # 000004.jpg, 000005.jpg: images with detections at conf 0.05
    e2e = export(str(CKPT), imgsz=320, output=tmp_path / "e2e.onnx").path
    report = build_report(e2e, CKPT, images=images, imgsz=320, runs=1, warmup=0)
    err = report["output_error"]
    assert err["output0"]["shape"] == [300, 38]
    # rows matched by class and box before comparing (near-tied rows may come in another order)
    assert err["output0.scores"]["max_abs"] < 1e-4 and err["output0.boxes"]["max_abs"] < 0.01
    assert err["output0.classes"]["max_abs"] == 0
    assert report["exported"]["head"].startswith("end-to-end") and report["reference"]["head"].startswith("end-to-end")
    o2o = export(str(CKPT), imgsz=320, output=tmp_path / "o2o.onnx", head="one2one").path
    report = build_report(o2o, CKPT, images=images, imgsz=320, runs=1, warmup=0)
    assert list(report["output_error"]) == ["output1"] and report["output_error"]["output1"]["max_abs"] < 1e-3
    assert "top-300 selection in the core" in report["exported"]["head"]
    assert any("raw predictions not compared" in n for n in report["notes"])
