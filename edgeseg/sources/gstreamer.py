"""GStreamer pipelines as sources (Jetson CSI ``nvarguscamerasrc``, ``v4l2src``, ``rtspsrc``, ``videotestsrc``, ...).

The pipeline ends in an ``appsink``. It runs through OpenCV's GStreamer backend when the installed cv2 has one
(the distribution's cv2 on a Jetson or a Pi usually has; the pip wheels never have), otherwise through PyGObject
(``gi``) and the appsink directly; :func:`gstreamer_route` says which and why the other is not available.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import SourceError
from .live import ENDED, LiveOptions, Reader

__all__ = ["GST_PREFIX", "gstreamer_route", "is_gstreamer_pipeline", "open_gstreamer"]

GST_PREFIX = "gst:"  # --source "gst:videotestsrc ! videoconvert ! appsink"
ROUTES = ("opencv", "pygobject")


def is_gstreamer_pipeline(text: str) -> bool:
    """``gst:...``, or a launch line that ends in an appsink (as OpenCV's own examples write them)."""
    stripped = text.strip()
    return stripped.lower().startswith(GST_PREFIX) or ("!" in stripped and "appsink" in stripped)


def launch_line(text: str) -> str:
    stripped = text.strip()
    return stripped[len(GST_PREFIX) :].strip() if stripped.lower().startswith(GST_PREFIX) else stripped


def _cv2_gstreamer() -> tuple[Any, str]:
    """(cv2 or None, why not)."""
    try:
        cv2 = importlib.import_module("cv2")
    except ImportError:
        return None, "no cv2 is installed"
    try:
        if cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
            return cv2, ""
    except AttributeError:  # a very old cv2: ask its build information
        if "GStreamer:                   YES" in cv2.getBuildInformation():
            return cv2, ""
    return None, f"the installed cv2 {cv2.__version__} was built without GStreamer (pip's opencv wheels are)"


def _gst() -> tuple[Any, str]:
    """(Gst module or None, why not)."""
    try:
        gi = importlib.import_module("gi")
        gi.require_version("Gst", "1.0")
        gi.require_version("GstApp", "1.0")
        gst = importlib.import_module("gi.repository.Gst")
        importlib.import_module("gi.repository.GstApp")
    except (ImportError, ValueError) as exc:
        return None, f"PyGObject with GStreamer's introspection data is not available ({exc})"
    if not gst.is_initialized():
        gst.init(None)
    return gst, ""


def gstreamer_route(prefer: str | None = None) -> tuple[str, str]:
    """(route, explanation): ``"opencv"`` or ``"pygobject"``, and why the other one is not used.

    ``prefer`` forces one route (it must be available). Raises :class:`SourceError` naming both ways when
    neither is available.
    """
    if prefer is not None and prefer not in ROUTES:
        raise ValueError(f"GStreamer route must be one of {ROUTES}, got {prefer!r}")
    cv2, cv2_why = _cv2_gstreamer()
    gst, gst_why = (None, "not tried") if (cv2 is not None and prefer != "pygobject") else _gst()
    if prefer == "pygobject" or (cv2 is None and gst is not None):
        if gst is None:
            raise SourceError(f"GStreamer through PyGObject is not available: {gst_why}")
        why = "requested" if prefer == "pygobject" else f"not through OpenCV: {cv2_why}"
        return "pygobject", f"GStreamer through PyGObject's appsink ({why})"
    if cv2 is not None:
        return "opencv", "GStreamer through OpenCV's GStreamer backend (the installed cv2 has it)"
    raise SourceError(
        "a GStreamer pipeline needs either a cv2 built with GStreamer (the distribution's: `sudo apt install "
        "python3-opencv`, or JetPack's OpenCV, seen from a venv made with --system-site-packages) or PyGObject "
        "(`sudo apt install python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0`, or `pip install "
        f"edgeseg[gstreamer]`); here {cv2_why} and {gst_why}"
    )


class _OpenCVGstReader:
    def __init__(self, capture: Any, cv2: Any) -> None:
        self._capture = capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else None

    def read(self) -> NDArray[Any] | None:
        ok, frame = self._capture.read()
        return frame if ok and frame is not None else None

    def release(self) -> None:
        self._capture.release()


class _AppsinkReader:
    """A GStreamer pipeline played by PyGObject; frames pulled from its appsink as BGR arrays."""

    def __init__(self, gst: Any, line: str, timeout: float, name: str) -> None:
        self._gst = gst
        self.name = name
        self.fps: float | None = None
        self._timeout_ns = int(timeout * 1e9)
        try:
            self._pipeline = gst.parse_launch(line)
        except Exception as exc:  # GLib.Error: no such element, bad syntax
            raise SourceError(f"cannot build the GStreamer pipeline {name}: {exc}") from exc
        self._sink = _find_appsink(gst, self._pipeline)
        if self._sink is None:
            raise SourceError(f"the GStreamer pipeline {name} has no appsink to take frames from")
        if self._sink.get_property("caps") is None:  # ask for what edgeseg needs; videoconvert may provide it
            self._sink.set_property("caps", gst.Caps.from_string("video/x-raw,format=BGR"))
        self._sink.set_property("max-buffers", 2)
        self._sink.set_property("drop", True)
        self._sink.set_property("sync", False)
        if self._pipeline.set_state(gst.State.PLAYING) == gst.StateChangeReturn.FAILURE:
            error = self._bus_error()
            self.release()
            raise SourceError(f"the GStreamer pipeline {name} does not start: {error or 'state change failed'}")

    def _bus_error(self) -> str | None:
        bus = self._pipeline.get_bus()
        message = bus.pop_filtered(self._gst.MessageType.ERROR)
        if message is None:
            return None
        error, _debug = message.parse_error()
        return str(error.message)

    def read(self) -> NDArray[Any] | object | None:
        sample = self._sink.try_pull_sample(self._timeout_ns)
        if sample is None:
            return ENDED if self._sink.is_eos() and self._bus_error() is None else None
        caps = sample.get_caps().get_structure(0)
        ok_w, width = caps.get_int("width")
        ok_h, height = caps.get_int("height")
        rate_ok, num, den = caps.get_fraction("framerate")
        if rate_ok and den:
            self.fps = num / den if num > 0 else None
        fmt = caps.get_string("format")
        if not (ok_w and ok_h) or fmt not in ("BGR", "BGRx", "BGRA", "GRAY8"):
            raise SourceError(
                f"{self.name}: the appsink delivers {caps.to_string()}; end the pipeline with "
                "'videoconvert ! video/x-raw,format=BGR ! appsink'"
            )
        channels = {"BGR": 3, "BGRx": 4, "BGRA": 4, "GRAY8": 1}[fmt]
        buffer = sample.get_buffer()
        ok, info = buffer.map(self._gst.MapFlags.READ)
        if not ok:
            return None
        try:
            data = np.frombuffer(info.data, dtype=np.uint8)
            stride = len(data) // height  # rows may be padded to 4 bytes
            rows = data[: stride * height].reshape(height, stride)[:, : width * channels]
            image = rows.reshape(height, width, channels)[..., :3] if channels > 1 else rows.reshape(height, width)
            return np.ascontiguousarray(image)
        finally:
            buffer.unmap(info)

    def release(self) -> None:
        with contextlib.suppress(Exception):
            self._pipeline.set_state(self._gst.State.NULL)


def _find_appsink(gst: Any, pipeline: Any) -> Any:
    if pipeline.get_factory() is not None and pipeline.get_factory().get_name() == "appsink":
        return pipeline
    iterator = pipeline.iterate_recurse()
    found = None
    while True:
        result, element = iterator.next()
        if result != gst.IteratorResult.OK:
            break
        factory = element.get_factory()
        if factory is not None and factory.get_name() == "appsink":
            found = element  # the last appsink of the launch line
    return found


def open_gstreamer(text: str, name: str, options: LiveOptions, route: str | None = None) -> Reader:
    """Open a GStreamer launch line (with or without ``gst:``) on the route :func:`gstreamer_route` picks."""
    line = launch_line(text)
    if not line:
        raise SourceError("empty GStreamer pipeline")
    chosen, _why = gstreamer_route(route)
    if chosen == "opencv":
        cv2, _ = _cv2_gstreamer()
        cap = cv2.VideoCapture(line, cv2.CAP_GSTREAMER)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"OpenCV cannot start the GStreamer pipeline {name} (an element missing or failing?)")
        return _OpenCVGstReader(cap, cv2)
    gst, _ = _gst()
    return _AppsinkReader(gst, line, options.read_timeout, name)
