"""Parity of edgeseg's YOLO26-seg criterion (edgeseg.train.loss26) and its mask-aware assigner with Ultralytics
8.4.190's E2ELoss / SegmentLoss26 / SegTaskAlignedAssigner on the stored fixture (../shared/fixtures,
loss_case_yolo26n-seg_bntrain.pt: the real coco8 batch, raw outputs of yolo26n-seg-rand.pt in train mode), plus
edge cases (no gts, per-instance masks, gradients, the branch-weight schedule)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from edgeseg.train.assigner import SegTaskAlignedAssigner  # noqa: E402
from edgeseg.train.loss26 import BRANCH_TOPK, EndToEndSegLoss, bce_dice_loss, semantic_targets  # noqa: E402
from shared_paths import SHARED  # noqa: E402

FIXTURES = SHARED / "fixtures"
CASE = FIXTURES / "loss_case_yolo26n-seg_bntrain.pt"
BRANCHES = ("one2many", "one2one")


@pytest.fixture(scope="module")
def case() -> dict:
    if not (CASE.is_file() and (FIXTURES / "loss_case_batch.pt").is_file()):
        pytest.skip("the YOLO26 loss fixture in ../shared is not available")
    d = torch.load(FIXTURES / "loss_case_batch.pt", weights_only=True)
    d.update(torch.load(CASE, weights_only=True))
    return d


def _raw(d: dict) -> dict:
    feats = [torch.zeros(s) for s in d["feats_shapes"]]
    return {b: dict(d[b], proto=(d["proto"], d["semantic"]), feats=feats) for b in BRANCHES}


def _target_scores(a: dict, nc: int = 80) -> torch.Tensor:
    return F.one_hot(a["target_labels"], nc).float() * a["fg_mask"][..., None] * a["target_score_values"][..., None]


@pytest.mark.parametrize("branch", BRANCHES)
def test_assigner_matches_ultralytics(case, branch):
    a = case[f"assigner_{branch}"]
    topk, topk2 = BRANCH_TOPK[branch]
    assert (topk, topk2) == (a["topk"], a["topk2"])
    assigner = SegTaskAlignedAssigner.from_strides([8, 16, 32], num_classes=80, topk=topk, topk2=topk2)
    res = assigner(
        case[branch]["scores"].permute(0, 2, 1).sigmoid(),
        a["pd_bboxes"],
        a["anc_points"],
        a["gt_labels"],
        a["gt_bboxes"],
        a["mask_gt"],
        pd_coef=case[branch]["mask_coefficient"].permute(0, 2, 1),
        proto=case["proto"],
        gt_masks=a["gt_masks"],
        mask_scale=a["mask_scale"],
    )
    fg = a["fg_mask"]
    assert int(fg.sum()) == {"one2many": 122, "one2one": 13}[branch]
    assert torch.equal(res.fg_mask, fg)
    assert torch.equal(res.target_gt_idx[fg], a["target_gt_idx"][fg])
    assert torch.equal(res.target_labels[fg], a["target_labels"][fg])
    torch.testing.assert_close(res.target_scores, _target_scores(a), atol=1e-6, rtol=0)
    torch.testing.assert_close(res.target_bboxes, a["target_bboxes"], atol=1e-6, rtol=0)


def test_the_mask_iou_changes_the_assignment(case):
    """Without the mask term (plain CIoU overlaps) the one-to-many assignment differs from Ultralytics': the
    fixture exercises the mask-aware part."""
    from edgeseg.train.assigner import TaskAlignedAssigner

    a = case["assigner_one2many"]
    plain = TaskAlignedAssigner.from_strides([8, 16, 32], num_classes=80, topk=10)(
        case["one2many"]["scores"].permute(0, 2, 1).sigmoid(),
        a["pd_bboxes"],
        a["anc_points"],
        a["gt_labels"],
        a["gt_bboxes"],
        a["mask_gt"],
    )
    assert not torch.allclose(plain.target_scores, _target_scores(a), atol=1e-3)


def test_loss_matches_ultralytics_on_every_term_of_both_branches(case):
    crit = EndToEndSegLoss.from_hyp(case["hyp"])
    assert (crit.o2m, crit.o2o) == (case["e2e_state"]["o2m"], case["e2e_state"]["o2o"])
    total, items = crit(_raw(case), case)
    assert items.shape == (5,) and not items.requires_grad
    for branch in BRANCHES:
        torch.testing.assert_close(crit.last_vectors[branch], case[f"loss_vector_{branch}"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(items, case["loss_items"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(total, case["loss_total"], atol=1e-4, rtol=1e-5)


def test_branch_weight_schedule_equals_ultralytics(case):
    crit = EndToEndSegLoss(80, epochs=100)
    schedule = []
    for epoch in range(100):
        crit.set_epoch(epoch)
        schedule.append(crit.o2m)
        assert crit.o2o == pytest.approx(1 - crit.o2m)
    assert schedule == pytest.approx(case["o2m_schedule_epochs100"], abs=1e-12)
    crit.set_epoch(0)
    assert (crit.o2m, crit.o2o) == (0.8, 1 - 0.8)


def test_per_instance_masks_give_the_same_loss(case):
    """overlap_mask=False with per-instance masks made from the overlap map: the same five terms."""
    idx = case["batch_idx"].long()
    inst = []
    for j in range(len(idx)):
        k = int((idx[:j] == idx[j]).sum()) + 1
        inst.append(case["masks"][idx[j]] == k)
    batch = dict(case, masks=torch.stack(inst).to(torch.uint8))
    crit = EndToEndSegLoss.from_hyp(dict(case["hyp"], overlap_mask=False))
    crit(_raw(case), batch)
    for branch in BRANCHES:
        torch.testing.assert_close(crit.last_vectors[branch], case[f"loss_vector_{branch}"], atol=1e-4, rtol=1e-4)


def test_semantic_targets_follow_the_instances():
    masks = torch.zeros(1, 4, 4, dtype=torch.uint8)
    masks[0, 0, :2] = 1  # instance 1 (class 2)
    masks[0, 3, 3] = 2  # instance 2 (class 0)
    batch = {"batch_idx": torch.tensor([0.0, 0.0]), "cls": torch.tensor([[2.0], [0.0]])}
    t = semantic_targets(batch, 3, masks, 1, overlap_mask=True)
    assert t.shape == (1, 3, 4, 4)
    assert t[0, 2, 0, :2].tolist() == [1.0, 1.0] and t[0, 0, 3, 3] == 1.0
    assert t.sum() == 3  # background is 0 in every class


def test_bce_dice_of_a_perfect_prediction_is_small_and_of_a_wrong_one_large():
    target = torch.zeros(1, 2, 8, 8)
    target[0, 0, :4] = 1
    good = (target * 2 - 1) * 20
    assert bce_dice_loss(good, target) < 0.3
    assert bce_dice_loss(-good, target) > 5


def _synthetic(bs=2, nc=3, nm=4, size=64, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    sizes = [(size // s, size // s) for s in (8, 16, 32)]
    n = sum(h * w for h, w in sizes)

    def t(*shape):
        x = torch.randn(*shape, generator=g)
        return x.requires_grad_(requires_grad)

    proto, sem = t(bs, nm, size // 4, size // 4), t(bs, nc, size // 8, size // 8)
    feats = [torch.zeros(bs, 8, h, w) for h, w in sizes]
    branch = {"boxes": t(bs, 4, n), "scores": t(bs, nc, n), "mask_coefficient": t(bs, nm, n)}
    return {b: dict(branch, proto=(proto, sem), feats=feats) for b in BRANCHES}, proto, sem


def test_gradients_reach_every_output_and_an_image_without_labels_is_fine():
    preds, proto, sem = _synthetic()
    masks = torch.zeros(2, 16, 16, dtype=torch.uint8)
    masks[0, 2:10, 2:10] = 1
    batch = {
        "batch_idx": torch.tensor([0.0]),
        "cls": torch.tensor([[1.0]]),
        "bboxes": torch.tensor([[0.375, 0.375, 0.5, 0.5]]),
        "masks": masks,
    }
    total, items = EndToEndSegLoss(3)(preds, batch)
    assert torch.isfinite(total) and torch.isfinite(items).all() and (items > 0).all()
    total.backward()
    for t in (
        preds["one2many"]["boxes"],
        preds["one2many"]["scores"],
        preds["one2many"]["mask_coefficient"],
        proto,
        sem,
    ):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_a_batch_without_any_gt_gives_finite_zero_terms():
    preds, _, sem = _synthetic()
    batch = {
        "batch_idx": torch.zeros(0),
        "cls": torch.zeros(0, 1),
        "bboxes": torch.zeros(0, 4),
        "masks": torch.zeros(2, 16, 16, dtype=torch.uint8),
    }
    total, items = EndToEndSegLoss(3)(preds, batch)
    assert torch.isfinite(total)
    assert items[[0, 1, 3, 4]].tolist() == [0.0, 0.0, 0.0, 0.0] and items[2] > 0  # only cls (all background)
    total.backward()
    assert sem.grad is not None  # every output takes part (DDP needs no unused parameters)


def test_bad_inputs_are_clear_errors():
    preds, _, _ = _synthetic(requires_grad=False)
    crit = EndToEndSegLoss(3)
    with pytest.raises(ValueError, match="one2many"):
        crit(preds["one2one"], {})
    with pytest.raises(ValueError, match="scores must be"):
        EndToEndSegLoss(5)(preds, {"batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4)})
    with pytest.raises(ValueError, match="epochs"):
        EndToEndSegLoss(3, epochs=0)
