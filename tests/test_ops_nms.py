"""edgeseg.ops.nms: greedy NMS vs the numpy reference, torchvision semantics, edge cases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeseg.ops.nms import nms, topk_pairs
from reference import nms as ref

FAST = settings(max_examples=50, deadline=None)


def _boxes(rng, n, *, clusters=8, spread=30.0):
    """Boxes clustered around a few centres so that many pairs overlap."""
    centres = rng.uniform(50, 600, (clusters, 2))
    c = centres[rng.integers(0, clusters, n)] + rng.normal(0, spread, (n, 2))
    wh = rng.uniform(5, 120, (n, 2))
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1).astype(np.float32)


@FAST
@given(
    n=st.integers(0, 300),
    seed=st.integers(0, 2**32 - 1),
    iou=st.floats(0.05, 0.95),
    ncls=st.integers(1, 5),
    aware=st.booleans(),
    max_det=st.integers(1, 400),
    int_scores=st.booleans(),
)
def test_matches_numpy_reference(n, seed, iou, ncls, aware, max_det, int_scores):
    rng = np.random.default_rng(seed)
    boxes = _boxes(rng, n)
    # Coarse scores create many exact ties, which must resolve to input order.
    scores = (rng.integers(0, 10, n) / 10 if int_scores else rng.random(n)).astype(np.float32)
    cls = rng.integers(0, ncls, n).astype(np.int32)
    got = nms(boxes, scores, cls if aware else None, iou=iou, max_det=max_det)
    want = ref.nms(boxes, scores, cls if aware else None, iou=iou, max_det=max_det)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_hand_computed_example():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    # IoU(0,1) = 90/110 = 0.818; IoU(0,2) = 1.
    assert nms(boxes, scores, iou=0.7).tolist() == [0, 3]
    assert nms(boxes, scores, iou=0.85).tolist() == [0, 1, 3]
    # Strictly greater: IoU exactly 0.5 does not suppress.
    half = np.array([[0, 0, 2, 1], [0, 0, 1, 1]], np.float32)
    assert nms(half, np.array([1, 0.5], np.float32), iou=0.5).tolist() == [0, 1]
    assert nms(half, np.array([1, 0.5], np.float32), iou=0.49).tolist() == [0]


def test_equal_scores_keep_input_order():
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (5, 1))
    scores = np.full(5, 0.5, np.float32)
    assert nms(boxes, scores).tolist() == [0]
    boxes[:, 0] += np.arange(5, dtype=np.float32) * 100  # disjoint now
    assert nms(boxes, scores).tolist() == [0, 1, 2, 3, 4]
    scores[3] = 0.6
    assert nms(boxes, scores).tolist() == [3, 0, 1, 2, 4]


def test_class_aware_and_agnostic():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    cls = np.array([0, 1, 0], np.int64)
    assert nms(boxes, scores, cls).tolist() == [0, 1]
    assert nms(boxes, scores, cls, agnostic=True).tolist() == [0]
    assert nms(boxes, scores).tolist() == [0]
    assert nms(boxes, scores, [5, 7, 9]).tolist() == [0, 1, 2]  # lists of ints are accepted


def test_zero_area_boxes_are_kept():
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 0], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, iou=0.0).tolist() == [0, 1, 2, 3]


def test_empty_and_max_det():
    empty = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    assert empty.dtype == np.int64 and empty.shape == (0,)
    rng = np.random.default_rng(0)
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(50)], np.float32)
    scores = rng.random(50).astype(np.float32)
    kept = nms(boxes, scores, max_det=10)
    assert kept.tolist() == np.argsort(-scores, kind="stable")[:10].tolist()


def test_many_candidates():
    rng = np.random.default_rng(1)
    boxes = _boxes(rng, 5000, clusters=40)
    scores = rng.random(5000).astype(np.float32)
    cls = rng.integers(0, 80, 5000).astype(np.int32)
    for c in (cls, None):
        np.testing.assert_array_equal(nms(boxes, scores, c, max_det=1000), ref.nms(boxes, scores, c, max_det=1000))


def test_float64_inputs_are_converted():
    rng = np.random.default_rng(2)
    boxes = _boxes(rng, 100).astype(np.float64)
    scores = rng.random(100)
    np.testing.assert_array_equal(nms(boxes, scores), ref.nms(boxes, scores))


@pytest.mark.parametrize(
    ("boxes", "scores", "cls", "kwargs", "match"),
    [
        (np.zeros((3, 5)), np.zeros(3), None, {}, "boxes"),
        (np.zeros(4), np.zeros(1), None, {}, "boxes"),
        (np.zeros((3, 4)), np.zeros(2), None, {}, "scores"),
        (np.zeros((3, 4)), np.zeros(3), np.zeros(2, np.int32), {}, "class_ids"),
        (np.zeros((3, 4)), np.zeros(3), np.zeros(3, np.float32), {}, "class_ids"),
        (np.zeros((3, 4)), np.array([0.1, np.nan, 0.2]), None, {}, "finite"),
        (np.array([[0, 0, np.inf, 1]] * 3), np.zeros(3), None, {}, "finite"),
        (np.zeros((3, 4)), np.zeros(3), None, {"max_det": 0}, "max_det"),
        (np.zeros((3, 4)), np.zeros(3), None, {"iou": float("nan")}, "iou"),
        (np.array([["a"] * 4] * 3), np.zeros(3), None, {}, "numeric"),
    ],
)
def test_bad_input_raises_value_error(boxes, scores, cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nms(boxes, scores, cls, **kwargs)


def test_threads_give_identical_results():
    rng = np.random.default_rng(3)
    cases = [(_boxes(rng, 2000), rng.random(2000).astype(np.float32)) for _ in range(4)]
    want = [nms(b, s, max_det=2000) for b, s in cases]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: nms(*cases[i % 4], max_det=2000), range(16)))
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g, want[i % 4])


# ---- YOLO26's one-to-one selection -------------------------------------------------------------------


@FAST
@given(
    n_anchors=st.integers(1, 60),
    nc=st.integers(1, 6),
    k=st.integers(1, 80),
    seed=st.integers(0, 2**32 - 1),
    coarse=st.booleans(),
)
def test_topk_pairs_matches_the_reference(n_anchors, nc, k, seed, coarse):
    rng = np.random.default_rng(seed)
    scores = rng.random((n_anchors, nc)).astype(np.float32)
    if coarse:  # many ties
        scores = np.round(scores * 4) / 4
    keep = rng.random((n_anchors, nc)) < 0.6
    anchors, classes = np.nonzero(keep)
    pair_scores = scores[anchors, classes]
    got = topk_pairs(anchors, pair_scores, k)
    want = ref.topk_pairs(anchors, pair_scores, k)
    if coarse:  # ties may be ordered differently between equal scores: same scores in the same order
        np.testing.assert_array_equal(pair_scores[got], pair_scores[want])
    else:
        np.testing.assert_array_equal(got, want)


def test_topk_pairs_equals_the_end_to_end_heads_own_selection():
    """On the pairs above a threshold, the native selection gives the rows of the torch head's in-graph top-k
    (edgeseg.nn.head26.select_topk) that are above that threshold."""
    torch = pytest.importorskip("torch")
    from edgeseg.nn.head26 import select_topk

    rng = np.random.default_rng(3)
    n_anchors, nc, k, conf = 500, 4, 30, 0.5
    scores = rng.random((n_anchors, nc)).astype(np.float32)
    rows = np.concatenate(
        [rng.random((n_anchors, 4)).astype(np.float32), scores, np.zeros((n_anchors, 2), np.float32)], 1
    )
    e2e = select_topk(torch.from_numpy(rows)[None], nc, k)[0].numpy()
    e2e = e2e[e2e[:, 4] > conf]
    anchors, classes = np.nonzero(scores > conf)
    got = topk_pairs(anchors, scores[anchors, classes], k)
    np.testing.assert_array_equal(scores[anchors[got], classes[got]], e2e[:, 4])
    np.testing.assert_array_equal(classes[got], e2e[:, 5].astype(int))
    np.testing.assert_allclose(rows[anchors[got], :4], e2e[:, :4])


def test_topk_pairs_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="k must be"):
        topk_pairs(np.zeros(2, np.int32), np.zeros(2, np.float32), 0)
    with pytest.raises(ValueError, match="to match anchors"):
        topk_pairs(np.zeros(2, np.int32), np.zeros(3, np.float32), 1)
    with pytest.raises(ValueError, match="finite"):
        topk_pairs(np.zeros(1, np.int32), np.array([np.nan], np.float32), 1)
    assert topk_pairs(np.zeros(0, np.int32), np.zeros(0, np.float32), 5).shape == (0,)
