"""Derivatives at the points where a naive formula has a kink or a 0 * inf: equal
arguments of logaddexp, x**0 and x**1 at 0, the standard deviation of one value,
the far tails of the logistic function."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.scipy import special


def _second_derivative_fwd_fwd(f, x):
    return ad.jvp(lambda x: ad.jvp(f, (x,), (1.0,))[1], (x,), (1.0,))[1]


@pytest.mark.parametrize("name, scale", [("logaddexp", 1.0), ("logaddexp2", np.log(2.0))])
@pytest.mark.parametrize("x, y", [(0.3, 0.3), (-2.0, -2.0), (0.3, 0.5), (5.0, -1.0)])
def test_logaddexp_second_derivatives_at_and_off_the_diagonal(name, scale, x, y):
    f = getattr(wnp, name)
    s = 1 / (1 + np.exp(-(x - y) * scale))     # d/dx, times 1/scale for base 2 ...
    d2 = scale * s * (1 - s)                    # ... and d2/dx2 = scale * s * (1 - s)
    assert float(_second_derivative_fwd_fwd(lambda x: f(x, y), x)) == pytest.approx(d2, rel=1e-12)
    h = ad.hessian(lambda v: f(v[0], v[1]), np.array([x, y]))
    np.testing.assert_allclose(h, d2 * np.array([[1, -1], [-1, 1]]), rtol=1e-12)
    # logsumexp of equal values goes through the same kink
    if name == "logaddexp" and x == y:
        h = ad.hessian(lambda v: wnp.logaddexp(v[0], v[1]) + wnp.logaddexp(v[1], v[0]),
                       np.array([x, y]))
        np.testing.assert_allclose(h, 0.5 * np.array([[1, -1], [-1, 1]]), rtol=1e-12)


def test_logaddexp_values_stay_exact_far_apart():
    assert float(wnp.logaddexp(0.0, -40.0)) == np.logaddexp(0.0, -40.0)
    assert float(wnp.logaddexp(1e3, -1e3)) == 1e3
    assert ad.gradient(wnp.logaddexp, 1e3, -1e3) == (1.0, 0.0)


def test_x_to_the_zero_and_one_at_zero():
    with np.errstate(all="raise"):  # no 0 * inf on the way
        assert ad.gradient(lambda x: x ** 0, 0.0) == (0.0,)
        assert ad.hessian(lambda x: x ** 1, 0.0) == 0.0
        assert ad.hessian(lambda x: x ** 2, 0.0) == 2.0
    g = ad.gradient(lambda x, y: wnp.sum(x ** y), np.array([0.0, 2.0, 0.0]),
                    np.array([0.0, 0.0, 2.0]))
    np.testing.assert_array_equal(g[0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(g[1], [0.0, np.log(2.0), 0.0])
    h = ad.hessian(lambda x: wnp.sum(x ** np.array([0.0, 1.0, 2.0])), np.zeros(3))
    np.testing.assert_array_equal(h, np.diag([0.0, 0.0, 2.0]))


def test_std_and_var_of_one_value_are_zero_with_zero_derivatives():
    x = np.array([2.0])
    assert float(wnp.std(x)) == np.std(x) == 0.0
    with np.errstate(all="raise"):
        assert ad.gradient(wnp.std, x)[0].tolist() == [0.0]
        assert ad.gradient(wnp.var, x)[0].tolist() == [0.0]
        g = ad.gradient(lambda x: wnp.sum(wnp.std(x, axis=0)), np.ones((1, 3)))[0]
    np.testing.assert_array_equal(g, np.zeros((1, 3)))


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 3e-7), (np.float64, 1e-15)])
def test_logistic_is_accurate_and_quiet_in_both_tails(dtype, rtol):
    """``1 / (1 + exp(-x))`` overflows ``exp`` far below 0 on its way to the right
    limit 0: no floating-point error may surface, nor a NaN in its derivative."""
    x = np.linspace(-120, 120, 4801).astype(dtype)
    ref = 1 / (1 + np.exp(-x.astype(np.longdouble)))
    with np.errstate(all="raise"):
        s = special.expit(x)
        (g,) = ad.gradient(lambda v: wnp.sum(special.expit(v)), x)
    assert s.dtype == dtype
    normal = ref > np.finfo(dtype).tiny
    np.testing.assert_allclose(s[normal], ref[normal].astype(np.float64), rtol=rtol)
    assert np.all(s[~normal] <= np.finfo(dtype).tiny)
    assert np.all(g >= 0)  # s (1 - s): exact to rounding near 1/4, 0 far out
    np.testing.assert_allclose(g, (ref * (1 - ref)).astype(np.float64), rtol=0,
                               atol=2 * np.finfo(dtype).eps)
