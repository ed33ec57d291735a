"""Task-aligned label assignment (TOOD, Feng et al. 2021) as used by YOLOv8/YOLO11 training.

For every ground-truth box the assigner scores each anchor with the alignment metric
``t = s^alpha * u^beta`` (``s`` the predicted probability of the gt class, ``u`` the CIoU between
the predicted box and the gt, clamped at 0), restricted to anchors whose centre lies inside the gt.
The ``topk`` best anchors per gt become positives; an anchor claimed by several gts is kept by the gt
with the highest CIoU. Soft class targets are the one-hot labels scaled, per gt, by
``t / max_t * max_u`` over that gt's positives.

Small-gt rule (Ultralytics 8.4): for the centre-inside test only, every gt side shorter than
``small_gt_threshold`` (the smallest stride, 8 px) is replaced by ``small_gt_size`` (the second
stride, 16 px), keeping the box centre. CIoU and targets still use the real box.

``topk2`` (YOLO26's one-to-one branch uses 1): after an anchor claimed by several gts has been given to one,
each gt keeps only its ``topk2`` best anchors by the alignment metric.

:class:`SegTaskAlignedAssigner` (YOLO26-seg) replaces the overlap of a candidate pair by the mean of its CIoU
and the IoU of the predicted mask with the gt mask; the overlap then drives the metric, the choice between gts
and the soft targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import torch

from .boxes import bbox_iou, xywh2xyxy, xyxy2xywh

__all__ = ["AssignResult", "SegTaskAlignedAssigner", "TaskAlignedAssigner"]


_A = TypeVar("_A", bound="TaskAlignedAssigner")


@dataclass
class AssignResult:
    """Assigner outputs; ``A`` anchors, ``B`` images, ``C`` classes."""

    target_labels: torch.Tensor  # (B, A) int64, class of the assigned gt (0 where background)
    target_bboxes: torch.Tensor  # (B, A, 4) xyxy of the assigned gt
    target_scores: torch.Tensor  # (B, A, C) soft one-hot targets (zero on background)
    fg_mask: torch.Tensor  # (B, A) bool
    target_gt_idx: torch.Tensor  # (B, A) int64, index into the padded gt list of that image

    def __iter__(self):
        return iter((self.target_labels, self.target_bboxes, self.target_scores, self.fg_mask, self.target_gt_idx))


class TaskAlignedAssigner:
    """Callable assigner: ``assigner(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt)``.

    Shapes: ``pd_scores`` (B, A, C) probabilities, ``pd_bboxes`` (B, A, 4) xyxy pixels,
    ``anc_points`` (A, 2) pixels, ``gt_labels`` (B, M, 1), ``gt_bboxes`` (B, M, 4) xyxy pixels,
    ``mask_gt`` (B, M, 1) with 1 for real gts and 0 for padding.
    """

    def __init__(
        self,
        num_classes: int = 80,
        topk: int = 10,
        alpha: float = 0.5,
        beta: float = 6.0,
        eps: float = 1e-9,
        small_gt_threshold: float = 8.0,
        small_gt_size: float = 16.0,
        topk2: int | None = None,
    ):
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if int(topk) != topk or topk < 1:
            raise ValueError(f"topk must be a positive integer, got {topk!r}")
        if topk2 is not None and (int(topk2) != topk2 or not 1 <= topk2 <= topk):
            raise ValueError(f"topk2 must be an integer in [1, topk={topk}], got {topk2!r}")
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got alpha={alpha}, beta={beta}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if small_gt_threshold < 0 or small_gt_size < 0:
            raise ValueError(
                f"small_gt_threshold and small_gt_size must be >= 0, got {small_gt_threshold} and {small_gt_size}"
            )
        self.num_classes = int(num_classes)
        self.topk = int(topk)
        self.topk2 = self.topk if topk2 is None else int(topk2)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.eps = float(eps)
        self.small_gt_threshold = float(small_gt_threshold)
        self.small_gt_size = float(small_gt_size)

    @classmethod
    def from_strides(cls: type[_A], strides, **kwargs) -> _A:
        """The 8.4 defaults for a head with these strides: threshold ``strides[0]``, size ``strides[1]``."""
        strides = [float(s) for s in strides]
        if not strides:
            raise ValueError("strides must not be empty")
        kwargs.setdefault("small_gt_threshold", strides[0])
        kwargs.setdefault("small_gt_size", strides[1] if len(strides) > 1 else strides[0])
        return cls(**kwargs)

    # ------------------------------------------------------------------ public
    @torch.no_grad()
    def __call__(
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor,
        anc_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        mask_gt: torch.Tensor,
    ) -> AssignResult:
        return self._assign(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, None)

    def _assign(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, refine) -> AssignResult:
        """The assignment; ``refine(cls_score, ciou, candidates) -> overlaps`` replaces the CIoU overlap."""
        self._check(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt)
        bs, n_anchors, _ = pd_scores.shape
        n_gt = gt_bboxes.shape[1]
        device = pd_scores.device
        if n_gt == 0:
            return AssignResult(
                target_labels=torch.zeros((bs, n_anchors), dtype=torch.long, device=device),
                target_bboxes=torch.zeros_like(pd_bboxes),
                target_scores=torch.zeros_like(pd_scores),
                fg_mask=torch.zeros((bs, n_anchors), dtype=torch.bool, device=device),
                target_gt_idx=torch.zeros((bs, n_anchors), dtype=torch.long, device=device),
            )

        valid = mask_gt.bool()  # (B, M, 1)
        in_gts = self._centres_in_gts(anc_points, gt_bboxes, valid)  # (B, M, A) bool
        candidates = in_gts & valid
        cls_score, ciou = self._metrics(pd_scores, pd_bboxes, gt_labels, gt_bboxes, candidates)
        overlaps = ciou if refine is None else refine(cls_score, ciou, candidates)
        align = cls_score.pow(self.alpha) * overlaps.pow(self.beta)
        topk = self._topk_mask(align, valid)
        mask_pos = topk * in_gts * valid  # (B, M, A) float

        gt_idx, fg, mask_pos = self._resolve_conflicts(mask_pos, overlaps)
        if self.topk2 != self.topk:
            gt_idx, fg, mask_pos = self._keep_topk2(mask_pos, align)
        labels, boxes, scores = self._targets(gt_labels, gt_bboxes, gt_idx, fg)

        align = align * mask_pos
        best_align = align.amax(dim=-1, keepdim=True)  # (B, M, 1)
        best_overlap = (overlaps * mask_pos).amax(dim=-1, keepdim=True)  # (B, M, 1)
        norm = (align * best_overlap / (best_align + self.eps)).amax(-2).unsqueeze(-1)  # (B, A, 1)
        scores = scores * norm
        return AssignResult(labels, boxes, scores, fg.bool(), gt_idx)

    # ---------------------------------------------------------------- helpers
    def _check(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt) -> None:
        if pd_scores.ndim != 3 or pd_scores.shape[-1] != self.num_classes:
            raise ValueError(f"pd_scores must be (B, A, {self.num_classes}), got {tuple(pd_scores.shape)}")
        bs, n_anchors, _ = pd_scores.shape
        if tuple(pd_bboxes.shape) != (bs, n_anchors, 4):
            raise ValueError(f"pd_bboxes must be ({bs}, {n_anchors}, 4), got {tuple(pd_bboxes.shape)}")
        if tuple(anc_points.shape) != (n_anchors, 2):
            raise ValueError(f"anc_points must be ({n_anchors}, 2), got {tuple(anc_points.shape)}")
        if gt_bboxes.ndim != 3 or gt_bboxes.shape[0] != bs or gt_bboxes.shape[-1] != 4:
            raise ValueError(f"gt_bboxes must be ({bs}, M, 4), got {tuple(gt_bboxes.shape)}")
        n_gt = gt_bboxes.shape[1]
        for name, t in (("gt_labels", gt_labels), ("mask_gt", mask_gt)):
            if tuple(t.shape) != (bs, n_gt, 1):
                raise ValueError(f"{name} must be ({bs}, {n_gt}, 1), got {tuple(t.shape)}")

    def _centres_in_gts(self, anc_points, gt_bboxes, valid, eps: float = 1e-9) -> torch.Tensor:
        """(B, M, A) bool: anchor centre strictly inside the (small-gt widened) gt box."""
        xywh = xyxy2xywh(gt_bboxes)
        small = (xywh[..., 2:] < self.small_gt_threshold) & valid
        xywh[..., 2:] = torch.where(small, torch.full_like(xywh[..., 2:], self.small_gt_size), xywh[..., 2:])
        boxes = xywh2xyxy(xywh)
        top_left, bottom_right = boxes.unsqueeze(2).chunk(2, 3)  # (B, M, 1, 2)
        deltas = torch.cat((anc_points - top_left, bottom_right - anc_points), dim=-1)  # (B, M, A, 4)
        return deltas.amin(-1) > eps

    def _metrics(self, pd_scores, pd_bboxes, gt_labels, gt_bboxes, candidates):
        """Score of the gt's class and clamped CIoU, (B, M, A) each, zero outside ``candidates``."""
        bs, n_gt, n_anchors = candidates.shape
        ciou = torch.zeros((bs, n_gt, n_anchors), dtype=pd_bboxes.dtype, device=pd_bboxes.device)
        cls_score = torch.zeros((bs, n_gt, n_anchors), dtype=pd_scores.dtype, device=pd_scores.device)

        img = torch.arange(bs, device=pd_scores.device).view(-1, 1).expand(-1, n_gt)
        cls = gt_labels.long().squeeze(-1).clamp(0, self.num_classes - 1)  # (B, M)
        per_gt_scores = pd_scores[img, :, cls]  # (B, M, A): score of each gt's class at every anchor
        cls_score[candidates] = per_gt_scores[candidates]

        gt = gt_bboxes.unsqueeze(2).expand(-1, -1, n_anchors, -1)[candidates]
        pd = pd_bboxes.unsqueeze(1).expand(-1, n_gt, -1, -1)[candidates]
        ciou[candidates] = bbox_iou(gt, pd, xywh=False, ciou=True).squeeze(-1).clamp(0)

        return cls_score, ciou

    def _topk_mask(self, align, valid) -> torch.Tensor:
        """(B, M, A) float: 1 on the ``topk`` highest-metric anchors of each real gt."""
        k = min(self.topk, align.shape[-1])
        idx = torch.topk(align, k, dim=-1, largest=True).indices  # (B, M, k)
        mask = torch.zeros_like(align)
        mask.scatter_(-1, idx, 1.0)
        return mask * valid

    @staticmethod
    def _resolve_conflicts(mask_pos, ciou):
        """Give each anchor claimed by several gts to its highest-CIoU gt; returns (gt_idx, fg, mask_pos)."""
        fg = mask_pos.sum(-2)  # (B, A)
        if fg.max() > 1:
            multi = (fg.unsqueeze(1) > 1).expand_as(mask_pos)
            best = torch.zeros_like(mask_pos)
            best.scatter_(1, ciou.argmax(1, keepdim=True), 1.0)
            mask_pos = torch.where(multi, best, mask_pos)
            fg = mask_pos.sum(-2)
        return mask_pos.argmax(-2), fg, mask_pos

    def _keep_topk2(self, mask_pos, align):
        """Each gt keeps its ``topk2`` best positives by the alignment metric; returns (gt_idx, fg, mask_pos)."""
        k = min(self.topk2, mask_pos.shape[-1])
        idx = torch.topk(align * mask_pos, k, dim=-1, largest=True).indices  # (B, M, k)
        keep = torch.zeros_like(mask_pos)
        keep.scatter_(-1, idx, 1.0)
        mask_pos = mask_pos * keep
        return mask_pos.argmax(-2), mask_pos.sum(-2), mask_pos

    def _targets(self, gt_labels, gt_bboxes, gt_idx, fg):
        bs, n_gt = gt_bboxes.shape[:2]
        flat_idx = gt_idx + torch.arange(bs, device=gt_idx.device).unsqueeze(-1) * n_gt  # (B, A)
        labels = gt_labels.long().flatten()[flat_idx].clamp(0)  # (B, A)
        boxes = gt_bboxes.reshape(-1, 4)[flat_idx]  # (B, A, 4)
        labels_oh = labels.clamp(max=self.num_classes - 1)
        scores = torch.zeros((*labels.shape, self.num_classes), dtype=torch.long, device=labels.device)
        scores.scatter_(2, labels_oh.unsqueeze(-1), 1)
        scores = torch.where(fg.unsqueeze(-1) > 0, scores, 0)
        return labels, boxes, scores


class SegTaskAlignedAssigner(TaskAlignedAssigner):
    """YOLO26-seg's assigner: ``assigner(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt,
    pd_coef=, proto=, gt_masks=, mask_scale=)``.

    The overlap of a candidate pair is ``(CIoU + mask IoU) / 2``. Mask IoU is computed for each gt's
    ``3 * topk`` best pairs by the box metric (``score^alpha * CIoU^beta``) only; other candidates get mask IoU
    0. The predicted mask is ``coef @ proto > 0`` cropped to the predicted box at prototype scale (columns
    ``x1 <= c < x2``); IoU = intersection / max(union, 1) in prototype pixels.

    Extra shapes: ``pd_coef`` (B, A, nm), ``proto`` (B, nm, Hm, Wm), ``gt_masks`` (B, M, Hm, Wm) bool/0-1,
    ``mask_scale`` (B, 1) or a float: prototype pixels per input pixel.
    """

    @torch.no_grad()
    def __call__(  # type: ignore[override]
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor,
        anc_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        mask_gt: torch.Tensor,
        *,
        pd_coef: torch.Tensor,
        proto: torch.Tensor,
        gt_masks: torch.Tensor,
        mask_scale: torch.Tensor | float,
    ) -> AssignResult:
        bs, n_anchors, _ = pd_scores.shape
        n_gt = gt_bboxes.shape[1]
        if n_gt and tuple(gt_masks.shape[:2]) != (bs, n_gt):
            raise ValueError(f"gt_masks must be ({bs}, {n_gt}, Hm, Wm), got {tuple(gt_masks.shape)}")
        if pd_coef.ndim != 3 or tuple(pd_coef.shape[:2]) != (bs, n_anchors):
            raise ValueError(f"pd_coef must be ({bs}, {n_anchors}, nm), got {tuple(pd_coef.shape)}")
        if proto.ndim != 4 or proto.shape[0] != bs or proto.shape[1] != pd_coef.shape[2]:
            raise ValueError(f"proto must be ({bs}, {pd_coef.shape[2]}, Hm, Wm), got {tuple(proto.shape)}")
        scale = torch.as_tensor(mask_scale, dtype=pd_bboxes.dtype, device=pd_bboxes.device).reshape(-1, 1)
        scale = scale.expand(bs, 1) if scale.shape[0] == 1 else scale

        def refine(cls_score, ciou, candidates):
            box_metric = cls_score.pow(self.alpha) * ciou.pow(self.beta) + 1e-9
            k = min(3 * self.topk, n_anchors)
            pairs = torch.zeros_like(candidates)
            pairs.scatter_(-1, torch.topk(box_metric, k, dim=-1).indices, True)
            pairs &= candidates
            mask_iou = torch.zeros_like(ciou)
            b, g, a = pairs.nonzero(as_tuple=True)
            if len(b):
                mask_iou[b, g, a] = _mask_iou(pd_coef, proto, pd_bboxes * scale[:, None], gt_masks, b, g, a)
            return torch.where(candidates, (ciou + mask_iou) / 2, ciou)

        return self._assign(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, refine)


def _mask_iou(pd_coef, proto, boxes, gt_masks, b, g, a) -> torch.Tensor:
    """IoU of predicted masks (logit > 0, cropped to their box) with gt masks for the pairs (image ``b``, gt
    ``g``, anchor ``a``); ``boxes`` (B, A, 4) in prototype pixels."""
    _, nm, hm, wm = proto.shape
    out = torch.zeros(len(b), dtype=boxes.dtype, device=boxes.device)
    cols = torch.arange(wm, device=boxes.device, dtype=boxes.dtype)[None, None, :]
    rows = torch.arange(hm, device=boxes.device, dtype=boxes.dtype)[None, :, None]
    for i in torch.unique(b).tolist():
        sel = torch.nonzero(b == i).squeeze(1)
        for part in sel.split(512):  # at most 512 (Hm, Wm) masks at a time
            ai, gi = a[part], g[part]
            pred = (pd_coef[i, ai] @ proto[i].reshape(nm, -1)).view(-1, hm, wm) > 0
            x1, y1, x2, y2 = boxes[i, ai, :, None, None].unbind(1)
            pred &= (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
            gt = gt_masks[i, gi].bool()
            inter = (pred & gt).sum((1, 2)).to(boxes.dtype)
            union = (pred | gt).sum((1, 2)).to(boxes.dtype)
            out[part] = inter / union.clamp(min=1)
    return out
