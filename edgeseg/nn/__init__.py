"""Torch implementations of the YOLOv8-seg and YOLO11-seg networks (requires torch)."""

from .registry import MODEL_REGISTRY, build_model, list_models, parse_model_name
from .yolo import ARCHITECTURES, SegmentationModel

__all__ = [
    "ARCHITECTURES",
    "MODEL_REGISTRY",
    "SegmentationModel",
    "build_model",
    "list_models",
    "parse_model_name",
]
