"""YOLO26-seg head: two branches (one-to-many and one-to-one), no DFL, and the ``Proto26`` prototype module.

The head carries both of Ultralytics' YOLO26 branches with its parameter names (``cv2``/``cv3``/``cv4`` the
one-to-many branch, ``one2one_cv2``/``one2one_cv3``/``one2one_cv4`` the one-to-one branch). Boxes are 4
distances (left, top, right, bottom) per anchor in stride units (``reg_max`` 1: no distribution to integrate).

Outputs:

* training mode: ``{"one2many": branch, "one2one": branch}`` where a branch is a dict of ``boxes`` [B, 4, A],
  ``scores`` [B, nc, A] (logits), ``mask_coefficient`` [B, nm, A], ``proto`` (prototypes [B, nm, H/4, W/4],
  semantic logits [B, nc, H/8, W/8]) and ``feats`` (the input maps). The one-to-one branch sees detached
  features and prototypes: its loss trains only its own convolutions.
* eval mode, ``end2end`` True (the default): ``(detections [B, K, 6 + nm], prototypes)``: K = min(max_det, A) rows
  ``x1, y1, x2, y2`` (input pixels), score, class index (as a float), mask coefficients, sorted by score; chosen
  without NMS by the one-to-one branch (top K anchors by their best class score, then the top K of those
  anchor x class pairs, so one anchor can appear with several classes).
* eval mode, ``end2end`` False: ``([B, 4 + nc + nm, A], prototypes)`` from the one-to-many branch, boxes as
  cx, cy, w, h: the YOLOv8/11 layout, which needs NMS.
* eval mode, ``end2end`` True and ``topk_in_graph`` False: ``([B, 4 + nc + nm, A], prototypes)`` from the
  one-to-one branch in the one-to-many layout (cx, cy, w, h), for formats that cannot hold the top-k selection:
  the runtime makes it (:func:`edgeseg.ops.layouts.one2one_select`), no NMS.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .head import AnchorHead, conv_tower, dist2bbox, light_cls_tower, out_bias
from .modules import Conv

__all__ = ["DEFAULT_MAX_DET", "Proto26", "Segment26Head", "select_topk"]

DEFAULT_MAX_DET = 300


class Proto26(nn.Module):
    """Prototypes from all three levels: P4 and P5 refined by 1x1 convs, upsampled (nearest) to P3 and added,
    then a 3x3 fuse conv and the YOLOv8 prototype stack (3x3, 2x transposed conv, 3x3, 1x1 to ``c2``).

    In training mode it also returns semantic-segmentation logits (``semseg``, one map per class at P3's
    resolution), used only by the training loss; :meth:`fuse` removes that branch.
    """

    def __init__(self, ch: Sequence[int], c_: int = 256, c2: int = 32, nc: int = 80) -> None:
        super().__init__()
        self.cv1 = Conv(c_, c_, 3)
        self.upsample = nn.ConvTranspose2d(c_, c_, 2, 2, 0, bias=True)
        self.cv2 = Conv(c_, c_, 3)
        self.cv3 = Conv(c_, c2)
        self.feat_refine = nn.ModuleList(Conv(x, ch[0], 1) for x in ch[1:])
        self.feat_fuse = Conv(ch[0], c_, 3)
        self.semseg: nn.Sequential | None = nn.Sequential(Conv(ch[0], c_, 3), Conv(c_, c_, 3), nn.Conv2d(c_, nc, 1))

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        feat = xs[0]
        for refine, x in zip(self.feat_refine, xs[1:]):
            feat = feat + F.interpolate(refine(x), size=feat.shape[2:], mode="nearest")
        protos = self.cv3(self.cv2(self.upsample(self.cv1(self.feat_fuse(feat)))))
        if self.training and self.semseg is not None:
            return protos, self.semseg(feat)
        return protos

    def fuse(self) -> None:
        """Drop the training-only semantic branch."""
        self.semseg = None


def select_topk(rows: torch.Tensor, nc: int, max_det: int) -> torch.Tensor:
    """The end-to-end selection: ``[B, A, 4 + nc + nm]`` decoded rows -> ``[B, K, 6 + nm]``, K = min(max_det, A).

    The K anchors with the highest best-class score are kept, then the K best of their K x nc (anchor, class)
    scores; each selected pair becomes a row: box, score, class index (float), the anchor's coefficients.
    """
    _, a, c = rows.shape
    if c < 4 + nc:
        raise ValueError(f"rows have {c} channels, fewer than 4 + nc = {4 + nc}")
    k = min(max_det, a)
    scores = rows[..., 4 : 4 + nc]
    anchor_idx = scores.amax(dim=-1).topk(k, dim=1).indices.unsqueeze(-1)  # [B, K, 1]
    candidates = scores.gather(1, anchor_idx.expand(-1, -1, nc))  # [B, K, nc]
    top_scores, flat = candidates.flatten(1).topk(k, dim=1)  # [B, K]
    labels = flat % nc
    picked = anchor_idx.squeeze(-1).gather(1, flat // nc).unsqueeze(-1)  # [B, K, 1] anchor indices
    # one gather of whole rows (OpenVINO's GatherElements wants the index and data shapes to agree but on the axis)
    out = rows.gather(1, picked.expand(-1, -1, c))
    out_boxes, out_coefs = out[..., :4], out[..., 4 + nc :]
    return torch.cat((out_boxes, top_scores.unsqueeze(-1), labels.unsqueeze(-1).to(rows.dtype), out_coefs), -1)


def _branch_biases(box_towers: nn.ModuleList, cls_towers: nn.ModuleList, nc: int, strides: Sequence[float]) -> None:
    for box, cls, s in zip(box_towers, cls_towers, strides):
        out_bias(box).fill_(2.0)
        out_bias(cls)[:nc].fill_(math.log(5 / nc / (640 / s) ** 2))


class Segment26Head(AnchorHead):
    """YOLO26 segmentation head (see the module docstring for its outputs)."""

    def __init__(
        self,
        nc: int,
        ch: Sequence[int],
        strides: Sequence[float] = (8.0, 16.0, 32.0),
        nm: int = 32,
        npr: int = 256,
        max_det: int = DEFAULT_MAX_DET,
    ) -> None:
        super().__init__(strides)
        if nc < 1:
            raise ValueError(f"nc must be >= 1, got {nc}")
        if len(ch) != len(strides):
            raise ValueError(f"got {len(ch)} input levels but {len(strides)} strides")
        self.nc = nc
        self.nl = len(ch)
        self.nm = nm
        self.npr = npr
        self.reg_max = 1
        self.no = nc + 4
        self.max_det = _check_max_det(max_det)
        self.end2end = True
        self.topk_in_graph = True
        c2 = max(16, ch[0] // 4, 4)
        c3 = max(ch[0], min(nc, 100))
        c4 = max(ch[0] // 4, nm)
        self.cv2: nn.ModuleList | None = nn.ModuleList(conv_tower(x, c2, 4) for x in ch)
        self.cv3: nn.ModuleList | None = nn.ModuleList(light_cls_tower(x, c3, nc) for x in ch)
        self.one2one_cv2: nn.ModuleList | None = copy.deepcopy(self.cv2)
        self.one2one_cv3: nn.ModuleList | None = copy.deepcopy(self.cv3)
        self.proto = Proto26(ch, npr, nm, nc)
        self.cv4: nn.ModuleList | None = nn.ModuleList(conv_tower(x, c4, nm) for x in ch)
        self.one2one_cv4: nn.ModuleList | None = copy.deepcopy(self.cv4)

    def bias_init(self) -> None:
        """Prior biases of both branches, as in freshly built Ultralytics models: box distances 2.0, class logits
        log(5 / nc / (640 / stride)^2)."""
        with torch.no_grad():
            for box, cls in ((self.cv2, self.cv3), (self.one2one_cv2, self.one2one_cv3)):
                if box is not None and cls is not None:
                    _branch_biases(box, cls, self.nc, self.level_strides)

    def _towers(self, one2one: bool) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
        towers = (self.one2one_cv2, self.one2one_cv3, self.one2one_cv4) if one2one else (self.cv2, self.cv3, self.cv4)
        box, cls, mask = towers
        if box is None or cls is None or mask is None:
            name = "one-to-one" if one2one else "one-to-many"
            raise RuntimeError(f"the {name} branch was removed by fuse(); this fused head cannot run it")
        return box, cls, mask

    def inference_towers(self) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
        """The (box, class, mask-coefficient) towers of the branch that ``end2end`` selects for inference."""
        return self._towers(one2one=self.end2end)

    def prototypes(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The mask prototypes [B, nm, H0*2, W0*2] (in training mode too; the semantic logits are dropped)."""
        out = self.proto(xs)
        return out[0] if isinstance(out, tuple) else out

    def branch(self, xs: Sequence[torch.Tensor], one2one: bool) -> dict[str, Any]:
        """Raw outputs of one branch: ``boxes`` [B, 4, A] (ltrb, stride units), ``scores`` [B, nc, A] (logits),
        ``mask_coefficient`` [B, nm, A], and the input ``feats``."""
        box, cls, mask = self._towers(one2one)
        b = xs[0].shape[0]
        return {
            "boxes": torch.cat([box[i](xs[i]).view(b, 4, -1) for i in range(self.nl)], 2),
            "scores": torch.cat([cls[i](xs[i]).view(b, self.nc, -1) for i in range(self.nl)], 2),
            "mask_coefficient": torch.cat([mask[i](xs[i]).view(b, self.nm, -1) for i in range(self.nl)], 2),
            "feats": list(xs),
        }

    def decode(self, preds: dict[str, Any], xyxy: bool) -> torch.Tensor:
        """A branch's raw outputs -> ``[B, 4 + nc + nm, A]``: boxes in input pixels (xyxy or cx, cy, w, h),
        sigmoid class scores, mask coefficients."""
        anchors, strides = self.anchors_for(preds["feats"])
        dbox = dist2bbox(preds["boxes"], anchors.unsqueeze(0), xywh=not xyxy, dim=1) * strides
        return torch.cat((dbox, preds["scores"].sigmoid(), preds["mask_coefficient"]), 1)

    def forward(self, xs: Sequence[torch.Tensor]) -> Any:
        if len(xs) != self.nl:
            raise ValueError(f"expected {self.nl} feature maps, got {len(xs)}")
        if self.training:
            protos = self.proto(xs)
            detached = [x.detach() for x in xs]
            one2many = self.branch(xs, one2one=False)
            one2one = self.branch(detached, one2one=True)
            one2many["proto"] = protos
            one2one["proto"] = tuple(p.detach() for p in protos) if isinstance(protos, tuple) else protos.detach()
            return {"one2many": one2many, "one2one": one2one}
        protos = self.proto(xs)
        if not self.end2end:
            return self.decode(self.branch(xs, one2one=False), xyxy=False), protos
        one2one = self.branch(xs, one2one=True)
        if not self.topk_in_graph:
            return self.decode(one2one, xyxy=False), protos
        return select_topk(self.decode(one2one, xyxy=True).permute(0, 2, 1), self.nc, self.max_det), protos

    def fuse(self) -> None:
        """Remove what inference does not use: the branch not selected by ``end2end`` and the semantic branch.
        The remaining Conv layers are folded by :meth:`SegmentationModel.fuse`."""
        if self.end2end:
            self.cv2 = self.cv3 = self.cv4 = None
        else:
            self.one2one_cv2 = self.one2one_cv3 = self.one2one_cv4 = None
        self.proto.fuse()


def _check_max_det(max_det: int) -> int:
    if isinstance(max_det, bool) or not isinstance(max_det, int) or max_det < 1:
        raise ValueError(f"max_det must be a positive int, got {max_det!r}")
    return max_det
