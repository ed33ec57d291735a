"""The scripts in examples/ run as a user runs them (a subprocess of this Python) on inputs that exist here:
the generated demo clip, a GStreamer test pattern, a local RTSP server, with the built-in demo model, and stop
by themselves (``--max-frames``). The systemd unit is checked with ``systemd-analyze verify`` where present,
and its ``edgeseg run`` command line is run on the demo clip."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edgeseg.errors import SourceError
from edgeseg.sources import gstreamer_route
from live_servers import RtspServer, rtsp_python

cv2 = pytest.importorskip("cv2")  # the examples decode, draw and encode with OpenCV

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 180  # seconds for one script run (two cores shared with other tests)


@pytest.fixture(scope="module")
def demo_model() -> Path:
    pytest.importorskip("onnxruntime")
    from edgeseg.assets import demo_model_path

    try:
        return demo_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def run_script(name: str, *args: str, cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Process:
    """A script running in the background, its stdout lines collected by a thread."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matching {pattern!r}; output so far:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.output)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# ---- picam.py --------------------------------------------------------------------------------------------------


def test_picam_on_the_demo_clip(demo_model, tmp_path):
    result = run_script("picam.py", "--source", "demo", "--max-frames", "5", "--save", "out/picam.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frames = re.findall(r"^frame (\d+): (\d+) object\(s\): (.*?)  ([\d.]+) FPS", result.stdout, re.M)
    assert [int(f[0]) for f in frames] == list(range(5))
    assert all(int(n) > 0 and "nothing" not in listed for _, n, listed, _fps in frames)  # the shapes are found
    assert "done: 5 frame(s)" in result.stdout
    video = cv2.VideoCapture(str(tmp_path / "out" / "picam.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    video.release()


def test_picam_without_picamera2_says_how_to_install_it(demo_model, tmp_path):
    import importlib.util

    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here")
    result = run_script("picam.py", "--max-frames", "2", cwd=tmp_path)
    assert result.returncode == 2
    assert "python3-picamera2" in result.stderr and "Traceback" not in result.stderr


# ---- jetson_csi.py -----------------------------------------------------------------------------------------------


def _gstreamer_or_skip() -> str:
    try:
        route, _why = gstreamer_route()
    except SourceError as exc:
        pytest.skip(f"no GStreamer route here: {exc}")
    return route


def test_jetson_csi_with_a_test_pattern_pipeline(demo_model, tmp_path):
    route = _gstreamer_or_skip()
    line = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! appsink"
    result = run_script("jetson_csi.py", "--pipeline", line, "--max-frames", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"GStreamer route: {route}: " in result.stdout and f"pipeline: {line}" in result.stdout
    assert len(re.findall(r"^frame \d+: ", result.stdout, re.M)) == 5 and "done: 5 frame(s)" in result.stdout


def test_jetson_csi_default_pipeline_without_a_jetson(demo_model, tmp_path):
    if _gstreamer_or_skip() != "pygobject":
        pytest.skip("the message checked here is the PyGObject route's")
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    if Gst.ElementFactory.find("nvarguscamerasrc") is not None:
        pytest.skip("this machine has nvarguscamerasrc")
    result = run_script("jetson_csi.py", "--max-frames", "2", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert 'no element "nvarguscamerasrc"' in result.stderr
    assert (
        "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1" in result.stdout
    )


# ---- multi_rtsp_jsonl.py -------------------------------------------------------------------------------------------


def _json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_multi_source_jsonl_on_two_demo_clips(demo_model, tmp_path):
    result = run_script("multi_rtsp_jsonl.py", "--max-frames", "10", "--json", "out/frames.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = _json_lines(tmp_path / "out" / "frames.jsonl")
    assert len(records) == 10
    assert {r["source"] for r in records} == {"demo [0]", "demo [1]"}
    for r in records:
        assert set(r) >= {"source", "source_id", "frame", "time", "latency_ms", "image_shape", "detections"}
        assert r["image_shape"] == [360, 640] and r["detections"]
        assert {"name", "confidence", "box"} <= set(r["detections"][0])
    by_source = {k: [r["frame"] for r in records if r["source_id"] == k] for k in (0, 1)}
    assert all(frames == sorted(frames) and frames for frames in by_source.values())  # in order per source
    assert "10 frame(s) in" in result.stdout
    assert re.search(r"^  \[0\] demo \[0\]: \d+ frame\(s\), \d+ object\(s\)", result.stdout, re.M)
    assert re.search(r"^  \[1\] demo \[1\]: \d+ frame\(s\)", result.stdout, re.M)


@pytest.fixture(scope="module")
def rtsp_interpreter() -> str:
    python = rtsp_python()
    if python is None:
        pytest.skip(
            "no Python with GStreamer's RTSP server (apt: gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi)"
        )
    return python


def test_multi_rtsp_jsonl_reconnects_to_a_restarted_camera(demo_model, rtsp_interpreter, tmp_path):
    """Two cameras on a real (local) RTSP server; the server goes away and comes back: the script reconnects."""
    server = RtspServer(rtsp_interpreter)
    server.start(320, 240)
    url = server.url.replace("rtsp://", "rtsp://viewer:secret@")  # the password must not reach the output
    out = tmp_path / "cams.jsonl"
    args = ["--json", str(out), "--max-frames", "60", "--read-timeout", "5", "--backoff", "0.2", url, url]
    script = Process([sys.executable, str(EXAMPLES / "multi_rtsp_jsonl.py"), *args], tmp_path)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and (not out.exists() or len(out.read_text().splitlines()) < 10):
            assert script.proc.poll() is None, script.text
            time.sleep(0.2)
        assert len(out.read_text().splitlines()) >= 10, script.text
        server.kill()  # the camera goes away ...
        time.sleep(1.5)
        server.start(320, 240)  # ... and comes back on the same address
        script.proc.wait(timeout=TIMEOUT)
    finally:
        script.stop()
        server.kill()
    assert script.proc.returncode == 0, script.text
    records = _json_lines(out)
    assert len(records) == 60
    assert {r["source_id"] for r in records} == {0, 1} and all(r["image_shape"] == [240, 320] for r in records)
    assert "secret" not in out.read_text() and "secret" not in script.text
    assert all(r["source"].startswith("rtsp://***@127.0.0.1") for r in records)
    reconnects = [int(n) for n in re.findall(r"(\d+) reconnect\(s\)", script.text)]
    assert len(reconnects) == 2 and sum(reconnects) >= 1, script.text


# ---- web_app.py ----------------------------------------------------------------------------------------------------


def _read_part(response, boundary: bytes) -> tuple[dict[str, str], bytes]:
    """One part of a multipart/x-mixed-replace body: its headers and its payload."""
    line = response.readline()
    while line.strip() == b"":
        line = response.readline()
    assert line.strip() == b"--" + boundary, line
    headers = {}
    while True:
        line = response.readline().strip()
        if not line:
            break
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    return headers, response.read(int(headers["content-length"]))


def test_web_app_serves_stats_and_mjpeg(demo_model, tmp_path):
    app = Process(
        [sys.executable, str(EXAMPLES / "web_app.py"), "--port", "0", "--max-frames", "1000", "--linger", "60"],
        tmp_path,
    )
    try:
        base = app.wait_for_line(r"serving on (http://127\.0\.0\.1:\d+/)", timeout=60).group(1)
        stats: dict = {}
        end = time.monotonic() + 60
        while time.monotonic() < end:
            with urllib.request.urlopen(base + "stats", timeout=10) as response:
                assert response.headers["Content-Type"] == "application/json"
                stats = json.load(response)
            if stats["frames"] > 0:
                break
            time.sleep(0.2)
        (source,) = stats["sources"]
        assert source["source"] == "demo" and source["frames"] >= 1 and source["objects"] >= 1
        assert sum(source["classes"].values()) == source["objects"]
        with urllib.request.urlopen(base + "stream.mjpg?source=0", timeout=10) as response:
            content_type = response.headers["Content-Type"]
            assert content_type.startswith("multipart/x-mixed-replace; boundary=")
            boundary = content_type.split("boundary=")[1].encode()
            for _ in range(2):
                headers, jpeg = _read_part(response, boundary)
                assert headers["content-type"] == "image/jpeg"
                image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                assert image is not None and image.shape == (360, 640, 3)
        with urllib.request.urlopen(base, timeout=10) as response:
            page = response.read().decode()
        assert "/stream.mjpg?source=0" in page and "/stats" in page
        for missing in ("nothing-here", "stream.mjpg?source=5"):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(base + missing, timeout=10)
            assert info.value.code == 404
    finally:
        rc = app.stop()  # SIGTERM: a clean stop
    assert rc == 0, app.text
    assert re.search(r"^stopped \(.*\) after \d+ frame\(s\)", app.text, re.M)


def test_web_app_stops_by_itself(demo_model, tmp_path):
    result = run_script("web_app.py", "--port", "0", "--max-frames", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "stopped (--max-frames 3 reached) after 3 frame(s)" in result.stdout


# ---- edgeseg.service -------------------------------------------------------------------------------------------------


def _unit() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (EXAMPLES / "edgeseg.service").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_service_unit_settings():
    unit = _unit()
    assert unit["Restart"] == ["always"] and unit["User"] == ["edgeseg"] and unit["SupplementaryGroups"] == ["video"]
    assert unit["WorkingDirectory"] == ["/var/lib/edgeseg"] and unit["WantedBy"] == ["multi-user.target"]
    assert "VIRTUAL_ENV=/opt/edgeseg/venv" in unit["Environment"]
    assert any(e.startswith("PATH=/opt/edgeseg/venv/bin:") for e in unit["Environment"])
    (command,) = unit["ExecStart"]
    assert command.startswith("/opt/edgeseg/venv/bin/edgeseg run --model ")
    assert "--source ${CAMERA_URL}" in command and "--json /var/lib/edgeseg/frames.jsonl" in command
    values = [value for values in unit.values() for value in values]
    assert not any(re.search(r"://[^/\s]*:[^/\s]*@", value) for value in values)  # no password in the unit itself


def test_service_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "edgeseg.service"
    shutil.copy(EXAMPLES / "edgeseg.service", unit)
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line  # /opt/edgeseg/venv does not exist here
    ]
    assert complaints == []


def test_service_command_line_runs_on_the_demo_clip(demo_model, tmp_path):
    """The unit's ExecStart, with the demo model, the demo clip and a file here, is a valid edgeseg run."""
    (command,) = _unit()["ExecStart"]
    argv = shlex.split(command)
    assert argv[:2] == ["/opt/edgeseg/venv/bin/edgeseg", "run"]
    replaced = {"--model": str(demo_model), "--source": "demo", "--json": str(tmp_path / "frames.jsonl")}
    args = [sys.executable, "-m", "edgeseg", "run"]
    rest = argv[2:]
    for flag, value in zip(rest[::2], rest[1::2]):
        args += [flag, replaced.get(flag, value)]
    result = subprocess.run(
        [*args, "--max-frames", "3"], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert len(_json_lines(tmp_path / "frames.jsonl")) == 3


def test_service_keeps_the_previous_runs_lines(tmp_path):
    """ExecStartPre (``%%`` is systemd's literal ``%``) moves a non-empty frames.jsonl aside before a start."""
    (pre,) = _unit()["ExecStartPre"]
    argv = shlex.split(pre.replace("%%", "%"))
    (tmp_path / "frames.jsonl").write_text('{"frame": 0}\n')
    subprocess.run(argv, cwd=tmp_path, check=True, timeout=30)
    (kept,) = tmp_path.glob("frames-*.jsonl")
    assert re.fullmatch(r"frames-\d{8}-\d{6}\.jsonl", kept.name) and kept.read_text() == '{"frame": 0}\n'
    assert not (tmp_path / "frames.jsonl").exists()
    subprocess.run(argv, cwd=tmp_path, check=True, timeout=30)  # nothing to move: nothing happens
    assert len(list(tmp_path.glob("frames*"))) == 1
