"""Segment the Raspberry Pi camera (picamera2 / libcamera) live: per-frame counts and FPS, optionally saved.

On the Pi (Raspberry Pi OS Bookworm, camera connected and enabled):

    sudo apt install python3-picamera2
    python3 -m venv --system-site-packages ~/edgeseg-venv   # the venv must see the system's picamera2
    ~/edgeseg-venv/bin/pip install 'edgeseg[ncnn]'          # or [onnx], [tflite]
    ~/edgeseg-venv/bin/python examples/picam.py --model yolov8n-seg_ncnn_model --size 640x480 --fps 15

``--source picam:1`` is the second camera (Pi 5). Anywhere else it runs on the generated demo clip with the
built-in demo model, which is what the tests do:

    python examples/picam.py --source demo --max-frames 20
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from edgeseg import Segmenter
from edgeseg.errors import SourceError
from edgeseg.sinks import VideoSink
from edgeseg.sources import LiveOptions


def size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file or folder (default: the built-in demo model)")
    parser.add_argument("--source", default="picam", help="picam, picam:1, or any edgeseg source (default picam)")
    parser.add_argument("--size", type=size, default=(1280, 720), help="camera frame size WxH (default 1280x720)")
    parser.add_argument("--fps", type=float, default=30.0, help="camera frame rate (default 30)")
    parser.add_argument("--conf", type=float, default=0.25, help="minimum confidence (default 0.25)")
    parser.add_argument("--save", metavar="FILE.mp4", help="also write the annotated frames to a video")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    return parser.parse_args(argv)


def default_model(model: str | None) -> str:
    if model:
        return model
    from edgeseg.assets import demo_model_path

    return str(demo_model_path())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    segmenter = Segmenter(default_model(args.model), conf=args.conf)
    segmenter.warmup()  # the first inference allocates: not a camera frame's latency
    print(f"{segmenter!r} on {args.source} ({args.size[0]}x{args.size[1]} at {args.fps:g} FPS asked)", flush=True)
    live = LiveOptions(size=args.size, fps=args.fps)
    video = VideoSink(args.save, fps=args.fps) if args.save else None  # opened on the first frame
    frames = 0
    start = last = time.perf_counter()
    try:
        for result in segmenter.stream(args.source, live=live):
            now = time.perf_counter()
            fps = 1.0 / (now - last) if frames and now > last else 0.0
            last = now
            frames += 1
            counts = Counter(result.detections.class_names)
            listed = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "nothing"
            print(
                f"frame {result.index}: {len(result.detections)} object(s): {listed}  "
                f"{fps:.1f} FPS  latency {result.latency_ms:.0f} ms",
                flush=True,
            )
            if video is not None:
                video.write(result)  # draws the detections
            if args.max_frames and frames >= args.max_frames:
                break
    except KeyboardInterrupt:
        pass
    except SourceError as exc:  # no camera, no picamera2: say so, without a traceback
        print(f"picam.py: {exc}", file=sys.stderr)
        return 2
    finally:
        if video is not None:
            video.close()  # finishes the file
    elapsed = time.perf_counter() - start
    print(f"done: {frames} frame(s) in {elapsed:.1f} s, {frames / elapsed if elapsed else 0:.1f} FPS", flush=True)
    if video is not None and video.opened:
        print(f"saved {video.frames} frame(s) to {args.save}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
