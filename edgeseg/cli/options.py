"""Options shared by the commands that run a model, and their value checks."""

from __future__ import annotations

import argparse
from typing import Any, Callable, TypeVar

from edgeseg.formats import supported_names
from edgeseg.metadata import parse_imgsz

N = TypeVar("N", int, float)

DEFAULT_CONF = 0.25
TRACK_CONF = 0.1  # under --track: ByteTrack's second stage keeps tracks alive with low-score detections


def checked_number(text: str, convert: Callable[[str], N], expected: str, ok: Callable[[N], bool], must: str) -> N:
    """``convert(text)`` if ``ok`` accepts it; else argparse's error: "expected <expected>, got '<text>'" for
    text that does not convert, "must <must>, got <text>" for a value ``ok`` rejects."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got '{text}'") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must {must}, got {text}")
    return value


def unit_float(text: str) -> float:
    return checked_number(text, float, "a number between 0 and 1", lambda v: 0.0 <= v <= 1.0, "be between 0 and 1")


def positive_float(text: str) -> float:
    return checked_number(text, float, "a number", lambda v: v > 0 and v < float("inf"), "be positive")


def positive_int(text: str) -> int:
    return checked_number(text, int, "a positive integer", lambda v: v >= 1, "be a positive integer")


def image_size(text: str) -> int | tuple[int, int]:
    """'640' or '480,640' (h,w)."""
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIZE or H,W (e.g. 640 or 480,640), got '{text}'") from None
    try:
        size = parse_imgsz(values, strict=True)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIZE or H,W with positive values, got '{text}'") from None
    return size[0] if len(values) == 1 else size


def class_list(text: str) -> list[int | str]:
    """'0,5' or 'person,bus' -> ids and names (checked against the model later)."""
    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected class ids or names separated by commas")
    return [int(p) if p.isdigit() else p for p in items]


def add_model_arguments(parser: argparse.ArgumentParser, *, model_required: bool = True) -> None:
    parser.add_argument(
        "--model",
        "-m",
        required=model_required,
        metavar="MODEL",
        help=f"model: {supported_names()} (a torch checkpoint needs torch)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        metavar="NAME",
        help="inference backend: auto (picked from the model path), onnxruntime, openvino, "
        "ncnn, tflite, edgetpu or torch",
    )
    parser.add_argument(
        "--conf",
        type=unit_float,
        default=None,
        help=f"minimum confidence, 0..1 (default {DEFAULT_CONF}; {TRACK_CONF} with --track)",
    )
    parser.add_argument("--iou", type=unit_float, default=0.7, help="NMS IoU threshold, 0..1 (default 0.7)")
    parser.add_argument(
        "--imgsz",
        type=image_size,
        default=None,
        metavar="SIZE",
        help="input size SIZE or H,W (only for models with a dynamic input)",
    )
    parser.add_argument(
        "--classes",
        type=class_list,
        default=None,
        metavar="LIST",
        help="keep only these classes: ids or names, comma-separated (e.g. person,bus)",
    )
    parser.add_argument("--max-det", type=positive_int, default=300, help="most detections per image (default 300)")
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="inference threads (default: the backend's choice)"
    )


def make_segmenter(args: argparse.Namespace, model: str | None = None, **backend_options: Any):
    from edgeseg.segmenter import Segmenter

    options = dict(backend_options)
    if args.threads is not None:
        options["intra_op_threads"] = args.threads
    conf = args.conf
    tracking = getattr(args, "tracking", False)
    if conf is None:
        conf = TRACK_CONF if tracking else DEFAULT_CONF
    # tracking: one box per object (NMS across classes), so a class the detector hesitates over does not make a
    # second track on the same object (unless --track-by-class)
    options.setdefault("agnostic_nms", bool(tracking and not getattr(args, "track_by_class", False)))
    return Segmenter(
        model or args.model,
        backend=args.backend,
        conf=conf,
        iou=args.iou,
        max_det=args.max_det,
        imgsz=args.imgsz,
        classes=args.classes,
        **options,
    )


def parse_indices(text: str | None):
    """'64:128' -> slice(64, 128); '1,5,7' -> [1, 5, 7]; None -> None."""
    if text is None or str(text).strip() == "":
        return None
    text = str(text).strip()
    try:
        if ":" in text:
            parts = [p.strip() for p in text.split(":")]
            if len(parts) > 3:
                raise ValueError
            return slice(*[int(p) if p else None for p in parts])
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"image indices must look like 64:128 or 1,5,7, got {text!r}") from None
