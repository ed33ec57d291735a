"""Parity of edgeseg.train (assigner + segmentation loss) with the Ultralytics 8.4.190 reference fixtures,
plus synthetic edge cases (no gts, empty images, small gts, gradients, mask formats)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edgeseg.nn.head import dist2bbox, make_anchors
from edgeseg.train.assigner import TaskAlignedAssigner
from edgeseg.train.boxes import bbox2dist, bbox_iou, xywh2xyxy, xyxy2xywh
from edgeseg.train.loss import SegmentationLoss, crop_to_boxes
from shared_paths import SHARED

FIXTURES = SHARED / "fixtures"
MODELS = ["yolov8n-seg", "yolo11n-seg"]


def _load_case(model: str) -> dict:
    batch_file = FIXTURES / "loss_case_batch.pt"
    case_file = FIXTURES / f"loss_case_{model}_bntrain.pt"
    if not (batch_file.is_file() and case_file.is_file()):
        pytest.skip(f"shared fixtures for {model} not available")
    d = torch.load(batch_file, weights_only=True)
    d.update(torch.load(case_file, weights_only=True))
    return d


def _pd_scores(feats, reg_max: int = 16) -> torch.Tensor:
    bs = feats[0].shape[0]
    flat = torch.cat([f.reshape(bs, f.shape[1], -1) for f in feats], 2)
    return flat[:, 4 * reg_max :].permute(0, 2, 1).sigmoid()


# --------------------------------------------------------------------------- fixture parity
@pytest.mark.parametrize("model", MODELS)
def test_assigner_matches_reference(model):
    d = _load_case(model)
    a, hyp = d["assigner"], d["hyp"]
    assigner = TaskAlignedAssigner.from_strides(
        hyp["stride"], num_classes=hyp["nc"], topk=hyp["topk"], alpha=hyp["alpha"], beta=hyp["beta"], eps=hyp["eps"]
    )
    res = assigner(
        _pd_scores(d["feats"], hyp["reg_max"]),
        a["pd_bboxes"],
        a["anc_points"],
        a["gt_labels"],
        a["gt_bboxes"],
        a["mask_gt"],
    )
    fg = a["fg_mask"]
    assert fg.any()
    assert torch.equal(res.fg_mask, fg)
    assert torch.equal(res.target_gt_idx[fg], a["target_gt_idx"][fg])
    assert torch.equal(res.target_labels[fg], a["target_labels"][fg])
    torch.testing.assert_close(res.target_scores, a["target_scores"], atol=1e-5, rtol=0)
    torch.testing.assert_close(res.target_bboxes, a["target_bboxes"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("model", MODELS)
def test_loss_matches_reference(model):
    d = _load_case(model)
    loss = SegmentationLoss.from_hyp(d["hyp"])
    total, items = loss((d["feats"], d["pred_masks"], d["proto"]), d)
    assert items.shape == (4,) and not items.requires_grad
    torch.testing.assert_close(items, d["loss_items"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(total, d["loss_total"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("model", MODELS)
def test_loss_reference_per_instance_masks(model):
    """overlap_mask=False with per-instance masks derived from the overlap map gives the same loss."""
    d = _load_case(model)
    idx = d["batch_idx"].long()
    inst = []
    for j in range(len(idx)):
        k = int((idx[:j] == idx[j]).sum()) + 1  # 1-based position of instance j inside its image
        inst.append(d["masks"][idx[j]] == k)
    batch = dict(d, masks=torch.stack(inst).to(torch.uint8))
    hyp = dict(d["hyp"], overlap_mask=False)
    _, items = SegmentationLoss.from_hyp(hyp)((d["feats"], d["pred_masks"], d["proto"]), batch)
    torch.testing.assert_close(items, d["loss_items"], atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------- synthetic helpers
NC, NM, REG = 3, 4, 16
STRIDES = (8, 16, 32)
IMG = 64


def _preds(bs: int = 2, seed: int = 0, device="cpu", requires_grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(bs, 4 * REG + NC, IMG // s, IMG // s, generator=g).to(device) for s in STRIDES]
    n_anchors = sum((IMG // s) ** 2 for s in STRIDES)
    pred_masks = torch.randn(bs, NM, n_anchors, generator=g).to(device)
    proto = torch.randn(bs, NM, IMG // 4, IMG // 4, generator=g).to(device)
    if requires_grad:
        for t in (*feats, pred_masks, proto):
            t.requires_grad_(True)
    return feats, pred_masks, proto


def _batch(boxes_px, img_idx, cls, bs: int = 2, device="cpu"):
    """Normalised-xywh batch with an overlap map that fills each gt box (in order, later ones on top)."""
    hm = IMG // 4
    masks = torch.zeros(bs, hm, hm, dtype=torch.uint8)
    per_image = [0] * bs
    for (x1, y1, x2, y2), i in zip(boxes_px, img_idx):
        per_image[i] += 1
        masks[i, int(y1) // 4 : int(y2 + 3) // 4, int(x1) // 4 : int(x2 + 3) // 4] = per_image[i]
    xyxy = torch.tensor(boxes_px, dtype=torch.float32).reshape(-1, 4)
    return {
        "batch_idx": torch.tensor(img_idx, dtype=torch.float32, device=device),
        "cls": torch.tensor(cls, dtype=torch.float32, device=device).reshape(-1, 1),
        "bboxes": (xyxy2xywh(xyxy) / IMG).to(device),
        "masks": masks.to(device),
    }


def _devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# --------------------------------------------------------------------------- synthetic tests
@pytest.mark.parametrize("device", _devices())
def test_no_gts_in_batch(device):
    preds = _preds(device=device, requires_grad=True)
    batch = _batch([], [], [], device=device)
    total, items = SegmentationLoss(NC)(preds, batch)
    assert items.device.type == torch.device(device).type
    assert items[0] == 0 and items[1] == 0 and items[3] == 0
    bs = preds[0][0].shape[0]
    scores = torch.cat([f.reshape(bs, f.shape[1], -1) for f in preds[0]], 2)[:, 4 * REG :]
    expected_cls = 0.5 * F.binary_cross_entropy_with_logits(scores, torch.zeros_like(scores), reduction="sum")
    torch.testing.assert_close(items[2], expected_cls.detach(), atol=1e-4, rtol=1e-5)
    total.backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (*preds[0], preds[1], preds[2]))


def test_image_without_instances_and_gradients():
    preds = _preds(bs=3, requires_grad=True)
    batch = _batch([(8, 8, 40, 48), (20, 4, 60, 30), (2, 30, 30, 62)], [1, 1, 2], [0, 2, 1], bs=3)
    total, items = SegmentationLoss(NC)(preds, batch)
    assert torch.isfinite(items).all() and (items > 0).all()
    torch.testing.assert_close(total.detach(), items.sum() * 3)
    total.backward()
    feats, pred_masks, proto = preds
    for t in (*feats, pred_masks, proto):
        assert t.grad is not None and torch.isfinite(t.grad).all()
    assert feats[0].grad.abs().sum() > 0 and pred_masks.grad.abs().sum() > 0 and proto.grad.abs().sum() > 0
    # image 0 has no instances: its mask coefficients and prototypes get no gradient
    assert pred_masks.grad[0].abs().sum() == 0 and proto.grad[0].abs().sum() == 0


def test_mask_resolution_is_resized():
    preds = _preds()
    batch = _batch([(8, 8, 40, 48), (20, 4, 60, 30)], [0, 1], [0, 2])
    _, ref = SegmentationLoss(NC)(preds, batch)
    up = dict(batch, masks=batch["masks"].repeat_interleave(4, 1).repeat_interleave(4, 2))
    _, items = SegmentationLoss(NC)(preds, up)
    torch.testing.assert_close(items, ref)


def _assign_one(box, **kwargs):
    """Assign a single gt against predictions that equal it everywhere; returns the fg count."""
    feats = [torch.zeros(1, 1, IMG // s, IMG // s) for s in STRIDES]
    anchors, stride_t = make_anchors(feats, STRIDES)
    n_anchors = anchors.shape[0]
    gt = torch.tensor(box, dtype=torch.float32).view(1, 1, 4)
    assigner = TaskAlignedAssigner(num_classes=NC, **kwargs)
    res = assigner(
        torch.full((1, n_anchors, NC), 0.5),
        gt.expand(1, n_anchors, 4).clone(),
        anchors * stride_t,
        torch.zeros(1, 1, 1),
        gt,
        torch.ones(1, 1, 1),
    )
    return res


def test_small_gt_is_widened_for_candidate_test():
    # a 3x3 px gt centred at (6, 6) holds no anchor centre (centres of all levels lie on multiples of 4)
    box = (4.5, 4.5, 7.5, 7.5)
    res = _assign_one(box)
    # widened to 16x16 about its centre, [-2, 14]: stride-8 centres 4, 12 (2x2) and the stride-16 centre 8
    assert int(res.fg_mask.sum()) == 5
    assert torch.equal(res.target_bboxes[res.fg_mask][0], torch.tensor(box))  # targets keep the real box
    assert _assign_one(box, small_gt_threshold=0.0).fg_mask.sum() == 0  # rule disabled: unassignable


def test_small_gt_rule_threshold_matches_84():
    # 8.4: only sides shorter than the smallest stride (8 px) are widened, to the next stride (16 px).
    box = (8.0, 8.0, 20.0, 20.0)  # 12 px: candidates are the stride-8 centre (12, 12) and stride-32 (16, 16)
    assert int(_assign_one(box, topk=20).fg_mask.sum()) == 2
    widened = _assign_one(box, topk=20, small_gt_threshold=16.0)  # [6, 22]: 4 + 1 + 1 centres
    assert int(widened.fg_mask.sum()) == 6
    a = TaskAlignedAssigner.from_strides([8, 16, 32])
    assert (a.small_gt_threshold, a.small_gt_size) == (8.0, 16.0)


def test_small_gt_loss_is_finite():
    feats, pred_masks, proto = _preds()
    for f in feats:  # predict small boxes (1 grid cell per side) so the CIoU with tiny gts is positive
        f[:, 1 : 4 * REG : REG] += 10.0
    preds = (feats, pred_masks, proto)
    for t in (*feats, pred_masks, proto):
        t.requires_grad_(True)
    batch = _batch([(4.5, 4.5, 7.5, 7.5), (30, 30, 33, 45)], [0, 1], [1, 0])
    total, items = SegmentationLoss(NC)(preds, batch)
    assert torch.isfinite(items).all() and items[0] > 0 and items[1] > 0
    total.backward()
    assert all(torch.isfinite(t.grad).all() for t in (*preds[0], preds[1], preds[2]))


# --------------------------------------------------------------------------- geometry
def test_box_helpers():
    xyxy = torch.tensor([[1.0, 2.0, 5.0, 10.0], [0.0, 0.0, 3.0, 3.0]])
    torch.testing.assert_close(xywh2xyxy(xyxy2xywh(xyxy)), xyxy)
    ciou = bbox_iou(xyxy, xyxy)
    torch.testing.assert_close(ciou, torch.ones(2, 1), atol=1e-6, rtol=0)
    far = bbox_iou(xyxy[:1], torch.tensor([[20.0, 20.0, 24.0, 28.0]]))
    assert far.item() < 0  # disjoint boxes: CIoU goes negative through the centre-distance term
    anchors = torch.tensor([[3.0, 6.0], [1.5, 1.5]])
    dist = bbox2dist(anchors, xyxy, 100.0)
    torch.testing.assert_close(dist2bbox(dist, anchors), xyxy)
    assert bbox2dist(anchors, xyxy, 2.0).max() <= 2.0


def test_make_anchors_layout():
    feats = [torch.zeros(1, 1, 2, 3), torch.zeros(1, 1, 1, 1)]
    pts, strides = make_anchors(feats, [8, 16])
    assert pts.shape == (7, 2) and strides.shape == (7, 1)
    torch.testing.assert_close(pts[:4], torch.tensor([[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5]]))
    assert strides[:6].eq(8).all() and strides[6].item() == 16


def test_crop_keeps_half_open_columns():
    masks = torch.ones(1, 4, 6)
    out = crop_to_boxes(masks, torch.tensor([[1.0, 0.5, 3.0, 2.0]]))
    assert out[0].sum(0).nonzero().flatten().tolist() == [1, 2]  # columns 1 <= c < 3
    assert out[0].sum(1).nonzero().flatten().tolist() == [1]  # rows 0.5 <= r < 2


def test_bad_arguments():
    with pytest.raises(ValueError):
        SegmentationLoss(0)
    with pytest.raises(ValueError):
        SegmentationLoss(NC, reg_max=1)
    with pytest.raises(ValueError):
        TaskAlignedAssigner(num_classes=NC, topk=0)
    loss = SegmentationLoss(NC)
    feats, pred_masks, proto = _preds()
    batch = _batch([(8, 8, 40, 48)], [0], [0])
    with pytest.raises(ValueError):
        loss((feats[:2], pred_masks, proto), batch)
    with pytest.raises(ValueError):
        loss((feats, pred_masks[:, :, :-1], proto), batch)
    with pytest.raises(ValueError):
        loss((feats, pred_masks, proto), {k: v for k, v in batch.items() if k != "bboxes"})
    with pytest.raises(ValueError):
        loss((feats, pred_masks, proto), dict(batch, batch_idx=torch.tensor([5.0])))
