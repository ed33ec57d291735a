"""Exporters from edgeseg / Ultralytics checkpoints to deployment formats (needs torch).

    from edgeseg.exporters import export
    result = export("yolov8n-seg.pt", format="onnx", imgsz=640)

Each format lives in its own module (``edgeseg.exporters.onnx``, ...) with an ``export(model, **options)``
function returning an :class:`~edgeseg.exporters.common.ExportResult`; :mod:`edgeseg.exporters.common` holds what they
share (output names, metadata, verification, atomic writes). Nothing heavy is imported here.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from edgeseg.formats import FORMATS as _ALL_FORMATS
from edgeseg.formats import PLANNED_FORMATS as _PLANNED

from .common import ExportError, ExportResult, ExportVerificationError

__all__ = ["FORMATS", "PLANNED_FORMATS", "ExportError", "ExportResult", "ExportVerificationError", "export"]

# format name -> module implementing it (a view of edgeseg.formats, the one table of formats)
FORMATS = {name: fmt.exporter_module for name, fmt in _ALL_FORMATS.items() if fmt.exporter is not None}
# formats named in the roadmap that are not implemented yet (clear "not yet supported" errors)
PLANNED_FORMATS = tuple(_PLANNED)


def check_format(fmt: Any) -> str:
    """Normalise a format name; raise :class:`ExportError` for unsupported ones, listing the supported."""
    if not isinstance(fmt, str):
        raise ExportError(f"format must be a string, got {type(fmt).__name__}")
    key = fmt.strip().lower().lstrip(".")
    if key in FORMATS:
        return key
    supported = ", ".join(FORMATS)
    if key in PLANNED_FORMATS:
        raise ExportError(f"export format '{fmt}' is not yet supported; supported formats: {supported}")
    raise ExportError(f"unknown export format '{fmt}'; supported formats: {supported}")


def export(model: Any, format: str = "onnx", **options) -> ExportResult:
    """Export ``model`` (checkpoint path or SegmentationModel) to ``format``; see the format module."""
    key = check_format(format)
    return import_module(FORMATS[key]).export(model, **options)
