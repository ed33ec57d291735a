"""``edgeseg run``: frames from one or more sources through the pipeline (:mod:`edgeseg.pipeline`: capture and
inference overlapped), annotated, shown, saved (video, JSON Lines, event images: :mod:`edgeseg.sinks`) or served as a
live MJPEG preview, with FPS and latency reports."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from edgeseg.opencv import INSTALL_HINT, cv2_available, require_cv2
from edgeseg.sources import LiveOptions

from .options import add_model_arguments, checked_number, make_segmenter, positive_float, positive_int
from .tracking import Tracking, add_tracking_arguments, make_zoneset, wants_tracking

if TYPE_CHECKING:
    from edgeseg.sinks import Sink

HELP = "run live on a camera, stream, video or directory and report FPS and latency"
REPORT_EVERY_S = 2.0  # seconds between progress lines


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("run", help=HELP, description=HELP)
    # Without --model the built-in demo model runs (it finds the shapes of `--source demo`).
    add_model_arguments(parser, model_required=False)
    parser.add_argument(
        "--source",
        "-s",
        action="append",
        default=None,
        help="camera index (default 0) or /dev/videoN, video file, directory, glob, rtsp/rtsps/http/rtmp URL, "
        "GStreamer pipeline ('gst:... ! appsink'), 'picam' (Raspberry Pi camera, picamera2), or 'demo' (a generated "
        "clip for the built-in demo model); repeat for several sources in one run",
    )
    parser.add_argument("--show", action="store_true", help="show the annotated frames in a window (q/Esc quits)")
    parser.add_argument(
        "--save",
        default=None,
        metavar="FILE.mp4",
        help="write the annotated frames to a video (with several sources: FILE_0.mp4, FILE_1.mp4, ...)",
    )
    parser.add_argument(
        "--json",
        default=None,
        metavar="FILE.jsonl",
        help="write one JSON line per frame: source, frame index, capture time, latency, detections "
        "(class, score, box, largest polygon)",
    )
    parser.add_argument(
        "--serve",
        type=serve_address,
        default=None,
        metavar="[HOST:]PORT",
        help="serve a live preview (MJPEG over HTTP, any browser shows it) at http://HOST:PORT/; HOST defaults to "
        "127.0.0.1 (this machine only): give 0.0.0.0 to let the network in (no authentication); PORT 0 picks a "
        "free port",
    )
    parser.add_argument(
        "--save-frames",
        default=None,
        metavar="DIR",
        help="on events, save the annotated frame (SOURCE_FRAME.jpg) and its instance masks (SOURCE_FRAME.png, "
        "0 background, k the k-th detection) to DIR",
    )
    parser.add_argument(
        "--save-frames-every",
        choices=("detections", "always"),
        default="detections",
        help="what is an event for --save-frames: a frame with detections (default) or every frame",
    )
    parser.add_argument(
        "--save-frames-interval",
        dest="save_frames_min_interval",
        type=float,
        default=1.0,
        metavar="S",
        help="at most one --save-frames event per S seconds per source (default 1; 0: every event)",
    )
    parser.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="inference requests in flight, one thread each (default: the backend's optimal number, e.g. "
        "OpenVINO's under its throughput hint, at most the cores; 1 = one at a time; capture and output always "
        "run beside inference)",
    )
    parser.add_argument(
        "--live-buffer",
        type=positive_int,
        default=1,
        metavar="N",
        help="newest frames a live source keeps waiting; older ones are dropped and counted (default 1)",
    )
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="a live source that delivers no frame for S seconds is stalled and reopened (default 10)",
    )
    live = parser.add_argument_group("live sources")
    live.add_argument(
        "--reconnect",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="reopen attempts after each loss of a live source (default: without end; 0: stop at the first loss)",
    )
    live.add_argument(
        "--rtsp-transport",
        choices=("tcp", "udp"),
        default="tcp",
        help="RTSP transport (default tcp: no smeared frames)",
    )
    live.add_argument("--camera-size", type=frame_size, default=None, metavar="WxH", help="camera capture size")
    live.add_argument("--camera-fps", type=positive_float, default=None, metavar="F", help="camera frame rate")
    live.add_argument("--fourcc", default=None, metavar="CODE", help="V4L2 camera pixel format, e.g. MJPG")
    add_tracking_arguments(parser)
    return parser


def non_negative_int(text: str) -> int:
    return checked_number(text, int, "a whole number", lambda v: v >= 0, "be 0 or more")


def serve_address(text: str) -> tuple[str, int]:
    """'8080', '0.0.0.0:8080', '[::1]:8080' -> (host, port); the host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not port.isdigit() or int(port) > 65535 or (sep and not host):
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT such as 8080 or 0.0.0.0:8080, got {text!r}")
    return host, int(port)


def frame_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise argparse.ArgumentTypeError(f"expected a size such as 1280x720, got {text!r}")
    return int(width), int(height)


def live_options(args: argparse.Namespace) -> LiveOptions:
    """The live-source flags as :class:`LiveOptions` (which checks them)."""
    return LiveOptions(
        read_timeout=args.read_timeout,
        reconnect=args.reconnect,
        rtsp_transport=args.rtsp_transport,
        size=args.camera_size,
        fps=args.camera_fps,
        fourcc=args.fourcc,
    )


def resolve_model(model: str | None) -> str:
    """The model the user named, or the built-in demo model when none was given."""
    if model:
        return model
    from edgeseg.assets import demo_model_path

    path = demo_model_path()
    print(
        f"edgeseg run: no --model given, using the built-in demo model {path.name} "
        f"(classes: circle, square, triangle, star)",
        flush=True,
    )
    return str(path)


def run(args: argparse.Namespace) -> int:
    from edgeseg.annotate import draw
    from edgeseg.pipeline import Pipeline, close_sinks
    from edgeseg.sinks import ImageDirSink, JsonLinesSink, MjpegServer, VideoSink

    if args.read_timeout <= 0:
        raise ValueError(f"--read-timeout must be positive, got {args.read_timeout}")
    if args.save and Path(args.save).suffix.lower() not in (".mp4", ".avi", ".mkv", ".mov"):
        raise ValueError(f"--save needs a video file name such as out.mp4, got {args.save}")
    if args.save_frames_min_interval < 0:
        raise ValueError(f"--save-frames-interval must be 0 or more, got {args.save_frames_min_interval}")
    sources = args.source or ["0"]
    _report_source_events()
    model = resolve_model(args.model)
    args.tracking = wants_tracking(args)
    if args.tracking:
        make_zoneset(args)  # bad --zone/--line/--zones fail here, before the model loads
    from edgeseg.backends import select_backend

    # several requests in flight: OpenVINO's throughput hint sizes its streams for them (1 worker: latency)
    options = (
        {"hint": "throughput"} if select_backend(model, args.backend).name == "openvino" and args.workers != 1 else {}
    )
    segmenter = make_segmenter(args, model=model, **options)
    segmenter.warmup()
    show = args.show and _display_available()
    stats = _Stats()
    stop_reason = None
    pipeline = Pipeline(segmenter, sources, workers=args.workers, live_buffer=args.live_buffer, live=live_options(args))
    names = [s.name for s in pipeline.stats]
    print(f"edgeseg run: {segmenter!r} on {', '.join(names)} ({pipeline.workers} worker(s))", flush=True)
    tracking = (
        Tracking(args, [s.fps for s in pipeline.stats], [s.live for s in pipeline.stats]) if args.tracking else None
    )
    signals = _StopSignals()
    sinks: list[Sink] = []
    save_paths = _save_paths(args.save, len(sources))
    videos = [VideoSink(path, pipeline.stats[k].fps, source_id=k) for k, path in enumerate(save_paths)]
    try:
        sinks.extend(videos)
        if args.json:
            sinks.append(JsonLinesSink(args.json))
        if args.save_frames:
            sinks.append(
                ImageDirSink(
                    args.save_frames, every=args.save_frames_every, min_interval_s=args.save_frames_min_interval
                )
            )
        if args.serve:
            server = MjpegServer(*args.serve, sources=names)
            sinks.append(server)
            exposed = "" if server.address[0] in ("127.0.0.1", "localhost", "::1") else " (open to the network)"
            print(f"preview: {server.url}{exposed}", flush=True)
        last_report = time.perf_counter()
        for result in pipeline:
            if tracking is not None:
                result = tracking.apply(result)
            wanted = show or any(sink.wants_annotated(result) for sink in sinks)
            annotated = draw(result.image, result.detections) if wanted else None
            if annotated is not None and tracking is not None:
                annotated = tracking.draw(annotated, result.source_id)
            for sink in sinks:
                with signals.deferred():  # a frame is written and counted, a JSON line written whole, or neither
                    sink.write(result, annotated)
            if show and annotated is not None and _show(annotated):
                stop_reason = "window closed"
                break
            stats.add(result.detections.timings, result.latency_ms)
            if time.perf_counter() - last_report >= REPORT_EVERY_S:
                print(stats.line(), flush=True)
                last_report = time.perf_counter()
            if args.max_frames and stats.frames >= args.max_frames:
                stop_reason = f"--max-frames {args.max_frames} reached"
                break
        else:
            reasons = [s.stop_reason for s in pipeline.stats if s.stop_reason]
            stop_reason = "; ".join(reasons) or "end of stream"
    except KeyboardInterrupt:
        stop_reason = signals.reason
    finally:
        pipeline.stop()
        try:
            close_sinks(sinks)
        finally:
            signals()
            if show:
                require_cv2("showing frames (--show)").destroyAllWindows()
    dropped = sum(s.dropped for s in pipeline.stats)
    print(stats.summary(stop_reason, dropped), flush=True)
    if len(pipeline.stats) > 1 or any(s.reconnects for s in pipeline.stats):
        for s in pipeline.stats:
            latency = s.latency()
            shown = f", latency median {latency[0]:.0f} ms p95 {latency[1]:.0f} ms" if latency else ""
            lost = f", {s.dropped} dropped" if s.dropped else ""
            lost += f", {s.reconnects} reconnect(s)" if s.reconnects else ""
            print(f"  {s.name}: {s.done} frame(s){lost}{shown}" + (f" [{s.stop_reason}]" if s.stop_reason else ""))
    if tracking is not None:
        print("tracking:\n" + "\n".join(tracking.summary_lines(names)))
    for video, path in zip(videos, save_paths):
        if video.opened and video.size is not None:
            resized = f" ({video.resized} letterboxed to {video.size[0]}x{video.size[1]})" if video.resized else ""
            print(f"saved {video.frames} frame(s) to {path}{resized}")
    for sink in sinks:
        if isinstance(sink, ImageDirSink):
            print(f"saved {sink.events} event(s) to {sink.directory}")
    return 0


def _report_source_events() -> None:
    """Print the sources' reconnects and stalls (``edgeseg.sources`` logs them) as ``edgeseg: ...`` lines."""
    logger = logging.getLogger("edgeseg")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("edgeseg: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _save_paths(save: str | None, n_sources: int) -> list[str]:
    if not save:
        return []
    if n_sources == 1:
        return [save]
    path = Path(save)
    return [str(path.with_name(f"{path.stem}_{k}{path.suffix}")) for k in range(n_sources)]


class _StopSignals:
    """While installed, Ctrl-C and SIGTERM raise KeyboardInterrupt in the main thread (so writers are closed and
    the summary printed), except inside :meth:`deferred`, where one is remembered and raised at its end (a frame
    is written and counted, or neither). Calling the object puts the previous handlers back."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._deferring = False
        self._previous: dict[int, object] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
            if signal.getsignal(sig) is default:  # leave an ignored or custom handler alone
                self._previous[sig] = signal.signal(sig, self._handle)

    @property
    def reason(self) -> str:
        return "terminated (SIGTERM)" if self.received == signal.SIGTERM else "interrupted (Ctrl-C)"

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signum
        if not self._deferring:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self.received is not None:
            raise KeyboardInterrupt

    def __call__(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous = {}


class _Stats:
    """Frame count, FPS and per-stage latency medians (last 100 frames for progress lines)."""

    def __init__(self):
        self.frames = 0
        self.start = time.perf_counter()
        # (preprocess, inference, postprocess ms, perf_counter time) of the last frames
        self.recent: deque[tuple[float, float, float, float]] = deque(maxlen=100)
        self.all: list[tuple[float, float, float]] = []
        self.latencies: list[float] = []

    def add(self, timings: dict, latency_ms: float) -> None:
        self.frames += 1
        row = (timings["preprocess"], timings["inference"], timings["postprocess"], time.perf_counter())
        self.recent.append(row)
        self.all.append(row[:3])
        self.latencies.append(latency_ms)

    def line(self) -> str:
        fps = self.frames / max(time.perf_counter() - self.start, 1e-9)
        if len(self.recent) >= 2:
            span = self.recent[-1][3] - self.recent[0][3]
            fps = (len(self.recent) - 1) / span if span > 0 else fps
        return f"frames {self.frames}  {fps:.1f} FPS  " + _medians([r[:3] for r in self.recent])

    def summary(self, reason: str | None, dropped: int = 0) -> str:
        elapsed = time.perf_counter() - self.start
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        text = f"summary: {self.frames} frame(s) in {elapsed:.1f} s, {fps:.1f} FPS"
        if self.all:
            text += "  " + _medians(self.all)
        if self.latencies:
            ordered = sorted(self.latencies)
            p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
            text += f"  latency median {statistics.median(ordered):.1f} ms p95 {p95:.1f} ms"
        if dropped:
            text += f"  dropped {dropped}"
        return text + (f"  [{reason}]" if reason else "")


def _medians(rows) -> str:
    if not rows:
        return ""
    pre, inf, post = (statistics.median(col) for col in zip(*rows))
    return f"median pre {pre:.1f} ms  inf {inf:.1f} ms  post {post:.1f} ms"


def _display_available() -> bool:
    if not cv2_available():
        print(f"edgeseg: --show ignored: no OpenCV ({INSTALL_HINT})", file=sys.stderr)
        return False
    cv2 = require_cv2("showing frames (--show)")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("edgeseg: --show ignored: no display (DISPLAY/WAYLAND_DISPLAY not set)", file=sys.stderr)
        return False
    try:
        cv2.namedWindow("edgeseg", cv2.WINDOW_NORMAL)
    except cv2.error:
        print(
            "edgeseg: --show ignored: this OpenCV has no GUI support "
            "(opencv-python-headless); install opencv-python for windows",
            file=sys.stderr,
        )
        return False
    return True


def _show(image) -> bool:
    """Show a frame; True when the user asked to quit (q or Esc)."""
    cv2 = require_cv2("showing frames (--show)")
    cv2.imshow("edgeseg", image)
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
