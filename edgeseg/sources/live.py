"""Live sources (cameras, network streams, GStreamer pipelines, the Pi camera) that survive their losses.

A :class:`LiveSource` reads on a daemon thread that keeps only the newest frame. When a read fails (the stream
dropped, the camera was unplugged) it reopens the source with a backoff (0.5 s, doubled up to 10 s), without end
by default (``reconnect`` limits the attempts); when no frame arrives for ``read_timeout`` seconds although no
read failed (a stalled connection, a hung driver), a watchdog abandons the stuck reader and reopens too. Frames
keep their numbering across reconnects and may change size (the pipeline letterboxes each frame on its own).

What is opened is a :class:`Reader`: one small class per kind of device (OpenCV capture here, GStreamer appsink
in :mod:`.gstreamer`, picamera2 in :mod:`.picamera`), so the reconnect logic exists once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, Union

from numpy.typing import NDArray

from ..errors import SourceError
from ..image_io import to_bgr
from ..opencv import require_cv2
from .base import Frame, FrameSource, capture_fps

__all__ = ["LiveOptions", "LiveSource", "OpenCVReader", "Reader", "open_opencv", "redact_url"]

log = logging.getLogger("edgeseg.sources")

_END = object()  # close() was called
_LOST = object()  # a read failed: reconnect
_EOS = object()  # the source said it has ended (a pipeline's end of stream): stop, no reconnect

_TRANSPORTS = ("tcp", "udp")
_FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_open_lock = threading.Lock()  # the FFmpeg options travel in an environment variable: one open at a time


@dataclass(frozen=True)
class LiveOptions:
    """How live sources are opened and kept alive.

    Args:
        read_timeout: seconds without a frame before a source counts as stalled (then it is reopened); also
            the open and read timeout of network streams.
        reconnect: reopen attempts after each loss before giving up (``None``: without end, the default;
            ``0``: stop at the first loss).
        backoff: seconds before the second attempt, doubled after each failure up to ``max_backoff``.
        rtsp_transport: ``"tcp"`` (default: no lost packets, no smeared frames) or ``"udp"``.
        size: (width, height) asked of a camera (V4L2, picamera2); ``None`` keeps its default.
        fps: frame rate asked of a camera.
        fourcc: pixel format asked of a V4L2 camera, e.g. ``"MJPG"`` (USB cameras deliver far more frames per
            second at high resolutions in MJPG than in raw YUYV).
    """

    read_timeout: float = 10.0
    reconnect: int | None = None
    backoff: float = 0.5
    max_backoff: float = 10.0
    rtsp_transport: str = "tcp"
    size: tuple[int, int] | None = None
    fps: float | None = None
    fourcc: str | None = None

    def __post_init__(self) -> None:
        for name in ("read_timeout", "backoff", "max_backoff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.reconnect is not None and (
            isinstance(self.reconnect, bool) or not isinstance(self.reconnect, int) or self.reconnect < 0
        ):
            raise ValueError(f"reconnect must be None (without end) or a count >= 0, got {self.reconnect!r}")
        if self.rtsp_transport not in _TRANSPORTS:
            raise ValueError(f"rtsp_transport must be one of {_TRANSPORTS}, got {self.rtsp_transport!r}")
        if self.size is not None and (
            len(self.size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.size)
        ):
            raise ValueError(f"size must be (width, height) in pixels, got {self.size!r}")
        if self.fps is not None and (isinstance(self.fps, bool) or not self.fps > 0):
            raise ValueError(f"fps must be positive, got {self.fps!r}")
        if self.fourcc is not None and (not isinstance(self.fourcc, str) or len(self.fourcc) != 4):
            raise ValueError(f"fourcc must be four characters such as 'MJPG', got {self.fourcc!r}")


class Reader(Protocol):
    """One opened device. ``read`` returns the next frame (any layout :func:`edgeseg.image_io.to_bgr` takes),
    ``None`` when the read failed (the source is then reopened) or :data:`ENDED` at a clean end of stream."""

    fps: float | None

    def read(self) -> NDArray[Any] | object | None: ...

    def release(self) -> None: ...


ENDED = _EOS  # what Reader.read returns at a clean end of stream


def redact_url(url: str) -> str:
    """Remove user:password from a URL (and from a GStreamer pipeline's location) before it is printed."""
    return re.sub(r"(://)[^/@\s]*@", r"\1***@", url)


Opener = Callable[[], Reader]
_Item = Union[NDArray[Any], object]


class LiveSource(FrameSource):
    """A camera or stream read on a daemon thread that keeps only the newest frame, reopened after losses.

    The first open happens here and raises :class:`SourceError` at once (a wrong address is reported, not
    retried); later losses are retried as ``options`` say. ``reconnects`` counts the successful reopenings and
    ``dropped`` the frames replaced by newer ones before anybody read them.
    """

    is_live = True

    def __init__(self, name: str, kind: str, opener: Opener, options: LiveOptions | None = None) -> None:
        self.name = name
        self.kind = kind
        self.options = options or LiveOptions()
        self.read_timeout = self.options.read_timeout
        self._opener = opener
        self.reconnects = 0
        self.dropped = 0
        self._first: Reader | None = self._open()
        self.fps = self._first.fps
        self._frames: queue.Queue[tuple[int, _Item]] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._generation = 0
        self._lock = threading.Lock()
        self._started = False
        self._readers: list[threading.Thread] = []

    # ---- the reader thread -----------------------------------------------------------------------------

    def _open(self) -> Reader:
        try:
            return self._opener()
        except SourceError:
            raise
        except Exception as exc:  # a driver's own error: say which source
            raise SourceError(f"cannot open {self.name}: {exc}") from exc

    def _start_reader(self, reader: Reader) -> None:
        with self._lock:
            generation = self._generation
        thread = threading.Thread(
            target=self._read_loop, args=(reader, generation), name=f"edgeseg-{self.kind}", daemon=True
        )
        self._readers = [t for t in self._readers if t.is_alive()] + [thread]
        thread.start()

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _read_loop(self, reader: Reader, generation: int) -> None:
        try:
            while self._current(generation):
                try:
                    frame = reader.read()
                except Exception as exc:  # a driver error is a loss like any other
                    log.warning("%s: read failed: %s", self.name, exc)
                    frame = None
                if frame is None or frame is _EOS:
                    self._hand_over(generation, _LOST if frame is None else _EOS)
                    return
                with self._lock:
                    if not self._current(generation):
                        return
                    with contextlib.suppress(queue.Empty):  # keep only the newest frame
                        self._frames.get_nowait()
                        self.dropped += 1
                    self._frames.put_nowait((generation, frame))
        finally:
            with contextlib.suppress(Exception):
                reader.release()

    def _hand_over(self, generation: int, marker: object) -> None:
        """Put a loss or end marker after the frame still waiting (never in its place)."""
        while self._current(generation):
            with contextlib.suppress(queue.Full):
                self._frames.put((generation, marker), timeout=0.1)
                return

    # ---- the consumer ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise RuntimeError(f"{self.name} can be iterated only once")
        self._started = True
        first, self._first = self._first, None
        if first is None or self._stop.is_set():  # closed before the first frame was asked for
            return
        self._start_reader(first)
        index = 0
        deadline = time.monotonic() + self.read_timeout
        try:
            while True:
                try:
                    generation, item = self._frames.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    if not self._recover(f"no frame for {self.read_timeout:g} s (stalled)"):
                        return
                    deadline = time.monotonic() + self.read_timeout
                    continue
                if item is _END or self._stop.is_set():
                    return
                if generation != self._generation:
                    continue  # from an abandoned reader
                if item is _EOS:
                    self.stop_reason = f"{self.name} ended (end of stream)"
                    return
                if item is _LOST:
                    if not self._recover("stream lost (read failed)"):
                        return
                    deadline = time.monotonic() + self.read_timeout
                    continue
                deadline = time.monotonic() + self.read_timeout
                yield Frame(to_bgr(item, source=self.name), self.name, index)  # type: ignore[arg-type]
                index += 1
        finally:
            self._stop.set()

    def _recover(self, reason: str) -> bool:
        """Abandon the current reader and open a new one; False when stopped or out of attempts."""
        with self._lock:
            self._generation += 1  # the old reader stops at its next frame and releases its device
        options = self.options
        delay = options.backoff
        attempts = 0
        log.warning("%s: %s; reconnecting", self.name, reason)
        while not self._stop.is_set():
            if options.reconnect is not None and attempts >= options.reconnect:
                self.stop_reason = f"{self.name}: {reason}; gave up after {attempts} reconnect attempt(s)"
                return False
            attempts += 1
            try:
                reader = self._open()
            except SourceError as exc:
                log.warning("%s: reconnect attempt %d failed (%s); next in %.1f s", self.name, attempts, exc, delay)
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, options.max_backoff)
                continue
            if self._stop.is_set():
                reader.release()
                break
            self.reconnects += 1
            self.fps = reader.fps or self.fps
            log.warning("%s: reconnected (attempt %d)", self.name, attempts)
            self._start_reader(reader)
            return True
        return False

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            with contextlib.suppress(queue.Empty):  # wake an iteration waiting for a frame
                self._frames.get_nowait()
            with contextlib.suppress(queue.Full):
                self._frames.put_nowait((self._generation, _END))
        first, self._first = self._first, None
        if first is not None:  # never started: release here; otherwise the reader thread releases
            first.release()
        # Wait for the readers to leave the driver: a daemon thread still inside a native read when the
        # interpreter exits is torn down there, which some drivers (OpenCV's FFmpeg) answer with an abort.
        deadline = time.monotonic() + self.read_timeout + 1.0
        current = threading.current_thread()
        for thread in self._readers:
            if thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))


# ---- OpenCV captures: cameras (index, /dev/videoN) and network streams ----------------------------------


class OpenCVReader:
    """An opened ``cv2.VideoCapture``. A failed read is a loss (the source is reopened) when ``live``, else the
    end of the stream (OpenCV cannot tell the two apart)."""

    def __init__(self, capture: Any, live: bool = True) -> None:
        self._capture = capture
        self.live = live
        self.fps = capture_fps(capture)

    def read(self) -> NDArray[Any] | object | None:
        ok, frame = self._capture.read()
        if ok and frame is not None:
            image: NDArray[Any] = frame
            return image
        return None if self.live else _EOS

    def release(self) -> None:
        self._capture.release()


def open_opencv(target: int | str, name: str, options: LiveOptions) -> Reader:
    """Open a camera (index or ``/dev/videoN``) or a stream URL with OpenCV, as ``options`` say."""
    cv2 = require_cv2(f"reading {name}")
    if isinstance(target, int) or target.startswith("/dev/"):
        cap = cv2.VideoCapture(target, cv2.CAP_V4L2) if sys.platform.startswith("linux") else cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {name} (not connected, busy, or no permission: is the user in 'video'?)")
        if options.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*options.fourcc))
        if options.size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, options.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, options.size[1])
        if options.fps:
            cap.set(cv2.CAP_PROP_FPS, options.fps)
        return OpenCVReader(cap)
    timeout_ms = int(options.read_timeout * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
    with _open_lock:
        previous = os.environ.get(_FFMPEG_OPTIONS)
        if target.lower().startswith(("rtsp://", "rtsps://")) and previous is None:
            os.environ[_FFMPEG_OPTIONS] = f"rtsp_transport;{options.rtsp_transport}"
        try:
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        finally:
            if previous is None:
                os.environ.pop(_FFMPEG_OPTIONS, None)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open {name} (not reachable, wrong address or credentials, or not a video stream)")
    return OpenCVReader(cap)
