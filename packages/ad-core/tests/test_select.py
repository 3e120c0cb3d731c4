"""select's impl: large float arrays chosen by a boolean mask go through bit masks
(np.where mispredicts random masks); the result must be np.where's, bit for bit."""

import numpy as np
import pytest
from wengert.ad.primitives.elementwise import select_p

rng = np.random.default_rng(0)


def _specials(shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, np.finfo(dtype).tiny / 4]
    flat[6] = np.frombuffer(np.array([0x7FC00123], np.uint32).tobytes(), np.float32)[0] \
        if dtype == np.float32 else np.nan  # a NaN with a payload
    return x


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    uint = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    np.testing.assert_array_equal(np.ascontiguousarray(a).view(uint),
                                  np.ascontiguousarray(b).view(uint))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", ["x, 0", "0, y", "x, y", "x, 0.0", "transposed x, y"])
def test_bitwise_select_is_np_where_bit_for_bit(dtype, form):
    shape = (16, 32, 24)
    c = rng.standard_normal(shape) > 0
    x, y = _specials(shape, dtype), _specials(shape, dtype)[::-1].copy()
    if form == "transposed x, y":
        x = np.ascontiguousarray(x.transpose(2, 1, 0)).transpose(2, 1, 0)
    args = {"x, 0": (x, 0), "0, y": (0, y), "x, y": (x, y), "x, 0.0": (x, 0.0),
            "transposed x, y": (x, y)}[form]
    _same_bits(select_p.impl(c, *args), np.where(c, *args))


@pytest.mark.parametrize("args", [
    lambda x, c: (x, -0.0),  # a negative zero is not the bitwise form's +0
    lambda x, c: (x, np.float32(0)),  # a NumPy scalar: np.where's own dtype rules
    lambda x, c: (x, x[:1]),  # broadcasting
    lambda x, c: (x.astype(np.float16), 0),
    lambda x, c: (x, x.astype(np.float64)),  # mixed dtypes promote
    lambda x, c: (x.astype(np.int32), 0),
])
def test_other_forms_keep_np_where_semantics(args):
    x = rng.standard_normal((64, 128)).astype(np.float32)
    c = x > 0
    a = args(x, c)
    got, want = select_p.impl(c, *a), np.where(c, *a)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))
