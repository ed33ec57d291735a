"""Benchmark the inference backends on one or more images: size, load time, per-stage medians, ratios.

    python benchmarks/backends.py --model ../shared/models/yolov8n-seg-coco-dq.pt \
        --formats onnx,openvino,ncnn --imgsz 640 --runs 50 \
        --source ../shared/data/images/bus.jpg \
        --source ../shared/data/coco128-seg/images/train2017/000000000564.jpg

The same measurement as ``edgeseg benchmark`` (:func:`edgeseg.benchmark.benchmark`), repeated for each
``--source`` (exports are made once, in ``--workdir``, and reused). For each image it prints the table,
then the ratios: each format's inference time relative to the fastest, and pre + post-processing as a
percentage of each format's inference time (the pipeline overhead edgeseg adds around the model), with
the number of detections (post-processing grows with it). ``--data`` adds box/mask mAP once.

Wall times on a shared machine include waiting for the CPU; the ``cpu ms`` column (process CPU time per
image) does not. ``--json FILE`` writes every table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        default=str(SHARED / "models" / "yolov8n-seg-coco-dq.pt"),
        help="checkpoint (.pt) or exported model (default: the shared yolov8n-seg-coco-dq.pt)",
    )
    parser.add_argument("--formats", default="onnx,openvino,ncnn", help="default onnx,openvino,ncnn")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--conf",
        type=float,
        default=0.25,
        help="score threshold of the timed runs (lower: more detections to post-process)",
    )
    parser.add_argument(
        "--source",
        action="append",
        default=None,
        help="image to time; repeat for several (default: bus.jpg and the crowded coco128 "
        "image 000000000564.jpg when available)",
    )
    parser.add_argument("--data", default=None, help="dataset yaml for mAP (measured with the first source)")
    parser.add_argument("--data-indices", default=None, help="val image subset, e.g. 64:128")
    parser.add_argument("--workdir", default=None, help="where exports go (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)

    from edgeseg.benchmark import benchmark
    from edgeseg.exporters.report import parse_indices

    sources = args.source or [
        str(p)
        for p in (
            SHARED / "data" / "images" / "bus.jpg",
            SHARED / "data" / "coco128-seg" / "images" / "train2017" / "000000000564.jpg",
        )
        if p.is_file()
    ]
    if not sources:
        parser.error("no --source given and the shared images are not available")
    tmp = tempfile.TemporaryDirectory(prefix="edgeseg-backends-") if args.workdir is None else None
    workdir = args.workdir or tmp.name
    results = []
    try:
        for i, source in enumerate(sources):
            res = benchmark(
                args.model,
                args.formats,
                imgsz=args.imgsz,
                runs=args.runs,
                warmup=args.warmup,
                source=source,
                threads=args.threads,
                workdir=workdir,
                conf=args.conf,
                data=args.data if i == 0 else None,
                data_indices=parse_indices(args.data_indices) if i == 0 else None,
                print_fn=lambda line: print(line, file=sys.stderr, flush=True),
            )
            results.append(res)
            print()
            print(res.table())
            print(ratios(res))
    finally:
        if tmp is not None:
            tmp.cleanup()
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_json() for r in results], indent=1) + "\n")
    return 0


def ratios(res) -> str:
    ok = [r for r in res.rows if r.error is None]
    if not ok:
        return "no format ran"
    fastest = min(ok, key=lambda r: r.inference)
    lines = [f"ratios on {Path(res.source).name} (median ms; fastest inference: {fastest.name}):"]
    for r in ok:
        pp = r.preprocess + r.postprocess
        lines.append(
            f"  {r.name:<14} inference {r.inference:7.1f} ms = {r.inference / fastest.inference:4.2f}x "
            f"fastest; pre+post {pp:5.1f} ms = {100 * pp / r.inference:5.1f}% of its inference "
            f"({r.detections} detections); cpu {r.process_cpu:6.1f} ms/image"
        )
    ov = [r for r in ok if r.format == "openvino" and r.precision == "fp32"]
    for r in ov:
        for other in ok:
            pp = other.preprocess + other.postprocess
            lines.append(
                f"  pre+post of {other.name} as % of OpenVINO inference: "
                f"{100 * pp / r.inference:.1f}% ({'<' if 100 * pp / r.inference < 10 else '>='} 10%)"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
