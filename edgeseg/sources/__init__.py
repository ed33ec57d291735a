"""Frame sources: image files, directories, globs, video files, cameras, network streams, GStreamer pipelines and the
Raspberry Pi camera, behind one door: :func:`open_source`.

``open_source(spec)`` returns an iterable :class:`FrameSource` yielding :class:`Frame` tuples
``(image_bgr, source_name, frame_index)``. Files end at their last frame and never drop one. Live sources
(cameras, streams, pipelines) are read on a background thread that keeps the newest frame, and are reopened
after a loss or a stall (:class:`LiveOptions`: backoff, attempts, watchdog timeout), so a dead stream neither
hangs the caller nor ends the run while it may come back.
"""

from __future__ import annotations

import dataclasses
import glob
from os import PathLike, fspath
from pathlib import Path

from ..errors import SourceError
from ..image_io import IMAGE_SUFFIXES
from .base import Frame, FrameSource
from .files import VIDEO_SUFFIXES, DemoSource, FileSource, media_kind
from .gstreamer import gstreamer_route, is_gstreamer_pipeline, open_gstreamer
from .live import LiveOptions, LiveSource, open_opencv, redact_url
from .picamera import open_picamera, picamera_number

__all__ = [
    "DEMO_SOURCE",
    "STREAM_SCHEMES",
    "VIDEO_SUFFIXES",
    "Frame",
    "FrameSource",
    "LiveOptions",
    "LiveSource",
    "gstreamer_route",
    "media_kind",
    "open_source",
    "redact_url",
]

DEMO_SOURCE = "demo"  # the generated demo clip (edgeseg.synthetic.clip), no file needed
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


def open_source(
    source: str | int | PathLike[str],
    *,
    read_timeout: float | None = None,
    live: LiveOptions | None = None,
) -> FrameSource:
    """Open a frame source.

    ``source`` is an image or video path, a directory (its images and videos, sorted by name), a glob
    pattern, a camera (index ``0``/``"0"`` or ``"/dev/video0"``), a stream URL (rtsp://, rtsps://, http://,
    rtmp://, ...), a GStreamer pipeline ending in an appsink (``"gst:..."``), the Raspberry Pi camera
    (``"picam"``, ``"picam:1"``) or ``"demo"`` (a generated clip of moving shapes: what the built-in demo model
    was trained to find). ``live`` says how live sources are opened and kept alive (``read_timeout`` is a
    shortcut for its field of that name).

    Raises ``FileNotFoundError`` when a path does not exist or a glob matches nothing and
    :class:`SourceError` when a video, camera or stream cannot be opened.
    """
    options = live or LiveOptions()
    if read_timeout is not None:
        if isinstance(read_timeout, bool) or not isinstance(read_timeout, (int, float)) or not read_timeout > 0:
            raise ValueError(f"read_timeout must be a positive number of seconds, got {read_timeout!r}")
        options = dataclasses.replace(options, read_timeout=float(read_timeout))
    if isinstance(source, bool):
        raise TypeError(f"invalid source {source!r}")
    if isinstance(source, int):
        return _camera(source, options)
    if not isinstance(source, (str, PathLike)):
        raise TypeError(f"source must be a path, URL or camera index, got {type(source).__name__}")
    text = fspath(source)
    if isinstance(source, str):
        stripped = text.strip()
        if stripped.lower() == DEMO_SOURCE:
            return DemoSource()
        if stripped.isdigit():
            return _camera(int(stripped), options)
        if stripped.startswith("/dev/video"):
            return _camera(stripped, options)
        number = picamera_number(stripped)
        if number is not None:
            name = f"Pi camera {number}"
            return LiveSource(name, "picamera", lambda: open_picamera(number, name, options), options)
        if is_gstreamer_pipeline(stripped):
            name = redact_url(stripped)
            return LiveSource(name, "gstreamer", lambda: open_gstreamer(stripped, name, options), options)
        if stripped.lower().startswith(STREAM_SCHEMES):
            name = redact_url(stripped)
            return LiveSource(name, "stream", lambda: open_opencv(stripped, name, options), options)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and media_kind(p))
        if not files:
            raise SourceError(f"no images or videos in directory {path}")
        return FileSource(files)
    if path.is_file():
        if media_kind(path) is None:
            raise SourceError(
                f"unsupported source file type '{path.suffix}' ({path}); images: "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))}"
            )
        return FileSource([path])
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file() and media_kind(Path(p)))
        if not files:
            raise FileNotFoundError(f"no images or videos match {text}")
        return FileSource(files)
    raise FileNotFoundError(f"source not found: {text}")


def _camera(target: int | str, options: LiveOptions) -> LiveSource:
    name = f"camera {target}"
    return LiveSource(name, "camera", lambda: open_opencv(target, name, options), options)
