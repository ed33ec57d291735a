"""ONNX Runtime backend (``pip install 'edgeseg[onnx]'``).

``onnxruntime`` is imported when a model is loaded, never at import time of edgeseg.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendNotInstalledError, ModelLoadError
from ..metadata import ModelMetadata, from_onnx_props
from .base import Backend, InputSpec, identify_outputs, image_input_layout, resolve_input_size

# Tried in this order when the caller does not name providers; only available ones are used.
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")

_INPUT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float32",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
}


class OnnxRuntimeBackend(Backend):
    """Runs a YOLOv8/YOLO11-seg ``.onnx`` export with ONNX Runtime.

    Options:
        providers: execution providers in priority order (default: TensorRT, CUDA, then CPU, as available).
        intra_op_threads: threads per operator (default: ONNX Runtime's choice).
        imgsz: input size (int or (h, w)) for models with dynamic height/width; must match a fixed size.
    """

    name = "onnxruntime"
    package = "onnxruntime"
    extra = "onnx"

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        providers: Sequence[str] | None = None,
        intra_op_threads: int | None = None,
        imgsz: int | Sequence[int] | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendNotInstalledError(self.name, self.package, self.extra, exc) from exc
        self._ort = ort
        self.path = Path(fspath(path))
        if not self.path.exists():
            raise FileNotFoundError(f"model not found: {self.path}")
        if not self.path.is_file():
            raise ModelLoadError(f"{self.path} is not a file; expected an .onnx model")
        if self.path.stat().st_size == 0:
            raise ModelLoadError(f"{self.path} is empty (0 bytes); expected an .onnx model")

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads is not None:
            if isinstance(intra_op_threads, bool) or not isinstance(intra_op_threads, int) or intra_op_threads < 0:
                raise ValueError(f"intra_op_threads must be an int >= 0, got {intra_op_threads!r}")
            options.intra_op_num_threads = intra_op_threads
        self.providers = _choose_providers(providers, ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(fspath(self.path), sess_options=options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
            raise ModelLoadError(
                f"cannot load {self.path} as an ONNX model (truncated, corrupt or not ONNX?): {_first_line(exc)}"
            ) from exc

        source = self.path.name
        props = self._session.get_modelmeta().custom_metadata_map or {}
        metadata = from_onnx_props(props, source=source)
        metadata.require_segment_task(source)

        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelLoadError(f"{source} has {len(inputs)} inputs; expected one image input")
        self.input_spec, self._feed_dtype = _input_spec(inputs[0], metadata, imgsz, source)

        outputs = self._session.get_outputs()
        self._output_names = [o.name for o in outputs]
        self.output_layout = identify_outputs(
            [_static_shape(o.shape) for o in outputs],
            nc_hint=metadata.nc or None,
            source=source,
            end2end=metadata.end2end,
            end2end_topk=metadata.end2end_topk,
        )
        metadata.check_class_count(self.output_layout.nc, source)
        self.metadata = metadata.with_default_names(self.output_layout.nc)
        self._input_name = inputs[0].name

    def infer(self, blob: NDArray[Any]) -> list[NDArray[Any]]:
        expected = self.input_spec.blob_shape
        if blob.shape != expected:
            raise ValueError(f"blob shape {blob.shape} does not match the model input {expected}")
        if blob.dtype != self._feed_dtype:
            blob = blob.astype(self._feed_dtype)
        outputs: list[NDArray[Any]] = self._session.run(self._output_names, {self._input_name: blob})
        return outputs

    def describe(self) -> dict[str, Any]:
        session = self._session
        return {
            "backend": self.name,
            "onnxruntime": self._ort.__version__,
            "providers": session.get_providers(),
            "inputs": [{"name": i.name, "shape": list(i.shape), "type": i.type} for i in session.get_inputs()],
            "outputs": [{"name": o.name, "shape": list(o.shape), "type": o.type} for o in session.get_outputs()],
        }


def _choose_providers(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    if requested is None:
        chosen = [p for p in PREFERRED_PROVIDERS if p in available]
        return chosen or list(available)
    if isinstance(requested, str):
        requested = [requested]
    requested = list(requested)
    missing = [p for p in requested if p not in available]
    if missing or not requested:
        raise ValueError(
            f"execution provider(s) {', '.join(missing) or '(none)'} not available in this onnxruntime "
            f"build; available: {', '.join(available)}"
        )
    return requested


def _static_shape(shape: Sequence[int | str | None]) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def _input_spec(
    node: Any, metadata: ModelMetadata, imgsz: int | Sequence[int] | None, source: str
) -> tuple[InputSpec, type[np.generic]]:
    dtype = _INPUT_TYPES.get(node.type)
    if dtype is None:
        raise ModelLoadError(f"{source}: unsupported input type {node.type}")
    feed_dtype = np.float16 if node.type == "tensor(float16)" else np.dtype(dtype).type
    shape = _static_shape(node.shape)
    if len(shape) != 4 or shape[0] not in (None, 1):
        raise ModelLoadError(f"{source}: input {node.name} has shape {list(node.shape)}; expected [1, 3, h, w]")
    found = image_input_layout(shape, prefer="nchw")
    if found is None:
        raise ModelLoadError(f"{source}: input {node.name} {list(node.shape)} has no 3-channel axis")
    layout, h, w = found
    h, w = resolve_input_size(h, w, imgsz, metadata, source)
    stride = metadata.stride
    if h % stride or w % stride:
        raise ValueError(f"input size {h}x{w} must be a multiple of the model stride {stride}")
    spec = InputSpec(name=node.name, shape=(h, w), layout=layout, dtype=dtype)
    return spec, feed_dtype


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
