"""Frame sources: files, directories, globs, videos and live sources that fail or stall."""

import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.errors import SourceError
from edgeseg.sources import LiveOptions, LiveSource, open_source, redact_url
from edgeseg.sources.live import open_opencv
from shared_paths import SHARED

VIDEO = SHARED / "data" / "video" / "people_movement.mp4"


def _image(path: Path, value: int) -> Path:
    cv2.imwrite(str(path), np.full((8, 10, 3), value, np.uint8))
    return path


def _video(path: Path, frames: int = 12, fps: float = 15.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    return path


def test_single_image(tmp_path):
    path = _image(tmp_path / "a.png", 50)
    frames = list(open_source(path))
    assert len(frames) == 1
    image, name, index = frames[0]
    assert image.shape == (8, 10, 3) and name == str(path) and index == 0


def test_directory_sorted_and_non_media_ignored(tmp_path):
    _image(tmp_path / "b.png", 2)
    _image(tmp_path / "a.jpg", 1)
    (tmp_path / "notes.txt").write_text("x")
    _video(tmp_path / "c.mp4", frames=3)
    frames = list(open_source(tmp_path))
    assert [Path(f.source).name for f in frames] == ["a.jpg", "b.png", "c.mp4", "c.mp4", "c.mp4"]
    assert [f.index for f in frames] == [0, 0, 0, 1, 2]


def test_glob(tmp_path):
    for i in range(3):
        _image(tmp_path / f"img{i}.png", i)
    _image(tmp_path / "other.png", 9)
    frames = list(open_source(str(tmp_path / "img*.png")))
    assert [Path(f.source).name for f in frames] == ["img0.png", "img1.png", "img2.png"]


def test_video_file_frames_and_fps(tmp_path):
    source = open_source(_video(tmp_path / "clip.mp4", frames=12, fps=15.0))
    assert source.fps == pytest.approx(15.0) and not source.is_live
    frames = list(source)
    assert len(frames) == 12 and [f.index for f in frames] == list(range(12))
    assert frames[0].image.shape == (48, 64, 3)


def test_shared_video():
    if not VIDEO.exists():
        pytest.skip("shared video not available")
    with open_source(VIDEO) as source:
        assert source.fps == pytest.approx(29.5, abs=1)
        for frame in source:
            assert frame.image.shape == (720, 1280, 3)
            if frame.index == 5:
                break


@pytest.mark.parametrize("name", ["missing.jpg", "missing_dir/"])
def test_missing_paths(tmp_path, name):
    with pytest.raises(FileNotFoundError, match="not found"):
        open_source(str(tmp_path / name))


def test_glob_without_matches(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images or videos match"):
        open_source(str(tmp_path / "*.png"))


def test_directory_without_media(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(SourceError, match="no images or videos"):
        open_source(tmp_path)


def test_fake_video_cannot_be_opened(tmp_path):
    path = tmp_path / "fake.mp4"
    path.write_text("not a video")
    with pytest.raises(SourceError, match="cannot open video"):
        list(open_source(path))


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2")
    with pytest.raises(SourceError, match="unsupported"):
        open_source(path)


def test_camera_that_does_not_exist():
    with pytest.raises(SourceError, match="camera 97"):
        open_source("97")


def test_stream_with_nothing_listening():
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(SourceError, match="cannot open") as info:
        open_source(f"rtsp://user:secret@127.0.0.1:{port}/live", read_timeout=3)
    assert time.monotonic() - start < 10
    assert "secret" not in str(info.value)  # credentials never printed


def test_silent_server_times_out_instead_of_hanging():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    start = time.monotonic()
    try:
        with pytest.raises(SourceError, match="cannot open"):
            open_source(f"http://127.0.0.1:{port}/stream.mjpg", read_timeout=2)
        assert time.monotonic() - start < 15
    finally:
        for conn, _ in accepted:
            conn.close()
        server.close()


class _StalledReader:
    """A device whose read() blocks, like a camera that stopped sending (a stand-in for a hung driver)."""

    fps = None

    def __init__(self):
        self.released = threading.Event()

    def read(self):
        self.released.wait(5)
        return None

    def release(self):
        self.released.set()


def _file_opener(path, options):
    return lambda: open_opencv(str(path), "test stream", options)


def test_live_source_stops_when_frames_stop_and_no_reconnect(tmp_path):
    options = LiveOptions(read_timeout=5, reconnect=0)
    live = LiveSource("test stream", "stream", _file_opener(_video(tmp_path / "live.mp4", frames=5), options), options)
    frames = list(live)
    assert 1 <= len(frames) <= 5 and "gave up after 0 reconnect attempt(s)" in live.stop_reason
    assert live.reconnects == 0


def test_live_source_reconnects_after_a_loss_and_numbers_frames_on(tmp_path):
    """A stream that ends (read fails) is reopened: here a 5-frame file, reopened twice, then given up."""
    options = LiveOptions(read_timeout=5, reconnect=1, backoff=0.05)
    opened = []

    def opener():
        opened.append(1)
        if len(opened) > 3:
            raise SourceError("gone")
        return open_opencv(str(video), "test stream", options)

    video = _video(tmp_path / "live.mp4", frames=5)
    live = LiveSource("test stream", "stream", opener, options)
    frames = list(live)
    assert live.reconnects == 2 and len(opened) == 4
    assert [f.index for f in frames] == list(range(len(frames)))  # numbering goes on across reconnects
    assert len(frames) + live.dropped >= 3  # at least one frame of each opening was read
    assert "gave up after 1 reconnect attempt(s)" in live.stop_reason


def test_live_source_watchdog_reopens_a_stalled_reader(tmp_path):
    options = LiveOptions(read_timeout=0.5, reconnect=1, backoff=0.05)
    stalled = _StalledReader()
    readers = [stalled]
    video = _video(tmp_path / "live.mp4", frames=3)

    def opener():
        if readers:
            return readers.pop()
        if live.reconnects >= 1:
            raise SourceError("gone")  # the file has been played once after the stall: end the test
        return open_opencv(str(video), "test stream", options)

    live = LiveSource("test stream", "stream", opener, options)
    start = time.monotonic()
    frames = list(live)
    assert time.monotonic() - start < 4
    assert live.reconnects >= 1 and len(frames) >= 1  # the frames came from the reopened source
    assert live.stop_reason is not None


def test_live_source_watchdog_gives_up_without_reconnect(tmp_path):
    options = LiveOptions(read_timeout=0.5, reconnect=0)
    live = LiveSource("test stream", "stream", _StalledReader, options)
    start = time.monotonic()
    assert list(live) == []
    assert time.monotonic() - start < 3
    assert "no frame for 0.5 s (stalled)" in live.stop_reason


def test_live_source_close_wakes_a_waiting_iteration():
    options = LiveOptions(read_timeout=30)
    live = LiveSource("test stream", "stream", _StalledReader, options)
    threading.Timer(0.3, live.close).start()
    start = time.monotonic()
    assert list(live) == []
    assert time.monotonic() - start < 3


def test_live_options_are_checked():
    for bad in (
        {"read_timeout": 0},
        {"reconnect": -1},
        {"rtsp_transport": "http"},
        {"size": (0, 5)},
        {"fourcc": "MJ"},
        {"fps": -1},
        {"backoff": float("nan")},
    ):
        with pytest.raises(ValueError):
            LiveOptions(**bad)


def test_redact_url():
    assert redact_url("rtsp://admin:pw@10.0.0.2:554/s") == "rtsp://***@10.0.0.2:554/s"
    assert redact_url("http://cam.local/x") == "http://cam.local/x"


def test_bad_arguments():
    with pytest.raises(ValueError):
        open_source("0", read_timeout=0)
    with pytest.raises(TypeError):
        open_source(3.5)
