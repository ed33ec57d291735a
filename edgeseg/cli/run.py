"""``edgeseg run``: the live loop -- read frames, segment, annotate, show/save, report FPS and latency."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import deque
from pathlib import Path

from .options import add_model_arguments, make_segmenter, positive_int

HELP = "run live on a camera, stream, video or directory and report FPS and latency"
REPORT_EVERY_S = 2.0  # seconds between progress lines


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("run", help=HELP, description=HELP)
    # Without --model the built-in demo model runs (it finds the shapes of `--source demo`).
    add_model_arguments(parser, model_required=False)
    parser.add_argument(
        "--source",
        "-s",
        default="0",
        help="camera index (default 0), video file, rtsp/http URL, directory, glob, or "
        "'demo' (a generated clip for the built-in demo model)",
    )
    parser.add_argument("--show", action="store_true", help="show the annotated frames in a window (q/Esc quits)")
    parser.add_argument("--save", default=None, metavar="FILE.mp4", help="write the annotated frames to a video")
    parser.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="stop when a live source delivers no frame for S seconds (default 10)",
    )
    return parser


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
    from edgeseg.sources import open_source

    if args.read_timeout <= 0:
        raise ValueError(f"--read-timeout must be positive, got {args.read_timeout}")
    if args.save and Path(args.save).suffix.lower() not in (".mp4", ".avi", ".mkv", ".mov"):
        raise ValueError(f"--save needs a video file name such as out.mp4, got {args.save}")
    segmenter = make_segmenter(args, model=resolve_model(args.model))
    segmenter.warmup()
    show = args.show and _display_available()
    stats = _Stats()
    writer = None
    stop_reason = None
    source = open_source(args.source, read_timeout=args.read_timeout)
    print(f"edgeseg run: {segmenter!r} on {args.source}", flush=True)
    try:
        last_report = time.perf_counter()
        for frame in source:
            detections = segmenter(frame.image)
            annotated = draw(frame.image, detections)
            if args.save:
                writer = writer or _open_writer(args.save, annotated.shape, source.fps)
                writer.write(annotated)
            if show and _show(annotated):
                stop_reason = "window closed"
                break
            stats.add(detections.timings)
            if time.perf_counter() - last_report >= REPORT_EVERY_S:
                print(stats.line(), flush=True)
                last_report = time.perf_counter()
            if args.max_frames and stats.frames >= args.max_frames:
                stop_reason = f"--max-frames {args.max_frames} reached"
                break
        else:
            stop_reason = source.stop_reason or "end of stream"
    except KeyboardInterrupt:
        stop_reason = "interrupted (Ctrl-C)"
    finally:
        source.close()
        if writer is not None:
            writer.release()
        if show:
            import cv2

            cv2.destroyAllWindows()
    print(stats.summary(stop_reason), flush=True)
    if args.save and writer is not None:
        print(f"saved {stats.frames} frame(s) to {args.save}")
    return 0


class _Stats:
    """Frame count, FPS and per-stage latency medians (last 100 frames for progress lines)."""

    def __init__(self):
        self.frames = 0
        self.start = time.perf_counter()
        # (preprocess, inference, postprocess ms, perf_counter time) of the last frames
        self.recent: deque[tuple[float, float, float, float]] = deque(maxlen=100)
        self.all: list[tuple[float, float, float]] = []

    def add(self, timings: dict) -> None:
        self.frames += 1
        row = (timings["preprocess"], timings["inference"], timings["postprocess"], time.perf_counter())
        self.recent.append(row)
        self.all.append(row[:3])

    def line(self) -> str:
        fps = self.frames / max(time.perf_counter() - self.start, 1e-9)
        if len(self.recent) >= 2:
            span = self.recent[-1][3] - self.recent[0][3]
            fps = (len(self.recent) - 1) / span if span > 0 else fps
        return f"frames {self.frames}  {fps:.1f} FPS  " + _medians([r[:3] for r in self.recent])

    def summary(self, reason: str | None) -> str:
        elapsed = time.perf_counter() - self.start
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        text = f"summary: {self.frames} frame(s) in {elapsed:.1f} s, {fps:.1f} FPS"
        if self.all:
            text += "  " + _medians(self.all)
        return text + (f"  [{reason}]" if reason else "")


def _medians(rows) -> str:
    if not rows:
        return ""
    pre, inf, post = (statistics.median(col) for col in zip(*rows))
    return f"median pre {pre:.1f} ms  inf {inf:.1f} ms  post {post:.1f} ms"


def _open_writer(path: str, shape, fps):
    import cv2

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    h, w = shape[:2]
    fourcc = cv2.VideoWriter.fourcc(*("mp4v" if path.lower().endswith((".mp4", ".mov")) else "MJPG"))
    writer = cv2.VideoWriter(path, fourcc, fps or 30.0, (w, h))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}")
    return writer


def _display_available() -> bool:
    import cv2

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
    import cv2

    cv2.imshow("edgeseg", image)
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
