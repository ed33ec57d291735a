"""``edgeseg export``: convert a checkpoint (.pt) to a deployment format and check it against torch."""
from __future__ import annotations

import argparse

from ._common import image_size

HELP = "export a checkpoint (.pt) to ONNX (verified against the torch model)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("export", help=HELP, description=HELP)
    parser.add_argument("--model", "-m", required=True, metavar="MODEL",
                        help="checkpoint to export: Ultralytics or edgeseg .pt")
    parser.add_argument("--format", "-f", default="onnx", metavar="FORMAT",
                        help="output format (supported: onnx; default onnx)")
    parser.add_argument("--imgsz", type=image_size, default=640, metavar="SIZE",
                        help="input size SIZE or H,W, multiples of 32 (default 640)")
    parser.add_argument("--opset", type=int, default=None, metavar="N",
                        help="ONNX opset, 12..18 (default 17)")
    parser.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    parser.add_argument("--half", action="store_true",
                        help="float16 weights and I/O (for fp16-capable runtimes: CUDA/TensorRT, NPUs)")
    parser.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim")
    parser.add_argument("--output", "-o", default=None, metavar="PATH",
                        help="output file or directory (default: beside the checkpoint)")
    parser.add_argument("--check-image", default=None, metavar="IMAGE",
                        help="image used to verify the export against torch (default: bus.jpg when "
                             "available, else a synthetic image)")
    return parser


def run(args: argparse.Namespace) -> int:
    from exporters import check_format, export

    fmt = check_format(args.format)  # clear "not yet supported" error before torch is imported
    options = dict(imgsz=args.imgsz, dynamic=args.dynamic, half=args.half, simplify=args.simplify,
                   output=args.output, check_image=args.check_image)
    if args.opset is not None:
        options["opset"] = args.opset
    print(f"exporting {args.model} to {fmt} ...", flush=True)
    result = export(args.model, format=fmt, **options)
    h, w = result.imgsz
    print(f"saved {result.path} ({result.size_mb:.1f} MB) in {result.seconds:.1f} s")
    print(f"  opset {result.opset}, input images [1, 3, {h}, {w}]"
          f"{' (dynamic)' if result.dynamic else ''}, {'float16' if result.half else 'float32'}"
          f"{', simplified' if result.simplified else ''}")
    print(f"  outputs " + "; ".join(f"{k} {list(v)}" for k, v in result.output_shapes.items()))
    print(f"  check against torch on {result.check_image}:")
    for name, diff in result.max_abs_diff.items():
        print(f"    {name}: max abs difference {diff:.3g}")
    for note in result.notes:
        print(f"  note: {note}")
    return 0
