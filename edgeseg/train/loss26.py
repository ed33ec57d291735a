"""YOLO26-seg training loss: two branches (one-to-many, one-to-one), each with box (CIoU), seg (prototype
masks), cls (BCE), an L1 box-distance term in place of DFL and a semantic-segmentation term; branch weights that
move from the one-to-many to the one-to-one branch over the epochs.

``EndToEndSegLoss(nc)(preds, batch) -> (total, items)``

- ``preds``: what :class:`edgeseg.nn.head26.Segment26Head` returns in training mode, ``{"one2many": {...},
  "one2one": {...}}``, each with ``boxes`` (B, 4, A) l, t, r, b distances in stride units (raw), ``scores``
  (B, nc, A) logits, ``mask_coefficient`` (B, nm, A), ``proto`` = prototypes (B, nm, Hm, Wm) or (prototypes,
  semantic logits (B, nc, Hs, Ws)), and ``feats`` (the neck maps: only their sizes are read).
- ``batch``: as for :class:`edgeseg.train.loss.SegmentationLoss` (``batch_idx``, ``cls``, ``bboxes``,
  ``masks``). The semantic target is made from ``masks`` and ``cls``: at a pixel of instance k the one-hot of
  its class, zero on the background.
- ``items`` = detached ``[box, seg, cls, l1, sem]`` of the one-to-one branch, gains applied (seg and sem take
  the box gain, l1 the ``dfl`` gain); ``total = B * (o2m * sum(one2many terms) + o2o * sum(one2one terms))``.
- :meth:`EndToEndSegLoss.set_epoch` sets the branch weights of an epoch: o2m = 0.1 + 0.7 * max(1 - e / (E - 1),
  0), o2o = 1 - o2m (0.8 / 0.2 in the first epoch, 0.1 / 0.9 in the last).

Numerics mirror Ultralytics 8.4.190's ``E2ELoss`` over two ``SegmentLoss26`` (validated against the stored
reference outputs in ``tests/test_loss26_parity.py``); this is an independent implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from edgeseg.nn.head import dist2bbox, make_anchors

from .assigner import SegTaskAlignedAssigner
from .boxes import bbox_iou
from .loss import gt_masks_at, mask_loss, padded_targets

__all__ = ["BRANCH_TOPK", "LOSS_NAMES_26", "BranchLoss26", "EndToEndSegLoss", "bce_dice_loss", "semantic_targets"]

LOSS_NAMES_26 = ("box_loss", "seg_loss", "cls_loss", "l1_loss", "sem_loss")
BRANCH_TOPK = {"one2many": (10, 10), "one2one": (7, 1)}  # assigner (topk, topk2) per branch
O2M_START, O2M_FINAL = 0.8, 0.1


def semantic_targets(batch: Mapping, nc: int, masks: torch.Tensor, bs: int, overlap_mask: bool) -> torch.Tensor:
    """(B, nc, Hm, Wm) float: 1 where a pixel belongs to an instance of that class, 0 on the background.

    ``masks``: overlap index maps (B, Hm, Wm) (0 background, k = k-th instance of the image) or, without
    ``overlap_mask``, per-instance masks (N, Hm, Wm) (a pixel covered by instances of two classes is 1 in both).
    """
    img_idx = batch["batch_idx"].to(masks.device).reshape(-1).long()
    cls = batch["cls"].to(masks.device).reshape(-1).long()
    hm, wm = masks.shape[-2:]
    out = torch.zeros((bs, nc, hm, wm), dtype=torch.float32, device=masks.device)
    for i in range(bs):
        cls_i = cls[img_idx == i]
        if not len(cls_i):
            continue
        if overlap_mask:
            index = masks[i].long()  # 0 background, k -> instance k - 1
            table = torch.cat((torch.full((1,), -1, dtype=torch.long, device=masks.device), cls_i))
            pixel_cls = table[index.clamp(0, len(cls_i))]
            fg = pixel_cls >= 0
            out[i] = F.one_hot(pixel_cls.clamp(min=0), nc).permute(2, 0, 1).float() * fg
        else:
            inst = masks[img_idx == i] > 0.5  # (n_i, Hm, Wm)
            for c in torch.unique(cls_i).tolist():
                out[i, c] = inst[cls_i == c].any(0).float()
    return out


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, w_bce: float = 0.5, w_dice: float = 0.5) -> torch.Tensor:
    """``w_bce * BCE-with-logits (mean) + w_dice * Dice``; the target is resized to the logits (nearest). Dice is
    the mean over images and classes of ``1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)``, p = sigmoid(logits)."""
    if tuple(target.shape[-2:]) != tuple(logits.shape[-2:]):
        target = F.interpolate(target, tuple(logits.shape[-2:]), mode="nearest")
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = logits.sigmoid()
    dice = 1.0 - (2.0 * (p * target).sum((2, 3)) + 1.0) / (p.sum((2, 3)) + target.sum((2, 3)) + 1.0)
    return w_bce * bce + w_dice * dice.mean(1).mean()


class BranchLoss26:
    """One YOLO26 branch's loss: ``loss(branch_preds, batch) -> (vector, items)``, ``vector`` = [box, seg, cls,
    l1, sem] with gains applied and gradient (not multiplied by the batch size), ``items`` its detached copy."""

    def __init__(
        self,
        nc: int,
        strides: Sequence[float] = (8, 16, 32),
        box: float = 7.5,
        cls: float = 0.5,
        dfl: float = 1.5,
        overlap_mask: bool = True,
        topk: int = 10,
        topk2: int | None = None,
        alpha: float = 0.5,
        beta: float = 6.0,
        eps: float = 1e-9,
    ):
        if int(nc) != nc or nc < 1:
            raise ValueError(f"nc must be a positive integer, got {nc!r}")
        strides = [float(s) for s in strides]
        if not strides or any(s <= 0 for s in strides):
            raise ValueError(f"strides must be a non-empty list of positive numbers, got {strides}")
        for name, gain in (("box", box), ("cls", cls), ("dfl", dfl)):
            if gain < 0:
                raise ValueError(f"{name} gain must be >= 0, got {gain}")
        self.nc = int(nc)
        self.strides = strides
        self.gains = (float(box), float(cls), float(dfl))
        self.overlap_mask = bool(overlap_mask)
        self.assigner = SegTaskAlignedAssigner.from_strides(
            strides, num_classes=self.nc, topk=topk, topk2=topk2, alpha=alpha, beta=beta, eps=eps
        )

    def __call__(self, preds: Mapping[str, Any], batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
        boxes, scores, coefs, proto, semantic, sizes = self._unpack(preds)
        bs, _, n_anchors = scores.shape
        device, dtype = scores.device, scores.dtype
        pred_dist = boxes.permute(0, 2, 1).contiguous()  # (B, A, 4) ltrb, stride units
        pred_scores = scores.permute(0, 2, 1).contiguous()  # (B, A, nc)
        pred_coef = coefs.permute(0, 2, 1).contiguous()  # (B, A, nm)

        img_hw = torch.tensor(sizes[0], device=device, dtype=dtype) * self.strides[0]  # (h, w) px
        anchors, stride_t = make_anchors(sizes, self.strides, 0.5, dtype=dtype, device=device)
        if anchors.shape[0] != n_anchors:
            raise ValueError(f"the feature sizes give {anchors.shape[0]} anchors, the outputs have {n_anchors}")
        gt_labels, gt_bboxes, mask_gt = padded_targets(batch, bs, img_hw, device, dtype)
        masks = gt_masks_at(batch, proto)
        pred_bboxes = dist2bbox(pred_dist, anchors, xywh=False)  # xyxy, stride units

        res = self.assigner(
            pred_scores.detach().sigmoid(),
            (pred_bboxes.detach() * stride_t).to(gt_bboxes.dtype),
            anchors * stride_t,
            gt_labels,
            gt_bboxes,
            mask_gt,
            pd_coef=pred_coef.detach(),
            proto=proto.detach(),
            gt_masks=self._per_gt_masks(masks, batch, bs, gt_bboxes.shape[1]),
            mask_scale=torch.tensor([[proto.shape[-1] / float(img_hw[1])]], device=device, dtype=dtype),
        )
        target_bboxes, target_scores, fg, gt_idx = res.target_bboxes, res.target_scores, res.fg_mask, res.target_gt_idx
        score_sum = target_scores.sum().clamp(min=1)

        zero = (pred_dist * 0).sum()
        loss_cls = (
            F.binary_cross_entropy_with_logits(pred_scores, target_scores.to(dtype), reduction="none").sum() / score_sum
        )
        if fg.any():
            loss_box, loss_l1 = self._box_losses(
                pred_dist,
                pred_bboxes,
                anchors,
                stride_t,
                target_bboxes / stride_t,
                target_scores,
                score_sum,
                fg,
                img_hw,
            )
            loss_seg = mask_loss(fg, masks, gt_idx, target_bboxes, batch, proto, pred_coef, img_hw, self.overlap_mask)
            if semantic is not None:
                target = semantic_targets(batch, self.nc, masks, bs, self.overlap_mask).to(semantic.dtype)
                loss_sem = bce_dice_loss(semantic, target)
            else:
                loss_sem = zero
        else:
            loss_box, loss_l1 = zero, zero
            loss_seg = (proto * 0).sum() + (coefs * 0).sum()
            loss_sem = (semantic * 0).sum() if semantic is not None else zero

        box_gain, cls_gain, dfl_gain = self.gains
        vector = torch.stack(
            (loss_box * box_gain, loss_seg * box_gain, loss_cls * cls_gain, loss_l1 * dfl_gain, loss_sem * box_gain)
        )
        return vector, vector.detach()

    # ---------------------------------------------------------------- helpers
    def _unpack(self, preds: Mapping[str, Any]):
        for key in ("boxes", "scores", "mask_coefficient", "proto", "feats"):
            if key not in preds:
                raise ValueError(f"branch outputs are missing '{key}'")
        boxes, scores, coefs = (preds[k].float() for k in ("boxes", "scores", "mask_coefficient"))
        proto = preds["proto"]
        semantic = None
        if isinstance(proto, (tuple, list)):
            if len(proto) != 2:
                raise ValueError("proto must be prototypes or (prototypes, semantic logits)")
            proto, semantic = proto[0].float(), proto[1].float()
        else:
            proto = proto.float()
        sizes = [tuple(int(v) for v in f.shape[-2:]) for f in preds["feats"]]
        if len(sizes) != len(self.strides):
            raise ValueError(f"expected {len(self.strides)} feature levels, got {len(sizes)}")
        bs = scores.shape[0]
        if scores.ndim != 3 or scores.shape[1] != self.nc:
            raise ValueError(f"scores must be (B, {self.nc}, A), got {tuple(scores.shape)}")
        if tuple(boxes.shape) != (bs, 4, scores.shape[2]):
            raise ValueError(f"boxes must be ({bs}, 4, {scores.shape[2]}), got {tuple(boxes.shape)}")
        if coefs.ndim != 3 or coefs.shape[0] != bs or coefs.shape[2] != scores.shape[2]:
            raise ValueError(f"mask_coefficient must be ({bs}, nm, {scores.shape[2]}), got {tuple(coefs.shape)}")
        if proto.ndim != 4 or proto.shape[0] != bs or proto.shape[1] != coefs.shape[1]:
            raise ValueError(f"proto must be ({bs}, nm={coefs.shape[1]}, Hm, Wm), got {tuple(proto.shape)}")
        if semantic is not None and (semantic.ndim != 4 or semantic.shape[:2] != (bs, self.nc)):
            raise ValueError(f"semantic logits must be ({bs}, {self.nc}, H, W), got {tuple(semantic.shape)}")
        return boxes, scores, coefs, proto, semantic, sizes

    def _per_gt_masks(self, masks: torch.Tensor, batch: Mapping, bs: int, n_max: int) -> torch.Tensor:
        """(B, M, Hm, Wm) bool: each padded gt's mask."""
        hm, wm = masks.shape[-2:]
        out = torch.zeros((bs, n_max, hm, wm), dtype=torch.bool, device=masks.device)
        if not n_max:
            return out
        if self.overlap_mask:
            ks = torch.arange(1, n_max + 1, device=masks.device).view(1, -1, 1, 1)
            return masks.long()[:, None] == ks
        img_idx = batch["batch_idx"].to(masks.device).reshape(-1).long()
        for i in range(bs):
            inst = masks[img_idx == i] > 0.5
            out[i, : len(inst)] = inst
        return out

    def _box_losses(self, pred_dist, pred_bboxes, anchors, stride_t, target_bboxes, target_scores, score_sum, fg, hw):
        """CIoU loss and the L1 loss of the box distances (pixels, divided by the image width or height)."""
        weight = target_scores.sum(-1)[fg].unsqueeze(-1)  # (n_fg, 1)
        ciou = bbox_iou(pred_bboxes[fg], target_bboxes[fg], xywh=False, ciou=True)
        loss_box = ((1.0 - ciou) * weight).sum() / score_sum
        top_left, bottom_right = target_bboxes.chunk(2, -1)
        target_ltrb = torch.cat((anchors - top_left, bottom_right - anchors), -1)  # not clamped
        norm = torch.stack((hw[1], hw[0], hw[1], hw[0]))
        target_px = target_ltrb * stride_t / norm
        pred_px = pred_dist * stride_t / norm
        l1 = F.l1_loss(pred_px[fg], target_px[fg], reduction="none").mean(-1, keepdim=True) * weight
        return loss_box, l1.sum() / score_sum


class EndToEndSegLoss:
    """YOLO26-seg's criterion over both branches (see the module docstring)."""

    names = LOSS_NAMES_26

    def __init__(
        self,
        nc: int,
        strides: Sequence[float] = (8, 16, 32),
        epochs: int = 100,
        box: float = 7.5,
        cls: float = 0.5,
        dfl: float = 1.5,
        overlap_mask: bool = True,
        alpha: float = 0.5,
        beta: float = 6.0,
    ):
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        self.epochs = int(epochs)
        self.branches = {
            name: BranchLoss26(nc, strides, box, cls, dfl, overlap_mask, topk=topk, topk2=topk2, alpha=alpha, beta=beta)
            for name, (topk, topk2) in BRANCH_TOPK.items()
        }
        self.o2m, self.o2o = O2M_START, 1 - O2M_START
        self.last_vectors: dict[str, torch.Tensor] = {}

    @classmethod
    def from_hyp(cls, hyp: Mapping) -> EndToEndSegLoss:
        """Build from a hyperparameter mapping (keys nc, stride, epochs, box, cls, dfl, overlap_mask, alpha, beta)."""
        if "nc" not in hyp:
            raise ValueError("hyp must contain 'nc'")
        kwargs = {k: hyp[k] for k in ("epochs", "box", "cls", "dfl", "overlap_mask", "alpha", "beta") if k in hyp}
        if "stride" in hyp:
            kwargs["strides"] = hyp["stride"]
        return cls(int(hyp["nc"]), **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """The branch weights of 0-based ``epoch`` (Ultralytics' ``E2ELoss.update`` called once per finished epoch)."""
        if epoch <= 0:
            self.o2m, self.o2o = O2M_START, 1 - O2M_START
            return
        self.o2m = max(1 - epoch / max(self.epochs - 1, 1), 0) * (O2M_START - O2M_FINAL) + O2M_FINAL
        self.o2o = max(1 - self.o2m, 0)

    def __call__(self, preds: Mapping[str, Any], batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(preds, Mapping) or set(preds) != set(self.branches):
            raise ValueError("preds must be the YOLO26 head's training outputs {'one2many': ..., 'one2one': ...}")
        bs = preds["one2one"]["scores"].shape[0]
        many, _ = self.branches["one2many"](preds["one2many"], batch)
        one, items = self.branches["one2one"](preds["one2one"], batch)
        self.last_vectors = {"one2many": many.detach(), "one2one": one.detach()}
        total = (many * self.o2m + one * self.o2o) * bs
        return total.sum(), items
