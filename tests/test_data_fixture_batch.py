"""The non-augmented pipeline reproduces Ultralytics' own batch of the 4 coco8-seg train images at 320.

Fixture: shared/fixtures/loss_case_batch.pt (see shared/fixtures/README.md). Skips when shared is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")

from edgeseg.data.dataset_yaml import load_dataset_yaml  # noqa: E402
from edgeseg.train.data.dataset import SegmentationDataset, collate_fn  # noqa: E402
from shared_paths import SHARED  # noqa: E402

FIXTURE = SHARED / "fixtures" / "loss_case_batch.pt"
YAML = SHARED / "data" / "coco8-seg" / "coco8-seg.yaml"

pytestmark = pytest.mark.skipif(not (FIXTURE.exists() and YAML.exists()), reason="shared fixtures not available")


@pytest.fixture(scope="module")
def batches():
    ref = torch.load(FIXTURE, weights_only=True)
    cfg = load_dataset_yaml(YAML)
    ds = SegmentationDataset.from_config(cfg, "train", imgsz=320, augment=False)
    ours = collate_fn([ds[i] for i in range(len(ds))])
    return ours, ref


def test_same_images_and_shapes(batches):
    ours, ref = batches
    assert [Path(f).name for f in ours["im_file"]] == list(ref["im_files"])
    assert [list(s) for s in ours["ori_shape"]] == [list(s) for s in ref["ori_shape"]]
    assert ours["img"].dtype == torch.uint8 and ours["img"].shape == ref["img"].shape
    diff = (ours["img"].int() - ref["img"].int()).abs()
    assert diff.max().item() <= 1, f"max grey-level difference {diff.max().item()}"


def test_same_instances_order_and_boxes(batches):
    ours, ref = batches
    assert torch.equal(ours["batch_idx"], ref["batch_idx"].to(ours["batch_idx"].dtype))
    assert torch.equal(ours["cls"], ref["cls"].to(ours["cls"].dtype))
    assert ours["bboxes"].shape == ref["bboxes"].shape
    assert (ours["bboxes"] - ref["bboxes"]).abs().max().item() < 1e-3


def test_overlap_masks_match_per_instance(batches):
    ours, ref = batches
    assert ours["masks"].shape == ref["masks"].shape == (4, 80, 80)
    om, rm = ours["masks"].long(), ref["masks"].long()
    for b in range(4):
        n = int((ref["batch_idx"] == b).sum())
        assert int(om[b].max()) == int(rm[b].max()) == n
        for k in range(1, n + 1):
            a, r = om[b] == k, rm[b] == k
            iou = (a & r).sum().item() / max((a | r).sum().item(), 1)
            assert iou > 0.95, f"image {b} instance {k}: IoU {iou:.3f}"


def test_rect_batches_are_stride_aligned():
    cfg = load_dataset_yaml(YAML)
    ds = SegmentationDataset.from_config(cfg, "val", imgsz=320, rect=True, batch_size=2)
    ar = [lb.shape[0] / lb.shape[1] for lb in ds.labels]
    assert ar == sorted(ar)
    for bi in range(len(ds.batch_shapes)):
        idx = [i for i in range(len(ds)) if ds.batch_index[i] == bi]
        batch = collate_fn([ds[i] for i in idx])
        h, w = (int(v) for v in ds.batch_shapes[bi])
        assert batch["img"].shape[2:] == (h, w) and h % 32 == 0 and w % 32 == 0
        assert batch["masks"].shape[1:] == (h // 4, w // 4)
        ars = np.array(ar)[idx]
        # Ultralytics' formula: ceil(shape * imgsz / stride + pad) * stride, pad 0.5 for val
        expect = [ars.max(), 1] if ars.max() < 1 else ([1, 1 / ars.min()] if ars.min() > 1 else [1, 1])
        assert [h, w] == (np.ceil(np.array(expect) * 320 / 32 + 0.5).astype(int) * 32).tolist()
