"""GStreamer pipelines as sources (Jetson CSI ``nvarguscamerasrc``, ``v4l2src``, ``rtspsrc``, ``videotestsrc``, ...).

The pipeline ends in an ``appsink``. It runs through OpenCV's GStreamer backend when the installed cv2 has one
(the distribution's cv2 on a Jetson or a Pi usually has; the pip wheels never have), otherwise through PyGObject
(``gi``) and the appsink directly; :func:`gstreamer_route` says which and why the other is not available.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import SourceError
from ..opencv import require_cv2
from .live import ENDED, LiveOptions, OpenCVReader, Reader

__all__ = ["GST_PREFIX", "gstreamer_route", "is_gstreamer_pipeline", "open_gstreamer"]

GST_PREFIX = "gst:"  # --source "gst:videotestsrc ! videoconvert ! appsink"
ROUTES = ("opencv", "pygobject")
_CHANNELS = {"BGR": 3, "BGRx": 4, "BGRA": 4, "GRAY8": 1}  # appsink formats read (to_bgr makes them BGR)
_END_WITH_BGR = "end the pipeline with 'videoconvert ! video/x-raw,format=BGR ! appsink'"
_POLL_NS = 200_000_000  # 0.2 s: how often a waiting open or read looks at the bus for errors

log = logging.getLogger("edgeseg.sources")


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
        cv2 = require_cv2("GStreamer through OpenCV")
    except ImportError:  # OpenCVNotInstalledError
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
    if prefer == "opencv":  # never falls back to the other route: the caller asked for this one
        if cv2 is None:
            raise SourceError(f"GStreamer through OpenCV is not available: {cv2_why}")
        return "opencv", "GStreamer through OpenCV's GStreamer backend (requested)"
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


# Elements whose pipelines run until something breaks (cameras, network sources): through OpenCV, which cannot
# tell an end of stream from a failure, a failed read of such a pipeline is a loss (reopened); of any other
# pipeline (filesrc, videotestsrc without is-live) it is the end.
LIVE_ELEMENTS = ("nvarguscamerasrc", "nvv4l2camerasrc", "v4l2src", "libcamerasrc", "rtspsrc", "souphttpsrc",
                 "udpsrc", "tcpclientsrc", "rtmpsrc", "rtmp2src", "srtsrc", "ksvideosrc", "avfvideosrc")  # fmt: skip


def is_live_pipeline(line: str) -> bool:
    """Whether a launch line reads a camera or the network (or says ``is-live=true``)."""
    words = line.replace("!", " ").split()
    return (
        any(w in LIVE_ELEMENTS for w in words)
        or "is-live=true" in line.replace(" ", "").lower()
        or any(w.startswith("uri=") and not w.startswith("uri=file:") for w in words)
    )


class _AppsinkReader:
    """A GStreamer pipeline played by PyGObject; frames pulled from its appsink as BGR arrays.

    The pipeline is first set to PAUSED: a live one (a camera, a network stream) answers NO_PREROLL, and its
    appsink then drops the older frames (``drop=true``; ``max-buffers`` 2 unless the launch line sets it), as a
    live source should. One that is not live (a file, ``videotestsrc``) prerolls and produces as fast as it is
    read: its appsink never drops, it holds the pipeline back when full, so every frame reaches the reader
    (:class:`LiveSource` still keeps the newest when the consumer falls behind, and counts what it skips).
    The open waits (up to ``timeout``) until the first frame has reached the appsink, so a pipeline that
    fails or delivers nothing is reported at once, and ``fps`` and the format are known.
    """

    def __init__(self, gst: Any, line: str, timeout: float, name: str) -> None:
        self._gst = gst
        self.name = name
        self.fps: float | None = None
        self.live = False
        self._timeout = timeout
        self._error: str | None = None  # the first error the bus reported while frames still came
        try:
            self._pipeline = gst.parse_launch(line)
        except Exception as exc:  # GLib.Error: no such element, bad syntax
            raise SourceError(f"cannot build the GStreamer pipeline {name}: {exc}") from exc
        self._sink = _find_appsink(gst, self._pipeline)
        if self._sink is None:
            raise SourceError(f"the GStreamer pipeline {name} has no appsink to take frames from")
        if self._sink.get_property("caps") is None:  # ask for what edgeseg reads (BGR first); videoconvert converts
            formats = ",".join(_CHANNELS)
            self._sink.set_property("caps", gst.Caps.from_string(f"video/x-raw,format={{{formats}}}"))
        if not self._sink.get_property("max-buffers"):  # 0: unlimited, the default
            self._sink.set_property("max-buffers", 2)
        self._sink.set_property("drop", False)  # until the pipeline says it is live
        self._sink.set_property("sync", False)
        self._bus = self._pipeline.get_bus()
        try:
            self._start()
        except BaseException:
            self.release()
            raise

    def _start(self) -> None:
        gst = self._gst
        deadline = time.monotonic() + self._timeout
        paused = self._settle(self._pipeline.set_state(gst.State.PAUSED), deadline)
        self.live = paused == gst.StateChangeReturn.NO_PREROLL
        if self.live:
            self._sink.set_property("drop", True)
        if self._settle(self._pipeline.set_state(gst.State.PLAYING), deadline) == gst.StateChangeReturn.ASYNC:
            raise SourceError(f"the GStreamer pipeline {self.name} delivers no frame within {self._timeout:g} s")
        caps = self._sink.get_static_pad("sink").get_current_caps()
        if caps is not None:
            self._frame_layout(caps)  # a format edgeseg cannot read is an error now, not a reconnect loop

    def _settle(self, result: Any, deadline: float) -> Any:
        """Wait for a state change to finish (or ``deadline``), watching the bus; its final result."""
        gst = self._gst
        while result == gst.StateChangeReturn.ASYNC and time.monotonic() < deadline:
            error = self._drain_bus()
            if error is not None:
                raise SourceError(f"the GStreamer pipeline {self.name} does not start: {error}")
            result, _state, _pending = self._pipeline.get_state(_POLL_NS)
        if result == gst.StateChangeReturn.FAILURE:
            error = self._drain_bus()
            if error is None:  # a streaming thread may post it just after the state change failed
                message = self._bus.timed_pop_filtered(2 * _POLL_NS, gst.MessageType.ERROR)
                error = str(message.parse_error()[0].message) if message is not None else None
            raise SourceError(f"the GStreamer pipeline {self.name} does not start: {error or 'state change failed'}")
        return result

    def _drain_bus(self) -> str | None:
        """Empty the bus (nothing else reads it, and it would grow without end); the first error, if any."""
        error = None
        while True:
            message = self._bus.pop()
            if message is None:
                return error
            if error is None and message.type == self._gst.MessageType.ERROR:
                gerror, debug = message.parse_error()
                error = str(gerror.message)
                if "not-negotiated" in str(debug):
                    error += f" (formats do not match: {_END_WITH_BGR})"

    def _frame_layout(self, caps: Any) -> tuple[int, int, int]:
        """(width, height, channels) of the appsink's caps; records the frame rate."""
        structure = caps.get_structure(0)
        ok_w, width = structure.get_int("width")
        ok_h, height = structure.get_int("height")
        rate_ok, num, den = structure.get_fraction("framerate")
        if rate_ok and den:
            self.fps = num / den if num > 0 else None  # 0/1: a variable rate
        fmt = structure.get_string("format")
        if not (ok_w and ok_h) or fmt not in _CHANNELS:
            raise SourceError(f"{self.name}: the appsink delivers {caps.to_string()}; {_END_WITH_BGR}")
        return width, height, _CHANNELS[fmt]

    def read(self) -> NDArray[Any] | object | None:
        deadline = time.monotonic() + self._timeout
        while True:
            sample = self._sink.try_pull_sample(_POLL_NS)
            error = self._drain_bus()
            self._error = self._error or error
            if sample is not None:
                break
            if self._error is not None:  # the pipeline broke: a loss (reopened), not an end
                log.warning("%s: %s", self.name, self._error)
                return None
            if self._sink.is_eos():
                return ENDED
            if time.monotonic() >= deadline:
                return None
        width, height, channels = self._frame_layout(sample.get_caps())
        buffer = sample.get_buffer()
        ok, info = buffer.map(self._gst.MapFlags.READ)
        if not ok:
            return None
        try:
            data = np.frombuffer(info.data, dtype=np.uint8)
            stride = len(data) // height  # rows may be padded to 4 bytes
            rows = data[: stride * height].reshape(height, stride)[:, : width * channels]
            image: NDArray[np.uint8] = (
                rows.reshape(height, width, channels)[..., :3] if channels > 1 else rows.reshape(height, width)
            )
            # a copy the caller owns: with gst-python's overrides info.data views the mapped buffer itself,
            # which is gone after unmap; without them it is read-only bytes
            owned: NDArray[np.uint8] = image.copy()
            return owned
        finally:
            buffer.unmap(info)

    def release(self) -> None:
        with contextlib.suppress(Exception):
            self._pipeline.set_state(self._gst.State.NULL)


def _find_appsink(gst: Any, pipeline: Any) -> Any:
    if pipeline.get_factory() is not None and pipeline.get_factory().get_name() == "appsink":
        return pipeline
    if not isinstance(pipeline, gst.Bin):  # a single element that is not an appsink ("gst:videotestsrc")
        return None
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
    chosen, why = gstreamer_route(route)
    log.info("%s: %s", name, why)
    if chosen == "opencv":
        cv2, _ = _cv2_gstreamer()
        cap = cv2.VideoCapture(line, cv2.CAP_GSTREAMER)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"OpenCV cannot start the GStreamer pipeline {name} (an element missing or failing?)")
        return OpenCVReader(cap, live=is_live_pipeline(line))
    gst, _ = _gst()
    return _AppsinkReader(gst, line, options.read_timeout, name)
