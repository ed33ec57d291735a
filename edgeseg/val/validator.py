"""``validate``: COCO-style box and mask mAP of a model on a YOLO segmentation dataset.

The protocol is Ultralytics 8.4's ``yolo val`` for segmentation models:

* data: long side resized to ``imgsz``, letterboxed without upscaling; torch models (dynamic input) get
  rect batches (images sorted by aspect ratio, each batch its own stride-aligned shape), exported
  models (fixed input) a square letterbox, one image at a time;
* post-processing: multi-label decode at conf 0.001, class-aware NMS at IoU 0.7, 300 detections,
  masks at prototype resolution (:mod:`edgeseg.val.postprocess`);
* matching and AP: :class:`edgeseg.metrics.SegmentMetrics` (``mode="ultralytics"``, or ``"coco"`` for
  pycocotools-style matching and AP).

``model`` is a file any edgeseg backend runs (``.onnx``, ...), a torch checkpoint (``.pt``, ``.pth``,
``.safetensors``: loaded with :func:`edgeseg.nn.load.load_model`), or an in-memory torch
``SegmentationModel`` (e.g. the trainer's EMA model; it is put in eval mode for the run and restored).
torch is imported only for torch models.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_text
from ..formats import CHECKPOINT_SUFFIXES
from ..metrics import SegmentMetrics, SegmentResults
from ..metrics.segment_metrics import MetricResults
from ..opencv import require_cv2
from .data import ValDataset, ValImage, load_split
from .postprocess import ValPredictions, gt_masks_from_overlap, postprocess

__all__ = ["TORCH_SUFFIXES", "ValResult", "validate"]

LOGGER = logging.getLogger("edgeseg.val")

TORCH_SUFFIXES = CHECKPOINT_SUFFIXES
_TORCH_BACKENDS = ("torch", "pytorch")


@dataclass
class ValResult:
    """What :func:`validate` measured. Metrics are fractions (0..1), speeds milliseconds per image."""

    metrics: SegmentResults
    names: dict[int, str]
    n_images: int
    n_instances: int
    speed: dict[str, float]
    model: str
    backend: str
    imgsz: tuple[int, int]
    rect: bool
    batch: int
    mode: str
    split: str
    nonfinite: int = 0  # candidates dropped because the model produced NaN/inf
    _table: str = field(default="", repr=False)
    _table_all: str = field(default="", repr=False)

    @property
    def box(self) -> MetricResults:
        return self.metrics.box

    @property
    def mask(self) -> MetricResults:
        return self.metrics.mask

    @property
    def fitness(self) -> float:
        return self.metrics.fitness

    def as_dict(self) -> dict:
        """Ultralytics' result keys (``metrics/mAP50-95(B)``, ...) plus ``fitness``."""
        return self.metrics.as_dict()

    def summary(self, per_class: bool = True) -> str:
        """The ``yolo val`` table: an 'all' row, then (``per_class``) one row per class with labels."""
        return self._table if per_class else self._table_all

    def to_json(self) -> dict:
        out = {
            "model": self.model,
            "backend": self.backend,
            "split": self.split,
            "imgsz": list(self.imgsz),
            "rect": self.rect,
            "batch": self.batch,
            "mode": self.mode,
            "images": self.n_images,
            "instances": self.n_instances,
            "speed_ms": dict(self.speed),
            "nonfinite": self.nonfinite,
        }
        for tag, m in (("box", self.box), ("mask", self.mask)):
            out[tag] = {
                "precision": m.precision,
                "recall": m.recall,
                "map50": m.map50,
                "map50_95": m.map50_95,
                "per_class": {self.names.get(c, str(c)): a for c, a in m.ap_by_class.items()},
            }
        out["fitness"] = self.fitness
        return out


# ---- runners: one image batch in, raw outputs per image out ---------------------------------------


class _TorchRunner:
    """A torch SegmentationModel: rect batches, any stride-aligned input shape."""

    dynamic = True

    def __init__(self, model, source: str, end2end: bool | None = None):
        import torch

        self.torch = torch
        self.model = model
        self.head_setting = _set_end2end(model, end2end)
        self.source = source
        self.was_training = bool(model.training)
        model.eval()
        try:
            p = next(model.parameters())
            self.device, self.dtype = p.device, p.dtype
        except StopIteration:  # pragma: no cover - a model always has parameters
            self.device, self.dtype = torch.device("cpu"), torch.float32
        self.nc = int(model.nc)
        self.names = dict(getattr(model, "names", None) or {i: str(i) for i in range(self.nc)})
        stride = getattr(model, "stride", None)
        self.stride = int(max(stride.tolist())) if stride is not None and hasattr(stride, "tolist") else 32
        self.backend_name = "torch"
        self.preds_layout = "e2e" if getattr(model, "end2end", False) else "cn"
        self.protos_layout, self.box_scale = "chw", (1.0, 1.0)
        self.topk = None
        self.input_shape = None

    def infer(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        torch = self.torch
        arr = np.stack([im[..., ::-1].transpose(2, 0, 1) for im in images], 0)
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
        x = x.to(self.dtype) / 255.0
        with torch.inference_mode():
            y, protos = self.model(x)
        y = y.float().cpu().numpy()
        protos = protos.float().cpu().numpy()
        return [(y[i], protos[i]) for i in range(len(images))]

    def close(self) -> None:
        if self.head_setting is not None:
            self.model.head.end2end = self.head_setting
        if self.was_training:
            self.model.train()


def _set_end2end(model, end2end: bool | None) -> bool | None:
    """Choose a YOLO26 model's head for this run; returns its previous setting (None: nothing changed)."""
    if end2end is None:
        return None
    head = getattr(model, "head", None)
    if head is None or not hasattr(head, "end2end"):
        raise ValueError("end2end= chooses between the two heads of a YOLO26 model; this model has one head")
    previous = bool(head.end2end)
    head.end2end = bool(end2end)
    return previous


class _BackendRunner:
    """An exported model on an edgeseg backend: fixed input, one image at a time."""

    dynamic = False

    def __init__(self, path: Path, backend: str | None, imgsz, end2end: bool | None = None):
        from ..backends import select_backend

        cls = select_backend(path, backend)
        try:
            self.backend = cls(path, imgsz=imgsz)
        except ValueError as exc:  # a fixed-size model and a different imgsz: validate at the model's size
            if "fixed input size" not in str(exc):
                raise
            self.backend = cls(path)
            LOGGER.warning(
                "%s has a fixed input %s; validating at that size instead of imgsz=%s",
                path.name,
                "x".join(map(str, self.backend.input_spec.shape)),
                imgsz,
            )
        self.source = str(path)
        spec = self.backend.input_spec
        layout = self.backend.output_layout
        self.spec = spec
        self.layout = layout
        if end2end is not None and bool(end2end) == layout.needs_nms:
            have = "an NMS-free end-to-end" if not layout.needs_nms else "a one-to-many (NMS)"
            raise ValueError(f"{path} holds {have} head; its head is fixed at export, end2end={end2end} cannot apply")
        self.nc = int(layout.nc)
        self.names = dict(self.backend.metadata.names)
        self.stride = int(self.backend.metadata.stride)
        self.backend_name = self.backend.name
        self.preds_layout, self.protos_layout = layout.preds_layout, layout.protos_layout
        self.topk = getattr(layout, "topk", None)  # YOLO26's one-to-one head without its in-graph top-k
        self.box_scale = tuple(layout.box_scale)
        self.input_shape = tuple(spec.shape)

    def _blob(self, img: np.ndarray) -> np.ndarray:
        spec = self.spec
        rgb = img[..., ::-1]
        if spec.dtype == "float32":
            x = rgb.astype(np.float32) * np.float32(1 / 255.0)
        elif spec.dtype == "uint8":
            x = rgb.astype(np.uint8)
        else:  # int8: pixel - 128 (scale 1/255, zero point -128)
            x = (rgb.astype(np.int16) - 128).astype(np.int8)
        x = x.transpose(2, 0, 1) if spec.layout == "nchw" else x
        return np.ascontiguousarray(x[None])

    def infer(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for img in images:
            preds, protos = self.layout.split(self.backend.infer(self._blob(img)))
            out.append((np.asarray(preds), np.asarray(protos)))
        return out

    def close(self) -> None:
        pass


def _is_pathlike(model) -> bool:
    return isinstance(model, (str, PathLike))


def _make_runner(model, backend: str | None, imgsz, end2end: bool | None = None):
    if not _is_pathlike(model):
        import torch  # an in-memory model: torch is needed anyway

        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a path or a torch SegmentationModel, got {type(model).__name__}")
        if not hasattr(model, "nc"):
            raise TypeError("model must be an edgeseg SegmentationModel (with .nc and .names)")
        return _TorchRunner(model, source=type(model).__name__, end2end=end2end)
    path = Path(fspath(model))
    want_torch = (backend or "auto").lower() in _TORCH_BACKENDS or (
        (backend is None or backend == "auto") and path.suffix.lower() in TORCH_SUFFIXES
    )
    if want_torch:
        from ..nn.load import load_model

        net, _ = load_model(path)
        _set_end2end(net, end2end)
        net.fuse()
        return _TorchRunner(net, source=str(path))
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    return _BackendRunner(path, backend, imgsz, end2end)


# ---- JSON predictions (COCO results format) -------------------------------------------------------


def _rle_string(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool [h, w] mask (column-major runs, pycocotools' string encoding)."""
    h, w = mask.shape
    flat = np.asarray(mask, dtype=np.uint8).reshape(-1, order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    chars = []
    for i, x in enumerate(counts):
        x = int(x) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return {"size": [int(h), int(w)], "counts": "".join(chars)}


def _to_original(pred: ValPredictions, item: ValImage) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (clipped) and masks of one image in original-image pixels."""
    cv2 = require_cv2("validating")

    gx, gy = item.gain
    left, top = item.pad
    h0, w0 = item.ori_shape
    b = pred.boxes.astype(np.float64).copy()
    b[:, 0::2] = np.clip((b[:, 0::2] - left) / gx, 0, w0)
    b[:, 1::2] = np.clip((b[:, 1::2] - top) / gy, 0, h0)
    n, mh, mw = pred.masks.shape
    h, w = item.shape
    sx, sy = mw / w, mh / h
    x0, y0 = int(round(left * sx)), int(round(top * sy))
    x1, y1 = int(round((left + w0 * gx) * sx)), int(round((top + h0 * gy) * sy))
    masks = np.zeros((n, h0, w0), dtype=bool)
    for i in range(n):
        crop = pred.masks[i, y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)].astype(np.float32)
        masks[i] = cv2.resize(crop, (w0, h0), interpolation=cv2.INTER_LINEAR) > 0.5
    return b, masks


def _json_records(pred: ValPredictions, item: ValImage) -> list[dict]:
    if not len(pred):
        return []
    boxes, masks = _to_original(pred, item)
    stem = Path(item.im_file).stem
    image_id: Any = int(stem) if stem.isnumeric() else stem
    out = []
    for i in range(len(pred)):
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        out.append(
            {
                "image_id": image_id,
                "file_name": Path(item.im_file).name,
                "category_id": int(pred.classes[i]),
                "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                "score": round(float(pred.scores[i]), 5),
                "segmentation": _rle_string(masks[i]),
            }
        )
    return out


# ---- the run ----------------------------------------------------------------------------------------


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.next_report = 0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self.tty:
            end = "\n" if done >= self.total else ""
            print(f"\rval: {done}/{self.total} images", end=end, file=sys.stderr, flush=True)
        elif done >= self.next_report or done >= self.total:
            print(f"val: {done}/{self.total} images", file=sys.stderr, flush=True)
            self.next_report = done + max(1, self.total // 10)


def _imgsz(value) -> int:
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"imgsz must be one int (square) for validation, got {value!r}")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 32:
        raise ValueError(f"imgsz must be an integer >= 32, got {value!r}")
    return int(value)


def validate(
    model,
    data,
    *,
    imgsz: int = 640,
    batch: int = 8,
    conf: float = 0.001,
    iou: float = 0.7,
    max_det: int = 300,
    split: str = "val",
    backend: str | None = None,
    rect: bool | None = None,
    mode: str = "ultralytics",
    progress: bool = True,
    save_json: str | PathLike | None = None,
    indices=None,
    end2end: bool | None = None,
) -> ValResult:
    """Box and mask mAP of ``model`` on the ``split`` of dataset ``data`` (a yaml path or DatasetConfig).

    ``rect`` defaults to True for torch models (dynamic input) and must be False for exported models
    (fixed input: square letterbox at the model's input size, one image at a time, as Ultralytics
    does; ``batch`` then does not apply). ``save_json``: write every prediction, in original-image
    pixels, as a COCO results list (bbox xywh, compressed RLE segmentation, category_id = class id).
    ``indices``: validate only these images of the split (sorted by path): a slice such as
    ``slice(64, 128)``, a range or a list of ints (see :func:`edgeseg.val.data.select_images`).
    ``end2end``: for a YOLO26 model, True validates its NMS-free one-to-one head (rows above ``conf``, at most
    ``max_det``, no NMS), False its one-to-many head with NMS; None uses the model's setting (edgeseg's default
    for YOLO26 is end-to-end; Ultralytics' ``val`` default is the one-to-many head). An export's head is fixed.
    """
    imgsz = _imgsz(imgsz)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    for name, v in (("conf", conf), ("iou", iou)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
    if isinstance(max_det, bool) or not isinstance(max_det, (int, np.integer)) or max_det < 1:
        raise ValueError(f"max_det must be a positive integer, got {max_det!r}")
    if mode not in ("ultralytics", "coco"):
        raise ValueError(f"mode must be 'ultralytics' or 'coco', got {mode!r}")

    cfg, _ = load_split(data, split)  # fails early and clearly on a missing split
    runner = _make_runner(model, backend, imgsz, end2end)
    try:
        if runner.nc != cfg.nc:
            raise ValueError(
                f"the model has {runner.nc} classes but the dataset {cfg.yaml_file or ''} has {cfg.nc}; they must match"
            )
        if runner.dynamic:
            use_rect = True if rect is None else bool(rect)
            ds = ValDataset.from_config(
                cfg, split, imgsz=imgsz, batch_size=batch, rect=use_rect, stride=runner.stride, indices=indices
            )
            run_batch = batch
        else:
            if rect:
                raise ValueError(
                    f"{runner.source} has a fixed input {runner.input_shape}; rect=True "
                    "needs a model with a dynamic input (a torch checkpoint)"
                )
            use_rect = False
            ds = ValDataset.from_config(
                cfg,
                split,
                imgsz=max(runner.input_shape),
                batch_size=1,
                input_shape=runner.input_shape,
                stride=runner.stride,
                indices=indices,
            )
            run_batch = 1
        names = runner.names if runner.names else cfg.names
        metrics = SegmentMetrics(names=names, mode=mode)
        records: list[dict] = []
        t_pre = t_inf = t_post = 0.0
        nonfinite = 0
        n_inst = 0
        bar = _Progress(len(ds), progress)
        done = 0
        for start in range(0, len(ds), run_batch):
            t0 = time.perf_counter()
            items = [ds[i] for i in range(start, min(start + run_batch, len(ds)))]
            t1 = time.perf_counter()
            outputs = runner.infer([it.img for it in items])
            t2 = time.perf_counter()
            for item, (preds, protos) in zip(items, outputs):
                shape = item.shape
                pred = postprocess(
                    preds,
                    protos,
                    runner.nc,
                    shape,
                    conf=conf,
                    iou=iou,
                    max_det=max_det,
                    preds_layout=runner.preds_layout,
                    protos_layout=runner.protos_layout,
                    box_scale=runner.box_scale,
                    topk=runner.topk,
                )
                nonfinite += pred.nonfinite
                mask_shape = pred.masks.shape[1:]
                gt_masks = gt_masks_from_overlap(item.overlap, len(item), mask_shape)
                metrics.update(pred.boxes, pred.scores, pred.classes, pred.masks, item.boxes, item.cls, gt_masks)
                n_inst += len(item)
                if save_json is not None:
                    records += _json_records(pred, item)
            t3 = time.perf_counter()
            t_pre += t1 - t0
            t_inf += t2 - t1
            t_post += t3 - t2
            done += len(items)
            bar.update(done)
    finally:
        runner.close()

    if nonfinite:
        LOGGER.warning("the model produced NaN/inf for %d candidate(s); they were ignored", nonfinite)
    results = metrics.compute()
    n = max(1, len(ds))
    speed = {"preprocess": t_pre * 1e3 / n, "inference": t_inf * 1e3 / n, "postprocess": t_post * 1e3 / n}
    if save_json is not None:
        out = Path(fspath(save_json))
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(records))
    in_h, in_w = runner.input_shape or (imgsz, imgsz)
    return ValResult(
        metrics=results,
        names=dict(names),
        n_images=len(ds),
        n_instances=n_inst,
        speed=speed,
        model=runner.source,
        backend=runner.backend_name,
        imgsz=(int(in_h), int(in_w)),
        rect=use_rect,
        batch=run_batch,
        mode=mode,
        split=split,
        nonfinite=nonfinite,
        _table=metrics.summary(results, per_class=True),
        _table_all=metrics.summary(results, per_class=False),
    )
