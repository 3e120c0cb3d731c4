"""The transformations and their compositions: nesting without perturbation
confusion, reusable pullbacks, forward mode, custom pullbacks (`adjoint`) and
`stop_gradient`."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.testing import check_grads

from adcore_support import numerical_gradient


def test_perturbation_confusion_reverse_over_reverse():
    # d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1 (Siskind & Pearlmutter's example).
    (g,) = ad.gradient(lambda x: x * ad.gradient(lambda y: x + y, 2.0)[0], 1.0)
    assert g == pytest.approx(1.0)


def test_perturbation_confusion_forward_over_forward_and_mixed():
    def inner_jvp(x):
        return ad.jvp(lambda y: x + y, (np.float64(2.0),), (np.float64(1.0),))[1]

    _, d = ad.jvp(lambda x: x * inner_jvp(x), (np.float64(1.0),), (np.float64(1.0),))
    assert float(d) == pytest.approx(1.0)
    (g,) = ad.gradient(lambda x: x * inner_jvp(x), 1.0)
    assert g == pytest.approx(1.0)
    # d/dx [x * d/dy (x * y)] = d/dx x^2 = 2x
    (g,) = ad.gradient(lambda x: x * ad.gradient(lambda y: x * y, 3.0)[0], 1.5)
    assert g == pytest.approx(3.0)


def test_nested_gradients_and_forward_over_reverse_hessian():
    def f(x):
        return wnp.sum(wnp.sin(x) * x ** 2)

    x = np.array([0.3, -1.2, 2.0])
    hessian_diag = ad.gradient(lambda v: ad.gradient(f, v)[0].sum(), x)[0]
    expected = np.array([numerical_gradient(lambda v: float(ad.gradient(f, v)[0].sum()), x)])
    np.testing.assert_allclose(hessian_diag, expected[0], rtol=1e-6)
    hvp = ad.jvp(lambda v: ad.gradient(f, v)[0], (x,), (np.ones(3),))[1]
    np.testing.assert_allclose(hvp, hessian_diag, rtol=1e-10)  # H is diagonal here
    third = ad.gradient(lambda a: ad.gradient(lambda b: ad.gradient(
        lambda c: c ** 4, b)[0], a)[0], 1.5)[0]
    assert third == pytest.approx(24 * 1.5)


def test_pullback_is_reusable_and_linear():
    x = np.array([0.5, -0.3])
    y, back = ad.pullback(lambda x: wnp.stack([x.prod(), wnp.exp(x).sum()]), x)
    v1, v2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    g1, g2 = back(v1)[0], back(v2)[0]
    np.testing.assert_allclose(g1, [x[1], x[0]])
    np.testing.assert_allclose(g2, np.exp(x))
    np.testing.assert_allclose(back(2 * v1 - 3 * v2)[0], 2 * g1 - 3 * g2)
    np.testing.assert_allclose(back(v1)[0], g1)  # the tape survives each call


def test_jvp_matches_finite_differences_with_several_arguments():
    def f(a, b):
        return {"p": wnp.sin(a) * b, "q": wnp.sum(a @ b)}

    a, b = np.array([[0.2, 0.5], [1.0, -0.3]]), np.array([[1.5, 0.0], [0.2, 0.7]])
    ta, tb = np.ones_like(a), np.array([[0.0, 1.0], [1.0, 0.0]])
    y, dy = ad.jvp(f, (a, b), (ta, tb))
    eps = 1e-6
    plus, minus = f(a + eps * ta, b + eps * tb), f(a - eps * ta, b - eps * tb)
    np.testing.assert_allclose(dy["p"], (plus["p"] - minus["p"]) / (2 * eps), rtol=1e-6)
    assert float(dy["q"]) == pytest.approx(float(plus["q"] - minus["q"]) / (2 * eps))


@ad.adjoint
def softplus(x):
    """log(1 + e^x) with a hand-written, differentiable pullback."""
    y = wnp.logaddexp(x, 0.0)
    return y, lambda g: (g * wnp.exp(x - y),)


@ad.adjoint
def clipped_identity(x):
    """Identity forward; the pullback clips the cotangent (so it is not the derivative)."""
    return x * 1.0, lambda g: (wnp.clip(g, -1.0, 1.0),)


def test_adjoint_rule_is_used_in_reverse_mode():
    x = np.array([-30.0, 0.0, 2.0, 40.0])
    (g,) = ad.gradient(lambda x: wnp.sum(softplus(x)), x)
    np.testing.assert_allclose(g, 1 / (1 + np.exp(-x)))
    (g,) = ad.gradient(lambda x: wnp.sum(clipped_identity(x) * 5.0), np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [1.0, 1.0])


def test_gradient_of_gradient_through_an_adjoint_rule():
    check_grads(lambda x: wnp.sum(softplus(x) ** 2), [np.array([-1.5, 0.2, 3.0])], order=2)
    x = 0.7
    second = ad.gradient(lambda v: ad.gradient(softplus, v)[0], x)[0]
    s = 1 / (1 + np.exp(-x))
    assert second == pytest.approx(s * (1 - s))


def test_stop_gradient():
    x = np.array([1.5, -2.0])
    (g,) = ad.gradient(lambda x: wnp.sum(x * ad.stop_gradient(x)), x)
    np.testing.assert_allclose(g, x)  # not 2x
    params = {"a": x, "b": (x * 2,)}
    (g,) = ad.gradient(lambda p: wnp.sum(ad.stop_gradient(p)["a"] * p["b"][0]), params)
    np.testing.assert_allclose(g["a"], 0.0)
    np.testing.assert_allclose(g["b"][0], x)
    _, dy = ad.jvp(lambda x: ad.stop_gradient(x) * x, (x,), (np.ones(2),))
    np.testing.assert_allclose(dy, x)
    # Under nesting it stops every transformation, as jax.lax.stop_gradient does: the
    # inner derivative is the value a * b, held constant for the outer one as well.
    g = ad.gradient(lambda a: ad.gradient(lambda b: ad.stop_gradient(a * b) * b, 2.0)[0], 3.0)
    assert g[0] == 0.0


def test_jvp_with_python_scalars():
    assert ad.jvp(lambda x: 2.0 * x, (0.5,), (1.0,))[1] == 2.0
