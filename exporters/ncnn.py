"""Export a YOLOv8-seg / YOLO11-seg checkpoint to ncnn (Raspberry Pi, phones, ARM boards).

    from edgeseg.exporters.ncnn import export
    result = export("yolov8n-seg.pt", imgsz=640, half=False, output="yolov8n-seg_ncnn_model")

The result is a folder laid out like Ultralytics' ncnn exports, so both Ultralytics and edgeseg run it::

    <name>_ncnn_model/
        model.ncnn.param   network (text); input blob in0 [3, h, w], outputs out0, out1
        model.ncnn.bin     weights (float32, or float16 with half=True)
        metadata.yaml      Ultralytics' keys + architecture, edgeseg_version, precision

How. The fused float32 model is traced with ``torch.jit.trace`` and the TorchScript file is converted
by the ``pnnx`` executable that the ``pnnx`` pip package ships (``pnnx.EXEC_PATH``; nothing is
downloaded). We call the executable ourselves rather than ``pnnx.export()``: that wrapper discards
pnnx's exit status and messages, and writes its side files next to the TorchScript file. pnnx runs in
a private working folder with every output path given explicitly; only ``model.ncnn.param`` and
``model.ncnn.bin`` are kept (its ``.pnnx.*``, ``*_pnnx.py``, ``*_ncnn.py`` and ONNX side files are
dropped with the folder). ``fp16=0/1`` is pnnx's weight-precision switch (``half``).

Check. The folder is run by :class:`edgeseg.backends.ncnn.NcnnBackend` (fp16 arithmetic off) on a
real letterboxed image and compared with the torch model, output by output (see
:mod:`edgeseg.exporters.common`). Measured on yolov8n-seg-coco-dq and bus.jpg at 320: float32 differs by
1.3e-3 px on boxes and 1.3e-5 on prototypes (float32 rounding, as onnxruntime); half by 0.19 px and
1.2e-3 (fp16 weights).

The folder is assembled and checked under a temporary name beside the destination and renamed into
place only when everything passed; an existing ncnn model folder at the destination is replaced.
int8 (ncnn's post-training quantisation tools) is not supported.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from os import PathLike, fspath
from pathlib import Path
from typing import Any

from edgeseg.formats import FORMATS

from .common import (
    OUTPUT_NAMES,
    ExportError,
    ExportResult,
    ExportVerificationError,
    build_metadata,
    check_image_blob,
    check_tolerance,
    load_source_model,
    max_abs_diff,
    metadata_strings,
    normalise_imgsz,
    torch_outputs,
)

__all__ = ["BIN_FILE", "FOLDER_SUFFIX", "METADATA_FILE", "PARAM_FILE", "TOLERANCE", "export"]

FOLDER_SUFFIX = FORMATS["ncnn"].folder_ending
PARAM_FILE = "model.ncnn.param"
BIN_FILE = "model.ncnn.bin"
METADATA_FILE = "metadata.yaml"
PNNX_TIMEOUT_S = 900
# Same limits as the ONNX exporter: |exported - torch| <= atol + rtol * max|torch| per output.
TOLERANCE = {False: (1e-2, 1e-4), True: (0.1, 5e-3)}  # half -> (atol, rtol)
_EXTRA = "pip install 'edgeseg[export-ncnn]'"


class NcnnExportResult(ExportResult):
    """ExportResult whose size is the folder's (model files together) and that names its precision."""

    @property
    def precision(self) -> str:
        return "fp16" if self.half else "fp32"

    @property
    def size_mb(self) -> float:
        if self.path.is_dir():
            return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file()) / 1e6
        return super().size_mb


def export(
    model_path_or_module: Any,
    *,
    imgsz: int | tuple = 640,
    half: bool = False,
    int8: bool = False,
    output: str | PathLike | None = None,
    check_image: Any = None,
    dynamic: bool = False,
    simplify: bool = False,
    opset: int | None = None,
    data: Any = None,
    fraction: Any = None,
    head: str | None = None,
) -> ExportResult:
    """Export a segmentation checkpoint (Ultralytics or edgeseg ``.pt``, or a SegmentationModel) to an
    ncnn model folder and verify it against the torch model.

    Args:
        imgsz: input size, int or (h, w), multiples of 32 (ncnn exports have a fixed size).
        half: float16 weights in ``model.ncnn.bin`` (half the size; ncnn computes in float32 or, on
            ARMv8.2+, float16 when the backend's ``fp16`` option is on).
        int8: not supported for ncnn (raises :class:`ExportError`).
        output: destination folder; default ``<checkpoint stem>_ncnn_model`` beside the checkpoint.
            An existing folder that is not an ncnn model folder (and not empty) gets
            ``<stem>_ncnn_model`` created inside it.
        check_image: image path or BGR array for the verification (default: bus.jpg when available).
        dynamic, simplify, opset: ONNX options; only their defaults are accepted here.
        data, fraction: calibration options for int8 (ignored without int8, as in Ultralytics).
        head: YOLO26 models: "one2one" (default: the NMS-free one-to-one branch ending before its top-k, which
            edgeseg's core makes; ncnn has no TopK layer), or "one2many" (NMS); "end2end" is refused.

    Raises:
        ExportError: bad option, unsupported input, a missing package, or pnnx failed.
        ExportVerificationError: the exported model does not reproduce the torch model.
    """
    started = time.perf_counter()
    size = normalise_imgsz(imgsz)
    _check_options(int8=int8, dynamic=dynamic, simplify=simplify, opset=opset)
    half = bool(half)
    torch, pnnx_exe = _import_export_packages()
    yaml = _import_yaml()
    _check_runtime()

    if head == "end2end":
        raise ExportError(
            "head='end2end' needs a TopK layer, which ncnn does not have: export head='one2one' (the default for "
            "YOLO26: the same NMS-free head, its top-k made by edgeseg's core) or head='one2many'"
        )
    source = load_source_model(model_path_or_module, head, default_head="one2one")
    destination = _destination(output, source)
    _check_replaceable(destination)

    blob, described = check_image_blob(check_image, size)
    reference = torch_outputs(source.model, blob)
    args = {
        "batch": 1,
        "half": half,
        "int8": False,
        "data": (source.train_args or {}).get("data"),
        "imgsz": list(size),
        "format": "ncnn",
    }
    metadata = build_metadata(source, imgsz=size, batch=1, args=args)
    metadata["precision"] = "fp16" if half else "fp32"

    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        work = staging / "pnnx"
        folder = staging / "model"
        work.mkdir()
        folder.mkdir()
        torchscript = work / "model.torchscript"
        _trace(torch, source.model, size, torchscript)
        _run_pnnx(pnnx_exe, torchscript, size, half, work)
        for name in (PARAM_FILE, BIN_FILE):
            os.replace(work / name, folder / name)
        shutil.rmtree(work)
        with open(folder / METADATA_FILE, "w", encoding="utf-8") as fh:
            yaml.safe_dump(metadata, fh, sort_keys=False, allow_unicode=True)

        exported = _run_ncnn(folder, blob, described)
        diffs = max_abs_diff(exported, reference)
        check_tolerance(diffs, reference, *TOLERANCE[half], described, "ncnn model")
        _move_into_place(folder, destination, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    notes = []
    if "synthetic" in described:
        notes.append("verified on a synthetic image only")
    if not destination.name.lower().endswith(FOLDER_SUFFIX):
        notes.append(
            f"the folder name does not end with {FOLDER_SUFFIX}, so backend='auto' will not recognise "
            f"it: pass backend='ncnn' (--backend ncnn) or the path of {PARAM_FILE}"
        )
    return NcnnExportResult(
        path=destination,
        format="ncnn",
        imgsz=size,
        half=half,
        metadata=metadata_strings(metadata),
        check_image=described,
        max_abs_diff=diffs,
        output_shapes={name: tuple(int(d) for d in out.shape) for name, out in zip(OUTPUT_NAMES, exported)},
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
        head=source.head,
    )


# ---- options and packages ------------------------------------------------------------------------


def _check_options(*, int8, dynamic, simplify, opset) -> None:
    if int8:
        raise ExportError(
            "int8 is not supported for ncnn export (ncnn's quantisation tools are not wired "
            "in); export float32 or half=True (--half), or use --format openvino or tflite "
            "for int8"
        )
    if dynamic:
        raise ExportError(
            "dynamic=True (--dynamic) is not supported for ncnn: ncnn exports have a fixed input "
            "size; export once per size with imgsz=..."
        )
    if simplify:
        raise ExportError("simplify=True (--simplify) is an ONNX option; pnnx optimises the ncnn graph itself")
    if opset is not None:
        raise ExportError("opset is an ONNX option and does not apply to ncnn export")


def _import_export_packages():
    try:
        import torch
    except ImportError as exc:
        raise ExportError(f"ncnn export needs torch: pip install torch==2.13.0 and {_EXTRA}") from exc
    try:
        import pnnx
    except ImportError as exc:
        raise ExportError(f"ncnn export needs the 'pnnx' package, which is not installed: {_EXTRA}") from exc
    exe = Path(getattr(pnnx, "EXEC_PATH", ""))
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise ExportError(f"the pnnx package has no runnable pnnx executable ({exe}); reinstall it: {_EXTRA}")
    return torch, exe


def _import_yaml():
    try:
        import yaml
    except ImportError as exc:
        raise ExportError("ncnn export writes metadata.yaml and needs PyYAML: pip install pyyaml") from exc
    return yaml


def _check_runtime() -> None:
    try:
        import ncnn  # noqa: F401 - the exported folder is verified with ncnn
    except ImportError as exc:
        raise ExportError(
            f"ncnn export verifies the model with the 'ncnn' package, which is not installed: {_EXTRA}"
        ) from exc


# ---- destination ---------------------------------------------------------------------------------


def _destination(output, source) -> Path:
    stem = source.path.stem if source.path is not None else source.architecture
    default_name = f"{stem}{FOLDER_SUFFIX}"
    if output is None:
        parent = source.path.parent if source.path is not None else Path.cwd()
        path = parent / default_name
    else:
        path = Path(fspath(output))
        if path.is_file():
            raise ExportError(f"output {path} is a file; ncnn exports are folders (e.g. {default_name})")
        if path.is_dir() and not _is_ncnn_folder(path) and any(path.iterdir()):
            path = path / default_name
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise ExportError(f"cannot write {path}: folder {path.parent} is not writable (pass output=...)")
    return path


def _is_ncnn_folder(path: Path) -> bool:
    return (path / PARAM_FILE).is_file() or (
        (path / METADATA_FILE).is_file() and any(path.glob(f"*{FORMATS['ncnn'].suffix}"))
    )


def _check_replaceable(destination: Path) -> None:
    if destination.is_dir() and any(destination.iterdir()) and not _is_ncnn_folder(destination):
        raise ExportError(f"{destination} exists and is not an ncnn model folder; refusing to replace it")


def _move_into_place(folder: Path, destination: Path, staging: Path) -> None:
    """Rename the finished folder to ``destination``, replacing an old export (restored on failure)."""
    old = None
    if destination.exists():
        old = staging / "previous"
        os.replace(destination, old)
    try:
        os.replace(folder, destination)
    except BaseException:
        if old is not None:
            os.replace(old, destination)
        raise


# ---- conversion ----------------------------------------------------------------------------------


def _trace(torch, model, size, path: Path) -> None:
    module = copy.deepcopy(model).eval()
    head = module.model[-1]
    head.reset_anchor_cache()
    dummy = torch.zeros(1, 3, *size)
    with warnings.catch_warnings():
        # The input-size checks in forward() become constants: expected, the export has a fixed size.
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        # torch 2.13 marks jit.trace deprecated; pnnx reads TorchScript, so it is the right tool here.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        try:
            with torch.no_grad():
                traced = torch.jit.trace(module, dummy, check_trace=False, strict=False)
            traced.save(fspath(path))
        except Exception as exc:
            raise ExportError(f"torch.jit.trace failed: {exc}") from exc


def _run_pnnx(exe: Path, torchscript: Path, size, half: bool, work: Path) -> None:
    h, w = size
    stem = work / "model"
    command = [
        fspath(exe),
        fspath(torchscript),
        f"inputshape=[1,3,{h},{w}]f32",
        "device=cpu",
        f"fp16={int(half)}",
        f"ncnnparam={work / PARAM_FILE}",
        f"ncnnbin={work / BIN_FILE}",
        f"ncnnpy={stem}_ncnn.py",
        f"pnnxparam={stem}.pnnx.param",
        f"pnnxbin={stem}.pnnx.bin",
        f"pnnxpy={stem}_pnnx.py",
        f"pnnxonnx={stem}.pnnx.onnx",
    ]
    try:
        done = subprocess.run(
            command,
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=PNNX_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ExportError(f"pnnx did not finish within {PNNX_TIMEOUT_S} s") from None
    except OSError as exc:
        raise ExportError(f"cannot run pnnx ({exe}): {exc}; reinstall it: {_EXTRA}") from exc
    missing = [n for n in (PARAM_FILE, BIN_FILE) if not (work / n).is_file() or (work / n).stat().st_size == 0]
    if done.returncode != 0 or missing:
        tail = "\n".join(done.stdout.strip().splitlines()[-15:])
        reason = f"exit status {done.returncode}" if done.returncode else f"no {', '.join(missing)} written"
        raise ExportError(f"pnnx failed to convert the model ({reason}); its last messages:\n{tail}")


# ---- verification --------------------------------------------------------------------------------


def _run_ncnn(folder: Path, blob, described: str):
    from edgeseg.backends.ncnn import NcnnBackend
    from edgeseg.errors import EdgesegError
    from edgeseg.ops.layouts import SingleOutputLayout

    try:
        backend = NcnnBackend(folder, fp16=False, vulkan=False)
        outputs = backend.infer(blob)
    except EdgesegError as exc:
        raise ExportVerificationError(f"ncnn cannot run the exported model: {exc}") from exc
    layout = backend.output_layout
    if not isinstance(layout, SingleOutputLayout):
        raise ExportVerificationError(f"the exported ncnn model has a {layout.kind} output layout, expected single")
    return [outputs[layout.preds_index], outputs[layout.protos_index]]
