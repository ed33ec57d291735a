"""Adversarial calls of every binding of the native core: arbitrary shapes, dtypes, strides and values (NaN/inf,
huge, negative, zero-size), and the regressions found by fuzzing (tests/fuzz/). Every call must either return
or raise the binding's clear errors (ValueError for bad values, TypeError for wrong types); a crash, or under
``.ci/sanitize`` any AddressSanitizer/UBSan report, fails the run. These are the Python half of the core's
fuzzing: the libFuzzer harnesses in tests/fuzz/core/ drive the C++ kernels beneath these bindings.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

core = pytest.importorskip("edgeseg._core")

ALLOWED = (ValueError, TypeError, MemoryError)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, -0.0, 1e-45, 3.4e38, -3.4e38, float("nan"), float("inf")]),
    st.floats(-2000, 2000, width=32),
)
INTS = st.one_of(st.integers(-3, 70), st.sampled_from([0, 1, 2**31 - 1, -(2**31), 2**20, 2**20 + 1, 2**40]))


def f32(shape):
    return hnp.arrays(np.float32, shape, elements=FLOATS)


def shapes(min_dims=1, max_dims=3, max_side=12):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side)


def call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ALLOWED:
        return None


@SETTINGS
@given(
    img=hnp.arrays(np.uint8, shapes(1, 4, 9)),
    th=INTS,
    tw=INTS,
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    stride=INTS,
    fill=INTS,
    layout=st.integers(-1, 2),
    dtype=st.integers(-1, 3),
    view=st.sampled_from(["plain", "flip-rows", "flip-cols", "transpose", "step"]),
    threads=st.integers(-1, 4),
)
def test_letterbox(img, th, tw, flags, stride, fill, layout, dtype, view, threads):
    if img.ndim >= 2:
        img = {
            "plain": img,
            "flip-rows": img[::-1],
            "flip-cols": img[:, ::-1],
            "transpose": img.swapaxes(0, 1),
            "step": img[::2, ::2],
        }[view]
    th, tw = min(th, 700), min(tw, 700)  # the output is allocated: keep it small
    call(core.letterbox, img, th, tw, flags[0], flags[1], stride, fill, layout, dtype, flags[2], None, threads)
    call(core.letterbox_geometry, 7, 9, th, tw, flags[0], flags[1], stride)


@SETTINGS
@given(
    out=f32(shapes(1, 3, 40)),
    nc=INTS,
    conf=FLOATS,
    ml=st.booleans(),
    max_nms=INTS,
    cn=st.booleans(),
    sx=FLOATS,
    sy=FLOATS,
    keep=st.none() | hnp.arrays(np.uint8, st.integers(0, 9)),
)
def test_decode(out, nc, conf, ml, max_nms, cn, sx, sy, keep):
    call(core.decode, out, nc, conf, ml, max_nms, keep, cn, sx, sy)


@SETTINGS
@given(n=st.integers(0, 30), boxes=st.data(), iou=FLOATS, max_det=INTS, k=INTS)
def test_nms_and_topk(n, boxes, iou, max_det, k):
    b = boxes.draw(f32(st.sampled_from([(n, 4), (n, 3), (n,), (n, 4, 1)])))
    s = boxes.draw(f32(st.sampled_from([(n,), (n + 1,), (n, 1)])))
    c = boxes.draw(st.none() | hnp.arrays(np.int32, st.sampled_from([(n,), (n + 2,)])))
    a = boxes.draw(hnp.arrays(np.int32, st.sampled_from([(n,), (max(n - 1, 0),)])))
    call(core.nms, b, s, c, iou, max_det)
    call(core.topk_pairs, a, s, k)


@SETTINGS
@given(data=st.data(), hwc=st.booleans(), threads=st.integers(-1, 3), geo=st.lists(INTS, min_size=9, max_size=9))
def test_masks(data, hwc, threads, geo):
    protos = data.draw(f32(shapes(2, 4, 10)))
    n = data.draw(st.integers(0, 5))
    nm = protos.shape[-1 if hwc else 0] if protos.ndim == 3 else data.draw(st.integers(0, 4))
    coefs = data.draw(f32(st.sampled_from([(n, nm), (n, nm + 1), (n,)])))
    boxes = data.draw(f32(st.sampled_from([(n, 4), (n + 1, 4), (n, 2)])))
    oh, ow = (min(max(v, -2), 3000) for v in geo[:2])
    call(core.masks_native, protos, coefs, boxes, oh, ow, hwc, threads)
    g = [min(v, 3000) for v in geo[2:9]]
    call(core.masks_input, protos, coefs, boxes, *g[:4], *g[4:6], oh, ow, hwc, threads)


def _mask_set(data):
    n = data.draw(st.integers(0, 4))
    rects = data.draw(
        hnp.arrays(
            np.int32,
            st.sampled_from([(n, 4), (n, 3)]),
            elements=st.one_of(st.integers(-5, 20), st.sampled_from([2**31 - 1, -(2**31), 2**30, -(2**30)])),
        )
    )
    nbytes = data.draw(st.integers(0, 400))
    bits = data.draw(hnp.arrays(np.uint8, (nbytes,)))
    offsets = data.draw(
        st.one_of(
            hnp.arrays(np.int64, st.sampled_from([(n + 1,), (n,)]), elements=st.integers(-5, 450)),
            st.just(np.array([0] + [min(nbytes, 10 * i) for i in range(1, n + 1)], np.int64)),
        )
    )
    return n, rects, bits, offsets


@SETTINGS
@given(data=st.data(), all_=st.booleans())
def test_polygons_and_mask_rows(data, all_):
    n, rects, bits, offsets = _mask_set(data)
    call(core.polygons, rects, bits, offsets, all_)
    rows = data.draw(hnp.arrays(np.int64, st.integers(0, 5), elements=st.integers(-2, n + 1)))
    call(core.mask_rows, rects, bits, offsets, rows)


@SETTINGS
@given(
    data=st.data(),
    levels=st.integers(0, 3),
    nc=st.integers(-1, 4),
    nm=st.integers(-1, 3),
    reg_max=st.sampled_from([0, 1, 2, 16, 1025]),
    cn=st.booleans(),
    conf=FLOATS,
    dtype=st.sampled_from([np.float32, np.int8, np.uint8]),
)
def test_decode_split(data, levels, nc, nm, reg_max, cn, conf, dtype):
    sizes = [data.draw(st.tuples(st.integers(0, 4), st.integers(0, 4))) for _ in range(levels)]
    if data.draw(st.booleans()) and sizes:
        sizes[0] = data.draw(st.sampled_from([(2**31, 2**31), (2**40, 2**30), (-1, 5), (2**21, 1)]))

    def arrays(per):
        out = []
        for h, w in sizes:
            want = max(0, h * w * per) if h * w < 10_000 else data.draw(st.integers(0, 16))
            count = data.draw(st.sampled_from([want, max(0, want - 1), want + 1]))
            if dtype is np.float32:
                out.append(data.draw(f32((count,))))
            else:
                out.append(data.draw(hnp.arrays(dtype, (count,))))
        return out

    box, cls, coef = arrays(4 * max(reg_max, 1)), arrays(max(nc, 1)), arrays(max(nm, 0))
    q = [(data.draw(st.sampled_from([1.0, 0.02, 0.0, -1.0, float("nan")])), data.draw(INTS)) for _ in sizes]
    strides = [data.draw(st.sampled_from([8.0, 32.0, 0.0, -8.0, float("inf")])) for _ in sizes]
    args = (box, cls, coef, q, q, q, sizes, strides, nc, nm, reg_max, cn)
    call(core.decode_split, *args, conf, False, 300)
    call(core.decode_split_dense, *args)
    call(core.quantised_threshold, conf, q[0][0] if q else 1.0, 3.0)


@SETTINGS
@given(
    q=hnp.arrays(st.sampled_from([np.int8, np.uint8, np.int16]), shapes(0, 3, 20)),
    scale=FLOATS,
    zp=FLOATS,
    transpose=st.booleans(),
)
def test_dequantize(q, scale, zp, transpose):
    call(core.dequantize, q.T if transpose else q, scale, zp)


@SETTINGS
@given(data=st.data(), cfg=st.lists(FLOATS, min_size=7, max_size=7), hits=INTS, lost=INTS)
def test_tracker(data, cfg, hits, lost):
    tracker = call(core.Tracker, *cfg[:6], hits, lost, cfg[6], True)
    if tracker is None:
        tracker = core.Tracker()
    for _ in range(data.draw(st.integers(1, 4))):
        n, rects, bits, offsets = _mask_set(data)
        boxes = data.draw(f32(st.sampled_from([(n, 4), (n, 2)])))
        scores = data.draw(f32((n,)))
        cls = data.draw(hnp.arrays(np.int32, st.sampled_from([(n,), (n + 1,)])))
        masks = (rects, bits, offsets) if data.draw(st.booleans()) else (None, None, None)
        call(tracker.update, boxes, scores, cls, *masks, data.draw(INTS))
        tracker.tracks()
    cost = data.draw(hnp.arrays(np.float64, shapes(1, 3, 6), elements=FLOATS))
    call(core.linear_assignment, cost, data.draw(FLOATS))


# ---- regressions found by fuzzing ---------------------------------------------------------------------------


def test_polygons_rect_at_the_int32_limit():
    """fuzz_polygons (libFuzzer + UBSan) found x + ox overflowing int32 in the kernel for offsets near 2**31; the
    kernel now rejects such offsets. Through the binding a rect ends at most at 2**31 - 1, so it is still valid."""
    rects = np.array([[2**31 - 3, 0, 2**31 - 1, 2]], np.int32)
    (contours,) = core.polygons(rects, np.ones(4, np.uint8), np.array([0, 4], np.int64))
    assert len(contours) == 1 and contours[0].shape == (4, 2)


def test_polygons_rect_wider_than_int32_is_rejected():
    """A rect from -2**31 to 2**31-1 with height 0 passed the size check (w * h = 0 bytes) and its width, computed
    in int32 for the kernel, overflowed (signed overflow, undefined behaviour)."""
    rects = np.array([[-(2**31), 0, 2**31 - 1, 0]], np.int32)
    with pytest.raises(ValueError, match="implausibly large"):
        core.polygons(rects, np.zeros(0, np.uint8), np.array([0, 0], np.int64))


@pytest.mark.parametrize("size", [(2**31, 2**31), (2**32, 2**32), (2**21, 1)])
def test_decode_split_level_sizes_that_overflow_are_rejected(size):
    """h * w * 4 * reg_max could overflow int64 and wrap to the size of a small array."""
    one = [np.zeros(1, np.float32)]
    with pytest.raises(ValueError, match="level sizes"):
        core.decode_split(
            one, one, one, [(1.0, 0)], [(1.0, 0)], [(1.0, 0)], [size], [8.0], 1, 0, 1, False, 0.25, False, 300
        )
