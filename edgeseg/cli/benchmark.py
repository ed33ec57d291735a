"""``edgeseg benchmark --model M --formats onnx,openvino,ncnn``: size, load time, per-stage latency, mAP."""

from __future__ import annotations

import argparse

from .options import image_size, parse_indices, positive_int

HELP = "benchmark export formats: size, load time, per-stage latency and (with --data) box/mask mAP"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("benchmark", help=HELP, description=HELP)
    parser.add_argument(
        "--model",
        "-m",
        required=True,
        metavar="MODEL",
        help="checkpoint (.pt, exported to each format) or an exported model (run as is)",
    )
    parser.add_argument(
        "--formats",
        default="onnx",
        metavar="LIST",
        help="comma-separated formats: onnx, openvino, ncnn, tflite, torch; a precision may "
        "follow a colon (openvino:int8, onnx:fp16). Default onnx",
    )
    parser.add_argument(
        "--data",
        "-d",
        default=None,
        metavar="YAML",
        help="dataset yaml: adds box/mask mAP (and int8 calibration images)",
    )
    parser.add_argument(
        "--data-indices",
        default=None,
        metavar="A:B",
        help="validate only these images of the val split (sorted by name), e.g. 64:128",
    )
    parser.add_argument(
        "--imgsz", type=image_size, default=640, metavar="SIZE", help="input size SIZE or H,W (default 640)"
    )
    parser.add_argument("--runs", type=positive_int, default=50, help="timed runs per format (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs (default 5)")
    parser.add_argument(
        "--source", default=None, metavar="IMAGE", help="image to time (default: the project's bus.jpg when available)"
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="inference threads (default: each backend's choice)"
    )
    parser.add_argument(
        "--conf",
        type=float,
        default=0.25,
        help="score threshold of the timed runs (default 0.25; lower it to time more detections)",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        metavar="DIR",
        help="keep the exports in DIR and reuse them next time (default: a temporary folder)",
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    return parser


def run(args: argparse.Namespace) -> int:
    from edgeseg.benchmark import benchmark, parse_formats, save_json

    parse_formats(args.formats)  # a clear error before anything slow
    if args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    result = benchmark(
        args.model,
        args.formats,
        imgsz=args.imgsz,
        data=args.data,
        data_indices=parse_indices(args.data_indices),
        runs=args.runs,
        warmup=args.warmup,
        source=args.source,
        threads=args.threads,
        workdir=args.workdir,
        conf=args.conf,
        print_fn=None if args.quiet else (lambda line: print(line, flush=True)),
    )
    print(result.table())
    if args.json:
        print(f"results saved to {save_json(result, args.json)}")
    return 0 if any(r.error is None for r in result.rows) else 1
