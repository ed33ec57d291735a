"""Device sources: the Raspberry Pi camera adapter (picamera2) and GStreamer launch lines.

The Pi camera cannot exist on this machine: its adapter is tested against a stand-in object that implements
exactly the documented picamera2 calls the adapter makes (``Picamera2(n)``, ``create_video_configuration``,
``configure``, ``start``, ``capture_array("main")``, ``stop``, ``close``) and records them. That checks what
the adapter asks of picamera2 and what it does with the answers, not picamera2 or a camera.

GStreamer runs for real: Debian's GStreamer through PyGObject's appsink (the pip cv2 has no GStreamer
backend), on ``videotestsrc`` and on a small mp4 written here; skipped when ``gi``/``Gst`` cannot be imported.
The OpenCV route is tested only where a cv2 with GStreamer is installed.
"""

from __future__ import annotations

import sys
import threading
import time
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

from edgeseg.errors import SourceError
from edgeseg.sources import LiveOptions, LiveSource, gstreamer_route, open_source
from edgeseg.sources.gstreamer import open_gstreamer
from edgeseg.sources.picamera import open_picamera, picamera_number

# ---- the Pi camera, against a stand-in for picamera2 ------------------------------------------------------


class StandInPicamera2:
    """Implements only the documented picamera2 calls the adapter uses, records them, and delivers frames the
    way a camera does: ``capture_array`` blocks until the next frame at the configured frame rate. A frame is
    (H, W, 3) uint8 in "RGB888" memory order (blue, green, red); pixel values encode the frame number."""

    cameras = 1  # Picamera2(n) for n >= cameras raises IndexError, as picamera2 does for a missing camera
    instances: ClassVar[list[StandInPicamera2]] = []

    def __init__(self, camera_num: int = 0) -> None:
        if camera_num >= self.cameras:
            raise IndexError("list index out of range")  # picamera2's own error for a camera it does not list
        self.camera_num = camera_num
        self.calls: list[str] = []
        self.config: dict[str, Any] | None = None
        self.captured = 0
        self.lock = threading.Lock()
        self.instances.append(self)

    def create_video_configuration(
        self, main: dict[str, Any], controls: dict[str, Any], buffer_count: int
    ) -> dict[str, Any]:
        self.calls.append("create_video_configuration")
        return {"main": dict(main), "controls": dict(controls), "buffer_count": buffer_count}

    def configure(self, config: dict[str, Any]) -> None:
        self.calls.append("configure")
        self.config = config

    def start(self) -> None:
        self.calls.append("start")

    def capture_array(self, name: str = "main") -> np.ndarray:
        assert name == "main" and self.config is not None and "start" in self.calls
        rate = self.config["controls"].get("FrameRate", 30.0)
        time.sleep(1.0 / rate)
        with self.lock:
            k = self.captured
            self.captured += 1
        width, height = self.config["main"]["size"]
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0], frame[..., 1], frame[..., 2] = 10, 20, k % 256  # blue, green, red = frame number
        return frame

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def picamera2_stand_in() -> Any:
    StandInPicamera2.instances = []
    return SimpleNamespace(Picamera2=StandInPicamera2)


def _wait_for(condition: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_picamera_adapter_against_object_implementing_documented_picamera2_calls(picamera2_stand_in):
    options = LiveOptions(size=(320, 240), fps=60.0, read_timeout=5.0)
    name = "Pi camera 0"
    source = LiveSource(name, "picamera", lambda: open_picamera(0, name, options, module=picamera2_stand_in), options)
    (camera,) = StandInPicamera2.instances
    assert camera.calls == ["create_video_configuration", "configure", "start"]
    assert camera.config == {
        "main": {"size": (320, 240), "format": "RGB888"},  # RGB888 is blue, green, red in memory: BGR
        "controls": {"FrameRate": 60.0},
        "buffer_count": 4,
    }
    assert source.fps == 60.0 and source.is_live and source.kind == "picamera"
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == 8:
            break
    source.close()
    assert [f.index for f in frames] == list(range(8)) and {f.source for f in frames} == {name}
    for f in frames:
        assert f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8
        assert f.image[0, 0, 0] == 10 and f.image[0, 0, 1] == 20  # no channel swap on the way
    numbers = [int(f.image[0, 0, 2]) for f in frames]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)  # in capture order
    assert numbers[-1] + 1 - len(frames) <= source.dropped  # a frame skipped is a frame counted
    assert _wait_for(lambda: "close" in camera.calls)  # the reader thread releases the camera
    assert camera.calls.count("stop") == 1 and camera.calls.count("close") == 1
    assert camera.calls.index("stop") < camera.calls.index("close")


def test_picamera_closed_before_reading_releases_once(picamera2_stand_in):
    options = LiveOptions()
    source = LiveSource(
        "Pi camera 0", "picamera", lambda: open_picamera(0, "Pi camera 0", options, module=picamera2_stand_in)
    )
    source.close()
    source.close()
    (camera,) = StandInPicamera2.instances
    assert camera.calls == ["create_video_configuration", "configure", "start", "stop", "close"]
    assert camera.config["main"]["size"] == (1280, 720) and camera.config["controls"] == {}  # the defaults
    assert list(source) == []


def test_picamera_missing_camera_is_a_source_error(picamera2_stand_in):
    options = LiveOptions()
    with pytest.raises(SourceError, match="cannot open Pi camera 1: list index out of range"):
        LiveSource(
            "Pi camera 1", "picamera", lambda: open_picamera(1, "Pi camera 1", options, module=picamera2_stand_in)
        )
    assert StandInPicamera2.instances == []


def test_picamera_that_cannot_be_configured_is_closed(picamera2_stand_in):
    class Unconfigurable(StandInPicamera2):
        def configure(self, config: dict[str, Any]) -> None:
            super().configure(config)
            raise RuntimeError("size not supported")

    module = SimpleNamespace(Picamera2=Unconfigurable)
    with pytest.raises(SourceError, match="cannot start Pi camera 0: size not supported"):
        open_picamera(0, "Pi camera 0", LiveOptions(size=(99999, 1)), module=module)
    (camera,) = StandInPicamera2.instances
    assert camera.calls[-1] == "close" and "start" not in camera.calls


def test_picam_without_picamera2_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 -> ImportError, installed or not
    with pytest.raises(SourceError) as info:
        open_source("picam")
    message = str(info.value)
    assert "python3-picamera2" in message and "--system-site-packages" in message and "Pi camera 0" in message


def test_picamera_number():
    assert picamera_number("picam") == 0
    assert picamera_number(" PICAM ") == 0
    assert picamera_number("picam:1") == 1
    assert picamera_number("picamera.mp4") is None
    assert picamera_number("0") is None
    with pytest.raises(ValueError, match="picam:N"):
        picamera_number("picam:x")
    with pytest.raises(ValueError, match="picam:N"):
        open_source("picam:x")


# ---- GStreamer ----------------------------------------------------------------------------------------------


def _cv2_has_gstreamer() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return bool(cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER))


def _need_pygobject() -> None:
    try:
        gstreamer_route("pygobject")
    except SourceError as exc:
        pytest.skip(f"GStreamer through PyGObject is not available here: {exc}")


TEST_LINE = "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! appsink"
OPTIONS = LiveOptions(read_timeout=5.0, reconnect=0)


def _mp4(path, frames: int = 20, fps: float = 15.0, size=(64, 48), images=None):
    cv2 = pytest.importorskip("cv2")  # writes the file; GStreamer decodes it
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(images[i] if images is not None else np.full((size[1], size[0], 3), i * 10, np.uint8))
    writer.release()
    return path


def test_gstreamer_route_here():
    if _cv2_has_gstreamer():
        pytest.skip("this cv2 has a GStreamer backend: the route is opencv (tested below)")
    _need_pygobject()
    route, why = gstreamer_route()
    assert route == "pygobject" and "PyGObject" in why
    try:
        import cv2
    except ImportError:
        because = "no cv2 is installed"
    else:
        because = f"cv2 {cv2.__version__} was built without GStreamer"
    assert because in why
    with pytest.raises(SourceError, match=f"through OpenCV is not available.*{because}"):
        gstreamer_route("opencv")
    with pytest.raises(SourceError, match="through OpenCV is not available"):
        open_gstreamer(TEST_LINE, "test", OPTIONS, route="opencv")
    with pytest.raises(ValueError, match="route must be one of"):
        gstreamer_route("ffmpeg")


def test_gstreamer_videotestsrc_frames_then_end_of_stream():
    _need_pygobject()
    source = open_source(f"gst:{TEST_LINE}", live=OPTIONS)
    assert source.is_live and source.kind == "gstreamer" and source.fps == 30.0  # known at open
    start = time.monotonic()
    frames = list(source)
    assert time.monotonic() - start < 5.0  # ended by itself, no reconnect loop
    assert frames and all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[0].image.flags.writeable and frames[0].image.flags.c_contiguous  # owned copies
    # not live: the appsink drops nothing, every frame reaches the reader, which counts what it skips
    assert len(frames) + source.dropped == 30
    assert source.reconnects == 0 and "end of stream" in source.stop_reason


def test_gstreamer_pipeline_that_is_not_live_never_drops_at_the_appsink():
    _need_pygobject()
    reader = open_gstreamer(TEST_LINE, "test", OPTIONS)
    try:
        assert reader.live is False and reader.fps == 30.0
        time.sleep(0.3)  # a slow consumer: the pipeline waits instead of dropping
        images = []
        while True:
            image = reader.read()
            if not isinstance(image, np.ndarray):
                break
            images.append(image)
    finally:
        reader.release()
    assert len(images) == 30
    live = open_gstreamer(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! videoconvert ! appsink",
        "live test",
        OPTIONS,
    )
    try:
        assert live.live is True and live.fps == 30.0
        assert isinstance(live.read(), np.ndarray)
    finally:
        live.release()


def test_gstreamer_filesrc_decodebin(tmp_path):
    _need_pygobject()
    path = _mp4(tmp_path / "clip.mp4", frames=20, fps=15.0)
    source = open_source(f"gst:filesrc location={path} ! decodebin ! videoconvert ! appsink", live=OPTIONS)
    assert source.fps == 15.0
    frames = list(source)
    assert frames and all(f.image.shape == (48, 64, 3) for f in frames)
    assert len(frames) + source.dropped == 20 and "end of stream" in source.stop_reason
    brightness = [float(f.image.mean()) for f in frames]  # frame k was written brighter than frame k - 1
    assert all(b > a + 3 for a, b in zip(brightness, brightness[1:]))  # in order, none twice


def test_gstreamer_launch_line_without_prefix_and_gray_and_bgrx(tmp_path):
    _need_pygobject()
    for fmt in ("GRAY8", "BGRx"):
        line = f"videotestsrc num-buffers=3 ! video/x-raw,width=322,height=10 ! videoconvert ! video/x-raw,format={fmt} ! appsink"
        frames = list(open_source(line, live=OPTIONS))  # "... ! appsink" without gst: is a pipeline too
        assert len(frames) >= 1 and all(f.image.shape == (10, 322, 3) for f in frames)  # padded rows, to BGR


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("gst:videotestsrc ! nosuchelement ! appsink", 'no element "nosuchelement"'),
        ("gst:videotestsrc ! videoconvert ! fakesink", "has no appsink"),
        ("gst:videotestsrc", "has no appsink"),
        ("gst:filesrc location=/nonexistent/clip.mp4 ! decodebin ! videoconvert ! appsink", "does not start"),
        ("gst:videotestsrc ! video/x-raw,format=I420 ! appsink caps=video/x-raw,format=I420", "format=BGR ! appsink"),
        ("gst:", "empty GStreamer pipeline"),
    ],
)
def test_gstreamer_bad_pipelines_are_source_errors(line, message):
    _need_pygobject()
    start = time.monotonic()
    with pytest.raises(SourceError, match=message.replace("(", r"\(")):
        open_source(line, live=OPTIONS)
    assert time.monotonic() - start < 3.0  # reported at once, not retried


def test_gstreamer_file_that_is_not_a_video(tmp_path):
    _need_pygobject()
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(SourceError, match="does not start: .+"):
        open_source(f"gst:filesrc location={path} ! decodebin ! videoconvert ! appsink", live=OPTIONS)


def test_gstreamer_error_while_playing_is_a_loss_seen_at_once():
    _need_pygobject()
    line = "gst:videotestsrc ! video/x-raw,width=64,height=48 ! identity error-after=5 ! videoconvert ! appsink"
    source = open_source(line, live=LiveOptions(read_timeout=5.0, reconnect=0))
    start = time.monotonic()
    frames = list(source)
    assert time.monotonic() - start < 2.5  # the bus said so: no wait for the 5 s read timeout
    assert 1 <= len(frames) + source.dropped <= 5
    assert "stream lost" in source.stop_reason and "end of stream" not in source.stop_reason


@pytest.mark.slow
def test_gstreamer_rtspsrc_is_live_and_reconnects_after_the_server_restarts(caplog):
    """A real network source through PyGObject: the local RTSP server (tests/live_servers.py) read by rtspsrc
    is live (the appsink keeps the newest frames); killed and restarted, the pipeline is rebuilt."""
    _need_pygobject()
    from live_servers import RtspServer, rtsp_python

    python = rtsp_python()
    if python is None:
        pytest.skip("no Python with GStreamer's RTSP server (apt: gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0)")
    server = RtspServer(python)
    server.start(320, 240)
    url = server.url.replace("rtsp://", "rtsp://viewer:secret@")
    line = f"rtspsrc location={url} latency=0 ! rtph264depay ! avdec_h264 ! videoconvert ! appsink"
    options = LiveOptions(read_timeout=3.0, backoff=0.2, max_backoff=1.0)
    try:
        reader = open_gstreamer(line, "rtsp test", options)
        try:
            assert reader.live is True and reader.fps == 15.0
        finally:
            reader.release()
        source = open_source(f"gst:{line}", live=options)
        assert "secret" not in source.name
        shapes, restart = [], None
        for frame in source:
            shapes.append(frame.image.shape)
            if len(shapes) == 10:
                server.kill()
                restart = threading.Timer(1.0, server.start, args=(320, 240))
                restart.start()
            if len(shapes) == 25:
                break
        source.close()
        if restart is not None:
            restart.join()
    finally:
        server.kill()
    assert set(shapes) == {(240, 320, 3)} and source.reconnects >= 1
    assert "secret" not in caplog.text


def test_gstreamer_opencv_route():
    if not _cv2_has_gstreamer():
        pytest.skip("no cv2 with a GStreamer backend here (pip's opencv wheels have none)")
    route, _why = gstreamer_route("opencv")
    assert route == "opencv"
    reader = open_gstreamer(TEST_LINE, "test", OPTIONS, route="opencv")
    try:
        image = reader.read()
        assert isinstance(image, np.ndarray) and image.shape == (240, 320, 3)
    finally:
        reader.release()


# ---- GStreamer through the pipeline with the demo model -----------------------------------------------------


@pytest.fixture(scope="module")
def demo_segmenter() -> Any:
    pytest.importorskip("onnxruntime")
    from edgeseg import Segmenter
    from edgeseg.assets import demo_model_path

    try:
        model = demo_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return Segmenter(model)


def test_segmenter_stream_on_videotestsrc(demo_segmenter):
    _need_pygobject()
    line = "gst:videotestsrc num-buffers=12 pattern=ball ! video/x-raw,width=320,height=240 ! videoconvert ! appsink"
    results = list(demo_segmenter.stream(line, live=OPTIONS))
    assert results and [r.index for r in results] == sorted({r.index for r in results})
    assert all(r.image.shape == (240, 320, 3) and r.source.startswith("gst:videotestsrc") for r in results)
    assert all(r.detections.timings["inference"] > 0 for r in results)


def test_pipeline_on_demo_clip_through_filesrc_finds_the_shapes(demo_segmenter, tmp_path):
    _need_pygobject()
    from edgeseg.pipeline import Pipeline
    from edgeseg.synthetic.clip import iter_clip_frames

    images = list(iter_clip_frames(10, size=(320, 192), seed=3))
    path = _mp4(tmp_path / "demo.mp4", frames=10, fps=10.0, size=(320, 192), images=images)
    with Pipeline(
        demo_segmenter, f"gst:filesrc location={path} ! decodebin ! videoconvert ! appsink", live=OPTIONS
    ) as run:
        results = list(run)
        (stats,) = run.stats
    assert results and stats.fps == 10.0 and stats.done == len(results)
    assert sum(len(r.detections) for r in results) >= len(results)  # the demo model finds the clip's shapes
    assert "end of stream" in (stats.stop_reason or "")


class _StandInVideoCapture:
    """Stands in for cv2.VideoCapture on a V4L2 camera (no camera can exist here): it implements the documented
    calls the adapter makes (isOpened, set, get, read, release) and records them. The first instance is
    'unplugged' after 5 frames (read fails), the next one works again."""

    instances: ClassVar[list[_StandInVideoCapture]] = []

    def __init__(self, target, api=None):
        self.target, self.api, self.calls, self.size = target, api, [], (640, 480)
        self.frames = 0
        self.released = False
        _StandInVideoCapture.instances.append(self)

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return True

    def set(self, prop, value):
        import cv2

        self.calls.append((prop, value))
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            self.size = (int(value), self.size[1])
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            self.size = (self.size[0], int(value))
        return True

    def get(self, prop):
        import cv2

        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self is _StandInVideoCapture.instances[0] and self.frames >= 5:
            return False, None  # unplugged
        self.frames += 1
        return True, np.full((self.size[1], self.size[0], 3), self.frames % 255, np.uint8)

    def release(self):
        self.released = True


def test_v4l2_camera_against_object_implementing_documented_videocapture_calls(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    from edgeseg.sources import LiveOptions, open_source

    _StandInVideoCapture.instances = []
    monkeypatch.setattr(cv2, "VideoCapture", _StandInVideoCapture)
    options = LiveOptions(size=(1280, 720), fps=30.0, fourcc="MJPG", read_timeout=2.0, backoff=0.05)
    source = open_source("/dev/video0", live=options)
    frames = []
    for frame in source:
        frames.append(frame)
        if len(_StandInVideoCapture.instances) > 1 and len(frames) >= 8:
            break
    source.close()
    first = _StandInVideoCapture.instances[0]
    assert first.target == "/dev/video0" and first.api == cv2.CAP_V4L2
    props = [p for p, _ in first.calls]
    assert props[0] == cv2.CAP_PROP_FOURCC and (cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG")) in first.calls
    assert (cv2.CAP_PROP_FRAME_WIDTH, 1280) in first.calls and (cv2.CAP_PROP_FRAME_HEIGHT, 720) in first.calls
    assert (cv2.CAP_PROP_FPS, 30.0) in first.calls
    assert source.reconnects >= 1 and first.released  # unplugged, reopened with the same options
    assert all(f.image.shape == (720, 1280, 3) for f in frames) and source.name == "camera /dev/video0"
    assert [f.index for f in frames] == sorted({f.index for f in frames})
