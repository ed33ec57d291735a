"""The training loop: :class:`Trainer` and the ``train(**options)`` entry point.

Ultralytics' recipe for YOLOv8-seg / YOLO11-seg (see :mod:`.config` for the options):

* start from a model name / yaml (random init), an edgeseg checkpoint or an Ultralytics ``.pt``; when the
  dataset's class count differs, the head is rebuilt and only same-shape tensors are transferred;
* SGD / Adam / AdamW (``auto`` as Ultralytics), three parameter groups, gradient accumulation up to the
  nominal batch ``nbs``, warmup, linear or cosine lr schedule (:mod:`.optim`, :mod:`.schedule`);
* mixed precision on CUDA only, gradient clipping (norm 10), EMA of the weights (:mod:`.ema`);
* per epoch: validation of the EMA model (:func:`edgeseg.val.validate`, fitness = 0.1 mAP50 + 0.9
  mAP50-95 for boxes plus the same for masks), a ``results.csv`` row, ``weights/last.pt`` and, when the
  fitness improves, ``weights/best.pt``, all written atomically (temp file + ``os.replace``);
* DDP under torchrun (:mod:`.ddp`): only rank 0 validates, logs, plots and writes files.

Checkpoints are edgeseg checkpoints (:mod:`edgeseg.nn.checkpoint.native`): ``state_dict`` holds the EMA
weights (what inference uses); ``last.pt`` adds the training state -- the raw training weights
(``train_state_dict``), optimizer, EMA ``updates``, scheduler, scaler, epoch, best fitness, RNG states and
``train_args`` -- so that ``resume`` continues exactly: the data order and augmentation of every epoch
are derived from ``(seed, rank, epoch)``, so with ``deterministic`` and ``workers=0`` a resumed run
produces the same losses as an uninterrupted one. Gradients still accumulated at the end of an epoch
are applied there (an epoch never leaves pending gradients behind).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import random
import time
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import nn

from ..fileio import atomic_write_text
from ..formats import CHECKPOINT_SUFFIXES
from . import ddp
from .config import TrainConfig
from .ema import ModelEMA
from .optim import accumulate_steps, build_optimizer, choose_optimizer, nominal_iterations, scaled_weight_decay
from .progress import EpochProgress, header
from .schedule import apply_warmup, build_scheduler, lr_lambda, set_epoch, warmup_iterations

if TYPE_CHECKING:  # pragma: no cover
    from ..nn import SegmentationModel
    from ..val import ValResult

__all__ = ["LOSS_NAMES", "RESUME_OVERRIDABLE", "TrainResult", "Trainer", "train", "transfer_weights"]

LOGGER = logging.getLogger("edgeseg.train")

LOSS_NAMES = ("box_loss", "seg_loss", "cls_loss", "dfl_loss")
METRIC_KEYS = (
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "metrics/precision(M)",
    "metrics/recall(M)",
    "metrics/mAP50(M)",
    "metrics/mAP50-95(M)",
)
# options a resumed run may change (the rest come from the checkpoint's train_args)
RESUME_OVERRIDABLE = ("device", "workers", "save_period", "patience", "val", "plots", "verbose", "amp")
MAX_GRAD_NORM = 10.0
WEIGHT_SUFFIXES = CHECKPOINT_SUFFIXES
FROZEN = (".dfl",)  # never trained (the DFL integral is fixed)


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` returns."""

    save_dir: Path
    last: Path
    best: Path
    epochs: int  # epochs planned
    epochs_run: int  # epochs trained by this call
    start_epoch: int  # first epoch of this call (0-based; > 0 when resumed)
    best_epoch: int  # 0-based epoch of best.pt (-1: none)
    best_fitness: float | None
    metrics: dict[str, float] = field(default_factory=dict)  # last validation
    history: list[dict] = field(default_factory=list)  # one results row per epoch trained by this call
    plots: list[Path] = field(default_factory=list)


def transfer_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """Copy every tensor of ``state_dict`` whose name and shape match into ``model``.

    Returns (transferred, total tensors in the model)."""
    own = model.state_dict()
    matched = {k: v for k, v in state_dict.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(matched, strict=False)
    return len(matched), len(own)


def _to_float(x: Any) -> Any:
    """Every tensor in a (nested) training output as float32: the loss runs in fp32 under AMP."""
    if isinstance(x, torch.Tensor):
        return x.float()
    if isinstance(x, dict):
        return {k: _to_float(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_float(v) for v in x)
    return x


def _increment_dir(project: Path, name: str, exist_ok: bool) -> Path:
    path = project / name
    if exist_ok or not path.exists():
        return path
    n = 2
    while (project / f"{name}{n}").exists():
        n += 1
    return project / f"{name}{n}"


def _latest_last(project: Path) -> Path:
    runs = sorted(project.glob("*/weights/last.pt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(
            f"resume: no */weights/last.pt under {project}; pass the checkpoint path, "
            f"e.g. --resume runs/train/exp/weights/last.pt"
        )
    return runs[-1]


def _init_seeds(seed: int, deterministic: bool) -> dict:
    """Seed python/numpy/torch; deterministic algorithms when asked. Returns what to restore afterwards."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    previous = {
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return previous


def _restore_determinism(previous: dict) -> None:
    torch.use_deterministic_algorithms(previous["deterministic"], warn_only=previous["warn_only"])
    torch.backends.cudnn.deterministic = previous["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = previous["cudnn_benchmark"]


class Trainer:
    """Train a segmentation model. ``Trainer(cfg_dict_or_TrainConfig, **overrides).train()``.

    ``add_callback(event, fn)`` registers ``fn(trainer)`` for ``"on_batch_end"`` (after every batch),
    ``"on_epoch_end"`` (after an epoch is validated and saved) and ``"on_train_end"``.
    """

    def __init__(self, cfg: Any = None, **overrides: Any) -> None:
        if isinstance(cfg, TrainConfig):
            cfg = cfg.to_dict()
        given = dict(cfg or {})
        given.update(overrides)
        self.cfg = TrainConfig.from_dict(given)
        self._given = set(given)
        self.callbacks: dict[str, list[Callable]] = {"on_batch_end": [], "on_epoch_end": [], "on_train_end": []}
        self.dist = ddp.DistInfo()
        self.model: SegmentationModel | None = None
        self.ema: ModelEMA | None = None
        self.history: list[dict] = []
        self.epoch = 0
        self.start_epoch = 0
        self.best_fitness: float | None = None
        self.best_epoch = -1
        self.optimizer_steps = 0  # optimiser steps taken by this process in this call
        self.batches_seen = 0
        self.saved: list[Path] = []  # checkpoint files this process wrote
        self.transferred: tuple[int, int] | None = None
        self.freeze_bn = False  # True for weights whose BatchNorm was folded away (see _model_from_weights)
        self.last_val: ValResult | None = None
        self.best_val: ValResult | None = None
        self.save_dir: Path | None = None
        self.time_offset = 0.0  # training seconds before this call (resumed runs)

    # what train() sets up, for the methods that run after it
    @property
    def _model(self) -> SegmentationModel:
        if self.model is None:
            raise RuntimeError("the trainer has no model yet (train() builds it)")
        return self.model

    @property
    def _ema(self) -> ModelEMA:
        if self.ema is None:
            raise RuntimeError("only the main process keeps an EMA of the model")
        return self.ema

    @property
    def _save_dir(self) -> Path:
        if self.save_dir is None:
            raise RuntimeError("the trainer has no run directory yet (train() makes it)")
        return self.save_dir

    def add_callback(self, event: str, fn: Callable) -> None:
        if event not in self.callbacks:
            raise ValueError(f"unknown event {event!r}; one of {', '.join(self.callbacks)}")
        self.callbacks[event].append(fn)

    def _run_callbacks(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)

    # -- entry --------------------------------------------------------------------------------------
    def train(self) -> TrainResult:
        cfg = self.cfg
        _, _, world = ddp.env_world()
        device = cfg.device
        if cfg.resume and "device" not in self._given:
            device = self._resume_args().get("device", device)  # resume on the devices the run used
        if world == 1 and ddp.device_count(device) > 1:
            if device != cfg.device:
                self.cfg = cfg.replace(device=device)
                self._given.add("device")
            return self._launch_ddp()
        self.dist = ddp.setup(cfg.device)
        if not self.dist.is_main:
            LOGGER.setLevel(logging.WARNING)
        previous = None
        try:
            previous = self._setup()
            return self._fit()
        finally:
            if previous is not None:
                _restore_determinism(previous)
            ddp.cleanup(self.dist)

    def _launch_ddp(self) -> TrainResult:
        """Several CUDA devices without torchrun around us: run ourselves under torchrun."""
        cfg = self.cfg
        nproc = ddp.device_count(cfg.device)
        ddp.select_device(cfg.device)  # clear error when CUDA / the devices are missing
        values = cfg.to_dict()
        if cfg.resume:
            last = self._resume_path()
            values = {k: v for k, v in values.items() if k in self._given}  # the rest comes from the checkpoint
            values["resume"] = str(last)
            save_dir = last.parent.parent
        else:
            save_dir = _increment_dir(Path(cfg.project), cfg.name, cfg.exist_ok)
            values.update(project=str(save_dir.parent), name=save_dir.name, exist_ok=True)
        rc = ddp.launch(values, nproc)
        if rc != 0:
            raise RuntimeError(f"DDP training ({nproc} processes) failed with exit code {rc}")
        wdir = save_dir / "weights"
        return TrainResult(
            save_dir=save_dir,
            last=wdir / "last.pt",
            best=wdir / "best.pt",
            epochs=cfg.epochs,
            epochs_run=-1,
            start_epoch=-1,
            best_epoch=-1,
            best_fitness=None,
        )

    # -- setup --------------------------------------------------------------------------------------
    def _resume_path(self) -> Path:
        resume = self.cfg.resume
        if isinstance(resume, str):
            path = Path(resume).expanduser()
            if path.is_dir():
                path = path / "weights" / "last.pt" if (path / "weights").is_dir() else path / "last.pt"
            if not path.is_file():
                raise FileNotFoundError(f"resume checkpoint not found: {path}")
            return path
        return _latest_last(Path(self.cfg.project))

    def _resume_args(self) -> dict:
        """The train_args of the checkpoint to resume ({} when it cannot be read here; _setup reports why)."""
        from edgeseg.nn.checkpoint import CheckpointError, is_native_checkpoint, load_checkpoint

        try:
            path = self._resume_path()
            if not is_native_checkpoint(path):
                return {}
            return dict(load_checkpoint(path).get("train_args") or {})
        except (CheckpointError, OSError, ValueError):
            return {}

    def _load_resume(self) -> dict:
        from edgeseg.nn.checkpoint import is_native_checkpoint, load_checkpoint

        path = self._resume_path()
        if not is_native_checkpoint(path):
            raise ValueError(
                f"resume: {path} is not an edgeseg training checkpoint (weights/last.pt of an "
                f"edgeseg run); to fine-tune from it use --model {path}"
            )
        ckpt = load_checkpoint(path)
        if "optimizer" not in ckpt or "epoch" not in ckpt:
            raise ValueError(
                f"resume: {path} holds no training state (optimizer/epoch); it can start a new "
                f"training with --model {path} but cannot be resumed"
            )
        args = {k: v for k, v in dict(ckpt.get("train_args") or {}).items() if k in TrainConfig.field_names()}
        for key in RESUME_OVERRIDABLE:
            if key in self._given:
                args[key] = getattr(self.cfg, key)
        if args.get("data") and not Path(args["data"]).exists() and self.cfg.data:
            args["data"] = self.cfg.data  # the dataset moved: use the one given now
        args["resume"] = str(path)
        self.cfg = TrainConfig.from_dict(args)
        self.save_dir = path.resolve().parent.parent
        LOGGER.info("Resuming training from %s (epoch %d done of %d)", path, int(ckpt["epoch"]) + 1, self.cfg.epochs)
        return ckpt

    def _setup(self) -> dict:
        from edgeseg.data.dataset_yaml import load_dataset_yaml
        from edgeseg.nn.head26 import Segment26Head
        from edgeseg.train.loss import SegmentationLoss
        from edgeseg.train.loss26 import EndToEndSegLoss

        ckpt = self._load_resume() if self.cfg.resume else None
        cfg = self.cfg
        dist = self.dist
        if cfg.data is None:
            raise ValueError("training needs a dataset: data=path/to/data.yaml (--data)")
        if cfg.model is None and ckpt is None:
            raise ValueError(
                "training needs a model: a name like yolov8n-seg, yolov8n-seg.yaml or a .pt file (--model)"
            )
        previous = _init_seeds(cfg.seed + dist.rank, cfg.deterministic)
        self.device = dist.device
        self.data = load_dataset_yaml(cfg.data)
        nc, names = self.data.nc, dict(self.data.names)

        # run directory (decided by rank 0)
        if self.save_dir is None:
            self.save_dir = _increment_dir(Path(cfg.project), cfg.name, cfg.exist_ok) if dist.is_main else None
            self.save_dir = ddp.broadcast_object(dist, self.save_dir)
        self.wdir = self.save_dir / "weights"
        self.last, self.best = self.wdir / "last.pt", self.wdir / "best.pt"
        self.csv = self.save_dir / "results.csv"
        if dist.is_main:
            self.wdir.mkdir(parents=True, exist_ok=True)
            self._write_args()
        ddp.barrier(dist)

        # model
        self.model = self._setup_model(ckpt, nc, names)
        for k, p in self.model.named_parameters():
            p.requires_grad_(not any(f in k for f in FROZEN))
        self.model.to(self.device).train()

        # data
        self.batch = max(cfg.batch // dist.world_size, 1)
        if cfg.batch % dist.world_size:
            LOGGER.warning(
                "batch=%d is not a multiple of the %d DDP processes; using %d per process",
                cfg.batch,
                dist.world_size,
                self.batch,
            )
        workers = cfg.workers
        if self.device.type in ("cpu", "mps") and workers:
            LOGGER.info(
                "training on %s: using workers=0 (time is spent in the model, not in data loading)", self.device.type
            )
            workers = 0
        self.workers = workers
        with self._main_first():
            self.train_set = self._build_dataset(nc)
        from edgeseg.train.data.loader import build_dataloader

        self.loader = build_dataloader(
            self.train_set,
            batch=self.batch,
            workers=workers,
            shuffle=True,
            seed=cfg.seed,
            rank=dist.rank,
            world_size=dist.world_size,
        )
        if len(self.loader) == 0:
            raise ValueError(f"{cfg.data}: the training split yields no batches")

        # optimisation
        self.accumulate = accumulate_steps(cfg.batch, cfg.nbs)
        decay = scaled_weight_decay(cfg.weight_decay, cfg.batch, self.accumulate, cfg.nbs)
        iterations = nominal_iterations(len(self.train_set), cfg.batch, cfg.nbs, cfg.epochs)
        self.opt_choice = choose_optimizer(cfg.optimizer, cfg.lr0, cfg.momentum, nc, iterations)
        if self.opt_choice.auto:
            LOGGER.info(
                "optimizer=auto: %s(lr=%g, momentum=%g) for %d nominal iterations (lr0 and momentum ignored)",
                self.opt_choice.name,
                self.opt_choice.lr,
                self.opt_choice.momentum,
                iterations,
            )
        self.warmup_bias_lr = 0.0 if self.opt_choice.auto else cfg.warmup_bias_lr
        self.optimizer = build_optimizer(self.model, self.opt_choice, decay)
        self.lf = lr_lambda(cfg.epochs, cfg.lrf, cfg.cos_lr)
        self.scheduler = build_scheduler(self.optimizer, self.lf)
        self.amp = bool(cfg.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        strides = [float(s) for s in self.model.stride.tolist()]
        self.criterion: Any
        if isinstance(self.model.head, Segment26Head):  # both branches, their weights set per epoch
            self.criterion = EndToEndSegLoss(
                nc,
                strides=strides,
                epochs=cfg.epochs,
                box=cfg.box,
                cls=cfg.cls,
                dfl=cfg.dfl,
                overlap_mask=cfg.overlap_mask,
            )
        else:
            self.criterion = SegmentationLoss(
                nc, strides=strides, box=cfg.box, cls=cfg.cls, dfl=cfg.dfl, overlap_mask=cfg.overlap_mask
            )
        self.loss_names = tuple(getattr(self.criterion, "names", LOSS_NAMES))
        self.ema = ModelEMA(self.model) if dist.is_main else None
        self.train_model: nn.Module = self.model
        if dist.distributed:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False,
                find_unused_parameters=False,
            )
        if ckpt is not None:
            self._restore_training_state(ckpt)
        elif dist.is_main and self.csv.exists():
            self.csv.unlink()
        return previous

    @contextlib.contextmanager
    def _main_first(self):
        """Rank 0 runs the block first (e.g. writes the label cache); the others after it."""
        if not self.dist.is_main:
            ddp.barrier(self.dist)
        yield
        if self.dist.is_main:
            ddp.barrier(self.dist)

    def _write_args(self) -> None:
        try:
            import yaml
        except ImportError:  # pragma: no cover - pyyaml is part of the train extra
            return
        text = yaml.safe_dump(dict(self.cfg.to_dict(), save_dir=str(self.save_dir)), sort_keys=False)
        (self._save_dir / "args.yaml").write_text(text, encoding="utf-8")

    def _setup_model(self, ckpt: dict | None, nc: int, names: dict) -> SegmentationModel:
        from edgeseg.nn import build_model

        if ckpt is not None:
            if int(ckpt["nc"]) != nc:
                raise ValueError(f"resume: the checkpoint has {ckpt['nc']} classes but {self.cfg.data} has {nc}")
            model = build_model(arch=ckpt["arch"], scale=ckpt["scale"], nc=nc, names=names)
            model.load_state_dict(ckpt.get("train_state_dict") or ckpt["state_dict"])
            self.freeze_bn = _folded_batchnorm(model)  # a run that froze them goes on with them frozen
            return model
        spec = str(self.cfg.model)
        path = Path(spec).expanduser()
        if path.suffix.lower() in WEIGHT_SUFFIXES or (path.is_file() and path.suffix.lower() not in (".yaml", ".yml")):
            return self._model_from_weights(path, nc, names)
        if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
            LOGGER.info(
                "model %s: building %s from its name (custom architecture yamls are not supported)", path, path.stem
            )
        model = build_model(path.name if path.suffix.lower() in (".yaml", ".yml") else spec, nc=nc, names=names)
        n_params = sum(p.numel() for p in model.parameters())
        LOGGER.info("model %s%s-seg (random init): %d parameters, nc=%d", model.arch, model.scale, n_params, nc)
        return model

    def _model_from_weights(self, path: Path, nc: int, names: dict) -> SegmentationModel:
        from edgeseg.nn import build_model
        from edgeseg.nn.load import load_model

        if not path.exists():
            raise FileNotFoundError(f"model weights not found: {path}")
        src, info = load_model(path)
        if info.nc == nc:
            model = src
            model.names = dict(names)
            self.transferred = (len(model.state_dict()), len(model.state_dict()))
            if dict(info.names) != dict(names):
                LOGGER.info("using the dataset's class names instead of the checkpoint's")
        else:
            model = build_model(arch=info.arch, scale=info.scale, nc=nc, names=names)
            self.transferred = transfer_weights(model, src.state_dict())
            LOGGER.info("%s has nc=%d, the dataset nc=%d: rebuilt the head", path.name, info.nc, nc)
        LOGGER.info(
            "Transferred %d/%d items from %s (%s checkpoint)",
            self.transferred[0],
            self.transferred[1],
            path,
            info.format,
        )
        if _folded_batchnorm(model):
            # Training-mode BN would normalise with batch statistics and change what the network computes
            # (measured on yolov8n-seg-coco-dq: coco128 mask mAP50 fell from 0.12 to 0.004 in 2 epochs).
            self.freeze_bn = True
            LOGGER.warning(
                "%s: its BatchNorm layers are identities (Conv+BN folded before saving, e.g. weights "
                "rebuilt from an export); training keeps BatchNorm in eval mode (statistics frozen, "
                "affine parameters still trained) so that it starts from what the weights compute.",
                path.name,
            )
        return model

    def _build_dataset(self, nc: int):
        from edgeseg.data.errors import DatasetError
        from edgeseg.train.data.dataset import SegmentationDataset

        cfg = self.cfg
        try:
            ds = SegmentationDataset(
                self.data.train,
                nc=nc,
                imgsz=cfg.imgsz,
                augment=True,
                hyp=cfg.hyp,
                batch_size=self.batch,
                mask_ratio=cfg.mask_ratio,
                overlap_mask=cfg.overlap_mask,
                seed=cfg.seed,
                prefix="train",
            )
        except DatasetError as exc:
            raise DatasetError(f"{cfg.data}: training split: {exc}") from None
        if cfg.fraction < 1.0:
            keep = max(1, int(round(len(ds.labels) * cfg.fraction)))
            ds.labels = ds.labels[:keep]
            LOGGER.info("fraction=%g: training on %d images", cfg.fraction, keep)
        if len(ds) == 0:
            raise DatasetError(f"{cfg.data}: the training split is empty")
        if not any(len(lb.cls) for lb in ds.labels):
            LOGGER.warning(
                "%s: no labelled instances in the training split; the model will learn background only", cfg.data
            )
        if len(ds) % self.batch == 1 and cfg.imgsz < 64 and len(ds) > 1:
            raise ValueError(
                f"the last batch would hold 1 image at imgsz={cfg.imgsz}: BatchNorm needs more than "
                f"one value per channel; change batch or use imgsz >= 64"
            )
        return ds

    def _restore_training_state(self, ckpt: dict) -> None:
        from edgeseg.nn.checkpoint import restore_rng_state

        cfg = self.cfg
        start = int(ckpt["epoch"]) + 1
        if start >= cfg.epochs:
            raise ValueError(
                f"{cfg.resume}: training to {cfg.epochs} epochs is already finished, nothing to "
                f"resume; start a new training with --model {cfg.resume}"
            )
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") and self.amp:
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None:
            self.ema.ema.load_state_dict(ckpt["state_dict"])
            self.ema.updates = int(ckpt.get("updates") or 0)
        self.best_fitness = ckpt.get("best_fitness")
        self.best_epoch = int(ckpt.get("best_epoch", -1))
        self.time_offset = float((ckpt.get("train_metrics") or {}).get("time") or 0.0)
        self.start_epoch = start
        if ckpt.get("rng_state"):
            restore_rng_state(ckpt["rng_state"])
        if self.dist.is_main:
            self._truncate_csv(start)
        LOGGER.info("Resuming at epoch %d/%d", start + 1, cfg.epochs)

    def _truncate_csv(self, epochs_done: int) -> None:
        """Keep results.csv rows of the epochs the checkpoint holds (1-based epoch <= epochs_done)."""
        if not self.csv.exists():
            return
        with open(self.csv, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and _float(r[0]) <= epochs_done]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(kept)
        atomic_write_text(self.csv, buf.getvalue())

    # -- the loop -----------------------------------------------------------------------------------
    def _fit(self) -> TrainResult:
        cfg, dist = self.cfg, self.dist
        nb = len(self.loader)
        nw = warmup_iterations(cfg.warmup_epochs, nb)
        self.train_start = time.time()
        LOGGER.info(
            "Image size %d, batch %d (%d per process x %d), %d batches per epoch, accumulate %d, "
            "%d dataloader workers\nLogging results to %s\nStarting training for %d epochs...",
            cfg.imgsz,
            cfg.batch,
            self.batch,
            dist.world_size,
            nb,
            self.accumulate,
            self.workers,
            self.save_dir,
            cfg.epochs,
        )
        epoch = self.start_epoch
        self.optimizer.zero_grad()
        try:
            for epoch in range(self.start_epoch, cfg.epochs):
                self.epoch = epoch
                if self._train_epoch(epoch, nb, nw):
                    if epoch + 1 < cfg.epochs:
                        LOGGER.info(
                            "Stopping early: no improvement in the last %d epochs (best epoch %d)",
                            cfg.patience,
                            self.best_epoch + 1,
                        )
                    break
        except KeyboardInterrupt:
            if dist.is_main:
                LOGGER.warning(
                    "Training interrupted during epoch %d; %s holds the last completed epoch. "
                    "Continue with: edgeseg train --resume %s",
                    self.epoch + 1,
                    self.last,
                    self.last,
                )
            raise
        epochs_run = self.epoch + 1 - self.start_epoch
        LOGGER.info("%d epochs completed in %.3f hours.", epochs_run, (time.time() - self.train_start) / 3600)
        plots = self._final_plots() if dist.is_main and cfg.plots else []
        self._run_callbacks("on_train_end")
        metrics = self.last_val.as_dict() if self.last_val is not None else {}
        return TrainResult(
            save_dir=self._save_dir,
            last=self.last,
            best=self.best,
            epochs=cfg.epochs,
            epochs_run=epochs_run,
            start_epoch=self.start_epoch,
            best_epoch=self.best_epoch,
            best_fitness=self.best_fitness,
            metrics=metrics,
            history=list(self.history),
            plots=plots,
        )

    def _reseed_data(self, epoch: int) -> None:
        """Data order and augmentation of an epoch depend only on (seed, rank, epoch): exact resumes."""
        seed, rank = self.cfg.seed, self.dist.rank
        sampler = getattr(self.loader, "sampler", None)
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        gen = getattr(self.loader, "generator", None)
        if gen is not None:
            gen.manual_seed((seed * 1000003 + rank * 7919 + epoch) % (2**63))
        if self.workers == 0 and hasattr(self.train_set, "set_rng"):
            self.train_set.set_rng(np.random.default_rng([seed, rank, epoch]))

    def _preprocess(self, batch: dict) -> dict:
        batch["img"] = batch["img"].to(self.device, non_blocking=True).float() / 255
        return batch

    def _memory(self) -> str:
        if self.device.type == "cuda":
            return f"{torch.cuda.memory_reserved(self.device) / 2**30:.3g}G"
        return "0G"

    def _train_epoch(self, epoch: int, nb: int, nw: int) -> bool:
        cfg, dist = self.cfg, self.dist
        set_epoch(self.scheduler, epoch)
        self.train_model.train()
        if self.freeze_bn:
            for m in self.train_model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        self._reseed_data(epoch)
        if hasattr(self.criterion, "set_epoch"):  # YOLO26: the branch weights of this epoch (resumes too)
            self.criterion.set_epoch(epoch)
        if cfg.close_mosaic and 0 <= cfg.epochs - cfg.close_mosaic <= epoch and self.train_set.mosaic:
            LOGGER.info("Closing dataloader mosaic")
            self.train_set.close_mosaic()
        if dist.is_main and cfg.verbose:
            LOGGER.info("\n%s", header(self.loss_names))
        bar = EpochProgress(nb, epoch, cfg.epochs, enabled=dist.is_main and cfg.verbose)
        tloss = None
        pending = 0
        lf_epoch = self.lf(epoch)
        autocast = torch.autocast("cuda", enabled=self.amp) if self.device.type == "cuda" else contextlib.nullcontext()
        epoch_start = time.time()
        try:
            for i, batch in enumerate(self.loader):
                ni = i + nb * epoch
                if ni <= nw:
                    self.accumulate = apply_warmup(
                        self.optimizer,
                        ni,
                        nw,
                        lf_epoch,
                        warmup_bias_lr=self.warmup_bias_lr,
                        warmup_momentum=cfg.warmup_momentum,
                        momentum=cfg.momentum,
                        nbs=cfg.nbs,
                        batch=cfg.batch,
                    )
                batch = self._preprocess(batch)
                with autocast:
                    preds = self.train_model(batch["img"])
                if self.amp:  # the loss in fp32
                    preds = _to_float(preds)
                loss, items = self.criterion(preds, batch)
                if dist.distributed:
                    loss = loss * dist.world_size
                self.scaler.scale(loss).backward()
                pending += 1
                if pending >= self.accumulate:
                    self._optimizer_step()
                    pending = 0
                items = items.detach().float().cpu()
                tloss = items if tloss is None else (tloss * i + items) / (i + 1)
                self.batches_seen += 1
                bar.update(tloss.tolist(), int(batch["cls"].shape[0]), int(batch["img"].shape[-1]), self._memory())
                self._run_callbacks("on_batch_end")
            if pending:
                self._optimizer_step()
        finally:
            bar.close()
        if tloss is not None and not torch.isfinite(tloss).all():
            LOGGER.warning("epoch %d: the training loss is not finite (%s)", epoch + 1, tloss.tolist())
        lrs = [float(g["lr"]) for g in self.optimizer.param_groups]
        self.train_loss = tloss
        stop = False
        if dist.is_main:
            stop = self._end_epoch(epoch, tloss, lrs, time.time() - epoch_start)
        stop = bool(ddp.broadcast_object(dist, stop))
        ddp.barrier(dist)
        self._run_callbacks("on_epoch_end")
        return stop

    def _optimizer_step(self) -> None:
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self._model.parameters(), max_norm=MAX_GRAD_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        self.optimizer_steps += 1
        if self.ema is not None:
            self.ema.update(self._model)

    # -- end of epoch (rank 0) ----------------------------------------------------------------------
    def _validate(self) -> ValResult:
        from edgeseg.val import validate

        return validate(self._ema.ema, self.data, imgsz=self.cfg.imgsz, batch=self.batch * 2, progress=self.cfg.verbose)

    def _end_epoch(self, epoch: int, tloss: torch.Tensor | None, lrs: list[float], seconds: float) -> bool:
        cfg = self.cfg
        final = epoch + 1 == cfg.epochs
        losses = tloss.tolist() if tloss is not None else [float("nan")] * len(self.loss_names)
        metrics = {k: float("nan") for k in METRIC_KEYS}
        if cfg.val or final:
            val = self._validate()
            self.last_val = val
            metrics.update({k: float(v) for k, v in val.as_dict().items() if k in METRIC_KEYS})
            fitness = float(val.fitness)
            if cfg.verbose:
                LOGGER.info("%s", val.summary(per_class=False))
        else:
            val = None
            fitness = -float(sum(losses))
        improved = self.best_fitness is None or fitness > self.best_fitness
        if improved:
            self.best_fitness, self.best_epoch = fitness, epoch
            if val is not None:
                self.best_val = val
        row = {"epoch": epoch + 1, "time": round(self.time_offset + time.time() - self.train_start, 3)}
        row.update({f"train/{n}": v for n, v in zip(self.loss_names, losses)})
        row.update(metrics)
        row["fitness"] = fitness
        row.update({f"lr/pg{j}": v for j, v in enumerate(lrs)})
        self.history.append(row)
        self._append_csv(row)
        self._save(epoch, improved, row)
        stop = final
        if cfg.patience and epoch - self.best_epoch >= cfg.patience:
            stop = True
        return stop

    def _append_csv(self, row: dict) -> None:
        new = not self.csv.exists()
        with open(self.csv, "a", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            if new:
                writer.writerow(list(row))
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row.values()])

    def _checkpoint(self, epoch: int, row: dict, training: bool) -> dict:
        from edgeseg.nn.checkpoint import capture_rng_state, make_checkpoint

        model = self._model  # never wrapped: DDP wraps it as train_model
        ema = self._ema
        ema_sd = {k: v.detach().clone() for k, v in ema.ema.state_dict().items()}
        args = dict(self.cfg.to_dict(), save_dir=str(self.save_dir))
        fields: dict[str, Any] = {"epoch": epoch, "best_fitness": self.best_fitness}
        if training:
            fields.update(
                optimizer=self.optimizer.state_dict(),
                updates=ema.updates,
                ema={"decay": ema.decay_max, "tau": ema.tau},
                rng_state=capture_rng_state(),
            )
        ckpt = make_checkpoint(
            state_dict=ema_sd,
            arch=model.arch,
            scale=model.scale,
            nc=model.nc,
            names=dict(model.names),
            imgsz=self.cfg.imgsz,
            train_args=args,
            **fields,
        )
        ckpt["best_epoch"] = self.best_epoch
        ckpt["train_metrics"] = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()
        }
        if training:
            ckpt["train_state_dict"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            ckpt["scheduler"] = self.scheduler.state_dict()
            ckpt["scaler"] = self.scaler.state_dict()
        return ckpt

    def _write(self, path: Path, ckpt: dict) -> None:
        from edgeseg.nn.checkpoint import atomic_write_with

        atomic_write_with(path, lambda fh: torch.save(ckpt, fh))
        self.saved.append(path)

    def _save(self, epoch: int, improved: bool, row: dict) -> None:
        full = self._checkpoint(epoch, row, training=True)
        self._write(self.last, full)
        if improved:
            self._write(self.best, self._checkpoint(epoch, row, training=False))
        if self.cfg.save_period > 0 and (epoch + 1) % self.cfg.save_period == 0:
            self._write(self.wdir / f"epoch{epoch + 1}{CHECKPOINT_SUFFIXES[0]}", full)

    # -- plots (rank 0) -----------------------------------------------------------------------------
    def _final_plots(self) -> list[Path]:
        from . import plots

        out: list[Path] = []
        jobs = [("results", lambda: plots.plot_results(self.csv, self._save_dir / "results.png"))]
        val = self.best_val or self.last_val
        if val is not None:
            jobs.append(
                (
                    "PR curves",
                    lambda: plots.plot_pr_curves(val.metrics, self._save_dir / "PR_curve.png", names=self.data.names),
                )
            )
        jobs.append(("predictions", self._plot_predictions))
        for what, job in jobs:
            try:
                path = job()
            except Exception as exc:  # a plot must never fail a finished training
                LOGGER.warning("could not plot %s: %s", what, exc)
                continue
            if path is not None:
                out.append(Path(path))
        if out:
            LOGGER.info("Plots saved to %s", self.save_dir)
        return out

    def _plot_predictions(self) -> Path | None:
        from . import plots

        model = deepcopy(self._ema.ema)
        if self.best.exists():
            from edgeseg.nn.checkpoint import load_checkpoint

            model.load_state_dict(load_checkpoint(self.best)["state_dict"])
        return plots.plot_predictions(
            model.eval(), self.data, self._save_dir / "val_predictions.png", imgsz=self.cfg.imgsz, names=self.data.names
        )


def _folded_batchnorm(model: nn.Module) -> bool:
    """True when every BatchNorm2d has running mean 0 and variance ~1 yet carries biases: the BN was folded into
    the convolutions (a freshly initialised model has zero biases)."""
    bns = [
        (m.running_mean, m.running_var, m.bias)
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None
    ]
    if not bns:
        return False
    identity = all(float(mean.abs().max()) == 0.0 and float((var - 1).abs().max()) < 1e-2 for mean, var, _ in bns)
    return identity and any(bias is not None and float(bias.detach().abs().max()) > 0 for _, _, bias in bns)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")


def train(**options: Any) -> TrainResult:
    """Train with the given options (see :class:`~edgeseg.train.config.TrainConfig`)."""
    return Trainer(options).train()
