"""ncnn: export through pnnx to <name>_ncnn_model/, the NcnnBackend, and their errors.

Real conversions and the real ncnn runtime (no mocks). Exports (imgsz 320: fp32, fp16, and an ONNX
export for the comparison) are made once per module and reused.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from shared_paths import SHARED

COCO_PT = SHARED / "models" / "yolov8n-seg-coco-dq.pt"
BUS = SHARED / "data" / "images" / "bus.jpg"
IMGSZ = 320

needs_shared = pytest.mark.skipif(
    not (COCO_PT.is_file() and BUS.is_file()), reason="shared test models/images not available"
)


def _export_packages():
    pytest.importorskip("torch")
    pytest.importorskip("pnnx")
    pytest.importorskip("ncnn")
    pytest.importorskip("yaml")


@pytest.fixture(scope="module")
def fp32_folder(tmp_path_factory):
    if not (COCO_PT.is_file() and BUS.is_file()):
        pytest.skip("shared test models/images not available")
    _export_packages()
    from edgeseg.exporters import export

    out = tmp_path_factory.mktemp("fp32") / "coco_ncnn_model"
    result = export(COCO_PT, format="ncnn", imgsz=IMGSZ, output=out, check_image=BUS)
    return result


@pytest.fixture(scope="module")
def fp16_folder(tmp_path_factory):
    if not (COCO_PT.is_file() and BUS.is_file()):
        pytest.skip("shared test models/images not available")
    _export_packages()
    from edgeseg.exporters import export

    out = tmp_path_factory.mktemp("fp16") / "coco_fp16_ncnn_model"
    return export(COCO_PT, format="ncnn", imgsz=IMGSZ, half=True, output=out, check_image=BUS)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    if not (COCO_PT.is_file() and BUS.is_file()):
        pytest.skip("shared test models/images not available")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from edgeseg.exporters import export

    out = tmp_path_factory.mktemp("onnx") / "coco.onnx"
    return export(COCO_PT, format="onnx", imgsz=IMGSZ, output=out, check_image=BUS).path


def _bus():
    from edgeseg.image_io import read_image

    return read_image(BUS)


def _match(reference, detections, box_px):
    """Same classes, and every reference box has a same-class box within box_px (pixels)."""
    assert len(detections) == len(reference) > 0
    assert sorted(detections.class_id.tolist()) == sorted(reference.class_id.tolist())
    for box, cls in zip(reference.xyxy, reference.class_id):
        gaps = [np.abs(box - other).max() for other, c in zip(detections.xyxy, detections.class_id) if c == cls]
        assert min(gaps) <= box_px, (box, gaps)


# ---- export ----------------------------------------------------------------------------------------


@needs_shared
def test_export_folder_layout_and_check(fp32_folder):
    import yaml

    folder = fp32_folder.path
    assert folder.name == "coco_ncnn_model" and folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.yaml", "model.ncnn.bin", "model.ncnn.param"]
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # staging and pnnx side files gone
    meta = yaml.safe_load((folder / "metadata.yaml").read_text())
    for key in (
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
        "architecture",
        "edgeseg_version",
        "precision",
    ):
        assert key in meta, key
    assert meta["task"] == "segment" and meta["imgsz"] == [IMGSZ, IMGSZ] and meta["stride"] == 32
    assert meta["names"][0] == "person" and len(meta["names"]) == 80
    assert meta["precision"] == "fp32" and meta["architecture"] == "yolov8n-seg"
    assert fp32_folder.format == "ncnn" and not fp32_folder.half
    assert fp32_folder.output_shapes == {"output0": (1, 116, 2100), "output1": (1, 32, 80, 80)}
    # float32 rounding only (measured 1.3e-3 px and 1.3e-5)
    assert fp32_folder.max_abs_diff["output0"] < 1e-2
    assert fp32_folder.max_abs_diff["output1"] < 1e-4
    assert fp32_folder.size_mb > 10


@needs_shared
def test_param_blob_names_and_output_layout(fp32_folder):
    from edgeseg.backends.ncnn import NcnnBackend, read_param_blobs

    inputs, outputs = read_param_blobs(fp32_folder.path / "model.ncnn.param")
    assert inputs == ["in0"] and sorted(outputs) == ["out0", "out1"]
    backend = NcnnBackend(fp32_folder.path, threads=2)
    assert backend.input_spec.name == "in0" and backend.input_spec.shape == (IMGSZ, IMGSZ)
    layout = backend.output_layout
    assert (layout.preds_layout, layout.nc, layout.nm) == ("cn", 80, 32)
    outs = backend.infer(np.zeros((1, 3, IMGSZ, IMGSZ), np.float32))
    assert outs[layout.preds_index].shape == (1, 116, 2100)  # ncnn's w=2100, h=116 + batch
    assert outs[layout.protos_index].shape == (1, 32, 80, 80)
    with pytest.raises(ValueError, match="does not match the model input"):
        backend.infer(np.zeros((1, 3, 640, 640), np.float32))
    described = backend.describe()
    assert described["threads"] == 2 and described["inputs"][0]["shape"] == [3, IMGSZ, IMGSZ]
    assert [o["shape"] for o in described["outputs"]] == [[116, 2100], [32, 80, 80]]  # ncnn: no batch


@needs_shared
def test_detections_match_onnx(fp32_folder, onnx_file):
    from edgeseg.backends import select_backend
    from edgeseg.backends.ncnn import NcnnBackend
    from edgeseg.segmenter import Segmenter

    assert select_backend(fp32_folder.path) is NcnnBackend
    assert select_backend(fp32_folder.path / "model.ncnn.param") is NcnnBackend
    image = _bus()
    reference = Segmenter(onnx_file)(image)
    names = [reference.names[c] for c in reference.class_id]
    assert "bus" in names and names.count("person") >= 3
    for model in (fp32_folder.path, fp32_folder.path / "model.ncnn.param"):
        detections = Segmenter(model, intra_op_threads=2)(image)  # the CLI's --threads
        _match(reference, detections, box_px=1.0)
        assert np.allclose(detections.confidence, reference.confidence, atol=1e-3)


@needs_shared
def test_fp16_export(fp16_folder, fp32_folder):
    import yaml

    from edgeseg.segmenter import Segmenter

    folder = fp16_folder.path
    assert fp16_folder.half
    assert yaml.safe_load((folder / "metadata.yaml").read_text())["precision"] == "fp16"
    fp32_bin = (fp32_folder.path / "model.ncnn.bin").stat().st_size
    assert (folder / "model.ncnn.bin").stat().st_size < 0.55 * fp32_bin
    assert fp16_folder.max_abs_diff["output0"] < 1.0  # fp16 weights: measured 0.19 px at 320
    image = _bus()
    reference = Segmenter(fp32_folder.path)(image)
    for fp16 in (False, True):
        _match(reference, Segmenter(folder, fp16=fp16)(image), box_px=3.0)


def test_int8_and_onnx_options_rejected():
    from edgeseg.exporters import ExportError, export

    with pytest.raises(ExportError, match="int8 is not supported for ncnn"):
        export("whatever.pt", format="ncnn", int8=True)
    with pytest.raises(ExportError, match="fixed input size"):
        export("whatever.pt", format="ncnn", dynamic=True)
    with pytest.raises(ExportError, match="ONNX option"):
        export("whatever.pt", format="ncnn", opset=17)


def test_export_without_pnnx_names_the_extra(monkeypatch):
    pytest.importorskip("torch")
    from edgeseg.exporters import ExportError, export

    monkeypatch.setitem(sys.modules, "pnnx", None)
    with pytest.raises(ExportError, match=r"edgeseg\[export-ncnn\]"):
        export("whatever.pt", format="ncnn")


# ---- backend errors --------------------------------------------------------------------------------


def test_missing_ncnn_package_names_the_extra(monkeypatch, tmp_path):
    from edgeseg.backends.ncnn import NcnnBackend
    from edgeseg.errors import BackendNotInstalledError

    monkeypatch.setitem(sys.modules, "ncnn", None)
    with pytest.raises(BackendNotInstalledError, match=r"edgeseg\[ncnn\]"):
        NcnnBackend(tmp_path / "x_ncnn_model")
    # The exporter checks torch, pnnx and PyYAML before the ncnn runtime: without them (the README's
    # install has no pnnx) it fails earlier, with another message, so that half needs them.
    pytest.importorskip("torch")
    pytest.importorskip("pnnx", reason="pnnx is not installed (edgeseg[export-ncnn])")
    pytest.importorskip("yaml")
    from edgeseg.exporters import ExportError, export

    with pytest.raises(ExportError, match=r"'ncnn' package.*edgeseg\[export-ncnn\]"):
        export("whatever.pt", format="ncnn")


def _copy(src: Path, dst: Path, *names):
    dst.mkdir(parents=True)
    for name in names:
        shutil.copy(src / name, dst / name)
    return dst


@needs_shared
def test_folder_without_metadata(fp32_folder, tmp_path):
    from edgeseg.errors import ModelLoadError
    from edgeseg.segmenter import Segmenter

    folder = _copy(fp32_folder.path, tmp_path / "bare_ncnn_model", "model.ncnn.param", "model.ncnn.bin")
    with pytest.raises(ModelLoadError, match="has no metadata.yaml"):
        Segmenter(folder)


@needs_shared
def test_param_without_bin(fp32_folder, tmp_path):
    from edgeseg.errors import ModelLoadError
    from edgeseg.segmenter import Segmenter

    folder = _copy(fp32_folder.path, tmp_path / "nobin_ncnn_model", "model.ncnn.param", "metadata.yaml")
    for path in (folder, folder / "model.ncnn.param"):
        with pytest.raises(ModelLoadError, match=r"has no weights: expected model\.ncnn\.bin"):
            Segmenter(path)


@needs_shared
def test_truncated_bin_and_bad_param(fp32_folder, tmp_path):
    pytest.importorskip("ncnn")
    from edgeseg.backends.ncnn import NcnnBackend
    from edgeseg.errors import ModelLoadError

    folder = _copy(fp32_folder.path, tmp_path / "cut_ncnn_model", "model.ncnn.param", "metadata.yaml")
    data = (fp32_folder.path / "model.ncnn.bin").read_bytes()
    (folder / "model.ncnn.bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match="cannot read the weights"):
        NcnnBackend(folder)
    (folder / "model.ncnn.param").write_text("not a param file\n")
    with pytest.raises(ModelLoadError, match="not an ncnn param file"):
        NcnnBackend(folder)
    empty = tmp_path / "empty_ncnn_model"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="holds no ncnn .param file"):
        NcnnBackend(empty)
    with pytest.raises(FileNotFoundError):
        NcnnBackend(tmp_path / "missing_ncnn_model")


@needs_shared
def test_options_are_checked(fp32_folder):
    ncnn = pytest.importorskip("ncnn")
    from edgeseg.backends.ncnn import NcnnBackend
    from edgeseg.errors import ModelLoadError

    with pytest.raises(ValueError, match="exported at 320x320"):
        NcnnBackend(fp32_folder.path, imgsz=640)
    with pytest.raises(ValueError, match="threads must be a positive int"):
        NcnnBackend(fp32_folder.path, threads=0)
    with pytest.raises(TypeError):
        NcnnBackend(fp32_folder.path, providers=["CPU"])
    if ncnn.get_gpu_count() == 0:
        with pytest.raises(ModelLoadError, match="no Vulkan GPU"):
            NcnnBackend(fp32_folder.path, vulkan=True)


ULTRALYTICS_METADATA = """\
description: Ultralytics YOLOv8n-seg model trained on coco.yaml
author: Ultralytics
date: '2025-06-01T10:00:00.000000'
version: 8.3.150
license: AGPL-3.0 License (https://ultralytics.com/license)
docs: https://docs.ultralytics.com
stride: 32
task: segment
batch: 1
imgsz:
- {imgsz}
- {imgsz}
names:
{names}
args:
  batch: 1
  half: false
  int8: false
channels: 3
"""


@needs_shared
def test_ultralytics_style_folder(fp32_folder, tmp_path):
    from edgeseg.backends import select_backend
    from edgeseg.backends.ncnn import NcnnBackend
    from edgeseg.segmenter import Segmenter

    folder = _copy(fp32_folder.path, tmp_path / "yolov8n-seg_ncnn_model", "model.ncnn.param", "model.ncnn.bin")
    (folder / "model_ncnn.py").write_text("# pnnx's test script, as Ultralytics leaves it\n")
    names = Segmenter(fp32_folder.path).names
    (folder / "metadata.yaml").write_text(
        ULTRALYTICS_METADATA.format(imgsz=IMGSZ, names="\n".join(f"  {i}: {n}" for i, n in names.items()))
    )
    assert select_backend(folder) is NcnnBackend
    segmenter = Segmenter(folder)
    assert segmenter.names == names
    assert segmenter.metadata.extras["author"] == "Ultralytics"
    image = _bus()
    _match(Segmenter(fp32_folder.path)(image), segmenter(image), box_px=1e-3)
