"""Procedural shapes data (edgeseg.synthetic): shapes, scenes, the YOLO dataset writer and the demo clip."""

from __future__ import annotations

import importlib
import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

cv2 = pytest.importorskip("cv2")

from edgeseg.synthetic import clip, dataset, scenes, shapes  # noqa: E402
from edgeseg.synthetic.clip import iter_clip_frames, make_clip  # noqa: E402
from edgeseg.synthetic.dataset import label_rows, simplify_polygon, write_dataset  # noqa: E402
from edgeseg.synthetic.scenes import outer_contour, render_scene  # noqa: E402
from edgeseg.synthetic.shapes import CLASS_NAMES, polygon_area  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1)


def fill_normalised(row: str, w: int, h: int) -> np.ndarray:
    """A label row rasterised the way the trainer does (edgeseg.data.masks: truncate, fillPoly)."""
    v = np.array(row.split()[1:], np.float64).reshape(-1, 2) * (w, h)
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [v.astype(np.int32)], 1)
    return m.astype(bool)


@pytest.fixture(scope="module")
def scene_list():
    return [render_scene(s) for s in range(40)]


# -- shapes ------------------------------------------------------------------------------------------
def test_shape_geometry():
    assert polygon_area(shapes.circle(0, 0, 10, n=256)) == pytest.approx(math.pi * 100, rel=1e-3)
    sq = shapes.square(5, 5, math.sqrt(2))  # half-diagonal sqrt(2): side 2
    assert polygon_area(sq) == pytest.approx(4.0)
    np.testing.assert_allclose(sq.mean(0), [5, 5], atol=1e-12)
    tri = shapes.triangle(0, 0, 1.0, angles=(90, 45, 45))
    assert polygon_area(tri) == pytest.approx(1.0)  # right isosceles triangle inscribed in the unit circle
    st_ = shapes.star(0, 0, 10, inner=0.5, points=5)
    assert st_.shape == (10, 2)
    np.testing.assert_allclose(np.hypot(*st_[::2].T), 10)
    np.testing.assert_allclose(np.hypot(*st_[1::2].T), 5)


@settings(max_examples=60, deadline=None)
@given(
    cls=st.integers(0, len(CLASS_NAMES) - 1),
    seed=st.integers(0, 2**32 - 1),
    r=st.floats(2.0, 500.0),
    cx=st.floats(-100, 100),
    cy=st.floats(-100, 100),
)
def test_random_shape_fits_its_circle(cls, seed, r, cx, cy):
    poly = shapes.random_shape(cls, np.random.default_rng(seed), cx, cy, r)
    assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 3 and poly.dtype == np.float64
    assert np.hypot(poly[:, 0] - cx, poly[:, 1] - cy).max() <= r * (1 + 1e-9)
    assert polygon_area(poly) > 0.1 * r * r  # never a sliver


@pytest.mark.parametrize(
    "call",
    [
        lambda: shapes.circle(0, 0, 0),
        lambda: shapes.circle(0, 0, 5, aspect=0),
        lambda: shapes.circle(0, 0, 5, n=3),
        lambda: shapes.square(0, 0, -1),
        lambda: shapes.square(0, 0, float("nan")),
        lambda: shapes.triangle(0, 0, 5, angles=(90, 90, 10)),
        lambda: shapes.star(0, 0, 5, inner=1.0),
        lambda: shapes.star(0, 0, 5, points=2),
        lambda: shapes.random_shape(4, np.random.default_rng(0), 0, 0, 5),
        lambda: shapes.random_shape(-1, np.random.default_rng(0), 0, 0, 5),
        lambda: polygon_area(np.zeros((3, 3))),
    ],
)
def test_shape_bad_args(call):
    with pytest.raises(ValueError):
        call()


# -- scenes ------------------------------------------------------------------------------------------
def test_scene_structure(scene_list):
    for sc in scene_list:
        assert sc.image.shape == (320, 320, 3) and sc.image.dtype == np.uint8
        assert len(sc.labels) == len(sc.masks) >= 1
        union = np.zeros((320, 320), np.int32)
        for (cls, poly), m in zip(sc.labels, sc.masks):
            assert 0 <= cls < len(CLASS_NAMES)
            assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 3
            assert m.dtype == bool and m.shape == (320, 320) and m.sum() >= 24
            union += m
        assert union.max() <= 1  # visible masks are disjoint (each pixel shows one object)


def test_labels_reproduce_visible_masks(scene_list):
    """Raw contour fill == visible mask (IoU >= 0.95); written rows rasterised like the trainer: IoU > 0.9."""
    worst_raw = worst_row = 1.0
    for sc in scene_list:
        rows = label_rows(sc)
        assert len(rows) == len(sc.labels)
        for (cls, poly), m, row in zip(sc.labels, sc.masks, rows):
            raw = np.zeros(m.shape, np.uint8)
            cv2.fillPoly(raw, [poly.astype(np.int32)], 1)
            worst_raw = min(worst_raw, iou(raw.astype(bool), m))
            worst_row = min(worst_row, iou(fill_normalised(row, 320, 320), m))
            assert int(row.split()[0]) == cls
    assert worst_raw >= scenes.MIN_LABEL_IOU
    assert worst_row > 0.9


def test_scenes_contain_occlusions(scene_list):
    """Some objects touch (one occludes the other), yet every mask is a single well-formed piece."""
    touching = 0
    for sc in scene_list:
        grown = [cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) for m in sc.masks]
        touching += sum(bool((g & m).any()) for i, g in enumerate(grown) for j, m in enumerate(sc.masks) if i < j)
        for m in sc.masks:
            assert outer_contour(m)[1] >= scenes.MIN_LABEL_IOU
    assert touching >= 5


def test_scene_determinism():
    a, b, c = render_scene(7), render_scene(7), render_scene(8)
    np.testing.assert_array_equal(a.image, b.image)
    assert [k for k, _ in a.labels] == [k for k, _ in b.labels]
    for (_, p), (_, q) in zip(a.labels, b.labels):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a.image, c.image)
    np.testing.assert_array_equal(render_scene(np.random.default_rng(3)).image, render_scene(3).image)


def test_scene_sizes_and_object_count():
    sc = render_scene(0, width=200, height=120, max_objects=3)
    assert sc.image.shape == (120, 200, 3) and 1 <= len(sc.labels) <= 3
    empty = render_scene(0, max_objects=0)
    assert empty.labels == [] and empty.masks == []


def test_class_balance_roughly_uniform():
    counts = np.zeros(len(CLASS_NAMES))
    for sc in dataset.iter_scenes(0, "train", 300, imgsz=160):
        for cls, _ in sc.labels:
            counts[cls] += 1
    assert counts.sum() > 500
    assert counts.min() > 0.8 * counts.mean() and counts.max() < 1.2 * counts.mean(), counts


def test_outer_contour_detects_splits_and_holes():
    m = np.zeros((40, 40), bool)
    m[5:35, 5:35] = True
    assert outer_contour(m)[1] == 1.0
    holed = m.copy()
    holed[15:25, 15:25] = False
    assert outer_contour(holed)[1] < 0.95
    split = m.copy()
    split[:, 18:22] = False
    assert outer_contour(split)[1] < 0.95


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"seed": 1.5},
        {"seed": None},
        {"width": 8},
        {"height": True},
        {"max_objects": -1},
        {"size_range": (0.0, 0.4)},
        {"size_range": (0.5, 0.4)},
    ],
)
def test_scene_bad_args(kwargs):
    with pytest.raises(ValueError):
        render_scene(**kwargs)


# -- dataset -----------------------------------------------------------------------------------------
def test_dataset_layout_and_yaml(tmp_path):
    yaml = pytest.importorskip("yaml")
    root = tmp_path / "shapes set"  # a space in the path must survive the yaml
    y = write_dataset(root, 6, 3, imgsz=96, seed=1)
    assert y == root.resolve() / "data.yaml"
    cfg = yaml.safe_load(y.read_text())
    assert cfg["path"] == str(root.resolve()) and cfg["train"] == "images/train" and cfg["val"] == "images/val"
    assert cfg["names"] == dict(enumerate(CLASS_NAMES))
    for split, n in (("train", 6), ("val", 3)):
        ims = sorted((root / "images" / split).iterdir())
        lbs = sorted((root / "labels" / split).iterdir())
        assert [p.name for p in ims] == [f"{i:06d}.jpg" for i in range(n)]
        assert [p.name for p in lbs] == [f"{i:06d}.txt" for i in range(n)]
        for p in ims:
            assert cv2.imread(str(p)).shape == (96, 96, 3)
        for p in lbs:
            for row in p.read_text().splitlines():
                v = row.split()
                assert len(v) >= 7 and len(v) % 2 == 1 and 0 <= int(v[0]) < len(CLASS_NAMES)
                xy = np.array(v[1:], float)
                assert xy.min() >= 0.0 and xy.max() <= 1.0


def test_dataset_reads_with_the_trainer_loader(tmp_path):
    pytest.importorskip("yaml")
    dy = pytest.importorskip("edgeseg.data.dataset_yaml")
    lb = pytest.importorskip("edgeseg.data.labels")
    cfg = dy.load_dataset_yaml(write_dataset(tmp_path, 8, 2, imgsz=64))
    assert cfg.names == dict(enumerate(CLASS_NAMES))
    files = dy.list_image_files(cfg.train)
    labels, summary = lb.load_labels(files, cfg.nc, cache=False)
    assert len(labels) == 8 and summary.broken_rows == 0 and summary.corrupt_images == 0
    assert sum(len(x.segments) for x in labels) >= 8


def test_dataset_deterministic_and_prefix_stable(tmp_path):
    a = write_dataset(tmp_path / "a", 4, 2, imgsz=64, seed=5).parent
    b = write_dataset(tmp_path / "b", 6, 2, imgsz=64, seed=5).parent
    c = write_dataset(tmp_path / "c", 4, 2, imgsz=64, seed=6).parent
    for rel in ["labels/train/000003.txt", "labels/val/000001.txt", "images/train/000002.jpg"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert any(
        (a / rel).read_bytes() != (c / rel).read_bytes()
        for rel in ["images/train/000000.jpg", "images/train/000001.jpg"]
    )
    # train and val are different streams
    assert (a / "images/train/000000.jpg").read_bytes() != (a / "images/val/000000.jpg").read_bytes()


def test_dataset_rewrite_removes_stale_files(tmp_path):
    write_dataset(tmp_path, 5, 2, imgsz=64)
    (tmp_path / "images" / "train" / "keep_me.txt").write_text("user file")
    write_dataset(tmp_path, 2, 1, imgsz=64, ext="png")
    assert sorted(p.name for p in (tmp_path / "images" / "train").iterdir()) == [
        "000000.png",
        "000001.png",
        "keep_me.txt",
    ]
    assert len(list((tmp_path / "labels" / "train").iterdir())) == 2


def test_simplify_polygon_caps_points():
    poly = shapes.circle(100, 100, 90, n=256)
    out = simplify_polygon(poly, epsilon=0.01, max_points=20)
    assert 3 <= len(out) <= 20
    assert polygon_area(out) == pytest.approx(polygon_area(poly), rel=0.05)
    with pytest.raises(ValueError):
        simplify_polygon(poly, max_points=2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_train": -1, "n_val": 1},
        {"n_train": 1, "n_val": 1.5},
        {"n_train": 1, "n_val": 1, "imgsz": 16},
        {"n_train": 1, "n_val": 1, "seed": -3},
        {"n_train": 1, "n_val": 1, "ext": "bmp"},
        {"n_train": True, "n_val": 1},
    ],
)
def test_dataset_bad_args(tmp_path, kwargs):
    with pytest.raises(ValueError):
        write_dataset(tmp_path, **kwargs)
    with pytest.raises(ValueError):
        dataset.iter_scenes(0, "test", 1)  # raised at the call, not at the first next()


def test_dataset_speed(tmp_path):
    t = time.perf_counter()
    write_dataset(tmp_path, 200, 0, imgsz=320)
    elapsed = time.perf_counter() - t
    assert elapsed < 10.0, f"200 images took {elapsed:.1f} s"


# -- clip --------------------------------------------------------------------------------------------
def test_clip_frames_shape_count_and_determinism():
    frames = make_clip(None, n_frames=12, size=(160, 96), seed=2)
    assert len(frames) == 12
    assert all(f.shape == (96, 160, 3) and f.dtype == np.uint8 for f in frames)
    again = list(iter_clip_frames(12, (160, 96), seed=2))
    for f, g in zip(frames, again):
        np.testing.assert_array_equal(f, g)
    diffs = [np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(11)]
    assert 0 < max(diffs) < 20  # things move, smoothly
    other = next(iter_clip_frames(1, (160, 96), seed=3))
    assert not np.array_equal(other, frames[0])


def test_clip_endless_generator():
    frames = list(itertools.islice(iter_clip_frames(None, (64, 48), seed=0), 200))
    assert len(frames) == 200


def test_clip_writes_mp4(tmp_path):
    path = make_clip(tmp_path / "sub" / "demo.mp4", n_frames=15, size=(128, 96), fps=15, seed=1)
    assert path.exists() and path.stat().st_size > 0
    cap = cv2.VideoCapture(str(path))
    try:
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (96, 128, 3)
            n += 1
    finally:
        cap.release()
    assert n == 15


@pytest.mark.parametrize(
    "call",
    [
        lambda: iter_clip_frames(0),
        lambda: iter_clip_frames(5, size=(10, 10)),
        lambda: iter_clip_frames(5, size=64),
        lambda: iter_clip_frames(5, seed=-1),
        lambda: iter_clip_frames(5, n_objects=-2),
        lambda: make_clip(None, n_frames=None),
        lambda: make_clip(None, fps=0),
        lambda: make_clip("x.avi", n_frames=2),
    ],
)
def test_clip_bad_args(call):
    with pytest.raises(ValueError):
        call()


# -- package -----------------------------------------------------------------------------------------
def test_package_exports():
    pkg = importlib.import_module("edgeseg.synthetic")
    if getattr(pkg, "__file__", None) is None:
        pytest.skip("edgeseg.synthetic loads as a namespace package: stale editable install (pip install -e .)")
    assert pkg.CLASS_NAMES == CLASS_NAMES
    assert pkg.write_dataset is write_dataset and pkg.iter_clip_frames is clip.iter_clip_frames
    with pytest.raises(AttributeError):
        pkg.nope  # noqa: B018
