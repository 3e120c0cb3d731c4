"""Types in, types out: integer and boolean inputs get ``None``, float32 stays
float32, NumPy arrays come back as plain NumPy arrays and Python floats as
Python floats."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp


def test_integer_and_boolean_arguments_get_none():
    def f(x, n, mask, flag):
        return wnp.sum(wnp.where(mask, x ** n, 0.0)) * (2.0 if flag else 1.0)

    x = np.array([1.5, -0.5, 2.0])
    gx, gn, gmask, gflag = ad.gradient(f, x, 3, np.array([True, False, True]), True)
    np.testing.assert_allclose(gx, [2 * 3 * 1.5 ** 2, 0.0, 2 * 3 * 2.0 ** 2])
    assert gn is None and gmask is None and gflag is None
    (g,) = ad.gradient(lambda i: wnp.sum(i * 2.5), np.arange(3))
    assert g is None


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_is_preserved(dtype):
    x = (np.array([0.5, -1.0, 2.0]) * (1 - 0.5j if dtype == np.complex64 else 1)).astype(dtype)
    w = np.array([[1.0, 0.5], [0.0, 2.0], [-1.0, 1.0]], dtype=dtype)

    def f(x, w):
        h = wnp.tanh(x @ w) * 2.0 + wnp.exp(x).sum()
        return wnp.real(wnp.sum(h * wnp.conj(h)))

    value, (gx, gw) = ad.value_and_grad(f, (0, 1))(x, w)
    assert value.dtype == np.float32
    assert gx.dtype == dtype and gw.dtype == dtype
    g64 = ad.gradient(f, x.astype(np.complex128 if dtype == np.complex64 else np.float64), w)
    np.testing.assert_allclose(gx, g64[0], rtol=1e-4)
    _, dy = ad.jvp(f, (x, w), (np.ones_like(x), np.zeros_like(w)))
    assert dy.dtype == np.float32


def test_numpy_in_numpy_out():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    (g,) = ad.gradient(lambda x: wnp.sum(wnp.sin(x)), x)
    assert type(g) is np.ndarray and g.flags.writeable
    y, back = ad.pullback(lambda x: x[0] * 2, x)
    assert type(y) is np.ndarray
    assert type(back(np.ones(2))[0]) is np.ndarray
    # A broadcast cotangent is handed back as an ordinary, writable array.
    (g,) = ad.gradient(lambda x: wnp.sum(x), x)
    g[0, 0] = 5.0
    np.testing.assert_array_equal(g, [[5.0, 1.0], [1.0, 1.0]])


def test_python_float_in_python_float_out():
    (g,) = ad.gradient(lambda t: t ** 3 - 2 * t, 1.5)
    assert type(g) is float and g == pytest.approx(3 * 1.5 ** 2 - 2)
    (g,) = ad.gradient(lambda t: 3.0, 1.5)  # the output does not depend on t
    assert g == 0.0


def test_unused_array_argument_gets_zeros_of_its_shape():
    gx, gy = ad.gradient(lambda x, y: wnp.sum(x), np.ones(2), np.ones((2, 3), np.float32))
    assert gy.shape == (2, 3) and gy.dtype == np.float32 and not gy.any()
