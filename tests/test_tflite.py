"""LiteRT backend (Ultralytics' full-int8 TFLite file, error paths, output order) and the TFLite
exporter (split-output full int8 and single-output float, when TensorFlow/onnx2tf are installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from edgeseg import Segmenter
from edgeseg.backends import select_backend
from edgeseg.errors import ModelLoadError
from shared_paths import SHARED

ULTRA = SHARED / "models" / "yolo11n-seg_full_integer_quant.tflite"
BUS = SHARED / "data" / "images" / "bus.jpg"


def need(*paths):
    for p in paths:
        if not p.is_file():
            pytest.skip(f"{p} not available")


def check_people_and_bus(det, min_people=3):
    names = [det.names[int(c)] for c in det.class_id]
    assert names.count("person") >= min_people, names
    assert "bus" in names, names
    areas = det.masks.areas()
    for i in range(len(det)):
        if names[i] not in ("person", "bus"):
            continue
        x1, y1, x2, y2 = det.xyxy[i]
        mask = det.masks.full(i) if hasattr(det.masks, "full") else None
        assert areas[i] > 0.2 * (x2 - x1) * (y2 - y1), (names[i], areas[i])  # the mask covers the object
        if mask is not None:
            m = np.asarray(mask)
            m = m[0] if m.ndim == 3 else m
            ys, xs = np.nonzero(m)
            assert xs.min() >= x1 - 2 and xs.max() <= x2 + 2 and ys.min() >= y1 - 2 and ys.max() <= y2 + 2


def test_ultralytics_full_int8_yolo11_on_bus():
    need(ULTRA, BUS)
    seg = Segmenter(ULTRA, threads=2)
    assert seg.backend.name == "tflite" and seg.backend.output_kind == "single"
    assert seg.backend.interpreter_package == "ai-edge-litert"
    assert seg.input_spec.layout == "nhwc" and seg.input_spec.dtype == "int8"
    layout = seg.backend.output_layout
    assert layout.protos_layout == "hwc" and layout.box_scale == (640.0, 640.0)
    assert seg.names[0] == "person" and len(seg.names) == 80
    check_people_and_bus(seg(str(BUS)))


def _rewrite(src: Path, dst: Path, edit) -> Path:
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    import flatbuffers

    model = schema.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    edit(model)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


@pytest.mark.parametrize("reverse", [False, True])
def test_either_output_order_and_metadata_beside_the_file(tmp_path, reverse):
    """Without a signature the outputs come in graph order: protos first in this file, preds first
    when reversed; metadata from <stem>_metadata.yaml (the rewrite drops the appended metadata)."""
    need(ULTRA, BUS)
    pytest.importorskip("yaml")

    def edit(model):
        g = model.subgraphs[0]
        if reverse:
            g.outputs = list(g.outputs)[::-1]
        model.signatureDefs = []

    path = _rewrite(ULTRA, tmp_path / "model.tflite", edit)
    shutil.copy(SHARED / "models" / "yolo11n-seg_full_integer_quant_metadata.yaml", tmp_path / "model_metadata.yaml")
    seg = Segmenter(path, threads=2)
    assert seg.backend.output_layout.preds_index == (0 if reverse else 1)
    assert seg.names[5] == "bus"
    check_people_and_bus(seg(str(BUS)))


def test_bad_files_raise_clearly(tmp_path):
    with pytest.raises(FileNotFoundError):
        Segmenter(tmp_path / "missing.tflite")
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        Segmenter(empty)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="TFL3"):
        Segmenter(junk)
    if ULTRA.is_file():
        cut = tmp_path / "cut.tflite"
        cut.write_bytes(ULTRA.read_bytes()[:200_000])
        with pytest.raises(ModelLoadError):
            Segmenter(cut)
        with pytest.raises(ValueError, match="fixed input size"):
            Segmenter(ULTRA, imgsz=320)
        with pytest.raises(ValueError, match="threads"):
            Segmenter(ULTRA, threads=0)


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")  # TF's own advice
def test_falls_back_to_tensorflows_interpreter_without_litert(monkeypatch):
    """Without ai-edge-litert (and tflite-runtime), TensorFlow's own interpreter runs the model."""
    import sys

    pytest.importorskip("tensorflow")
    need(ULTRA, BUS)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    seg = Segmenter(ULTRA, threads=2)
    assert seg.backend.interpreter_package == "tensorflow"
    check_people_and_bus(seg(str(BUS)))


def test_no_interpreter_names_the_extra_and_every_package_tried(monkeypatch):
    import sys

    from edgeseg.errors import BackendNotInstalledError

    need(ULTRA)
    for name in (
        "ai_edge_litert.interpreter",
        "tflite_runtime",
        "tflite_runtime.interpreter",
        "tensorflow.lite.python.interpreter",
    ):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BackendNotInstalledError, match=r"edgeseg\[tflite\]") as info:
        Segmenter(ULTRA)
    for package in ("ai-edge-litert", "tflite-runtime", "tensorflow"):
        assert package in str(info.value)


def test_threads_default_to_every_usable_cpu():
    """LiteRT's own default is one thread: edgeseg uses every CPU the process may run on unless told."""
    import os

    from edgeseg.backends.tflite import TFLiteBackend, usable_cpus

    need(ULTRA)
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cpus() == expected
    assert TFLiteBackend(ULTRA).threads == expected
    assert TFLiteBackend(ULTRA, threads=1).threads == 1
    assert TFLiteBackend(ULTRA, intra_op_threads=3).threads == 3


def test_edgetpu_model_without_runtime_says_how_to_install(tmp_path):
    need(ULTRA)
    path = tmp_path / "model_edgetpu.tflite"
    shutil.copy(ULTRA, path)
    assert select_backend(path).name == "edgetpu"
    with pytest.raises(ModelLoadError, match="Edge TPU delegate.*libedgetpu"):
        Segmenter(path, library="/nonexistent/libedgetpu.so.1")


# ---- export (TensorFlow + onnx2tf) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("tensorflow")
    pytest.importorskip("onnx2tf")
    pytest.importorskip("torch")
    ckpt = SHARED / "models" / "yolov8n-seg-coco-dq.pt"
    data = SHARED / "data" / "coco8-seg"
    need(ckpt, BUS)
    if not data.is_dir():
        pytest.skip("coco8-seg not available")
    from edgeseg.exporters.tflite import export

    out = tmp_path_factory.mktemp("tflite")
    images = sorted((data / "images").rglob("*.jpg"))
    int8 = export(ckpt, imgsz=320, precision="int8", data=images, fraction=0.5, output=out / "m_int8_split.tflite")
    fp32 = export(ckpt, imgsz=160, output=out / "m_fp32.tflite")  # small: the check is numerical
    return int8, fp32


@pytest.mark.slow
def test_int8_split_export_runs_and_finds_people_and_bus(exported):
    int8, _fp32 = exported
    assert int8.metadata["edgeseg_outputs"] == "split"
    assert int8.output_shapes["box0"] == (1, 40, 40, 64) and int8.output_shapes["protos"] == (1, 80, 80, 32)
    seg = Segmenter(int8.path, threads=2)
    assert seg.backend.output_kind == "split" and seg.input_spec.dtype == "int8"
    raw = seg.backend.infer(np.zeros(seg.input_spec.blob_shape, np.int8))
    assert all(o.dtype == np.int8 for o in raw)  # every output int8, each with its own scale
    scales = {lv.cls_q[0] for lv in seg.backend.output_layout.levels} | {
        lv.box_q[0] for lv in seg.backend.output_layout.levels
    }
    assert len(scales) > 1
    assert int8.metadata["silu_input_floor"] == "8.0"
    assert any(n.startswith("SiLU input range floored at -8 on ") for n in int8.notes), int8.notes
    check_people_and_bus(seg(str(BUS)), min_people=2)


@pytest.mark.slow
def test_fp32_single_export_matches_torch(exported):
    _, fp32 = exported
    assert fp32.max_abs_diff["output0"] < 1e-3 and fp32.max_abs_diff["output1"] < 1e-3  # boxes in 0..1
    assert fp32.output_shapes == {"output0": (1, 116, 525), "output1": (1, 40, 40, 32)}
    seg = Segmenter(fp32.path)
    assert seg.backend.output_kind == "single" and seg.backend.output_layout.box_scale == (160.0, 160.0)
    assert seg.input_spec.dtype == "float32" and seg.input_spec.layout == "nhwc"
    det = seg(str(BUS))
    assert "person" in [det.names[int(c)] for c in det.class_id]


def _quantisation(path):
    """{tensor index: (scale, zero point)} of the per-tensor-quantised tensors and the SiLU inputs."""
    from edgeseg.exporters.tflite_ranges import silu_input_tensors
    from edgeseg.exporters.tflite_schema import tflite_schema

    schema = tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(Path(path).read_bytes()), 0)
    q = {
        i: (float(t.quantization.scale[0]), int(t.quantization.zeroPoint[0]))
        for i, t in enumerate(model.subgraphs[0].tensors)
        if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale) == 1
    }
    return q, silu_input_tensors(model, schema)


def _low(q):
    scale, zero = q
    return (-128 - zero) * scale


def _output_error(path, names, reference, blob):
    """Mean over outputs of mean |TFLite - torch| / std(torch) on one image."""
    from edgeseg.exporters.tflite import _run_litert

    errors = []
    for got, ref in zip(_run_litert(Path(path), blob, 2, names), reference):
        got = got.transpose(0, 3, 1, 2) if got.ndim == 4 else got
        errors.append(float(np.abs(got - ref).mean() / ref.std()))
    return float(np.mean(errors))


@pytest.mark.slow
def test_silu_input_ranges_are_tightened_and_make_int8_more_accurate(exported, tmp_path):
    """The int8 export floors conv outputs that feed a SiLU at -8 (edgeseg.exporters.tflite_ranges): only those
    tensors' scales change, the outputs move closer to the float model's and mask mAP rises."""
    import torch

    from edgeseg.exporters.common import check_image_blob, load_source_model
    from edgeseg.exporters.tflite import append_metadata, export, read_tflite_metadata
    from edgeseg.exporters.tflite_ranges import tighten_silu_inputs
    from edgeseg.exporters.tflite_split import SplitOutputModel
    from edgeseg.val.validator import validate

    int8, _ = exported
    q_export, silu_export = _quantisation(int8.path)
    assert len(silu_export) >= 50  # 66 in yolov8n-seg's split graph
    assert all(_low(q_export[t]) >= -8.0 - q_export[t][0] for t in silu_export)
    _, changed = tighten_silu_inputs(Path(int8.path).read_bytes())
    assert changed == 0  # applying it again changes nothing

    # the pass alone, on one conversion without it
    coco128 = SHARED / "data" / "coco128-seg"
    need(coco128 / "coco128-seg.yaml")
    ckpt = SHARED / "models" / "yolov8n-seg-coco-dq.pt"
    images = sorted((coco128 / "images").rglob("*.jpg"))[:32]
    raw = export(ckpt, imgsz=320, precision="int8", data=images, silu_floor=None, output=tmp_path / "raw.tflite")
    assert raw.metadata["silu_input_floor"] == "None"
    content, changed = tighten_silu_inputs(Path(raw.path).read_bytes())
    tight = tmp_path / "tight.tflite"
    tight.write_bytes(append_metadata(content, read_tflite_metadata(raw.path)))
    q_raw, silu_raw = _quantisation(raw.path)
    q_new, silu_new = _quantisation(tight)
    assert silu_raw == silu_new and len(silu_new) >= 50
    assert sum(_low(q_raw[t]) < -8.5 for t in silu_raw) >= len(silu_raw) // 2  # calibration ranges were wide
    assert changed == sum(_low(q_raw[t]) < -8.0 - q_raw[t][0] for t in silu_raw)
    for t in silu_new:
        assert _low(q_new[t]) == pytest.approx(max(_low(q_raw[t]), -8.0), abs=q_new[t][0])
        assert abs(q_new[t][0] * (127 - q_new[t][1]) - q_raw[t][0] * (127 - q_raw[t][1])) <= q_raw[t][0]  # max kept
    others = set(q_raw) - set(silu_raw)
    assert {t: q_raw[t] for t in others} == {t: q_new[t] for t in others}  # nothing else changed

    wrapper = SplitOutputModel(load_source_model(ckpt).model).eval()
    errors = {}
    for image in (BUS, SHARED / "data" / "images" / "zidane.jpg"):
        blob, _ = check_image_blob(image, (320, 320))
        with torch.no_grad():
            reference = [t.float().numpy() for t in wrapper(torch.from_numpy(blob))]
        errors[image.name] = (
            _output_error(raw.path, wrapper.output_names, reference, blob),
            _output_error(tight, wrapper.output_names, reference, blob),
        )
    assert all(after < 0.9 * before for before, after in errors.values()), errors  # measured 0.78, 0.62

    maps = [
        100
        * validate(
            m, coco128 / "coco128-seg.yaml", imgsz=320, rect=False, indices=slice(64, 128), progress=False
        ).mask.map50_95
        for m in (raw.path, tight)
    ]
    assert maps[1] > maps[0] + 0.3, maps  # measured 29.66 -> 30.69


def test_tighten_silu_inputs_rejects_a_non_positive_floor():
    from edgeseg.exporters.tflite_ranges import tighten_silu_inputs

    with pytest.raises(ValueError, match="floor"):
        tighten_silu_inputs(b"", 0.0)


def test_split_outputs_identified_by_exported_names_when_shapes_are_ambiguous():
    """nc == nm == 32: shapes cannot tell class logits from coefficients; the metadata's output names
    (in onnx2tf's output_<i> signature order) can."""
    from edgeseg.backends.tflite import _split_layout
    from edgeseg.metadata import ModelMetadata

    names = ["box0", "cls0", "mc0", "box1", "cls1", "mc1", "box2", "cls2", "mc2", "protos"]
    shapes = {"box": 64, "cls": 32, "mc": 32}
    details = []
    for i, n in enumerate(names):
        hw = 80 if n == "protos" else 10 // (2 ** int(n[-1]))
        c = 32 if n == "protos" else shapes[n[:-1]]
        details.append(
            {
                "_name": f"output_{i}",
                "shape": [1, hw, hw, c],
                "dtype": np.int8,
                "quantization": (0.1 + i / 100, i),
                "name": f"t{i}",
                "index": i,
            }
        )
    order = [3, 0, 9, 5, 1, 2, 4, 6, 7, 8]  # signature listed in another order than the graph
    details = [details[i] for i in order]
    meta = ModelMetadata(names={i: str(i) for i in range(32)}, extras={"output_names": names})
    layout = _split_layout(details, meta, (80, 80), "test")
    by_name = {d["name"]: k for k, d in enumerate(details)}
    assert layout.levels[0].cls == by_name["t1"] and layout.levels[0].coef == by_name["t2"]
    assert layout.levels[2].box == by_name["t6"] and layout.protos_index == by_name["t9"]
    assert layout.levels[1].cls_q == (0.1 + 4 / 100, 4)
    assert (layout.nc, layout.nm) == (32, 32)


def test_cli_run_and_val_with_tflite():
    """`edgeseg run --backend tflite` and `edgeseg val` on Ultralytics' full-int8 file."""
    import subprocess
    import sys

    video = SHARED / "data" / "video" / "people_movement.mp4"
    coco8 = SHARED / "data" / "coco8-seg" / "coco8-seg.yaml"
    need(ULTRA, video, coco8)
    repo = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeseg",
            "run",
            "--backend",
            "tflite",
            "--model",
            str(ULTRA),
            "--source",
            str(video),
            "--max-frames",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo,
    )
    assert run.returncode == 0, run.stderr
    assert "backend='tflite'" in run.stdout and "summary: 3 frame(s)" in run.stdout
    val = subprocess.run(
        [sys.executable, "-m", "edgeseg", "val", "--model", str(ULTRA), "--data", str(coco8), "--imgsz", "640"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=repo,
    )
    assert val.returncode == 0, val.stderr
    line = next(ln for ln in val.stdout.splitlines() if ln.strip().startswith("all"))
    mask_map50 = float(line.split()[-2])
    assert 0.3 < mask_map50 <= 1.0, line  # a real COCO model on coco8: far from zero


def test_export_check_compares_nhwc_outputs_even_when_the_shape_is_ambiguous():
    """cls0 of an 80-class model at 640 is [1, 80, 80, 80] in torch (NCHW) and in TFLite (NHWC): the check
    must still transpose (it once compared them as they were and failed a correct fp32 split export)."""
    from edgeseg.exporters.tflite import _compare

    rng = np.random.default_rng(0)
    torch_nchw = rng.standard_normal((1, 8, 8, 8)).astype(np.float32)
    tflite_nhwc = torch_nchw.transpose(0, 2, 3, 1).copy()
    protos_nchw = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    diffs = _compare(
        [tflite_nhwc, protos_nchw.transpose(0, 2, 3, 1)], [torch_nchw, protos_nchw], ["cls0", "protos"], "split"
    )
    assert diffs == {"cls0": 0.0, "protos": 0.0}
    single = rng.standard_normal((1, 12, 30)).astype(np.float32)  # 3-D predictions are compared as they are
    assert _compare([single], [single], ["output0"], "single") == {"output0": 0.0}
