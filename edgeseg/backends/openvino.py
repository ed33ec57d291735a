"""OpenVINO backend (``pip install 'edgeseg[openvino]'``): Intel CPUs, GPUs and NPUs.

Runs an OpenVINO IR: edgeseg's ``*_openvino_model/`` folders, Ultralytics' (their ``metadata.yaml``),
or a bare ``.xml`` (metadata then from the IR's ``rt_info``). ``openvino`` is imported when a model is
loaded, never at import time of edgeseg.

Precision. On CPUs with AVX-512 bf16 or AMX, OpenVINO runs float32 models in bfloat16 unless told
otherwise (its default ``INFERENCE_PRECISION_HINT``): faster, but boxes move by pixels and scores by
percents. edgeseg asks for exact ``f32`` on the CPU by default (``precision=None``), for fp32, fp16 and
int8 IRs alike (int8 IRs keep their float parts, e.g. the box decode, in f32 too). Pass
``precision="bf16"`` (or ``"f16"`` on GPUs) to trade accuracy for speed, or ``precision="default"`` to
keep the device's own choice. Other devices keep their default unless a precision is given.

Asynchronous pipelines: :meth:`OpenVINOBackend.async_queue` returns an :class:`AsyncQueue` with a bounded
number of in-flight requests; results come back in submission order, and every wait has a timeout that
raises :class:`InferenceTimeoutError` instead of hanging. It drives ``InferRequest.start_async`` /
``wait_for`` from the caller's thread and never registers Python callbacks with OpenVINO (Ultralytics
runs OpenVINO synchronously because its ``AsyncInferQueue`` callbacks can hang on some Intel and AMD
CPUs; no Python code runs on OpenVINO's threads here). :meth:`infer` uses the same timed wait.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike, fspath
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendNotInstalledError, EdgesegError, ModelLoadError
from ..formats import FORMATS, is_checkpoint
from ..metadata import ModelMetadata, from_onnx_props, from_yaml
from .base import Backend, InputSpec, identify_outputs, image_input_layout, resolve_input_size
from .signal_stack import preserve_sigaltstack

__all__ = [
    "FOLDER_SUFFIX",
    "METADATA_FILE",
    "RT_INFO_SECTION",
    "AsyncQueue",
    "AsyncResult",
    "DeviceNotFoundError",
    "InferenceTimeoutError",
    "OpenVINOBackend",
    "resolve_model_path",
]

FOLDER_SUFFIX = FORMATS["openvino"].folder_ending
_XML = FORMATS["openvino"].suffix
METADATA_FILE = "metadata.yaml"
RT_INFO_SECTION = "edgeseg_metadata"  # written by edgeseg.exporters.openvino
DEFAULT_TIMEOUT_S = 60.0
_HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}
_PRECISIONS = {
    "f32": "f32",
    "fp32": "f32",
    "float32": "f32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "f16": "f16",
    "fp16": "f16",
    "float16": "f16",
    "default": None,
}
_CAPABILITY = {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}
_VIRTUAL = ("AUTO", "MULTI", "HETERO", "BATCH")


class DeviceNotFoundError(EdgesegError, ValueError):
    """The OpenVINO device asked for does not exist on this machine (the message lists those that do)."""


class InferenceTimeoutError(EdgesegError, TimeoutError):
    """An OpenVINO inference request did not finish within the timeout."""


@dataclass(frozen=True)
class AsyncResult:
    """One finished request of an :class:`AsyncQueue`: its submission index, userdata and outputs."""

    index: int
    userdata: Any
    outputs: list[NDArray[Any]]


class OpenVINOBackend(Backend):
    """Runs a YOLOv8/YOLO11-seg OpenVINO IR.

    ``path``: the ``*_openvino_model`` folder, the ``.xml`` inside it, or the name the folder was made
    from (``yolov8n-seg``, or the checkpoint ``yolov8n-seg.pt``, when ``yolov8n-seg_openvino_model/``
    sits beside it).

    Options:
        device: ``"CPU"`` (default), ``"GPU"``, ``"GPU.1"``, ``"NPU"``, ``"AUTO"``, ``"AUTO:GPU,CPU"``, ...
            A device this machine lacks raises :class:`DeviceNotFoundError` listing the available ones.
        hint: ``"latency"`` (default) or ``"throughput"`` (OpenVINO's PERFORMANCE_HINT).
        threads: inference threads (INFERENCE_NUM_THREADS; ``intra_op_threads`` is an alias: the CLI's
            ``--threads``).
        precision: ``None`` (default: exact f32 on the CPU, the device's default elsewhere), ``"f32"``,
            ``"bf16"``, ``"f16"`` or ``"default"`` (the device's own choice everywhere).
        num_requests: in-flight requests of :meth:`async_queue` (default: OpenVINO's optimal number).
        timeout: seconds any single request may take before :class:`InferenceTimeoutError` (default 60).
        imgsz: input size for IRs with a dynamic input (the model is reshaped to it); must match a
            fixed size.
    """

    name = "openvino"
    package = "openvino"
    extra = "openvino"

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        device: str = "CPU",
        hint: str = "latency",
        threads: int | None = None,
        intra_op_threads: int | None = None,
        precision: str | None = None,
        num_requests: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        imgsz: int | Sequence[int] | None = None,
    ) -> None:
        # OpenVINO swaps this thread's alternate signal stack when it loads a device plugin or compiles a
        # model; put ours back (see edgeseg.backends.signal_stack: otherwise a later signal can crash).
        with preserve_sigaltstack():
            self._load(path, device, hint, threads, intra_op_threads, precision, num_requests, timeout, imgsz)

    def _load(
        self,
        path: str | PathLike[str],
        device: str,
        hint: str,
        threads: int | None,
        intra_op_threads: int | None,
        precision: str | None,
        num_requests: int | None,
        timeout: float,
        imgsz: int | Sequence[int] | None,
    ) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendNotInstalledError(self.name, self.package, self.extra, exc) from exc
        self._ov = ov
        self.xml = resolve_model_path(path)
        self.path = self.xml.parent if Path(fspath(path)).is_dir() else self.xml
        self.timeout = _check_timeout(timeout)
        self.hint = _check_hint(hint)
        self.threads = _check_threads(threads, intra_op_threads)
        self.num_requests = _check_positive("num_requests", num_requests)
        self._precision_key = _check_precision(precision)

        core = ov.Core()
        self._core = core
        self.device = _check_device(device, list(core.available_devices))
        try:
            model = core.read_model(fspath(self.xml))
        except Exception as exc:  # openvino raises RuntimeError with the parser's message
            raise ModelLoadError(
                f"cannot read {self.xml} as an OpenVINO IR (truncated, corrupt, or its .bin is missing "
                f"or does not match?): {_first_line(exc)}"
            ) from exc

        source = self.xml.name
        metadata = _read_metadata(self.xml, model)
        metadata.require_segment_task(source)
        self.input_spec = _prepare_input(model, metadata, imgsz, source)
        self.output_layout = identify_outputs(
            [_static_shape(o.get_partial_shape()) for o in model.outputs],
            nc_hint=metadata.nc or None,
            source=source,
            end2end=metadata.end2end,
            end2end_topk=metadata.end2end_topk,
        )
        metadata.check_class_count(self.output_layout.nc, source)
        self.metadata = metadata.with_default_names(self.output_layout.nc)
        self.precision = _precision_for(self._precision_key, self.device)
        _check_precision_supported(core, self.device, self.precision)

        config = self._config()
        try:
            self._compiled = core.compile_model(model, self.device, config)
        except Exception as exc:
            raise ModelLoadError(
                f"OpenVINO cannot compile {source} for device {self.device} with {config}: {_first_line(exc)}"
            ) from exc
        self._request = self._compiled.create_infer_request()
        self._queue: AsyncQueue | None = None

    # ---- configuration ---------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"PERFORMANCE_HINT": _HINTS[self.hint]}
        if self.num_requests is not None and self.hint != "latency":
            config["PERFORMANCE_HINT_NUM_REQUESTS"] = self.num_requests
        base = self.device.split(":")[0].split(".")[0]
        if base not in _VIRTUAL:
            if self.threads is not None:
                config["INFERENCE_NUM_THREADS"] = self.threads
            if self.precision is not None:
                config["INFERENCE_PRECISION_HINT"] = self.precision
            return config
        per_device = {}  # AUTO/MULTI/HETERO pass settings to each device through DEVICE_PROPERTIES
        for target in _virtual_targets(self.device, list(self._core.available_devices)):
            props: dict[str, Any] = {}
            if target.split(".")[0] == "CPU" and self.threads is not None:
                props["INFERENCE_NUM_THREADS"] = self.threads
            precision = _precision_for(self._precision_key, target)
            if precision is not None:
                props["INFERENCE_PRECISION_HINT"] = precision
            if props:
                per_device[target] = props
        if per_device:
            config["DEVICE_PROPERTIES"] = per_device
        return config

    # ---- inference -------------------------------------------------------------------------------

    def infer(self, blob: NDArray[Any]) -> list[NDArray[Any]]:
        """Run one blob synchronously (a timed wait: :class:`InferenceTimeoutError` after ``timeout``)."""
        self._check_blob(blob)
        request = self._request
        request.get_input_tensor().data[...] = blob
        request.start_async()
        if not request.wait_for(_ms(self.timeout)):
            _abandon(request, self._compiled)
            self._request = self._compiled.create_infer_request()  # the old one may still be running
            raise InferenceTimeoutError(
                f"OpenVINO inference on {self.device} did not finish within {self.timeout:g} s "
                "(device busy or hung?); raise timeout= if the model is just slow"
            )
        return [np.array(request.get_output_tensor(i).data) for i in range(len(self._compiled.outputs))]

    def async_queue(self, num_requests: int | None = None, timeout: float | None = None) -> AsyncQueue:
        """A new bounded queue of asynchronous requests on this compiled model (see :class:`AsyncQueue`)."""
        n = _check_positive("num_requests", num_requests) or self.num_requests or self.optimal_requests
        return AsyncQueue(self, n, self.timeout if timeout is None else _check_timeout(timeout))

    def submit(
        self, blob: NDArray[Any], userdata: Any = None, callback: Callable[[AsyncResult], None] | None = None
    ) -> int:
        """Queue ``blob`` on the backend's own :class:`AsyncQueue`; see :meth:`AsyncQueue.submit`."""
        if self._queue is None or self._queue.closed:
            self._queue = self.async_queue()
        return self._queue.submit(blob, userdata=userdata, callback=callback)

    def results(self, wait: bool = False) -> list[AsyncResult]:
        """Finished results of :meth:`submit`, in submission order; ``wait=True`` waits for all."""
        if self._queue is None:
            return []
        return self._queue.wait_all() if wait else self._queue.results()

    def worker(self) -> OpenVINOBackend:
        """This compiled model with an inference request of its own: N workers keep N requests in flight on the
        device's streams (under the throughput hint) without compiling the model N times."""
        clone = copy.copy(self)
        clone._request = self._compiled.create_infer_request()
        clone._queue = None
        return clone

    @property
    def suggested_workers(self) -> int:
        """OpenVINO's optimal number of requests under the throughput hints, 1 under the latency hint."""
        return 1 if self.hint == "latency" else self.optimal_requests

    @property
    def optimal_requests(self) -> int:
        try:
            return max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except Exception:
            return 1

    def _check_blob(self, blob: NDArray[Any]) -> None:
        expected = self.input_spec.blob_shape
        if not isinstance(blob, np.ndarray):
            raise ValueError(f"blob must be a numpy array, got {type(blob).__name__}")
        if blob.shape != expected:
            raise ValueError(f"blob shape {blob.shape} does not match the model input {expected}")

    def describe(self) -> dict[str, Any]:
        compiled = self._compiled

        def prop(name: str) -> str | None:
            try:
                value = compiled.get_property(name)
            except Exception:
                return None
            text: str = value.to_string() if hasattr(value, "to_string") else str(value)
            return text

        execution = prop("EXECUTION_DEVICES")
        return {
            "backend": self.name,
            "openvino": self._ov.get_version(),
            "device": self.device,
            "execution_devices": execution,
            "hint": self.hint,
            "inference_precision": prop("INFERENCE_PRECISION_HINT") or self.precision or "device default",
            "threads": prop("INFERENCE_NUM_THREADS"),
            "optimal_requests": self.optimal_requests,
            "ir_precision": self.metadata.extras.get("precision"),
            "xml": str(self.xml),
            "inputs": [
                {"name": i.get_any_name(), "shape": list(i.get_shape()), "type": str(i.get_element_type())}
                for i in compiled.inputs
            ],
            "outputs": [
                {"name": _port_name(o), "shape": list(o.get_shape()), "type": str(o.get_element_type())}
                for o in compiled.outputs
            ],
        }


class AsyncQueue:
    """Bounded asynchronous inference with results in submission order and a timeout on every wait.

        queue = backend.async_queue(num_requests=2, timeout=10)
        for i, blob in enumerate(blobs):
            queue.submit(blob, userdata=i)      # waits (bounded) when all requests are busy
            for result in queue.results():       # whatever finished, oldest first
                ...
        for result in queue.wait_all():          # the rest
            ...

    ``submit`` copies the blob into a free request and starts it; with ``num_requests`` in flight it
    first finishes the oldest (its result is kept for :meth:`results`). ``callback(result)``, if given,
    runs in the caller's thread when the result is collected (never on an OpenVINO thread). A wait that
    exceeds ``timeout`` cancels the queue's requests, closes the queue and raises
    :class:`InferenceTimeoutError`.
    """

    def __init__(self, backend: OpenVINOBackend, num_requests: int, timeout: float):
        self._backend = backend
        self.timeout = float(timeout)
        self.capacity = int(num_requests)
        self._free = [backend._compiled.create_infer_request() for _ in range(self.capacity)]
        self._in_flight: deque[tuple[int, Any, Any, Callable[[AsyncResult], None] | None]] = deque()
        self._done: deque[AsyncResult] = deque()
        self._next_index = 0
        self._n_outputs = len(backend._compiled.outputs)
        self.closed = False
        self._closed_reason = ""

    def __len__(self) -> int:
        """Requests in flight (submitted, not yet collected)."""
        return len(self._in_flight)

    def __enter__(self) -> AsyncQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(
        self, blob: NDArray[Any], userdata: Any = None, callback: Callable[[AsyncResult], None] | None = None
    ) -> int:
        """Start inference on ``blob``; returns its index (0, 1, 2, ... in submission order)."""
        self._check_open()
        self._backend._check_blob(blob)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        if not self._free:
            self._collect_oldest()
        request = self._free.pop()
        request.get_input_tensor().data[...] = blob
        request.start_async()
        index = self._next_index
        self._next_index += 1
        self._in_flight.append((index, userdata, request, callback))
        return index

    def results(self) -> list[AsyncResult]:
        """The results ready now, in submission order (a finished request behind an unfinished one
        waits for it: order is kept)."""
        while self._in_flight and self._in_flight[0][2].wait_for(0):
            self._collect_oldest()
        out = list(self._done)
        self._done.clear()
        return out

    def get(self) -> AsyncResult:
        """The next result in submission order, waiting (with the timeout) for it."""
        if not self._done:
            if not self._in_flight:
                self._check_open()
                raise LookupError("no request in flight: submit() before get()")
            self._collect_oldest()
        return self._done.popleft()

    def wait_all(self) -> list[AsyncResult]:
        """Wait for every request in flight (each with the timeout); all uncollected results, in order."""
        while self._in_flight:
            self._collect_oldest()
        out = list(self._done)
        self._done.clear()
        return out

    def close(self) -> None:
        """Cancel what is in flight and release the requests; further submits raise."""
        for _, _, request, _ in self._in_flight:
            _abandon(request, self._backend._compiled)
        self._in_flight.clear()
        self._free.clear()
        if not self.closed:
            self.closed = True
            self._closed_reason = self._closed_reason or "the queue was closed"

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(
                f"this AsyncQueue cannot be used any more: {self._closed_reason}; "
                "make a new one with backend.async_queue()"
            )

    def _collect_oldest(self) -> None:
        index, userdata, request, callback = self._in_flight[0]
        started = time.perf_counter()
        if not request.wait_for(_ms(self.timeout)):
            waited = time.perf_counter() - started
            self._closed_reason = f"request {index} timed out after {waited:.3g} s"
            self.close()
            raise InferenceTimeoutError(
                f"OpenVINO request {index} on {self._backend.device} did not finish within {self.timeout:g} s "
                "(device busy or hung?); the queue's requests were cancelled and the queue closed"
            )
        self._in_flight.popleft()
        outputs = [np.array(request.get_output_tensor(i).data) for i in range(self._n_outputs)]
        self._free.append(request)
        result = AsyncResult(index, userdata, outputs)
        self._done.append(result)
        if callback is not None:
            callback(result)


# ---- model files and metadata --------------------------------------------------------------------


def resolve_model_path(path: str | PathLike[str]) -> Path:
    """The IR's ``.xml`` for a folder, an ``.xml`` or the name a ``*_openvino_model`` folder was made from."""
    p = Path(fspath(path))
    if p.is_dir():
        return _xml_in_folder(p)
    if p.is_file():
        if p.suffix.lower() != _XML:
            sibling = _sibling_folder(p) if is_checkpoint(p) else None
            if sibling is not None:  # the checkpoint an export was made from: run that export
                return _xml_in_folder(sibling)
            raise ModelLoadError(f"{p} is not an OpenVINO IR; expected a *{FOLDER_SUFFIX} folder or an .xml file")
        if p.stat().st_size == 0:
            raise ModelLoadError(f"{p} is empty (0 bytes); expected an OpenVINO IR .xml")
        if not p.with_suffix(".bin").is_file():
            raise ModelLoadError(f"{p}: the weights file {p.with_suffix('.bin').name} is missing beside it")
        return p
    sibling = _sibling_folder(p)
    if sibling is not None:
        return _xml_in_folder(sibling)
    raise FileNotFoundError(f"model not found: {p}")


def _sibling_folder(p: Path) -> Path | None:
    for name in (p.name + FOLDER_SUFFIX, p.stem + FOLDER_SUFFIX):
        candidate = p.with_name(name)
        if candidate.is_dir():
            return candidate
    return None


def _xml_in_folder(folder: Path) -> Path:
    xmls = sorted(folder.glob(f"*{_XML}"))
    if not xmls:
        raise ModelLoadError(f"{folder} holds no OpenVINO IR (.xml + .bin)")
    stem = folder.name[: -len(FOLDER_SUFFIX)] if folder.name.endswith(FOLDER_SUFFIX) else folder.name
    for candidate in (f"{stem}{_XML}", f"{stem.replace('_int8', '')}{_XML}"):
        if (folder / candidate) in xmls:
            return resolve_model_path(folder / candidate)
    if len(xmls) == 1:
        return resolve_model_path(xmls[0])
    raise ModelLoadError(f"{folder} holds several IRs ({', '.join(x.name for x in xmls)}); pass the .xml to use")


def _read_metadata(xml: Path, model: Any) -> ModelMetadata:
    """metadata.yaml beside the IR (Ultralytics' and ours), else the IR's rt_info, else a clear error."""
    yaml_path = xml.parent / METADATA_FILE
    if yaml_path.is_file():
        return from_yaml(yaml_path, source=f"{xml.parent.name}/{METADATA_FILE}")
    props = _rt_section(model, RT_INFO_SECTION)
    if props:
        return from_onnx_props(props, source=f"{xml.name} (rt_info)")
    labels = _rt_section(model, "model_info").get("labels")
    if labels:  # OpenVINO model-API style labels: space separated, spaces inside names as '_'
        names = {i: n.replace("_", " ") for i, n in enumerate(labels.split())}
        return ModelMetadata(names=names, extras={"metadata_source": "rt_info model_info/labels"})
    raise ModelLoadError(
        f"{xml.parent} has no {METADATA_FILE} beside {xml.name}, and the IR carries no metadata in its rt_info: "
        "edgeseg cannot tell its classes, input size or task. Restore the metadata.yaml that was exported with "
        "it (Ultralytics and edgeseg both write one), or re-export the model with edgeseg"
    )


def _rt_section(model: Any, section: str) -> dict[str, str]:
    try:
        if not model.has_rt_info([section]):
            return {}
        info = model.get_rt_info()[section]
    except Exception:
        return {}
    out: dict[str, str] = {}
    if isinstance(info, dict):
        for key, value in info.items():
            try:
                out[str(key)] = value.astype(str) if hasattr(value, "astype") else str(value)
            except Exception:
                continue
    return out


def _prepare_input(model: Any, metadata: ModelMetadata, imgsz: int | Sequence[int] | None, source: str) -> InputSpec:
    if len(model.inputs) != 1:
        raise ModelLoadError(f"{source} has {len(model.inputs)} inputs; expected one image input")
    port = model.inputs[0]
    name = port.get_any_name() if port.get_names() else "images"
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic or shape.rank.get_length() != 4:
        raise ModelLoadError(f"{source}: input {name} has shape {shape}; expected [1, 3, h, w]")
    dims = _static_shape(shape)
    found = image_input_layout(dims, prefer="nchw")
    if found is None:
        raise ModelLoadError(f"{source}: input {name} {shape} has no 3-channel axis")
    layout, h, w = found
    if dims[0] not in (None, 1):
        raise ModelLoadError(f"{source}: input {name} {shape} has batch {dims[0]}; edgeseg runs batch 1")
    h, w = resolve_input_size(h, w, imgsz, metadata, source)
    if h % metadata.stride or w % metadata.stride:
        raise ValueError(f"input size {h}x{w} must be a multiple of the model stride {metadata.stride}")
    if None in dims:  # make the shape static: faster compiled code, and fixed output shapes
        static = [1, 3, h, w] if layout == "nchw" else [1, h, w, 3]
        try:
            model.reshape({port: static})
        except Exception as exc:
            raise ModelLoadError(f"{source}: cannot reshape the input to {static}: {_first_line(exc)}") from exc
    return InputSpec(name=name, shape=(h, w), layout=layout, dtype="float32")


# ---- option checks -------------------------------------------------------------------------------


def _check_device(device: object, available: Sequence[str]) -> str:
    if not isinstance(device, str) or not device.strip():
        raise DeviceNotFoundError(
            f"device must be a name such as 'CPU', 'GPU' or 'AUTO', got {device!r}; "
            f"available on this machine: {', '.join(available) or 'none'}"
        )
    device = device.strip().upper()
    base = device.split(":")[0]
    if base.split(".")[0] in _VIRTUAL:
        _virtual_targets(device, available)  # checks each named target
        return device
    _require_device(device, available)
    return device


def _virtual_targets(device: str, available: Sequence[str]) -> list[str]:
    """The devices an AUTO/MULTI/HETERO device string names (all available ones when it names none)."""
    parts = device.split(":", 1)
    if len(parts) == 1 or not parts[1].strip():
        return list(available)
    targets = [t.strip().split("(")[0] for t in parts[1].split(",") if t.strip()]
    for target in targets:
        _require_device(target, available)
    return targets


def _require_device(device: str, available: Sequence[str]) -> None:
    base = device.split(".")[0]
    if device in available or (device == base and any(a.split(".")[0] == base for a in available)):
        return
    raise DeviceNotFoundError(
        f"OpenVINO device '{device}' is not available on this machine; available devices: "
        f"{', '.join(available) or 'none'} (plus AUTO). Check its driver, or choose one of those"
    )


def _check_hint(hint: object) -> str:
    key = str(hint).strip().lower() if isinstance(hint, str) else None
    if key is None or key not in _HINTS:
        raise ValueError(f"hint must be one of {', '.join(_HINTS)}, got {hint!r}")
    return key


def _check_precision(precision: object) -> str | None:
    if precision is None:
        return None
    key = precision.strip().lower() if isinstance(precision, str) else None
    if key not in _PRECISIONS:
        raise ValueError(f"precision must be None, 'f32', 'bf16', 'f16' or 'default', got {precision!r}")
    return key


def _precision_for(key: str | None, device: str) -> str | None:
    """The INFERENCE_PRECISION_HINT for one device: None (not given) -> f32 on the CPU, the device's
    own choice elsewhere; 'default' -> the device's own choice; else the precision asked for."""
    if key is None:
        return "f32" if device.split(".")[0] == "CPU" else None
    return _PRECISIONS[key]


def _check_precision_supported(core: Any, device: str, precision: str | None) -> None:
    if precision is None or device.split(":")[0] in _VIRTUAL:
        return
    try:
        caps = [str(c).upper() for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except Exception:
        return
    if _CAPABILITY[precision] not in caps:
        raise ValueError(
            f"device {device} cannot run inference in {precision} (its capabilities: "
            f"{', '.join(caps)}); choose precision='f32' or another device"
        )


def _check_threads(threads: int | None, alias: int | None) -> int | None:
    if threads is not None and alias is not None and threads != alias:
        raise ValueError("give threads or intra_op_threads, not both")
    value = threads if threads is not None else alias
    return _check_positive("threads", value)


def _check_positive(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 or math.isinf(timeout):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


# ---- small helpers -------------------------------------------------------------------------------

# Requests cancelled after a timeout, kept alive (with their compiled model) until OpenVINO has really
# stopped them: destroying a request that is still running crashes the process. Reaped as they finish.
_ABANDONED: list[tuple[Any, Any]] = []
_CANCEL_GRACE_MS = 200


def _abandon(request: Any, compiled: Any) -> None:
    """Cancel ``request`` and keep it referenced until it is idle (never destroy a running request)."""
    _ABANDONED[:] = [(r, c) for r, c in _ABANDONED if not _is_idle(r)]
    with contextlib.suppress(Exception):
        request.cancel()
    if not _is_idle(request, _CANCEL_GRACE_MS):
        _ABANDONED.append((request, compiled))


def _is_idle(request: Any, wait_ms: int = 0) -> bool:
    try:
        return bool(request.wait_for(wait_ms))
    except Exception:
        return True


def _ms(seconds: float) -> int:
    return max(1, int(math.ceil(seconds * 1000.0)))


def _static_shape(partial_shape: Any) -> tuple[int | None, ...]:
    return tuple(d.get_length() if d.is_static else None for d in partial_shape)


def _port_name(port: Any) -> str:
    try:
        name: str = port.get_any_name()
        return name
    except Exception:
        return ""


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip() and not line.startswith("Exception from")]
    return lines[0] if lines else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
