"""reduce_sum's impl: a sum over a run of leading or middle axes goes through BLAS
(a matrix-vector product with ones); it must agree with NumPy on every layout."""

import numpy as np
import pytest
from wengert.ad.primitives.reductions import reduce_sum_p

rng = np.random.default_rng(0)

AXES = [(0,), (1,), (0, 1), (1, 2), (0, 1, 2), (2,), (3,), (2, 3), (0, 2), (0, 1, 2, 3)]


@pytest.mark.parametrize("axes", AXES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.complex128])
@pytest.mark.parametrize("layout", ["C", "transposed", "sliced"])
def test_reduce_sum_matches_numpy(axes, dtype, layout):
    x = (rng.standard_normal((5, 4, 6, 3)) * 10).astype(dtype)
    if layout == "transposed":
        x = np.ascontiguousarray(x.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
    elif layout == "sliced":
        x = x[:, ::2]
    got = reduce_sum_p.impl(x, axes=axes)
    want = np.sum(x, axis=axes)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_float32_channel_sums_are_as_accurate_as_numpys():
    """A bias gradient: 73,728 rows of 6 channels, against a float64 sum."""
    x = rng.random((128, 24, 24, 6)).astype(np.float32)
    exact = x.sum((0, 1, 2), dtype=np.float64)
    got = reduce_sum_p.impl(x, axes=(0, 1, 2))
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() <= np.abs(np.sum(x, axis=(0, 1, 2)) - exact).max() + 1e-3


@pytest.mark.parametrize("n", [5, 64, 128, 129, 4000])
def test_trailing_sums_are_as_accurate_as_numpys(n):
    """Short rows (a softmax over 64 keys) go through BLAS; long ones stay pairwise."""
    x = rng.random((300, n)).astype(np.float32)
    exact = x.sum(-1, dtype=np.float64)
    got = reduce_sum_p.impl(x, axes=(1,))
    assert got.dtype == np.float32 and got.shape == (300,)
    numpy_error = np.abs(np.sum(x, axis=-1) - exact).max()
    assert np.abs(got - exact).max() <= 2 * numpy_error + 4 * np.finfo(np.float32).eps * n


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_non_finite_values_propagate_as_numpy(special):
    x = rng.random((8, 3, 4))
    x[2, 1, 3] = special
    got, want = reduce_sum_p.impl(x, axes=(0, 1)), np.sum(x, axis=(0, 1))
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    np.testing.assert_allclose(got, want, rtol=1e-12)  # NaN and inf compare equal


def test_empty_and_zero_size():
    x = np.zeros((0, 3, 2), np.float32)
    np.testing.assert_array_equal(reduce_sum_p.impl(x, axes=(0,)), np.zeros((3, 2), np.float32))
