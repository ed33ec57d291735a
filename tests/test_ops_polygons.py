"""Native external contours vs OpenCV and vs rasterising them back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeseg.ops._native import core
from edgeseg.ops.masks import MaskSet, masks_native
from edgeseg.ops.polygons import polygons
from tests.reference.polygons import fill_holes, opencv_contours, rasterise


def one(bitmap, origin=(0, 0), shape=None):
    h, w = bitmap.shape
    x0, y0 = origin
    shape = shape or (y0 + h + 3, x0 + w + 3)
    return MaskSet(np.array([[x0, y0, x0 + w, y0 + h]]), bitmap.astype(np.uint8).ravel(), np.array([0, h * w]), shape)


def as_key(polys):
    return sorted(tuple(map(tuple, p.astype(np.int64).tolist())) for p in polys)


def shape(name):
    m = np.zeros((12, 14), np.uint8)
    if name == "rect":
        m[2:7, 3:11] = 1
    elif name == "pixel":
        m[5, 5] = 1
    elif name == "hline":
        m[4, 2:10] = 1
    elif name == "vline":
        m[1:9, 6] = 1
    elif name == "diagonal":
        for i in range(8):
            m[2 + i, 3 + i] = 1
    elif name == "ring_with_island":
        m[1:11, 1:13] = 1
        m[3:9, 3:11] = 0
        m[5:7, 6:8] = 1  # inside the hole: not external
    elif name == "two_blobs":
        m[1:4, 1:4] = 1
        m[6:11, 5:13] = 1
    elif name == "L":
        m[1:10, 2:4] = 1
        m[8:10, 2:12] = 1
    elif name == "full":
        m[:] = 1
    return m


@pytest.mark.parametrize(
    "name", ["rect", "pixel", "hline", "vline", "diagonal", "ring_with_island", "two_blobs", "L", "full"]
)
def test_simple_shapes_match_opencv(name):
    m = shape(name)
    got = polygons(one(m, origin=(7, 4)), "all")[0]
    exp = opencv_contours(m, origin=(7, 4))
    assert as_key(got) == as_key(exp)
    assert all(p.dtype == np.float32 and p.shape[1] == 2 for p in got)
    shifted = [p - [7, 4] for p in got]
    np.testing.assert_array_equal(rasterise(shifted, m.shape), fill_holes(m))


def test_known_rectangle_corners():
    m = np.zeros((5, 6), np.uint8)
    m[1:4, 1:5] = 1
    (poly,) = polygons(one(m), "all")[0]
    assert sorted(map(tuple, poly.tolist())) == [(1, 1), (1, 3), (4, 1), (4, 3)]
    assert [len(p) for p in polygons(one(shape("ring_with_island")), "all")[0]] == [4]  # outer border only


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 40), w=st.integers(1, 40), density=st.floats(0.05, 0.95))
def test_random_bitmaps_match_opencv_and_rasterise_back(seed, h, w, density):
    rng = np.random.default_rng(seed)
    m = (rng.random((h, w)) < density).astype(np.uint8)
    got = polygons(one(m, origin=(2, 3)), "all")[0]
    assert as_key(got) == as_key(opencv_contours(m, origin=(2, 3)))
    np.testing.assert_array_equal(rasterise([p - [2, 3] for p in got], m.shape), fill_holes(m))


def test_largest_and_empty():
    m = shape("two_blobs")
    (largest,) = polygons(one(m), "largest")[0]
    all_ = polygons(one(m), "all")[0]
    assert len(all_) == 2 and len(largest) == max(len(p) for p in all_)
    ms = MaskSet(np.array([[0, 0, 3, 3], [1, 1, 1, 1]]), np.zeros(9, np.uint8), np.array([0, 9, 9]), (5, 5))
    assert polygons(ms) == [[], []]
    assert polygons(MaskSet.empty((4, 4))) == []


def test_polygons_of_real_masks_cover_them():
    rng = np.random.default_rng(2)
    protos = rng.normal(size=(8, 40, 40)).astype(np.float32)
    coefs = rng.normal(size=(4, 8)).astype(np.float32)
    from types import SimpleNamespace

    info = SimpleNamespace(orig_h=200, orig_w=300)
    boxes = np.array([[10, 10, 150, 120], [100, 50, 300, 200], [0, 0, 300, 200], [40.5, 60.2, 80.7, 90.1]], np.float32)
    ms = masks_native(protos, coefs, boxes, info)
    polys = polygons(ms, "all")
    for i in range(len(ms)):
        x0, y0, x1, y1 = ms.rects[i]
        bm = ms.bitmap(i)
        assert as_key(polys[i]) == as_key(opencv_contours(bm, origin=(x0, y0)))
        for p in polys[i]:
            assert (p[:, 0] >= x0).all() and (p[:, 0] < x1).all() and (p[:, 1] >= y0).all() and (p[:, 1] < y1).all()


def test_bad_input():
    with pytest.raises(ValueError):
        polygons(np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError):
        polygons(one(shape("rect")), strategy="biggest")
    with pytest.raises(ValueError):  # offsets inconsistent with rects
        core.polygons(np.array([[0, 0, 2, 2]], np.int32), np.zeros(4, np.uint8), np.array([0, 5]), False)
    with pytest.raises(ValueError):  # wrong dtype
        core.polygons(np.array([[0, 0, 2, 2]], np.int64), np.zeros(4, np.uint8), np.array([0, 4]), False)
    with pytest.raises(ValueError):  # negative size
        core.polygons(np.array([[2, 0, 0, 2]], np.int32), np.zeros(4, np.uint8), np.array([0, 4]), False)
