"""Several RTSP cameras through one model into one JSON Lines file, reconnecting after losses, with per-source
statistics at the end.

    python examples/multi_rtsp_jsonl.py --model yolov8n-seg.onnx --json runs/cameras.jsonl \\
        rtsp://user:pass@cam1.local:554/stream1 rtsp://user:pass@cam2.local:554/stream1

Each line of the file is one frame: ``source`` (the URL without its password), ``source_id``, ``frame`` (its
number in that source: gaps are frames dropped because the model was busy), ``time`` (Unix seconds at
capture), ``latency_ms``, ``image_shape`` and ``detections`` (class, confidence, box, largest polygon). Lines
are flushed one by one, so ``tail -f`` follows them and an interrupted run leaves whole lines.

A camera that drops out is reopened (``--backoff`` seconds, doubled up to 10 s, ``--reconnect`` attempts per
loss; without end by default), as is one that stalls for ``--read-timeout`` seconds; the other cameras go on
meanwhile. A camera that cannot be reached at the start is reported and left out. Ctrl-C stops and prints
the statistics. Without URLs it runs on two copies of the generated demo clip with the built-in demo model:

    python examples/multi_rtsp_jsonl.py --max-frames 20 --json runs/demo.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from edgeseg import Segmenter
from edgeseg.errors import SourceError
from edgeseg.sinks import json_record
from edgeseg.sources import FrameSource, LiveOptions, open_source


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", help="rtsp:// URLs (or any edgeseg source); default: demo demo")
    parser.add_argument("--model", help="model file or folder (default: the built-in demo model)")
    parser.add_argument("--json", default="frames.jsonl", metavar="FILE.jsonl", help="output (default frames.jsonl)")
    parser.add_argument("--append", action="store_true", help="append to the file instead of replacing it")
    parser.add_argument("--conf", type=float, default=0.25, help="minimum confidence (default 0.25)")
    parser.add_argument("--workers", type=int, default=1, help="inference threads, one model copy each (default 1)")
    parser.add_argument(
        "--reconnect", type=int, default=None, metavar="N", help="reopen attempts per loss (default: no limit)"
    )
    parser.add_argument("--backoff", type=float, default=0.5, metavar="S", help="first reopen delay (default 0.5 s)")
    parser.add_argument("--read-timeout", type=float, default=10.0, metavar="S", help="stall and open timeout (10 s)")
    parser.add_argument("--rtsp-transport", choices=("tcp", "udp"), default="tcp", help="RTSP transport (default tcp)")
    parser.add_argument("--polygons", choices=("largest", "all", "none"), default="largest", help="mask outlines kept")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames in all")
    return parser.parse_args(argv)


def open_sources(specs: list[str], options: LiveOptions) -> list[FrameSource]:
    """Open each source; one that cannot be opened now is reported and left out."""
    opened = []
    for spec in specs:
        try:
            source = open_source(spec, live=options)
        except (SourceError, FileNotFoundError) as exc:
            print(f"left out: {exc}", file=sys.stderr, flush=True)
            continue
        source.name = source.name or spec  # files and the demo clip leave it empty; streams name themselves
        opened.append(source)
    return opened


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    specs = args.sources or ["demo", "demo"]
    options = LiveOptions(
        read_timeout=args.read_timeout,
        reconnect=args.reconnect,
        backoff=args.backoff,
        rtsp_transport=args.rtsp_transport,
    )
    if args.model:
        model = args.model
    else:
        from edgeseg.assets import demo_model_path

        model = str(demo_model_path())
    segmenter = Segmenter(model, conf=args.conf)
    segmenter.warmup()
    sources = open_sources(specs, options)
    if not sources:
        print("no source could be opened", file=sys.stderr)
        return 2
    polygons = None if args.polygons == "none" else args.polygons
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    names: dict[int, str] = {}
    done: dict[int, int] = {}
    last_index: dict[int, int] = {}
    latencies: dict[int, list[float]] = {}
    objects: dict[int, int] = {}
    total = 0
    start = time.perf_counter()
    print(f"{segmenter!r} on {len(sources)} source(s) -> {out}", flush=True)
    with out.open("a" if args.append else "w", encoding="utf-8") as lines:
        try:
            for result in segmenter.stream(sources, workers=args.workers):
                lines.write(json.dumps(json_record(result, polygons)) + "\n")  # as edgeseg run --json
                lines.flush()
                k = result.source_id
                names[k] = result.source
                done[k] = done.get(k, 0) + 1
                last_index[k] = result.index
                latencies.setdefault(k, []).append(result.latency_ms)
                objects[k] = objects.get(k, 0) + len(result.detections)
                total += 1
                if args.max_frames and total >= args.max_frames:
                    break
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    elapsed = time.perf_counter() - start
    print(f"{total} frame(s) in {elapsed:.1f} s to {out}", flush=True)
    for k, source in enumerate(sources):  # the sources keep their counts after the pipeline closed them
        n = done.get(k, 0)
        seen = last_index.get(k, -1) + 1  # frames the source produced up to the last one written
        lat = latencies.get(k, [])
        line = f"  [{k}] {names.get(k, source.name)}: {n} frame(s), {objects.get(k, 0)} object(s)"
        line += f", {n / elapsed if elapsed else 0:.1f} FPS, {max(seen - n, 0)} skipped"
        if lat:
            line += f", latency median {statistics.median(lat):.0f} ms max {max(lat):.0f} ms"
        if source.is_live:
            line += f", {source.reconnects} reconnect(s)"
        if source.stop_reason:
            line += f" [{source.stop_reason}]"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
