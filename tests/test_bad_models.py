"""Broken, foreign and unsupported models are rejected with a clear, specific error."""

import sys

import numpy as np
import pytest

from edgeseg.backends import select_backend
from edgeseg.backends.onnxruntime import OnnxRuntimeBackend
from edgeseg.errors import BackendNotInstalledError, EdgesegError, ModelLoadError, ModelOutputError
from edgeseg.segmenter import Segmenter
from onnx_builders import save_model, save_seg_model, seg_metadata, seg_outputs
from shared_paths import SHARED

pytest.importorskip("onnxruntime")

REAL_ONNX = SHARED / "models" / "yolov8n-seg_int8.onnx"


def test_text_file_named_onnx(tmp_path):
    path = tmp_path / "x.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelLoadError, match="x.onnx"):
        OnnxRuntimeBackend(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        Segmenter(path)


def test_truncated_real_model(tmp_path):
    if not REAL_ONNX.exists():
        pytest.skip("shared models not available")
    data = REAL_ONNX.read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated.onnx"):
        Segmenter(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        Segmenter(tmp_path / "nothing.onnx")


def test_detect_model_single_output(tmp_path):
    path = save_model(
        tmp_path / "det.onnx", {"output0": np.zeros((1, 84, 8400), np.float32)}, input_shape=(1, 3, 640, 640)
    )
    with pytest.raises(ModelOutputError, match="detection"):
        Segmenter(path)


def test_detect_task_in_metadata(tmp_path):
    path = save_seg_model(tmp_path / "det.onnx", metadata=seg_metadata(task="detect"))
    with pytest.raises(ModelLoadError, match="'detect' model"):
        Segmenter(path)


def test_wrong_output_ranks(tmp_path):
    preds, _ = seg_outputs()
    path = save_model(tmp_path / "bad.onnx", {"output0": preds, "output1": np.zeros((1, 4, 256), np.float32)})
    with pytest.raises(ModelOutputError, match="exactly two"):
        Segmenter(path)


def test_channels_do_not_match_names(tmp_path):
    path = save_seg_model(tmp_path / "bad.onnx", metadata=seg_metadata(nc=80))
    with pytest.raises(ModelOutputError, match="80"):
        Segmenter(path)


def test_three_outputs(tmp_path):
    preds, protos = seg_outputs()
    path = save_model(tmp_path / "bad.onnx", {"a": preds, "b": protos, "c": protos})
    with pytest.raises(ModelOutputError):
        Segmenter(path)


def test_unknown_backend_name_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean 'onnxruntime'") as info:
        select_backend("m.onnx", "onnxruntme")
    assert "valid backends" in str(info.value)


def test_unknown_model_suffix():
    with pytest.raises(ValueError, match=r"\.xyz"):
        select_backend("model.xyz")


def test_missing_onnxruntime_package(tmp_path, monkeypatch):
    path = save_seg_model(tmp_path / "ok.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(BackendNotInstalledError, match=r"pip install 'edgeseg\[onnx\]'") as info:
        Segmenter(path)
    assert isinstance(info.value, ImportError) and isinstance(info.value, EdgesegError)


def test_unknown_provider(tmp_path):
    path = save_seg_model(tmp_path / "ok.onnx")
    with pytest.raises(ValueError, match="available"):
        Segmenter(path, providers=["NoSuchExecutionProvider"])


def test_dynamic_input_needs_imgsz(tmp_path):
    meta = seg_metadata()
    del meta["imgsz"]
    path = save_seg_model(tmp_path / "dyn.onnx", metadata=meta, input_shape=(1, 3, "h", "w"))
    with pytest.raises(ModelLoadError, match="imgsz"):
        Segmenter(path)
    assert Segmenter(path, imgsz=64).input_spec.shape == (64, 64)


def test_fixed_input_rejects_other_imgsz(tmp_path):
    path = save_seg_model(tmp_path / "fixed.onnx")
    with pytest.raises(ValueError, match="fixed input size"):
        Segmenter(path, imgsz=128)


def test_nan_in_outputs_raises_or_drops(tmp_path):
    preds, protos = seg_outputs()
    preds[0, :4, 1] = [40.0, 40.0, np.nan, 10.0]  # second candidate: NaN box, confident score
    preds[0, 4, 1] = 0.95
    path = save_model(tmp_path / "nan.onnx", {"output0": preds, "output1": protos}, metadata=seg_metadata())
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ModelOutputError, match="NaN"):
        Segmenter(path)(image)
    detections = Segmenter(path, on_nonfinite="drop")(image)
    assert len(detections) == 1 and np.isfinite(detections.xyxy).all()


def test_nan_in_prototypes_raises(tmp_path):
    preds, protos = seg_outputs()
    protos[0, 0, 8, 8] = np.inf
    path = save_model(tmp_path / "nanp.onnx", {"output0": preds, "output1": protos}, metadata=seg_metadata())
    with pytest.raises(ModelOutputError, match="NaN"):
        Segmenter(path)(np.zeros((64, 64, 3), np.uint8))
