"""Export a YOLOv8-seg / YOLO11-seg checkpoint to ONNX, laid out exactly like Ultralytics' exports.

    from edgeseg.exporters.onnx import export
    result = export("yolov8n-seg.pt", imgsz=640, opset=17)
    print(result.path, result.max_abs_diff)

The file has one input ``images`` [1, 3, h, w] (float32 RGB 0..1, letterboxed), outputs ``output0``
[1, 4+nc+32, A] (cx, cy, w, h in input pixels, sigmoid class scores, mask coefficients) and
``output1`` [1, 32, h/4, w/4] (mask prototypes), Conv+BatchNorm fused (with Ultralytics' fuse
arithmetic, so the weights are bit-identical to Ultralytics' export of the same checkpoint), and
Ultralytics' metadata_props (plus ``architecture`` and ``edgeseg_version``), so both Ultralytics and
edgeseg run it.

Exporter choice. torch 2.13's ``torch.onnx.export`` defaults to the torch.export-based ("dynamo")
exporter, which needs the ``onnxscript`` package and emits opset >= 18 graphs. We call the
TorchScript-tracing exporter explicitly (``dynamo=False``): it is what Ultralytics uses, it supports
opsets 7..20 in torch 2.13 (``torch.onnx._constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET``), needs no
extra package and gives the same graph as Ultralytics' files. torch marks it deprecated; its
DeprecationWarning is silenced here on purpose. Opsets 12..18 are offered (12: oldest runtimes still
in use on edge devices; 18: newest that every supported runtime reads).

Precision (``half=True``): weights, input and outputs become float16, like Ultralytics' GPU half
export. Ultralytics refuses half on CPU because it traces on the device; here the trace runs in
float16 on the CPU (slow: tens of seconds) and the file is verified with onnxruntime's CPU provider,
which runs float16 graphs. float16 ONNX only pays off on fp16-capable accelerators (CUDA/TensorRT,
some NPUs); on a CPU float32 is faster. The check compares against the float32 torch model, so the
reported differences include float16 rounding (boxes: tenths of a pixel).

Every export is verified: the written file, run by onnxruntime, is compared with the torch model on
a real letterboxed image (``check_image``; default the project's bus.jpg when available, otherwise a
deterministic synthetic image, which the result says). The max abs difference of each output is in
:attr:`ExportResult.max_abs_diff`. Float32 noise floor, measured on yolov8n-seg-coco-dq and bus.jpg at
640: onnxruntime alone differs from itself by 1.1e-3 px on boxes between graph-optimisation levels
(and ~0.9e-3 from a float64 evaluation); class scores and prototypes agree to ~1e-5.

The file is written to a temporary name beside the destination, verified, and only then renamed.
"""

from __future__ import annotations

import io
import time
import types
import warnings
from os import PathLike, fspath
from pathlib import Path
from typing import Any

from edgeseg.formats import FORMATS

from .common import (
    DYNAMIC_AXES,
    INPUT_NAME,
    OUTPUT_NAMES,
    ExportError,
    ExportResult,
    ExportVerificationError,
    atomic_output,
    build_metadata,
    check_image_blob,
    check_tolerance,
    load_source_model,
    max_abs_diff,
    metadata_strings,
    normalise_imgsz,
    torch_outputs,
)

__all__ = ["DEFAULT_OPSET", "MAX_OPSET", "MIN_OPSET", "TOLERANCE", "export"]

MIN_OPSET = 12
MAX_OPSET = 18
DEFAULT_OPSET = 17
# Verification fails when |exported - torch| > atol + rtol * max|torch| for an output. Generous on
# purpose: it catches broken graphs (wrong anchors, lost layers, NaN), not float rounding.
TOLERANCE = {False: (1e-2, 1e-4), True: (0.1, 5e-3)}  # half -> (atol, rtol)


def export(
    model_path_or_module: Any,
    *,
    imgsz: int | tuple = 640,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = False,
    half: bool = False,
    simplify: bool = False,
    output: str | PathLike | None = None,
    check_image: Any = None,
    head: str | None = None,
) -> ExportResult:
    """Export a segmentation checkpoint (path to an Ultralytics or edgeseg ``.pt``, or an
    :class:`edgeseg.nn.SegmentationModel`) to ONNX and verify it against the torch model.

    A YOLO26 model is exported end to end by default (``head="end2end"``: its one-to-one branch and the top-k
    selection in the graph, ``output0`` [1, K, 6+nm] of x1, y1, x2, y2, score, class, coefficients, no NMS, as
    Ultralytics' ``nms=False``); ``head="one2many"`` gives Ultralytics' default layout (NMS needed) and
    ``head="one2one"`` the one-to-one branch without the top-k (dense, the runtime selects).

    Args:
        imgsz: input size, int or (h, w), multiples of 32. With ``dynamic`` it is the size stored in
            the metadata and used for the check.
        opset: ONNX opset, 12..18.
        dynamic: dynamic batch, height and width (Ultralytics' axis names).
        half: float16 weights and I/O (see the module docstring).
        simplify: run onnxslim on the graph (needs ``pip install 'edgeseg[export]'``).
        output: destination file (or existing directory); default: the checkpoint's path with
            ``.onnx``, or ``<architecture>.onnx`` in the current directory for a module.
        check_image: image path or BGR array for the verification (default: see module docstring).

    Raises:
        ExportError: bad option, unsupported input, or a package is missing.
        ExportVerificationError: the exported file does not reproduce the torch model.
        edgeseg.errors.ModelLoadError: the checkpoint cannot be read.
    """
    started = time.perf_counter()
    opset = _check_opset(opset)
    size = normalise_imgsz(imgsz)
    dynamic, half, simplify = bool(dynamic), bool(half), bool(simplify)
    torch, onnx = _import_export_packages()
    ort = _import_onnxruntime()
    slim = _import_onnxslim() if simplify else None

    source = load_source_model(model_path_or_module, head)
    destination = _destination(output, source)

    module = _export_module(source.model, half=half, dynamic=dynamic)
    dtype = torch.float16 if half else torch.float32
    dummy = torch.zeros(1, 3, *size, dtype=dtype)
    proto = _trace(torch, onnx, module, dummy, opset=opset, dynamic=dynamic)
    if slim is not None:
        try:
            proto = slim(proto)
        except Exception as exc:  # onnxslim raises assorted errors
            raise ExportError(f"onnxslim could not simplify the model: {exc}") from exc
    _rename_io(proto)
    _set_output_shapes(proto, source.model, size, dynamic, end2end=source.head == "end2end")
    args = {
        "data": (source.train_args or {}).get("data"),
        "batch": 1,
        "half": half,
        "nms": False if not source.needs_nms else None,  # Ultralytics' spelling: False = NMS-free head
        "dynamic": dynamic,
        "simplify": simplify,
        "opset": opset,
    }
    metadata = metadata_strings(build_metadata(source, imgsz=size, batch=1, args=args))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph is not valid ONNX: {exc}") from exc

    blob, described = check_image_blob(check_image, size)
    reference = torch_outputs(source.model, blob)
    with atomic_output(destination) as tmp:
        onnx.save(proto, fspath(tmp))
        exported = _run_onnxruntime(ort, tmp, blob, half)
        diffs = max_abs_diff(exported, reference)
        check_tolerance(diffs, reference, *TOLERANCE[half], described, "ONNX model")
    notes = []
    if "synthetic" in described:
        notes.append("verified on a synthetic image only")
    return ExportResult(
        path=destination,
        format="onnx",
        imgsz=size,
        opset=opset,
        dynamic=dynamic,
        half=half,
        simplified=simplify,
        metadata=metadata,
        check_image=described,
        max_abs_diff=diffs,
        output_shapes={name: tuple(int(d) for d in out.shape) for name, out in zip(OUTPUT_NAMES, exported)},
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
        head=source.head,
    )


# ---- steps ---------------------------------------------------------------------------------------


def _check_opset(opset) -> int:
    if isinstance(opset, bool) or not isinstance(opset, int):
        try:
            if isinstance(opset, str) and opset.strip().isdigit():
                opset = int(opset)
            else:
                raise TypeError
        except TypeError:
            raise ExportError(f"opset must be an integer between {MIN_OPSET} and {MAX_OPSET}, got {opset!r}") from None
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset} is not supported; choose an opset between {MIN_OPSET} and {MAX_OPSET}")
    return opset


def _import_export_packages():
    try:
        import torch
    except ImportError as exc:
        raise ExportError(
            "ONNX export needs torch: pip install torch==2.13.0 (or pip install 'edgeseg[export]')"
        ) from exc
    try:
        import onnx
    except ImportError as exc:
        raise ExportError("ONNX export needs the 'onnx' package: pip install 'edgeseg[export]'") from exc
    return torch, onnx


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ExportError(
            "ONNX export verifies the file with onnxruntime, which is not installed: pip install 'edgeseg[export]'"
        ) from exc
    return onnxruntime


def _import_onnxslim():
    try:
        import onnxslim
    except ImportError as exc:
        raise ExportError(
            "simplify=True (--simplify) needs the 'onnxslim' package, which is not installed: "
            "pip install 'edgeseg[export]'"
        ) from exc
    return onnxslim.slim


def _destination(output, source) -> Path:
    if output is None:
        if source.path is not None:
            return source.path.with_suffix(FORMATS["onnx"].suffix)
        return Path.cwd() / f"{source.architecture}{FORMATS['onnx'].suffix}"
    path = Path(fspath(output))
    if path.is_dir():
        stem = source.path.stem if source.path is not None else source.architecture
        return path / f"{stem}{FORMATS['onnx'].suffix}"
    if source.path is not None and path.resolve() == source.path.resolve():
        raise ExportError(f"output {path} would overwrite the checkpoint being exported")
    return path


def _export_module(model, *, half: bool, dynamic: bool):
    """A copy of the fused model to trace: float16 when asked; anchors traced from the feature-map
    shapes for dynamic exports (the model's own anchor cache turns them into constants)."""
    import copy

    module = copy.deepcopy(model)
    if half:
        module = module.half()
    head = module.model[-1]
    head.reset_anchor_cache()
    if dynamic:
        head.anchors_for = types.MethodType(_traced_anchors, head)
    return module.eval()


def _traced_anchors(head, feats):
    """SegmentHead.anchors_for without Python ints, so that a trace keeps anchors shape-dependent
    (the same construction as Ultralytics' make_anchors: cell centres, row-major, level by level)."""
    import torch

    points, strides = [], []
    ref = feats[0]
    for f, s in zip(feats, head.level_strides):
        h, w = f.shape[2], f.shape[3]
        sx = torch.arange(end=w, device=ref.device, dtype=ref.dtype) + 0.5
        sy = torch.arange(end=h, device=ref.device, dtype=ref.dtype) + 0.5
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((xx, yy), -1).view(-1, 2))
        strides.append(torch.full((h * w, 1), s, dtype=ref.dtype, device=ref.device))
    return torch.cat(points).transpose(0, 1), torch.cat(strides).transpose(0, 1)


def _trace(torch, onnx, module, dummy, *, opset: int, dynamic: bool):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter is chosen deliberately (see the module docstring); its deprecation notice
        # and the tracer's notes about the input-size checks in forward() are expected.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        try:
            torch.onnx.export(
                module,
                (dummy,),
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes=DYNAMIC_AXES if dynamic else None,
                do_constant_folding=True,
            )
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed at opset {opset}: {exc}") from exc
    return onnx.load_from_string(buffer.getvalue())


def _rename_io(proto) -> None:
    """Make sure the I/O names are Ultralytics' (a simplifier may not keep them)."""
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 2:
        raise ExportError(f"unexpected exported graph: {len(graph.input)} input(s), {len(graph.output)} output(s)")
    renames = {graph.input[0].name: INPUT_NAME}
    renames.update({o.name: new for o, new in zip(graph.output, OUTPUT_NAMES)})
    renames = {old: new for old, new in renames.items() if old != new}
    if not renames:
        return
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]


def _set_output_shapes(proto, model, size, dynamic: bool, end2end: bool = False) -> None:
    """Declare the output shapes as Ultralytics' files do: static channel counts, and Ultralytics'
    axis names for the dynamic axes (the tracer leaves a dynamic export's channel axis unknown, which
    runtimes would then have to guess). An end-to-end head's rows: [1, K, 6+nm], K = min(max_det, anchors)."""
    head = model.model[-1]
    h, w = size
    anchors = sum((h // int(s)) * (w // int(s)) for s in head.level_strides)
    shapes = {
        "output0": [1, min(int(head.max_det), anchors), 6 + head.nm]
        if end2end
        else [1, 4 + head.nc + head.nm, anchors],
        "output1": [1, head.nm, h // 4, w // 4],
    }
    for output in proto.graph.output:
        dims = shapes[output.name]
        axes = DYNAMIC_AXES[output.name] if dynamic else {}
        if end2end and output.name == "output0":
            axes = {0: "batch"}  # K rows whatever the input size (at most max_det)
        shape = output.type.tensor_type.shape
        del shape.dim[:]
        for axis, value in enumerate(dims):
            dim = shape.dim.add()
            if axis in axes:
                dim.dim_param = axes[axis]
            else:
                dim.dim_value = value


def _run_onnxruntime(ort, path: Path, blob, half: bool):
    import numpy as np

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(fspath(path), sess_options=options, providers=["CPUExecutionProvider"])
        feed = blob.astype(np.float16) if half else blob
        outputs = session.run(list(OUTPUT_NAMES), {INPUT_NAME: feed})
    except Exception as exc:  # onnxruntime's own exception types
        raise ExportVerificationError(f"onnxruntime cannot run the exported model: {exc}") from exc
    return [np.asarray(o, dtype=np.float32) for o in outputs]
