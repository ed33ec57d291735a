"""The edgeseg command, run as users run it: `python -m edgeseg ...` in a subprocess."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from shared_paths import SHARED

MODEL = SHARED / "models" / "yolov8n-seg_int8.onnx"
BUS = SHARED / "data" / "images" / "bus.jpg"
VIDEO = SHARED / "data" / "video" / "people_movement.mp4"

needs_shared = pytest.mark.skipif(
    not (MODEL.exists() and BUS.exists() and VIDEO.exists()), reason="shared models/data not available"
)


def edgeseg(*args, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "edgeseg", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@needs_shared
def test_predict_image_writes_annotated_image_and_json(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "pred"
    result = edgeseg("predict", "--model", MODEL, "--source", BUS, "--save", out, "--json")
    assert result.returncode == 0, result.stderr
    assert "bus.jpg: 3 person, 1 bus" in result.stdout
    annotated = cv2.imread(str(out / "bus.jpg"))
    original = cv2.imread(str(BUS))
    assert annotated.shape == original.shape
    assert np.abs(annotated.astype(int) - original).mean() > 5  # something was drawn
    record = json.loads((out / "bus.json").read_text())
    assert record["image_shape"] == [1080, 810]
    assert set(record["timings"]) == {"preprocess", "inference", "postprocess"}
    rows = record["detections"]
    assert sorted(r["name"] for r in rows) == ["bus", "person", "person", "person"]
    for row in rows:
        assert 0.25 < row["confidence"] <= 1 and len(row["box"]) == 4
        polygon = np.array(row["polygons"][0])
        assert polygon.ndim == 2 and polygon.shape[1] == 2 and len(polygon) >= 10
        x1, _y1, x2, _y2 = row["box"]
        assert x1 - 2 <= polygon[:, 0].min() and polygon[:, 0].max() <= x2 + 2


@needs_shared
def test_run_on_video_prints_fps_and_saves_mp4(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "out.mp4"
    result = edgeseg(
        "run", "--backend", "onnxruntime", "--model", MODEL, "--source", VIDEO, "--max-frames", 20, "--save", out
    )
    assert result.returncode == 0, result.stderr
    summary = [line for line in result.stdout.splitlines() if line.startswith("summary:")]
    assert summary and "20 frame(s)" in summary[0] and "FPS" in summary[0]
    assert "inf" in summary[0] and "max-frames" in summary[0]
    cap = cv2.VideoCapture(str(out))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == 20


@needs_shared
def test_info(tmp_path):
    pytest.importorskip("onnxruntime")
    result = edgeseg("info", MODEL)
    assert result.returncode == 0, result.stderr
    for text in ("onnxruntime", "segment", "[1, 3, 320, 320]", "[1, 116, 2100]", "80: person"):
        assert text in result.stdout
    as_json = json.loads(edgeseg("info", MODEL, "--json").stdout)
    assert as_json["classes"] == 80 and as_json["output_layout"]["nm"] == 32


def test_unknown_flag_suggests_closest():
    result = edgeseg("predict", "--model", "m.onnx", "--source", "x.jpg", "--conff", "0.3")
    assert result.returncode == 2
    assert "--conff" in result.stderr and "did you mean --conf?" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_suggests_closest():
    result = edgeseg("predcit")
    assert result.returncode == 2 and "did you mean 'predict'?" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--conf", "1.5"], "between 0 and 1"),
        (["--conf", "abc"], "number"),
        (["--max-det", "0"], "positive"),
        (["--imgsz", "big"], "SIZE"),
    ],
)
def test_bad_values_exit_2(args, message):
    result = edgeseg("predict", "--model", "m.onnx", "--source", "x.jpg", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_runtime_errors_are_one_line_exit_1(tmp_path):
    result = edgeseg("predict", "--model", tmp_path / "missing.onnx", "--source", "x.jpg")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("edgeseg: error: model not found")
    assert "Traceback" not in result.stderr
    fake = tmp_path / "x.onnx"
    fake.write_text("not a model")
    result = edgeseg("info", fake)
    assert result.returncode == 1 and "cannot load" in result.stderr and "Traceback" not in result.stderr
    result = edgeseg("info", fake, "--backend", "tensorrtt")
    assert result.returncode == 1 and "unknown backend" in result.stderr


@needs_shared
def test_missing_source_exit_1(tmp_path):
    pytest.importorskip("onnxruntime")
    result = edgeseg("predict", "--model", MODEL, "--source", tmp_path / "nothing.jpg")
    assert result.returncode == 1 and "source not found" in result.stderr


def test_help_lists_commands():
    result = edgeseg("--help")
    assert result.returncode == 0
    for command in ("predict", "run", "info"):
        assert command in result.stdout


@needs_shared
def test_run_ctrl_c_prints_summary_and_exits_0():
    pytest.importorskip("onnxruntime")
    import signal
    import time

    # restore Python's SIGINT handler in case this test runs under a shell that ignores SIGINT
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from edgeseg.cli import main; sys.exit(main())"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", "--model", str(MODEL), "--source", str(VIDEO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("edgeseg run:")  # model loaded, loop starting
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "summary:" in out and "interrupted" in out and "Traceback" not in err
