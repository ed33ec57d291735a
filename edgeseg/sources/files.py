"""Image and video files, in order, and the generated demo clip: sources that never drop a frame."""

from __future__ import annotations

from collections.abc import Iterator
from os import fspath
from pathlib import Path
from typing import Any

from ..errors import SourceError
from ..image_io import IMAGE_SUFFIXES, read_image, to_bgr
from ..opencv import require_cv2
from .base import Frame, FrameSource, capture_fps

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".asf", ".gif", ".3gp"}
)


def media_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


class FileSource(FrameSource):
    """Image and video files, in the given order."""

    def __init__(self, files: list[Path]):
        self.files = list(files)
        self.kind = "video" if len(files) == 1 and media_kind(files[0]) == "video" else "files"
        self._capture: Any = None
        self.frame_count = 0
        first_video = next((f for f in files if media_kind(f) == "video"), None)
        if first_video is not None:
            cap = open_video(first_video)
            self.fps = capture_fps(cap)
            self.frame_count = int(cap.get(require_cv2("reading a video").CAP_PROP_FRAME_COUNT) or 0)
            cap.release()

    def __iter__(self) -> Iterator[Frame]:
        for path in self.files:
            if media_kind(path) == "image":
                yield Frame(read_image(path), str(path), 0)
                continue
            self._capture = open_video(path)
            self.fps = capture_fps(self._capture)
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


class DemoSource(FrameSource):
    """The generated demo clip: shapes gliding over a textured background (no files, no camera)."""

    kind = "video"
    fps = 30.0

    def __init__(self, n_frames: int = 180, size: tuple[int, int] = (640, 360), seed: int = 0):
        self.n_frames, self.size, self.seed = int(n_frames), size, int(seed)
        self.frame_count = self.n_frames

    def __iter__(self) -> Iterator[Frame]:
        from ..synthetic.clip import iter_clip_frames

        for index, image in enumerate(iter_clip_frames(self.n_frames, size=self.size, seed=self.seed)):
            yield Frame(image, "demo clip", index)


def open_video(path: Path) -> Any:
    cv2 = require_cv2(f"reading the video {path}")
    cap = cv2.VideoCapture(fspath(path))
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open video {path} (corrupt file or unsupported codec)")
    return cap
