"""Output layouts: how one inference's raw outputs become candidates and mask prototypes.

Every backend describes its model's outputs with one :class:`OutputLayout`; the segmenter calls
:meth:`OutputLayout.decode` and never asks which kind it holds. Validation and the export report use
:meth:`OutputLayout.split` (every anchor, dense) instead.

- :class:`SingleOutputLayout`: one prediction tensor [1, 4+nc+nm, N] (or [1, N, 4+nc+nm]) and the
  prototypes, as Ultralytics exports v8/11 (ONNX, OpenVINO, ncnn, TFLite, torch).
- :class:`~edgeseg.ops.decode_split.SplitLayout`: raw per-level head outputs (edgeseg's full-int8
  TFLite exports), decoded in the core.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeseg.errors import ModelOutputError
from edgeseg.ops.decode import Candidates, decode

__all__ = ["OutputLayout", "SingleOutputLayout"]


class OutputLayout(ABC):
    """The interface every output layout implements.

    Attributes every layout has: ``nc`` and ``nm`` (classes, mask coefficients), ``protos_layout``
    (``"chw"`` or ``"hwc"``: the prototypes that :meth:`decode` and :meth:`split` return),
    ``preds_layout`` and ``box_scale`` (how :meth:`split`'s dense predictions read: ``"cn"`` for
    [C, N], ``"nc"`` for [N, C]; boxes times ``box_scale`` are input pixels).
    """

    kind: ClassVar[str]
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
        if len(outputs) != 2:
            raise ModelOutputError(f"expected 2 model outputs, got {len(outputs)}")
        preds = np.asarray(outputs[self.preds_index])
        protos = np.asarray(outputs[self.protos_index])
        if preds.ndim != 3 or preds.shape[0] != 1:
            raise ModelOutputError(f"prediction output must be [1, C, N] for batch 1, got {preds.shape}")
        if protos.ndim != 4 or protos.shape[0] != 1:
            raise ModelOutputError(f"prototype output must be 4-D with batch 1, got {protos.shape}")
        channels = preds.shape[1] if self.preds_layout == "cn" else preds.shape[2]
        if channels != 4 + self.nc + self.nm:
            raise ModelOutputError(
                f"prediction output {preds.shape} has {channels} channels, expected 4 + {self.nc} + {self.nm}"
            )
        nm = protos.shape[1] if self.protos_layout == "chw" else protos.shape[3]
        if nm != self.nm:
            raise ModelOutputError(f"prototype output {protos.shape} has {nm} masks, expected {self.nm}")
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
            "predictions": self.preds_index,
            "prototypes": self.protos_index,
            "predictions_layout": self.preds_layout,
            "prototypes_layout": self.protos_layout,
            "nc": self.nc,
            "nm": self.nm,
        }
