"""Native dequantisation against numpy's (q.astype(float32) - zero_point) * scale: bit-identical."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeseg.ops.quant import dequantize


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from([np.int8, np.uint8]),
    shape=st.lists(st.integers(0, 17), min_size=1, max_size=4),
    scale=st.floats(1e-6, 1e3, allow_nan=False, allow_infinity=False),
    zero=st.integers(-128, 255),
    seed=st.integers(0, 2**32 - 1),
    transpose=st.booleans(),
)
def test_matches_numpy(dtype, shape, scale, zero, seed, transpose):
    info = np.iinfo(dtype)
    q = np.random.default_rng(seed).integers(info.min, info.max + 1, size=shape, dtype=dtype)
    if transpose:
        q = q.T  # not C-contiguous: copied, same values
    got = dequantize(q, scale, zero)
    want = (q.astype(np.float32) - np.float32(zero)) * np.float32(scale)
    assert got.dtype == np.float32 and got.shape == q.shape
    assert np.array_equal(got, want)


def test_real_prototype_tensor_size():
    q = np.random.default_rng(0).integers(-128, 128, size=(1, 160, 160, 32), dtype=np.int8)
    want = (q.astype(np.float32) + np.float32(117)) * np.float32(0.0213)
    assert np.array_equal(dequantize(q, 0.0213, -117), want)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros(3, np.int16), 0.1, 0), "int8 or uint8"),
        ((np.zeros(3, np.float32), 0.1, 0), "int8 or uint8"),
        (([1, 2], 0.1, 0), "numpy array"),
        ((np.zeros(3, np.int8), 0.0, 0), "scale"),
        ((np.zeros(3, np.int8), float("nan"), 0), "scale"),
        ((np.zeros(3, np.int8), -1.0, 0), "scale"),
        ((np.zeros(3, np.int8), True, 0), "scale"),
        ((np.zeros(3, np.int8), 0.1, 0.5), "zero_point"),
    ],
)
def test_bad_arguments_raise_value_error(args, match):
    with pytest.raises(ValueError, match=match):
        dequantize(*args)
