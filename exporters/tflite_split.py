"""torch wrappers that give a SegmentationModel the output layouts of edgeseg's TFLite exports.

* :class:`SplitOutputModel` ends the graph at the head's raw per-level tensors (for full-int8 models):
  for each level ``i`` (strides 8, 16, 32) ``box{i}`` [1, 4*reg_max, H, W] box-distribution logits,
  ``cls{i}`` [1, nc, H, W] class logits, ``mc{i}`` [1, nm, H, W] mask coefficients, then ``protos``
  [1, nm, H0*2, W0*2]. They are plain conv outputs: no reshape, concat, transpose or sigmoid, so that
  onnx2tf turns each into an NHWC tensor ([1, H, W, C]) without inserting transposes, and the int8
  quantiser gives every output its own scale (box logits, class logits and coefficients have very
  different ranges; one shared scale is what costs Ultralytics' single-output int8 file its accuracy).
  Class logits are clamped at ``CLS_LOGIT_FLOOR`` (see there).
  Decoding (DFL expectation, anchors, strides, sigmoid) is done by the native core
  (:func:`edgeseg.ops.decode_split.decode_split`).
* :class:`NormalisedOutputModel` is the standard single-output layout ([1, 4+nc+nm, A] + prototypes)
  with boxes divided by the input width/height (0..1), the convention of Ultralytics' TFLite exports.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CLS_LOGIT_FLOOR", "NormalisedOutputModel", "SplitOutputModel", "split_output_names"]

# Class logits are clamped below at this value in split exports: sigmoid(-10) = 4.5e-5, far under any
# useful confidence threshold (val uses 0.001 = logit -6.9), while the background logits (down to about
# -30) would otherwise stretch the int8 range of the class outputs ~2.5x and coarsen the scores of real
# detections (measured: the largest share of the int8 mAP loss on coco128-seg).
CLS_LOGIT_FLOOR = -10.0


def split_output_names(levels: int = 3) -> list[str]:
    """``box0, cls0, mc0, box1, ..., protos``: the output names of a split-output export."""
    names = []
    for i in range(levels):
        names += [f"box{i}", f"cls{i}", f"mc{i}"]
    return [*names, "protos"]


class SplitOutputModel(nn.Module):
    """The head's raw tensors per level plus the prototypes (see the module docstring)."""

    def __init__(self, model, cls_floor: float | None = CLS_LOGIT_FLOOR) -> None:
        super().__init__()
        self.model = model
        head = model.head
        self.nl, self.nc, self.nm, self.reg_max = head.nl, head.nc, head.nm, head.reg_max
        self.strides = tuple(int(s) for s in head.level_strides)
        self.cls_floor = None if cls_floor is None else float(cls_floor)

    @property
    def output_names(self) -> list[str]:
        return split_output_names(self.nl)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        head = self.model.head
        box_t, cls_t, mask_t = head.inference_towers()  # YOLO26: the branch its end2end setting picks
        xs = self.model.head_inputs(x)
        outs = []
        for i in range(self.nl):
            cls = torch.clamp(cls_t[i](xs[i]), min=self.cls_floor) if self.cls_floor is not None else cls_t[i](xs[i])
            outs += [box_t[i](xs[i]), cls, mask_t[i](xs[i])]
        outs.append(head.prototypes(xs))
        return tuple(outs)


class NormalisedOutputModel(nn.Module):
    """Ultralytics' TFLite layout: predictions [1, 4+nc+nm, A] with boxes in 0..1, prototypes.

    The boxes are decoded per level in normalised units from the start (distances and anchor centres
    times stride / image size), so that no intermediate tensor spans 0..640 pixels: with int8
    activations, a pixel-range tensor (and a per-anchor stride multiply) would leave the boxes with a
    handful of levels.
    """

    def __init__(self, model, imgsz: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        head = model.head
        self.nl, self.nc, self.nm, self.reg_max = head.nl, head.nc, head.nm, head.reg_max
        h, w = imgsz
        self.register_buffer("bins", torch.arange(self.reg_max, dtype=torch.float32).view(1, 1, -1, 1))
        for i, s in enumerate(head.level_strides):
            gh, gw = int(h // s), int(w // s)
            ys, xs = torch.meshgrid(
                torch.arange(gh, dtype=torch.float32) + 0.5, torch.arange(gw, dtype=torch.float32) + 0.5, indexing="ij"
            )
            anchors = torch.stack((xs.reshape(-1) * s / w, ys.reshape(-1) * s / h), 0).unsqueeze(0)  # [1, 2, HW]
            self.register_buffer(f"anchors{i}", anchors)
            self.register_buffer(f"norm{i}", torch.tensor([s / w, s / h], dtype=torch.float32).view(1, 2, 1))

    def forward(self, x: torch.Tensor):
        head = self.model.head
        box_t, cls_t, mask_t = head.inference_towers()
        xs = self.model.head_inputs(x)
        boxes, scores, coefs = [], [], []
        for i in range(self.nl):
            box = box_t[i](xs[i])
            b, _, gh, gw = box.shape
            if self.reg_max == 1:  # YOLO26: the distances themselves
                dist = box.view(b, 4, gh * gw)
            else:
                dist = (box.view(b, 4, self.reg_max, gh * gw).softmax(2) * self.bins).sum(2)  # [b, 4, HW] grid units
            norm, anchors = getattr(self, f"norm{i}"), getattr(self, f"anchors{i}")
            lt, rb = dist[:, :2] * norm, dist[:, 2:] * norm
            x1y1, x2y2 = anchors - lt, anchors + rb
            boxes.append(torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1))
            scores.append(cls_t[i](xs[i]).view(b, self.nc, gh * gw).sigmoid())
            coefs.append(mask_t[i](xs[i]).view(b, self.nm, gh * gw))
        y = torch.cat((torch.cat(boxes, 2), torch.cat(scores, 2), torch.cat(coefs, 2)), 1)
        return y, head.prototypes(xs)
