"""edgeseg.ops.letterbox: geometry parity with Ultralytics, resize parity with cv2 and the numpy reference."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeseg.ops.letterbox import LetterboxInfo, letterbox, letterbox_geometry, scale_boxes
from reference import letterbox as ref
from shared_paths import SHARED

IMAGES = SHARED / "data" / "images"
FAST = settings(max_examples=50, deadline=None)


def _image(rng, h, w):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _to_grey_levels(t, dtype):
    if dtype == "float32":
        return t.astype(np.float64) * 255
    return t.astype(np.float64) + (128 if dtype == "int8" else 0)


@FAST
@given(
    oh=st.integers(1, 5000),
    ow=st.integers(1, 5000),
    th=st.integers(1, 1400),
    tw=st.integers(1, 1400),
    scaleup=st.booleans(),
    auto=st.booleans(),
    stride=st.sampled_from([1, 8, 32, 64]),
)
def test_geometry_matches_ultralytics_formula(oh, ow, th, tw, scaleup, auto, stride):
    info = letterbox_geometry((oh, ow), (th, tw), scaleup=scaleup, auto=auto, stride=stride)
    r, left, top, uw, uh, in_w, in_h = ref.geometry(oh, ow, th, tw, scaleup=scaleup, auto=auto, stride=stride)
    assert (info.scale, info.pad_left, info.pad_top, info.new_w, info.new_h, info.in_w, info.in_h) == (
        r,
        left,
        top,
        uw,
        uh,
        in_w,
        in_h,
    )
    assert (info.orig_w, info.orig_h) == (ow, oh)
    if not auto:
        assert (info.in_h, info.in_w) == (th, tw)


def test_geometry_known_images():
    bus = letterbox_geometry((1080, 810), 640)
    assert bus == LetterboxInfo(
        scale=640 / 1080, pad_left=80, pad_top=0, new_w=480, new_h=640, in_w=640, in_h=640, orig_w=810, orig_h=1080
    )
    zid = letterbox_geometry((720, 1280), 640)
    assert (zid.new_w, zid.new_h, zid.pad_left, zid.pad_top) == (640, 360, 0, 140)
    zid_auto = letterbox_geometry((720, 1280), 640, auto=True)
    assert (zid_auto.in_w, zid_auto.in_h, zid_auto.pad_top) == (640, 384, 12)
    small = letterbox_geometry((100, 50), 640, scaleup=False)
    assert (small.scale, small.new_w, small.new_h, small.pad_left, small.pad_top) == (1.0, 50, 100, 295, 270)


def test_geometry_half_pixel_padding_split():
    # dw = 3 -> left = round(1.4) = 1, right = round(1.6) = 2 (Ultralytics' -0.1/+0.1 split).
    info = letterbox_geometry((10, 7), (10, 10))
    assert (info.new_w, info.pad_left, info.in_w) == (7, 1, 10)


@FAST
@given(
    h=st.integers(1, 48),
    w=st.integers(1, 48),
    th=st.integers(4, 72),
    tw=st.integers(4, 72),
    layout=st.sampled_from(["nchw", "nhwc"]),
    dtype=st.sampled_from(["float32", "uint8", "int8"]),
    swap=st.booleans(),
    fill=st.integers(0, 255),
    seed=st.integers(0, 2**32 - 1),
    auto=st.booleans(),
)
def test_letterbox_matches_numpy_reference(h, w, th, tw, layout, dtype, swap, fill, seed, auto):
    img = _image(np.random.default_rng(seed), h, w)
    got, info = letterbox(img, (th, tw), layout=layout, dtype=dtype, bgr_to_rgb=swap, fill=fill, auto=auto, stride=8)
    want, geo = ref.letterbox(
        img, (th, tw), layout=layout, dtype=dtype, bgr_to_rgb=swap, fill=fill, auto=auto, stride=8
    )
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
    assert (info.scale, info.pad_left, info.pad_top, info.new_w, info.new_h, info.in_w, info.in_h) == geo
    diff = np.abs(_to_grey_levels(got, dtype) - _to_grey_levels(want, dtype))
    assert diff.max() <= 1 + 1e-4
    # Padding is exactly the fill value.
    levels = _to_grey_levels(got, dtype)
    hwc = levels[0].transpose(1, 2, 0) if layout == "nchw" else levels[0]
    pad = np.ones(hwc.shape[:2], bool)
    pad[info.pad_top : info.pad_top + info.new_h, info.pad_left : info.pad_left + info.new_w] = False
    assert np.allclose(hwc[pad], fill, atol=1e-3)


def _interior(t, info):
    hwc = np.rint(t[0].transpose(1, 2, 0)[..., ::-1] * 255).astype(np.int16)  # back to BGR grey levels
    return hwc[info.pad_top : info.pad_top + info.new_h, info.pad_left : info.pad_left + info.new_w]


@pytest.mark.parametrize(
    ("shape", "target"),
    [
        ((480, 640), 640),
        ((37, 91), 640),
        ((600, 800), 300),
        ((640, 640), 320),
        ((1280, 1280), 640),
        ((333, 500), 1000),
        ((640, 480), 640),
    ],
)
def test_letterbox_matches_cv2_resize(shape, target):
    rng = np.random.default_rng(sum(shape))
    # Smooth-ish content plus noise, like a photo.
    base = cv2.resize(_image(rng, shape[0] // 8 + 1, shape[1] // 8 + 1), shape[::-1], interpolation=cv2.INTER_CUBIC)
    img = cv2.add(base, _image(rng, *shape) // 8)
    t, info = letterbox(img, target)
    want = cv2.resize(img, (info.new_w, info.new_h), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    assert np.abs(_interior(t, info) - want).max() <= 1


@pytest.mark.parametrize("name", ["bus.jpg", "zidane.jpg"])
def test_letterbox_real_images_match_cv2(name):
    path = IMAGES / name
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    img = cv2.imread(str(path))
    t, info = letterbox(img, 640)
    assert t.shape == (1, 3, 640, 640) and t.dtype == np.float32
    want = cv2.resize(img, (info.new_w, info.new_h), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    diff = np.abs(_interior(t, info) - want)
    assert diff.max() <= 1 and diff.mean() < 0.05
    assert np.allclose(t[0, :, :, : info.pad_left], 114 / 255) and np.allclose(t[0, :, : info.pad_top], 114 / 255)


def test_same_size_is_a_plain_copy():
    img = _image(np.random.default_rng(1), 64, 64)
    t, info = letterbox(img, 64, dtype="uint8", layout="nhwc", bgr_to_rgb=False)
    assert info.scale == 1.0 and np.array_equal(t[0], img)


def test_one_pixel_image():
    img = np.array([[[10, 20, 30]]], dtype=np.uint8)
    t, info = letterbox(img, 640, dtype="uint8", layout="nhwc")
    assert (info.new_w, info.new_h, info.in_w, info.in_h) == (640, 640, 640, 640)
    assert np.all(t[0] == [30, 20, 10])
    t, info = letterbox(img, 640, scaleup=False, dtype="uint8", layout="nhwc")
    assert (info.new_w, info.new_h, info.pad_left, info.pad_top) == (1, 1, 319, 319)
    assert list(t[0, 319, 319]) == [30, 20, 10] and np.all(t[0, 0, 0] == 114)


def test_extreme_aspect_ratio_keeps_one_pixel_row():
    img = _image(np.random.default_rng(2), 1, 5000)
    t, info = letterbox(img, 640, dtype="uint8")
    assert info.new_h == 1 and info.new_w == 640 and t.shape == (1, 3, 640, 640)


def test_very_large_image_matches_cv2():
    rng = np.random.default_rng(3)
    small = _image(rng, 600, 800)
    img = cv2.resize(small, (8000, 6000), interpolation=cv2.INTER_NEAREST)
    t, info = letterbox(img, 640)
    assert (info.new_w, info.new_h, info.pad_top) == (640, 480, 80)
    want = cv2.resize(img, (640, 480), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    assert np.abs(_interior(t, info) - want).max() <= 1


def test_non_contiguous_views_read_in_place():
    img = _image(np.random.default_rng(4), 300, 400)
    crop = img[10:250:2, 20:390]
    flipped = img[:, :, ::-1]  # negative channel stride (RGB view of a BGR image)
    base, _ = letterbox(np.ascontiguousarray(crop), 320)
    got, _ = letterbox(crop, 320)
    assert np.array_equal(got, base)
    a, _ = letterbox(flipped, 320, bgr_to_rgb=True)
    b, _ = letterbox(img, 320, bgr_to_rgb=False)
    assert np.array_equal(a, b)


def test_out_buffer_reuse_and_validation():
    img = _image(np.random.default_rng(5), 120, 200)
    buf = np.empty((1, 3, 640, 640), np.float32)
    got, _ = letterbox(img, 640, out=buf)
    assert got is buf
    again, _ = letterbox(img, 640)
    assert np.array_equal(buf, again)
    with pytest.raises(ValueError, match="shape"):
        letterbox(img, 640, out=np.empty((1, 640, 640, 3), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        letterbox(img, 640, out=np.empty((1, 3, 640, 640), np.float64))
    with pytest.raises(ValueError, match="contiguous"):
        letterbox(img, 640, out=np.empty((1, 3, 640, 1280), np.float32)[..., ::2])
    ro = np.empty((1, 3, 640, 640), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        letterbox(img, 640, out=ro)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((10, 10), np.uint8), "shape"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((10, 10, 1), np.uint8), "shape"),
        (np.zeros((10, 10, 3), np.uint16), "uint8"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((0, 10, 3), np.uint8), "non-empty"),
        ([[[1, 2, 3]]], "numpy array"),
    ],
)
def test_bad_images_raise_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        letterbox(bad, 640)


def test_bad_arguments_raise_value_error():
    img = np.zeros((8, 8, 3), np.uint8)
    for kwargs in [
        {"new_shape": 0},
        {"new_shape": (640,)},
        {"new_shape": (-1, 640)},
        {"new_shape": 2.5},
        {"layout": "chw"},
        {"dtype": "float16"},
        {"fill": 256},
        {"auto": True, "stride": 0},
        {"new_shape": 10**12},
    ]:
        with pytest.raises(ValueError):
            letterbox(img, **kwargs)
    with pytest.raises(ValueError):
        letterbox_geometry((0, 10), 640)


def test_scale_boxes_maps_back_and_clips():
    info = letterbox_geometry((1080, 810), 640)
    orig = np.array([[100, 200, 500, 900], [0, 0, 810, 1080]], np.float32)
    inp = orig * info.scale + np.array([info.pad_left, info.pad_top] * 2, np.float32)
    back = scale_boxes(inp, info)
    assert back.dtype == np.float32 and np.allclose(back, orig, atol=1e-2)
    outside = np.array([[-50, -50, 10, 10], [700, 600, 900, 700], [0, 0, 60, 60]], np.float32)
    got = scale_boxes(outside, info)
    assert got.min() >= 0 and got[:, 0::2].max() <= 810 and got[:, 1::2].max() <= 1080
    assert np.all(got[2, [0, 2]] == 0)  # fully inside the left padding -> zero width
    want = ref.scale_boxes(outside, info.scale, info.pad_left, info.pad_top, 810, 1080)
    assert np.allclose(got, want, atol=1e-3)
    raw = scale_boxes(outside, info, clip=False)
    assert raw.min() < 0 and np.allclose(
        raw, ref.scale_boxes(outside, info.scale, 80, 0, 810, 1080, clip=False), atol=1e-3
    )
    assert scale_boxes(np.zeros((0, 4), np.float32), info).shape == (0, 4)
    with pytest.raises(ValueError):
        scale_boxes(np.zeros((3, 5), np.float32), info)
    assert outside[0, 0] == -50  # input untouched


def test_threads_give_identical_results():
    img = _image(np.random.default_rng(6), 1080, 1920)
    want, _ = letterbox(img, 640)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: letterbox(img, 640)[0], range(8)))
    for r in results:
        assert np.array_equal(r, want)


@FAST
@given(
    h=st.integers(1, 300),
    w=st.integers(1, 300),
    th=st.integers(16, 400),
    tw=st.integers(16, 400),
    threads=st.integers(2, 7),
    layout=st.sampled_from(["nchw", "nhwc"]),
    dtype=st.sampled_from(["float32", "uint8", "int8"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_row_bands_give_the_single_thread_result(h, w, th, tw, threads, layout, dtype, seed):
    """threads > 1 splits the resized rows into bands, each with its own cached source rows: the bytes
    must not change (band edges, bands capped at 16 rows each, up- and downscaling)."""
    img = _image(np.random.default_rng(seed), h, w)
    one, info = letterbox(img, (th, tw), layout=layout, dtype=dtype, threads=1)
    many, info2 = letterbox(img, (th, tw), layout=layout, dtype=dtype, threads=threads)
    assert info == info2 and np.array_equal(one, many)


def test_threads_argument_is_checked():
    img = _image(np.random.default_rng(0), 8, 8)
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            letterbox(img, 32, threads=bad)
    big = _image(np.random.default_rng(1), 1080, 1920)
    assert np.array_equal(letterbox(big, 640, threads=0)[0], letterbox(big, 640, threads=1)[0])  # automatic


def _longest_python_stall(img):
    """Run native letterbox calls in a worker; return (longest gap seen by this Python loop, one call's time)."""
    start = time.perf_counter()
    letterbox(img, 4000, dtype="uint8")
    single = time.perf_counter() - start
    done = threading.Event()

    def work():
        for _ in range(3):
            letterbox(img, 4000, dtype="uint8")
        done.set()

    t = threading.Thread(target=work)
    t.start()
    last, longest = time.perf_counter(), 0.0
    while not done.is_set():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    t.join()
    return longest, single


def test_gil_is_released_during_native_work():
    img = _image(np.random.default_rng(7), 2000, 2000)
    letterbox(img, 4000, dtype="uint8")  # warm up
    # Holding the GIL would stall this loop for a whole native call, every attempt; OS scheduling
    # noise on a busy machine might stall one attempt, so any clean attempt passes.
    attempts = [_longest_python_stall(img) for _ in range(3)]
    assert any(longest < 0.5 * single for longest, single in attempts), attempts
