"""``edgeseg export``: convert a checkpoint (.pt) to a deployment format and check it against torch."""

from __future__ import annotations

import argparse

from edgeseg.cli.options import image_size

HELP = "export a checkpoint (.pt) to a deployment format (verified against the torch model)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("export", help=HELP, description=HELP)
    parser.add_argument(
        "--model", "-m", required=True, metavar="MODEL", help="checkpoint to export: Ultralytics or edgeseg .pt"
    )
    parser.add_argument(
        "--format", "-f", default="onnx", metavar="FORMAT", help="output format: onnx, openvino, ... (default onnx)"
    )
    parser.add_argument(
        "--imgsz",
        type=image_size,
        default=640,
        metavar="SIZE",
        help="input size SIZE or H,W, multiples of 32 (default 640)",
    )
    parser.add_argument("--opset", type=int, default=None, metavar="N", help="ONNX opset, 12..18 (default 17)")
    parser.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    parser.add_argument(
        "--half", action="store_true", help="float16 weights and I/O (for fp16-capable runtimes: CUDA/TensorRT, NPUs)"
    )
    parser.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim")
    parser.add_argument(
        "--head",
        choices=("end2end", "one2one", "one2many"),
        default=None,
        help="YOLO26 models: end2end = the NMS-free head with its top-k in the graph (default where the format "
        "holds it: onnx, openvino), one2one = the NMS-free head ending before the top-k, which edgeseg's core "
        "makes (default for ncnn, tflite, edgetpu), one2many = the head that needs NMS (Ultralytics' default)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="int8 post-training quantisation, calibrated on --data (formats that support it)",
    )
    parser.add_argument(
        "--data",
        default=None,
        metavar="DATA",
        help="calibration images for --int8: a dataset yaml (its train split) or an image folder",
    )
    parser.add_argument(
        "--fraction",
        type=float,
        default=None,
        metavar="F",
        help="use the first fraction 0<F<=1 of the calibration images (at most 300; default 1.0)",
    )
    parser.add_argument(
        "--output", "-o", default=None, metavar="PATH", help="output file or directory (default: beside the checkpoint)"
    )
    parser.add_argument(
        "--check-image",
        default=None,
        metavar="IMAGE",
        help="image used to verify the export against torch (default: bus.jpg when available, else a synthetic image)",
    )
    from .report import add_report_arguments

    add_report_arguments(parser)  # --report/--no-report, --report-data, --report-indices
    return parser


def run(args: argparse.Namespace) -> int:
    from . import check_format, export

    fmt = check_format(args.format)  # clear "not yet supported" error before torch is imported
    options = _format_options(fmt, args)
    print(f"exporting {args.model} to {fmt} ...", flush=True)
    result = export(args.model, format=fmt, **options)
    h, w = result.imgsz
    print(f"saved {result.path} ({result.size_mb:.1f} MB) in {result.seconds:.1f} s")
    print(
        f"  opset {result.opset}, input images [1, 3, {h}, {w}]"
        f"{' (dynamic)' if result.dynamic else ''}, {getattr(result, 'precision', None) or ('float16' if result.half else 'float32')}"
        f"{', simplified' if result.simplified else ''}"
    )
    print("  outputs " + "; ".join(f"{k} {list(v)}" for k, v in result.output_shapes.items()))
    print(f"  head: {result.head}")
    print(f"  check against torch on {result.check_image}:")
    for name, diff in result.max_abs_diff.items():
        print(f"    {name}: max abs difference {diff:.3g}")
    for note in result.notes:
        print(f"  note: {note}")
    from .report import report_from_args

    report_from_args(args, result)  # accuracy/size/latency report beside the model (unless --no-report)
    return 0


# option name -> CLI flag, for the options only some formats take; passed only when the user set them
_OPTIONAL = {
    "dynamic": "--dynamic",
    "half": "--half",
    "simplify": "--simplify",
    "int8": "--int8",
    "opset": "--opset",
    "data": "--data",
    "fraction": "--fraction",
    "check_image": "--check-image",
    "output": "--output",
    "head": "--head",
}


def _format_options(fmt: str, args: argparse.Namespace) -> dict:
    """imgsz plus every option the user set; a flag the format's export() does not take is a clear error."""
    from edgeseg.formats import FORMATS

    from . import ExportError

    options = {"imgsz": args.imgsz}
    for name in _OPTIONAL:
        value = getattr(args, name, None)
        if value is not None and value is not False:
            options[name] = value
    accepted = FORMATS[fmt].export_options
    unsupported = [_OPTIONAL[n] for n in options if n != "imgsz" and n not in accepted]
    if unsupported:
        raise ExportError(f"{', '.join(unsupported)} not supported for format '{fmt}'")
    return options
