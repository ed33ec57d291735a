"""Read Ultralytics YOLOv8-seg / YOLO11-seg / YOLO26-seg ``.pt`` checkpoints without Ultralytics.

The file is unpickled by :mod:`.safe_unpickle`, so every module in it is an inert
:class:`~.safe_unpickle.StandIn` holding the pickled ``__dict__``. This module walks those stand-ins
the way ``nn.Module.state_dict`` would (``_parameters``, persistent ``_buffers``, then ``_modules``)
to get ``model.{i}....`` tensors, and reads the class names, ``nc``, the model yaml and the training
arguments. The architecture (``yolov8``/``yolo11``/``yolo26``) is told from the layer types, the scale from the
channel width and depth of the weights. Half-precision weights are returned as float32.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointFormatError
from .safe_unpickle import StandIn, read_torch_zip

__all__ = [
    "UltralyticsCheckpoint",
    "detect_arch",
    "detect_scale",
    "parse_ultralytics_object",
    "read_ultralytics_checkpoint",
    "stand_in_state_dict",
]

SEGMENTATION_MODEL = "ultralytics.nn.tasks.SegmentationModel"
SEGMENT_HEADS = ("ultralytics.nn.modules.head.Segment", "ultralytics.nn.modules.head.Segment26")
_YOLO26_LAYERS = {"Segment26", "Proto26"}
_YOLO11_LAYERS = {"C3k2", "C3k", "C2PSA", "PSABlock", "Attention"}
_YOLOV8_LAYERS = {"C2f"}
# Repeats of layer 2 before depth scaling: C2f x3 in YOLOv8, C3k2 x2 in YOLO11 (the published yamls).
_LAYER2_REPEATS = {"yolov8": 3, "yolo11": 2, "yolo26": 2}
_METADATA_KEYS = ("date", "version", "license", "docs", "epoch", "best_fitness")
_MAX_DEPTH = 32


@dataclass
class UltralyticsCheckpoint:
    """What edgeseg takes from an Ultralytics checkpoint."""

    path: Path
    arch: str
    scale: str
    nc: int
    names: dict[int, str]
    state_dict: OrderedDict[str, torch.Tensor]
    imgsz: Any | None = None
    stride: tuple[float, ...] = ()
    yaml: dict | None = None
    args: dict = field(default_factory=dict)
    train_args: dict | None = None
    metadata: dict = field(default_factory=dict)
    source_key: str = "model"


def _plain_dict(value: Any) -> dict | None:
    """Namespaces (recorded as stand-ins) and dicts -> dict; anything else -> None."""
    if isinstance(value, StandIn):
        value = value.state
    return dict(value) if isinstance(value, Mapping) else None


def _iter_named(mapping: Any, what: str, prefix: str) -> Iterator[tuple[str, Any]]:
    if mapping is None:
        return
    if not isinstance(mapping, Mapping):
        raise CheckpointFormatError(f"{prefix or 'root'}: {what} is not a dict")
    for name, value in mapping.items():
        if not isinstance(name, str) or not name:
            raise CheckpointFormatError(f"{prefix or 'root'}: {what} has a non-string key")
        yield name, value


def stand_in_state_dict(root: StandIn) -> OrderedDict[str, torch.Tensor]:
    """The ``state_dict`` of a stand-in module tree, in ``nn.Module`` order, tensors as stored."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    ancestors: set = set()  # modules may be shared (Ultralytics shares one SiLU), but not cyclic

    def visit(module: Any, prefix: str, depth: int) -> None:
        if not isinstance(module, StandIn):
            raise CheckpointFormatError(f"{prefix or 'root'}: expected a module, found {type(module).__name__}")
        if depth > _MAX_DEPTH or id(module) in ancestors:
            raise CheckpointFormatError(f"{prefix or 'root'}: module tree is cyclic or too deep")
        ancestors.add(id(module))
        state = module.state
        skip = state.get("_non_persistent_buffers_set") or set()
        if not isinstance(skip, (set, frozenset)):
            raise CheckpointFormatError(f"{prefix or 'root'}: malformed _non_persistent_buffers_set")
        for kind in ("_parameters", "_buffers"):
            for name, tensor in _iter_named(state.get(kind), kind, prefix):
                if tensor is None or (kind == "_buffers" and name in skip):
                    continue
                if not isinstance(tensor, torch.Tensor):
                    raise CheckpointFormatError(f"{prefix}{name} is a {type(tensor).__name__}, not a tensor")
                out[prefix + name] = tensor
        for name, child in _iter_named(state.get("_modules"), "_modules", prefix):
            if child is not None:
                visit(child, f"{prefix}{name}.", depth + 1)
        ancestors.discard(id(module))

    visit(root, "", 0)
    return out


def _layer_types(root: StandIn) -> set:
    types, stack, seen = set(), [root], set()
    while stack:
        module = stack.pop()
        if isinstance(module, StandIn) and id(module) not in seen:
            seen.add(id(module))
            types.add(module.class_name)
            children = module.state.get("_modules")
            if isinstance(children, Mapping):
                stack.extend(children.values())
    return types


def detect_arch(layer_types: set) -> str:
    """``yolo26`` if the head is YOLO26's, else ``yolo11`` if the tree has C3k2/C2PSA-family blocks, ``yolov8`` if
    it has C2f blocks."""
    if layer_types & _YOLO26_LAYERS:
        return "yolo26"
    if layer_types & _YOLO11_LAYERS:
        return "yolo11"
    if layer_types & _YOLOV8_LAYERS:
        return "yolov8"
    raise CheckpointFormatError(
        "cannot tell the architecture: the model has neither YOLOv8 (C2f) nor YOLO11 (C3k2/C2PSA) blocks"
    )


def _first_width(scale) -> int:
    width = min(64, scale.max_channels) * scale.width
    return int(-(-width // 8) * 8)  # round up to a multiple of 8, as the model builder does


def detect_scale(arch: str, state_dict: Mapping[str, torch.Tensor], hint: str | None = None) -> str:
    """Scale letter from the stem width (``model.0``) and, when that is ambiguous, layer 2's depth."""
    from edgeseg.nn import ARCHITECTURES  # the architecture tables, for their width/depth multipliers

    stem = state_dict.get("model.0.conv.weight")
    if stem is None or stem.ndim != 4:
        raise CheckpointFormatError("cannot tell the model scale: no 'model.0.conv.weight' stem conv")
    scales = ARCHITECTURES[arch].scales
    width = int(stem.shape[0])
    candidates = [s for s, sc in scales.items() if _first_width(sc) == width]
    if not candidates:
        raise CheckpointFormatError(f"no {arch} scale has a stem of {width} channels")
    if len(candidates) > 1:
        blocks = {k.split(".")[3] for k in state_dict if re.match(r"^model\.2\.m\.\d+\.", k)}
        by_depth = [s for s in candidates if max(round(_LAYER2_REPEATS[arch] * scales[s].depth), 1) == len(blocks)]
        candidates = by_depth or candidates
    if hint in candidates:
        return hint
    if len(candidates) != 1:
        raise CheckpointFormatError(f"cannot tell the {arch} scale: {', '.join(candidates)} all fit")
    return candidates[0]


def _names(raw: Any, nc: int) -> dict[int, str]:
    if raw is None:
        return {i: str(i) for i in range(nc)}
    if isinstance(raw, (list, tuple)):
        raw = dict(enumerate(raw))
    if not isinstance(raw, Mapping):
        raise CheckpointFormatError(f"class names are a {type(raw).__name__}, not a dict or list")
    names = {}
    for key, value in raw.items():
        if isinstance(key, bool) or not isinstance(key, int) or not isinstance(value, str):
            raise CheckpointFormatError("class names must map int ids to strings")
        names[key] = value
    if sorted(names) != list(range(nc)):
        raise CheckpointFormatError(f"the checkpoint names {len(names)} classes but its head has {nc}")
    return names


def _head_nc(head: StandIn) -> int:
    nc = head.state.get("nc")
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
        raise CheckpointFormatError("the Segment head has no valid 'nc'")
    return nc


def _to_float32(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, tensor in state_dict.items():
        tensor = tensor.detach()  # a crafted file may set requires_grad; keep no autograd links
        if tensor.is_floating_point():
            out[key] = tensor.to(torch.float32, copy=True).contiguous()
        else:
            out[key] = tensor.clone().contiguous()
    return out


def _pick_model(obj: Any, path: Path) -> tuple[StandIn, str]:
    if isinstance(obj, StandIn):
        return obj, "model"
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f"{path}: not an Ultralytics checkpoint (top level is {type(obj).__name__})")
    for key in ("model", "ema"):
        if obj.get(key) is not None:
            return obj[key], key
    raise CheckpointFormatError(f"{path}: the checkpoint has neither a 'model' nor an 'ema' model")


def parse_ultralytics_object(obj: Any, path) -> UltralyticsCheckpoint:
    """Turn what :func:`read_torch_zip` returned for an Ultralytics file into a checkpoint record."""
    path = Path(path)
    model, source_key = _pick_model(obj, path)
    if not isinstance(model, StandIn) or model.global_name != SEGMENTATION_MODEL:
        found = getattr(model, "global_name", type(model).__name__)
        raise CheckpointFormatError(f"{path}: '{source_key}' is {found}, not a {SEGMENTATION_MODEL}")
    state = model.state
    layers = state.get("_modules", {}).get("model") if isinstance(state.get("_modules"), Mapping) else None
    children = layers.state.get("_modules") if isinstance(layers, StandIn) else None
    if not isinstance(children, Mapping) or not children:
        raise CheckpointFormatError(f"{path}: the model has no layer list")
    head = list(children.values())[-1]
    if not isinstance(head, StandIn) or head.global_name not in SEGMENT_HEADS:
        raise CheckpointFormatError(f"{path}: the last layer is not a Segment head; not a segmentation model")

    raw_state = stand_in_state_dict(model)
    arch = detect_arch(_layer_types(model))
    yaml = _plain_dict(state.get("yaml"))
    hint = yaml.get("scale") if yaml else None
    scale = detect_scale(arch, raw_state, hint if isinstance(hint, str) else None)
    nc = _head_nc(head)
    names = _names(state.get("names"), nc)

    args = _plain_dict(state.get("args")) or {}
    train_args = _plain_dict(obj.get("train_args")) if isinstance(obj, Mapping) else None
    imgsz = (train_args or {}).get("imgsz", args.get("imgsz"))
    stride = state.get("stride")
    stride = tuple(float(s) for s in stride.flatten()) if isinstance(stride, torch.Tensor) else ()
    metadata = {}
    if isinstance(obj, Mapping):
        metadata = {k: obj[k] for k in _METADATA_KEYS if k in obj and isinstance(obj[k], (str, int, float, type(None)))}
    return UltralyticsCheckpoint(
        path=path,
        arch=arch,
        scale=scale,
        nc=nc,
        names=names,
        state_dict=_to_float32(raw_state),
        imgsz=imgsz,
        stride=stride,
        yaml=yaml,
        args=args,
        train_args=train_args,
        metadata=metadata,
        source_key=source_key,
    )


def read_ultralytics_checkpoint(path) -> UltralyticsCheckpoint:
    """Safely read an Ultralytics segmentation ``.pt`` file (Ultralytics need not be installed)."""
    return parse_ultralytics_object(read_torch_zip(path), path)
