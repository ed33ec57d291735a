"""Export a YOLOv8-seg / YOLO11-seg checkpoint to OpenVINO IR (fp32, fp16 or NNCF int8).

Output: a folder ``<name>_openvino_model/`` (``<name>_int8_openvino_model/`` for int8, as Ultralytics
names it) holding ``<name>.xml`` + ``<name>.bin`` and ``metadata.yaml`` with Ultralytics' keys
(description, author, date, version, license, docs, stride, task, batch, imgsz, names, args, channels)
plus ``architecture``, ``edgeseg_version``, ``precision`` and ``layout``. The same values are stored in
the IR itself (``rt_info``, section ``edgeseg_metadata``, values as Python literals like ONNX
metadata_props), so an IR separated from its folder still describes itself. Tensors keep Ultralytics'
names and layout: input ``images`` [1, 3, h, w] float32 RGB 0..1; outputs ``output0`` [1, 4+nc+32, A]
and ``output1`` [1, 32, h/4, w/4].

Path: checkpoint -> our verified ONNX export (:mod:`edgeseg.exporters.onnx`, fp32, opset 17) ->
``openvino.convert_model`` -> (int8: ``nncf.quantize``) -> ``openvino.save_model``. Going through the ONNX
file reuses an export that is already checked against torch and gives stable node names, which the
int8 ignored scope needs.

Precisions:

* ``fp32``: weights and compute float32 (``compress_to_fp16=False``; note that ``openvino.save_model``
  compresses to fp16 by default).
* ``fp16`` (``half=True``): weights stored as float16 (half the file), decompressed at load; CPUs then
  compute in float32, GPUs/NPUs in float16. I/O stays float32.
* ``int8`` (``int8=True``): NNCF post-training quantisation, calibrated on images from ``data`` (a
  dataset yaml, an image folder or a .txt list; see :mod:`edgeseg.exporters.calibration`), letterboxed exactly
  as at inference. Preset MIXED (symmetric int8 weights, asymmetric activations: SiLU activations are
  not centred on zero, so asymmetric ranges waste fewer levels). The head's decode subgraph -- the
  DFL softmax and its conv, the box arithmetic (Sub/Add/Mul/Div with anchors and strides), the class
  Sigmoid and the Concats that build ``output0`` -- is an ignored scope and stays float: its values are
  pixel coordinates (0..imgsz) next to probabilities (0..1) and the DFL's 16-bin expectation, which one
  int8 scale cannot hold without losing whole pixels. The scope is found in the converted graph (not
  from a list of names), and the quantised model is checked to have no FakeQuantize inside it.

Every export is verified: the IR is compiled on the CPU with ``INFERENCE_PRECISION_HINT=f32`` and
compared with the torch model on a real image (bus.jpg by default, see
:func:`edgeseg.exporters.common.check_image_blob`). fp32 and fp16 must match within the ONNX exporter's
tolerances; int8 outputs are recorded (``max_abs_diff``) and must be finite and of the right shape (int8
noise is not a broken graph; accuracy is measured with :func:`edgeseg.val.validate`).

The folder is built in a temporary folder beside the destination and renamed into place only after
verification; an existing destination is replaced only then.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.backends.signal_stack import preserve_sigaltstack
from edgeseg.formats import FORMATS

from .common import (
    INPUT_NAME,
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

__all__ = [
    "METADATA_FILE",
    "RT_INFO_SECTION",
    "TOLERANCE",
    "OpenVINOExportResult",
    "decode_subgraph",
    "export",
    "fake_quantize_in",
]

RT_INFO_SECTION = "edgeseg_metadata"
METADATA_FILE = "metadata.yaml"
FOLDER_SUFFIX = FORMATS["openvino"].folder_ending
_XML = FORMATS["openvino"].suffix
# |IR - torch| <= atol + rtol * max|torch| per output (fp32 / fp16 weights). Catches broken graphs.
TOLERANCE = {"fp32": (1e-2, 1e-4), "fp16": (0.1, 5e-3)}
ONNX_OPSET = 17


@dataclass
class OpenVINOExportResult(ExportResult):
    """:class:`ExportResult` for an IR folder: ``path`` is the folder, ``xml`` the IR inside it,
    ``precision`` "fp32" | "fp16" | "int8"; ``calibration_images`` and ``ignored_nodes`` for int8."""

    precision: str = "fp32"
    xml: Path | None = None
    calibration_images: int = 0
    ignored_nodes: tuple[str, ...] = ()

    @property
    def size_mb(self) -> float:  # the folder's files, not the directory entry
        if self.path.is_dir():
            return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file()) / 1e6
        return super().size_mb

    def summary(self) -> str:
        return f"[{self.precision}] " + super().summary()


def export(
    model: Any,
    *,
    imgsz: int | tuple = 640,
    half: bool = False,
    int8: bool = False,
    data: Any = None,
    fraction: float = 1.0,
    max_images: int | None = 300,
    split: str = "train",
    output: str | PathLike | None = None,
    check_image: Any = None,
    head: str | None = None,
) -> OpenVINOExportResult:
    """Export a segmentation checkpoint (``.pt`` path or :class:`edgeseg.nn.SegmentationModel`) to an
    OpenVINO IR folder and verify it.

    Args:
        imgsz: input size, int or (h, w), multiples of 32 (static shape).
        half: float16 weights (``precision: fp16``).
        int8: NNCF int8 post-training quantisation (needs ``data``; not together with ``half``).
        data: calibration images: dataset yaml (its ``split``), image folder or .txt list.
        fraction, max_images, split: which calibration images (see
            :func:`edgeseg.exporters.calibration.calibration_images`); default up to 300 training images.
        output: destination folder (default ``<checkpoint>_openvino_model/`` beside the checkpoint,
            ``_int8_openvino_model/`` for int8); an existing folder not named ``*_openvino_model``
            receives ``<name>_openvino_model/`` inside it.
        check_image: image for the verification (default bus.jpg when available).
        head: YOLO26 models: "end2end" (default: the one-to-one head with its top-k in the graph, no NMS),
            "one2one" (the top-k made by the runtime) or "one2many" (NMS); see :data:`edgeseg.exporters.common.HEADS`.
            int8 keeps the top-k and the score path in float with the rest of the decode.

    Raises:
        ExportError: a bad option, missing packages (names the ``edgeseg[export-openvino]`` extra).
        ExportVerificationError: the IR does not reproduce the torch model.
    """
    started = time.perf_counter()
    size = normalise_imgsz(imgsz)
    half, int8 = _flag("half", half), _flag("int8", int8)
    if half and int8:
        raise ExportError("choose one precision: half=True (fp16) or int8=True (int8), not both")
    if int8 and data is None:
        raise ExportError(
            "int8=True needs calibration images: pass data=<dataset.yaml or image folder> (--data); "
            "e.g. data='coco128-seg.yaml'"
        )
    if not int8 and data is not None:
        raise ExportError("data= (calibration images) is only used with int8=True")
    precision = "int8" if int8 else "fp16" if half else "fp32"
    ov = _import_openvino()
    nncf = _import_nncf() if int8 else None

    calibration: list[Path] = []
    if int8:  # resolve the images before the slow steps, so that a bad --data fails at once
        from .calibration import calibration_images

        calibration = calibration_images(data, fraction=fraction, max_images=max_images, split=split)

    source = load_source_model(model, head)
    destination, stem = _destination(output, source, int8)
    blob, described = check_image_blob(check_image, size)
    reference = torch_outputs(source.model, blob)

    with tempfile.TemporaryDirectory(prefix="edgeseg-ov-") as work:
        onnx_path = Path(work) / f"{stem}{FORMATS['onnx'].suffix}"
        from .onnx import export as export_onnx

        export_onnx(
            source.model, imgsz=size, opset=ONNX_OPSET, output=onnx_path, check_image=check_image, head=source.head
        )
        try:
            ov_model = ov.convert_model(fspath(onnx_path))
        except Exception as exc:  # openvino raises its own exception types
            raise ExportError(f"openvino.convert_model failed on the ONNX export: {exc}") from exc
    _check_io(ov_model)

    ignored: tuple[str, ...] = ()
    if int8:
        with preserve_sigaltstack(collect=True):  # NNCF compiles (and drops) models of its own
            ov_model, ignored = _quantize(ov, nncf, ov_model, calibration, size)

    args = {
        "batch": 1,
        "half": half,
        "int8": int8,
        "dynamic": False,
        "nms": False if not source.needs_nms else None,
        "data": fspath(data) if isinstance(data, (str, PathLike)) else None,
        "fraction": float(fraction) if int8 else None,
        "imgsz": list(size),
    }
    metadata = build_metadata(source, imgsz=size, batch=1, args=args)
    metadata.update({"precision": precision, "layout": "nchw"})
    _set_rt_info(ov_model, metadata)

    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    _chmod_like_mkdir(staging)
    try:
        xml = staging / f"{stem}{_XML}"
        try:
            ov.save_model(ov_model, fspath(xml), compress_to_fp16=half)
        except Exception as exc:
            raise ExportError(f"openvino.save_model failed: {exc}") from exc
        _write_yaml(staging / METADATA_FILE, metadata)
        exported = _run_ir(ov, xml, blob)
        diffs = max_abs_diff(exported, reference)
        atol, rtol = TOLERANCE.get(precision, (None, None))  # int8: shape and NaN/inf only
        check_tolerance(diffs, reference, atol, rtol, described, f"OpenVINO {precision} model", exported=exported)
        _replace_dir(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    notes = []
    if "synthetic" in described:
        notes.append("verified on a synthetic image only")
    if int8:
        notes.append(
            f"int8: {len(calibration)} calibration image(s), preset MIXED, {len(ignored)} decode node(s) kept in float"
        )
    return OpenVINOExportResult(
        path=destination,
        format="openvino",
        imgsz=size,
        opset=ONNX_OPSET,
        dynamic=False,
        half=half,
        simplified=False,
        metadata=metadata_strings(metadata),
        check_image=described,
        max_abs_diff=diffs,
        output_shapes={n: tuple(int(d) for d in o.shape) for n, o in zip(OUTPUT_NAMES, exported)},
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
        precision=precision,
        xml=destination / f"{stem}{_XML}",
        calibration_images=len(calibration),
        ignored_nodes=ignored,
        head=source.head,
    )


# ---- int8 ----------------------------------------------------------------------------------------

# Ops that carry no arithmetic NNCF could quantise; left out of the ignored-scope names.
_PASSIVE = {"Constant", "Parameter", "Result", "ShapeOf"}
_LAYOUT_OPS = {"Reshape", "Transpose", "Squeeze", "Unsqueeze"}


def decode_subgraph(ov_model, output_index: int = 0) -> set[str]:
    """Friendly names of the nodes that decode the head's raw outputs into ``output0``.

    Walks back from the prediction output and stops at each Convolution that is a learned head
    convolution (and at the bias Add right after it), keeping the DFL convolution (the one fed by the
    Softmax, possibly through a Reshape/Transpose). What is collected is everything between the head's
    last convolutions and the output: DFL softmax/conv, anchor/stride box arithmetic, Sigmoid, the
    Reshape/Concat/Split plumbing. Constants and shape computations are left out.
    """
    result = ov_model.outputs[output_index].get_node()
    names: set[str] = set()
    seen = set()
    stack = [result.input_value(0).get_node()]
    while stack:
        node = stack.pop()
        key = node.get_friendly_name()
        if key in seen:
            continue
        seen.add(key)
        kind = node.get_type_name()
        if kind in ("Constant", "Parameter"):
            continue
        if kind == "Convolution" and not _is_dfl_conv(node):
            continue
        if kind == "Add" and _bias_add_of_head_conv(node):
            continue
        if kind not in _PASSIVE:
            names.add(key)
        for value in node.input_values():
            stack.append(value.get_node())
    return names


def _producer(node, index: int = 0):
    return node.input_value(index).get_node()


def _is_dfl_conv(node) -> bool:
    current = _producer(node)
    for _ in range(3):
        kind = current.get_type_name()
        if kind == "Softmax" or kind.startswith("SoftMax"):
            return True
        if kind not in _LAYOUT_OPS:
            return False
        current = _producer(current)
    return False


def _bias_add_of_head_conv(node) -> bool:
    """The Add that ONNX conversion splits off a Conv with bias (Conv -> Add(const))."""
    kinds = [node.input_value(i).get_node().get_type_name() for i in range(node.get_input_size())]
    if "Convolution" not in kinds or "Constant" not in kinds:
        return False
    conv = node.input_value(kinds.index("Convolution")).get_node()
    return not _is_dfl_conv(conv)


def fake_quantize_in(ov_model, names: set[str]) -> list[str]:
    """Names of FakeQuantize nodes that feed or sit inside the node set ``names`` (empty when the
    decode subgraph really stayed float). FakeQuantize nodes on the head convolutions' own inputs are
    outside the set and not counted."""
    bad = []
    for node in ov_model.get_ordered_ops():
        if node.get_type_name() != "FakeQuantize":
            continue
        consumers = {t.get_node().get_friendly_name() for out in node.outputs() for t in out.get_target_inputs()}
        if node.get_friendly_name() in names or consumers & names:
            bad.append(node.get_friendly_name())
    return bad


def _quantize(ov, nncf, ov_model, calibration: Sequence[Path], size) -> tuple[Any, tuple[str, ...]]:
    from nncf.common.logging import nncf_logger

    from .calibration import calibration_blobs

    ignored = decode_subgraph(ov_model)
    if not ignored:
        raise ExportError("int8: could not find the head's decode subgraph in the converted model")
    blobs = list(calibration_blobs(calibration, size, layout="nchw", dtype="float32"))
    dataset = nncf.Dataset(blobs)
    previous = nncf_logger.level
    nncf.set_log_level(logging.WARNING)  # NNCF lists every op it skips at INFO
    try:
        quantized = nncf.quantize(
            ov_model,
            dataset,
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(blobs),
            ignored_scope=nncf.IgnoredScope(names=sorted(ignored), validate=False),
        )
    except Exception as exc:  # NNCF raises assorted errors
        raise ExportError(f"NNCF int8 quantisation failed: {exc}") from exc
    finally:
        nncf.set_log_level(previous)
    leaked = fake_quantize_in(quantized, ignored)
    if leaked:
        raise ExportError(f"int8: NNCF quantised the decode subgraph ({', '.join(leaked[:5])}); not saved")
    return quantized, tuple(sorted(ignored))


# ---- steps ---------------------------------------------------------------------------------------


def _flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ExportError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _import_openvino():
    try:
        import openvino as ov
    except ImportError as exc:
        raise ExportError(
            "OpenVINO export needs the 'openvino' package, which is not installed: "
            f"pip install 'edgeseg[export-openvino]' ({exc})"
        ) from exc
    return ov


def _import_nncf():
    try:
        import nncf
    except ImportError as exc:
        raise ExportError(
            "int8 OpenVINO export needs the 'nncf' package, which is not installed: "
            f"pip install 'edgeseg[export-openvino]' ({exc})"
        ) from exc
    return nncf


def _destination(output, source, int8: bool) -> tuple[Path, str]:
    """(folder, file stem of the .xml inside it)."""
    stem = source.path.stem if source.path is not None else source.architecture
    folder_name = f"{stem}{'_int8' if int8 else ''}{FOLDER_SUFFIX}"
    if output is None:
        base = source.path.parent if source.path is not None else Path.cwd()
        return base / folder_name, stem
    path = Path(fspath(output))
    if path.suffix.lower() == _XML:
        return path.parent, path.stem
    if path.exists() and not path.is_dir():
        raise ExportError(f"output {path} exists and is not a folder; OpenVINO exports are folders")
    if path.is_dir() and not path.name.endswith(FOLDER_SUFFIX) and not _is_ir_folder(path):
        return path / folder_name, stem
    return path, stem


def _is_ir_folder(path: Path) -> bool:
    return any(path.glob(f"*{_XML}")) and (path / METADATA_FILE).exists()


def _check_io(ov_model) -> None:
    if len(ov_model.inputs) != 1 or len(ov_model.outputs) != 2:
        raise ExportError(
            f"unexpected converted model: {len(ov_model.inputs)} input(s), {len(ov_model.outputs)} output(s)"
        )
    names = [sorted(o.get_names()) for o in ov_model.outputs]
    if not all(n in names[i] for i, n in enumerate(OUTPUT_NAMES)) or INPUT_NAME not in ov_model.inputs[0].get_names():
        raise ExportError(f"unexpected tensor names in the converted model: outputs {names}")


def _set_rt_info(ov_model, metadata: dict[str, Any]) -> None:
    for key, value in metadata_strings(metadata).items():
        ov_model.set_rt_info(value, [RT_INFO_SECTION, key])
    # Descriptive keys read by OpenVINO's model API tools (not needed by edgeseg).
    names = metadata["names"]
    ov_model.set_rt_info("YOLO", ["model_info", "model_type"])
    ov_model.set_rt_info(" ".join(str(names[i]).replace(" ", "_") for i in sorted(names)), ["model_info", "labels"])
    ov_model.set_rt_info("114", ["model_info", "pad_value"])
    ov_model.set_rt_info("255", ["model_info", "scale_values"])
    ov_model.set_rt_info("True", ["model_info", "reverse_input_channels"])
    ov_model.set_rt_info("fit_to_window_letterbox", ["model_info", "resize_type"])


def _write_yaml(path: Path, metadata: dict[str, Any]) -> None:
    import yaml

    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(metadata, f, sort_keys=False, allow_unicode=True, default_flow_style=None)


def _run_ir(ov, xml: Path, blob: np.ndarray) -> list[np.ndarray]:
    try:
        core = ov.Core()
        with preserve_sigaltstack():  # see edgeseg.backends.signal_stack
            compiled = core.compile_model(core.read_model(fspath(xml)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()
        request.infer({0: blob})
        outputs = [np.array(request.get_output_tensor(i).data, dtype=np.float32) for i in range(2)]
    except Exception as exc:
        raise ExportVerificationError(f"OpenVINO cannot run the exported IR: {exc}") from exc
    by_name = {}
    for i, port in enumerate(compiled.outputs):
        for name in port.get_names():
            by_name[name] = outputs[i]
    return [by_name.get(n, outputs[i]) for i, n in enumerate(OUTPUT_NAMES)]


def _chmod_like_mkdir(path: Path) -> None:
    """mkdtemp makes 0700 folders; give the export the permissions a plain mkdir would (umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)


def _replace_dir(staging: Path, destination: Path) -> None:
    """Move the verified folder into place; an existing destination is swapped out, then removed."""
    old = None
    if destination.exists() or destination.is_symlink():
        if not destination.is_dir():
            raise ExportError(f"{destination} exists and is not a folder")
        old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent))
        os.rmdir(old)
        os.replace(destination, old)
    try:
        os.replace(staging, destination)
    except BaseException:
        if old is not None:
            os.replace(old, destination)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
