"""edgeseg.ops.decode: native candidate decoding vs the numpy reference, layouts, non-finite handling."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeseg.ops.decode import Candidates, decode
from reference import decode as ref

FAST = settings(max_examples=50, deadline=None)


def _output(rng, n, nc, nm, *, density=0.1):
    """[C, N] head output: boxes in pixels, sparse high class scores, random coefficients."""
    out = np.empty((4 + nc + nm, n), np.float32)
    out[0:2] = rng.uniform(0, 640, (2, n))
    out[2:4] = rng.uniform(0, 200, (2, n))
    scores = rng.uniform(0, 0.3, (nc, n))
    hot = rng.random(n) < density
    scores[rng.integers(0, nc, n)[hot], np.nonzero(hot)[0]] = rng.uniform(0.2, 1.0, hot.sum())
    out[4 : 4 + nc] = scores
    out[4 + nc :] = rng.normal(0, 1, (nm, n))
    return out


def _assert_same(got: Candidates, want: dict):
    assert got.boxes.dtype == np.float32 and got.scores.dtype == np.float32 and got.coefs.dtype == np.float32
    assert got.class_ids.dtype == np.int32 and got.anchors.dtype == np.int32
    np.testing.assert_array_equal(got.anchors, want["anchors"])
    np.testing.assert_array_equal(got.class_ids, want["class_ids"])
    np.testing.assert_array_equal(got.scores, want["scores"])
    np.testing.assert_allclose(got.boxes, want["boxes"], atol=1e-3, rtol=0)
    np.testing.assert_array_equal(got.coefs, want["coefs"])
    assert got.nonfinite == want["nonfinite"]
    assert len(got) == len(want["scores"])


@FAST
@given(
    n=st.integers(0, 400),
    nc=st.integers(1, 12),
    nm=st.sampled_from([0, 1, 8, 32]),
    seed=st.integers(0, 2**32 - 1),
    conf=st.floats(0.0, 0.9),
    multi=st.booleans(),
    cn=st.booleans(),
    max_nms=st.integers(1, 500),
    use_classes=st.booleans(),
    n_bad=st.integers(0, 6),
    scale=st.sampled_from([(1.0, 1.0), (640.0, 480.0)]),
)
def test_matches_numpy_reference(n, nc, nm, seed, conf, multi, cn, max_nms, use_classes, n_bad, scale):
    rng = np.random.default_rng(seed)
    out = _output(rng, n, nc, nm, density=0.3)
    if n:
        for _ in range(n_bad):  # sprinkle NaN / inf into random rows (boxes, scores, coefficients)
            out[rng.integers(0, out.shape[0]), rng.integers(0, n)] = rng.choice([np.nan, np.inf, -np.inf])
    classes = sorted(set(rng.integers(0, nc, 3).tolist())) if use_classes else None
    arr = out if cn else np.ascontiguousarray(out.T)
    got = decode(
        arr,
        nc,
        conf=conf,
        multi_label=multi,
        max_nms=max_nms,
        classes=classes,
        layout="cn" if cn else "nc",
        box_scale=scale,
    )
    want = ref.decode(out, nc, conf=conf, multi_label=multi, max_nms=max_nms, classes=classes, box_scale=scale)
    _assert_same(got, want)


def test_multi_label_coefficients_follow_their_anchor_after_a_dropped_anchor():
    """Found by hypothesis: anchor 0 has a NaN box (dropped), anchor 1 passes for two classes; the
    candidate count then equals the used-anchor count, which must not be taken for a 1:1 mapping."""
    out = np.zeros((4 + 2 + 1, 2), np.float32)
    out[:4, 0] = [10, 10, np.nan, 4]
    out[:4, 1] = [20, 20, 8, 8]
    out[4:6, 0] = [0.9, 0.8]
    out[4:6, 1] = [0.7, 0.6]
    out[6] = [-0.5, 0.25]
    for layout, arr in (("cn", out), ("nc", np.ascontiguousarray(out.T))):
        c = decode(arr, 2, conf=0.1, multi_label=True, layout=layout)
        assert c.anchors.tolist() == [1, 1] and c.class_ids.tolist() == [0, 1] and c.nonfinite == 1
        np.testing.assert_array_equal(c.coefs, [[0.25], [0.25]])


def test_basic_box_conversion_and_fields():
    out = np.zeros((4 + 3 + 2, 4), np.float32)
    out[:4, 1] = [100, 50, 20, 10]  # cx cy w h
    out[4:7, 1] = [0.1, 0.9, 0.3]
    out[7:, 1] = [1.5, -2.0]
    out[4, 3] = 0.25  # exactly conf: not a candidate (strict >)
    c = decode(out, 3, conf=0.25)
    assert len(c) == 1 and c.nonfinite == 0
    np.testing.assert_array_equal(c.boxes, [[90, 45, 110, 55]])
    assert c.scores.tolist() == [pytest.approx(0.9)] and c.class_ids.tolist() == [1] and c.anchors.tolist() == [1]
    np.testing.assert_array_equal(c.coefs, [[1.5, -2.0]])
    ml = decode(out, 3, conf=0.26, multi_label=True)
    assert ml.class_ids.tolist() == [1, 2] and ml.anchors.tolist() == [1, 1] and ml.boxes.shape == (2, 4)
    np.testing.assert_array_equal(decode(out, 3, box_scale=(2.0, 0.5)).boxes, [[180, 22.5, 220, 27.5]])


def test_zero_candidates_and_empty_output():
    rng = np.random.default_rng(0)
    out = _output(rng, 100, 5, 4)
    c = decode(out, 5, conf=1.0)
    assert len(c) == 0 and c.boxes.shape == (0, 4) and c.coefs.shape == (0, 4) and c.anchors.shape == (0,)
    e = decode(np.zeros((13, 0), np.float32), 5)
    assert len(e) == 0 and e.coefs.shape == (0, 4)


def test_many_candidates_and_max_nms():
    rng = np.random.default_rng(1)
    out = _output(rng, 8400, 80, 32, density=0.6)
    full = decode(out, 80, conf=0.25)
    assert len(full) > 5000
    _assert_same(full, ref.decode(out, 80, conf=0.25))
    capped = decode(out, 80, conf=0.25, max_nms=1000)
    _assert_same(capped, ref.decode(out, 80, conf=0.25, max_nms=1000))
    assert len(capped) == 1000 and np.all(np.diff(capped.anchors) > 0)  # original order preserved
    assert capped.scores.min() >= np.sort(full.scores)[-1000]


def test_max_nms_ties_keep_earlier_anchors():
    out = np.zeros((4 + 1, 10), np.float32)
    out[4] = 0.5
    out[4, 7] = 0.9
    c = decode(out, 1, max_nms=3)
    assert c.anchors.tolist() == [0, 1, 7]


def test_nonfinite_is_counted_never_returned():
    out = np.zeros((4 + 3 + 2, 6), np.float32)
    out[2:4] = 10
    out[4, :] = 0.9  # all anchors are candidates
    out[5, 0] = np.nan  # NaN class score (not the max) -> never a candidate
    out[6, 1] = np.inf  # inf class score
    out[0, 2] = np.nan  # NaN box
    out[7, 3] = -np.inf  # inf coefficient
    c = decode(out, 3)
    assert c.anchors.tolist() == [4, 5] and c.nonfinite == 4
    assert np.isfinite(c.boxes).all() and np.isfinite(c.coefs).all()
    # A NaN box on an anchor that is not a candidate is not counted.
    out2 = np.zeros((5, 3), np.float32)
    out2[0, 1] = np.nan
    assert decode(out2, 1).nonfinite == 0
    # Box overflow through box_scale is non-finite too.
    out3 = np.zeros((5, 2), np.float32)
    out3[0] = 3e38
    out3[4] = 0.9
    assert len(decode(out3, 1, box_scale=(10.0, 1.0))) == 0


def test_layouts_and_batch_dim():
    rng = np.random.default_rng(2)
    out = _output(rng, 8400, 80, 32)
    want = decode(out, 80, layout="cn")
    for arr in (out[None], np.ascontiguousarray(out.T), np.ascontiguousarray(out.T)[None], out.T):
        got = decode(arr, 80)  # auto layout
        _assert_same(
            got,
            {
                "boxes": want.boxes,
                "scores": want.scores,
                "class_ids": want.class_ids,
                "anchors": want.anchors,
                "coefs": want.coefs,
                "nonfinite": want.nonfinite,
            },
        )
    # Detection-only head (nm = 0) and float16 / float64 outputs are accepted.
    det = out[:84]
    assert decode(det, 80).coefs.shape == (len(decode(det, 80)), 0)
    np.testing.assert_array_equal(decode(out.astype(np.float64), 80).anchors, want.anchors)
    assert len(decode(out.astype(np.float16), 80)) > 0


def test_classes_filter_applies_to_best_class():
    out = np.zeros((4 + 3, 3), np.float32)
    out[4:, 0] = [0.9, 0.5, 0.1]
    out[4:, 1] = [0.1, 0.8, 0.1]
    out[4:, 2] = [0.1, 0.1, 0.7]
    assert decode(out, 3, classes=[1]).anchors.tolist() == [1]
    assert decode(out, 3, classes=[1, 2]).anchors.tolist() == [1, 2]
    ml = decode(out, 3, classes=[1], multi_label=True)
    assert ml.anchors.tolist() == [0, 1] and ml.class_ids.tolist() == [1, 1]


def test_select_and_len():
    rng = np.random.default_rng(3)
    c = decode(_output(rng, 500, 4, 3, density=0.5), 4)
    sub = c.select([2, 0])
    assert len(sub) == 2 and sub.anchors.tolist() == [c.anchors[2], c.anchors[0]]
    assert sub.coefs.shape == (2, 3) and sub.nonfinite == c.nonfinite
    mask = c.scores > 0.5
    assert len(c.select(mask)) == int(mask.sum())
    assert len(c.select(slice(0, 3))) == 3
    assert len(c.select(np.array([], dtype=np.int64))) == 0
    with pytest.raises(ValueError):
        c.select(np.zeros(len(c) + 1, bool))
    with pytest.raises(ValueError):
        c.select([len(c)])


@pytest.mark.parametrize(
    ("arr", "nc", "kwargs", "match"),
    [
        (np.zeros((84, 100), np.int32), 80, {}, "float32"),
        (np.zeros(100, np.float32), 80, {}, "shape"),
        (np.zeros((2, 84, 100), np.float32), 80, {}, "batch"),
        (np.zeros((50, 60), np.float32), 80, {}, "4 \\+ nc"),
        (np.zeros((50, 100), np.float32), 80, {"layout": "cn"}, "channels"),
        (np.zeros((84, 100), np.float32), 0, {}, "nc"),
        (np.zeros((84, 100), np.float32), 80, {"conf": float("nan")}, "conf"),
        (np.zeros((84, 100), np.float32), 80, {"classes": [80]}, "classes"),
        (np.zeros((84, 100), np.float32), 80, {"classes": [0.5]}, "classes"),
        (np.zeros((84, 100), np.float32), 80, {"layout": "xy"}, "layout"),
        (np.zeros((84, 100), np.float32), 80, {"max_nms": 0}, "max_nms"),
        (np.zeros((84, 100), np.float32), 80, {"box_scale": (1.0,)}, "box_scale"),
        ([[0.0] * 10] * 84, 80, {}, "numpy array"),
    ],
)
def test_bad_input_raises_value_error(arr, nc, kwargs, match):
    with pytest.raises(ValueError, match=match):
        decode(arr, nc, **kwargs)


def test_threads_give_identical_results():
    rng = np.random.default_rng(4)
    outs = [_output(rng, 8400, 80, 32, density=0.2) for _ in range(4)]
    want = [decode(o, 80) for o in outs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: decode(outs[i % 4], 80), range(16)))
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g.anchors, want[i % 4].anchors)
        np.testing.assert_array_equal(g.coefs, want[i % 4].coefs)
