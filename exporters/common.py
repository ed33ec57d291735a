"""Pieces every exporter shares: loading the source model, output names, metadata, the check image,
verification against the torch model, and atomic writes.

Kept free of any particular export format so that the ONNX exporter and later ones (OpenVINO, ncnn,
TFLite) describe and check their files the same way. torch is imported only inside functions.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.fileio import atomic_path
from edgeseg.formats import is_exported_model
from edgeseg.metadata import parse_imgsz
from edgeseg.version import __version__ as EDGESEG_VERSION

__all__ = [
    "DYNAMIC_AXES",
    "HEADS",
    "INPUT_NAME",
    "OUTPUT_NAMES",
    "ExportError",
    "ExportResult",
    "ExportVerificationError",
    "SourceModel",
    "atomic_output",
    "build_metadata",
    "check_image_blob",
    "check_tolerance",
    "load_source_model",
    "max_abs_diff",
    "metadata_strings",
    "normalise_imgsz",
    "resolve_head",
    "torch_outputs",
]

# Ultralytics' names for the input and the two outputs of a segmentation export.
INPUT_NAME = "images"
OUTPUT_NAMES = ("output0", "output1")  # predictions [1, 4+nc+nm, A], prototypes [1, nm, h/4, w/4]
# Ultralytics' dynamic axes for segmentation exports.
DYNAMIC_AXES = {
    "images": {0: "batch", 2: "height", 3: "width"},
    "output0": {0: "batch", 2: "anchors"},
    "output1": {0: "batch", 2: "mask_height", 3: "mask_width"},
}
DEFAULT_IMGSZ = 640
STRIDE = 32
SUPPORTED_TASK = "segment"
# Which head a YOLO26 export carries: "end2end" its one-to-one branch with the top-k selection in the graph
# (rows [1, K, 6+nm], no NMS); "one2one" the same branch ending before the top-k (dense [1, 4+nc+nm, A]; the
# runtime makes the selection, still no NMS: formats that cannot hold TopK/GatherElements); "one2many" the
# other branch (NMS needed, Ultralytics' default export). YOLOv8/11 have the one-to-many head only.
HEADS = ("end2end", "one2one", "one2many")

PathLike = Union[str, "os.PathLike[str]"]


class ExportError(EdgesegError, ValueError):
    """An export cannot be done as asked (bad option, unsupported format or model, missing package)."""


class ExportVerificationError(ExportError):
    """The exported file does not reproduce the torch model's outputs on the check image."""


@dataclass
class ExportResult:
    """What an export produced and how well it reproduces the torch model.

    ``max_abs_diff`` maps each output name to the largest absolute difference between the exported
    model (run by its runtime) and the torch model on ``check_image``; boxes are in input pixels, so
    ~1e-3 there is float32 rounding (see edgeseg.exporters.onnx for the measured noise floor).
    """

    path: Path
    format: str
    imgsz: tuple[int, int]
    opset: int | None = None
    dynamic: bool = False
    half: bool = False
    simplified: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    check_image: str = ""
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    output_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    head: str = "one2many"  # the head the file carries (HEADS); YOLO26 exports choose, v8/11 have one2many

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6 if self.path.exists() else 0.0

    def summary(self) -> str:
        diffs = ", ".join(f"{k} {v:.3g}" for k, v in self.max_abs_diff.items())
        return (
            f"{self.format} export saved to {self.path} ({self.size_mb:.1f} MB, {self.seconds:.1f} s); "
            f"max |exported - torch| on {self.check_image}: {diffs}"
        )


@dataclass
class SourceModel:
    """A fused, eval-mode float32 :class:`edgeseg.nn.SegmentationModel` and what is known about it."""

    model: Any  # SegmentationModel
    path: Path | None
    names: dict[int, str]
    imgsz: Any = None  # the size the checkpoint was trained at, if known
    train_args: dict | None = None
    license: str | None = None
    head: str = "one2many"  # one of HEADS: what the export carries (YOLO26 can carry any)

    @property
    def yolo26(self) -> bool:
        return hasattr(self.model.head, "end2end")

    @property
    def needs_nms(self) -> bool:
        return self.head == "one2many"

    def head_summary(self) -> str:
        """What the export's head is, in words (for results and reports)."""
        return {
            "end2end": "end-to-end one-to-one head, top-k selection in the graph (no NMS)",
            "one2one": "one-to-one head ending before its top-k; edgeseg's core selects (no NMS)",
            "one2many": "one-to-many head (NMS in the runtime)",
        }[self.head]

    @property
    def pretty_name(self) -> str:
        """'YOLOv8n-seg', 'YOLO11s-seg' (Ultralytics' spelling)."""
        return f"{self.model.arch}{self.model.scale}-seg".replace("yolo", "YOLO")

    @property
    def architecture(self) -> str:
        """'yolov8n-seg', 'yolo11s-seg' (edgeseg's registry name)."""
        return f"{self.model.arch}{self.model.scale}-seg"


def resolve_head(model, head: str | None, default: str = "end2end") -> str:
    """The head an export of ``model`` carries: ``head`` if given (checked), else ``default`` for a YOLO26
    model and "one2many" for YOLOv8/11 (which have no other)."""
    yolo26 = hasattr(model.head, "end2end")
    if head is None:
        return default if yolo26 else "one2many"
    if head not in HEADS:
        raise ExportError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
    if not yolo26 and head != "one2many":
        raise ExportError(
            f"head={head!r} needs a YOLO26 model (its NMS-free one-to-one branch); {model.arch} has the "
            "one-to-many head only"
        )
    return head


def load_source_model(model_path_or_module, head: str | None = None, default_head: str = "end2end") -> SourceModel:
    """A checkpoint path (Ultralytics .pt or edgeseg's own) or a SegmentationModel -> fused fp32 copy.

    ``head`` (YOLO26 only; see :data:`HEADS`): which head the export carries, ``default_head`` when None (the
    format's choice). The caller's module is never modified (it is deep-copied).
    """
    import torch

    from edgeseg.nn import SegmentationModel

    if isinstance(model_path_or_module, SegmentationModel):
        model = copy.deepcopy(model_path_or_module)
        path, imgsz, train_args, license_ = None, None, None, None
    elif isinstance(model_path_or_module, torch.nn.Module):
        raise ExportError(
            f"cannot export a {type(model_path_or_module).__name__}: pass an edgeseg SegmentationModel "
            "or the path of a checkpoint (.pt)"
        )
    elif isinstance(model_path_or_module, (str, os.PathLike)):
        from edgeseg.nn.load import load_model

        path = Path(model_path_or_module)
        if is_exported_model(path):
            raise ExportError(
                f"{path} is already an exported model; export needs the torch checkpoint (.pt) it came from"
            )
        if path.is_dir():
            raise ExportError(f"{path} is a directory; expected a checkpoint file (.pt)")
        model, info = load_model(path)  # raises CheckpointError (an EdgesegError) with a clear message
        imgsz, train_args = info.imgsz, info.train_args
        license_ = info.extras.get("license")
        model.names = dict(info.names)
    else:
        raise ExportError(
            f"expected a checkpoint path or an edgeseg SegmentationModel, got {type(model_path_or_module).__name__}"
        )
    model = model.float().cpu().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    chosen = resolve_head(model, head, default_head)
    if hasattr(model.head, "end2end"):  # before fuse(), which drops the branch not chosen
        model.head.end2end = chosen != "one2many"
        model.head.topk_in_graph = chosen == "end2end"
    model.fuse()
    _reset_anchor_cache(model)
    return SourceModel(
        model=model,
        path=path,
        names=dict(model.names),
        imgsz=imgsz,
        train_args=train_args,
        license=license_,
        head=chosen,
    )


def _reset_anchor_cache(model) -> None:
    """Anchors cached by an earlier (inference-mode) run must not leak into a trace."""
    model.head.reset_anchor_cache()


def normalise_imgsz(imgsz) -> tuple[int, int]:
    """640 or (h, w) -> (h, w), each a positive multiple of the model stride (32)."""
    return parse_imgsz(imgsz, stride=STRIDE, strict=True, error=ExportError)


def build_metadata(
    source: SourceModel, *, imgsz: tuple[int, int], batch: int = 1, args: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The metadata Ultralytics attaches to its exports (same keys and order), as Python values,
    plus edgeseg's ``architecture`` and ``edgeseg_version``.

    Ultralytics' AutoBackend and edgeseg's metadata reader both read it. Use :func:`metadata_strings`
    for ONNX ``metadata_props``; YAML-based formats can write the values directly.
    """
    data = (source.train_args or {}).get("data")
    description = f"edgeseg {source.pretty_name} model" + (f" trained on {data}" if data else "")
    extra: dict[str, Any] = {}
    if source.head == "one2one":  # edgeseg's key: the runtime makes the top-k selection (no NMS)
        extra["end2end_topk"] = int(source.model.head.max_det)
    return {
        "description": description,
        "author": "edgeseg",
        "date": datetime.now(timezone.utc).isoformat(),
        "version": EDGESEG_VERSION,
        "license": source.license or "see the source checkpoint's license",
        "docs": "https://github.com/edgeseg/edgeseg",
        "stride": int(max(float(s) for s in source.model.stride)),
        "task": SUPPORTED_TASK,
        "head": "Segment26" if source.yolo26 else "Segment",
        "batch": int(batch),
        "imgsz": [int(imgsz[0]), int(imgsz[1])],
        "names": {int(k): str(v) for k, v in source.names.items()},
        "args": dict(args or {}),
        "channels": 3,
        # Ultralytics' key: rows [1, K, 6+nm] (no NMS). A "one2one" export stays False here so that Ultralytics
        # (which knows no runtime selection) reads its dense output as it reads a one-to-many one, with NMS.
        "end2end": source.head == "end2end",
        **extra,
        "architecture": source.architecture,
        "edgeseg_version": EDGESEG_VERSION,
    }


def metadata_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Values as ``str()`` of the Python objects, exactly as Ultralytics writes ONNX metadata_props
    (``"[640, 640]"``, ``"{0: 'person', ...}"``, ``"32"``, ``"False"``)."""
    return {str(k): str(v) for k, v in metadata.items()}


# ---- check image ---------------------------------------------------------------------------------


def _sample_image() -> Path | None:
    """The first sample photo (bus.jpg, see :func:`edgeseg.assets.sample_images`), if there is one."""
    from edgeseg.assets import sample_images

    found = sample_images()
    return found[0] if found else None


def synthetic_image(height: int = 1080, width: int = 810) -> np.ndarray:
    """A deterministic BGR test image (gradients, rectangles, a disc and seeded noise)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([xx / width * 255, yy / height * 255, (xx + yy) / (width + height) * 255], -1)
    image[height // 5 : height // 2, width // 6 : width // 2] = (40, 160, 220)
    image[height // 2 : height * 4 // 5, width // 2 : width * 5 // 6] = (200, 60, 30)
    disc = (xx - width * 0.7) ** 2 + (yy - height * 0.25) ** 2 < (min(height, width) * 0.12) ** 2
    image[disc] = (30, 30, 30)
    noise = np.random.default_rng(0).integers(-12, 13, size=image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def check_image_blob(check_image, imgsz: tuple[int, int]) -> tuple[np.ndarray, str]:
    """(letterboxed float32 NCHW RGB 0..1 blob, a description of where the image came from).

    ``check_image``: a path, a BGR uint8 array or None. None uses, in order, the EDGESEG_CHECK_IMAGE
    environment variable, the sample bus.jpg (:func:`edgeseg.assets.sample_images`), or a deterministic synthetic image (said so in
    the description: a synthetic image checks the graph but not realistic activations).
    """
    from edgeseg.image_io import load_image
    from edgeseg.ops.letterbox import letterbox

    if check_image is None:
        env = os.environ.get("EDGESEG_CHECK_IMAGE")
        found = Path(env) if env else _sample_image()
        if found is not None:
            image, described = load_image(found), str(found)
        else:
            image, described = (
                synthetic_image(),
                "a deterministic synthetic image (no real image found; pass check_image=...)",
            )
    elif isinstance(check_image, np.ndarray):
        image, described = load_image(check_image), f"the given {check_image.shape[1]}x{check_image.shape[0]} image"
    else:
        image, described = load_image(check_image), str(check_image)
    blob, _ = letterbox(
        image, imgsz, scaleup=True, auto=False, stride=STRIDE, layout="nchw", dtype="float32", bgr_to_rgb=True
    )
    return np.ascontiguousarray(blob), described


def torch_outputs(model, blob: np.ndarray) -> Sequence[np.ndarray]:
    """The torch model's eval outputs (float32 numpy) for a float32 NCHW blob."""
    import torch

    _reset_anchor_cache(model)
    with torch.no_grad():
        preds, protos = model(torch.from_numpy(blob))
    _reset_anchor_cache(model)
    return [preds.float().numpy(), protos.float().numpy()]


def max_abs_diff(
    exported: Sequence[np.ndarray], reference: Sequence[np.ndarray], names: Sequence[str] = OUTPUT_NAMES
) -> dict[str, float]:
    """Per output: max |exported - reference| (inf when shapes differ or values are not finite)."""
    diffs = {}
    for name, a, b in zip(names, exported, reference):
        a = np.asarray(a, dtype=np.float32)
        b = np.asarray(b, dtype=np.float32)
        if a.shape != b.shape or not np.all(np.isfinite(a)):
            diffs[name] = float("inf")
        else:
            diffs[name] = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diffs


def check_tolerance(
    diffs: Mapping[str, float],
    reference: Sequence[np.ndarray],
    atol: float | None,
    rtol: float | None,
    described: str,
    what: str,
    *,
    exported: Sequence[np.ndarray] | None = None,
) -> None:
    """Raise :class:`ExportVerificationError` unless every output is within ``atol + rtol * max|reference|``.

    ``diffs`` is :func:`max_abs_diff`'s answer, ``what`` names the file in the message ("ONNX model": "the
    exported ONNX model does not reproduce the torch model on <described>: ..."). With ``exported``, an output
    of the wrong shape or with NaN/inf is named as such instead; ``atol`` None checks only that (int8 outputs,
    whose error is quantisation error, judged by the accuracy report).
    """
    failed = []
    outputs: Sequence[np.ndarray | None] = [None] * len(reference) if exported is None else exported
    for (name, diff), ref, out in zip(diffs.items(), reference, outputs):
        if out is not None:
            if out.shape != ref.shape:
                failed.append(f"{name}: shape {out.shape} != torch {ref.shape}")
                continue
            if not np.all(np.isfinite(out)):
                failed.append(f"{name}: NaN/inf in the output")
                continue
        if atol is None:
            continue
        limit = atol + (rtol or 0.0) * float(np.max(np.abs(ref))) if ref.size else atol
        if not diff <= limit:
            failed.append(f"{name}: max abs difference {diff:.4g} > {limit:.4g}")
    if failed:
        raise ExportVerificationError(
            f"the exported {what} does not reproduce the torch model on {described}: "
            + "; ".join(failed)
            + " (nothing was written)"
        )


# ---- files ---------------------------------------------------------------------------------------


def atomic_output(path: PathLike, suffix: str = "") -> AbstractContextManager[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is renamed over ``path``.

    Exporters write and verify the temporary file; if anything raises, it is removed and ``path`` is
    left as it was (an existing file is never half-overwritten).
    """
    return atomic_path(path, suffix)
