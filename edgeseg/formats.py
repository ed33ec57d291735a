"""The one table of model formats: how each is recognised on disk, which backend runs it, which exporter
writes it and with which options, and how an exported model's precision is read.

Every other place asks this module: :func:`edgeseg.backends.select_backend` (which backend runs a path),
:mod:`edgeseg.exporters` (which module exports a format), ``edgeseg export`` (which flags a format takes),
:mod:`edgeseg.benchmark` and the export report (what a path is, where an export goes, its precision),
validation and training (what a torch checkpoint is). No other module spells a model suffix.

Importing this module imports nothing heavy (no backend, no exporter, no torch).
"""

from __future__ import annotations

import ast
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike, fspath
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "FORMATS",
    "PLANNED_FORMATS",
    "PRECISIONS",
    "SAFETENSORS_SUFFIX",
    "ModelFormat",
    "describe_path",
    "format_named",
    "format_of_path",
    "guess_precision",
    "is_checkpoint",
    "is_exported_model",
    "model_files",
    "model_size",
    "read_tflite_metadata",
    "supported_names",
]

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelFormat:
    """One model format.

    ``suffixes``: file suffixes (lower case) the format's backend opens; ``name_endings``: endings of a
    file or folder name that identify the format before its suffix does (``_openvino_model``,
    ``_edgetpu.tflite``); ``sidecars``: files that belong to a model file (OpenVINO's ``.bin`` beside the
    ``.xml``). ``exporter``: the module (under :mod:`edgeseg.exporters`) whose ``export(model, **options)``
    writes it, None when edgeseg only runs the format; ``export_options``: the keyword options that
    ``export`` takes besides the model; ``export_precisions``: what the exporter can write.
    """

    name: str
    backend: str
    suffixes: tuple[str, ...] = ()
    name_endings: tuple[str, ...] = ()
    sidecars: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exporter: str | None = None
    export_options: frozenset[str] = frozenset()
    export_precisions: tuple[str, ...] = ("fp32",)
    description: str = ""

    @property
    def suffix(self) -> str:
        """The main file suffix (``.onnx``, ``.xml``, ...)."""
        return self.suffixes[0]

    @property
    def folder_ending(self) -> str:
        """The ending of a model folder's name (``_openvino_model``, ``_ncnn_model``)."""
        return self.name_endings[0]

    @property
    def exporter_module(self) -> str:
        """The dotted module of the exporter (ValueError for a format edgeseg does not export)."""
        if self.exporter is None:
            raise ValueError(f"edgeseg does not export to {self.name}")
        return f"edgeseg.exporters.{self.exporter}"

    def export_target(self, stem: str, precision: str = "fp32") -> str:
        """The file or folder name an export of checkpoint ``stem`` gets (Ultralytics' naming)."""
        tag = "" if precision == "fp32" else f"_{precision}"
        if self.name == "onnx":
            return f"{stem}{tag}.onnx"
        if self.name == "tflite":
            return f"{stem}{tag}_saved_model"  # Ultralytics' folder of .tflite files
        return f"{stem}{tag}_{self.name}_model"


_COMMON_EXPORT = frozenset({"imgsz", "output", "check_image", "head"})

FORMATS: dict[str, ModelFormat] = {
    fmt.name: fmt
    for fmt in (
        ModelFormat(
            "torch",
            backend="torch",
            suffixes=(".pt", ".pth", ".safetensors"),  # keep SAFETENSORS_SUFFIX below in step
            description="a torch checkpoint (Ultralytics or edgeseg .pt, edgeseg .safetensors); needs torch",
        ),
        ModelFormat(
            "onnx",
            backend="onnxruntime",
            suffixes=(".onnx",),
            exporter="onnx",
            export_options=_COMMON_EXPORT | {"opset", "dynamic", "half", "simplify"},
            export_precisions=("fp32", "fp16"),
            description="ONNX, run by ONNX Runtime",
        ),
        ModelFormat(
            "openvino",
            backend="openvino",
            suffixes=(".xml",),
            name_endings=("_openvino_model",),
            sidecars={".xml": (".bin",)},
            exporter="openvino",
            export_options=_COMMON_EXPORT | {"half", "int8", "data", "fraction", "max_images", "split"},
            export_precisions=PRECISIONS,
            description="an OpenVINO IR folder (or its .xml)",
        ),
        ModelFormat(
            "ncnn",
            backend="ncnn",
            suffixes=(".param",),
            name_endings=("_ncnn_model",),
            sidecars={".param": (".bin",)},
            exporter="ncnn",
            export_options=_COMMON_EXPORT | {"half", "int8", "dynamic", "simplify", "opset", "data", "fraction"},
            export_precisions=("fp32", "fp16"),
            description="an ncnn folder (or its .param)",
        ),
        ModelFormat(
            "edgetpu",
            backend="edgetpu",
            name_endings=("_edgetpu.tflite",),
            exporter="edgetpu",
            export_options=_COMMON_EXPORT
            | {"data", "fraction", "calib_indices", "int8", "simplify", "threads", "compiler"},
            export_precisions=("int8",),
            description="a .tflite compiled for the Coral Edge TPU",
        ),
        ModelFormat(
            "tflite",
            backend="tflite",
            suffixes=(".tflite",),
            exporter="tflite",
            export_options=_COMMON_EXPORT
            | {
                "precision",
                "half",
                "int8",
                "outputs",
                "data",
                "fraction",
                "calib_indices",
                "dynamic",
                "simplify",
                "opset",
                "threads",
                "silu_floor",
            },
            export_precisions=PRECISIONS,
            description="a TFLite flatbuffer, run by LiteRT",
        ),
    )
}

# formats users ask for that edgeseg neither runs nor exports yet: name -> suffix (clear "not yet supported")
PLANNED_FORMATS: dict[str, str] = {"torchscript": ".torchscript", "engine": ".engine", "coreml": ".mlpackage"}

CHECKPOINT_SUFFIXES = FORMATS["torch"].suffixes
SAFETENSORS_SUFFIX = ".safetensors"  # the one checkpoint format told apart by its name, not its content


def format_named(name: str) -> ModelFormat:
    """The format called ``name`` (case and a leading dot ignored); ValueError naming the known ones."""
    key = name.strip().lower().lstrip(".")
    if key in FORMATS:
        return FORMATS[key]
    known = ", ".join(FORMATS)
    if key in PLANNED_FORMATS:
        raise ValueError(f"format '{name}' is not yet supported; supported formats: {known}")
    raise ValueError(f"unknown format '{name}'; supported formats: {known}")


def format_of_path(path: str | PathLike[str]) -> ModelFormat | None:
    """The format of a model file or folder, from its name (endings first, then the suffix); None if unknown."""
    name = Path(fspath(path)).name.lower()
    for fmt in FORMATS.values():
        if any(name.endswith(ending) for ending in fmt.name_endings):
            return fmt
    suffix = Path(name).suffix
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    return None


def describe_path(path: str | PathLike[str]) -> str:
    """A short format name for reports: the format's name, ``saved_model``/``folder`` for other folders,
    a planned format's name, else the suffix."""
    p = Path(fspath(path))
    fmt = format_of_path(p)
    if fmt is not None:
        return fmt.name
    if p.is_dir():
        return "saved_model" if "saved_model" in p.name.lower() else "folder"
    suffix = p.suffix.lower()
    for planned, planned_suffix in PLANNED_FORMATS.items():
        if suffix == planned_suffix:
            return planned
    return suffix.lstrip(".") or "unknown"


def supported_names() -> str:
    """The model names edgeseg runs, for error messages (``.onnx, ..., *_openvino_model/``)."""
    suffixes = sorted({s for fmt in FORMATS.values() for s in fmt.suffixes})
    endings = [f"*{e}/" if not Path(e).suffix else f"*{e}" for fmt in FORMATS.values() for e in fmt.name_endings]
    return ", ".join([*suffixes, *endings])


def is_checkpoint(path: str | PathLike[str]) -> bool:
    """True for a torch checkpoint file name (``.pt``, ``.pth``, ``.safetensors``)."""
    return Path(fspath(path)).suffix.lower() in CHECKPOINT_SUFFIXES


def is_exported_model(path: str | PathLike[str]) -> bool:
    """True for a name that an exported (or planned) format uses, including a sidecar weight file."""
    p = Path(fspath(path))
    fmt = format_of_path(p)
    if fmt is not None:
        return fmt.name != "torch"
    suffix = p.suffix.lower()
    sidecars = {s for f in FORMATS.values() for sides in f.sidecars.values() for s in sides}
    return suffix in sidecars or suffix in PLANNED_FORMATS.values()


def model_files(path: str | PathLike[str], *, skip: tuple[str, ...] = ()) -> list[Path]:
    """The files that make up a model: a folder's files (recursive, minus names in ``skip``), or the file
    plus its sidecars (OpenVINO ``.xml`` + ``.bin``, ncnn ``.param`` + ``.bin``)."""
    p = Path(fspath(path))
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.name not in skip)
    if not p.exists():
        raise FileNotFoundError(f"model not found: {p}")
    files = [p]
    fmt = format_of_path(p)
    for suffix in fmt.sidecars.get(p.suffix.lower(), ()) if fmt is not None else ():
        side = p.with_suffix(suffix)
        if side.is_file():
            files.append(side)
    return files


def model_size(path: str | PathLike[str], *, skip: tuple[str, ...] = ()) -> int:
    """Bytes on disk of all the model's files (see :func:`model_files`)."""
    return int(sum(f.stat().st_size for f in model_files(path, skip=skip)))


def read_tflite_metadata(path: str | PathLike[str]) -> dict[str, Any] | None:
    """The metadata dict appended to a .tflite as a zip entry (Ultralytics and edgeseg), or None."""
    try:
        with zipfile.ZipFile(fspath(path)) as zf:
            names = zf.namelist()
            if not names:
                return None
            raw = zf.read(names[0])
            if len(raw) > 1 << 20:
                return None
            text = raw.decode("utf-8")
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, KeyError, NotImplementedError):
        return None
    for parse in (ast.literal_eval, json.loads):
        try:
            value = parse(text)
        except Exception:
            continue
        if isinstance(value, dict):
            return value
    return None


def _tflite_precision(path: Path) -> str | None:
    meta = read_tflite_metadata(path) or {}
    if meta.get("precision") in PRECISIONS:
        return str(meta["precision"])
    args = meta.get("args")
    if not isinstance(args, dict):
        args = {}
    if args.get("int8"):
        return "int8"
    if args.get("half"):
        return "fp16"
    return None


def _onnx_precision(path: Path) -> str | None:
    if path.stat().st_size >= 512 * 1024 * 1024:
        return None
    data = path.read_bytes()
    if any(op in data for op in (b"QuantizeLinear", b"ConvInteger", b"MatMulInteger", b"QLinearConv")):
        return "int8"
    return None


def _openvino_precision(path: Path) -> str | None:
    if path.stat().st_size >= 64 * 1024 * 1024:
        return None
    text = path.read_text(errors="ignore")
    if 'type="FakeQuantize"' in text or 'element_type="i8"' in text or 'element_type="u8"' in text:
        return "int8"
    if 'element_type="f16"' in text:
        return "fp16"
    return None


# how an exported model's precision is read from the content of its files (a .tflite's metadata is read first)
_CONTENT_PRECISION = {".onnx": _onnx_precision, ".xml": _openvino_precision}


def guess_precision(path: str | PathLike[str]) -> str:
    """'int8', 'fp16' or 'fp32': from a .tflite's embedded metadata (edgeseg's ``precision``, Ultralytics'
    ``args``), else from the model's name and, for ONNX and OpenVINO, its contents."""
    p = Path(fspath(path))
    if p.suffix.lower() == ".tflite" and p.is_file():
        found = _tflite_precision(p)
        if found is not None:
            return found
    name = p.name.lower()
    if "int8" in name or "quant" in name:
        return "int8"
    if "fp16" in name or "half" in name or "float16" in name:
        return "fp16"
    try:
        files = model_files(p)
    except FileNotFoundError:
        return "fp32"
    for f in files:
        reader = _CONTENT_PRECISION.get(f.suffix.lower())
        if reader is not None:
            found = reader(f)
            if found is not None:
                return found
    return "fp32"
