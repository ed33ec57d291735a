"""LiteRT (TFLite) backend (``pip install 'edgeseg[tflite]'``) and the Edge TPU variant.

Runs ``.tflite`` segmentation models with ``ai-edge-litert``, imported when a model is loaded; without it,
with ``tflite-runtime`` (2.14, the last release: 32-bit ARM wheels, Coral's pycoral; needs numpy < 2) or
full TensorFlow's interpreter (``backend.interpreter_package`` says which):

* single-output models: Ultralytics' TFLite exports and edgeseg's float exports, predictions
  [1, 4+nc+nm, N] (or [1, N, C]) with boxes normalised to 0..1 and NHWC prototypes [1, mh, mw, nm]
  (outputs in either order);
* split-output models (edgeseg's full-int8 exports): per level box/class/coefficient tensors plus the
  prototypes, decoded by the native core with :class:`~edgeseg.ops.decode_split.SplitLayout`;
* float32, int8 and uint8 inputs, NHWC or NCHW; int8/uint8 outputs are dequantised with their own
  scale and zero point (single-output models in :meth:`infer`; split outputs only for candidates, in
  the native core).

:class:`EdgeTPUBackend` loads ``*_edgetpu.tflite`` files with the ``libedgetpu`` delegate.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendNotInstalledError, ModelLoadError, ModelOutputError
from ..formats import read_tflite_metadata
from ..metadata import ModelMetadata, from_mapping, from_yaml
from ..ops.decode_split import LevelSpec, SplitLayout, SplitTopKLayout
from ..ops.layouts import OutputLayout
from ..ops.quant import dequantize
from .base import Backend, InputSpec, identify_outputs, image_input_layout, resolve_input_size

__all__ = ["EdgeTPUBackend", "TFLiteBackend", "edgetpu_library_name", "read_tflite_metadata"]

_SPLIT_NAME = re.compile(r"^(box|cls|mc)(\d+)$")
_NP_TYPES = {np.float32: "float32", np.int8: "int8", np.uint8: "uint8"}


def edgetpu_library_name(system: str | None = None) -> str:
    """The Edge TPU runtime library for this platform."""
    system = system or platform.system()
    return {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}.get(
        system, "libedgetpu.so.1"
    )


class TFLiteBackend(Backend):
    """Runs a YOLOv8/YOLO11-seg ``.tflite`` model with LiteRT.

    Options:
        threads: CPU threads for the interpreter (default: every CPU this process may use; LiteRT's
            own default is one thread, about half the speed on two cores); ``intra_op_threads`` is
            accepted as another name for it (the CLI's ``--threads``).
        imgsz: must match the model's fixed input size when given.
        metadata: path of a ``metadata.yaml`` to use instead of the metadata embedded in the file or
            found beside it (``<stem>_metadata.yaml`` or ``metadata.yaml``).
    """

    name = "tflite"
    package = "ai-edge-litert"
    extra = "tflite"

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        threads: int | None = None,
        imgsz: int | Sequence[int] | None = None,
        metadata: str | PathLike[str] | None = None,
        intra_op_threads: int | None = None,
    ) -> None:
        interpreter_cls, load_delegate, self.interpreter_package = _import_litert(self)
        if threads is None:  # the name the CLI and the benchmark use for every backend
            threads = intra_op_threads
        self.path = Path(fspath(path))
        _check_file(self.path)
        if threads is None:
            threads = usable_cpus()
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        self.threads = threads
        delegates = self._delegates(load_delegate)
        try:
            self._interpreter = interpreter_cls(
                model_path=fspath(self.path), num_threads=threads, experimental_delegates=delegates or None
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(
                f"cannot load {self.path} as a TFLite model (truncated, corrupt, not TFLite, or an op this "
                f"LiteRT lacks): {_first_line(exc)}"
            ) from exc
        source = self.path.name
        meta = _metadata(self.path, metadata, source)
        meta.require_segment_task(source)

        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelLoadError(f"{source} has {len(inputs)} inputs; expected one image input")
        self.input_spec = _input_spec(inputs[0], meta, imgsz, source)
        self._input_index = int(inputs[0]["index"])
        self._input_q = _quant(inputs[0])

        details = self._output_details()
        self._output_indices = [int(d["index"]) for d in details]
        self._output_q = [_quant(d) for d in details]
        self._output_names = [d["_name"] for d in details]
        if len(details) == 2:
            self.output_layout = self._single_layout(details, meta, source)
        else:
            self.output_layout = _split_layout(details, meta, self.input_spec.shape, source)
        meta.check_class_count(self.output_layout.nc, source)
        self.metadata = meta.with_default_names(self.output_layout.nc)

    # ---- loading ------------------------------------------------------------------------------

    def _delegates(self, load_delegate: Any) -> list[Any]:
        return []

    def _output_details(self) -> list[dict[str, Any]]:
        """Output details in the order of the model's signature (names as exported), else as listed."""
        it = self._interpreter
        details = list(it.get_output_details())
        by_index = {int(d["index"]): d for d in details}
        try:
            sigs = it._get_full_signature_list()  # {key: {"inputs": {name: idx}, "outputs": {name: idx}}}
        except Exception:
            sigs = {}
        if len(sigs) == 1:
            outputs = next(iter(sigs.values())).get("outputs", {})
            if len(outputs) == len(details) and all(int(i) in by_index for i in outputs.values()):
                ordered: list[dict[str, Any]] = []
                for name, idx in outputs.items():
                    d = dict(by_index[int(idx)])
                    d["_name"] = name
                    ordered.append(d)
                return ordered
        for d in details:
            d["_name"] = d.get("name", "")
        return details

    def _single_layout(self, details: Sequence[Mapping[str, Any]], meta: ModelMetadata, source: str) -> OutputLayout:
        shapes = [tuple(int(v) for v in d["shape"]) for d in details]
        p = [s for s in shapes if len(s) == 4]
        protos_layout = "hwc"
        if p:
            _, a, b, c = p[0]
            if a < b and a < c and c == b:  # [1, nm, mh, mw]: NCHW prototypes
                protos_layout = "chw"
        h, w = self.input_spec.shape
        normalised = meta.extras.get("boxes_normalized", True)
        box_scale = (float(w), float(h)) if normalised else (1.0, 1.0)
        return identify_outputs(
            shapes,
            nc_hint=meta.nc or None,
            protos_layout=protos_layout,
            box_scale=box_scale,
            source=source,
            end2end=meta.end2end,
            end2end_topk=meta.end2end_topk,
        )

    # ---- running ------------------------------------------------------------------------------

    def _run(self, blob: NDArray[Any]) -> list[NDArray[Any]]:
        expected = self.input_spec.blob_shape
        if blob.shape != expected:
            raise ValueError(f"blob shape {blob.shape} does not match the model input {expected}")
        want = np.dtype(self.input_spec.dtype)
        if blob.dtype != want:
            blob = blob.astype(want)
        it = self._interpreter
        it.set_tensor(self._input_index, np.ascontiguousarray(blob))
        it.invoke()
        return [it.get_tensor(i) for i in self._output_indices]

    def infer(self, blob: NDArray[Any]) -> list[NDArray[Any]]:
        """Raw outputs for single-output models dequantised to float32; split outputs as they are
        (int8 decoded by the native core)."""
        outputs = self._run(blob)
        if self.output_kind == "split":
            return outputs
        return [_dequantise(o, q) for o, q in zip(outputs, self._output_q)]

    def quantise_input(self, blob: NDArray[Any]) -> NDArray[Any]:
        """A float32 0..1 blob in the model's input type (rounded, clipped), for verification tools."""
        if self.input_spec.dtype == "float32":
            return blob.astype(np.float32)
        scale, zp = self._input_q
        info = np.iinfo(np.dtype(self.input_spec.dtype))
        return np.clip(np.round(blob / scale + zp), info.min, info.max).astype(self.input_spec.dtype)

    def raw_float_outputs(self, blob: NDArray[Any]) -> list[NDArray[np.float32]]:
        """Every output dequantised to float32, in signature order, for a float32 0..1 input blob."""
        outputs = self._run(self.quantise_input(blob))
        return [_dequantise(o, q) for o, q in zip(outputs, self._output_q)]

    @property
    def output_names(self) -> list[str]:
        """The model's output names, in the order :meth:`infer` returns the outputs."""
        return list(self._output_names)

    def describe(self) -> dict[str, Any]:
        it = self._interpreter
        return {
            "backend": self.name,
            "interpreter": self.interpreter_package,
            "threads": self.threads,
            "outputs_kind": self.output_kind,
            "inputs": [
                {
                    "name": d["name"],
                    "shape": [int(v) for v in d["shape"]],
                    "type": np.dtype(d["dtype"]).name,
                    "quantization": list(d["quantization"]),
                }
                for d in it.get_input_details()
            ],
            "outputs": [
                {
                    "name": n,
                    "shape": [int(v) for v in d["shape"]],
                    "type": np.dtype(d["dtype"]).name,
                    "quantization": list(d["quantization"]),
                }
                for n, d in zip(self._output_names, self._output_details())
            ],
        }


class EdgeTPUBackend(TFLiteBackend):
    """A ``*_edgetpu.tflite`` model (compiled with edgetpu_compiler) on a Coral Edge TPU.

    Options as :class:`TFLiteBackend`, plus ``device`` (e.g. ``"usb"``, ``"usb:0"``, ``"pci:0"``;
    default: the first Edge TPU found) and ``library`` (path or name of the runtime library).
    """

    name = "edgetpu"
    extra = "tflite"

    def __init__(
        self, path: str | PathLike[str], *, device: str | None = None, library: str | None = None, **options: Any
    ) -> None:
        self.device = device
        self.library = library or edgetpu_library_name()
        super().__init__(path, **options)

    def _delegates(self, load_delegate: Any) -> list[Any]:
        opts = {"device": self.device} if self.device else {}
        try:
            # Open the library first: a LiteRT Delegate whose library is missing fails half-built and
            # warns again from its __del__.
            ctypes.CDLL(self.library)
            return [load_delegate(self.library, opts)]
        except (ValueError, OSError, RuntimeError) as exc:
            raise ModelLoadError(
                f"cannot load the Edge TPU delegate '{self.library}'"
                f"{' for device ' + repr(self.device) if self.device else ''}: {_first_line(exc)}. Install the "
                "Edge TPU runtime (Debian/Ubuntu/Raspberry Pi OS: add the Coral apt repository "
                "https://coral.ai/docs/accelerator/get-started/ and `sudo apt-get install libedgetpu1-std`; "
                "macOS/Windows: the runtime from coral.ai/software), plug in the Coral device, or run the "
                "non-Edge-TPU .tflite with backend='tflite'"
            ) from exc


# ---- helpers ---------------------------------------------------------------------------------------


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, e.g. under taskset or a
    container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# Interpreter packages, in order of preference: ai-edge-litert (maintained; the 'tflite' extra),
# tflite-runtime (its last release, 2.14, still has 32-bit ARM wheels and is what Coral's pycoral uses;
# it needs numpy < 2) and full TensorFlow (whose tf.lite interpreter is the same code).
INTERPRETER_PACKAGES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite.python.interpreter", "tensorflow"),
)


def _import_litert(backend: Backend) -> tuple[Any, Any, str]:
    """(Interpreter class, load_delegate, package name) from the first interpreter package that imports."""
    reasons: list[str] = []
    for module, package in INTERPRETER_PACKAGES:
        try:
            found = importlib.import_module(module)
            return found.Interpreter, found.load_delegate, package
        except Exception as exc:
            reasons.append(f"{package}: {_first_line(exc) or type(exc).__name__}")
    raise BackendNotInstalledError(
        backend.name, backend.package, backend.extra, "no TFLite interpreter could be imported: " + "; ".join(reasons)
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    if not path.is_file():
        raise ModelLoadError(f"{path} is not a file; expected a .tflite model")
    size = path.stat().st_size
    if size < 16:
        raise ModelLoadError(
            f"{path} is {'empty' if size == 0 else 'too small'} ({size} bytes); expected a .tflite model"
        )
    with open(path, "rb") as f:
        head = f.read(8)
    if head[4:8] != b"TFL3":
        raise ModelLoadError(f"{path} is not a TFLite flatbuffer (no 'TFL3' identifier)")


def _metadata(path: Path, override: str | PathLike[str] | None, source: str) -> ModelMetadata:
    if override is not None:
        return from_yaml(override, source=source)
    embedded = read_tflite_metadata(path)
    if embedded is not None:
        try:
            return from_mapping(embedded, source)
        except ModelLoadError:
            raise
    for beside in (path.with_name(path.stem + "_metadata.yaml"), path.with_name("metadata.yaml")):
        if beside.is_file():
            try:
                return from_yaml(beside, source=source)
            except ModelLoadError:
                continue
    return ModelMetadata()


def _quant(detail: Mapping[str, Any]) -> tuple[float, int]:
    scale, zp = detail.get("quantization", (0.0, 0))
    return float(scale), int(zp)


def _dequantise(x: NDArray[Any], q: tuple[float, int]) -> NDArray[np.float32]:
    if x.dtype == np.float32:
        return x
    scale, zp = q
    if scale == 0.0:  # not quantised (LiteRT reports scale 0)
        return x.astype(np.float32)
    if x.dtype in (np.int8, np.uint8):
        return dequantize(x, scale, int(zp))  # native, one pass
    out: NDArray[np.float32] = (x.astype(np.float32) - np.float32(zp)) * np.float32(scale)
    return out


def _input_spec(
    detail: Mapping[str, Any], meta: ModelMetadata, imgsz: int | Sequence[int] | None, source: str
) -> InputSpec:
    dtype = _NP_TYPES.get(np.dtype(detail["dtype"]).type)
    if dtype is None:
        raise ModelLoadError(f"{source}: unsupported input type {np.dtype(detail['dtype']).name}")
    shape = [int(v) for v in detail["shape"]]
    if len(shape) != 4 or shape[0] != 1:
        raise ModelLoadError(f"{source}: input has shape {shape}; expected [1, h, w, 3] or [1, 3, h, w]")
    found = image_input_layout(shape, prefer="nhwc")
    if found is None:
        raise ModelLoadError(f"{source}: input {shape} has no 3-channel axis")
    layout, h, w = found
    h, w = resolve_input_size(h, w, imgsz, meta, source)  # static shapes: imgsz must equal them
    if h % meta.stride or w % meta.stride:
        raise ModelLoadError(f"{source}: input size {h}x{w} is not a multiple of the stride {meta.stride}")
    scale: float | None = None
    zp: int | None = None
    if dtype != "float32":
        scale, zp = _quant(detail)
        # edgeseg's letterbox writes int8 as pixel - 128 and uint8 as the pixel: scale 1/255 with zero
        # point -128 / 0. Other input quantisations would need a different conversion.
        expected_zp = -128 if dtype == "int8" else 0
        if not (abs(scale - 1 / 255) < 1e-6 and zp == expected_zp):
            raise ModelLoadError(
                f"{source}: {dtype} input quantisation (scale {scale}, zero point {zp}) is not the 0..1 image "
                f"scaling (1/255, {expected_zp}) edgeseg feeds; re-export with inputs normalised to 0..1"
            )
    return InputSpec(name=str(detail["name"]), shape=(h, w), layout=layout, dtype=dtype, scale=scale, zero_point=zp)


def _split_layout(
    details: Sequence[Mapping[str, Any]], meta: ModelMetadata, input_hw: tuple[int, int], source: str
) -> SplitLayout:
    """Identify split outputs: by their names (box{i}, cls{i}, mc{i}, protos) when the signature kept
    them, otherwise by shape (4*reg_max, nc, nm channels per level; the largest 4-D map is protos)."""
    extras = meta.extras
    reg_max = int(extras.get("reg_max", 16))
    strides = [float(s) for s in extras.get("strides", (8, 16, 32))]
    shapes = [tuple(int(v) for v in d["shape"]) for d in details]
    names = [d["_name"] for d in details]
    if any(len(s) != 4 or s[0] != 1 for s in shapes):
        raise ModelOutputError(
            f"{source} has {len(details)} outputs {shapes}; expected 2 (predictions, prototypes) or split "
            "outputs: 4-D box/class/coefficient maps per level plus prototypes"
        )
    h, w = input_hw
    nl = len(strides)
    if len(details) != 3 * nl + 1:
        raise ModelOutputError(
            f"{source} has {len(details)} outputs; a split-output model with {nl} levels has {3 * nl + 1}"
        )
    sizes = [(int(round(h / s)), int(round(w / s))) for s in strides]
    # layout from the first level-0 map: NHWC when its spatial dims are at positions 1, 2
    layout = "hwc"
    if all(s[1:3] != sz for s in shapes for sz in sizes[:1]) and any(s[2:4] == sizes[0] for s in shapes):
        layout = "chw"
    spatial: Callable[[tuple[int, ...]], tuple[int, ...]] = (
        (lambda s: s[1:3]) if layout == "hwc" else (lambda s: s[2:4])
    )
    channels: Callable[[tuple[int, ...]], int] = (lambda s: s[3]) if layout == "hwc" else (lambda s: s[1])

    exported = extras.get("output_names")
    if (
        isinstance(exported, (list, tuple))
        and len(exported) == len(names)
        and all(re.fullmatch(r"output_(\d+)", n) for n in names)
    ):
        # onnx2tf names signature outputs output_<i> in the ONNX output order; edgeseg's metadata
        # lists that order (box0, cls0, mc0, ..., protos)
        order = [int(n.split("_")[1]) for n in names]
        if sorted(order) == list(range(len(names))):
            names = [str(exported[i]) for i in order]
    index: dict[tuple[str, int], int] = {}
    protos_index = None
    nc: int | None
    nm: int | None
    if all(_SPLIT_NAME.match(n) or n == "protos" for n in names):
        for i, n in enumerate(names):
            m = _SPLIT_NAME.match(n)
            if m:
                index[(m.group(1), int(m.group(2)))] = i
            else:
                protos_index = i
    else:  # by shape: protos has twice the level-0 resolution
        nm = int(extras.get("nm", 32))
        nc = meta.nc or None
        for i, s in enumerate(shapes):
            sp = spatial(s)
            if sp == (sizes[0][0] * 2, sizes[0][1] * 2):
                protos_index = i
                continue
            if sp not in sizes:
                raise ModelOutputError(f"{source}: output {s} matches no level size {sizes}")
            lvl = sizes.index(sp)
            c = channels(s)
            kind = "box" if c == 4 * reg_max else "mc" if c == nm and c != nc else "cls"
            if (kind, lvl) in index:
                raise ModelOutputError(
                    f"{source}: cannot tell the split outputs apart by shape ({shapes}); "
                    "export with output names (box0, cls0, mc0, ..., protos)"
                )
            index[(kind, lvl)] = i
    if protos_index is None or len(index) != 3 * nl:
        raise ModelOutputError(f"{source}: split outputs {list(zip(names, shapes))} are incomplete")
    levels = []
    nc = nm = None
    for lvl in range(nl):
        ib, ic, im = index[("box", lvl)], index[("cls", lvl)], index[("mc", lvl)]
        for i in (ib, ic, im):
            if spatial(shapes[i]) != sizes[lvl]:
                raise ModelOutputError(
                    f"{source}: output {names[i]} {shapes[i]} is not {sizes[lvl]} (stride "
                    f"{strides[lvl]} of the {h}x{w} input)"
                )
        if channels(shapes[ib]) != 4 * reg_max:
            raise ModelOutputError(f"{source}: box output {shapes[ib]} must have 4*reg_max = {4 * reg_max} channels")
        nc, nm = channels(shapes[ic]), channels(shapes[im])
        levels.append(
            LevelSpec(
                box=ib,
                cls=ic,
                coef=im,
                size=sizes[lvl],
                stride=strides[lvl],
                box_q=_q_or_unit(details[ib]),
                cls_q=_q_or_unit(details[ic]),
                coef_q=_q_or_unit(details[im]),
            )
        )
    p = shapes[protos_index]
    protos_layout = "hwc" if layout == "hwc" else "chw"
    if nc is None or nm is None or channels(p) != nm:  # None only without levels: channels(p) != None
        raise ModelOutputError(f"{source}: prototypes {p} do not have {nm} channels")
    pq = _q_or_unit(details[protos_index])
    fields: dict[str, Any] = {
        "levels": tuple(levels),
        "protos_index": protos_index,
        "nc": int(nc),
        "nm": int(nm),
        "reg_max": reg_max,
        "layout": layout,
        "protos_layout": protos_layout,
        "protos_q": None if np.dtype(details[protos_index]["dtype"]) == np.float32 else pq,
    }
    topk = meta.end2end_topk
    if topk is not None:  # YOLO26's one-to-one branch: the selection of its end-to-end graph, no NMS
        return SplitTopKLayout(**fields, topk=topk)
    return SplitLayout(**fields)


def _q_or_unit(detail: Mapping[str, Any]) -> tuple[float, int]:
    if np.dtype(detail["dtype"]) == np.float32:
        return (1.0, 0)
    scale, zp = _quant(detail)
    if scale <= 0:
        raise ModelOutputError(f"output {detail.get('name')} is {np.dtype(detail['dtype']).name} without a scale")
    return scale, zp


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
