"""Decoding of split-output heads (native core): per level raw box-distribution logits, class logits
and mask coefficients, float32 or int8/uint8 with their own scale and zero point.

This is what edgeseg's full-int8 TFLite exports end with (see ``edgeseg.exporters.tflite_split``): the decode
that a single-output graph does in the model (DFL expectation, anchors at cell centres, strides,
sigmoid) is done here, and class logits are compared with the threshold in their quantised domain
(``q > floor(logit(conf) / scale + zero_point)``), so only candidates are dequantised.

:func:`decode_split` returns the same :class:`~edgeseg.ops.decode.Candidates` as
:func:`edgeseg.ops.decode.decode` (boxes xyxy in input pixels, anchors numbered level by level,
row-major, exactly as the single-output head numbers them). :func:`decode_split_dense` decodes every
anchor into the single-output layout [4+nc+nm, N] (for validation at a very low threshold).
:class:`SplitLayout` describes a model's split outputs for the backends and the Segmenter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeseg.errors import ModelOutputError
from edgeseg.ops._native import core
from edgeseg.ops.decode import Candidates, class_keep_mask, drop_batch
from edgeseg.ops.layouts import ALL_PAIRS, OutputLayout, one2one_select
from edgeseg.ops.quant import dequantize

__all__ = ["LevelSpec", "SplitLayout", "SplitTopKLayout", "decode_split", "decode_split_dense", "quantised_threshold"]

Quant = tuple[float, int]
# _common's checked arguments, in core.decode_split's order: box, cls, coef, box_q, cls_q, coef_q, sizes,
# strides, nc, nm, reg_max, cn
_CoreArgs = tuple[
    list[NDArray[Any]],
    list[NDArray[Any]],
    list[NDArray[Any]],
    list[Quant],
    list[Quant],
    list[Quant],
    list[tuple[int, int]],
    list[float],
    int,
    int,
    int,
    bool,
]
_DTYPES = (np.float32, np.int8, np.uint8)


def quantised_threshold(conf: float, scale: float, zero_point: int) -> float:
    """The integer threshold for quantised class logits: a value ``q`` passes when ``q > threshold``."""
    return float(core.quantised_threshold(float(np.float32(conf)), float(scale), float(zero_point)))


def _levels(arrays: Sequence[NDArray[Any]], name: str, n: int) -> list[NDArray[Any]]:
    if not isinstance(arrays, (list, tuple)) or len(arrays) != n:
        raise ValueError(f"{name} must be a list with one array per level ({n})")
    out = []
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            raise ValueError(f"{name}[{i}] must be a numpy array, got {type(a).__name__}")
        if a.dtype not in _DTYPES:
            raise ValueError(f"{name}[{i}] must be float32, int8 or uint8, got {a.dtype}")
        out.append(np.ascontiguousarray(a))
    return out


def _quant(q: Sequence[Quant] | None, name: str, n: int, arrays: Sequence[NDArray[Any]]) -> list[Quant]:
    if q is None:
        if arrays[0].dtype != np.float32:
            raise ValueError(f"{name} (scale, zero_point) per level is required for quantised outputs")
        return [(1.0, 0)] * n
    if not isinstance(q, (list, tuple)) or len(q) != n:
        raise ValueError(f"{name} must list one (scale, zero_point) per level ({n})")
    out = []
    for s, z in q:
        s = float(s)
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"{name}: scale must be positive and finite, got {s}")
        out.append((s, int(z)))
    return out


def _common(
    box: Sequence[NDArray[Any]],
    cls: Sequence[NDArray[Any]],
    coef: Sequence[NDArray[Any]],
    sizes: Sequence[tuple[int, int]],
    strides: Sequence[float],
    nc: int,
    nm: int | None,
    reg_max: int,
    layout: str,
    box_q: Sequence[Quant] | None,
    cls_q: Sequence[Quant] | None,
    coef_q: Sequence[Quant] | None,
) -> _CoreArgs:
    if isinstance(nc, bool) or not isinstance(nc, Integral) or nc < 1:
        raise ValueError(f"nc must be a positive integer, got {nc!r}")
    if layout not in ("hwc", "chw"):
        raise ValueError(f"layout must be 'hwc' ([H*W, C] per level) or 'chw' ([C, H*W]), got {layout!r}")
    n = len(sizes)
    if n == 0 or len(strides) != n:
        raise ValueError("sizes and strides must list the same (non-zero) number of levels")
    box, cls, coef = _levels(box, "box", n), _levels(cls, "cls", n), _levels(coef, "coef", n)
    if nm is None:
        h, w = sizes[0]
        nm = coef[0].size // (int(h) * int(w))
    return (
        box,
        cls,
        coef,
        _quant(box_q, "box_q", n, box),
        _quant(cls_q, "cls_q", n, cls),
        _quant(coef_q, "coef_q", n, coef),
        [(int(h), int(w)) for h, w in sizes],
        [float(s) for s in strides],
        int(nc),
        int(nm),
        int(reg_max),
        layout == "chw",
    )


def decode_split(
    box: Sequence[NDArray[Any]],
    cls: Sequence[NDArray[Any]],
    coef: Sequence[NDArray[Any]],
    *,
    sizes: Sequence[tuple[int, int]],
    strides: Sequence[float] = (8, 16, 32),
    nc: int,
    nm: int | None = None,
    reg_max: int = 16,
    layout: str = "hwc",
    box_q: Sequence[Quant] | None = None,
    cls_q: Sequence[Quant] | None = None,
    coef_q: Sequence[Quant] | None = None,
    conf: float = 0.25,
    multi_label: bool = False,
    max_nms: int = 30000,
    classes: ArrayLike | None = None,
) -> Candidates:
    """Candidates from split head outputs.

    ``box``/``cls``/``coef``: one array per level, each [H*W, C] (``layout="hwc"``, any shape with that
    memory order such as [1, H, W, C]) or [C, H*W] (``"chw"``); all float32, or all int8/uint8 with
    ``*_q`` = one (scale, zero_point) per level. ``sizes``: (H, W) per level; ``strides`` in pixels.
    ``conf``, ``multi_label``, ``max_nms``, ``classes``: as :func:`edgeseg.ops.decode.decode`.
    """
    args = _common(box, cls, coef, sizes, strides, nc, nm, reg_max, layout, box_q, cls_q, coef_q)
    if isinstance(conf, bool) or not isinstance(conf, Real) or not np.isfinite(conf):
        raise ValueError(f"conf must be a finite number, got {conf!r}")
    if isinstance(max_nms, bool) or not isinstance(max_nms, Integral) or max_nms < 1:
        raise ValueError(f"max_nms must be a positive integer, got {max_nms!r}")
    keep = class_keep_mask(classes, nc)
    boxes, scores, class_ids, anchors, coefs, nonfinite = core.decode_split(
        *args, float(np.float32(conf)), bool(multi_label), int(max_nms), keep
    )
    return Candidates(boxes, scores, class_ids, anchors, coefs, int(nonfinite))


def decode_split_dense(
    box: Sequence[NDArray[Any]],
    cls: Sequence[NDArray[Any]],
    coef: Sequence[NDArray[Any]],
    *,
    sizes: Sequence[tuple[int, int]],
    strides: Sequence[float] = (8, 16, 32),
    nc: int,
    nm: int | None = None,
    reg_max: int = 16,
    layout: str = "hwc",
    box_q: Sequence[Quant] | None = None,
    cls_q: Sequence[Quant] | None = None,
    coef_q: Sequence[Quant] | None = None,
) -> NDArray[np.float32]:
    """Every anchor as the single-output head gives it: float32 [4+nc+nm, N] (cx, cy, w, h in input
    pixels, sigmoid scores, coefficients)."""
    args = _common(box, cls, coef, sizes, strides, nc, nm, reg_max, layout, box_q, cls_q, coef_q)
    return core.decode_split_dense(*args)


# ---- a model's split outputs ---------------------------------------------------------------------


@dataclass(frozen=True)
class LevelSpec:
    """Where one level's three tensors are in a backend's output list, and their quantisation."""

    box: int
    cls: int
    coef: int
    size: tuple[int, int]
    stride: float
    box_q: Quant = (1.0, 0)
    cls_q: Quant = (1.0, 0)
    coef_q: Quant = (1.0, 0)


@dataclass(frozen=True)
class SplitLayout(OutputLayout):
    """How to read a split-output model's outputs (an :class:`~edgeseg.ops.layouts.OutputLayout`).

    Outputs are per level NHWC ([1, H, W, C]: ``layout="hwc"``) or NCHW (``"chw"``) tensors plus the
    prototypes at ``protos_index`` (``protos_layout`` "hwc" or "chw", dequantised with ``protos_q``).
    ``split(outputs)`` returns (dense predictions [4+nc+nm, N], prototypes) like every layout, for
    validation; ``decode(outputs, ...)`` is the fast path (quantised-domain threshold, candidates only).
    """

    kind: ClassVar[str] = "split"

    levels: tuple[LevelSpec, ...]
    protos_index: int
    nc: int
    nm: int
    reg_max: int = 16
    layout: str = "hwc"
    protos_layout: str = "hwc"
    protos_q: Quant | None = None
    preds_layout: str = "cn"  # of split()'s dense predictions
    box_scale: tuple[float, float] = (1.0, 1.0)

    @property
    def n_outputs(self) -> int:
        return 3 * len(self.levels) + 1

    def _arrays(
        self, outputs: Sequence[NDArray[Any]]
    ) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[NDArray[Any]], dict[str, Any]]:
        if len(outputs) != self.n_outputs:
            raise ModelOutputError(f"expected {self.n_outputs} split outputs, got {len(outputs)}")
        box = [outputs[lv.box] for lv in self.levels]
        cls = [outputs[lv.cls] for lv in self.levels]
        coef = [outputs[lv.coef] for lv in self.levels]
        kwargs: dict[str, Any] = {
            "sizes": [lv.size for lv in self.levels],
            "strides": [lv.stride for lv in self.levels],
            "nc": self.nc,
            "nm": self.nm,
            "reg_max": self.reg_max,
            "layout": self.layout,
            "box_q": [lv.box_q for lv in self.levels],
            "cls_q": [lv.cls_q for lv in self.levels],
            "coef_q": [lv.coef_q for lv in self.levels],
        }
        return box, cls, coef, kwargs

    def protos(self, outputs: Sequence[NDArray[Any]]) -> NDArray[np.float32]:
        """Float32 prototypes, batch dim dropped ([nm, mh, mw] or [mh, mw, nm] per ``protos_layout``)."""
        p = drop_batch(np.asarray(outputs[self.protos_index]), 3, "prototype output", "3-D or 4-D", ModelOutputError)
        if self.protos_q is not None and p.dtype != np.float32:
            s, z = self.protos_q
            if p.dtype in (np.int8, np.uint8) and s > 0:
                return dequantize(p, s, int(z))  # native, one pass
            p = (p.astype(np.float32) - np.float32(z)) * np.float32(s)
        return p.astype(np.float32, copy=False)

    def split(self, outputs: Sequence[NDArray[Any]]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        box, cls, coef, kwargs = self._arrays(outputs)
        return decode_split_dense(box, cls, coef, **kwargs), self.protos(outputs)

    def decode(
        self,
        outputs: Sequence[NDArray[Any]],
        *,
        conf: float = 0.25,
        multi_label: bool = False,
        max_nms: int = 30000,
        classes: Sequence[int] | None = None,
    ) -> tuple[Candidates, NDArray[np.float32]]:
        box, cls, coef, kwargs = self._arrays(outputs)
        cands = decode_split(
            box, cls, coef, conf=conf, multi_label=multi_label, max_nms=max_nms, classes=classes, **kwargs
        )
        return cands, self.protos(outputs)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "levels": [
                {"box": lv.box, "cls": lv.cls, "coef": lv.coef, "size": list(lv.size), "stride": lv.stride}
                for lv in self.levels
            ],
            "prototypes": self.protos_index,
            "predictions_layout": self.preds_layout,
            "prototypes_layout": self.protos_layout,
            "nc": self.nc,
            "nm": self.nm,
        }


@dataclass(frozen=True)
class SplitTopKLayout(SplitLayout):
    """Split outputs of YOLO26's one-to-one branch (edgeseg's full-int8 TFLite and Edge TPU exports of a YOLO26
    model; ``reg_max`` 1): decoded in the core like :class:`SplitLayout`, then the one-to-one selection the
    end-to-end graph would make (:func:`~edgeseg.ops.layouts.one2one_select`, ``topk`` = the export's
    ``max_det``) instead of NMS."""

    kind: ClassVar[str] = "split-one2one"
    needs_nms: ClassVar[bool] = False

    topk: int = 300

    def decode(
        self,
        outputs: Sequence[NDArray[Any]],
        *,
        conf: float = 0.25,
        multi_label: bool = False,
        max_nms: int = 30000,
        classes: Sequence[int] | None = None,
    ) -> tuple[Candidates, NDArray[np.float32]]:
        pairs, protos = super().decode(outputs, conf=conf, multi_label=True, max_nms=ALL_PAIRS)
        return one2one_select(pairs, self.topk, classes=classes, nc=self.nc, max_nms=max_nms), protos

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "selection": f"one-to-one top {self.topk} in the core (no NMS)"}
