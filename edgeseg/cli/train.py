"""``edgeseg train``: train or fine-tune a YOLOv8-seg / YOLO11-seg model (torch), or resume a run.

Examples::

    edgeseg train --model yolov8n-seg.yaml --data coco128-seg.yaml --epochs 100 --imgsz 640
    edgeseg train --model yolov8n-seg.pt --data my.yaml --epochs 30 --device 0,1   # DDP on 2 GPUs
    edgeseg train --resume runs/train/exp/weights/last.pt
"""

from __future__ import annotations

import argparse
import logging
import sys

from .options import checked_number, positive_int

HELP = "train or fine-tune a segmentation model (needs torch), or resume a run"


def _non_negative_int(text: str) -> int:
    return checked_number(text, int, "a non-negative integer", lambda v: v >= 0, "be >= 0")


def _positive_float(text: str) -> float:
    return checked_number(text, float, "a number", lambda v: v > 0, "be > 0")


def _non_negative_float(text: str) -> float:
    return checked_number(text, float, "a number", lambda v: v >= 0, "be >= 0")


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", help=HELP, description=HELP)
    parser.add_argument(
        "--model",
        "-m",
        metavar="MODEL",
        help="yolov8n-seg(.yaml) ... yolo11x-seg (random init), or weights to start from: an "
        "edgeseg checkpoint or an Ultralytics .pt",
    )
    parser.add_argument("--data", metavar="YAML", help="dataset yaml (path, train, val, names)")
    parser.add_argument("--epochs", type=positive_int, help="epochs to train (default 100)")
    parser.add_argument("--imgsz", type=positive_int, metavar="SIZE", help="training image size (default 640)")
    parser.add_argument("--batch", type=positive_int, help="total batch size over all devices (default 16)")
    parser.add_argument(
        "--device", metavar="DEV", help="cpu, 0, or 0,1 for DDP on several GPUs (default: GPU 0 if available, else cpu)"
    )
    parser.add_argument("--workers", type=_non_negative_int, help="dataloader workers per process (default 8)")
    parser.add_argument(
        "--optimizer",
        choices=["auto", "SGD", "Adam", "AdamW", "MuSGD"],
        type=_optimizer_name,
        help="optimizer (default auto)",
    )
    parser.add_argument("--lr0", type=_positive_float, help="initial learning rate (default 0.01)")
    parser.add_argument("--lrf", type=_fraction, help="final lr as a fraction of lr0 (default 0.01)")
    parser.add_argument(
        "--warmup-epochs",
        type=_non_negative_float,
        metavar="N",
        help="warmup epochs (at least 100 iterations when > 0; default 3)",
    )
    parser.add_argument(
        "--nbs",
        type=positive_int,
        metavar="N",
        help="nominal batch size: gradients are summed over batches up to N images per optimizer step (default "
        "64; set it to --batch for a step every batch, as short runs on small datasets want)",
    )
    parser.add_argument("--cos-lr", action="store_true", default=None, help="cosine lr schedule")
    parser.add_argument(
        "--close-mosaic",
        type=_non_negative_int,
        metavar="N",
        help="train the last N epochs without mosaic (default 10)",
    )
    parser.add_argument("--patience", type=_non_negative_int, help="early-stopping patience in epochs (default 100)")
    parser.add_argument("--fraction", type=_fraction, help="fraction of the training images to use (default 1.0)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="PATH",
        help="resume a run: its weights/last.pt (or the latest run under --project)",
    )
    parser.add_argument("--project", metavar="DIR", help="parent folder of runs (default runs/train)")
    parser.add_argument("--name", help="run name (default exp; exp2, exp3, ... when taken)")
    parser.add_argument("--exist-ok", action="store_true", default=None, help="reuse an existing run folder")
    parser.add_argument("--seed", type=_non_negative_int, help="random seed (default 0)")
    parser.add_argument("--save-period", type=int, metavar="N", help="also keep weights/epochN.pt every N epochs")
    parser.add_argument(
        "--no-val", dest="val", action="store_false", default=None, help="validate only after the final epoch"
    )
    parser.add_argument("--no-plots", dest="plots", action="store_false", default=None, help="do not write plots")
    parser.add_argument(
        "--no-amp", dest="amp", action="store_false", default=None, help="disable mixed precision (CUDA)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or per-epoch tables")
    return parser


def _optimizer_name(text: str) -> str:
    return {"auto": "auto", "sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "musgd": "MuSGD"}.get(text.lower(), text)


OPTION_KEYS = (
    "model",
    "data",
    "epochs",
    "imgsz",
    "batch",
    "device",
    "workers",
    "optimizer",
    "lr0",
    "lrf",
    "warmup_epochs",
    "nbs",
    "cos_lr",
    "close_mosaic",
    "patience",
    "fraction",
    "resume",
    "project",
    "name",
    "exist_ok",
    "seed",
    "save_period",
    "val",
    "plots",
    "amp",
)


def options_from_args(args: argparse.Namespace) -> dict:
    """Only the options given on the command line (the rest keep TrainConfig's defaults)."""
    options = {k: getattr(args, k) for k in OPTION_KEYS if getattr(args, k, None) is not None}
    if args.quiet:
        options["verbose"] = False
    return options


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("edgeseg")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    if not options.get("resume") and (not options.get("model") or not options.get("data")):
        raise ValueError("edgeseg train needs --model and --data (or --resume [PATH])")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ValueError(
            "training needs torch: pip install 'edgeseg[train]' (and torch itself, e.g. pip install torch)"
        ) from None
    _setup_logging(not args.quiet)
    from edgeseg.train.trainer import Trainer

    result = Trainer(options).train()
    print(f"Results saved to {result.save_dir}")
    if result.best_fitness is not None:
        print(f"best.pt: epoch {result.best_epoch + 1}, fitness {result.best_fitness:.4f}")
    return 0
