"""``edgeseg val --model M --data D.yaml``: box and mask mAP with Ultralytics' ``yolo val`` protocol."""

from __future__ import annotations

import argparse
import json

from .options import positive_int, unit_float

HELP = "measure box and mask mAP of a model on a dataset (Ultralytics val protocol)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("val", help=HELP, description=HELP)
    parser.add_argument(
        "--model",
        "-m",
        required=True,
        metavar="MODEL",
        help="model: a torch checkpoint (.pt) or an exported model (.onnx)",
    )
    parser.add_argument("--data", "-d", required=True, metavar="YAML", help="dataset yaml (YOLO format)")
    parser.add_argument(
        "--imgsz",
        type=positive_int,
        default=640,
        help="input size (default 640; exported models use their own fixed size)",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=8,
        help="batch size for torch models; sets the rect batch shapes (default 8)",
    )
    parser.add_argument("--conf", type=unit_float, default=0.001, help="confidence threshold (default 0.001)")
    parser.add_argument("--iou", type=unit_float, default=0.7, help="NMS IoU threshold (default 0.7)")
    parser.add_argument("--max-det", type=positive_int, default=300, help="detections per image (default 300)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="val", help="dataset split (default val)")
    parser.add_argument(
        "--backend",
        default="auto",
        metavar="NAME",
        help="auto (from the model file), torch, or an inference backend (onnxruntime)",
    )
    parser.add_argument(
        "--mode",
        choices=("ultralytics", "coco"),
        default="ultralytics",
        help="matching/AP: ultralytics (as yolo val, default) or coco (as pycocotools)",
    )
    parser.add_argument(
        "--rect", dest="rect", action="store_true", default=None, help="rect batches (default for torch models)"
    )
    parser.add_argument("--no-rect", dest="rect", action="store_false", help="square letterbox for torch models too")
    parser.add_argument(
        "--save-json", metavar="FILE", default=None, help="also write the predictions as a COCO results JSON file"
    )
    parser.add_argument(
        "--head",
        choices=("end2end", "one2many"),
        default=None,
        help="YOLO26 checkpoints: validate the NMS-free one-to-one head (end2end, edgeseg's default) or the "
        "one-to-many head with NMS (Ultralytics' val default); exports carry one head",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    parser.add_argument("--no-per-class", dest="per_class", action="store_false", help="print only the 'all' row")
    return parser


def run(args: argparse.Namespace) -> int:
    from edgeseg.val.validator import validate

    result = validate(
        args.model,
        args.data,
        imgsz=args.imgsz,
        batch=args.batch,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        split=args.split,
        backend=args.backend,
        rect=args.rect,
        mode=args.mode,
        progress=not args.quiet,
        save_json=args.save_json,
        end2end=None if args.head is None else args.head == "end2end",
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
        return 0
    print(result.summary(per_class=args.per_class))
    s = result.speed
    shape = "x".join(str(v) for v in result.imgsz)
    layout = f"rect batches of {result.batch}" if result.rect else f"{shape} letterbox, batch {result.batch}"
    print(
        f"Speed: {s['preprocess']:.1f}ms preprocess, {s['inference']:.1f}ms inference, "
        f"{s['postprocess']:.1f}ms postprocess per image ({result.backend}, imgsz {shape}, {layout}, "
        f"mode {result.mode})"
    )
    if args.save_json:
        print(f"Predictions saved to {args.save_json}")
    return 0
