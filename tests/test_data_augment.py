"""Augmentations move polygons with the pixels; HSV keeps geometry; seeded runs repeat (edgeseg.data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
torch = pytest.importorskip("torch")

from edgeseg.data import label_cache  # noqa: E402
from edgeseg.data.augment import LetterBox, RandomAffine, RandomFlip, RandomHSV, box_candidates, mosaic4  # noqa: E402
from edgeseg.data.instances import Instances, resample_polygon, resample_polygons  # noqa: E402
from edgeseg.data.masks import polygons_to_overlap_mask  # noqa: E402
from edgeseg.train.data.dataset import SegmentationDataset, collate_fn  # noqa: E402
from edgeseg.train.data.loader import build_dataloader  # noqa: E402

COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]  # BGR, far from the 114 grey


def synthetic_sample(k: int, h=180, w=240) -> dict:
    """A grey image with one filled polygon of colour COLOURS[k]; the polygon is the label."""
    rng = np.random.default_rng(k)
    img = np.full((h, w, 3), 114, np.uint8)
    cx, cy = w * (0.35 + 0.3 * rng.random()), h * (0.35 + 0.3 * rng.random())
    ang = np.sort(rng.uniform(0, 2 * np.pi, 7))
    rad = rng.uniform(0.5, 1.0, 7) * min(h, w) * 0.3
    poly = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.float32)
    cv2.fillPoly(img, [np.round(poly).astype(np.int32)], COLOURS[k])
    segs = resample_polygons([poly])
    inst = Instances(np.concatenate([poly.min(0), poly.max(0)])[None].astype(np.float32), segs, np.array([k]))
    return {
        "img": img,
        "instances": inst,
        "im_file": f"synthetic{k}.jpg",
        "ori_shape": (h, w),
        "resized_shape": (h, w),
        "ratio_pad": (1.0, 1.0),
        "polygon": poly,
    }


def colour_mask(img, colour):
    return np.abs(img.astype(int) - np.array(colour)).max(-1) < 40


def poly_mask(shape, seg):
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(seg).astype(np.int32)], 1)
    return m.astype(bool)


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def check_polygons_follow_pixels(sample, min_area=800):
    checked = 0
    for seg, c in zip(sample["instances"].segments, sample["instances"].cls):
        pix = colour_mask(sample["img"], COLOURS[int(c)])
        if pix.sum() < min_area:
            continue
        assert iou(pix, poly_mask(sample["img"].shape, seg)) > 0.9, f"instance of colour {c}"
        checked += 1
    return checked


def test_resample_polygon_keeps_vertices_and_length():
    poly = np.array([[0, 0], [10, 0], [10, 5], [0, 5]], np.float32)
    r = resample_polygon(poly, 1000)
    assert r.shape == (1000, 2)
    for v in poly:
        assert np.abs(r - v).sum(1).min() < 1e-5
    big = np.random.default_rng(0).random((1200, 2)).astype(np.float32)
    assert resample_polygons([poly, big]).shape == (2, 1201, 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mosaic_affine_flip_move_polygons_with_pixels(seed):
    rng = np.random.default_rng(seed)
    imgsz = 224
    sample = mosaic4([synthetic_sample(k) for k in range(4)], imgsz, rng)
    assert sample["img"].shape == (2 * imgsz, 2 * imgsz, 3)
    assert check_polygons_follow_pixels(sample) >= 1
    sample = RandomAffine(translate=0.1, scale=0.5)(sample, rng)
    assert sample["img"].shape == (imgsz, imgsz, 3) and "mosaic_border" not in sample
    check_polygons_follow_pixels(sample)
    sample = RandomFlip(p=1.0)(sample, rng)
    check_polygons_follow_pixels(sample)
    b = sample["instances"].boxes
    segs = sample["instances"].segments
    if len(b):  # boxes are the extents of the transformed polygons
        np.testing.assert_allclose(b[:, :2], segs.min(1), atol=1e-3)
        np.testing.assert_allclose(b[:, 2:], segs.max(1), atol=1e-3)


def test_affine_with_rotation_and_shear_and_vertical_flip():
    rng = np.random.default_rng(5)
    for k in range(4):
        s = synthetic_sample(k)
        s = RandomAffine(degrees=30, translate=0.1, scale=0.3, shear=10)(s, rng)
        s = RandomFlip(p=1.0, direction="vertical")(s, rng)
        assert s["img"].shape == (180, 240, 3)
        check_polygons_follow_pixels(s)


def test_letterbox_geometry_and_polygons():
    s = synthetic_sample(0, h=213, w=320)
    lb = LetterBox((320, 320), scaleup=False)
    new_unpad, r, (left, top, right, bottom) = lb.geometry((213, 320))
    assert (new_unpad, r, left, top, right, bottom) == ((320, 213), 1.0, 0, 53, 0, 54)
    out = lb(s)
    assert out["img"].shape == (320, 320, 3) and out["ratio_pad"] == ((1.0, 1.0), (0, 53))
    assert (out["img"][:53] == 114).all() and (out["img"][-54:] == 114).all()
    check_polygons_follow_pixels(out)
    # downscale path: r = min(160/180, 160/240) with INTER_LINEAR, polygons scaled by r
    out = LetterBox((160, 160))(synthetic_sample(1))
    assert out["img"].shape == (160, 160, 3)
    check_polygons_follow_pixels(out, min_area=100)


def test_hsv_changes_colours_not_geometry():
    s = synthetic_sample(2)
    before_img, before = s["img"].copy(), s["instances"].copy()
    out = RandomHSV(0.015, 0.7, 0.4)(s, np.random.default_rng(3))
    assert out["img"].shape == before_img.shape and not np.array_equal(out["img"], before_img)
    np.testing.assert_array_equal(out["instances"].segments, before.segments)
    np.testing.assert_array_equal(out["instances"].boxes, before.boxes)
    # the coloured region stays where it was
    pix_before = np.abs(before_img.astype(int) - 114).max(-1) > 20
    pix_after = np.abs(out["img"].astype(int) - out["img"][0, 0].astype(int)).max(-1) > 20
    assert iou(pix_before, pix_after) > 0.95


def test_box_candidates():
    b1 = np.array([[0, 0, 100, 100]] * 4, np.float32)
    b2 = np.array([[0, 0, 100, 100], [0, 0, 1.5, 50], [0, 0, 5, 5], [0, 0, 200, 2.5]], np.float32)
    assert box_candidates(b1, b2, area_thr=0.01).tolist() == [True, False, False, True]
    assert box_candidates(b1, b2, area_thr=0.1).tolist() == [True, False, False, False]


def test_overlap_mask_sorts_by_area_small_on_top():
    small = np.array([[8, 8], [24, 8], [24, 24], [8, 24]], np.float32)
    big = np.array([[0, 0], [60, 0], [60, 60], [0, 60]], np.float32)
    m, order = polygons_to_overlap_mask((64, 64), [small, big], ratio=4)
    assert order.tolist() == [1, 0] and m.shape == (16, 16) and m.dtype == np.uint8
    assert m[4, 4] == 2 and m[12, 12] == 1 and m[15, 15] == 0


# -- dataset-level: reproducibility, close_mosaic in persistent workers ----------------------------
def make_synthetic_dataset(root: Path, n=6):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for i in range(n):
        s = synthetic_sample(i % 4, h=150 + 10 * i, w=200)
        cv2.imwrite(str(root / "images" / f"{i}.png"), s["img"])
        h, w = s["img"].shape[:2]
        poly = s["polygon"] / np.array([w, h])
        (root / "labels" / f"{i}.txt").write_text(f"{i % 4} " + " ".join(f"{v:.6f}" for v in poly.ravel()))
    return root / "images"


@pytest.fixture
def synth_images(tmp_path):
    label_cache.clear_memory_cache()
    return make_synthetic_dataset(tmp_path / "ds")


def test_same_seed_same_samples(synth_images):
    def run(seed):
        ds = SegmentationDataset(synth_images, nc=4, imgsz=160, augment=True, seed=seed)
        return [ds[i] for i in range(len(ds))]

    a, b, c = run(7), run(7), run(8)
    for x, y in zip(a, b):
        assert torch.equal(x["img"], y["img"]) and torch.equal(x["bboxes"], y["bboxes"])
        assert torch.equal(x["masks"], y["masks"])
    assert any(not torch.equal(x["img"], z["img"]) for x, z in zip(a, c))
    for x in a:
        assert x["img"].shape == (3, 160, 160) and x["masks"].shape == (40, 40)
        assert len(x["cls"]) == len(x["bboxes"]) == int(x["masks"].max())


def test_augmented_dataset_masks_match_pixels(synth_images):
    ds = SegmentationDataset(
        synth_images,
        nc=4,
        imgsz=160,
        augment=True,
        seed=0,
        overlap_mask=False,
        hyp={"hsv_h": 0, "hsv_s": 0, "hsv_v": 0},
    )
    for i in range(len(ds)):
        x = ds[i]
        img = np.ascontiguousarray(x["img"].numpy().transpose(1, 2, 0)[..., ::-1])  # back to BGR HWC
        masks, cls = x["masks"].numpy().astype(bool), x["cls"][:, 0].int().numpy()
        for c in set(cls.tolist()):  # a class can come from several mosaic tiles: compare unions
            pix = cv2.resize(colour_mask(img, COLOURS[c]).astype(np.uint8), (40, 40)) > 0  # sampled as masks are
            if pix.sum() >= 40:
                assert iou(masks[cls == c].any(0), pix) > 0.8


def test_close_mosaic_reaches_persistent_workers(synth_images):
    # identity affine, no colour/flip: without mosaic the train sample equals the letterboxed image
    hyp = {"translate": 0.0, "scale": 0.0, "hsv_h": 0, "hsv_s": 0, "hsv_v": 0, "fliplr": 0.0}
    ds = SegmentationDataset(synth_images, nc=4, imgsz=160, augment=True, hyp=hyp)
    ref = SegmentationDataset(synth_images, nc=4, imgsz=160, augment=False)
    ref_batch = collate_fn([ref[i] for i in range(len(ref))])
    loader = build_dataloader(ds, batch=len(ds), workers=1, shuffle=False, seed=0)
    assert loader.num_workers == 1 and loader.persistent_workers
    first = next(iter(loader))
    assert not torch.equal(first["img"], ref_batch["img"])
    ds.close_mosaic()
    second = next(iter(loader))
    assert torch.equal(second["img"], ref_batch["img"])
    assert torch.equal(second["batch_idx"], ref_batch["batch_idx"])
    torch.testing.assert_close(second["bboxes"], ref_batch["bboxes"], atol=1e-4, rtol=0)


def test_loader_seeded_workers_reproducible(synth_images):
    def epoch_sums(seed):
        ds = SegmentationDataset(synth_images, nc=4, imgsz=160, augment=True)
        loader = build_dataloader(ds, batch=3, workers=2, shuffle=True, seed=seed)
        return [[b["img"].float().sum().item() for b in loader] for _ in range(2)]

    a = epoch_sums(1)
    assert a == epoch_sums(1)
    assert a[0] != a[1]  # epochs differ


def test_distributed_sampler_split():
    ds = list(range(10))
    l0 = build_dataloader(ds, batch=2, workers=0, shuffle=False, rank=0, world_size=2)
    l1 = build_dataloader(ds, batch=2, workers=0, shuffle=False, rank=1, world_size=2)
    assert type(l0.sampler).__name__ == "DistributedSampler"
    assert sorted(list(l0.sampler) + list(l1.sampler)) == ds
