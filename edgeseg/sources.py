"""Frame sources: image files, directories, globs, video files, cameras and network streams.

``open_source(spec)`` returns an iterable :class:`FrameSource` yielding :class:`Frame` tuples
``(image_bgr, source_name, frame_index)``. Files end at their last frame. Live sources (cameras,
rtsp/http URLs) are read on a background thread; if no frame arrives for ``read_timeout`` seconds the
iteration ends and ``stop_reason`` says why, so a dead stream never hangs the caller.
"""

from __future__ import annotations

import contextlib
import glob
import queue
import re
import threading
from collections.abc import Iterator
from os import PathLike, fspath
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from .errors import SourceError
from .image_io import IMAGE_SUFFIXES, read_image, to_bgr

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".asf", ".gif", ".3gp"}
)
DEMO_SOURCE = "demo"  # the generated demo clip (edgeseg.synthetic.clip), no file needed
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class Frame(NamedTuple):
    image: NDArray[np.uint8]  # uint8 BGR (H, W, 3)
    source: str  # file path, 'camera 0' or the URL (credentials removed)
    # frame number within that source (0 for a single image); the public field shadows tuple.index
    index: int  # type: ignore[assignment]


def open_source(source: str | int | PathLike[str], *, read_timeout: float = 10.0) -> FrameSource:
    """Open a frame source.

    ``source`` is an image or video path, a directory (its images and videos, sorted by name), a glob
    pattern, a camera index (``0`` or ``"0"``), a stream URL (rtsp://, http://, ...) or ``"demo"``
    (a generated clip of moving shapes: what the built-in demo model was trained to find).
    Raises ``FileNotFoundError`` when a path does not exist or a glob matches nothing and
    :class:`SourceError` when a video, camera or stream cannot be opened.
    """
    if read_timeout is None or float(read_timeout) <= 0:
        raise ValueError(f"read_timeout must be a positive number of seconds, got {read_timeout!r}")
    read_timeout = float(read_timeout)
    if isinstance(source, bool):
        raise TypeError(f"invalid source {source!r}")
    if isinstance(source, int):
        return _LiveSource(source, f"camera {source}", read_timeout)
    if not isinstance(source, (str, PathLike)):
        raise TypeError(f"source must be a path, URL or camera index, got {type(source).__name__}")
    text = fspath(source)
    if isinstance(source, str):
        if text.strip().lower() == DEMO_SOURCE:
            return _DemoSource()
        if text.strip().isdigit():
            return _LiveSource(int(text), f"camera {int(text)}", read_timeout)
        if text.lower().startswith(STREAM_SCHEMES):
            return _LiveSource(text, redact_url(text), read_timeout)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and media_kind(p))
        if not files:
            raise SourceError(f"no images or videos in directory {path}")
        return _FileSource(files)
    if path.is_file():
        if media_kind(path) is None:
            raise SourceError(
                f"unsupported source file type '{path.suffix}' ({path}); images: "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))}"
            )
        return _FileSource([path])
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file() and media_kind(Path(p)))
        if not files:
            raise FileNotFoundError(f"no images or videos match {text}")
        return _FileSource(files)
    raise FileNotFoundError(f"source not found: {text}")


def redact_url(url: str) -> str:
    """Remove user:password from a URL before it is printed."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)


def media_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


class FrameSource:
    """Iterable of :class:`Frame`. Use as a context manager (or call :meth:`close`) to release devices.

    A live source's :meth:`close` may be called from another thread while it is iterated, and must make the
    iteration end soon (the pipeline stops a camera that way); other sources are closed after their iteration.
    """

    kind: str = "files"
    is_live: bool = False
    fps: float | None = None  # frames per second of the current (or first) video, when known
    stop_reason: str | None = None  # why a live source stopped early, if it did

    def __iter__(self) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _FileSource(FrameSource):
    """Image and video files, in the given order."""

    def __init__(self, files: list[Path]):
        self.files = list(files)
        self.kind = "video" if len(files) == 1 and media_kind(files[0]) == "video" else "files"
        self._capture: cv2.VideoCapture | None = None
        first_video = next((f for f in files if media_kind(f) == "video"), None)
        if first_video is not None:
            cap = _open_video(first_video)
            self.fps = _fps(cap)
            self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            cap.release()

    def __iter__(self) -> Iterator[Frame]:
        for path in self.files:
            if media_kind(path) == "image":
                yield Frame(read_image(path), str(path), 0)
                continue
            self._capture = _open_video(path)
            self.fps = _fps(self._capture)
            try:
                index = 0
                while True:
                    ok, frame = self._capture.read()
                    if not ok or frame is None:
                        break
                    yield Frame(to_bgr(frame, source=str(path)), str(path), index)
                    index += 1
            finally:
                self._capture.release()
                self._capture = None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class _DemoSource(FrameSource):
    """The generated demo clip: shapes gliding over a textured background (no files, no camera)."""

    kind = "video"
    fps = 30.0

    def __init__(self, n_frames: int = 180, size: tuple[int, int] = (640, 360), seed: int = 0):
        self.n_frames, self.size, self.seed = int(n_frames), size, int(seed)
        self.frame_count = self.n_frames

    def __iter__(self) -> Iterator[Frame]:
        from .synthetic.clip import iter_clip_frames

        for index, image in enumerate(iter_clip_frames(self.n_frames, size=self.size, seed=self.seed)):
            yield Frame(image, "demo clip", index)


def _open_video(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(fspath(path))
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open video {path} (corrupt file or unsupported codec)")
    return cap


def _fps(cap: cv2.VideoCapture) -> float | None:
    """The capture's frame rate, or None when it reports none or nonsense (cameras often report 0)."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else None


class _LiveSource(FrameSource):
    """A camera or network stream, read on a daemon thread that keeps only the newest frame."""

    is_live = True

    def __init__(self, target: int | str, name: str, read_timeout: float):
        self.name = name
        self.kind = "camera" if isinstance(target, int) else "stream"
        self.read_timeout = read_timeout
        timeout_ms = int(read_timeout * 1000)
        if isinstance(target, int):
            cap = cv2.VideoCapture(target)
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {name} (not connected, wrong address or no permission)")
        self.fps = _fps(cap)
        self._capture = cap
        self._frames: queue.Queue[NDArray[Any] | None] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_loop(self) -> None:
        cap = self._capture
        try:
            while not self._stop.is_set():
                ok, frame = cap.read()
                if not ok or frame is None:  # the end: after the last frame, which is still delivered
                    while not self._stop.is_set():
                        with contextlib.suppress(queue.Full):
                            self._frames.put(None, timeout=0.1)
                            return
                    return
                with contextlib.suppress(queue.Empty):  # keep only the newest frame: drop the unread one
                    self._frames.get_nowait()
                self._frames.put(frame)
        finally:
            cap.release()

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} can be iterated only once")
        self._thread = threading.Thread(target=self._read_loop, name=f"edgeseg-{self.kind}", daemon=True)
        self._thread.start()
        index = 0
        try:
            while True:
                try:
                    frame = self._frames.get(timeout=self.read_timeout)
                except queue.Empty:
                    self.stop_reason = f"no frame from {self.name} for {self.read_timeout:g} s; stopped"
                    return
                if frame is None:
                    if not self._stop.is_set():  # not closed by the caller: the stream itself stopped
                        self.stop_reason = f"{self.name} stopped delivering frames (stream ended or read failed)"
                    return
                yield Frame(to_bgr(frame, source=self.name), self.name, index)
                index += 1
        finally:
            self._stop.set()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):  # wake an iteration waiting for a frame
            self._frames.get_nowait()
        with contextlib.suppress(queue.Full):
            self._frames.put_nowait(None)
        if self._thread is None:  # never started: release here; otherwise the reader thread releases
            self._capture.release()
