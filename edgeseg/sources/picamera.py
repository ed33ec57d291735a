"""The Raspberry Pi camera through picamera2 (libcamera): ``--source picam`` or ``picam:1`` for a second camera.

picamera2 comes with Raspberry Pi OS (``sudo apt install python3-picamera2``; a venv sees it when made with
``python3 -m venv --system-site-packages``). The adapter uses only these documented calls: ``Picamera2(n)``,
``create_video_configuration(main={"size": (w, h), "format": "RGB888"}, controls={"FrameRate": fps},
buffer_count=...)``, ``configure``, ``start``, ``capture_array("main")``, ``stop`` and ``close``. The "RGB888"
format of libcamera is stored blue, green, red in memory: the arrays are BGR as edgeseg wants, no conversion.
"""

from __future__ import annotations

import importlib
from typing import Any

from numpy.typing import NDArray

from ..errors import SourceError
from .live import LiveOptions, Reader

__all__ = ["PICAM", "open_picamera", "picamera_number"]

PICAM = "picam"
DEFAULT_SIZE = (1280, 720)


def picamera_number(text: str) -> int | None:
    """The camera number of ``picam`` (0) or ``picam:N``; None when ``text`` names something else."""
    head, _, tail = text.strip().lower().partition(":")
    if head != PICAM:
        return None
    if not tail:
        return 0
    if not tail.isdigit():
        raise ValueError(f"a Pi camera is 'picam' or 'picam:N' with N a camera number, got {text!r}")
    return int(tail)


class _PicameraReader:
    def __init__(self, camera: Any, fps: float | None) -> None:
        self._camera = camera
        self.fps = fps

    def read(self) -> NDArray[Any]:
        frame: NDArray[Any] = self._camera.capture_array("main")
        return frame

    def release(self) -> None:
        try:
            self._camera.stop()
        finally:
            self._camera.close()


def open_picamera(number: int, name: str, options: LiveOptions, module: Any = None) -> Reader:
    """Open and start Pi camera ``number`` (``module``: the picamera2 module, found when None)."""
    if module is None:
        try:
            module = importlib.import_module("picamera2")
        except ImportError as exc:
            raise SourceError(
                f"{name} needs picamera2, which is not installed: on Raspberry Pi OS `sudo apt install "
                "python3-picamera2` and make the venv with `python3 -m venv --system-site-packages`"
            ) from exc
    try:
        camera = module.Picamera2(number)
    except Exception as exc:  # IndexError for a missing camera, RuntimeError when libcamera has it busy
        raise SourceError(f"cannot open {name}: {exc} (is the camera connected and free?)") from exc
    try:
        controls = {"FrameRate": float(options.fps)} if options.fps else {}
        config = camera.create_video_configuration(
            main={"size": tuple(options.size or DEFAULT_SIZE), "format": "RGB888"}, controls=controls, buffer_count=4
        )
        camera.configure(config)
        camera.start()
    except Exception as exc:
        camera.close()
        raise SourceError(f"cannot start {name}: {exc}") from exc
    return _PicameraReader(camera, float(options.fps) if options.fps else None)
