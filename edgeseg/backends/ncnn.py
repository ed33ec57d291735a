"""ncnn backend (``pip install 'edgeseg[ncnn]'``): Raspberry Pi, phones and other ARM boards.

Runs a ``<name>_ncnn_model/`` folder as written by ``edgeseg export --format ncnn`` or by Ultralytics
(``model.ncnn.param``, ``model.ncnn.bin``, ``metadata.yaml``), or a ``.param`` file whose ``.bin`` and
``metadata.yaml`` lie beside it. ``ncnn`` is imported when a model is loaded, never at import time.

What ncnn files look like (pnnx's conversion of a YOLO-seg model):

* The param file names blobs, not tensors with shapes: the input is the top of the ``Input`` layer
  (pnnx calls it ``in0``; other converters ``images``), the outputs are the blobs no layer consumes
  (pnnx: ``out0``, ``out1``). ncnn lists outputs in no useful order, so, like Ultralytics, the names
  are sorted, and the outputs are then told apart by shape, not by name.
* ncnn Mats have no batch dimension. The input is fed as CHW ``[3, h, w]``; the predictions arrive as
  a 2-D Mat with w=8400, h=116 (numpy ``[116, 8400]``) and the prototypes as ``[32, 160, 160]`` (at
  640). :meth:`NcnnBackend.infer` adds the batch dimension back, so the rest of the pipeline sees the
  layout of Ultralytics' ONNX export: ``[1, 116, 8400]`` and ``[1, 32, 160, 160]``.
* Shapes are not stored in the param file, so input size, class names and task come from
  ``metadata.yaml`` (required), and the output shapes are learnt from one run on a blank input when
  the model is loaded.

Precision: ``fp16=False`` (default) turns off ncnn's fp16 storage/arithmetic/packing, which ncnn
enables by default and uses on ARMv8.2+ CPUs; results then match the torch model to float32
rounding on every CPU. ``fp16=True`` enables them (faster on ARM, ~1e-3 relative error). The weights'
own precision is the exporter's choice (``model.ncnn.bin`` holds fp16 weights for ``half`` exports,
converted on load). ``vulkan=True`` runs on a Vulkan GPU (off by default; an error when ncnn finds
none).
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendNotInstalledError, ModelLoadError, ModelOutputError
from ..formats import FORMATS
from ..metadata import ModelMetadata, from_yaml, parse_imgsz
from .base import Backend, InputSpec, identify_outputs

_NCNN = FORMATS["ncnn"]
__all__ = ["PARAM_MAGIC", "NcnnBackend", "read_param_blobs", "resolve_model_files"]

PARAM_MAGIC = "7767517"
METADATA_FILE = "metadata.yaml"
DEFAULT_PARAM = "model.ncnn.param"


class NcnnBackend(Backend):
    """Runs a YOLOv8/YOLO11-seg ncnn model (folder, ``.param`` or ``.bin`` path).

    Options:
        threads: CPU threads (default: ncnn's choice, its count of big cores); ``intra_op_threads``
            is accepted as an alias (the CLI's ``--threads``).
        fp16: use ncnn's fp16 storage, arithmetic and packing (default off, see module docstring).
        vulkan: run on a Vulkan GPU (default off).
        imgsz: must match the size in metadata.yaml when given (ncnn exports have a fixed size).
    """

    name = "ncnn"
    package = "ncnn"
    extra = "ncnn"

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        threads: int | None = None,
        intra_op_threads: int | None = None,
        fp16: bool = False,
        vulkan: bool = False,
        imgsz: int | Sequence[int] | None = None,
    ) -> None:
        try:
            import ncnn
        except ImportError as exc:
            raise BackendNotInstalledError(self.name, self.package, self.extra, exc) from exc
        self._ncnn = ncnn
        self.path = Path(fspath(path))
        self.param_path, self.bin_path = resolve_model_files(self.path)
        source = self.path.name
        self.threads = _threads(threads, intra_op_threads)
        self.fp16, self.vulkan = bool(fp16), bool(vulkan)

        metadata_path = self.param_path.parent / METADATA_FILE
        if not metadata_path.is_file():
            raise ModelLoadError(
                f"{self.param_path.parent} has no {METADATA_FILE}: ncnn files carry no class names or input "
                f"size, so edgeseg needs the {METADATA_FILE} that edgeseg and Ultralytics write beside "
                "model.ncnn.param (re-export with `edgeseg export --format ncnn`, or copy the exporter's "
                f"{METADATA_FILE} into the folder)"
            )
        metadata = from_yaml(metadata_path, source=str(metadata_path))
        metadata.require_segment_task(source)
        size = _input_size(metadata, imgsz, source)

        input_names, output_names = read_param_blobs(self.param_path)
        if len(input_names) != 1:
            raise ModelLoadError(
                f"{self.param_path} has {len(input_names)} Input layers ({', '.join(input_names) or 'none'}); "
                "expected one image input"
            )
        self._input_name = input_names[0]
        self._output_names = sorted(output_names)  # ncnn keeps no order (Ultralytics sorts them too)

        self._net = self._load_net()
        self.input_spec = InputSpec(name=self._input_name, shape=size, layout="nchw", dtype="float32")
        probe = self.infer(np.zeros(self.input_spec.blob_shape, dtype=np.float32))
        self._output_shapes = [tuple(int(d) for d in o.shape) for o in probe]
        self.output_layout = identify_outputs(
            self._output_shapes,
            nc_hint=metadata.nc or None,
            source=source,
            end2end=metadata.end2end,
            end2end_topk=metadata.end2end_topk,
        )
        metadata.check_class_count(self.output_layout.nc, source)
        self.metadata = metadata.with_default_names(self.output_layout.nc)

    # ---- loading -------------------------------------------------------------------------------

    def _load_net(self) -> Any:
        ncnn = self._ncnn
        net = ncnn.Net()
        opt = net.opt
        if self.threads is not None:
            opt.num_threads = self.threads
        for name in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed"):
            if hasattr(opt, name):
                setattr(opt, name, self.fp16)
        if hasattr(opt, "use_bf16_storage"):
            opt.use_bf16_storage = False
        if self.vulkan:
            gpus = ncnn.get_gpu_count()  # prints loader messages to stderr when there is no Vulkan
            if gpus < 1:
                raise ModelLoadError(
                    "vulkan=True but ncnn found no Vulkan GPU (no libvulkan or no device); "
                    "run on the CPU with vulkan=False"
                )
        opt.use_vulkan_compute = self.vulkan
        if net.load_param(fspath(self.param_path)) != 0:
            raise ModelLoadError(
                f"ncnn cannot parse {self.param_path} (corrupt, or a layer this ncnn {_version(ncnn)} does not know)"
            )
        if net.load_model(fspath(self.bin_path)) != 0:
            raise ModelLoadError(
                f"ncnn cannot read the weights {self.bin_path} for {self.param_path.name} "
                "(truncated, or from a different model?)"
            )
        return net

    # ---- running -------------------------------------------------------------------------------

    def infer(self, blob: NDArray[Any]) -> list[NDArray[Any]]:
        expected = self.input_spec.blob_shape
        if blob.shape != expected:
            raise ValueError(f"blob shape {blob.shape} does not match the model input {expected}")
        chw = np.ascontiguousarray(blob[0], dtype=np.float32)  # ncnn Mats have no batch dimension
        outputs: list[NDArray[Any]] = []
        with self._net.create_extractor() as extractor:
            if extractor.input(self._input_name, self._ncnn.Mat(chw)) != 0:
                raise ModelOutputError(f"ncnn rejected input blob '{self._input_name}'")
            for name in self._output_names:
                status, mat = extractor.extract(name)
                if status != 0:
                    raise ModelOutputError(f"ncnn failed to compute output blob '{name}' (status {status})")
                outputs.append(np.array(mat, dtype=np.float32)[None])  # copy out of ncnn's memory
        return outputs

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "ncnn": _version(self._ncnn),
            "param": str(self.param_path),
            "bin": str(self.bin_path),
            "threads": self._net.opt.num_threads,
            "fp16": self.fp16,
            "vulkan": self.vulkan,
            # ncnn's own view: no batch dimension (infer() adds it back)
            "inputs": [{"name": self._input_name, "shape": [3, *self.input_spec.shape], "type": "float32"}],
            "outputs": [
                {"name": n, "shape": list(s[1:]), "type": "float32"}
                for n, s in zip(self._output_names, self._output_shapes)
            ],
        }


# ---- files ---------------------------------------------------------------------------------------


def resolve_model_files(path: Path) -> tuple[Path, Path]:
    """A model folder, ``.param`` or ``.bin`` path -> (param, bin), with clear errors for what is missing."""
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    if path.is_dir():
        params = sorted(path.glob(f"*{_NCNN.suffix}"))
        if not params:
            raise ModelLoadError(
                f"{path} holds no ncnn .param file; expected an ncnn model folder (<name>_ncnn_model/ with "
                f"model.ncnn.param, model.ncnn.bin and {METADATA_FILE})"
            )
        preferred = [p for p in params if p.name == DEFAULT_PARAM]
        if preferred:
            param = preferred[0]
        elif len(params) == 1:
            param = params[0]
        else:
            raise ModelLoadError(
                f"{path} holds several .param files ({', '.join(p.name for p in params)}); pass the one to run"
            )
    elif path.suffix.lower() == _NCNN.suffix:
        param = path
    elif path.suffix.lower() in _NCNN.sidecars[_NCNN.suffix]:
        param = path.with_suffix(_NCNN.suffix)
        if not param.is_file():
            raise ModelLoadError(f"{path} is ncnn weights without their network: expected {param.name} beside it")
    else:
        raise ModelLoadError(f"{path} is not an ncnn model; expected a *_ncnn_model folder or a .param file")
    if not param.is_file():
        raise ModelLoadError(f"{param} is not a file")
    weights = param.with_suffix(".bin")
    if not weights.is_file():
        raise ModelLoadError(
            f"{param} has no weights: expected {weights.name} beside it (an ncnn model is a .param + .bin "
            "pair; copy both)"
        )
    if weights.stat().st_size == 0:
        raise ModelLoadError(f"{weights} is empty (0 bytes)")
    return param, weights


def read_param_blobs(param: Path) -> tuple[list[str], list[str]]:
    """(input blob names, output blob names) of a text ``.param`` file, in file order.

    Inputs are the tops of ``Input`` layers; outputs are blobs produced and never consumed.
    """
    try:
        text = param.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelLoadError(
            f"{param} is not a text ncnn param file (binary .param.bin files are not supported)"
        ) from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != PARAM_MAGIC:
        raise ModelLoadError(f"{param} is not an ncnn param file (it does not start with {PARAM_MAGIC})")
    inputs, produced, consumed = [], [], set()
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        try:
            kind, n_in, n_out = parts[0], int(parts[2]), int(parts[3])
        except (IndexError, ValueError):
            raise ModelLoadError(f"{param}: line {number} is not an ncnn layer: {line[:80]!r}") from None
        bottoms, tops = parts[4 : 4 + n_in], parts[4 + n_in : 4 + n_in + n_out]
        if len(bottoms) != n_in or len(tops) != n_out:
            raise ModelLoadError(f"{param}: line {number} lists fewer blobs than it declares: {line[:80]!r}")
        consumed.update(bottoms)
        produced.extend(tops)
        if kind == "Input":
            inputs.extend(tops)
    outputs = [b for b in produced if b not in consumed and b not in inputs]
    return inputs, outputs


# ---- options -------------------------------------------------------------------------------------


def _threads(threads: int | None, alias: int | None) -> int | None:
    if threads is not None and alias is not None and threads != alias:
        raise ValueError("give threads or intra_op_threads, not both")
    value = threads if threads is not None else alias
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"threads must be a positive int, got {value!r}")
    return value


def _input_size(metadata: ModelMetadata, imgsz: int | Sequence[int] | None, source: str) -> tuple[int, int]:
    if metadata.imgsz is None:
        raise ModelLoadError(
            f"{source}: {METADATA_FILE} has no imgsz; ncnn models need it (the input size they were exported at)"
        )
    size = metadata.imgsz
    if imgsz is not None:
        wanted = parse_imgsz(imgsz)
        if wanted != size:
            raise ValueError(
                f"{source} was exported at {size[0]}x{size[1]} (h x w); imgsz={imgsz!r} is not possible "
                "(re-export the model at that size)"
            )
    if size[0] % metadata.stride or size[1] % metadata.stride:
        raise ModelLoadError(
            f"{source}: input size {size[0]}x{size[1]} is not a multiple of the stride {metadata.stride}"
        )
    return size


def _version(ncnn: Any) -> str:
    return str(getattr(ncnn, "__version__", "unknown"))
