"""Model name registry: ``build_model("yolov8n-seg")`` or ``build_model(arch="yolo11", scale="s")``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..formats import CHECKPOINT_SUFFIXES
from .yolo import ARCHITECTURES, SegmentationModel

__all__ = ["MODEL_REGISTRY", "build_model", "list_models", "parse_model_name"]

# "yolov8n-seg" -> ("yolov8", "n"), for every architecture and scale.
MODEL_REGISTRY: Mapping[str, tuple[str, str]] = MappingProxyType(
    {f"{arch}{scale}-seg": (arch, scale) for arch, spec in ARCHITECTURES.items() for scale in spec.scales}
)


def list_models() -> list[str]:
    """All registered model names, e.g. ``['yolo11l-seg', ..., 'yolov8x-seg']``."""
    return sorted(MODEL_REGISTRY)


def parse_model_name(name: str) -> tuple[str, str]:
    """``"yolov8n-seg"`` (case-insensitive, optional ``.pt``/``.yaml`` suffix) -> ``("yolov8", "n")``."""
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    for suffix in (*CHECKPOINT_SUFFIXES, ".yaml", ".yml"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    if key not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    return MODEL_REGISTRY[key]


def build_model(
    name: str | None = None,
    *,
    arch: str | None = None,
    scale: str | None = None,
    nc: int = 80,
    names: Any = None,
) -> SegmentationModel:
    """Build a freshly initialised segmentation model.

    Either give a registered ``name`` (``"yolov8n-seg"``, ``"yolo11s-seg"``, ...) or both ``arch``
    (``"yolov8"``/``"yolo11"``) and ``scale`` (``"n"``, ``"s"``, ``"m"``, ``"l"``, ``"x"``).
    ``names`` is a list or ``{index: name}`` dict of ``nc`` class names (default ``"0"``..).
    """
    if name is not None:
        if arch is not None or scale is not None:
            raise ValueError("give either a model name or arch=/scale=, not both")
        arch, scale = parse_model_name(name)
    elif arch is None or scale is None:
        raise ValueError(f"give a model name ({', '.join(list_models())}) or both arch= and scale=")
    return SegmentationModel(arch=arch, scale=scale, nc=nc, names=names)
