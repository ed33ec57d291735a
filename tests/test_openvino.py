"""OpenVINO: calibration images, the IR exporter (fp32 / fp16 / NNCF int8) and the runtime backend.

Real models and real images throughout (yolov8n-seg-coco-dq.pt exported at imgsz 320, bus.jpg,
coco8-seg for calibration); each export is made once per module. About 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ov = pytest.importorskip("openvino")
yaml = pytest.importorskip("yaml")

from edgeseg.backends import select_backend  # noqa: E402
from edgeseg.backends.openvino import (  # noqa: E402
    AsyncQueue,
    DeviceNotFoundError,
    InferenceTimeoutError,
    OpenVINOBackend,
    resolve_model_path,
)
from edgeseg.errors import BackendNotInstalledError, ModelLoadError, ModelOutputError  # noqa: E402
from edgeseg.exporters.calibration import CalibrationError, calibration_blobs, calibration_images  # noqa: E402
from shared_paths import SHARED  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COCO_PT = SHARED / "models" / "yolov8n-seg-coco-dq.pt"
COCO_ONNX_640 = SHARED / "models" / "yolov8n-seg-coco-dq.onnx"
BUS = SHARED / "data" / "images" / "bus.jpg"
COCO8 = SHARED / "data" / "coco8-seg"
COCO128_YAML = SHARED / "data" / "coco128-seg" / "coco128-seg.yaml"
VIDEO = SHARED / "data" / "video" / "people_movement.mp4"
IMGSZ = 320

needs_shared = pytest.mark.skipif(
    not (COCO_PT.is_file() and BUS.is_file() and COCO8.is_dir()), reason="shared test models/images not available"
)


# ---- module fixtures: one export of each kind ------------------------------------------------------


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    if not (COCO_PT.is_file() and BUS.is_file() and COCO8.is_dir()):
        pytest.skip("shared test models/images not available")
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from edgeseg.exporters import export

    root = tmp_path_factory.mktemp("ov")
    return SimpleNamespace(root=root, export=export)


@pytest.fixture(scope="module")
def onnx_ref(exports):
    return exports.export(COCO_PT, format="onnx", imgsz=IMGSZ, output=exports.root / "ref.onnx", check_image=BUS)


@pytest.fixture(scope="module")
def ov_fp32(exports):
    return exports.export(
        COCO_PT, format="openvino", imgsz=IMGSZ, output=exports.root / "coco_openvino_model", check_image=BUS
    )


@pytest.fixture(scope="module")
def ov_fp16(exports):
    # exported over an existing folder holding a stale file: the verified folder replaces it whole
    target = exports.root / "coco_fp16_openvino_model"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    return exports.export(COCO_PT, format="openvino", imgsz=IMGSZ, half=True, output=target, check_image=BUS)


@pytest.fixture(scope="module")
def ov_int8(exports):
    return exports.export(
        COCO_PT,
        format="openvino",
        imgsz=IMGSZ,
        int8=True,
        data=COCO8 / "images",
        output=exports.root / "coco_int8_openvino_model",
        check_image=BUS,
    )


def _detections(model, **options):
    from edgeseg import Segmenter

    seg = Segmenter(model, **options)
    det = seg(BUS)
    return seg, [
        (seg.names[int(c)], float(p), np.asarray(b, dtype=np.float64))
        for c, p, b in zip(det.class_id, det.confidence, det.xyxy)
    ]


def _match(reference, candidate, box_tol, score_tol):
    """Every reference detection has a same-class candidate within box_tol px (and vice versa)."""
    assert len(candidate) == len(reference), (reference, candidate)
    for name, score, box in reference:
        same = [c for c in candidate if c[0] == name]
        assert same, f"{name} missing"
        best = min(same, key=lambda c: np.abs(c[2] - box).max())
        assert np.abs(best[2] - box).max() <= box_tol, (name, box, best[2])
        assert abs(best[1] - score) <= score_tol, (name, score, best[1])


# ---- calibration -------------------------------------------------------------------------------------


@needs_shared
def test_calibration_images_deterministic_and_selectable():
    folder = calibration_images(COCO8 / "images")
    assert len(folder) == 8 and folder == sorted(folder, key=str)
    assert folder == calibration_images(COCO8 / "images")
    train = calibration_images(COCO8 / "coco8-seg.yaml")  # default split: train
    assert [p.parent.name for p in train] == ["train"] * 4
    assert [p.parent.name for p in calibration_images(COCO8 / "coco8-seg.yaml", split="val")] == ["val"] * 4
    assert calibration_images(COCO8 / "images", fraction=0.3) == folder[:3]  # ceil(0.3 * 8)
    assert calibration_images(COCO8 / "images", max_images=2) == folder[:2]
    assert calibration_images(COCO8 / "images", indices=[5, 1]) == [folder[5], folder[1]]
    assert calibration_images(COCO8 / "images", indices=slice(1, 3)) == folder[1:3]  # a slice, as the CLI's 1:3
    if COCO128_YAML.is_file():
        first64 = calibration_images(COCO128_YAML, indices=range(64))
        assert len(first64) == 64 and first64[0].name == "000000000009.jpg"


@needs_shared
def test_calibration_bad_inputs(tmp_path):
    with pytest.raises(CalibrationError, match="not found"):
        calibration_images(tmp_path / "missing")
    with pytest.raises(CalibrationError, match="no calibration images"):
        calibration_images(tmp_path)
    with pytest.raises(CalibrationError, match="fraction"):
        calibration_images(COCO8 / "images", fraction=0)
    with pytest.raises(CalibrationError, match="max_images"):
        calibration_images(COCO8 / "images", max_images=0)
    with pytest.raises(CalibrationError, match="out of range"):
        calibration_images(COCO8 / "images", indices=[8])
    with pytest.raises(CalibrationError, match="split"):
        calibration_images(COCO8 / "images", split="holdout")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(CalibrationError, match="broken.jpg"):
        list(calibration_blobs([tmp_path / "broken.jpg"], 64))


@needs_shared
def test_calibration_blobs_are_inference_blobs():
    from edgeseg.image_io import read_image
    from edgeseg.ops.letterbox import letterbox

    paths = calibration_images(COCO8 / "images", max_images=2)
    blobs = list(calibration_blobs(paths, (256, 320)))
    assert [b.shape for b in blobs] == [(1, 3, 256, 320)] * 2 and blobs[0].dtype == np.float32
    # exactly what Segmenter feeds the model
    expected, _ = letterbox(
        read_image(paths[0]),
        (256, 320),
        scaleup=True,
        auto=False,
        stride=32,
        layout="nchw",
        dtype="float32",
        bgr_to_rgb=True,
    )
    np.testing.assert_array_equal(blobs[0], expected)
    nhwc = next(calibration_blobs(paths, 64, layout="nhwc", dtype="uint8"))
    assert nhwc.shape == (1, 64, 64, 3) and nhwc.dtype == np.uint8


# ---- export ------------------------------------------------------------------------------------------


def test_openvino_is_an_export_format():
    from edgeseg.exporters import FORMATS, PLANNED_FORMATS, check_format

    assert FORMATS["openvino"] == "edgeseg.exporters.openvino" and "openvino" not in PLANNED_FORMATS
    assert check_format("OpenVINO") == "openvino"


def test_export_folder_layout_and_metadata(ov_fp32):
    folder = ov_fp32.path
    assert folder.is_dir() and ov_fp32.precision == "fp32" and ov_fp32.format == "openvino"
    assert ov_fp32.xml == folder / "yolov8n-seg-coco-dq.xml"
    assert {p.name for p in folder.iterdir()} == {"yolov8n-seg-coco-dq.xml", "yolov8n-seg-coco-dq.bin", "metadata.yaml"}
    meta = yaml.safe_load((folder / "metadata.yaml").read_text())
    ultralytics_keys = [
        "description",
        "author",
        "date",
        "version",
        "license",
        "docs",
        "stride",
        "task",
        "batch",
        "imgsz",
        "names",
        "args",
        "channels",
    ]
    assert all(k in meta for k in ultralytics_keys)
    assert meta["task"] == "segment" and meta["imgsz"] == [IMGSZ, IMGSZ] and meta["stride"] == 32
    assert meta["names"][0] == "person" and meta["names"][5] == "bus" and len(meta["names"]) == 80
    assert meta["precision"] == "fp32" and meta["layout"] == "nchw" and meta["architecture"] == "yolov8n-seg"
    assert "edgeseg_version" in meta
    model = ov.Core().read_model(str(ov_fp32.xml))
    assert model.get_rt_info(["edgeseg_metadata", "task"]).astype(str) == "segment"
    assert model.get_rt_info(["edgeseg_metadata", "precision"]).astype(str) == "fp32"
    assert [sorted(o.get_names()) for o in model.outputs] == [["output0"], ["output1"]]
    assert ov_fp32.max_abs_diff["output0"] < 1e-2 and ov_fp32.max_abs_diff["output1"] < 1e-3
    assert ov_fp32.size_mb > 5  # the folder's files, not the directory entry
    assert oct(folder.stat().st_mode & 0o777) != oct(0o700)  # not mkdtemp's private mode


def test_fp16_export_halves_the_weights_and_replaces_the_folder(ov_fp16, ov_fp32):
    assert ov_fp16.precision == "fp16" and ov_fp16.half
    assert not (ov_fp16.path / "stale.txt").exists()
    assert yaml.safe_load((ov_fp16.path / "metadata.yaml").read_text())["precision"] == "fp16"
    bin16 = ov_fp16.xml.with_suffix(".bin").stat().st_size
    bin32 = ov_fp32.xml.with_suffix(".bin").stat().st_size
    assert bin16 < 0.6 * bin32
    assert not list(ov_fp16.path.parent.glob(".coco_fp16_openvino_model.*"))  # no staging left behind


def test_int8_keeps_the_decode_subgraph_float(ov_int8):
    from edgeseg.exporters.openvino import fake_quantize_in

    assert ov_int8.precision == "int8" and ov_int8.calibration_images == 8
    model = ov.Core().read_model(str(ov_int8.xml))
    kinds = [op.get_type_name() for op in model.get_ordered_ops()]
    assert kinds.count("FakeQuantize") > 50  # the network is quantised ...
    ignored = set(ov_int8.ignored_nodes)
    # ... but not the decode: DFL softmax + conv, box arithmetic, sigmoid, the output concat
    assert {"/model.22/dfl/Softmax", "/model.22/dfl/conv/Conv", "/model.22/Sigmoid"} <= ignored
    assert any("Sub" in n for n in ignored) and any("Mul" in n for n in ignored)
    assert not any("cv2.0.2" in n or "cv3.0.2" in n for n in ignored)  # the head's convs stay int8
    assert fake_quantize_in(model, ignored) == []
    assert ov_int8.xml.with_suffix(".bin").stat().st_size < 0.4 * 13.6e6


def test_export_bad_options(tmp_path):
    pytest.importorskip("torch")
    from edgeseg.exporters import ExportError, export

    with pytest.raises(ExportError, match="not both"):
        export(COCO_PT, format="openvino", half=True, int8=True, data=COCO8)
    with pytest.raises(ExportError, match="needs calibration images"):
        export(COCO_PT, format="openvino", int8=True)
    with pytest.raises(ExportError, match="only used with int8"):
        export(COCO_PT, format="openvino", data=COCO8)
    with pytest.raises(CalibrationError, match="not found"):
        export(COCO_PT, format="openvino", int8=True, data=tmp_path / "nope.yaml", output=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ExportError, match="multiples"):
        export(COCO_PT, format="openvino", imgsz=100)


def test_export_destination_naming(tmp_path):
    from edgeseg.exporters.openvino import _destination

    src = SimpleNamespace(path=tmp_path / "best.pt", architecture="yolov8n-seg")
    assert _destination(None, src, False) == (tmp_path / "best_openvino_model", "best")
    assert _destination(None, src, True) == (tmp_path / "best_int8_openvino_model", "best")
    assert _destination(tmp_path, src, False) == (tmp_path / "best_openvino_model", "best")
    assert _destination(tmp_path / "m.xml", src, False) == (tmp_path, "m")
    assert _destination(None, SimpleNamespace(path=None, architecture="yolo11n-seg"), False)[1] == "yolo11n-seg"


def test_missing_packages_name_the_extra(monkeypatch):
    from edgeseg.exporters import ExportError
    from edgeseg.exporters import openvino as ov_export

    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(BackendNotInstalledError, match=r"edgeseg\[openvino\]"):
        OpenVINOBackend("whatever_openvino_model")
    with pytest.raises(ExportError, match=r"edgeseg\[export-openvino\]"):
        ov_export.export(COCO_PT)
    monkeypatch.setitem(sys.modules, "openvino", ov)
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(ExportError, match=r"nncf.*edgeseg\[export-openvino\]"):
        ov_export.export(COCO_PT, int8=True, data=COCO8)


# ---- runtime: same detections as the ONNX model ------------------------------------------------------


def test_fp32_and_fp16_match_onnx_on_bus(ov_fp32, ov_fp16, onnx_ref):
    _, reference = _detections(onnx_ref.path)
    assert {"person", "bus"} <= {d[0] for d in reference}
    seg, fp32 = _detections(ov_fp32.path, backend="openvino")
    assert seg.backend.name == "openvino" and seg.backend.precision == "f32"
    _match(reference, fp32, box_tol=0.5, score_tol=1e-3)
    _, fp16 = _detections(ov_fp16.path)  # backend chosen from the folder name
    _match(reference, fp16, box_tol=2.0, score_tol=0.01)


def test_int8_matches_onnx_on_bus(ov_int8, onnx_ref):
    _, reference = _detections(onnx_ref.path)
    _, int8 = _detections(ov_int8.path)
    # 320 input on a 1080-px image: one input pixel is 3.4 image pixels
    _match(reference, int8, box_tol=10.0, score_tol=0.08)


def test_default_precision_is_exact_f32_and_bf16_on_request(ov_fp32):
    backend = OpenVINOBackend(ov_fp32.path)
    assert backend.describe()["inference_precision"] == "f32"
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" in caps:
        fast = OpenVINOBackend(ov_fp32.path, precision="bf16")
        assert fast.describe()["inference_precision"] == "bf16"
    else:
        with pytest.raises(ValueError, match="bf16"):
            OpenVINOBackend(ov_fp32.path, precision="bf16")
    with pytest.raises(ValueError, match="precision"):
        OpenVINOBackend(ov_fp32.path, precision="int4")
    with pytest.raises(ValueError, match="hint"):
        OpenVINOBackend(ov_fp32.path, hint="fastest")
    assert OpenVINOBackend(ov_fp32.path, hint="throughput", threads=1).describe()["threads"] == "1"


def test_model_path_forms(ov_fp32, onnx_ref, tmp_path):
    folder = ov_fp32.path
    assert resolve_model_path(folder) == ov_fp32.xml
    assert resolve_model_path(ov_fp32.xml) == ov_fp32.xml
    # the name the folder was made from (coco or coco.pt -> coco_openvino_model beside it)
    assert resolve_model_path(folder.parent / "coco") == ov_fp32.xml
    (folder.parent / "coco.pt").write_bytes(b"checkpoint")
    assert resolve_model_path(folder.parent / "coco.pt") == ov_fp32.xml
    with pytest.raises(ModelLoadError, match="not an OpenVINO IR"):
        OpenVINOBackend(onnx_ref.path)
    assert select_backend(folder) is OpenVINOBackend
    assert select_backend(ov_fp32.xml) is OpenVINOBackend
    assert select_backend(folder, "openvino") is OpenVINOBackend
    with pytest.raises(FileNotFoundError):
        OpenVINOBackend(tmp_path / "absent_openvino_model")
    broken = tmp_path / "broken_openvino_model"
    shutil.copytree(folder, broken)
    (broken / "yolov8n-seg-coco-dq.bin").unlink()
    with pytest.raises(ModelLoadError, match="weights file"):
        OpenVINOBackend(broken)
    (broken / "yolov8n-seg-coco-dq.bin").write_bytes(b"\0" * 100)
    with pytest.raises(ModelLoadError, match="cannot read"):
        OpenVINOBackend(broken)


# ---- metadata: ours, the IR's rt_info, Ultralytics' metadata.yaml, none ------------------------------


def test_folder_without_metadata_yaml_falls_back_to_rt_info(ov_fp32, tmp_path):
    bare = tmp_path / "bare_openvino_model"
    shutil.copytree(ov_fp32.path, bare)
    (bare / "metadata.yaml").unlink()
    backend = OpenVINOBackend(bare)
    assert backend.metadata.task == "segment" and backend.metadata.names[5] == "bus"
    assert backend.metadata.imgsz == (IMGSZ, IMGSZ) and backend.metadata.extras["precision"] == "fp32"


def test_ir_without_any_metadata_is_a_clear_error(onnx_ref, tmp_path):
    folder = tmp_path / "plain_openvino_model"
    folder.mkdir()
    ov.save_model(ov.convert_model(str(onnx_ref.path)), str(folder / "plain.xml"), compress_to_fp16=False)
    with pytest.raises(ModelLoadError, match="no metadata.yaml"):
        OpenVINOBackend(folder)


def _ultralytics_metadata(task="segment", imgsz=640):
    # what Ultralytics' yaml_save writes beside its OpenVINO exports (values as plain YAML types)
    names = (
        yaml.safe_load(COCO128_YAML.read_text())["names"] if COCO128_YAML.is_file() else {i: str(i) for i in range(80)}
    )
    return {
        "description": "Ultralytics YOLOv8n-seg model trained on coco.yaml",
        "author": "Ultralytics",
        "date": "2026-01-01T00:00:00",
        "version": "8.4.190",
        "license": "AGPL-3.0 License",
        "docs": "https://docs.ultralytics.com",
        "stride": 32,
        "task": task,
        "batch": 1,
        "imgsz": [imgsz, imgsz],
        "names": names,
        "args": {"batch": 1, "half": False, "int8": False, "dynamic": False, "nms": False},
        "channels": 3,
    }


@pytest.fixture(scope="module")
def ultralytics_folder(tmp_path_factory):
    if not (COCO_ONNX_640.is_file() and BUS.is_file()):
        pytest.skip("shared Ultralytics ONNX export not available")
    folder = tmp_path_factory.mktemp("ul") / "yolov8n-seg-coco-dq_openvino_model"
    folder.mkdir()
    ov.save_model(ov.convert_model(str(COCO_ONNX_640)), str(folder / "yolov8n-seg-coco-dq.xml"))
    (folder / "metadata.yaml").write_text(yaml.safe_dump(_ultralytics_metadata(), sort_keys=False))
    return folder


def test_runs_an_ultralytics_style_folder(ultralytics_folder):
    seg, found = _detections(ultralytics_folder)
    assert seg.backend.name == "openvino" and seg.input_spec.shape == (640, 640)
    names = [d[0] for d in found if d[1] > 0.5]
    assert names.count("person") >= 3 and "bus" in names
    # the same as the Ultralytics ONNX file in onnxruntime
    _, reference = _detections(COCO_ONNX_640)
    _match(reference, found, box_tol=2.0, score_tol=0.01)


def test_ir_for_another_task_is_refused(ultralytics_folder, tmp_path):
    detect = tmp_path / "det_openvino_model"
    shutil.copytree(ultralytics_folder, detect)
    (detect / "metadata.yaml").write_text(yaml.safe_dump(_ultralytics_metadata(task="detect")))
    with pytest.raises(ModelLoadError, match="'detect' model"):
        OpenVINOBackend(detect)
    # a real single-output (detection-shaped) IR without a task in its metadata
    from openvino import opset13 as ops

    image = ops.parameter([1, 3, 64, 64], np.float32, name="images")
    weights = ops.constant(np.ones((84, 3, 32, 32), dtype=np.float32) * 1e-3)
    conv = ops.convolution(image, weights, [32, 32], [0, 0], [0, 0], [1, 1])
    preds = ops.reshape(conv, ops.constant(np.array([1, 84, 4], dtype=np.int64)), False)
    single = tmp_path / "single_openvino_model"
    single.mkdir()
    ov.save_model(ov.Model([preds], [image], "det"), str(single / "single.xml"))
    meta = _ultralytics_metadata(imgsz=64)
    del meta["task"]
    (single / "metadata.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelOutputError, match="detection"):
        OpenVINOBackend(single)


def test_missing_device_lists_the_available_ones(ov_fp32):
    available = ov.Core().available_devices
    for device in ("GPU.7", "NPU.7", "AUTO:GPU.7,CPU"):
        with pytest.raises(DeviceNotFoundError, match="available devices: " + available[0]):
            OpenVINOBackend(ov_fp32.path, device=device)
    with pytest.raises(DeviceNotFoundError):
        OpenVINOBackend(ov_fp32.path, device="")
    auto = OpenVINOBackend(ov_fp32.path, device="AUTO")  # AUTO picks an available device
    assert auto.infer(np.zeros(auto.input_spec.blob_shape, np.float32))[0].shape == (1, 116, 2100)


# ---- async queue -------------------------------------------------------------------------------------


def _blobs(n):
    rng = np.random.default_rng(0)
    return [rng.random((1, 3, IMGSZ, IMGSZ), dtype=np.float32) for _ in range(n)]


def test_async_queue_keeps_order_and_bound(ov_fp32):
    backend = OpenVINOBackend(ov_fp32.path, hint="throughput")
    blobs = _blobs(6)
    expected = [backend.infer(b) for b in blobs]
    seen = []
    with backend.async_queue(num_requests=2, timeout=30) as queue:
        assert isinstance(queue, AsyncQueue) and queue.capacity == 2
        got = []
        for i, blob in enumerate(blobs):
            assert queue.submit(blob, userdata=f"frame{i}", callback=lambda r: seen.append(r.index)) == i
            blob[...] = -1  # the queue copied the input: reusing the caller's buffer is safe
            assert len(queue) <= 2
            got += queue.results()
        got += queue.wait_all()
    assert [r.index for r in got] == list(range(6)) and seen == list(range(6))
    assert [r.userdata for r in got] == [f"frame{i}" for i in range(6)]
    for result, ref in zip(got, expected):
        for a, b in zip(result.outputs, ref):
            np.testing.assert_allclose(a, b, atol=1e-4)
    # the backend's own queue
    for blob in _blobs(3):
        backend.submit(blob)
    assert [r.index for r in backend.results(wait=True)] == [0, 1, 2]


def test_async_queue_timeout_raises_instead_of_hanging(ov_fp32):
    backend = OpenVINOBackend(ov_fp32.path)
    queue = backend.async_queue(num_requests=1, timeout=1e-4)  # 1 ms: far less than one inference
    started = time.perf_counter()
    queue.submit(_blobs(1)[0])
    with pytest.raises(InferenceTimeoutError, match="did not finish"):
        queue.wait_all()
    assert time.perf_counter() - started < 5
    with pytest.raises(RuntimeError, match="timed out"):
        queue.submit(_blobs(1)[0])
    slow = OpenVINOBackend(ov_fp32.path, timeout=1e-4)
    with pytest.raises(InferenceTimeoutError):
        slow.infer(_blobs(1)[0])
    # the backend itself is fine afterwards
    assert backend.infer(_blobs(1)[0])[1].shape == (1, 32, 80, 80)
    with pytest.raises(ValueError, match="timeout"):
        backend.async_queue(timeout=0)
    with pytest.raises(ValueError, match="blob shape"):
        backend.infer(np.zeros((1, 3, 64, 64), np.float32))


# ---- process safety ----------------------------------------------------------------------------------

_RELEASE_IN_CREATION_ORDER = """
import gc, signal, subprocess, sys
from edgeseg.backends.openvino import OpenVINOBackend
signal.signal(signal.SIGCHLD, lambda *_: None)  # as torch's DataLoader does: a Python handler (SA_ONSTACK)
a = OpenVINOBackend(sys.argv[1])
b = OpenVINOBackend(sys.argv[1])
del a; gc.collect()
del b; gc.collect()
subprocess.run([sys.executable, "-c", "pass"], check=True)  # its SIGCHLD runs the handler
print("survived")
"""


def test_backends_released_in_creation_order_leave_signals_working(ov_fp32):
    """OpenVINO's CPU plugin swaps the thread's sigaltstack on compile and, released A-then-B, put back a
    freed one: the next Python signal handler crashed the process (SIGSEGV). The backend restores it."""
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", _RELEASE_IN_CREATION_ORDER, str(ov_fp32.path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0 and "survived" in proc.stdout, (proc.returncode, proc.stderr[-2000:])


def test_preserve_sigaltstack_restores_the_thread_stack():
    from edgeseg.backends.signal_stack import current_sigaltstack, preserve_sigaltstack

    before = current_sigaltstack()
    if before is None:
        pytest.skip("sigaltstack is not reachable on this platform")
    import ctypes

    from edgeseg.backends.signal_stack import _StackT

    libc = ctypes.CDLL(None)
    buf = ctypes.create_string_buffer(65536)
    with preserve_sigaltstack():  # a body that swaps the stack, as OpenVINO's compile does
        libc.sigaltstack(ctypes.byref(_StackT(ctypes.addressof(buf), 0, 65536)), None)
        assert current_sigaltstack()[:2] == (ctypes.addressof(buf), 65536)
    assert current_sigaltstack() == before


# ---- command line ------------------------------------------------------------------------------------


@pytest.mark.skipif(not VIDEO.is_file(), reason="shared video not available")
def test_cli_run_with_openvino(ov_fp32):
    cmd = [
        sys.executable,
        "-m",
        "edgeseg",
        "run",
        "--backend",
        "openvino",
        "--model",
        str(ov_fp32.path),
        "--source",
        str(VIDEO),
        "--max-frames",
        "10",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "backend='openvino'" in proc.stdout and "summary: 10 frame(s)" in proc.stdout


def test_cli_export_rejects_flags_the_format_lacks():
    cmd = [sys.executable, "-m", "edgeseg", "export", "--model", str(COCO_PT), "--format", "openvino", "--dynamic"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode != 0 and "--dynamic not supported for format 'openvino'" in proc.stderr
