"""FPS of the overlapped pipeline against the serial loop, on one video file, no drawing or saving.

    python benchmarks/pipeline.py --model yolov8n-seg_openvino_model --source ../shared/data/video/people_movement.mp4
    python benchmarks/pipeline.py --model m.onnx --workers 1,2 --runs 3 --frames 120

Modes, each timed ``--runs`` times (median printed), all in this one process and run:
- ``serial``: read a frame, segment it, repeat (what ``edgeseg run`` did before the pipeline);
- ``pipeline:N``: :class:`edgeseg.pipeline.Pipeline` with N inference workers (capture on its own thread); with
  N > 1 each worker's backend gets ``cores // N`` threads (``--threads`` sets the first worker's).
Every frame of the file is accounted for (the script checks that each mode returns the same count).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "video" / "people_movement.mp4"


def _serial(seg, source: str, frames: int | None) -> tuple[int, float]:
    from edgeseg.sources import open_source

    n = 0
    t0 = time.perf_counter()
    with open_source(source) as src:
        for frame in src:
            seg.predict(frame.image)
            n += 1
            if frames and n >= frames:
                break
    return n, time.perf_counter() - t0


def _pipeline(segs, source: str, frames: int | None) -> tuple[int, float]:
    from edgeseg.pipeline import Pipeline

    n = 0
    t0 = time.perf_counter()
    with Pipeline(list(segs), source) as run:  # loaded copies, one per worker: loading is not timed
        for _result in run:
            n += 1
            if frames and n >= frames:
                break
    return n, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="any model edgeseg runs (e.g. an OpenVINO folder)")
    parser.add_argument("--source", default=str(DEFAULT_SOURCE), help="a video file")
    parser.add_argument("--workers", default="1,2", help="pipeline worker counts to time (default 1,2)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=None, help="frames per run (default: the whole file)")
    parser.add_argument("--threads", type=int, default=None, help="backend threads per worker")
    args = parser.parse_args(argv)

    from edgeseg import Segmenter

    options = {} if args.threads is None else {"intra_op_threads": args.threads}
    base = Segmenter(args.model, **options)
    counts = [int(w) for w in args.workers.split(",")]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # N workers share the cores: each backend gets cores // N threads (N copies with all threads each fight)
    copies = {
        w: [base] if w == 1 else [base.replicate(intra_op_threads=max(1, cores // w)) for _ in range(w)] for w in counts
    }
    for segs in copies.values():
        for s in segs:
            s.warmup(2)
    print(f"{base!r} on {args.source}, {cores} cores, {args.runs} run(s) per mode, medians")
    rows = []
    modes = [("serial", None)] + [(f"pipeline:{w}", w) for w in counts]
    for name, workers in modes:
        fps, frames = [], set()
        for _ in range(args.runs):
            if workers is None:
                n, dt = _serial(base, args.source, args.frames)
            else:
                n, dt = _pipeline(copies[workers], args.source, args.frames)
            fps.append(n / dt)
            frames.add(n)
        rows.append((name, statistics.median(fps), frames))
        print(f"{name:<12} {statistics.median(fps):7.2f} FPS  frames {sorted(frames)}", flush=True)
    serial_fps = rows[0][1]
    for name, value, _ in rows[1:]:
        print(f"{name:<12} {value / serial_fps:5.2f}x the serial loop")
    if len({n for _, _, f in rows for n in f}) != 1:
        print("frame counts differ between modes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
