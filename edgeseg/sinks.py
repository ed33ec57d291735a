"""Where results go: an annotated video, JSON Lines, a folder of event images, a live MJPEG preview over HTTP.

    from edgeseg import Segmenter
    from edgeseg.sinks import JsonLinesSink, MjpegServer, VideoSink

    seg = Segmenter("yolov8n-seg.onnx")
    with VideoSink("out.mp4", fps=30) as video, JsonLinesSink("frames.jsonl") as lines, MjpegServer() as preview:
        print("preview:", preview.url)  # http://127.0.0.1:8080/
        for result in seg.stream("rtsp://camera/stream"):
            for sink in (video, lines, preview):
                sink.write(result)

Every sink has ``write(result, annotated=None)``, ``close()`` (safe to call twice) and is a context manager.
``annotated`` is the frame with the detections drawn (:func:`edgeseg.annotate.draw`): a caller with several
sinks draws once when :meth:`Sink.wants_annotated` says some sink needs it and hands the picture to all;
a sink given ``None`` that needs one draws it itself.

The sinks hold no threads of their own except :class:`MjpegServer` (an HTTP server on a daemon thread, one
thread per viewer); OpenCV is imported when a frame is encoded or written.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import parse_qs, urlsplit

import numpy as np
from numpy.typing import NDArray

from .annotate import draw
from .fileio import atomic_write_with
from .opencv import require_cv2
from .ops.letterbox import letterbox

if TYPE_CHECKING:  # pragma: no cover
    from os import PathLike

    from .ops.masks import MaskSet
    from .pipeline import StreamResult

__all__ = [
    "ImageDirSink",
    "JsonLinesSink",
    "MjpegServer",
    "Sink",
    "VideoSink",
    "coco_rle",
    "json_record",
    "safe_name",
]

PathArg = Union[str, "PathLike[str]"]
Image = NDArray[np.uint8]


class Sink:
    """The interface of every sink: :meth:`write` each result, :meth:`close` once at the end."""

    def wants_annotated(self, result: StreamResult) -> bool:
        """Whether :meth:`write` would use the annotated frame of ``result`` (a caller draws only if some sink
        wants it; a sink given ``None`` draws for itself when it needs to)."""
        return False

    def write(self, result: StreamResult, annotated: Image | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release what the sink holds; calling it again does nothing."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _annotated(result: StreamResult, annotated: Image | None) -> Image:
    return annotated if annotated is not None else draw(result.image, result.detections)


# ---- video --------------------------------------------------------------------------------------------------


class VideoSink(Sink):
    """Annotated frames to a video file (``.mp4``/``.mov``: MPEG-4 Part 2, else Motion JPEG), opened on the first
    frame at that frame's size.

    A later frame of another size (a stream that reconnected at another resolution) is letterboxed into the
    video's size: scaled to fit with its aspect ratio kept, centred on black, rather than dropped (OpenCV's
    writer silently drops frames of the wrong size). ``frames`` counts the frames written; :meth:`close`
    releases the writer, which finishes the file (an MP4 is playable only after it).

    Args:
        path: the video file (its folder is created).
        fps: the frame rate written into the file (``None``: 30).
        source_id: write only the results of this source (``None``: all).
        annotate: write the annotated frame (``False``: the frame as captured).
    """

    def __init__(
        self, path: PathArg, fps: float | None = None, *, source_id: int | None = None, annotate: bool = True
    ) -> None:
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.source_id = source_id
        self.annotate = annotate
        self.frames = 0  # frames written
        self.resized = 0  # of them, frames letterboxed to the video's size
        self.size: tuple[int, int] | None = None  # (width, height) once opened
        self._writer: Any = None
        self._closed = False

    @property
    def opened(self) -> bool:
        """Whether the file was created (on the first frame)."""
        return self.size is not None

    def wants_annotated(self, result: StreamResult) -> bool:
        return self.annotate and self._takes(result)

    def _takes(self, result: StreamResult) -> bool:
        return self.source_id is None or result.source_id == self.source_id

    def write(self, result: StreamResult, annotated: Image | None = None) -> None:
        if not self._takes(result):
            return
        self.write_image(_annotated(result, annotated) if self.annotate else result.image)

    def write_image(self, image: Image) -> None:
        """Write one BGR uint8 frame."""
        if self._closed:
            raise ValueError(f"video {self.path} is closed")
        cv2 = require_cv2("writing a video")
        if self._writer is None:
            self._open(cv2, image.shape[1], image.shape[0])
        assert self.size is not None
        if (image.shape[1], image.shape[0]) != self.size:
            image = letterbox_to(image, self.size)
            self.resized += 1
        self._writer.write(image)
        self.frames += 1

    def _open(self, cv2: ModuleType, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        name = str(self.path)
        fourcc = cv2.VideoWriter.fourcc(*("mp4v" if name.lower().endswith((".mp4", ".mov")) else "MJPG"))
        writer = cv2.VideoWriter(name, fourcc, self.fps, (width, height))
        if not writer.isOpened():
            raise OSError(f"cannot write video {name}")
        self._writer, self.size = writer, (width, height)

    def close(self) -> None:
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()


def letterbox_to(image: Image, size: tuple[int, int]) -> Image:
    """``image`` scaled to fit ``size`` (width, height) with its aspect ratio kept, centred on black (the native
    letterbox, as for the model input, in uint8 HWC)."""
    width, height = size
    out, _ = letterbox(image, (height, width), fill=0, layout="nhwc", dtype="uint8", bgr_to_rgb=False)
    fitted: Image = out[0]
    return fitted


# ---- JSON Lines ---------------------------------------------------------------------------------------------


def json_record(result: StreamResult, polygons: str | None = "largest", rle: bool = False) -> dict[str, Any]:
    """One JSON Lines record: where and when the frame came from (``time``: Unix seconds of the capture), then
    its detections (class, score, box, track id when tracked, polygons and, with ``rle``, a COCO RLE of each mask),
    then the result's analytics (zone and line counts, events), if any."""
    record: dict[str, Any] = {
        "source": result.source,
        "source_id": result.source_id,
        "frame": result.index,
        "time": round(result.captured_unix, 3),
        "latency_ms": round(result.latency_ms, 2),
        **result.detections.to_dict(polygons=polygons),
        **(result.analytics or {}),
    }
    masks = result.detections.masks
    if rle and masks is not None:
        for i, row in enumerate(record["detections"]):
            row["rle"] = coco_rle(masks, i)
    return record


def coco_rle(masks: MaskSet, i: int) -> dict[str, Any]:
    """Instance ``i``'s mask as an uncompressed COCO RLE of the whole image: ``{"size": [H, W], "counts": [...]}``,
    run lengths in column-major order starting with background (``pycocotools.mask.frPyObjects`` reads it).
    Built from the mask's box region only."""
    H, W = masks.image_shape
    x0, y0, x1, y1 = (int(v) for v in masks.rects[i])
    columns = np.zeros((x1 - x0, H), bool)
    columns[:, y0:y1] = masks.bitmap(i).T != 0
    flat = columns.reshape(-1)
    if flat.size == 0:
        return {"size": [H, W], "counts": [H * W]}
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    if flat[0]:
        counts.insert(0, 0)
    counts[0] += x0 * H  # the columns left of the box
    tail = (W - x1) * H  # and right of it
    if tail:
        if flat[-1]:
            counts.append(tail)
        else:
            counts[-1] += tail
    return {"size": [H, W], "counts": [int(c) for c in counts]}


class JsonLinesSink(Sink):
    """One JSON line per frame (:func:`json_record`), written whole and flushed line by line.

    Args:
        path: the ``.jsonl`` file (its folder is created; an existing file is replaced).
        polygons: ``"largest"`` (the largest outline of each mask), ``"all"`` or ``None`` (none).
        rle: add each mask as a COCO RLE (``"rle"``: ``{"size": [H, W], "counts": [...]}``).
    """

    def __init__(self, path: PathArg, *, polygons: str | None = "largest", rle: bool = False) -> None:
        if polygons not in ("largest", "all", None):
            raise ValueError(f"polygons must be 'largest', 'all' or None, got {polygons!r}")
        self.path = Path(path)
        self.polygons = polygons
        self.rle = rle
        self.lines = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, result: StreamResult, annotated: Image | None = None) -> None:
        line = json.dumps(json_record(result, self.polygons, self.rle)) + "\n"
        self._file.write(line)
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        self._file.close()


# ---- images on events ---------------------------------------------------------------------------------------


def safe_name(text: str, limit: int = 80) -> str:
    """``text`` as a file name part: letters, digits, ``.``, ``-`` and ``_`` (runs of others become one ``_``),
    no leading dot, at most ``limit`` characters; ``"source"`` if nothing is left."""
    name = re.sub(r"[^A-Za-z0-9.\-]+", "_", text).strip("._-")[:limit].strip("._-")
    return name or "source"


class ImageDirSink(Sink):
    """On an event, the annotated frame as ``<source>_<frame>.jpg`` and its instance masks as
    ``<source>_<frame>.png`` (a label image: 0 background, k the k-th detection of the frame, the order of the
    JSON rows; 8-bit, 16-bit above 255 detections) in ``directory``.

    An event is a frame with at least one detection of ``classes`` (ids or names; ``None``: any class), or
    every frame with ``every="always"``; at most one event per ``min_interval_s`` seconds of capture time per
    source. ``<source>`` is the source's name made file-name safe (:func:`safe_name`), ``<frame>`` the frame
    index with six digits. Each file is written under a hidden temporary name in the same folder and renamed
    into place, so a reader never sees half a picture.
    """

    def __init__(
        self,
        directory: PathArg,
        *,
        every: str = "detections",
        classes: list[int | str] | tuple[int | str, ...] | None = None,
        min_interval_s: float = 1.0,
        quality: int = 90,
    ) -> None:
        if every not in ("detections", "always"):
            raise ValueError(f"every must be 'detections' or 'always', got {every!r}")
        if not min_interval_s >= 0:
            raise ValueError(f"min_interval_s must be 0 or more, got {min_interval_s}")
        self.directory = Path(directory)
        self.every = every
        self.classes = list(classes) if classes is not None else None
        self.min_interval_s = float(min_interval_s)
        self.quality = int(quality)
        self.events = 0
        self.written: list[Path] = []  # the files of the last event
        self._last: dict[int, float] = {}  # source id -> capture time of its last event
        self.directory.mkdir(parents=True, exist_ok=True)

    def is_event(self, result: StreamResult) -> bool:
        """Whether ``result`` would be saved now (an event, and the source's interval has passed)."""
        last = self._last.get(result.source_id)
        if last is not None and result.captured - last < self.min_interval_s:
            return False
        if self.every == "always":
            return True
        detections = result.detections
        if self.classes is not None:
            detections = detections.with_class(*self.classes)
        return len(detections) > 0

    def wants_annotated(self, result: StreamResult) -> bool:
        return self.is_event(result)

    def write(self, result: StreamResult, annotated: Image | None = None) -> None:
        if not self.is_event(result):
            return
        cv2 = require_cv2("saving event images")
        stem = f"{safe_name(result.source)}_{result.index:06d}"
        picture = _encode(cv2, ".jpg", _annotated(result, annotated), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        written = [atomic_write_with(self.directory / f"{stem}.jpg", lambda fh: fh.write(picture))]
        masks = result.detections.masks
        if masks is not None:
            labels = masks.label_map()
            labels_image = labels.astype(np.uint8 if len(masks) <= 255 else np.uint16)
            png = _encode(cv2, ".png", labels_image, [])
            written.append(atomic_write_with(self.directory / f"{stem}.png", lambda fh: fh.write(png)))
        self._last[result.source_id] = result.captured
        self.events += 1
        self.written = written


def _encode(cv2: ModuleType, ext: str, image: NDArray[Any], params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise OSError(f"OpenCV could not encode a {ext} image of shape {image.shape}")
    return bytes(buf)


# ---- MJPEG preview over HTTP --------------------------------------------------------------------------------

BOUNDARY = "edgesegframe"
_POLL_S = 0.25  # how often waiting viewer threads look at the closing flag


@dataclass
class _Latest:
    """The newest frame of one source; encoded to JPEG once, by the first viewer that needs it."""

    seq: int
    result: StreamResult
    annotated: Image | None
    jpeg: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class _ClosedError(Exception):
    """The server is shutting down (ends a viewer's thread)."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # MjpegServer.close joins the viewer threads itself, with a time limit
    preview: MjpegServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a viewer that went away is no error; the preview never writes to stderr


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class MjpegServer(Sink):
    """A live MJPEG preview of the annotated frames over HTTP, for headless devices: any browser shows it.

    ``/`` is a page with one live picture per source, ``/stream.mjpg?source=k`` the
    ``multipart/x-mixed-replace`` stream of source k's newest annotated frame (JPEG), ``/snapshot.jpg?source=k``
    one JPEG. A new frame replaces the previous one: each viewer gets the newest frame when it is ready for
    one, so a slow viewer skips frames and never slows the pipeline. Frames are drawn (if the caller did not)
    and encoded in the viewers' threads, once per frame whatever the number of viewers, and only while
    someone watches. A viewer that disconnects is dropped quietly.

    It binds to ``host`` (the local machine only by default: give ``"0.0.0.0"`` or ``"::"`` to let the network
    in; there is no authentication) and ``port`` (0: a free port; :attr:`address` and :attr:`url` tell which).
    The server runs on a daemon thread from construction; :meth:`close` stops it and its viewers.

    Args:
        sources: the sources' names, in order (the page lists them; sources seen later are added).
        quality: JPEG quality (1-100).
        max_viewers: streams served at once; more get 503.
        snapshot_timeout: seconds ``/snapshot.jpg`` waits for a source's first frame (then 503).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        sources: list[str] | None = None,
        quality: int = 80,
        max_viewers: int = 16,
        snapshot_timeout: float = 5.0,
    ) -> None:
        if not 1 <= int(quality) <= 100:
            raise ValueError(f"quality must be between 1 and 100, got {quality}")
        self.quality = int(quality)
        self.max_viewers = int(max_viewers)
        self.snapshot_timeout = float(snapshot_timeout)
        self._names: dict[int, str] = dict(enumerate(sources or []))
        self._latest: dict[int, _Latest] = {}
        self._seq = 0
        self._cond = threading.Condition()
        self._closing = False
        self._viewers: dict[threading.Thread, socket.socket] = {}
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        try:
            self._server = server_class((host, int(port)), _Handler)
        except OSError as exc:  # the port is taken, the address is not this machine's, ...
            raise OSError(f"cannot serve the preview on {host}:{port}: {exc.strerror or exc}") from exc
        self._server.preview = self
        bound = self._server.server_address
        self.address: tuple[str, int] = (host, int(bound[1]))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_S}, name="edgeseg-mjpeg", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    @property
    def viewers(self) -> int:
        """Streams being served now."""
        with self._cond:
            return len(self._viewers)

    def write(self, result: StreamResult, annotated: Image | None = None) -> None:
        with self._cond:
            if self._closing:
                return
            self._seq += 1
            self._names.setdefault(result.source_id, result.source)
            self._latest[result.source_id] = _Latest(self._seq, result, annotated)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
            viewers = dict(self._viewers)
        for sock in viewers.values():  # wakes a viewer blocked in a send to a stalled client
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
        for thread in viewers:
            thread.join(timeout=5.0)

    # ---- used by the request handler ------------------------------------------------------------------------

    def page(self) -> str:
        with self._cond:
            names = dict(self._names) or {0: "source"}
        figures = "\n".join(
            f'<figure><img src="/stream.mjpg?source={k}" alt="{html.escape(name)}" data-source="{k}">'
            f"<figcaption>{html.escape(name)} <span class=size></span></figcaption></figure>"
            for k, name in sorted(names.items())
        )
        return _PAGE.replace("{figures}", figures)

    def known(self, sid: int) -> bool:
        with self._cond:
            return sid in self._names or (sid == 0 and not self._names)

    def frame(self, sid: int, after: int, timeout: float | None) -> tuple[int, bytes] | None:
        """(sequence number, JPEG) of source ``sid``'s newest frame once it is newer than ``after``; None when
        ``timeout`` passes first. Raises :class:`_ClosedError` when the server closes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closing:
                    raise _ClosedError
                latest = self._latest.get(sid)
                if latest is not None and latest.seq > after:
                    break
                wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
                if wait <= 0:
                    return None
                self._cond.wait(wait)
        with latest.lock:
            if latest.jpeg is None:
                cv2 = require_cv2("the MJPEG preview")
                image = _annotated(latest.result, latest.annotated)
                latest.jpeg = _encode(cv2, ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            return latest.seq, latest.jpeg

    def add_viewer(self, sock: socket.socket) -> bool:
        with self._cond:
            if self._closing or len(self._viewers) >= self.max_viewers:
                return False
            self._viewers[threading.current_thread()] = sock
            return True

    def remove_viewer(self) -> None:
        with self._cond:
            self._viewers.pop(threading.current_thread(), None)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = 10.0  # a client that takes no data for this long is dropped
    server_version = "edgeseg"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        preview = self.server.preview
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            sid = int(query.get("source", ["0"])[0])
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST, "source must be a number")
            return
        try:
            if url.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", preview.page().encode())
            elif url.path in ("/stream.mjpg", "/snapshot.jpg") and not preview.known(sid):
                self.send_error(HTTPStatus.NOT_FOUND, f"no source {sid}")
            elif url.path == "/snapshot.jpg":
                frame = preview.frame(sid, -1, timeout=preview.snapshot_timeout)
                if frame is None:
                    self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
                else:
                    self._send(HTTPStatus.OK, "image/jpeg", frame[1])
            elif url.path == "/stream.mjpg":
                self._stream(preview, sid)
            else:
                self.send_error(HTTPStatus.NOT_FOUND)
        except (_ClosedError, OSError):  # closing, or the viewer went away (BrokenPipe, ConnectionReset, timeout)
            self.close_connection = True

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, preview: MjpegServer, sid: int) -> None:
        if not preview.add_viewer(self.connection):
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "too many viewers")
            return
        threading.current_thread().name = "edgeseg-mjpeg-viewer"
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            seq = -1
            while True:
                frame = preview.frame(sid, seq, timeout=None)
                assert frame is not None
                seq, jpeg = frame
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()
        finally:
            preview.remove_viewer()


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgeseg preview</title>
<style>
body { margin: 0; padding: 8px; background: #111; color: #ddd; font: 14px system-ui, sans-serif; }
figure { display: inline-block; margin: 4px; }
img { display: block; max-width: 100%; background: #000; }
figcaption { padding: 2px 0; }
</style>
</head>
<body>
{figures}
<script>
// the size of each picture once its first frame arrived, shown beside the source name
function sizes() {
  for (const img of document.querySelectorAll("img[data-source]")) {
    if (img.naturalWidth > 0) {
      const size = img.naturalWidth + "x" + img.naturalHeight;
      img.dataset.size = size;
      img.parentElement.querySelector(".size").textContent = "(" + size + ")";
    }
  }
}
setInterval(sizes, 250);
</script>
</body>
</html>
"""
