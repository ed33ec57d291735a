"""The contract every inference backend fulfils, and the shared check of YOLO-seg output shapes.

A backend loads one model file, says what input it wants (:class:`InputSpec`), what the model is
(:class:`~edgeseg.metadata.ModelMetadata`) and how to read its outputs
(:class:`~edgeseg.ops.layouts.OutputLayout`), and
runs it (:meth:`Backend.infer`). Everything else (letterbox, decode, NMS, masks) is shared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any, ClassVar, Optional

from numpy.typing import NDArray

from ..errors import ModelLoadError, ModelOutputError
from ..metadata import ModelMetadata, parse_imgsz
from ..ops.layouts import EndToEndLayout, OutputLayout, SingleOutputLayout, TopKLayout

Shape = Sequence[Optional[int]]  # None marks a dynamic dimension


@dataclass(frozen=True)
class InputSpec:
    """The tensor a model takes: (h, w), layout, element type and, for quantised inputs, scale/zero point."""

    name: str
    shape: tuple[int, int]
    layout: str = "nchw"
    dtype: str = "float32"
    scale: float | None = None
    zero_point: int | None = None

    def __post_init__(self) -> None:
        if self.layout not in ("nchw", "nhwc"):
            raise ValueError(f"layout must be 'nchw' or 'nhwc', got {self.layout!r}")
        if self.dtype not in ("float32", "uint8", "int8"):
            raise ValueError(f"dtype must be 'float32', 'uint8' or 'int8', got {self.dtype!r}")
        h, w = self.shape
        if h <= 0 or w <= 0:
            raise ValueError(f"input shape must be positive, got {self.shape}")

    @property
    def blob_shape(self) -> tuple[int, int, int, int]:
        h, w = self.shape
        return (1, 3, h, w) if self.layout == "nchw" else (1, h, w, 3)


def image_input_layout(shape: Shape, prefer: str = "nchw") -> tuple[str, int | None, int | None] | None:
    """``(layout, h, w)`` of a 4-D image input with 3 channels first or last, None when neither is 3.

    ``prefer`` decides a shape that reads both ways ([1, 3, h, 3]): ONNX models are NCHW, TFLite NHWC.
    """
    order = ("nchw", "nhwc") if prefer == "nchw" else ("nhwc", "nchw")
    for layout in order:
        if layout == "nchw" and shape[1] == 3:
            return "nchw", shape[2], shape[3]
        if layout == "nhwc" and shape[3] == 3:
            return "nhwc", shape[1], shape[2]
    return None


def resolve_input_size(
    h: int | None, w: int | None, imgsz: int | Sequence[int] | None, metadata: ModelMetadata, source: str
) -> tuple[int, int]:
    """The (h, w) to run a model input at: a fixed size must equal ``imgsz`` when one is given; a dynamic
    (None) size takes ``imgsz``, else the metadata's imgsz."""
    if imgsz is not None:
        wanted = parse_imgsz(imgsz)
        if (h is not None and h != wanted[0]) or (w is not None and w != wanted[1]):
            raise ValueError(
                f"{source} has a fixed input size {h}x{w} (h x w); imgsz={imgsz!r} is not possible "
                "(re-export the model at that size)"
            )
        return wanted
    if h is None or w is None:
        if metadata.imgsz is None:
            raise ModelLoadError(f"{source} has a dynamic input size and no imgsz metadata; pass imgsz=(h, w)")
        return metadata.imgsz
    return h, w


def identify_outputs(
    shapes: Sequence[Shape],
    nc_hint: int | None = None,
    protos_layout: str = "chw",
    box_scale: tuple[float, float] = (1.0, 1.0),
    source: str = "model",
    end2end: bool | None = None,
    end2end_topk: int | None = None,
) -> SingleOutputLayout | EndToEndLayout:
    """Work out which output is which from their shapes (by rank, not order) and check them.

    ``shapes`` may hold ``None`` for dynamic dimensions. ``nc_hint`` (the number of class names in the
    metadata) decides between [1, C, N] and [1, N, C] and is checked against the channels.

    ``end2end`` (the metadata's ``end2end`` key, None when absent) chooses an end-to-end (NMS-free) head,
    predictions [1, K, 6+nm] (:class:`EndToEndLayout`): True requires that shape, False rules it out, and
    without the key a prediction output [1, K, 6+nm] with K <= 1000 reads as end-to-end when the metadata
    names the classes and the shape does not also read as a dense head of that many classes.

    ``end2end_topk`` (edgeseg's metadata key) marks an end-to-end head exported without its top-k selection:
    dense predictions read as :class:`TopKLayout` (the selection of ``end2end_topk`` pairs, no NMS).
    """
    described = ", ".join(_fmt(s) for s in shapes) or "none"
    ranks = [len(s) for s in shapes]
    if len(shapes) == 1 and ranks[0] == 3:
        raise ModelOutputError(
            f"{source} has a single output {_fmt(shapes[0])}: it looks like a detection (or pose) model. "
            "edgeseg needs an instance segmentation model (e.g. yolov8n-seg, yolo11n-seg) with two "
            "outputs: predictions [1, 4+nc+nm, N] and mask prototypes [1, nm, mh, mw]"
        )
    if len(shapes) != 2 or sorted(ranks) != [3, 4]:
        raise ModelOutputError(
            f"{source} has outputs {described}; a YOLO segmentation model has exactly two: "
            "predictions [1, 4+nc+nm, N] and mask prototypes [1, nm, mh, mw]"
        )
    preds_index = ranks.index(3)
    protos_index = ranks.index(4)
    preds, protos = shapes[preds_index], shapes[protos_index]
    for name, shape in (("prediction", preds), ("prototype", protos)):
        if shape[0] not in (None, 1):
            raise ModelOutputError(f"{source}: {name} output {_fmt(shape)} must have batch size 1")
    nm = protos[1] if protos_layout == "chw" else protos[3]
    if nm is None or nm <= 0:
        raise ModelOutputError(f"{source}: prototype output {_fmt(protos)} has no static mask count")

    e2e = end2end_topk is None and _end_to_end(preds, nm, nc_hint, end2end, source)
    if e2e:
        if not nc_hint:
            raise ModelOutputError(
                f"{source}: end-to-end prediction output {_fmt(preds)} carries class ids, not class channels; "
                "the number of classes must come from the metadata's names, which the model lacks"
            )
        return EndToEndLayout(
            preds_index=preds_index,
            protos_index=protos_index,
            protos_layout=protos_layout,
            nc=nc_hint,
            nm=nm,
            box_scale=box_scale,
        )

    candidates = []  # (layout, channels)
    for layout, channels in (("cn", preds[1]), ("nc", preds[2])):
        if channels is not None and channels > 4 + nm and (nc_hint is None or channels == 4 + nc_hint + nm):
            candidates.append((layout, channels))
    if not candidates:
        expected = f"4 + {nc_hint} + {nm} = {4 + nc_hint + nm}" if nc_hint else f"more than 4 + {nm}"
        raise ModelOutputError(
            f"{source}: prediction output {_fmt(preds)} has no channel axis of {expected} (prototypes {_fmt(protos)})"
        )
    if len(candidates) == 2:  # both axes could be channels: pick the smaller, as C << N in YOLO heads
        candidates.sort(key=lambda c: c[1])
    layout, channels = candidates[0]
    nc = channels - 4 - nm
    if end2end_topk is not None:
        return TopKLayout(preds_index, protos_index, layout, protos_layout, nc, nm, box_scale, topk=int(end2end_topk))
    return SingleOutputLayout(preds_index, protos_index, layout, protos_layout, nc, nm, box_scale)


MAX_END_TO_END_ROWS = 1000  # an end-to-end head keeps max_det rows (300 by default); dense heads have more anchors


def _end_to_end(preds: Shape, nm: int, nc_hint: int | None, end2end: bool | None, source: str) -> bool:
    """Whether the prediction output is an end-to-end head's [1, K, 6+nm] (see :func:`identify_outputs`)."""
    fits = preds[2] == 6 + nm and preds[1] is not None and 0 < preds[1] <= MAX_END_TO_END_ROWS
    if end2end is True:
        if not fits:
            raise ModelOutputError(
                f"{source}: the metadata says end2end, but the prediction output {_fmt(preds)} is not "
                f"[1, K, 6 + {nm}] (x1, y1, x2, y2, score, class, {nm} mask coefficients) with K <= "
                f"{MAX_END_TO_END_ROWS}"
            )
        return True
    if end2end is False or not fits:
        return False
    # without class names an end-to-end head cannot run; such an output keeps its dense reading (4 + 2 + nm)
    return nc_hint is not None and 4 + nc_hint + nm not in (preds[1], preds[2])


def _fmt(shape: Shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


class Backend(ABC):
    """One loaded model on one inference engine.

    Subclasses set ``name`` (the value of ``Segmenter(backend=...)``), ``package`` and ``extra`` (the pip
    extra that installs it), and in ``__init__`` fill ``input_spec``, ``metadata`` and ``output_layout``.
    """

    name: ClassVar[str]
    package: ClassVar[str]
    extra: ClassVar[str]

    input_spec: InputSpec
    metadata: ModelMetadata
    output_layout: OutputLayout

    @abstractmethod
    def __init__(self, path: str | PathLike[str], **options: Any) -> None:
        """Load the model at ``path``. Every backend accepts ``imgsz`` (None, int or (h, w): the input size
        for models with a dynamic input; a different fixed size is a ``ValueError``); unknown options
        raise ``TypeError``."""

    @abstractmethod
    def infer(self, blob: NDArray[Any]) -> list[NDArray[Any]]:
        """Run the model on a preprocessed blob of ``input_spec.blob_shape``; return its raw outputs."""

    @property
    def output_kind(self) -> str:
        """The kind of the output layout (``"single"``, ``"split"``)."""
        return self.output_layout.kind

    def describe(self) -> dict[str, Any]:
        """Human-oriented facts for ``edgeseg info`` (backend specifics in subclasses)."""
        return {"backend": self.name}

    def worker(self) -> Backend | None:
        """A backend for one more inference thread that shares what can be shared with this one (a compiled
        model), or ``None`` when another thread needs a model loaded anew (the default)."""
        return None

    @property
    def suggested_workers(self) -> int:
        """Requests worth keeping in flight at once (1 unless the engine says more pay off)."""
        return 1
