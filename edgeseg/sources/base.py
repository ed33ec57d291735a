"""What every frame source is: an iterable of :class:`Frame` that can be closed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..opencv import require_cv2


class Frame(NamedTuple):
    image: NDArray[np.uint8]  # uint8 BGR (H, W, 3)
    source: str  # file path, 'camera 0' or the URL (credentials removed)
    # frame number within that source (0 for a single image); the public field shadows tuple.index
    index: int  # type: ignore[assignment]


def capture_fps(cap: Any) -> float | None:
    """An OpenCV capture's frame rate, or None when it reports none or nonsense (cameras often report 0)."""
    fps = cap.get(require_cv2("reading a video").CAP_PROP_FPS)
    return float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else None


class FrameSource:
    """Iterable of :class:`Frame`. Use as a context manager (or call :meth:`close`) to release devices.

    A live source's :meth:`close` may be called from another thread while it is iterated, and must make the
    iteration end soon (the pipeline stops a camera that way); other sources are closed after their iteration.
    """

    name: str = ""
    kind: str = "files"
    is_live: bool = False
    fps: float | None = None  # frames per second of the current (or first) video, when known
    stop_reason: str | None = None  # why a live source stopped early, if it did
    dropped: int = 0  # frames the source itself skipped because newer ones arrived (live sources)
    reconnects: int = 0  # times a live source was reopened after a loss or a stall

    def __iter__(self) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
