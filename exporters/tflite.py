"""Export to TFLite (LiteRT): float32, float16 and full int8 (``pip install 'edgeseg[export-tflite]'``).

    from edgeseg.exporters.tflite import export
    export("yolov8n-seg.pt", precision="int8", data="coco128-seg.yaml", fraction=0.5)

Pipeline (toolchain pinned in the ``export-tflite`` extra: tensorflow-cpu 2.21, onnx2tf 1.28.8):

1. torch -> ONNX (TorchScript exporter, opset 17, onnxslim) of a wrapper that fixes the output layout
   (:mod:`edgeseg.exporters.tflite_split`);
2. ONNX -> TensorFlow SavedModel with onnx2tf (NCHW -> NHWC, ``output_signaturedefs=True`` so that the
   outputs keep their names; YOLO11 needs it);
3. SavedModel -> .tflite with TensorFlow's converter: float32; float16 weights; or full integer (every
   op int8, int8 input and outputs) calibrated on our own representative dataset (never onnx2tf's
   downloaded sample): images from ``data`` letterboxed exactly as :class:`edgeseg.Segmenter` does;
   for int8, conv outputs that feed a SiLU then get their range floored at -8
   (:mod:`edgeseg.exporters.tflite_ranges`: TFLite quantises the activation's input, unlike OpenVINO and ncnn);
4. Ultralytics-compatible metadata appended to the file as a zip entry, then the file is run with
   LiteRT on the check image and compared with the torch model.

Output layouts (``outputs=``): ``"single"`` is Ultralytics' TFLite layout ([1, 4+nc+nm, A] with boxes
normalised to 0..1, prototypes [1, mh, mw, nm]); ``"split"`` (the default for int8) ends the graph at
the head's raw conv outputs, each its own int8 tensor with its own scale, decoded by the native core
(:func:`edgeseg.ops.decode_split.decode_split`). See :mod:`edgeseg.exporters.tflite_split`.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.formats import FORMATS

from .common import (
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
    normalise_imgsz,
)
from .tflite_ranges import SILU_FLOOR, tighten_silu_inputs

__all__ = [
    "OUTPUT_KINDS",
    "PRECISIONS",
    "TOOLCHAIN",
    "TFLiteExportResult",
    "calibration_blobs",
    "calibration_images",
    "export",
    "read_tflite_metadata",
]

PRECISIONS = ("fp32", "fp16", "int8")
OUTPUT_KINDS = ("single", "split")
OPSET = 17
# Quantiser for int8: TensorFlow's default MLIR one (True) or the legacy one (False). On yolov8n-seg-coco-dq
# (calibrated on coco128-seg images 0-63, validated on 64-127 at 640, split outputs), mask mAP50-95 drop
# against fp32 38.57: MLIR 2.57 and legacy 1.45 points as converted; with the SiLU floor
# (edgeseg.exporters.tflite_ranges) MLIR -0.08 (38.65) and legacy 0.27. The MLIR graph also has fewer requantise
# ops (260 vs 287, all Edge TPU-mappable) and runs faster (9.0 vs 12.1 ms, 2 threads).
NEW_QUANTIZER = True
# Known-good pins (the export-tflite extra). Other versions may work; onnx2tf changes often.
TOOLCHAIN = {"tensorflow-cpu": "2.21.0", "onnx2tf": "1.28.8"}
# float32/float16 files must reproduce torch to this (atol, rtol of the output's max |value|).
TOLERANCE = {"fp32": (2e-2, 1e-3), "fp16": (0.5, 2e-2)}
INSTALL_HINT = (
    "pip install 'edgeseg[export-tflite]' && pip install --no-deps tf_keras==2.21.0 "
    "(tf_keras without its dependencies: they would pull a second TensorFlow)"
)


@dataclass
class TFLiteExportResult(ExportResult):
    """:class:`ExportResult` that names the file's ``precision`` ("fp32" | "fp16" | "int8", shown by
    ``edgeseg export``) and its ``outputs`` layout ("single" | "split")."""

    precision: str = "fp32"
    outputs: str = "single"


def export(
    model_path_or_module: Any,
    *,
    imgsz: int | tuple = 640,
    precision: str | None = None,
    half: bool = False,
    int8: bool = False,
    outputs: str = "auto",
    data: Any = None,
    fraction: float = 1.0,
    calib_indices=None,
    output: str | PathLike | None = None,
    check_image: Any = None,
    dynamic: bool = False,
    simplify: bool = True,
    opset: int = OPSET,
    threads: int = 2,
    silu_floor: float | None = SILU_FLOOR,
    head: str | None = None,
) -> TFLiteExportResult:
    """Export a segmentation checkpoint (or SegmentationModel) to a .tflite file and check it.

    Args:
        precision: "fp32" (default), "fp16" (float16 weights, float32 I/O) or "int8" (full integer:
            int8 input [1, h, w, 3] with scale 1/255 and zero point -128, int8 outputs). ``half=True``
            means "fp16" and ``int8=True`` means "int8" (the CLI flags).
        outputs: "single", "split" or "auto" (split for int8, single otherwise).
        data: calibration images for int8: a dataset yaml (its train split), a directory or a list of
            image files. ``fraction`` of them, from the first (sorted by path), or ``calib_indices``
            (a slice or indices into the sorted list) are used.
        output: destination file or directory (default: beside the checkpoint,
            ``<stem>_<precision>[_split].tflite``).
        check_image: image for the verification against torch (default: bus.jpg when available).
        threads: LiteRT threads for the verification run.
        silu_floor: int8 only: cut the range of conv outputs that feed a SiLU to [-silu_floor, max]
            (:mod:`edgeseg.exporters.tflite_ranges`; about 1.2 mask mAP50-95 points on yolov8n-seg). None keeps
            the quantiser's calibration ranges as they are.
        head: YOLO26 models: "one2one" (default: the NMS-free one-to-one branch ending before its top-k, which
            edgeseg's core makes; the graph stays plain convolutions for the int8 quantiser and the Edge TPU) or
            "one2many" (NMS); "end2end" (TopK in the graph) is refused.

    Raises:
        ExportError: bad option, missing package or failed conversion.
        ExportVerificationError: a float export does not reproduce the torch model.
    """
    started = time.perf_counter()
    precision = _precision(precision, half, int8)
    kind = _output_kind(outputs, precision)
    size = normalise_imgsz(imgsz)
    if dynamic:
        raise ExportError("TFLite exports have a fixed input size; dynamic=True is not supported")
    if precision == "int8" and data is None:
        raise ExportError("an int8 export needs calibration images: pass data=<dataset yaml or image directory>")
    torch, onnx, slim = _import_torch_onnx()
    _require_converter()

    if head == "end2end":
        raise ExportError(
            "head='end2end' (the top-k selection inside the graph) is not exported to TFLite: use head='one2one' "
            "(the default for YOLO26: the same NMS-free head, its top-k made by edgeseg's core) or head='one2many'"
        )
    source = load_source_model(model_path_or_module, head, default_head="one2one")
    destination = _destination(output, source, precision, kind)
    images = calibration_images(data, fraction=fraction, indices=calib_indices) if precision == "int8" else []

    from .tflite_split import NormalisedOutputModel, SplitOutputModel

    split = SplitOutputModel(source.model).eval() if kind == "split" else None
    wrapper = split if split is not None else NormalisedOutputModel(source.model, size).eval()
    names = split.output_names if split is not None else list(OUTPUT_NAMES)
    blob, described = check_image_blob(check_image, size)
    with torch.no_grad():
        reference = [t.float().numpy() for t in wrapper(torch.from_numpy(blob))]

    workdir = Path(tempfile.mkdtemp(prefix="edgeseg-tflite-"))
    try:
        onnx_path = workdir / "model.onnx"
        _to_onnx(torch, onnx, slim, wrapper, size, names, onnx_path, opset, simplify)
        saved_model = _to_saved_model(onnx_path, workdir, blob)
        if precision == "int8":
            blobs = calibration_blobs(images, size)
            content = _convert(saved_model, precision, blobs)
            tightened = 0
            if silu_floor is not None:
                content, tightened = tighten_silu_inputs(content, float(silu_floor))
        else:
            content = _convert(saved_model, precision, None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    args = {
        "data": str(data) if data is not None else None,
        "batch": 1,
        "half": precision == "fp16",
        "int8": precision == "int8",
        "fraction": fraction,
        "nms": False if not source.needs_nms else None,
        "dynamic": False,
    }
    metadata = build_metadata(source, imgsz=size, batch=1, args=args)
    metadata["edgeseg_outputs"] = kind
    metadata["precision"] = precision
    if precision == "int8":
        metadata["silu_input_floor"] = None if silu_floor is None else float(silu_floor)
    if split is not None:
        metadata.update(
            output_names=names,
            reg_max=int(split.reg_max),
            nm=int(split.nm),
            strides=[int(s) for s in split.strides],
        )
    else:
        metadata["boxes_normalized"] = True
    content = append_metadata(content, metadata)

    with atomic_output(destination) as tmp:
        tmp.write_bytes(content)
        exported = _run_litert(tmp, blob, threads, names)
        diffs = _compare(exported, reference, names, kind)
        notes = _check(diffs, reference, names, precision, described)
    if "synthetic" in described:
        notes.append("verified on a synthetic image only")
    if precision == "int8":
        notes.append(f"calibrated on {len(images)} image(s) from {data}")
        if silu_floor is not None:
            notes.append(f"SiLU input range floored at -{float(silu_floor):g} on {tightened} conv output(s)")
    result = TFLiteExportResult(
        path=destination,
        format="tflite",
        imgsz=size,
        opset=opset,
        dynamic=False,
        half=precision == "fp16",
        simplified=bool(simplify),
        metadata={k: str(v) for k, v in metadata.items()},
        check_image=described,
        max_abs_diff=diffs,
        output_shapes={n: tuple(int(d) for d in o.shape) for n, o in zip(names, exported)},
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
        precision=precision,
        outputs=kind,
        head=source.head,
    )
    return result


# ---- options ---------------------------------------------------------------------------------------


def _precision(precision, half, int8) -> str:
    if precision is None:
        if half and int8:
            raise ExportError("choose one of half=True (fp16) and int8=True")
        return "int8" if int8 else "fp16" if half else "fp32"
    key = str(precision).strip().lower()
    key = {"float32": "fp32", "float16": "fp16", "half": "fp16", "full_int8": "int8"}.get(key, key)
    if key not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if (half and key != "fp16") or (int8 and key != "int8"):
        raise ExportError(f"precision={precision!r} contradicts half={half}/int8={int8}")
    return key


def _output_kind(outputs, precision: str) -> str:
    if outputs in (None, "auto"):
        return "split" if precision == "int8" else "single"
    if outputs not in OUTPUT_KINDS:
        raise ExportError(f"outputs must be 'auto', 'single' or 'split', got {outputs!r}")
    return outputs


def _destination(output, source, precision: str, kind: str) -> Path:
    stem = source.path.stem if source.path is not None else source.architecture
    name = f"{stem}_{precision}{'_split' if kind == 'split' else ''}{FORMATS['tflite'].suffix}"
    if output is None:
        return (source.path.parent if source.path is not None else Path.cwd()) / name
    path = Path(fspath(output))
    if (
        path.suffix.lower() != FORMATS["tflite"].suffix
    ):  # a directory (created when missing, e.g. Ultralytics' *_saved_model)
        if path.exists() and not path.is_dir():
            raise ExportError(f"output {path} must be a .tflite file or a directory")
        path.mkdir(parents=True, exist_ok=True)
        return path / name
    return path


# ---- calibration -----------------------------------------------------------------------------------


def calibration_images(data, *, fraction: float = 1.0, indices=None, max_images: int | None = None) -> list[Path]:
    """Calibration image files, chosen by the shared :mod:`edgeseg.exporters.calibration` (sorted by path, then
    ``indices`` (a slice, range or ints), then the first ``ceil(fraction * n)``)."""
    from . import calibration

    if isinstance(data, (list, tuple)):  # explicit image files
        files = sorted(Path(fspath(p)) for p in data)
        missing = [str(p) for p in files if not p.is_file()]
        if missing or not files:
            raise ExportError(f"calibration image(s) not found: {', '.join(missing[:3]) or '(empty list)'}")
        picked = (
            files[indices]
            if isinstance(indices, slice)
            else ([files[i] for i in indices] if indices is not None else files)
        )
        if not picked:
            raise ExportError("calib_indices select no calibration image")
        n = max(1, math.ceil(calibration.check_fraction(fraction) * len(picked)))
        return picked[:n]
    if isinstance(indices, slice):
        indices = range(*indices.indices(10**9))  # clipped to the split's size below
        files = calibration.calibration_images(data, fraction=1.0, max_images=None)
        indices = [i for i in indices if i < len(files)]
    return calibration.calibration_images(data, fraction=fraction, max_images=max_images, indices=indices)


def calibration_blobs(files: Sequence[Path], size: tuple[int, int]) -> np.ndarray:
    """[n, h, w, 3] float32 RGB 0..1, letterboxed exactly as Segmenter letterboxes at inference."""
    from . import calibration

    blobs = list(calibration.calibration_blobs(files, size, layout="nhwc", dtype="float32"))
    return np.concatenate(blobs, 0) if blobs else np.empty((0, size[0], size[1], 3), np.float32)


# ---- conversion steps -------------------------------------------------------------------------------


def _import_torch_onnx():
    try:
        import onnx
        import torch
    except ImportError as exc:
        raise ExportError(f"TFLite export needs torch and onnx: {INSTALL_HINT} ({exc})") from exc
    try:
        import onnxslim

        slim = onnxslim.slim
    except ImportError:
        slim = None
    return torch, onnx, slim


def _require_converter():
    # TensorFlow's C++ INFO/WARNING logs (hundreds of lines per conversion) unless the user set a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    missing = []
    for module in ("tensorflow", "onnx2tf", "onnx_graphsurgeon", "sng4onnx", "tf_keras"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ExportError(f"TFLite export needs {', '.join(missing)}, not installed: {INSTALL_HINT}")


def _to_onnx(torch, onnx, slim, wrapper, size, names, path: Path, opset: int, simplify: bool) -> None:
    dummy = torch.zeros(1, 3, *size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                wrapper,
                (dummy,),
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=list(names),
                do_constant_folding=True,
            )
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed: {exc}") from exc
    proto = onnx.load_from_string(buffer.getvalue())
    if simplify and slim is not None:
        try:
            proto = slim(proto)
        except Exception as exc:  # onnxslim raises assorted errors
            raise ExportError(f"onnxslim could not simplify the model: {exc}") from exc
    onnx.save(proto, fspath(path))


def _to_saved_model(onnx_path: Path, workdir: Path, sample: np.ndarray) -> Path:
    import onnx2tf

    out = workdir / "saved_model"
    # onnx2tf downloads a sample-image file from the internet for its dummy-inference checks unless a
    # file of that name is in the working directory: always give it ours (our images, 128x128).
    np.save(workdir / ONNX2TF_SAMPLE_FILE, _onnx2tf_sample(sample))
    previous = os.getcwd()
    os.chdir(workdir)
    printed = io.StringIO()  # onnx2tf/Keras print every SavedModel signature tensor: keep for errors only
    try:
        with contextlib.redirect_stdout(printed):
            onnx2tf.convert(
                input_onnx_file_path=fspath(onnx_path),
                output_folder_path=fspath(out),
                output_signaturedefs=True,
                copy_onnx_input_output_names_to_tflite=True,
                not_use_onnxsim=True,
                non_verbose=True,
                verbosity="error",
            )
    except SystemExit as exc:  # onnx2tf exits on some conversion errors
        raise ExportError(f"onnx2tf failed to convert the model (exit {exc.code}){_tail(printed)}") from None
    except Exception as exc:
        raise ExportError(f"onnx2tf failed to convert the model: {exc}{_tail(printed)}") from exc
    finally:
        os.chdir(previous)
    if not (out / "saved_model.pb").is_file():
        raise ExportError("onnx2tf produced no SavedModel")
    return out


def _tail(printed: io.StringIO, lines: int = 15) -> str:
    text = printed.getvalue().strip()
    return ("\nlast lines onnx2tf printed:\n" + "\n".join(text.splitlines()[-lines:])) if text else ""


ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def _onnx2tf_sample(blob_nchw: np.ndarray) -> np.ndarray:
    """[20, 128, 128, 3] float32 0..1 from our check image (what onnx2tf would otherwise download)."""
    import cv2

    img = np.ascontiguousarray(blob_nchw[0].transpose(1, 2, 0))
    small = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)
    return np.repeat(small[None], 20, axis=0)


def _convert(saved_model: Path, precision: str, blobs: np.ndarray | None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(fspath(saved_model))
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        if blobs is None:
            raise ExportError("an int8 conversion needs calibration images")

        def representative():
            for i in range(blobs.shape[0]):
                yield [blobs[i : i + 1]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        if not NEW_QUANTIZER:
            converter.experimental_new_quantizer = False
    try:
        return bytes(converter.convert())
    except Exception as exc:
        raise ExportError(f"the TFLite converter failed ({precision}): {str(exc).strip().splitlines()[-1]}") from exc


# ---- metadata (Ultralytics' convention: a zip appended to the flatbuffer) ----------------------------


def append_metadata(content: bytes, metadata: dict[str, Any]) -> bytes:
    """``content`` with a zip holding ``metadata.txt`` (the dict as a Python literal) appended: the
    form Ultralytics' AutoBackend and edgeseg's TFLite backend read. TFLite ignores trailing bytes."""
    buffer = io.BytesIO()
    buffer.write(content)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.txt", repr(metadata))
    return buffer.getvalue()


def read_tflite_metadata(path: str | PathLike) -> dict | None:
    """The metadata dict appended to a .tflite (Ultralytics or edgeseg), or None when there is none."""
    from edgeseg.formats import read_tflite_metadata as read

    return read(path)


# ---- verification -----------------------------------------------------------------------------------


def _run_litert(path: Path, blob: np.ndarray, threads: int, names: Sequence[str]) -> list[np.ndarray]:
    """Outputs of the .tflite (dequantised) in ``names`` order, via edgeseg's backend."""
    from edgeseg.backends.tflite import TFLiteBackend

    backend = TFLiteBackend(path, threads=threads)
    outputs = backend.raw_float_outputs(np.ascontiguousarray(blob.transpose(0, 2, 3, 1)))
    got = list(backend.output_names)
    if sorted(got) == sorted(names):
        return [outputs[got.index(n)] for n in names]
    if len(got) == len(names):  # names not kept (e.g. output_0, output_1): signature order
        return outputs
    raise ExportVerificationError(f"the exported model has outputs {got}, expected {list(names)}")


def _compare(exported, reference, names, kind) -> dict[str, float]:
    nchw = []
    for a in exported:
        a = np.asarray(a, dtype=np.float32)
        if a.ndim == 4:  # TFLite (onnx2tf) tensors are NHWC, always: never guess from the shape, which
            a = a.transpose(0, 3, 1, 2)  # is ambiguous when C == H == W (nc 80 at 640: cls0 is 80x80x80)
        nchw.append(a)
    return max_abs_diff(nchw, reference, names)


def _check(diffs, reference, names, precision: str, described: str) -> list[str]:
    bad = [n for n, d in diffs.items() if not np.isfinite(d)]
    if bad:
        raise ExportVerificationError(
            f"the exported TFLite model gives outputs of the wrong shape or NaN/inf for {', '.join(bad)} on "
            f"{described} (nothing was written)"
        )
    if precision == "int8":  # int8 error is judged by the accuracy report, not element-wise
        return ["int8: max |exported - torch| is quantisation error; measure accuracy with edgeseg.exporters.report"]
    check_tolerance(diffs, reference, *TOLERANCE[precision], described, "TFLite model")
    return []
