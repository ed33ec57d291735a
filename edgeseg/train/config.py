"""Training configuration: :class:`TrainConfig`, with Ultralytics' defaults and checked values.

``TrainConfig(**kwargs)`` (or :meth:`TrainConfig.from_dict`) validates every value and raises
``ValueError`` naming the option and the accepted range; an unknown option name gets a "did you
mean" hint. :meth:`TrainConfig.to_dict` gives plain values (what a checkpoint stores as
``train_args``).
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["AUG_KEYS", "OPTIMIZERS", "TrainConfig"]

LOGGER = logging.getLogger("edgeseg.train")

OPTIMIZERS = ("auto", "SGD", "Adam", "AdamW", "MuSGD")
# augmentation hyperparameters handed to the dataset (names as in Ultralytics and edgeseg.data.augment)
AUG_KEYS = (
    "hsv_h",
    "hsv_s",
    "hsv_v",
    "degrees",
    "translate",
    "scale",
    "shear",
    "perspective",
    "flipud",
    "fliplr",
    "mosaic",
)
MAX_STRIDE = 32


@dataclass
class TrainConfig:
    """Everything a training run needs. Defaults are Ultralytics' (``yolo train`` for segmentation)."""

    # what to train
    model: str | None = None  # "yolov8n-seg" / "yolov8n-seg.yaml" (random init) or a .pt (ours or Ultralytics)
    data: str | None = None  # dataset yaml
    # schedule
    epochs: int = 100
    batch: int = 16  # total over all DDP processes
    imgsz: int = 640
    patience: int = 100  # epochs without fitness improvement before stopping early
    fraction: float = 1.0  # fraction of the training images to use
    # optimiser
    optimizer: str = "auto"  # auto, SGD, Adam, AdamW, MuSGD
    lr0: float = 0.01
    lrf: float = 0.01  # final lr = lr0 * lrf
    momentum: float = 0.937  # SGD momentum / Adam beta1
    weight_decay: float = 5e-4
    warmup_epochs: float = 3.0
    warmup_momentum: float = 0.8
    warmup_bias_lr: float = 0.1
    cos_lr: bool = False
    nbs: int = 64  # nominal batch size: gradients are accumulated up to it
    # loss
    box: float = 7.5
    cls: float = 0.5
    dfl: float = 1.5
    overlap_mask: bool = True
    mask_ratio: int = 4
    # augmentation
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    perspective: float = 0.0
    flipud: float = 0.0
    fliplr: float = 0.5
    mosaic: float = 1.0
    close_mosaic: int = 10  # last epochs trained without mosaic
    # run
    device: str = ""  # "" (CUDA 0 if available, else CPU), "cpu", "0", "0,1", "cuda:1"
    workers: int = 8
    seed: int = 0
    deterministic: bool = True
    amp: bool = True  # mixed precision (CUDA only)
    val: bool = True  # validate every epoch (the final epoch is always validated)
    plots: bool = True
    save_period: int = -1  # also keep weights/epochN.pt every N epochs (< 1: off)
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    resume: bool | str = False  # True (latest run under project) or a last.pt path
    verbose: bool = True

    # -- construction -----------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def field_names(cls) -> tuple:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> TrainConfig:
        """Build from a mapping plus keyword overrides; unknown keys raise ``ValueError`` with a hint."""
        merged = dict(values or {})
        merged.update(overrides)
        known = cls.field_names()
        unknown = [k for k in merged if k not in known]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, known, n=1, cutoff=0.6)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ValueError(f"unknown training option(s): {', '.join(hints)}; valid options: {', '.join(known)}")
        return cls(**merged)

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return type(self).from_dict(self.to_dict(), **changes)

    @property
    def hyp(self) -> dict:
        """Augmentation hyperparameters for :class:`~edgeseg.train.data.dataset.SegmentationDataset`."""
        return {k: getattr(self, k) for k in AUG_KEYS}

    # -- validation -------------------------------------------------------------------------------
    def _validate(self) -> None:
        def fail(name: str, what: str) -> NoReturn:
            raise ValueError(f"training option {name}={getattr(self, name)!r} is invalid: {what}")

        def as_int(name: str, low: int | None = None) -> None:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (isinstance(value, float) and not value.is_integer())
            ):
                if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                    value = int(value)
                else:
                    fail(name, "expected an integer")
            value = int(value)
            if low is not None and value < low:
                fail(name, f"must be >= {low}")
            setattr(self, name, value)

        def as_float(
            name: str,
            low: float | None = None,
            high: float | None = None,
            low_open: bool = False,
            high_open: bool = False,
        ) -> None:
            value = getattr(self, name)
            if isinstance(value, bool):
                fail(name, "expected a number")
            try:
                value = float(value)
            except (TypeError, ValueError):
                fail(name, "expected a number")
            if not math.isfinite(value):
                fail(name, "must be finite")
            if low is not None and (value < low or (low_open and value == low)):
                fail(name, f"must be {'>' if low_open else '>='} {low}")
            if high is not None and (value > high or (high_open and value == high)):
                fail(name, f"must be {'<' if high_open else '<='} {high}")
            setattr(self, name, value)

        def as_bool(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                value = value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool) and value not in (0, 1):
                fail(name, "expected true or false")
            setattr(self, name, bool(value))

        for name in ("model", "data"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, (str, Path)) or not str(value).strip():
                    fail(name, "expected a non-empty path or name")
                setattr(self, name, str(value))
        as_int("epochs", 1)
        as_int("batch", 1)
        as_int("imgsz", MAX_STRIDE)
        if self.imgsz % MAX_STRIDE:
            new = int(math.ceil(self.imgsz / MAX_STRIDE) * MAX_STRIDE)
            LOGGER.warning(
                "imgsz=%d is not a multiple of the max stride %d; using imgsz=%d", self.imgsz, MAX_STRIDE, new
            )
            self.imgsz = new
        as_int("patience", 0)
        as_float("fraction", 0.0, 1.0, low_open=True)
        opt = str(self.optimizer)
        canon = {o.lower(): o for o in OPTIMIZERS}.get(opt.lower())
        if canon is None:
            fail("optimizer", f"choose one of {', '.join(OPTIMIZERS)}")
        self.optimizer = canon
        as_float("lr0", 0.0, low_open=True)
        as_float("lrf", 0.0, 1.0, low_open=True)
        as_float("momentum", 0.0, 1.0, high_open=True)
        as_float("weight_decay", 0.0)
        as_float("warmup_epochs", 0.0)
        as_float("warmup_momentum", 0.0, 1.0, high_open=True)
        as_float("warmup_bias_lr", 0.0)
        as_bool("cos_lr")
        as_int("nbs", 1)
        for name in ("box", "cls", "dfl"):
            as_float(name, 0.0)
        as_bool("overlap_mask")
        as_int("mask_ratio", 1)
        for name in ("hsv_h", "hsv_s", "hsv_v", "translate", "flipud", "fliplr", "mosaic"):
            as_float(name, 0.0, 1.0)
        as_float("scale", 0.0, 1.0, high_open=True)
        as_float("degrees", -360.0, 360.0)
        as_float("shear", -180.0, 180.0)
        as_float("perspective", 0.0, 0.001)
        as_int("close_mosaic", 0)
        self.device = "" if self.device is None else str(self.device).strip().lower().replace(" ", "")
        _check_device(self.device)
        as_int("workers", 0)
        as_int("seed", 0)
        for name in ("deterministic", "amp", "val", "plots", "exist_ok", "verbose"):
            as_bool(name)
        as_int("save_period")
        for name in ("project", "name"):
            value = getattr(self, name)
            if not isinstance(value, (str, Path)) or not str(value).strip():
                fail(name, "expected a non-empty path")
            setattr(self, name, str(value))
        if isinstance(self.resume, Path):
            self.resume = str(self.resume)
        if isinstance(self.resume, str):
            low = self.resume.strip().lower()
            if low in ("", "false", "0", "no"):
                self.resume = False
            elif low in ("true", "1", "yes"):
                self.resume = True
        elif not isinstance(self.resume, bool):
            fail("resume", "expected true/false or a path to weights/last.pt")


def _check_device(device: str) -> None:
    """'' | 'cpu' | 'mps' | 'cuda' | 'cuda:N' | 'N' | 'N,M,...'."""
    if device in ("", "cpu", "mps", "cuda"):
        return
    text = device[5:] if device.startswith("cuda:") else device
    parts = text.split(",")
    if all(p.isdigit() for p in parts) and len(set(parts)) == len(parts):
        return
    raise ValueError(
        f"training option device={device!r} is invalid: use 'cpu', a CUDA index like '0', "
        f"or several distinct indices like '0,1'"
    )
