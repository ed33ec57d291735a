"""`edgeseg benchmark` / edgeseg.benchmark: real exports of yolov8n-seg-coco-dq.pt at 320, few runs.

ONNX end to end through the CLI with mAP on two coco8-seg images; OpenVINO and ncnn when their packages
are installed (skipped otherwise); a format that cannot be exported gives an error row, not a crash.
Runtime ~40-80 s on 2 cores.
"""

from __future__ import annotations

import json

import pytest

from edgeseg.benchmark import BenchmarkResult, FormatResult, benchmark, parse_formats
from shared_paths import SHARED

PT = SHARED / "models" / "yolov8n-seg-coco-dq.pt"
BUS = SHARED / "data" / "images" / "bus.jpg"
COCO8 = SHARED / "data" / "coco8-seg" / "coco8-seg.yaml"


def _has(*modules: str) -> bool:
    try:
        for m in modules:
            __import__(m)
        return True
    except ImportError:
        return False


needs_shared = pytest.mark.skipif(
    not (PT.exists() and BUS.exists() and COCO8.exists()), reason="shared models/images not available"
)
needs_onnx = pytest.mark.skipif(not _has("torch", "onnx", "onnxruntime"), reason="torch/onnx/onnxruntime missing")


def test_parse_formats():
    assert parse_formats("onnx, openvino:int8,ncnn") == [("onnx", "fp32"), ("openvino", "int8"), ("ncnn", "fp32")]
    assert parse_formats(["ONNX"]) == [("onnx", "fp32")]
    for bad, match in (
        ("onx", "unknown format"),
        ("onnx:int4", "unknown precision"),
        ("onnx,onnx", "twice"),
        ("", "no formats"),
        ("torch:int8", "fp32 only"),
    ):
        with pytest.raises(ValueError, match=match):
            parse_formats(bad)


def test_fastest_within_tolerance():
    rows = [
        FormatResult("onnx", total=50.0, mask_map50_95=0.350),
        FormatResult("openvino", precision="int8", total=20.0, mask_map50_95=0.330),  # -2 points
        FormatResult("openvino", total=30.0, mask_map50_95=0.346),  # -0.4 points
        FormatResult("ncnn", error="ImportError: no ncnn"),
    ]
    r = BenchmarkResult(
        model="m.pt",
        imgsz=(640, 640),
        source="bus.jpg",
        runs=5,
        threads=None,
        rows=rows,
        data="d.yaml",
        reference="onnx",
        reference_mask_map50_95=0.350,
    )
    assert r.fastest.name == "openvino"
    assert "openvino (30.0 ms" in r.summary_line()
    r.reference_mask_map50_95 = None
    assert r.fastest.name == "openvino:int8"


@needs_shared
@needs_onnx
def test_cli_benchmark_onnx(tmp_path, capsys):
    from edgeseg.cli import main

    out = tmp_path / "bench.json"
    code = main(
        [
            "benchmark",
            "--model",
            str(PT),
            "--formats",
            "onnx",
            "--imgsz",
            "320",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--data",
            str(COCO8),
            "--data-indices",
            "0:2",
            "--workdir",
            str(tmp_path / "w"),
            "--json",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "infer ms" in text and "pre+post" in text
    assert "fastest format within 1 point of the fp32 mask mAP50-95" in text and ": onnx (" in text
    res = json.loads(out.read_text())
    row = res["rows"][0]
    assert row["name"] == "onnx" and row["error"] is None and res["data_indices"] == "0:2"
    assert row["inference"] > 0 and row["preprocess"] > 0 and row["postprocess"] > 0
    assert row["total"] >= row["inference"] and row["detections"] >= 4  # bus.jpg at 320
    assert 13 < row["size_mb"] < 15 and row["load_s"] > 0 and row["process_cpu"] > 0
    assert 0 < row["mask_map50_95"] < row["mask_map50"] <= 1 and res["fastest"] == "onnx"
    assert (tmp_path / "w" / "yolov8n-seg-coco-dq.onnx").exists()  # kept in --workdir, reused next time


@needs_shared
@needs_onnx
def test_benchmark_openvino_ncnn_and_error_row(tmp_path):
    formats = []
    if _has("openvino"):
        formats.append("openvino")
    if _has("ncnn", "pnnx"):
        formats.append("ncnn")
    formats.append("ncnn:int8")  # ncnn has no int8 export: an error row, the rest still runs
    lines = []
    res = benchmark(PT, formats, imgsz=160, runs=2, warmup=1, source=BUS, print_fn=lines.append, workdir=tmp_path)
    by_name = {r.name: r for r in res.rows}
    assert by_name["ncnn:int8"].error is not None
    for name in formats[:-1]:
        r = by_name[name]
        assert r.error is None, r.error
        assert r.inference > 0 and r.size_mb > 1 and r.detections >= 1
    table = res.table()
    assert "ncnn:int8" in table and "error" in table and "fastest format" in table
    if formats[:-1]:
        assert res.fastest is not None and res.fastest.name in formats[:-1]


@needs_shared
@needs_onnx
def test_conf_sets_the_timed_threshold(tmp_path):
    rows = [
        benchmark(PT, "onnx", imgsz=320, runs=1, warmup=0, source=BUS, print_fn=None, workdir=tmp_path, conf=c).rows[0]
        for c in (0.5, 0.05)
    ]
    assert rows[0].error is None and rows[1].error is None
    assert rows[1].detections > rows[0].detections >= 1
    with pytest.raises(ValueError, match="conf"):
        benchmark(PT, "onnx", imgsz=320, runs=1, source=BUS, print_fn=None, workdir=tmp_path, conf=1.5)


@pytest.mark.parametrize(
    ("name", "backend", "precision", "module"),
    [
        ("yolov8n-seg-coco-dq.onnx", "onnxruntime", "fp32", "onnxruntime"),
        ("yolo11n-seg_full_integer_quant.tflite", "tflite", "int8", "ai_edge_litert"),
    ],
)
def test_an_exported_model_is_named_by_its_backend_and_precision(name, backend, precision, module):
    """An exported model is benchmarked as it is, once, whatever --formats says (it once showed a .tflite
    file as an 'onnx' row, the default format)."""
    model = SHARED / "models" / name
    if not (model.exists() and BUS.exists()):
        pytest.skip("shared models/images not available")
    pytest.importorskip(module)
    res = benchmark(model, "onnx,openvino", imgsz=640, runs=1, warmup=0, source=BUS, print_fn=None, threads=2)
    assert len(res.rows) == 1
    row = res.rows[0]
    assert row.error is None and (row.format, row.precision) == (backend, precision)
    assert row.path == str(model) and row.export_s is None and row.detections >= 1
