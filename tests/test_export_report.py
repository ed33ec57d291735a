"""Export accuracy report (edgeseg.exporters.report) and the val image subset it relies on.

Real models only: yolov8n-seg-coco-dq.pt exported to ONNX at 320 (a few seconds), and the shared
yolov8n-seg_int8.onnx (int8 weights, activations quantised at run time) as a genuinely degraded export:
on coco8-seg at 320 its mask mAP50-95 is 32.10 against 33.87 for the fp32 export (-1.77 points; on
coco128-seg images 64-127: 28.77 vs 29.96, -1.19), so the report must warn loudly.
Runtime ~30-60 s on 2 cores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeseg.exporters.report import (
    build_report,
    format_report,
    guess_precision,
    model_files,
    model_size,
    parse_indices,
    report_path,
    write_report,
)
from edgeseg.val.data import select_images
from shared_paths import SHARED

PT = SHARED / "models" / "yolov8n-seg-coco-dq.pt"
INT8 = SHARED / "models" / "yolov8n-seg_int8.onnx"
BUS = SHARED / "data" / "images" / "bus.jpg"
ZIDANE = SHARED / "data" / "images" / "zidane.jpg"
COCO8 = SHARED / "data" / "coco8-seg" / "coco8-seg.yaml"

needs_shared = pytest.mark.skipif(
    not (PT.exists() and INT8.exists() and BUS.exists() and COCO8.exists()), reason="shared models/images not available"
)


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


needs_export = pytest.mark.skipif(
    not (_has("torch") and _has("onnx") and _has("onnxruntime")), reason="torch/onnx/onnxruntime not installed"
)


# ---- small pieces ---------------------------------------------------------------------------------


def test_select_images():
    files = [Path(f"{i:03d}.jpg") for i in range(10)]
    assert select_images(files, None) == files
    assert select_images(files, slice(6, 10)) == files[6:]
    assert select_images(files, range(2)) == files[:2]
    assert select_images(files, [3, -1]) == [files[3], files[9]]
    for bad in ([10], [1, 1], slice(20, 30), ["a"], 5):
        with pytest.raises(ValueError):
            select_images(files, bad)


def test_parse_indices_and_paths(tmp_path):
    assert parse_indices("64:128") == slice(64, 128)
    assert parse_indices("1,5,7") == [1, 5, 7]
    assert parse_indices(None) is None
    with pytest.raises(ValueError, match="64:128"):
        parse_indices("a:b")
    (tmp_path / "m.xml").write_bytes(b"x" * 10)
    (tmp_path / "m.bin").write_bytes(b"x" * 90)
    assert model_size(tmp_path / "m.xml") == 100 and len(model_files(tmp_path / "m.xml")) == 2
    assert report_path(tmp_path / "m.onnx") == tmp_path / "m_export_report.json"
    folder = tmp_path / "m_openvino_model"
    folder.mkdir()
    (folder / "m.xml").write_bytes(b"<x/>")
    assert report_path(folder) == folder / "export_report.json"
    assert guess_precision(tmp_path / "m_int8.onnx") == "int8"


def test_guess_precision_reads_tflite_metadata(tmp_path):
    """A .tflite's embedded metadata names its precision whatever the file is called."""
    from edgeseg.exporters.tflite import append_metadata

    body = b"\x1c\x00\x00\x00TFL3" + b"\x00" * 56
    for meta, want in (
        ({"precision": "int8"}, "int8"),
        ({"args": {"int8": True}}, "int8"),
        ({"args": {"half": True, "int8": False}}, "fp16"),
        ({"names": {0: "a"}}, "fp32"),
    ):
        path = tmp_path / f"model_{want}_{len(meta)}.tflite".replace("int8", "a").replace("fp16", "b")
        path.write_bytes(append_metadata(body, meta))
        assert guess_precision(path) == want, meta
    with pytest.raises(FileNotFoundError):
        model_size(tmp_path / "missing.onnx")
    with pytest.raises(FileNotFoundError):
        write_report({"exported": {"path": "x"}}, tmp_path / "nope" / "r.json")


# ---- real exports ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_export(tmp_path_factory):
    """`edgeseg export` to ONNX at 320: the export plus its automatic report (bus.jpg + zidane.jpg)."""
    if not (PT.exists() and BUS.exists()):
        pytest.skip("shared models/images not available")
    if not (_has("torch") and _has("onnx") and _has("onnxruntime")):
        pytest.skip("torch/onnx/onnxruntime not installed")
    from edgeseg.cli import main

    out = tmp_path_factory.mktemp("export") / "dq320.onnx"
    assert main(["export", "--model", str(PT), "--imgsz", "320", "--output", str(out)]) == 0
    return out


@needs_shared
@needs_export
def test_export_writes_report(cli_export, capsys):
    path = report_path(cli_export)
    assert path.name == "dq320_export_report.json"
    report = json.loads(path.read_text())
    assert report["exported"]["format"] == "onnx" and report["exported"]["precision"] == "fp32"
    assert report["exported"]["input"] == [320, 320] and report["reference"]["backend"] == "torch"
    assert report["exported"]["size_bytes"] == os.path.getsize(cli_export)
    assert [Path(p).name for p in report["images"]] == ["bus.jpg", "zidane.jpg"]
    err = report["output_error"]
    assert set(err) == {"output0", "output0.boxes", "output0.scores", "output0.mask_coefs", "output1"}
    assert err["output0"]["shape"] == [116, 2100] and err["output1"]["shape"] == [32, 80, 80]
    assert err["output0.boxes"]["max_abs"] < 1e-2  # fp32 ONNX vs torch: float rounding only
    assert err["output0.scores"]["max_abs"] < 1e-4 and err["output1"]["max_abs"] < 1e-4
    a = report["agreement"]
    assert a["reference_detections"] >= 5  # bus.jpg: 4 persons + the bus, zidane.jpg: more
    assert a["loss_points"]["mask_map50_95"] < 0.5 and a["loss_points"]["box_map50_95"] < 0.5
    assert a["mask"]["map50_95"] > 0.9
    lat = report["latency_ms"]["exported"]
    assert lat["runs"] >= 1 and lat["inference"] > 0 and lat["preprocess"] > 0 and lat["postprocess"] > 0
    assert report["val"] is None and report["warnings"] == []
    assert "WARNING" not in format_report(report)


@needs_shared
@needs_export
def test_no_report_flag(tmp_path):
    from edgeseg.cli import main

    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(PT), "--imgsz", "96", "--output", str(out), "--no-report"]) == 0
    assert out.exists() and not report_path(out).exists()


@needs_shared
@needs_export
def test_degraded_int8_export_warns_loudly(cli_export, tmp_path):
    # The shared int8-weight ONNX against an fp32 export of the same weights at the same size (320).
    report = build_report(INT8, cli_export, images=[BUS], data=COCO8, runs=1, warmup=0)
    assert report["exported"]["precision"] == "int8" and report["reference"]["backend"] == "onnxruntime"
    v = report["val"]
    assert v["images"] == 4 and v["imgsz"] == [320, 320]
    assert v["drop_points"]["mask_map50_95"] > 1.0, v  # measured: 1.77
    assert abs(100 * v["reference"]["mask"]["map50_95"] - 33.87) < 0.5
    assert len(report["warnings"]) == 1 and "int8 export loses" in report["warnings"][0]
    text = format_report(report)
    assert text.count("WARNING") >= 3 and "!!!!!!!!" in text
    # int8 noise is visible in the raw outputs, much larger than fp32 rounding
    assert report["output_error"]["output1"]["max_abs"] > 0.05
    written = write_report(report, beside=tmp_path / "int8.onnx")
    assert written == tmp_path / "int8_export_report.json"
    assert json.loads(written.read_text())["warnings"] == report["warnings"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


@needs_shared
@needs_export
def test_validate_image_subset(cli_export):
    from edgeseg.val import validate

    r = validate(cli_export, COCO8, imgsz=320, indices=[0, 2], progress=False)
    assert r.n_images == 2
    with pytest.raises(ValueError, match="out of range"):
        validate(cli_export, COCO8, imgsz=320, indices=[7], progress=False)


@needs_shared
@needs_export
def test_report_input_checks(cli_export):
    with pytest.raises(ValueError, match="at least one image"):
        build_report(cli_export, PT, images=[], imgsz=320)
    with pytest.raises(ValueError, match="precision"):
        build_report(cli_export, PT, images=[BUS], imgsz=320, precision="int4")
    with pytest.raises(FileNotFoundError):
        build_report(cli_export.with_name("missing.onnx"), PT, images=[BUS], imgsz=320)
    # an array image works too, and different input sizes skip the output error with a note
    img = np.full((240, 320, 3), 114, np.uint8)
    report = build_report(cli_export, PT, images=[img], imgsz=256, runs=1, warmup=0)
    assert report["output_error"] is None and "input sizes differ" in report["notes"][0]
