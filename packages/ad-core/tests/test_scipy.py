"""`wengert.ad.scipy` beyond the case table (issue 10): second derivatives of
`fixed_point` are those of the exact solution, `odeint`'s adjoint gradients match
the closed form, plain SciPy ufuncs dispatch to their twins, and what has no rule
is refused by name."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.errors import ConcretizationError, NonDifferentiableError
from wengert.ad.scipy import integrate, optimize, stats

special = pytest.importorskip("scipy.special")


def _kepler(a):
    """x = a cos(x): a contraction for |a| < 1."""
    return optimize.fixed_point(lambda x, a: a * wnp.cos(x), 0.0, (a,))


def test_fixed_point_second_derivative_matches_differences_of_the_first() -> None:
    a, eps = 0.7, 1e-5
    first = ad.grad(_kepler)
    second = ad.grad(first)(a)
    fd = (first(a + eps) - first(a - eps)) / (2 * eps)
    np.testing.assert_allclose(second, fd, rtol=1e-7)
    x = _kepler(a)  # and the closed form of the first: dx/da = cos x / (1 + a sin x)
    np.testing.assert_allclose(first(a), np.cos(x) / (1 + a * np.sin(x)), rtol=1e-10)
    np.testing.assert_allclose(ad.hessian(_kepler, a), second, rtol=1e-10)


def test_fixed_point_is_not_the_truncated_loop() -> None:
    # Started at the solution the loop runs one step, whose derivative is cos(x) alone;
    # the implicit rule still gives the derivative of the solution.
    a = 0.7
    x = _kepler(a)
    g = ad.grad(lambda a: optimize.fixed_point(lambda x, a: a * wnp.cos(x), x, (a,)))(a)
    np.testing.assert_allclose(g, np.cos(x) / (1 + a * np.sin(x)), rtol=1e-10)


def test_fixed_point_refuses_closures_and_staging() -> None:
    with pytest.raises(NonDifferentiableError, match="args="):
        ad.grad(lambda a: optimize.fixed_point(lambda x: a * wnp.cos(x), 0.0))(0.7)
    with pytest.raises(ConcretizationError, match="while_loop"):
        ad.make_graph(_kepler, np.array([0.7]))


def test_odeint_adjoint_gradient_matches_the_closed_form() -> None:
    t = np.array([0.0, 0.5, 1.5])
    y0, k = np.array([1.0, -2.0]), 0.8

    def loss(y0, t, k):
        ys = integrate.odeint(lambda y, t, k: -k * y, y0, t, (k,), rtol=1e-10, atol=1e-10)
        return wnp.sum(ys[1:] ** 2)

    g_y0, g_t, g_k = ad.gradient(loss, y0, t, k)
    decay = np.exp(-2 * k * t[1:])  # loss = sum_i |y0|^2 exp(-2 k t_i)
    np.testing.assert_allclose(g_y0, 2 * y0 * decay.sum(), rtol=1e-7)
    np.testing.assert_allclose(g_k, -2 * (t[1:] * decay).sum() * (y0 @ y0), rtol=1e-7)
    np.testing.assert_allclose(g_t[1:], -2 * k * decay * (y0 @ y0), rtol=1e-7)
    np.testing.assert_allclose(g_t[0], 2 * k * decay.sum() * (y0 @ y0), rtol=1e-7)


def test_odeint_matches_scipy() -> None:
    scipy_integrate = pytest.importorskip("scipy.integrate")

    def f(y, t, w):
        return np.stack([y[1], -w * w * y[0] + 0.1 * np.sin(t)]) if isinstance(y, np.ndarray) \
            else wnp.stack([y[1], -w * w * y[0] + 0.1 * wnp.sin(t)])

    t = np.linspace(0.0, 3.0, 7)
    ours = integrate.odeint(f, np.array([1.0, 0.0]), t, (1.3,), rtol=1e-10, atol=1e-10)
    theirs = scipy_integrate.odeint(f, np.array([1.0, 0.0]), t, (1.3,), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-8)


def test_plain_scipy_special_ufuncs_dispatch_to_their_twins() -> None:
    x = np.array([-0.5, 0.3, 1.2])
    (g,) = ad.gradient(lambda x: wnp.sum(special.ndtr(x) + special.stdtr(3.0, x)), x)
    expected = np.exp(-x * x / 2) / np.sqrt(2 * np.pi) + np.exp(stats.t.logpdf(x, 3.0))
    np.testing.assert_allclose(g, expected, rtol=1e-10)


def test_what_has_no_rule_is_refused_by_name() -> None:
    with pytest.raises(NonDifferentiableError, match="degrees of freedom"):
        ad.gradient(lambda df: stats.t.cdf(0.3, df), 3.0)
    cov = np.array([[1.0, 0.2], [0.2, 0.5]])
    with pytest.raises(NonDifferentiableError, match="multivariate_normal.cdf"):
        ad.gradient(lambda x: stats.multivariate_normal.cdf(x, None, cov), np.zeros(2))
    scipy_stats = pytest.importorskip("scipy.stats")
    np.testing.assert_allclose(stats.multivariate_normal.cdf(np.zeros(2), None, cov),
                               scipy_stats.multivariate_normal.cdf(np.zeros(2), None, cov))
