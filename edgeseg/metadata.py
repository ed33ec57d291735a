"""Model metadata (class names, input size, stride, task) and its parsers.

Ultralytics writes the same metadata in two forms: as ONNX ``metadata_props`` whose values are Python
literals in strings (``"{0: 'person', ...}"``, ``"[640, 640]"``), and as a ``metadata.yaml`` beside
other exports. Both are parsed here into one :class:`ModelMetadata`. Literal strings are parsed with
:func:`ast.literal_eval`, which evaluates no code.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral
from os import PathLike
from pathlib import Path
from typing import Any

from .errors import ModelLoadError, ModelOutputError

SEGMENT_TASK = "segment"
_KNOWN_KEYS = ("names", "imgsz", "stride", "task")
# YOLO models have strides 8..64; a larger value is a damaged file (found by tests/fuzz/model_files.py: a
# metadata.yaml with stride 4294967296 got as far as the input-size check).
MAX_STRIDE = 1024


@dataclass(frozen=True)
class ModelMetadata:
    """What edgeseg needs to know about a model besides its tensors.

    ``names`` maps class id to name; ``imgsz`` is the (height, width) the model was exported at, or
    ``None`` when unknown; ``task`` is Ultralytics' task name (``None`` when the model carries no
    metadata); ``extras`` keeps every other key (author, version, license, ...) as parsed values.
    """

    names: dict[int, str] = field(default_factory=dict)
    imgsz: tuple[int, int] | None = None
    stride: int = 32
    task: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = _normalise_names(self.names)
        object.__setattr__(self, "names", names)
        if self.imgsz is not None:
            object.__setattr__(self, "imgsz", parse_imgsz(self.imgsz))
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or not 0 < self.stride <= MAX_STRIDE:
            raise ValueError(f"stride must be an int in 1..{MAX_STRIDE}, got {self.stride!r}")

    @property
    def nc(self) -> int:
        """Number of classes named in the metadata (0 when the model carries no names)."""
        return len(self.names)

    @property
    def end2end(self) -> bool | None:
        """Whether the metadata says the model is end-to-end (NMS-free, Ultralytics' ``end2end`` key: YOLO26
        exported with ``nms=False``); ``None`` when the key is absent or not a yes/no value."""
        value = self.extras.get("end2end")
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return None

    @property
    def end2end_topk(self) -> int | None:
        """edgeseg's ``end2end_topk`` key: the export ends before its end-to-end head's top-k selection (YOLO26's
        one-to-one branch in a format that cannot hold it) and the runtime selects this many; None when absent."""
        value = self.extras.get("end2end_topk")
        if isinstance(value, bool):
            return None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        return int(value) if isinstance(value, Integral) and int(value) > 0 else None

    def require_segment_task(self, source: str = "model") -> None:
        """Raise :class:`ModelLoadError` when the metadata says the model is not a segmentation model."""
        if self.task is not None and self.task != SEGMENT_TASK:
            raise ModelLoadError(
                f"{source} is a '{self.task}' model; edgeseg runs instance segmentation models "
                f"(task '{SEGMENT_TASK}', e.g. yolov8n-seg or yolo11n-seg)"
            )

    def check_class_count(self, nc_from_outputs: int, source: str = "model") -> None:
        """Raise :class:`ModelOutputError` when the names disagree with the class channels of the output."""
        if self.names and len(self.names) != nc_from_outputs:
            raise ModelOutputError(
                f"{source}: metadata names {len(self.names)} classes but the model output has "
                f"{nc_from_outputs} class channels"
            )

    def with_default_names(self, nc: int) -> ModelMetadata:
        """Return a copy whose names are '0'..'nc-1' when the model carried none."""
        if self.names:
            return self
        return ModelMetadata(
            names={i: str(i) for i in range(nc)},
            imgsz=self.imgsz,
            stride=self.stride,
            task=self.task,
            extras=dict(self.extras),
        )


def from_onnx_props(props: Mapping[str, str], source: str = "model") -> ModelMetadata:
    """Parse Ultralytics ONNX ``metadata_props`` (a str -> str mapping). Missing keys are fine."""
    parsed = {key: _literal(value) for key, value in props.items()}
    return from_mapping(parsed, source)


def from_yaml(path: str | PathLike[str], source: str | None = None) -> ModelMetadata:
    """Parse an Ultralytics ``metadata.yaml`` file. Needs PyYAML (imported only here)."""
    path = Path(path)
    source = source or str(path)
    try:
        import yaml
    except ImportError as exc:
        raise ModelLoadError(f"reading {path} needs PyYAML, which is not installed (pip install pyyaml)") from exc
    if not path.is_file():
        raise FileNotFoundError(f"metadata file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} does not hold a metadata mapping")
    return from_mapping(data, source)


def from_mapping(data: Mapping[str, Any], source: str) -> ModelMetadata:
    try:
        stride = data.get("stride", 32)
        if isinstance(stride, (list, tuple)):  # some exports store per-level strides
            stride = max(stride)
        return ModelMetadata(
            names=data.get("names") or {},
            imgsz=data.get("imgsz"),
            stride=int(stride),
            task=str(data["task"]) if data.get("task") is not None else None,
            extras={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
        )
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{source} has invalid metadata: {exc}") from exc


def _literal(value: str) -> Any:
    """Python literal in a string -> value; plain text stays text."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value


def _normalise_names(names: Any) -> dict[int, str]:
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, Mapping):
        raise ValueError(f"names must be a dict or list, got {type(names).__name__}")
    out = {}
    for key, value in names.items():
        try:
            out[int(key)] = str(value)
        except (TypeError, ValueError):
            raise ValueError(f"class ids in names must be integers, got {key!r}") from None
    if out and sorted(out) != list(range(len(out))):
        raise ValueError("class ids in names must be 0..nc-1 without gaps")
    return dict(sorted(out.items()))


def parse_imgsz(
    value: Any, *, stride: int = 1, strict: bool = False, error: type[Exception] = ValueError
) -> tuple[int, int]:
    """An image size -> (height, width): ``640``, ``(640,)`` or ``(480, 640)`` (a list or tuple).

    The one reader of ``imgsz`` (arguments, metadata, checkpoints, the command line). ``strict`` takes only
    integers (not bools) as sizes; otherwise each size goes through ``int()`` (metadata may hold ``"640"``).
    Both sides must be positive and, with ``stride`` > 1, multiples of it. Raises ``error`` (a ValueError by
    default; callers pass their own subclass).
    """
    shape_error = f"imgsz must be an int or (height, width), got {value!r}"
    if isinstance(value, Integral) and not isinstance(value, bool):
        sizes = [value, value]
    elif isinstance(value, (list, tuple)) and len(value) in (1, 2):
        sizes = [value[0], value[-1]]
    else:
        raise error(shape_error)
    if strict and not all(isinstance(v, Integral) and not isinstance(v, bool) for v in sizes):
        raise error(shape_error)
    try:
        h, w = int(sizes[0]), int(sizes[1])
    except (TypeError, ValueError, OverflowError):
        raise error(shape_error) from None
    if stride > 1 and (min(h, w) < stride or h % stride or w % stride):
        raise error(f"imgsz must be positive multiples of the model stride {stride}, got {value!r}")
    if h <= 0 or w <= 0:
        raise error(f"imgsz must be positive, got {value!r}")
    return h, w
