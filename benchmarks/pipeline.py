"""FPS of the overlapped pipeline against the serial loop on one video file, and the share of the backend's own
throughput that the pipeline reaches.

    python benchmarks/pipeline.py --model yolov8n-seg_openvino_model      # people_movement.mp4 by default
    python benchmarks/pipeline.py --model yolov8n-seg_openvino_model --save --runs 3
    python benchmarks/pipeline.py --model m.onnx --workers auto,1,2 --frames 120

Modes, each timed ``--runs`` times in this one process (medians printed; figures of different runs of this
script are not comparable on a noisy machine):

- ``serial``: read a frame, segment it, (draw and write it with ``--save``), repeat: the loop ``edgeseg run``
  had before the pipeline; the model as ``edgeseg run --workers 1`` loads it (OpenVINO: latency hint).
- ``pipeline:auto`` / ``pipeline:N``: :class:`edgeseg.pipeline.Pipeline` as ``edgeseg run`` uses it: capture on
  its own thread, N inference workers (auto: the backend's suggestion, see
  :func:`edgeseg.pipeline.auto_workers`), the caller's thread drawing and writing with ``--save``. OpenVINO
  models are loaded once with the throughput hint and the workers share the compiled model (a request each);
  other backends get one copy per worker with ``cores // N`` threads each.
- ``backend``: the engine alone on a blank input, no video, no pre/post-processing: OpenVINO's
  ``benchmark_app -hint throughput`` when it is installed (else the backend's own async queue, kept full).

Every frame of the file is accounted for: the script fails when the modes return different frame counts.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "video" / "people_movement.mp4"


def _serial(seg, source: str, frames: int | None, save: str | None) -> tuple[int, float]:
    from edgeseg.annotate import draw
    from edgeseg.sinks import VideoSink
    from edgeseg.sources import open_source

    n = 0
    t0 = time.perf_counter()
    with open_source(source) as src:
        writer = VideoSink(save, src.fps) if save else None
        for frame in src:
            detections = seg.predict(frame.image)
            if writer is not None:
                writer.write_image(draw(frame.image, detections))  # what --save adds
            n += 1
            if frames and n >= frames:
                break
    if writer is not None:
        writer.close()
    return n, time.perf_counter() - t0


def _pipeline(segs, source: str, frames: int | None, save: str | None) -> tuple[int, float]:
    from edgeseg.annotate import draw
    from edgeseg.pipeline import Pipeline
    from edgeseg.sinks import VideoSink

    n = 0
    t0 = time.perf_counter()
    with Pipeline(list(segs), source) as run:  # loaded copies, one per worker: loading is not timed
        writer = VideoSink(save, run.stats[0].fps) if save else None
        for result in run:
            if writer is not None:
                writer.write_image(draw(result.image, result.detections))
            n += 1
            if frames and n >= frames:
                break
    if writer is not None:
        writer.close()
    return n, time.perf_counter() - t0


def _backend_throughput(seg, seconds: float) -> tuple[float, str]:
    """The engine's own frames per second under its throughput setting, and how it was measured."""
    backend = seg.backend
    if backend.name == "openvino" and shutil.which("benchmark_app"):
        cmd = ["benchmark_app", "-m", str(backend.xml), "-d", backend.device, "-hint", "throughput"]
        cmd += ["-t", str(int(seconds))]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120).stdout
        match = re.search(r"Throughput:\s*([\d.]+)\s*FPS", out)
        if match:
            return float(match.group(1)), "benchmark_app -hint throughput -t " + str(int(seconds))
    import numpy as np

    spec = seg.input_spec
    blob = np.zeros(spec.blob_shape, dtype=np.dtype(spec.dtype))
    if hasattr(backend, "async_queue"):
        with backend.async_queue() as q:
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                q.submit(blob)
                n += len(q.results())
            n += len(q.wait_all())
            return n / (time.perf_counter() - t0), f"the backend's async queue ({q.capacity} requests)"
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        backend.infer(blob)
        n += 1
    return n / (time.perf_counter() - t0), "backend.infer in a loop"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="any model edgeseg runs (e.g. an OpenVINO folder)")
    parser.add_argument("--source", default=str(DEFAULT_SOURCE), help="a video file")
    parser.add_argument("--workers", default="auto", help="pipeline worker counts to time, e.g. auto,1,2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=None, help="frames per run (default: the whole file)")
    parser.add_argument("--save", action="store_true", help="also draw and write an annotated MP4 in every mode")
    parser.add_argument("--backend-seconds", type=float, default=15.0, help="length of the backend's own run")
    args = parser.parse_args(argv)

    from edgeseg import Segmenter
    from edgeseg.pipeline import auto_workers, usable_cores

    serial_seg = Segmenter(args.model)
    is_openvino = serial_seg.backend.name == "openvino"
    cores = usable_cores()
    pipe_base = Segmenter(args.model, hint="throughput") if is_openvino else serial_seg
    copies = {}
    for text in args.workers.split(","):
        n = auto_workers(pipe_base) if text == "auto" else int(text)
        if is_openvino or n == 1:
            segs = [pipe_base] + [pipe_base.replicate() for _ in range(n - 1)]
        else:
            segs = [pipe_base.replicate(intra_op_threads=max(1, cores // n)) for _ in range(n)]
        copies[f"pipeline:{text}" + (f" ({n})" if text == "auto" else "")] = segs
    for seg in [serial_seg] + [s for segs in copies.values() for s in segs]:
        seg.warmup(2)
    print(f"{serial_seg!r} on {args.source}, {cores} cores, {args.runs} run(s) per mode, medians"
          + (", annotated MP4 written" if args.save else ""))  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        save = str(Path(tmp) / "out.mp4") if args.save else None
        modes: list[tuple[str, Any]] = [("serial", None), *copies.items()]
        for name, segs in modes:
            fps, frames = [], set()
            for _ in range(args.runs):
                if segs is None:
                    n, dt = _serial(serial_seg, args.source, args.frames, save)
                else:
                    n, dt = _pipeline(segs, args.source, args.frames, save)
                fps.append(n / dt)
                frames.add(n)
            rows.append((name, statistics.median(fps), frames))
            runs = ", ".join(f"{v:.2f}" for v in fps)
            print(f"{name:<18} {statistics.median(fps):7.2f} FPS  (runs {runs})  frames {sorted(frames)}", flush=True)
    backend_fps, how = _backend_throughput(pipe_base, args.backend_seconds)
    print(f"{'backend':<18} {backend_fps:7.2f} FPS  ({how}, no video, no pre/post-processing)")
    serial_fps = rows[0][1]
    for name, value, _ in rows[1:]:
        print(
            f"{name:<18} {value / serial_fps:5.2f}x the serial loop, {100 * value / backend_fps:5.1f}% of the backend"
        )
    if len({n for _, _, f in rows for n in f}) != 1:
        print("frame counts differ between modes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
