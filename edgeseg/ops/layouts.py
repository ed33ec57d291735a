"""Output layouts: how one inference's raw outputs become candidates and mask prototypes.

Every backend describes its model's outputs with one :class:`OutputLayout`; the segmenter calls
:meth:`OutputLayout.decode` and never asks which kind it holds. Validation and the export report use
:meth:`OutputLayout.split` (every anchor, dense) instead.

- :class:`SingleOutputLayout`: one prediction tensor [1, 4+nc+nm, N] (or [1, N, 4+nc+nm]) and the
  prototypes, as Ultralytics exports v8/11 (ONNX, OpenVINO, ncnn, TFLite, torch).
- :class:`~edgeseg.ops.decode_split.SplitLayout`: raw per-level head outputs (edgeseg's full-int8
  TFLite exports), decoded in the core.
- :class:`EndToEndLayout`: an end-to-end (NMS-free) head such as YOLO26's one-to-one branch: rows
  [1, K, 6+nm] of x1, y1, x2, y2 (input pixels), score, class, mask coefficients, and the prototypes.
  Its detections are final: :attr:`OutputLayout.needs_nms` is False.
- :class:`TopKLayout`: YOLO26's one-to-one branch exported without its in-graph top-k (formats that cannot hold
  it: ncnn, full-int8 TFLite, Edge TPU): dense predictions as :class:`SingleOutputLayout`, and the selection the
  graph would have made (:func:`one2one_select`, native) instead of NMS.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeseg.errors import ModelOutputError
from edgeseg.ops.decode import Candidates, class_keep_mask, decode
from edgeseg.ops.nms import topk_pairs

__all__ = [
    "ALL_PAIRS",
    "EndToEndLayout",
    "OutputLayout",
    "SingleOutputLayout",
    "TopKLayout",
    "decode_end2end_rows",
    "one2one_select",
]

ALL_PAIRS = 2**31 - 1  # no cap on a multi-label decode's candidates before the one-to-one selection


class OutputLayout(ABC):
    """The interface every output layout implements.

    Attributes every layout has: ``nc`` and ``nm`` (classes, mask coefficients), ``protos_layout``
    (``"chw"`` or ``"hwc"``: the prototypes that :meth:`decode` and :meth:`split` return),
    ``preds_layout`` and ``box_scale`` (how :meth:`split`'s dense predictions read: ``"cn"`` for
    [C, N], ``"nc"`` for [N, C]; boxes times ``box_scale`` are input pixels).

    ``needs_nms`` (a class attribute): whether :meth:`decode`'s candidates still overlap and must go through
    NMS (True for dense heads); an end-to-end head's candidates are final detections.
    """

    kind: ClassVar[str]
    needs_nms: ClassVar[bool] = True
    nc: int
    nm: int
    protos_layout: str
    preds_layout: str
    box_scale: tuple[float, float]

    @abstractmethod
    def decode(
        self,
        outputs: Sequence[np.ndarray],
        *,
        conf: float = 0.25,
        classes: Sequence[int] | None = None,
        multi_label: bool = False,
        max_nms: int = 30000,
    ) -> tuple[Candidates, np.ndarray]:
        """Candidates above ``conf`` (boxes xyxy in input pixels) and the float32 prototypes."""

    @abstractmethod
    def split(self, outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Every anchor as dense predictions (see ``preds_layout``/``box_scale``) and the prototypes."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-friendly facts for ``edgeseg info``."""


@dataclass(frozen=True)
class SingleOutputLayout(OutputLayout):
    """A model with two outputs: predictions and prototypes.

    ``preds_index``/``protos_index`` locate the prediction tensor ([1, 4+nc+nm, N] or [1, N, 4+nc+nm])
    and the prototype tensor ([1, nm, mh, mw] or [1, mh, mw, nm]) in the backend's output list.
    ``box_scale`` multiplies decoded boxes (x, y): (1, 1) for boxes in input pixels, (w, h) for
    exports whose boxes are normalised to 0..1.
    """

    kind: ClassVar[str] = "single"

    preds_index: int
    protos_index: int
    preds_layout: str  # "cn": channels first, "nc": anchors first
    protos_layout: str  # "chw" or "hwc"
    nc: int
    nm: int
    box_scale: tuple[float, float] = (1.0, 1.0)

    def split(self, outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Check one inference's outputs and return (preds [C, N] or [N, C], protos 3-D), batch dim dropped."""
        preds, protos = _two_outputs(outputs, self.preds_index, self.protos_index, self.protos_layout, self.nm)
        if preds.ndim != 3 or preds.shape[0] != 1:
            raise ModelOutputError(f"prediction output must be [1, C, N] for batch 1, got {preds.shape}")
        channels = preds.shape[1] if self.preds_layout == "cn" else preds.shape[2]
        if channels != 4 + self.nc + self.nm:
            raise ModelOutputError(
                f"prediction output {preds.shape} has {channels} channels, expected 4 + {self.nc} + {self.nm}"
            )
        return preds[0], protos[0]

    def decode(
        self,
        outputs: Sequence[np.ndarray],
        *,
        conf: float = 0.25,
        classes: Sequence[int] | None = None,
        multi_label: bool = False,
        max_nms: int = 30000,
    ) -> tuple[Candidates, np.ndarray]:
        preds, protos = self.split(outputs)
        candidates = decode(
            preds,
            self.nc,
            conf=conf,
            classes=classes,
            layout=self.preds_layout,
            box_scale=self.box_scale,
            multi_label=multi_label,
            max_nms=max_nms,
        )
        return candidates, protos

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "needs_nms": self.needs_nms,
            "predictions": self.preds_index,
            "prototypes": self.protos_index,
            "predictions_layout": self.preds_layout,
            "prototypes_layout": self.protos_layout,
            "nc": self.nc,
            "nm": self.nm,
        }


def _two_outputs(
    outputs: Sequence[np.ndarray], preds_index: int, protos_index: int, protos_layout: str, nm: int
) -> tuple[np.ndarray, np.ndarray]:
    """The (predictions, prototypes) of a two-output head, the prototypes checked (4-D, batch 1, ``nm`` masks)."""
    if len(outputs) != 2:
        raise ModelOutputError(f"expected 2 model outputs, got {len(outputs)}")
    preds = np.asarray(outputs[preds_index])
    protos = np.asarray(outputs[protos_index])
    if protos.ndim != 4 or protos.shape[0] != 1:
        raise ModelOutputError(f"prototype output must be 4-D with batch 1, got {protos.shape}")
    masks = protos.shape[1] if protos_layout == "chw" else protos.shape[3]
    if masks != nm:
        raise ModelOutputError(f"prototype output {protos.shape} has {masks} masks, expected {nm}")
    return preds, protos


@dataclass(frozen=True)
class EndToEndLayout(OutputLayout):
    """An end-to-end (NMS-free) head: final detections [1, K, 6+nm] and prototypes.

    Each of the K rows is x1, y1, x2, y2 (input pixels, times ``box_scale``), score, class id, then ``nm``
    mask coefficients, as Ultralytics exports YOLO26 with ``nms=False`` (K = its ``max_det``, 300). The
    class ids are values in the rows, so ``nc`` comes from the model's metadata. :meth:`decode` keeps the
    rows whose score is > ``conf`` (and whose class is in ``classes``) in score order; no NMS follows.
    :meth:`split` returns the rows [K, 6+nm] themselves (``preds_layout`` ``"e2e"``), not dense anchors.
    """

    kind: ClassVar[str] = "end2end"
    needs_nms: ClassVar[bool] = False

    preds_index: int
    protos_index: int
    protos_layout: str  # "chw" or "hwc"
    nc: int
    nm: int
    box_scale: tuple[float, float] = (1.0, 1.0)
    preds_layout: str = "e2e"

    def split(self, outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Check one inference's outputs and return (rows [K, 6+nm], protos 3-D), batch dim dropped."""
        rows, protos = _two_outputs(outputs, self.preds_index, self.protos_index, self.protos_layout, self.nm)
        if rows.ndim != 3 or rows.shape[0] != 1 or rows.shape[2] != 6 + self.nm:
            raise ModelOutputError(
                f"end-to-end detection output must be [1, K, 6 + {self.nm}] for batch 1, got {rows.shape}"
            )
        return rows[0], protos[0]

    def decode(
        self,
        outputs: Sequence[np.ndarray],
        *,
        conf: float = 0.25,
        classes: Sequence[int] | None = None,
        multi_label: bool = False,
        max_nms: int = 30000,
    ) -> tuple[Candidates, np.ndarray]:
        """Rows with score > ``conf`` (``classes``: only those ids) as candidates, highest score first (ties:
        earlier row first), at most ``max_nms``; ``multi_label`` changes nothing (a row has one class).
        Rows with a NaN/inf box, score, class or coefficient are counted in ``nonfinite`` and dropped."""
        rows, protos = self.split(outputs)
        candidates = decode_end2end_rows(
            rows, self.nc, conf=conf, classes=classes, max_nms=max_nms, box_scale=self.box_scale
        )
        return candidates, protos

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "needs_nms": self.needs_nms,
            "predictions": self.preds_index,
            "prototypes": self.protos_index,
            "predictions_layout": "[1, K, 6+nm]: x1, y1, x2, y2, score, class, coefficients",
            "prototypes_layout": self.protos_layout,
            "nc": self.nc,
            "nm": self.nm,
        }


def decode_end2end_rows(
    rows: np.ndarray,
    nc: int,
    *,
    conf: float = 0.25,
    classes: Sequence[int] | None = None,
    max_nms: int = 30000,
    box_scale: tuple[float, float] = (1.0, 1.0),
) -> Candidates:
    """End-to-end rows [K, 6+nm] (x1, y1, x2, y2, score, class, coefficients) -> candidates: the rows with
    score > ``conf`` (``classes``: only those ids), highest score first (ties: earlier row first), at most
    ``max_nms``. Rows with a NaN/inf value are counted in ``nonfinite`` and dropped; a class id outside
    0..nc-1 is a :class:`~edgeseg.errors.ModelOutputError`."""
    if rows.ndim != 2 or rows.shape[1] < 6:
        raise ModelOutputError(f"end-to-end rows must be [K, 6 + nm], got {rows.shape}")
    keep_classes = class_keep_mask(classes, nc)
    rows = rows.astype(np.float32, copy=False)
    finite = np.isfinite(rows).all(axis=1)
    nonfinite = int((~finite).sum())
    scores = np.where(finite, rows[:, 4], -np.inf)
    class_f = np.where(finite, rows[:, 5], -1.0)
    class_ids = np.rint(class_f).astype(np.int64)
    bad_class = finite & ((class_ids < 0) | (class_ids >= nc))
    if bad_class.any():
        raise ModelOutputError(
            f"end-to-end output holds class id(s) {sorted(set(class_ids[bad_class].tolist()))[:5]} "
            f"outside 0..{nc - 1} (the metadata names {nc} classes)"
        )
    take = finite & (scores > conf)
    if keep_classes is not None:
        take &= keep_classes[np.clip(class_ids, 0, nc - 1)].astype(bool)
    idx = np.flatnonzero(take)
    idx = idx[np.argsort(-scores[idx], kind="stable")][:max_nms]
    sx, sy = box_scale
    boxes = rows[idx, :4] * np.array([sx, sy, sx, sy], dtype=np.float32)
    return Candidates(
        boxes=np.ascontiguousarray(boxes, dtype=np.float32),
        scores=np.ascontiguousarray(rows[idx, 4], dtype=np.float32),
        class_ids=class_ids[idx].astype(np.int32),
        anchors=idx.astype(np.int32),
        coefs=np.ascontiguousarray(rows[idx, 6:], dtype=np.float32),
        nonfinite=nonfinite,
    )


def one2one_select(
    candidates: Candidates, k: int, *, classes: Sequence[int] | None = None, nc: int, max_nms: int = 30000
) -> Candidates:
    """YOLO26's one-to-one selection on a multi-label decode's candidates (every (anchor, class) pair above the
    threshold): the ``k`` anchors with the best scores, then their ``k`` best pairs (native
    :func:`edgeseg.ops.nms.topk_pairs`), by score; then ``classes`` (as the end-to-end head's rows are
    filtered) and at most ``max_nms``. These are the rows the in-graph top-k of an end-to-end export keeps above
    the threshold: final detections, no NMS."""
    picked = candidates.select(topk_pairs(candidates.anchors, candidates.scores, k))
    keep = class_keep_mask(classes, nc)
    if keep is not None:
        picked = picked.select(keep[picked.class_ids].astype(bool))
    return picked.select(slice(0, max_nms)) if len(picked) > max_nms else picked


@dataclass(frozen=True)
class TopKLayout(SingleOutputLayout):
    """YOLO26's one-to-one head ending before its top-k: dense predictions [1, 4+nc+nm, N] (or [1, N, C]) from
    the one-to-one branch (cx, cy, w, h, sigmoid scores, coefficients) and the prototypes. :meth:`decode`
    selects as the graph would (:func:`one2one_select`, ``topk`` = the export's ``max_det``): no NMS."""

    kind: ClassVar[str] = "one2one"
    needs_nms: ClassVar[bool] = False

    topk: int = 300

    def decode(
        self,
        outputs: Sequence[np.ndarray],
        *,
        conf: float = 0.25,
        classes: Sequence[int] | None = None,
        multi_label: bool = False,
        max_nms: int = 30000,
    ) -> tuple[Candidates, np.ndarray]:
        """The selected pairs above ``conf`` (``multi_label`` changes nothing: the selection is over pairs)."""
        pairs, protos = super().decode(outputs, conf=conf, multi_label=True, max_nms=ALL_PAIRS)
        return one2one_select(pairs, self.topk, classes=classes, nc=self.nc, max_nms=max_nms), protos

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "selection": f"one-to-one top {self.topk} in the core (no NMS)"}
