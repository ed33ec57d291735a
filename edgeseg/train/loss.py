"""YOLOv8-seg / YOLO11-seg training loss: box (CIoU), seg (prototype masks), cls (BCE) and DFL.

``SegmentationLoss(nc)(preds, batch) -> (total, items)``

- ``preds = (feats, pred_masks, proto)``: ``feats`` one ``(B, 4*reg_max + nc, H, W)`` map per stride
  (box channels side-major: ``side*reg_max + bin`` for sides l, t, r, b; then class logits),
  ``pred_masks`` ``(B, nm, A)`` mask coefficients, ``proto`` ``(B, nm, Hm, Wm)`` prototypes.
- ``batch``: ``batch_idx`` (N,), ``cls`` (N, 1) or (N,), ``bboxes`` (N, 4) normalised xywh and ``masks``:
  an overlap index map ``(B, Hm, Wm)`` (0 background, k = k-th instance of that image, 1-based) when
  ``overlap_mask`` else per-instance binary masks ``(N, Hm, Wm)``. Masks at another resolution are
  resized to the prototype resolution (nearest).
- ``items`` = detached ``[box, seg, cls, dfl]`` with gains applied (the seg term takes the box gain);
  ``total = items.sum() * B`` with gradient.

Numerics mirror Ultralytics 8.4's ``v8SegmentationLoss`` (validated against stored reference outputs in
``tests/test_loss_parity.py``); this is an independent implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from edgeseg.nn.head import dist2bbox, make_anchors

from .assigner import TaskAlignedAssigner
from .boxes import bbox2dist, bbox_iou, xywh2xyxy, xyxy2xywh

__all__ = ["SegmentationLoss", "crop_to_boxes", "dfl_loss", "gt_masks_at", "mask_loss", "padded_targets"]


def dfl_loss(pred_dist: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distribution focal loss, mean over the 4 sides: ``(n, 4, reg_max)`` logits, ``(n, 4)`` targets -> ``(n, 1)``.

    The continuous target ``y`` in ``[0, reg_max - 1)`` is split between its two neighbouring bins
    ``floor(y)`` and ``floor(y) + 1`` with weights ``floor(y) + 1 - y`` and ``y - floor(y)``.
    """
    n, sides, bins = pred_dist.shape
    left = target.long()
    right = left + 1
    w_left = right - target
    w_right = 1 - w_left
    logits = pred_dist.reshape(-1, bins)
    ce_left = F.cross_entropy(logits, left.view(-1), reduction="none").view(n, sides)
    ce_right = F.cross_entropy(logits, right.view(-1), reduction="none").view(n, sides)
    return (ce_left * w_left + ce_right * w_right).mean(-1, keepdim=True)


def crop_to_boxes(masks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Zero ``(n, H, W)`` masks outside ``(n, 4)`` xyxy boxes (pixel units): keeps ``x1 <= col < x2``, ``y1 <= row < y2``."""
    _n, h, w = masks.shape
    x1, y1, x2, y2 = boxes[:, :, None, None].unbind(1)  # each (n, 1, 1)
    cols = torch.arange(w, device=masks.device, dtype=boxes.dtype)[None, None, :]
    rows = torch.arange(h, device=masks.device, dtype=boxes.dtype)[None, :, None]
    keep = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
    return masks * keep


class SegmentationLoss:
    """Callable YOLO segmentation loss (see module docstring)."""

    def __init__(
        self,
        nc: int,
        reg_max: int = 16,
        strides: Sequence[float] = (8, 16, 32),
        box: float = 7.5,
        cls: float = 0.5,
        dfl: float = 1.5,
        overlap_mask: bool = True,
        topk: int = 10,
        alpha: float = 0.5,
        beta: float = 6.0,
        assigner: TaskAlignedAssigner | None = None,
    ):
        if int(nc) != nc or nc < 1:
            raise ValueError(f"nc must be a positive integer, got {nc!r}")
        if int(reg_max) != reg_max or reg_max < 2:
            raise ValueError(f"reg_max must be an integer >= 2, got {reg_max!r}")
        strides = [float(s) for s in strides]
        if not strides or any(s <= 0 for s in strides):
            raise ValueError(f"strides must be a non-empty list of positive numbers, got {strides}")
        for name, gain in (("box", box), ("cls", cls), ("dfl", dfl)):
            if gain < 0:
                raise ValueError(f"{name} gain must be >= 0, got {gain}")
        self.nc = int(nc)
        self.reg_max = int(reg_max)
        self.strides = strides
        self.gains = (float(box), float(cls), float(dfl))
        self.overlap_mask = bool(overlap_mask)
        self.assigner = assigner or TaskAlignedAssigner.from_strides(
            strides, num_classes=self.nc, topk=topk, alpha=alpha, beta=beta
        )
        if self.assigner.num_classes != self.nc:
            raise ValueError(f"assigner.num_classes ({self.assigner.num_classes}) != nc ({self.nc})")

    @classmethod
    def from_hyp(cls, hyp: Mapping) -> SegmentationLoss:
        """Build from a hyperparameter mapping (keys nc, reg_max, stride, box, cls, dfl, overlap_mask, topk, alpha, beta)."""
        if "nc" not in hyp:
            raise ValueError("hyp must contain 'nc'")
        kwargs = {
            k: hyp[k] for k in ("reg_max", "box", "cls", "dfl", "overlap_mask", "topk", "alpha", "beta") if k in hyp
        }
        if "stride" in hyp:
            kwargs["strides"] = hyp["stride"]
        return cls(int(hyp["nc"]), **kwargs)

    # ------------------------------------------------------------------ public
    def __call__(self, preds, batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
        feats, pred_masks, proto = self._unpack(preds)
        bs = feats[0].shape[0]
        device = feats[0].device
        n_box = 4 * self.reg_max

        flat = torch.cat([f.reshape(bs, n_box + self.nc, -1) for f in feats], 2)
        pred_distri = flat[:, :n_box].permute(0, 2, 1).contiguous()  # (B, A, 4*reg_max)
        pred_scores = flat[:, n_box:].permute(0, 2, 1).contiguous()  # (B, A, nc)
        pred_coef = pred_masks.permute(0, 2, 1).contiguous()  # (B, A, nm)
        n_anchors = pred_scores.shape[1]
        if pred_coef.shape[1] != n_anchors:
            raise ValueError(f"pred_masks has {pred_coef.shape[1]} anchors, feats have {n_anchors}")
        dtype = pred_scores.dtype

        img_hw = torch.tensor(feats[0].shape[2:], device=device, dtype=dtype) * self.strides[0]  # (h, w) px
        anchors, stride_t = make_anchors(feats, self.strides, 0.5)

        gt_labels, gt_bboxes, mask_gt = padded_targets(batch, bs, img_hw, device, dtype)
        pred_bboxes = self._decode(anchors, pred_distri)  # xyxy, grid units

        res = self.assigner(
            pred_scores.detach().sigmoid(),
            (pred_bboxes.detach() * stride_t).to(gt_bboxes.dtype),
            anchors * stride_t,
            gt_labels,
            gt_bboxes,
            mask_gt,
        )
        target_bboxes, target_scores, fg, gt_idx = res.target_bboxes, res.target_scores, res.fg_mask, res.target_gt_idx
        score_sum = target_scores.sum().clamp(min=1)

        zero = (pred_distri * 0).sum()
        loss_cls = (
            F.binary_cross_entropy_with_logits(pred_scores, target_scores.to(dtype), reduction="none").sum() / score_sum
        )
        if fg.any():
            loss_box, loss_dfl = self._box_losses(
                pred_distri, pred_bboxes, anchors, target_bboxes / stride_t, target_scores, score_sum, fg
            )
            masks = gt_masks_at(batch, proto)
            loss_seg = mask_loss(fg, masks, gt_idx, target_bboxes, batch, proto, pred_coef, img_hw, self.overlap_mask)
        else:
            loss_box, loss_dfl = zero, zero
            loss_seg = (proto * 0).sum() + (pred_masks * 0).sum()

        box_gain, cls_gain, dfl_gain = self.gains
        loss = torch.stack((loss_box * box_gain, loss_seg * box_gain, loss_cls * cls_gain, loss_dfl * dfl_gain))
        return loss.sum() * bs, loss.detach()

    # ---------------------------------------------------------------- helpers
    def _unpack(self, preds):
        if not isinstance(preds, (tuple, list)) or len(preds) != 3:
            raise ValueError("preds must be (feats, pred_masks, proto)")
        feats, pred_masks, proto = preds
        feats = [f.float() for f in feats]
        if len(feats) != len(self.strides):
            raise ValueError(f"expected {len(self.strides)} feature levels, got {len(feats)}")
        bs = feats[0].shape[0]
        for f in feats:
            if f.ndim != 4 or f.shape[0] != bs or f.shape[1] != 4 * self.reg_max + self.nc:
                raise ValueError(
                    f"each feat must be (B={bs}, {4 * self.reg_max + self.nc}, H, W), got {tuple(f.shape)}"
                )
        if pred_masks.ndim != 3 or pred_masks.shape[0] != bs:
            raise ValueError(f"pred_masks must be (B, nm, A), got {tuple(pred_masks.shape)}")
        if proto.ndim != 4 or proto.shape[0] != bs or proto.shape[1] != pred_masks.shape[1]:
            raise ValueError(f"proto must be (B, nm={pred_masks.shape[1]}, Hm, Wm), got {tuple(proto.shape)}")
        return feats, pred_masks.float(), proto.float()

    def _decode(self, anchors, pred_distri):
        bs, n_anchors, _ = pred_distri.shape
        bins = torch.arange(self.reg_max, device=pred_distri.device, dtype=pred_distri.dtype)
        dist = pred_distri.view(bs, n_anchors, 4, self.reg_max).softmax(3).matmul(bins)
        return dist2bbox(dist, anchors, xywh=False)

    def _box_losses(self, pred_distri, pred_bboxes, anchors, target_bboxes, target_scores, score_sum, fg):
        weight = target_scores.sum(-1)[fg].unsqueeze(-1)  # (n_fg, 1)
        ciou = bbox_iou(pred_bboxes[fg], target_bboxes[fg], xywh=False, ciou=True)
        loss_box = ((1.0 - ciou) * weight).sum() / score_sum
        target_ltrb = bbox2dist(anchors, target_bboxes, self.reg_max - 1 - 0.01)
        dfl = dfl_loss(pred_distri[fg].view(-1, 4, self.reg_max), target_ltrb[fg]) * weight
        return loss_box, dfl.sum() / score_sum


def padded_targets(batch: Mapping, bs: int, img_hw: torch.Tensor, device, dtype):
    """Padded per-image gts of a batch: labels (B, M, 1), xyxy pixel boxes (B, M, 4), validity (B, M, 1)."""
    for key in ("batch_idx", "cls", "bboxes"):
        if key not in batch:
            raise ValueError(f"batch is missing '{key}'")
    img_idx = batch["batch_idx"].to(device).reshape(-1).long()
    cls = batch["cls"].to(device=device, dtype=dtype).reshape(-1, 1)
    boxes = batch["bboxes"].to(device=device, dtype=dtype).reshape(-1, 4)
    if not (len(img_idx) == len(cls) == len(boxes)):
        raise ValueError(f"batch_idx, cls, bboxes lengths differ: {len(img_idx)}, {len(cls)}, {len(boxes)}")
    if len(img_idx) and (img_idx.min() < 0 or img_idx.max() >= bs):
        raise ValueError(f"batch_idx values must be in [0, {bs}), got range [{img_idx.min()}, {img_idx.max()}]")
    counts = torch.bincount(img_idx, minlength=bs) if len(img_idx) else torch.zeros(bs, dtype=torch.long, device=device)
    n_max = int(counts.max()) if bs else 0
    labels = torch.zeros((bs, n_max, 1), dtype=dtype, device=device)
    xywh = torch.zeros((bs, n_max, 4), dtype=dtype, device=device)
    valid = torch.zeros((bs, n_max, 1), dtype=dtype, device=device)
    for i in range(bs):
        sel = img_idx == i
        n = int(counts[i])
        if n:
            labels[i, :n] = cls[sel]
            xywh[i, :n] = boxes[sel]
            valid[i, :n] = 1
    scale = img_hw[[1, 0, 1, 0]]
    return labels, xywh2xyxy(xywh * scale), valid


def gt_masks_at(batch: Mapping, proto: torch.Tensor) -> torch.Tensor:
    """The batch's ``masks`` (overlap index maps (B, H, W) or per-instance masks (N, H, W)) as float at the
    prototype resolution (nearest)."""
    if "masks" not in batch:
        raise ValueError("batch is missing 'masks'")
    masks = batch["masks"].to(proto.device).float()
    hm, wm = proto.shape[-2:]
    if masks.ndim != 3:
        raise ValueError(f"masks must be 3-D ((B or N), H, W), got shape {tuple(masks.shape)}")
    if tuple(masks.shape[-2:]) != (hm, wm):
        masks = F.interpolate(masks[None], (hm, wm), mode="nearest")[0]
    return masks


def mask_loss(fg, masks, gt_idx, target_bboxes, batch, proto, pred_coef, img_hw, overlap_mask: bool) -> torch.Tensor:
    """Prototype mask loss over foreground anchors: per anchor, the mean over the prototype plane of the BCE of
    ``coef @ proto`` against its gt mask, inside the gt box, divided by the normalised box area; summed, divided
    by the number of foreground anchors."""
    _, _, hm, wm = proto.shape
    norm_boxes = target_bboxes / img_hw[[1, 0, 1, 0]]
    area = xyxy2xywh(norm_boxes)[..., 2:].prod(-1)  # (B, A) normalised box area
    mask_boxes = norm_boxes * torch.tensor([wm, hm, wm, hm], device=proto.device, dtype=norm_boxes.dtype)
    img_idx = batch["batch_idx"].to(proto.device).reshape(-1).long()

    total = (proto * 0).sum() + (pred_coef * 0).sum()
    for i in range(fg.shape[0]):
        fg_i = fg[i]
        if not fg_i.any():
            continue
        idx = gt_idx[i][fg_i]
        gt = (masks[i] == (idx + 1).view(-1, 1, 1)).float() if overlap_mask else masks[img_idx == i][idx]
        logits = torch.einsum("in,nhw->ihw", pred_coef[i][fg_i], proto[i])
        bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
        total = total + (crop_to_boxes(bce, mask_boxes[i][fg_i]).mean(dim=(1, 2)) / area[i][fg_i]).sum()
    return total / fg.sum()
