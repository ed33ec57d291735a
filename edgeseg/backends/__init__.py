"""Backend registry: choose the backend class for a model path or a backend name.

Backend modules are imported only when chosen, so importing edgeseg never imports an inference engine.
"""

from __future__ import annotations

import difflib
import importlib
from os import PathLike, fspath
from pathlib import Path

from ..formats import format_of_path, supported_names
from ..ops.layouts import OutputLayout, SingleOutputLayout
from .base import Backend, InputSpec

__all__ = ["Backend", "InputSpec", "OutputLayout", "SingleOutputLayout", "backend_names", "select_backend"]

# name -> (module, class); which backend runs which file is in edgeseg.formats
_REGISTRY: dict[str, tuple[str, str]] = {
    "onnxruntime": ("edgeseg.backends.onnxruntime", "OnnxRuntimeBackend"),
    "torch": ("edgeseg.backends.torch_backend", "TorchBackend"),
    "ncnn": ("edgeseg.backends.ncnn", "NcnnBackend"),
    "openvino": ("edgeseg.backends.openvino", "OpenVINOBackend"),
    "tflite": ("edgeseg.backends.tflite", "TFLiteBackend"),
    "edgetpu": ("edgeseg.backends.tflite", "EdgeTPUBackend"),
}
_ALIASES = {
    "onnx": "onnxruntime",
    "ort": "onnxruntime",
    "pytorch": "torch",
    "ov": "openvino",
    "litert": "tflite",
    "coral": "edgetpu",
}


def backend_names() -> tuple[str, ...]:
    """Valid values for ``backend=`` (besides ``None``/``"auto"``)."""
    return tuple(_REGISTRY)


def select_backend(model_path: str | PathLike[str], backend: str | None = None) -> type[Backend]:
    """Return the backend class for ``model_path``, by name when given, else from the file name.

    Raises ``ValueError`` for an unknown backend name (suggesting the closest one) or a model format
    no backend handles.
    """
    if backend is None or backend == "auto":
        name = _name_for_path(Path(fspath(model_path)))
    else:
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a name (str), got {type(backend).__name__}")
        key = backend.strip().lower()
        name = _ALIASES.get(key, key)
        if name not in _REGISTRY:
            valid = ["auto", *_REGISTRY]
            close = difflib.get_close_matches(key, valid + list(_ALIASES), n=1, cutoff=0.5)
            hint = f" Did you mean '{_ALIASES.get(close[0], close[0])}'?" if close else ""
            raise ValueError(f"unknown backend '{backend}'; valid backends: {', '.join(valid)}.{hint}")
    module_name, class_name = _REGISTRY[name]
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def _name_for_path(path: Path) -> str:
    fmt = format_of_path(path)
    if fmt is not None:
        return fmt.backend
    suffix = path.suffix.lower()
    supported = supported_names()
    raise ValueError(
        f"cannot tell which backend runs '{path}' (suffix '{suffix or 'none'}'); "
        f"supported model files: {supported}. Pass backend=... to choose one."
    )
