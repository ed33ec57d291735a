"""Backend registry: choose the backend class for a model path or a backend name.

Backend modules are imported only when chosen, so importing edgeseg never imports an inference engine.
"""
from __future__ import annotations

import difflib
import importlib
from os import PathLike, fspath
from pathlib import Path
from typing import Dict, Optional, Tuple, Type, Union

from ..ops.layouts import OutputLayout, SingleOutputLayout
from .base import Backend, InputSpec

__all__ = ["Backend", "InputSpec", "OutputLayout", "SingleOutputLayout", "select_backend", "backend_names"]

# name -> (module, class). Later issues add openvino, ncnn, tflite and torch here.
_REGISTRY: Dict[str, Tuple[str, str]] = {
    "onnxruntime": ("edgeseg.backends.onnxruntime", "OnnxRuntimeBackend"),
    "torch": ("edgeseg.backends.torch_backend", "TorchBackend"),
    "ncnn": ("edgeseg.backends.ncnn", "NcnnBackend"),
    "openvino": ("edgeseg.backends.openvino", "OpenVINOBackend"),
    "tflite": ("edgeseg.backends.tflite", "TFLiteBackend"),
    "edgetpu": ("edgeseg.backends.tflite", "EdgeTPUBackend"),
}
_ALIASES = {"onnx": "onnxruntime", "ort": "onnxruntime", "pytorch": "torch", "ov": "openvino", "litert": "tflite", "coral": "edgetpu"}
_SUFFIXES = {".onnx": "onnxruntime", ".pt": "torch", ".param": "ncnn", ".xml": "openvino", ".tflite": "tflite"}
# model folders, by the end of their name (Ultralytics' naming)
_DIR_SUFFIXES = {"_ncnn_model": "ncnn", "_openvino_model": "openvino"}


def backend_names() -> Tuple[str, ...]:
    """Valid values for ``backend=`` (besides ``None``/``"auto"``)."""
    return tuple(_REGISTRY)


def select_backend(model_path: Union[str, PathLike], backend: Optional[str] = None) -> Type[Backend]:
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
    return getattr(importlib.import_module(module_name), class_name)


def _name_for_path(path: Path) -> str:
    if path.name.lower().endswith("_edgetpu.tflite"):  # edgetpu_compiler's output naming
        return "edgetpu"
    for ending, name in _DIR_SUFFIXES.items():
        if path.name.lower().endswith(ending):
            return name
    suffix = path.suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    supported = ", ".join([*sorted(_SUFFIXES), *(f"*{e}/" for e in _DIR_SUFFIXES)])
    raise ValueError(
        f"cannot tell which backend runs '{path}' (suffix '{suffix or 'none'}'); "
        f"supported model files: {supported}. Pass backend=... to choose one."
    )
