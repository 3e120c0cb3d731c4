"""Ordinary NumPy programs handed traced values behave as NumPy: integer arithmetic
stays integer, integer traced arrays index plain arrays, einsum broadcasts and
takes sublists, Python scalars mix with traced arrays, and NumPy's describing
functions work on tracers."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp


def _under_gradient(fn, x):
    """Run ``fn(x_traced)`` inside a gradient and return what it returned (unwrapped)."""
    seen = []

    def f(x):
        seen.append(fn(x))
        return wnp.sum(x)

    ad.gradient(f, x)
    return seen[0]


# ---- integer arithmetic ----------------------------------------------------------------------
@pytest.mark.parametrize("op", [
    lambda i: i % 3, lambda i: 7 % (i + 1), lambda i: i // 2, lambda i: 9 // (i + 1),
    lambda i: np.mod(i, 3), lambda i: np.remainder(i, -3), lambda i: np.floor_divide(i, -2),
    lambda i: divmod(i, 3)[0], lambda i: divmod(i, 3)[1], lambda i: np.divmod(i, 4)[1],
    lambda i: wnp.mod(i, 3), lambda i: wnp.floor_divide(i, 3),
], ids=["%", "r%", "//", "r//", "np.mod", "np.remainder", "np.floor_divide", "divmod[0]",
        "divmod[1]", "np.divmod", "wnp.mod", "wnp.floor_divide"])
def test_integer_arithmetic_on_traced_integers_stays_integer(op):
    x = np.array([-3.5, 0.5, 2.5, 7.5])

    def traced(x):
        i = wnp.floor(x).astype(np.int64)
        return i, op(i)

    i, got = _under_gradient(traced, x)
    want = op(np.floor(x).astype(np.int64))
    assert got.dtype == want.dtype == np.int64
    np.testing.assert_array_equal(np.asarray(got), want)


def test_integer_traced_arrays_index_plain_arrays():
    table = np.arange(10.0) ** 2

    def advect(x):
        i = wnp.floor(x).astype(int) % 10   # the cell of each particle
        frac = x - wnp.floor(x)
        return wnp.sum(table[i] * (1 - frac) + table[(i + 1) % 10] * frac)

    x = np.array([1.25, 4.5, 8.75])
    g = ad.gradient(advect, x)[0]
    i = np.floor(x).astype(int)
    np.testing.assert_allclose(g, table[(i + 1) % 10] - table[i])


def test_float_remainder_keeps_its_derivatives():
    x, y = np.array([5.5, -3.2]), np.array([2.0, 1.5])
    gx, gy = ad.gradient(lambda x, y: wnp.sum(np.mod(x, y)), x, y)
    np.testing.assert_array_equal(gx, [1.0, 1.0])
    np.testing.assert_array_equal(gy, -np.floor_divide(x, y))


# ---- einsum ------------------------------------------------------------------------------------
RNG = np.random.default_rng(0)


@pytest.mark.parametrize("spec, shapes", [
    ("mnd,mdo->mno", [(1, 2, 3), (4, 3, 5)]),        # size-1 batch label broadcasts
    ("ij,jk", [(2, 1), (3, 4)]),                     # size-1 contracted label broadcasts
    ("...ij,...jk", [(1, 2, 3), (4, 3, 2)]),         # through the ellipsis
])
def test_einsum_broadcasts_size_one_labels_as_numpy(spec, shapes):
    a, b = (RNG.standard_normal(s) for s in shapes)
    np.testing.assert_allclose(wnp.einsum(spec, a, b), np.einsum(spec, a, b), rtol=1e-12)
    ga = ad.gradient(lambda a: wnp.sum(np.einsum(spec, a, b) ** 2), a)[0]
    eps = 1e-6
    da = RNG.standard_normal(a.shape)
    f = lambda a: np.sum(np.einsum(spec, a, b) ** 2)
    assert np.sum(ga * da) == pytest.approx((f(a + eps * da) - f(a - eps * da)) / (2 * eps),
                                            rel=1e-6)


@pytest.mark.parametrize("args", [
    lambda a, b: (a, [0, 1], b, [1, 2]),
    lambda a, b: (a, [0, 1], b, [1, 2], [2, 0]),
    lambda a, b: (a, [Ellipsis, 1], b, [1, 2], [Ellipsis, 2]),
], ids=["implicit output", "explicit output", "ellipsis"])
def test_einsum_sublist_form(args):
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4))
    np.testing.assert_allclose(wnp.einsum(*args(a, b)), np.einsum(*args(a, b)), rtol=1e-12)
    g = ad.gradient(lambda a: wnp.sum(np.einsum(*args(a, b))), a)[0]
    np.testing.assert_allclose(g, np.broadcast_to(b.sum(1), a.shape), rtol=1e-12)


# ---- Python scalars as operands ------------------------------------------------------------------
W = np.arange(6.0).reshape(2, 3)


@pytest.mark.parametrize("fn", [
    lambda s: np.tensordot(s, W, 0), lambda s: np.einsum(",ij->ij", s, W),
    lambda s: wnp.einsum(",->", s, 3.0), lambda s: np.dot(s, W), lambda s: np.inner(W, s),
    lambda s: wnp.tensordot(W, s, 0), lambda s: wnp.dot(2.0, s),
    lambda s: (s * 1j).imag * W, lambda s: wnp.abs(W + 1j * s), lambda s: wnp.exp(1j * s).real,
    lambda s: wnp.einsum("ij,->ij", W, 1j * s).imag,
], ids=["tensordot", "einsum", "einsum scalars", "dot", "inner", "tensordot right", "dot 2",
        "times 1j", "plus 1j", "exp 1j", "einsum 1j"])
@pytest.mark.parametrize("s", [1.5, np.float64(1.5)], ids=["float", "float64"])
def test_traced_python_scalars_in_products_and_with_complex_constants(fn, s):
    f = lambda s: wnp.sum(wnp.abs(fn(s)) ** 2)
    eps = 1e-6
    numeric = (f(s + eps) - f(s - eps)) / (2 * eps)
    assert ad.gradient(f, s)[0] == pytest.approx(numeric, rel=1e-6)
    assert ad.jvp(f, (s,), (1.0,))[1] == pytest.approx(numeric, rel=1e-6)


# ---- NumPy's describing functions ----------------------------------------------------------------
def test_numpy_describing_functions_work_on_traced_values():
    for make in (lambda f, x: ad.gradient(f, x), lambda f, x: ad.make_graph(f, x)):
        seen = {}

        def f(x):
            seen.update(ndim=np.ndim(x), shape=np.shape(x), real=np.isrealobj(x),
                        complex=np.iscomplexobj(x), rt=np.result_type(x, np.float32),
                        zreal=np.isrealobj(x * 1j), ndarray=isinstance(x, np.ndarray))
            return wnp.sum(x)

        make(f, np.ones((2, 3)))
        assert seen == dict(ndim=2, shape=(2, 3), real=True, complex=False,
                            rt=np.dtype(np.float64), zreal=False, ndarray=False)
