"""Segment a Jetson CSI camera (nvarguscamerasrc) through a GStreamer pipeline, printing the route it takes.

The camera's frames come out of the ISP in NVMM memory; ``nvvidconv`` copies them to system memory as BGRx and
``videoconvert`` drops the x, so the appsink hands edgeseg BGR frames. The appsink keeps only the newest frame
(``drop=true max-buffers=1``): a slow model skips frames instead of falling behind.

On the Jetson (JetPack 5/6: its OpenCV has GStreamer, so the pipeline runs through OpenCV):

    python3 -m venv --system-site-packages ~/edgeseg-venv    # sees JetPack's cv2 (with GStreamer)
    ~/edgeseg-venv/bin/pip install 'edgeseg[onnx]' && ~/edgeseg-venv/bin/pip uninstall -y opencv-python-headless
    ~/edgeseg-venv/bin/python examples/jetson_csi.py --model yolov8n-seg.onnx --sensor-id 0

``--pipeline`` runs any other launch line ending in an appsink; anywhere GStreamer is installed (with a
GStreamer-enabled cv2 or PyGObject) this runs on a test pattern with the built-in demo model:

    python examples/jetson_csi.py --max-frames 20 \\
        --pipeline "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert ! appsink"
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from edgeseg import Segmenter
from edgeseg.errors import SourceError
from edgeseg.sources import LiveOptions, gstreamer_route

CSI_PIPELINE = (
    "nvarguscamerasrc sensor-id={sensor_id} ! "
    "video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1 ! "
    "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
    "appsink drop=true max-buffers=1"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file or folder (default: the built-in demo model)")
    parser.add_argument("--sensor-id", type=int, default=0, help="CSI camera number (default 0)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--pipeline", help="any GStreamer launch line ending in an appsink, instead of the CSI one")
    parser.add_argument("--conf", type=float, default=0.25, help="minimum confidence (default 0.25)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    line = args.pipeline or CSI_PIPELINE.format(
        sensor_id=args.sensor_id, width=args.width, height=args.height, fps=args.fps
    )
    try:
        route, why = gstreamer_route()
    except SourceError as exc:
        print(f"jetson_csi.py: no way to run GStreamer here: {exc}", file=sys.stderr)
        return 2
    print(f"GStreamer route: {route}: {why}", flush=True)
    print(f"pipeline: {line}", flush=True)
    if args.model:
        model = args.model
    else:
        from edgeseg.assets import demo_model_path

        model = str(demo_model_path())
    segmenter = Segmenter(model, conf=args.conf)
    segmenter.warmup()  # the first inference allocates: not a camera frame's latency
    print(repr(segmenter), flush=True)
    frames = 0
    start = time.perf_counter()
    try:
        # read_timeout: the Argus daemon may take a few seconds to start a camera
        for result in segmenter.stream(f"gst:{line}", live=LiveOptions(read_timeout=15.0)):
            frames += 1
            counts = Counter(result.detections.class_names)
            listed = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "nothing"
            print(f"frame {result.index}: {listed}  latency {result.latency_ms:.0f} ms", flush=True)
            if args.max_frames and frames >= args.max_frames:
                break
    except KeyboardInterrupt:
        pass
    except SourceError as exc:  # the camera is missing or busy (is nvargus-daemon running?), a bad launch line
        print(f"jetson_csi.py: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(f"done: {frames} frame(s) in {elapsed:.1f} s, {frames / elapsed if elapsed else 0:.1f} FPS", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
