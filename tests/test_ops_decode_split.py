"""Native split-output decoding (edgeseg.ops.decode_split) against the numpy reference, and against
decoding the single-output head of the same model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeseg.ops.decode import decode
from edgeseg.ops.decode_split import LevelSpec, SplitLayout, decode_split, decode_split_dense, quantised_threshold
from tests.reference.decode_split import decode_split as ref_decode_split


def make_levels(rng, sizes, nc, nm, reg_max, dtype, cn):
    box, cls, coef, bq, cq, mq = [], [], [], [], [], []
    for h, w in sizes:
        hw = h * w
        shapes = [(hw, 4 * reg_max), (hw, nc), (hw, nm)]
        if cn:
            shapes = [(c, n) for n, c in shapes]
        arrays = []
        for shape, lo, hi in zip(shapes, (-8, -14, -3), (12, 4, 3)):
            if dtype == np.float32:
                arrays.append(rng.uniform(lo, hi, size=shape).astype(np.float32))
            else:
                info = np.iinfo(dtype)
                arrays.append(rng.integers(info.min, info.max + 1, size=shape).astype(dtype))
        box.append(arrays[0]), cls.append(arrays[1]), coef.append(arrays[2])
        if dtype == np.float32:
            bq.append((1.0, 0)), cq.append((1.0, 0)), mq.append((1.0, 0))
        else:
            zp = lambda: int(rng.integers(-20, 21)) + (0 if dtype == np.int8 else 128)  # noqa: E731
            bq.append((float(rng.uniform(0.05, 0.2)), zp()))
            cq.append((float(rng.uniform(0.03, 0.12)), zp() + 60))
            mq.append((float(rng.uniform(0.01, 0.05)), zp()))
    return box, cls, coef, bq, cq, mq


def check_same(got, want, atol=1e-4):
    assert len(got) == len(want["scores"])
    np.testing.assert_array_equal(got.anchors, want["anchors"])
    np.testing.assert_array_equal(got.class_ids, want["class_ids"])
    np.testing.assert_allclose(got.scores, want["scores"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.boxes, want["boxes"], rtol=1e-5, atol=atol)
    np.testing.assert_allclose(got.coefs, want["coefs"], rtol=1e-6, atol=1e-6)
    assert got.nonfinite == want["nonfinite"]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.int8, np.uint8, np.float32]),
    cn=st.booleans(),
    multi=st.booleans(),
    conf=st.sampled_from([0.0, 0.001, 0.25, 0.5, 0.9, 1.0]),
    nc=st.integers(1, 6),
    nm=st.integers(0, 4),
    reg_max=st.sampled_from([1, 4, 16]),
    use_classes=st.booleans(),
    max_nms=st.sampled_from([1, 3, 30000]),
)
def test_core_matches_reference(seed, dtype, cn, multi, conf, nc, nm, reg_max, use_classes, max_nms):
    rng = np.random.default_rng(seed)
    sizes, strides = [(3, 4), (2, 2), (1, 1)], [8.0, 16.0, 32.0]
    box, cls, coef, bq, cq, mq = make_levels(rng, sizes, nc, nm, reg_max, dtype, cn)
    classes = sorted(rng.choice(nc, size=max(1, nc // 2), replace=False).tolist()) if use_classes else None
    q = {} if dtype == np.float32 else {"box_q": bq, "cls_q": cq, "coef_q": mq}
    got = decode_split(
        box,
        cls,
        coef,
        sizes=sizes,
        strides=strides,
        nc=nc,
        nm=nm,
        reg_max=reg_max,
        layout="chw" if cn else "hwc",
        conf=conf,
        multi_label=multi,
        max_nms=max_nms,
        classes=classes,
        **q,
    )
    want, dense = ref_decode_split(
        box,
        cls,
        coef,
        sizes=sizes,
        strides=strides,
        nc=nc,
        nm=nm,
        reg_max=reg_max,
        cn=cn,
        conf=conf,
        multi_label=multi,
        max_nms=max_nms,
        classes=classes,
        **q,
    )
    check_same(got, want)
    got_dense = decode_split_dense(
        box, cls, coef, sizes=sizes, strides=strides, nc=nc, nm=nm, reg_max=reg_max, layout="chw" if cn else "hwc", **q
    )
    np.testing.assert_allclose(got_dense, dense, rtol=1e-5, atol=1e-4)


def test_quantised_threshold_is_exact_at_the_boundary():
    scale, zp = 0.1, 5
    thr = quantised_threshold(0.25, scale, zp)
    assert thr == math.floor(math.log(0.25 / 0.75) / scale + zp)
    # one level, one anchor, one class: q == thr is rejected, q == thr + 1 accepted
    for q, expected in ((int(thr), 0), (int(thr) + 1, 1)):
        cls = [np.array([[q]], np.int8)]
        box = [np.zeros((1, 4), np.int8)]
        coef = [np.zeros((1, 0), np.int8)]
        got = decode_split(
            box,
            cls,
            coef,
            sizes=[(1, 1)],
            strides=[8],
            nc=1,
            nm=0,
            reg_max=1,
            box_q=[(1.0, 0)],
            cls_q=[(scale, zp)],
            coef_q=[(1.0, 0)],
            conf=0.25,
        )
        assert len(got) == expected
        if expected:
            assert got.scores[0] > 0.25  # the dequantised score is above conf too


def test_nonfinite_float_inputs_are_counted_and_skipped():
    sizes = [(1, 2)]
    cls = [np.array([[np.nan, 1.0], [3.0, 1.0]], np.float32)]
    box = [np.zeros((2, 4), np.float32)]
    coef = [np.array([[0.0], [np.inf]], np.float32)]
    got = decode_split(box, cls, coef, sizes=sizes, strides=[8], nc=2, nm=1, reg_max=1, conf=0.1)
    assert len(got) == 0 and got.nonfinite == 2


def test_bad_inputs_raise_clearly():
    box = [np.zeros((4, 64), np.int8)]
    cls = [np.zeros((4, 3), np.int8)]
    coef = [np.zeros((4, 2), np.int8)]
    q = {"box_q": [(0.1, 0)], "cls_q": [(0.1, 0)], "coef_q": [(0.1, 0)]}
    with pytest.raises(ValueError, match="values, expected"):
        decode_split(box, cls, coef, sizes=[(3, 3)], strides=[8], nc=3, nm=2, **q)
    with pytest.raises(ValueError, match="share one dtype"):
        decode_split(box, [cls[0].astype(np.float32)], coef, sizes=[(2, 2)], strides=[8], nc=3, nm=2, **q)
    with pytest.raises(ValueError, match="required for quantised"):
        decode_split(box, cls, coef, sizes=[(2, 2)], strides=[8], nc=3, nm=2)
    with pytest.raises(ValueError, match="scale must be positive"):
        decode_split(
            box,
            cls,
            coef,
            sizes=[(2, 2)],
            strides=[8],
            nc=3,
            nm=2,
            box_q=[(0.0, 0)],
            cls_q=[(0.1, 0)],
            coef_q=[(0.1, 0)],
        )
    with pytest.raises(ValueError, match="float32, int8 or uint8"):
        decode_split([box[0].astype(np.int16)], cls, coef, sizes=[(2, 2)], strides=[8], nc=3, nm=2, **q)
    with pytest.raises(ValueError, match="classes must be in"):
        decode_split(box, cls, coef, sizes=[(2, 2)], strides=[8], nc=3, nm=2, classes=[5], **q)


def test_matches_the_single_output_head_of_a_real_model(shared):
    """The float split outputs of yolov8n-seg, decoded natively, give the same candidates as the
    model's own (torch) decode in the single-output layout."""
    torch = pytest.importorskip("torch")
    ckpt = shared / "models" / "yolov8n-seg-coco-dq.pt"
    image = shared / "data" / "images" / "bus.jpg"
    if not ckpt.is_file() or not image.is_file():
        pytest.skip("shared models/data not available")
    from edgeseg.exporters.common import check_image_blob, load_source_model
    from edgeseg.exporters.tflite_split import SplitOutputModel

    source = load_source_model(ckpt)
    blob, _ = check_image_blob(image, (640, 640))
    x = torch.from_numpy(blob)
    with torch.no_grad():
        preds, protos = source.model(x)
        split = [t.numpy() for t in SplitOutputModel(source.model, cls_floor=None).eval()(x)]
    sizes = [(80, 80), (40, 40), (20, 20)]
    layout = SplitLayout(
        levels=tuple(
            LevelSpec(box=3 * i, cls=3 * i + 1, coef=3 * i + 2, size=sizes[i], stride=8.0 * 2**i) for i in range(3)
        ),
        protos_index=9,
        nc=80,
        nm=32,
        layout="chw",
        protos_layout="chw",
    )
    for multi in (False, True):
        want = decode(preds.numpy(), 80, conf=0.25 if not multi else 0.05, multi_label=multi)
        got, p = layout.decode(split, conf=0.25 if not multi else 0.05, multi_label=multi)
        np.testing.assert_array_equal(got.anchors, want.anchors)
        np.testing.assert_array_equal(got.class_ids, want.class_ids)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        np.testing.assert_allclose(got.boxes, want.boxes, atol=2e-3)
        np.testing.assert_allclose(got.coefs, want.coefs, atol=1e-5)
    assert len(layout.decode(split, conf=0.25)[0]) >= 5  # people and the bus
    dense, p = layout.split(split)
    np.testing.assert_allclose(dense, preds.numpy()[0], atol=2e-3)
    np.testing.assert_array_equal(p, protos.numpy()[0])
