"""edgeseg: YOLOv8-seg / YOLO11-seg instance segmentation for edge devices.

    from edgeseg import Segmenter
    detections = Segmenter("yolov8n-seg.onnx")("bus.jpg")

Importing edgeseg is cheap: the pipeline, the native core and any inference engine load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = ["Detections", "Segmenter", "__version__"]

_LAZY = {"Segmenter": "edgeseg.segmenter", "Detections": "edgeseg.detections"}

if TYPE_CHECKING:  # pragma: no cover
    from .detections import Detections
    from .segmenter import Segmenter


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgeseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
