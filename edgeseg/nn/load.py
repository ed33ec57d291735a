"""``load_model``: build an edgeseg network from a checkpoint file, whatever its format.

Recognised formats, told apart from the file's content (not its name, except ``.safetensors``):

* ``edgeseg``: edgeseg's own checkpoint (:mod:`.checkpoint.native`), read with
  ``torch.load(weights_only=True)``;
* ``ultralytics``: an Ultralytics YOLOv8-seg / YOLO11-seg / YOLO26-seg ``.pt`` (``model``, or ``ema`` when ``model``
  is empty), read by edgeseg's restricted unpickler - Ultralytics is neither needed nor imported;
* ``state_dict``: a bare ``{"model.0.conv.weight": tensor, ...}`` dict saved with ``torch.save``;
* ``safetensors``: a ``.safetensors`` file written by :func:`~.checkpoint.native.save_safetensors`.

The weights must fit the architecture exactly (strict loading); any missing or unexpected key or
shape mismatch raises :class:`~.checkpoint.errors.StateDictMismatchError` listing them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..formats import SAFETENSORS_SUFFIX
from .checkpoint.errors import CheckpointFormatError, CheckpointNotFoundError, StateDictMismatchError
from .checkpoint.native import is_native_checkpoint, load_checkpoint, load_safetensors
from .checkpoint.safe_unpickle import read_torch_zip
from .checkpoint.ultralytics_pt import detect_scale, parse_ultralytics_object

__all__ = ["ModelInfo", "load_model", "load_weights"]

_LIST_LIMIT = 8


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`load_model` learnt about the checkpoint besides the weights."""

    path: Path
    format: str  # "edgeseg", "ultralytics", "state_dict" or "safetensors"
    arch: str
    scale: str
    nc: int
    names: dict[int, str]
    imgsz: Any = None
    train_args: dict | None = None
    extras: dict = field(default_factory=dict)  # version, date, epoch, yaml, ... as the file has them


def _listing(keys) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _LIST_LIMIT else "")


def load_weights(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: object) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with one clear error for every mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listing(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches (file vs model): {_listing(mismatched)}")
        raise StateDictMismatchError(
            f"{source}: the weights do not fit {getattr(model, 'arch', '?')}{getattr(model, 'scale', '')}"
            f"-seg with nc={getattr(model, 'nc', '?')}; " + "; ".join(parts),
            missing,
            unexpected,
            mismatched,
        )
    model.load_state_dict(state_dict, strict=True)


def _bare_state_dict_info(sd: Mapping[str, torch.Tensor], path: Path) -> tuple[str, str, int]:
    """Architecture, scale and nc of a bare Ultralytics-style state_dict, from its keys and shapes."""
    layers = {int(m.group(1)) for k in sd for m in [re.match(r"^model\.(\d+)\.", k)] if m}
    if not layers:
        raise CheckpointFormatError(f"{path}: a tensor dict without 'model.N.' keys is not a YOLO model")
    if any(".one2one_cv2." in k or ".proto.feat_refine." in k for k in sd):
        arch = "yolo26"
    else:
        arch = "yolo11" if any(".attn." in k for k in sd) else "yolov8"
    cls_out = sd.get(f"model.{max(layers)}.cv3.0.2.weight")
    if cls_out is None or cls_out.ndim != 4:
        raise CheckpointFormatError(f"{path}: no segmentation head found (model.{max(layers)}.cv3.0.2.weight)")
    return arch, detect_scale(arch, sd), int(cls_out.shape[0])


def _read(path: Path) -> tuple[dict[str, Any], Mapping[str, torch.Tensor]]:
    """(description fields, state_dict) for any supported format."""
    if path.suffix.lower() == SAFETENSORS_SUFFIX:
        ck = load_safetensors(path)
        return dict(ck, format="safetensors"), ck["state_dict"]
    if is_native_checkpoint(path):
        ck = load_checkpoint(path)
        extras = {k: ck[k] for k in ("edgeseg_version", "epoch", "best_fitness") if k in ck}
        return dict(ck, format="edgeseg", extras=extras), ck["state_dict"]
    obj = read_torch_zip(path)
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        arch, scale, nc = _bare_state_dict_info(obj, path)
        fields = {"format": "state_dict", "arch": arch, "scale": scale, "nc": nc, "names": None}
        return fields, {k: v.detach().float() if v.is_floating_point() else v.detach() for k, v in obj.items()}
    ult = parse_ultralytics_object(obj, path)
    extras = dict(ult.metadata, yaml=ult.yaml, args=ult.args, stride=ult.stride, source_key=ult.source_key)
    fields = {
        "format": "ultralytics",
        "arch": ult.arch,
        "scale": ult.scale,
        "nc": ult.nc,
        "names": ult.names,
        "imgsz": ult.imgsz,
        "train_args": ult.train_args,
        "extras": extras,
    }
    return fields, ult.state_dict


def load_model(path, device: Any = "cpu"):
    """Load a checkpoint into a new :class:`edgeseg.nn.SegmentationModel` in eval mode.

    Returns ``(model, info)`` where ``info`` is a :class:`ModelInfo`. Raises
    :class:`~.checkpoint.errors.CheckpointError` subclasses for missing, unsafe, corrupt or
    mismatched files.
    """
    from . import build_model

    path = Path(path)
    if not path.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}") from exc
    fields, state_dict = _read(path)
    try:
        model = build_model(arch=fields["arch"], scale=fields["scale"], nc=fields["nc"], names=fields["names"])
    except ValueError as exc:
        raise CheckpointFormatError(f"{path}: cannot build its model ({exc})") from exc
    load_weights(model, state_dict, path)
    model.to(device).eval()
    info = ModelInfo(
        path=path,
        format=fields["format"],
        arch=model.arch,
        scale=model.scale,
        nc=model.nc,
        names=dict(model.names),
        imgsz=fields.get("imgsz"),
        train_args=fields.get("train_args"),
        extras=dict(fields.get("extras") or {}),
    )
    return model, info
