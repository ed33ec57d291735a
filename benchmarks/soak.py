"""Soak: many frames from a looping live stream through the pipeline; memory, threads, open files and latency.

    python benchmarks/soak.py                       # 10,000 frames, the demo model, a stream of the demo clip
    python benchmarks/soak.py --frames 2000 --model yolov8n-seg.onnx --source rtsp://camera/stream

Without ``--source`` it serves the generated demo clip (shapes the built-in demo model finds, so masks and
polygons are made on every frame) as a live MPEG-TS stream over HTTP on 127.0.0.1 with ffmpeg, looping without
end, at 30 FPS. Each result is drawn and written as a JSON line (to a temporary file) as ``edgeseg run --json``
would. Printed: resident memory after warm-up and at the end (and its growth), threads and open files at both
points, capture-to-result latency median and p95 per 1,000 frames and overall, frames dropped, reconnects.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_demo_clip(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    import cv2

    from edgeseg.synthetic.clip import iter_clip_frames

    clip = tmp / "demo.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (640, 360))
    for image in iter_clip_frames(180, size=(640, 360), seed=0):
        writer.write(image)
    writer.release()
    url = f"http://127.0.0.1:{_free_port()}/live.ts"
    cmd = [shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
           "-i", str(clip), "-c:v", "mpeg2video", "-q:v", "4", "-g", "30", "-f", "mpegts", "-listen", "1", url]  # fmt: skip
    server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    time.sleep(1.0)  # ffmpeg listens at once; its one client must not be a probe
    return server, url


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000, help="frames before the first memory reading")
    parser.add_argument("--model", default=None, help="default: the built-in demo model")
    parser.add_argument("--source", default=None, help="a live stream URL (default: the demo clip served here)")
    args = parser.parse_args(argv)

    from edgeseg import Segmenter
    from edgeseg.annotate import draw
    from edgeseg.assets import demo_model_path
    from edgeseg.pipeline import Pipeline
    from edgeseg.sources import LiveOptions

    segmenter = Segmenter(args.model or demo_model_path())
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        server, url = (None, args.source) if args.source else _serve_demo_clip(tmp)
        latencies: list[float] = []
        base: dict[str, float] = {}
        end: dict[str, float] = {}
        try:
            with (
                open(tmp / "frames.jsonl", "w", encoding="utf-8") as out,
                Pipeline(segmenter, url, live=LiveOptions(read_timeout=5.0)) as run,
            ):
                t0 = time.perf_counter()
                for n, result in enumerate(run, 1):
                    draw(result.image, result.detections)
                    record = {"frame": result.index, **result.detections.to_dict()}
                    out.write(json.dumps(record) + "\n")
                    latencies.append(result.latency_ms)
                    if n == args.warmup:
                        base = {"rss": _rss_mb(), "threads": threading.active_count(), "files": _open_files()}
                        print(f"after {n} frames: RSS {base['rss']:.1f} MB, {base['threads']} threads, "
                              f"{base['files']} open files", flush=True)  # fmt: skip
                    if n % 1000 == 0:
                        window = latencies[-1000:]
                        print(f"frames {n:6d}  RSS {_rss_mb():7.1f} MB  threads {threading.active_count()}  "
                              f"files {_open_files()}  latency median {statistics.median(window):6.1f} ms "
                              f"p95 {_p95(window):6.1f} ms", flush=True)  # fmt: skip
                    if n >= args.frames:  # read while the pipeline still runs, as after warm-up
                        end = {"rss": _rss_mb(), "threads": threading.active_count(), "files": _open_files()}
                        break
                elapsed = time.perf_counter() - t0
                stats = run.stats[0]
        finally:
            if server is not None:
                server.kill()
                server.wait()
    if not base or not end:
        print(f"only {len(latencies)} frames: fewer than --warmup or --frames", file=sys.stderr)
        return 1
    print(f"{len(latencies)} frames in {elapsed:.0f} s ({len(latencies) / elapsed:.1f} FPS), "
          f"{stats.dropped} dropped, {stats.reconnects} reconnects")  # fmt: skip
    print(f"RSS after warm-up {base['rss']:.1f} MB, at the end {end['rss']:.1f} MB: "
          f"growth {end['rss'] - base['rss']:+.1f} MB")  # fmt: skip
    print(f"threads {base['threads']} -> {end['threads']}, open files {base['files']} -> {end['files']}")
    print(f"latency capture->result: median {statistics.median(latencies):.1f} ms, p95 {_p95(latencies):.1f} ms, "
          f"max {max(latencies):.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
