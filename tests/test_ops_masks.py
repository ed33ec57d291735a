"""Native region-only instance masks vs the whole-map numpy reference (tests/reference/masks.py)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeseg.ops.masks import MaskSet, masks_input, masks_native
from edgeseg.ops.selection import SelectionError
from shared_paths import SHARED
from tests.reference.masks import masks_input_ref, masks_native_ref, upsample

MODEL = SHARED / "models" / "yolov8n-seg-coco-dq.onnx"
BUS = SHARED / "data" / "images" / "bus.jpg"


def make_info(orig_h, orig_w, in_h=640, in_w=640):
    """LetterboxInfo-like geometry per the letterbox contract (independent of edgeseg.ops.letterbox)."""
    r = min(in_h / orig_h, in_w / orig_w)
    new_w, new_h = max(1, round(orig_w * r)), max(1, round(orig_h * r))
    return SimpleNamespace(
        scale=r,
        new_w=new_w,
        new_h=new_h,
        in_w=in_w,
        in_h=in_h,
        orig_w=orig_w,
        orig_h=orig_h,
        pad_left=round((in_w - new_w) / 2 - 0.1),
        pad_top=round((in_h - new_h) / 2 - 0.1),
    )


def allowed(area: int) -> int:
    """At most 0.5% of a mask's pixels may differ (float rounding at logit ~ 0); 1 pixel for tiny masks."""
    return max(1, int(0.005 * area))


def check_against(ms: MaskSet, ref: np.ndarray) -> None:
    full = ms.full()
    assert full.shape == ref.shape
    for i in range(len(ms)):
        diff = int((full[i] != ref[i]).sum())
        x0, y0, x1, y1 = ms.rects[i]
        assert diff <= allowed((x1 - x0) * (y1 - y0)), f"instance {i}: {diff} pixels differ"


def rand_case(rng, n, nm, mh, mw):
    protos = rng.normal(size=(nm, mh, mw)).astype(np.float32)
    coefs = (rng.normal(size=(n, nm)) * 0.5).astype(np.float32)
    return protos, coefs


# --------------------------------------------------------------------------- reference is faithful


def test_reference_upsample_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for h, w, oh, ow in [(37, 53, 211, 389), (160, 160, 1080, 1920), (5, 7, 3, 2), (1, 1, 4, 9), (10, 3, 10, 3)]:
        x = rng.normal(size=(2, h, w)).astype(np.float32)
        t = torch.nn.functional.interpolate(torch.from_numpy(x)[None], (oh, ow), mode="bilinear", align_corners=False)[
            0
        ].numpy()
        np.testing.assert_allclose(upsample(x, oh, ow), t, atol=2e-6, rtol=0)


def test_reference_native_matches_torch_formulation():
    """masks_native_ref == Ultralytics' process_mask_native written with torch (scale_masks + crop_mask)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    protos, coefs = rand_case(rng, 4, 8, 40, 40)
    H, W = 90, 170
    boxes = np.array([[3.2, 4.7, 80.5, 60.1], [0, 0, 170, 90], [100.9, 10, 169.2, 89.5], [40, 40, 41, 41]], np.float32)
    logits = torch.from_numpy(coefs) @ torch.from_numpy(protos).view(8, -1)
    logits = logits.view(-1, 40, 40)[None]
    gain = min(40 / H, 40 / W)
    pw, ph = (40 - W * gain) / 2, (40 - H * gain) / 2
    top, left = round(ph - 0.1), round(pw - 0.1)
    up = F.interpolate(logits[..., top : 40 - round(ph + 0.1), left : 40 - round(pw + 0.1)], (H, W), mode="bilinear")[0]
    b = torch.from_numpy(boxes)[:, :, None]
    r = torch.arange(W, dtype=torch.float32)[None, None, :]
    c = torch.arange(H, dtype=torch.float32)[None, :, None]
    keep = (r >= b[:, 0:1]) & (r < b[:, 2:3]) & (c >= b[:, 1:2]) & (c < b[:, 3:4])
    expected = ((up * keep) > 0).numpy()
    ref, _ = masks_native_ref(protos, coefs, boxes, (H, W))
    assert (ref != expected).sum() <= 5


# --------------------------------------------------------------------------- native vs reference


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 5),
    nm=st.integers(1, 8),
    mh=st.integers(1, 40),
    mw=st.integers(1, 40),
    H=st.integers(1, 120),
    W=st.integers(1, 120),
)
def test_native_matches_reference(seed, n, nm, mh, mw, H, W):
    rng = np.random.default_rng(seed)
    protos, coefs = rand_case(rng, n, nm, mh, mw)
    # boxes partly/fully outside, zero-area, fractional
    xy = rng.uniform(-0.3, 1.3, size=(n, 2, 2)) * [W, H]
    boxes = np.concatenate([xy.min(1), xy.max(1)], 1).astype(np.float32)
    if n:
        boxes[0, 2] = boxes[0, 0]  # zero width
    info = make_info(H, W)
    ms = masks_native(protos, coefs, boxes, info)
    ref, nonfinite = masks_native_ref(protos, coefs, boxes, (H, W))
    assert len(ms) == n and ms.image_shape == (H, W)
    check_against(ms, ref)
    assert ms.nonfinite == nonfinite == 0
    if n:
        assert ms.areas()[0] == 0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 5),
    nm=st.integers(1, 8),
    H=st.integers(1, 150),
    W=st.integers(1, 150),
    in_h=st.sampled_from([32, 64, 96]),
    in_w=st.sampled_from([32, 64, 128]),
)
def test_input_matches_reference(seed, n, nm, H, W, in_h, in_w):
    rng = np.random.default_rng(seed)
    protos, coefs = rand_case(rng, n, nm, in_h // 4, in_w // 4)
    info = make_info(H, W, in_h, in_w)
    xy = rng.uniform(-0.2, 1.2, size=(n, 2, 2)) * [in_w, in_h]
    boxes = np.concatenate([xy.min(1), xy.max(1)], 1).astype(np.float32)
    ms = masks_input(protos, coefs, boxes, info)
    ref, nonfinite = masks_input_ref(protos, coefs, boxes, vars(info))
    check_against(ms, ref)
    assert ms.nonfinite == nonfinite == 0


@pytest.mark.parametrize("fn", ["native", "input"])
def test_nonfinite_logits_are_background_and_counted(fn):
    rng = np.random.default_rng(3)
    protos, coefs = rand_case(rng, 3, 6, 32, 32)
    protos[2, 5:9, 10:14] = np.nan
    protos[4, 20, 20] = np.inf
    protos[1, 25, 3] = -np.inf
    coefs[2, 0] = np.nan  # whole instance 2 non-finite
    info = make_info(100, 140, 128, 128)
    if fn == "native":
        boxes = np.array([[0, 0, 140, 100], [10, 10, 90, 70], [30, 20, 60, 50]], np.float32)
        ms = masks_native(protos, coefs, boxes, info)
        ref, nonfinite = masks_native_ref(protos, coefs, boxes, (100, 140))
    else:
        boxes = np.array([[0, 0, 128, 128], [20, 30, 90, 100], [40, 40, 70, 80]], np.float32)
        ms = masks_input(protos, coefs, boxes, info)
        ref, nonfinite = masks_input_ref(protos, coefs, boxes, vars(info))
    check_against(ms, ref)
    assert nonfinite > 0 and ms.nonfinite == nonfinite
    assert ms.areas()[2] == 0


def test_hwc_and_batch_layouts_equal_chw():
    rng = np.random.default_rng(4)
    protos, coefs = rand_case(rng, 4, 32, 160, 160)
    info = make_info(480, 640)
    boxes = np.array([[10, 10, 300, 400], [200, 100, 640, 480], [0, 0, 5, 5], [50, 60, 55, 60]], np.float32)
    base = masks_native(protos, coefs, boxes, info)
    hwc = masks_native(np.ascontiguousarray(protos.transpose(1, 2, 0)), coefs, boxes, info, layout="hwc")
    batched = masks_native(protos[None], coefs, boxes, info)
    hwc_b = masks_native(np.ascontiguousarray(protos.transpose(1, 2, 0))[None], coefs, boxes, info, layout="hwc")
    for other in (hwc, batched, hwc_b):
        np.testing.assert_array_equal(other.rects, base.rects)
        assert int((other.data != base.data).sum()) <= 2
    bi = boxes + [info.pad_left, info.pad_top, info.pad_left, info.pad_top]  # noqa: RUF005 - numpy broadcast
    a = masks_input(protos, coefs, bi, info)
    b = masks_input(np.ascontiguousarray(protos.transpose(1, 2, 0)), coefs, bi, info, layout="hwc")
    np.testing.assert_array_equal(a.rects, b.rects)
    assert int((a.data != b.data).sum()) <= 2


def test_threads_give_identical_results():
    rng = np.random.default_rng(5)
    protos, coefs = rand_case(rng, 12, 32, 160, 160)
    info = make_info(720, 1280)
    xy = rng.uniform(0, 1, size=(12, 2, 2)) * [1280, 720]
    boxes = np.concatenate([xy.min(1), xy.max(1)], 1).astype(np.float32)
    one = masks_native(protos, coefs, boxes, info, threads=1)
    two = masks_native(protos, coefs, boxes, info, threads=2)
    np.testing.assert_array_equal(one.data, two.data)
    # concurrent calls from Python threads (the GIL is released while computing)
    results = [None] * 4

    def work(k):
        results[k] = masks_native(protos, coefs, boxes, info, threads=1)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r.data, one.data)


# --------------------------------------------------------------------------- edge cases


def test_boxes_outside_and_zero_area_give_empty_entries():
    rng = np.random.default_rng(6)
    protos, coefs = rand_case(rng, 5, 4, 16, 16)
    coefs[:] = 0
    coefs[:, 0] = 1
    protos[0] = 5.0  # everything foreground where computed
    info = make_info(50, 80, 64, 64)
    boxes = np.array(
        [[-20, -20, -5, -5], [90, 10, 120, 40], [10, 10, 10, 40], [10, 10, 40, 10.0], [10, 10, 20, 30]], np.float32
    )
    ms = masks_native(protos, coefs, boxes, info)
    assert len(ms) == 5
    np.testing.assert_array_equal(ms.areas(), [0, 0, 0, 0, 200])
    assert ms.bitmap(4).shape == (20, 10) and ms.bitmap(0).size == 0


def test_one_pixel_images():
    rng = np.random.default_rng(7)
    protos, coefs = rand_case(rng, 2, 8, 160, 160)
    for H, W in [(1, 1), (1, 1000), (1000, 1)]:
        info = make_info(H, W)
        boxes = np.array([[0, 0, W, H], [0, 0, 0.5, 0.5]], np.float32)
        ms = masks_native(protos, coefs, boxes, info)
        ref, _ = masks_native_ref(protos, coefs, boxes, (H, W))
        check_against(ms, ref)
        bi = np.array([[0, 0, 640, 640], [300, 300, 340, 340]], np.float32)
        mi = masks_input(protos, coefs, bi, info)
        refi, _ = masks_input_ref(protos, coefs, bi, vars(info))
        check_against(mi, refi)


def test_very_large_image_is_region_only():
    rng = np.random.default_rng(8)
    protos, coefs = rand_case(rng, 3, 32, 160, 160)
    H, W = 6000, 8000
    info = make_info(H, W)
    boxes = np.array([[100, 200, 180, 330], [7000.5, 5000.2, 7100, 5100], [4000, 3000, 4050, 3020]], np.float32)
    masks_native(protos, coefs, boxes, info)  # warm up
    t = time.perf_counter()
    ms = masks_native(protos, coefs, boxes, info)
    elapsed = time.perf_counter() - t
    assert elapsed < 0.05, f"{elapsed * 1e3:.1f} ms for 3 small boxes on an 8000x6000 frame"
    assert ms.data.nbytes == 80 * 130 + 99 * 99 + 50 * 20  # compact: only the box pixels (ceil of x1, y1)
    for i in range(3):
        x0, y0, x1, y1 = ms.rects[i]
        ref, _ = masks_native_ref(
            protos, coefs[i : i + 1], boxes[i : i + 1], (H, W), rows=np.arange(y0, y1), cols=np.arange(x0, x1)
        )
        assert int((ref[0] != ms.bitmap(i).astype(bool)).sum()) <= allowed(ref[0].size)
    bi = boxes * info.scale + [info.pad_left, info.pad_top, info.pad_left, info.pad_top]
    t = time.perf_counter()
    mi = masks_input(protos, coefs, bi.astype(np.float32), info)
    assert time.perf_counter() - t < 0.2
    assert mi.data.nbytes < 3 * 400 * 400


# --------------------------------------------------------------------------- MaskSet


def small_set():
    rects = np.array([[1, 1, 4, 3], [2, 0, 5, 2], [0, 0, 0, 0]], np.int32)
    data = np.array([1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1], np.uint8)
    return MaskSet(rects, data, np.array([0, 6, 12, 12]), (4, 6))


def test_maskset_accessors():
    ms = small_set()
    assert len(ms) == 3
    np.testing.assert_array_equal(ms.areas(), [4, 5, 0])
    np.testing.assert_array_equal(ms.bitmap(0), [[1, 1, 0], [0, 1, 1]])
    np.testing.assert_array_equal(ms.bitmap(-1).shape, (0, 0))
    full = ms.full()
    assert full.shape == (3, 4, 6) and full.dtype == bool
    assert full[0, 1, 1] and full[0, 2, 3] and not full[0, 1, 3]
    np.testing.assert_array_equal(full.sum((1, 2)), ms.areas())
    lm = ms.label_map()
    assert lm.dtype == np.int32 and lm[1, 2] == 2 and lm[1, 1] == 1 and lm[0, 0] == 0
    assert ms.label_map(order=[1, 0])[1, 2] == 1  # instance 0 painted last
    np.testing.assert_array_equal(ms.full([1]), full[1:2])


@pytest.mark.parametrize(
    ("sel", "expect"),
    [(np.array([True, False, True]), [0, 2]), ([2, 0], [2, 0]), (slice(1, None), [1, 2]), (np.array([], np.int64), [])],
)
def test_maskset_select(sel, expect):
    ms = small_set()
    sub = ms.select(sel)
    assert len(sub) == len(expect)
    np.testing.assert_array_equal(sub.rects, ms.rects[expect].reshape(-1, 4))
    for j, i in enumerate(expect):
        np.testing.assert_array_equal(sub.bitmap(j), ms.bitmap(i))
    np.testing.assert_array_equal(sub.areas(), ms.areas()[expect])


def test_maskset_empty_and_validation():
    e = MaskSet.empty((10, 20))
    assert len(e) == 0 and e.full().shape == (0, 10, 20) and e.label_map().sum() == 0 and e.areas().size == 0
    with pytest.raises(ValueError):
        MaskSet(np.array([[0, 0, 2, 2]]), np.zeros(3, np.uint8), np.array([0, 3]), (4, 4))
    with pytest.raises(ValueError):
        MaskSet(np.array([[0, 0, 5, 2]]), np.zeros(10, np.uint8), np.array([0, 10]), (4, 4))
    with pytest.raises(ValueError):
        small_set().select(np.array([True]))
    with pytest.raises(IndexError):
        small_set().bitmap(3)


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_value_error():
    p = np.zeros((32, 16, 16), np.float32)
    c = np.zeros((2, 32), np.float32)
    b = np.zeros((2, 4), np.float32)
    info = make_info(10, 10, 64, 64)
    cases = [
        lambda: masks_native(p[0], c, b, info),  # 2-D protos
        lambda: masks_native(p[None, None], c, b, info),  # 5-D
        lambda: masks_native(np.zeros((2, 32, 16, 16), np.float32), c, b, info),  # batch 2
        lambda: masks_native(p, c[:, :31], b, info),  # coef width mismatch
        lambda: masks_native(p, c, b[:1], info),  # row mismatch
        lambda: masks_native(p, c, b[:, :3], info),
        lambda: masks_native(p.astype(np.int32), c, b, info),  # dtype
        lambda: masks_native(p, c.astype(object), b, info),
        lambda: masks_native(p, c, np.full((2, 4), np.nan, np.float32), info),  # NaN boxes
        lambda: masks_native(p, c, b, info, layout="nhwc"),
        lambda: masks_native(p, c, b, object()),  # not a LetterboxInfo
        lambda: masks_native(p, c, b, SimpleNamespace(orig_h=0, orig_w=5)),
        lambda: masks_native(np.zeros((0, 16, 16), np.float32), np.zeros((2, 0), np.float32), b, info),
        lambda: masks_input(p, c, b, SimpleNamespace(**{**vars(info), "new_w": 100})),  # outside input
        lambda: masks_input(p, c, b, SimpleNamespace(**{**vars(info), "pad_left": -1})),
    ]
    for k, case in enumerate(cases):
        with pytest.raises(ValueError):
            case()
            pytest.fail(f"case {k} did not raise")


def test_empty_inputs():
    p = np.zeros((32, 16, 16), np.float32)
    info = make_info(10, 12, 64, 64)
    ms = masks_native(p, np.zeros((0, 32), np.float32), np.zeros((0, 4), np.float32), info)
    assert len(ms) == 0 and ms.image_shape == (10, 12)
    mi = masks_input(p, np.zeros((0, 32), np.float32), np.zeros((0, 4), np.float32), info)
    assert len(mi) == 0


# --------------------------------------------------------------------------- real model


def simple_nms(boxes, scores, iou=0.7):
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)

        def area(b):
            return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])

        order = rest[inter / (area(boxes[i]) + area(boxes[rest]) - inter + 1e-9) <= iou]
    return np.array(keep, np.int64)


@pytest.mark.skipif(not (MODEL.exists() and BUS.exists()), reason="shared model/data not available")
def test_real_model_bus():
    ort = pytest.importorskip("onnxruntime")
    cv2 = pytest.importorskip("cv2")
    img = cv2.imread(str(BUS))
    H, W = img.shape[:2]
    info = make_info(H, W)
    resized = cv2.resize(img, (info.new_w, info.new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((640, 640, 3), 114, np.uint8)
    canvas[info.pad_top : info.pad_top + info.new_h, info.pad_left : info.pad_left + info.new_w] = resized
    x = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255
    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    out0, out1 = sess.run(None, {sess.get_inputs()[0].name: x})
    pred = out0[0].T  # [8400, 116]
    cls = pred[:, 4:84]
    score, cid = cls.max(1), cls.argmax(1)
    sel = score > 0.25
    xywh, score, cid, coefs = pred[sel, :4], score[sel], cid[sel], pred[sel, 84:]
    boxes_in = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    keep = simple_nms(boxes_in + cid[:, None] * 7680.0, score)
    boxes_in, cid, coefs = boxes_in[keep].astype(np.float32), cid[keep], np.ascontiguousarray(coefs[keep])
    assert (cid == 0).sum() >= 3 and 5 in cid  # people and a bus
    boxes = (boxes_in - [info.pad_left, info.pad_top, info.pad_left, info.pad_top]) / info.scale
    boxes = np.clip(boxes, 0, [W, H, W, H]).astype(np.float32)
    protos = out1[0]

    ms = masks_native(protos, coefs, boxes, info)
    ref, _ = masks_native_ref(protos, coefs, boxes, (H, W))
    check_against(ms, ref)
    areas = ms.areas()
    box_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert (areas > 0.2 * box_area).all()  # real objects fill a good part of their box

    mi = masks_input(protos, coefs, boxes_in, info)
    refi, _ = masks_input_ref(protos, coefs, boxes_in, vars(info))
    check_against(mi, refi)
    # both resolutions agree on what the objects are
    inter = (ms.full() & mi.full()).sum((1, 2))
    union = (ms.full() | mi.full()).sum((1, 2))
    assert (inter / union > 0.85).all()


def test_arrays_from_pickle_are_accepted():
    """numpy arrays unpickled (or loaded) carry an equal but not identical dtype object; the core compares dtypes
    by equality (it once said "must have dtype float32, got float32")."""
    import pickle

    from edgeseg.ops.nms import nms

    boxes = pickle.loads(pickle.dumps(np.array([[0, 0, 10, 10], [1, 1, 11, 11]], np.float32)))
    scores = pickle.loads(pickle.dumps(np.array([0.9, 0.8], np.float32)))
    assert boxes.dtype is not np.dtype(np.float32)
    assert nms(boxes, scores, iou=0.5).tolist() == [0]


def test_select_copies_the_chosen_bitmaps_in_order():
    rng = np.random.default_rng(3)
    rects = np.array([[0, 0, 4, 3], [2, 2, 7, 9], [5, 1, 6, 2], [1, 1, 1, 5]], np.int32)  # the last is empty
    sizes = (rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])
    data = rng.integers(0, 2, int(sizes.sum())).astype(np.uint8)
    masks = MaskSet(rects, data, np.concatenate([[0], np.cumsum(sizes)]), (10, 10))
    for rows in ([2, 0], [3, 1, 1], [], np.array([True, False, True, True])):
        picked = masks.select(rows)
        index = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, int)
        assert picked.rects.tolist() == rects[index].tolist()
        for j, i in enumerate(index):
            np.testing.assert_array_equal(picked.bitmap(j), masks.bitmap(int(i)))
        MaskSet(picked.rects, picked.data, picked.offsets, picked.image_shape)  # a valid set
    with pytest.raises(SelectionError):
        masks.select([4])
