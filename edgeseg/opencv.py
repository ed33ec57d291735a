"""The one door to OpenCV: ``cv2`` is optional at run time and imported only where a frame is decoded, drawn or
written.

edgeseg never forces a pip OpenCV over a system build: a Jetson or a Raspberry Pi whose distribution cv2 has
GStreamer keeps it (``python3 -m venv --system-site-packages``). Without any cv2, the runtime still segments
numpy arrays (picamera2 frames, an application's own frames).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import EdgesegError

__all__ = ["OpenCVNotInstalledError", "cv2_available", "require_cv2"]

INSTALL_HINT = (
    "install OpenCV in one of two ways: `pip install edgeseg[opencv]` (opencv-python-headless from PyPI), or your "
    "system's build (Debian/Raspberry Pi OS: `sudo apt install python3-opencv`; Jetson: the OpenCV of JetPack, "
    "with GStreamer) seen from a venv made with `python3 -m venv --system-site-packages`"
)


class OpenCVNotInstalledError(EdgesegError, ImportError):
    """OpenCV (cv2) is needed for this and is not installed."""


def require_cv2(purpose: str) -> ModuleType:
    """The ``cv2`` module, or :class:`OpenCVNotInstalledError` saying what needed it and both ways to get it."""
    try:
        return importlib.import_module("cv2")
    except ImportError as exc:
        raise OpenCVNotInstalledError(f"{purpose} needs OpenCV (cv2), which is not installed: {INSTALL_HINT}") from exc


def cv2_available() -> bool:
    try:
        importlib.import_module("cv2")
    except ImportError:
        return False
    return True
