"""ONNX export: layout, metadata, numerics against Ultralytics' own export, options and errors.

Exports take several seconds each, so each exported file is made once per module and reused.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgeseg.exporters import ExportError, check_format, export  # noqa: E402
from edgeseg.exporters.common import synthetic_image  # noqa: E402
from edgeseg.exporters.onnx import MAX_OPSET, MIN_OPSET  # noqa: E402
from shared_paths import SHARED  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODELS = SHARED / "models"
BUS = SHARED / "data" / "images" / "bus.jpg"
COCO_PT = MODELS / "yolov8n-seg-coco-dq.pt"
COCO_ONNX = MODELS / "yolov8n-seg-coco-dq.onnx"
V8_RAND = MODELS / "yolov8n-seg-rand.pt"
V11_RAND = MODELS / "yolo11n-seg-rand.pt"

needs_shared = pytest.mark.skipif(
    not (COCO_PT.is_file() and COCO_ONNX.is_file() and BUS.is_file()), reason="shared test models/images not available"
)


def _ort_run(path, blob):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: blob})


def _bus_blob(size=640):
    from edgeseg.image_io import read_image
    from edgeseg.ops.letterbox import letterbox

    blob, _ = letterbox(read_image(BUS), size)
    return blob


@pytest.fixture(scope="module")
def coco_export(tmp_path_factory):
    """Our export of the real COCO checkpoint: imgsz 640, opset 17, static, not simplified."""
    if not COCO_PT.is_file() or not BUS.is_file():
        pytest.skip("shared test models/images not available")
    out = tmp_path_factory.mktemp("coco") / "coco.onnx"
    return export(COCO_PT, imgsz=640, opset=17, output=out, check_image=BUS)


@pytest.fixture(scope="module")
def v8_opset12_simplified(tmp_path_factory):
    if not V8_RAND.is_file():
        pytest.skip("shared test models not available")
    out = tmp_path_factory.mktemp("v8") / "v8.onnx"
    return export(V8_RAND, imgsz=320, opset=12, simplify=True, output=out)


@pytest.fixture(scope="module")
def v11_dynamic(tmp_path_factory):
    if not V11_RAND.is_file():
        pytest.skip("shared test models not available")
    out = tmp_path_factory.mktemp("v11") / "v11.onnx"
    return export(V11_RAND, imgsz=320, opset=17, dynamic=True, output=out)


# ---- layout, metadata ------------------------------------------------------------------------------


@needs_shared
def test_export_layout_and_verification(coco_export):
    model = onnx.load(str(coco_export.path))
    assert [i.name for i in model.graph.input] == ["images"]
    assert [o.name for o in model.graph.output] == ["output0", "output1"]
    assert model.opset_import[0].version == 17
    assert coco_export.output_shapes == {"output0": (1, 116, 8400), "output1": (1, 32, 160, 160)}
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}  # Conv+BN fused
    # export vs torch on the real bus image: float32 noise only
    assert coco_export.check_image == str(BUS)
    assert coco_export.max_abs_diff["output0"] < 5e-3
    assert coco_export.max_abs_diff["output1"] < 1e-4
    assert not list(coco_export.path.parent.glob(".*.tmp")) and not list(coco_export.path.parent.glob(".coco*"))


@needs_shared
def test_metadata_keys_and_formatting_match_ultralytics(coco_export):
    ours = {p.key: p.value for p in onnx.load(str(coco_export.path)).metadata_props}
    theirs = {p.key: p.value for p in onnx.load(str(COCO_ONNX)).metadata_props}
    assert set(theirs) <= set(ours)
    assert ours["architecture"] == "yolov8n-seg" and ours["edgeseg_version"]
    for key in ("stride", "task", "head", "batch", "imgsz", "names", "channels", "end2end", "license"):
        assert ours[key] == theirs[key], key
    args = eval(ours["args"], {})
    assert args["opset"] == 17 and args["dynamic"] is False and args["simplify"] is False


@needs_shared
def test_metadata_parses_with_runtime_reader(coco_export):
    from edgeseg.backends.onnxruntime import OnnxRuntimeBackend
    from edgeseg.metadata import from_onnx_props

    props = {p.key: p.value for p in onnx.load(str(coco_export.path)).metadata_props}
    meta = from_onnx_props(props)
    assert meta.task == "segment" and meta.imgsz == (640, 640) and meta.stride == 32
    assert meta.names[0] == "person" and meta.names[5] == "bus" and meta.nc == 80
    assert meta.extras["architecture"] == "yolov8n-seg"
    backend = OnnxRuntimeBackend(coco_export.path)
    assert backend.metadata.names == meta.names
    assert backend.input_spec.shape == (640, 640)


# ---- numerics against Ultralytics' own export ------------------------------------------------------


@needs_shared
def test_fused_weights_bit_identical_to_ultralytics_export():
    """edgeseg's fuse uses Ultralytics' arithmetic: every fused conv weight/bias equals the initializer
    in Ultralytics' ONNX export of the same checkpoint, bit for bit."""
    from onnx import numpy_helper

    from edgeseg.nn.load import load_model

    model, _ = load_model(COCO_PT)
    state = model.fuse().state_dict()
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(COCO_ONNX)).graph.initializer}
    compared = 0
    for name, value in inits.items():
        if name in state:
            np.testing.assert_array_equal(state[name].numpy(), value, err_msg=name)
            compared += 1
    assert compared >= 150  # 66 fused Convs (w, b), head 1x1 convs, Proto upsample, DFL


@needs_shared
def test_raw_outputs_match_ultralytics_onnx():
    """Our model vs yolov8n-seg-coco-dq.onnx in onnxruntime, on letterboxed bus.jpg.

    Class scores, mask coefficients and prototypes agree to ~1e-5. Boxes are pixels up to 640, where
    the float32 noise floor of two implementations is ~1e-3..2.5e-3 px: onnxruntime alone differs
    from itself by 1.05e-3 px between graph-optimisation levels on this input, and from a float64
    evaluation by up to 1.6e-3 px. So the box bound here is 5e-3 px.
    """
    from edgeseg.nn.load import load_model

    blob = _bus_blob()
    theirs = _ort_run(COCO_ONNX, blob)
    model, _ = load_model(COCO_PT)
    for fused in (False, True):
        m = model.fuse() if fused else model
        with torch.inference_mode():
            preds, protos = m(torch.from_numpy(blob))
        preds, protos = preds.numpy(), protos.numpy()
        assert np.abs(preds[:, 4:] - theirs[0][:, 4:]).max() <= 1e-3
        assert np.abs(protos - theirs[1]).max() <= 1e-3
        assert np.abs(preds[:, :4] - theirs[0][:, :4]).max() <= 5e-3


@needs_shared
def test_our_export_reproduces_ultralytics_onnx(coco_export):
    """Same runtime, same input: our export's outputs equal Ultralytics' (within 1e-3 on both)."""
    blob = _bus_blob()
    ours, theirs = _ort_run(coco_export.path, blob), _ort_run(COCO_ONNX, blob)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-3


@needs_shared
def test_same_detections_as_ultralytics_onnx(coco_export):
    from edgeseg import Segmenter

    ours = Segmenter(coco_export.path)(str(BUS))
    theirs = Segmenter(COCO_ONNX)(str(BUS))
    assert len(ours) == len(theirs) >= 5
    order_a, order_b = np.argsort(ours.confidence), np.argsort(theirs.confidence)
    np.testing.assert_array_equal(ours.class_id[order_a], theirs.class_id[order_b])
    np.testing.assert_allclose(ours.xyxy[order_a], theirs.xyxy[order_b], atol=1.0)
    classes = list(ours.class_id)
    assert classes.count(0) == 4 and classes.count(5) == 1  # 4 persons, the bus


# ---- architectures and options -----------------------------------------------------------------


@pytest.mark.skipif(not V8_RAND.is_file(), reason="shared test models not available")
def test_yolov8_rand_opset12_simplified(v8_opset12_simplified):
    res = v8_opset12_simplified
    model = onnx.load(str(res.path))
    assert model.opset_import[0].version == 12 and res.simplified
    assert [o.name for o in model.graph.output] == ["output0", "output1"]
    assert res.output_shapes == {"output0": (1, 116, 2100), "output1": (1, 32, 80, 80)}
    assert max(res.max_abs_diff.values()) < 1e-3
    props = {p.key: p.value for p in model.metadata_props}
    assert props["architecture"] == "yolov8n-seg" and props["imgsz"] == "[320, 320]"
    assert eval(props["args"], {})["simplify"] is True


@pytest.mark.skipif(not V11_RAND.is_file(), reason="shared test models not available")
@pytest.mark.parametrize("size", [320, 640])
def test_yolo11_dynamic_runs_at_several_sizes(v11_dynamic, size):
    from edgeseg.nn.load import load_model

    model = onnx.load(str(v11_dynamic.path))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    blob = np.ascontiguousarray(np.random.default_rng(size).random((1, 3, size, size), dtype=np.float32))
    outs = _ort_run(v11_dynamic.path, blob)
    anchors = sum((size // s) ** 2 for s in (8, 16, 32))
    assert outs[0].shape == (1, 116, anchors) and outs[1].shape == (1, 32, size // 4, size // 4)
    torch_model, _ = load_model(V11_RAND)
    with torch.inference_mode():
        ref = torch_model.fuse()(torch.from_numpy(blob))
    assert np.abs(outs[0] - ref[0].numpy()).max() < 5e-3  # anchors follow the input size
    assert np.abs(outs[1] - ref[1].numpy()).max() < 1e-3


@pytest.mark.skipif(not V11_RAND.is_file(), reason="shared test models not available")
def test_dynamic_export_runs_in_segmenter_at_320_and_640(v11_dynamic):
    from edgeseg import Segmenter

    image = synthetic_image(480, 640)
    for size in (320, 640):
        seg = Segmenter(v11_dynamic.path, imgsz=size, conf=0.01)
        assert seg.input_spec.shape == (size, size)
        seg(image)  # random weights: detections meaningless, the pipeline must run


@pytest.mark.skipif(not V8_RAND.is_file(), reason="shared test models not available")
def test_half_export_is_float16_and_runs(tmp_path):
    res = export(V8_RAND, imgsz=160, half=True, output=tmp_path / "half.onnx")
    model = onnx.load(str(res.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for o in model.graph.output)
    assert res.half and max(res.max_abs_diff.values()) < 1.0  # float16 rounding vs the float32 model


def test_module_input_and_synthetic_fallback(tmp_path, monkeypatch):
    """A SegmentationModel can be exported; without a real image the check says it was synthetic."""
    from edgeseg.nn import build_model

    monkeypatch.setenv("EDGESEG_SAMPLES", str(tmp_path))  # a folder without sample photos
    monkeypatch.delenv("EDGESEG_CHECK_IMAGE", raising=False)
    model = build_model("yolov8n-seg", nc=3, names=["a", "b", "c"])
    res = export(model, imgsz=64, output=tmp_path / "tiny.onnx")
    assert "synthetic" in res.check_image and res.notes
    assert res.output_shapes["output0"] == (1, 4 + 3 + 32, 84)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # caller's model untouched


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [11, 19, 0, "x", 12.5])
def test_bad_opset_is_a_clear_error(opset, tmp_path):
    with pytest.raises(ExportError, match=f"opset.*{MIN_OPSET}.*{MAX_OPSET}|between {MIN_OPSET} and {MAX_OPSET}"):
        export(tmp_path / "never-read.pt", opset=opset)


def test_non_checkpoint_is_a_clear_error(tmp_path):
    from edgeseg.errors import ModelLoadError

    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a torch checkpoint"):
        export(bad, output=tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(ExportError, match="already an exported model"):
        export(tmp_path / "model.onnx")


def test_bad_imgsz_and_format():
    with pytest.raises(ExportError, match="multiples of the model stride"):
        export("whatever.pt", imgsz=650)
    with pytest.raises(ExportError, match="not yet supported; supported formats: onnx"):
        check_format("coreml")
    assert check_format(" OpenVINO ") == "openvino"
    with pytest.raises(ExportError, match="unknown export format 'foo'"):
        check_format("foo")


def test_cli_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("nope")
    for extra, message in (
        (["--format", "coreml"], "not yet supported"),
        (["--opset", "11"], "between 12 and 18"),
        ([], "not a torch checkpoint"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "edgeseg", "export", "--model", str(bad), *extra],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=300,
        )
        assert proc.returncode == 1, proc.stderr
        assert message in proc.stderr


@pytest.mark.skipif(not V8_RAND.is_file(), reason="shared test models not available")
def test_cli_export_prints_the_check(tmp_path):
    out = tmp_path / "cli.onnx"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeseg",
            "export",
            "--model",
            str(V8_RAND),
            "--format",
            "onnx",
            "--imgsz",
            "160",
            "--opset",
            "12",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    assert "output0: max abs difference" in proc.stdout and "output1: max abs difference" in proc.stdout
