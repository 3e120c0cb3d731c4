"""Nesting, mixed mode and Jacobians: no perturbation confusion at any depth,
Jacobians/Hessians against analytic values, trees of arguments, and the
batched Laplacian / divergence recipe of the README."""

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.testing import check_grads

RNG = np.random.default_rng(0)
CLOSE = dict(rtol=1e-10, atol=1e-12)


# ---- perturbation confusion -----------------------------------------------------------------
def test_classic_perturbation_confusion_in_every_mode_combination():
    # d/dx [x * d/dy (x + y)] = 1 at any point.
    def inner_rev(x):
        return x * ad.grad(lambda y: x + y)(2.0)

    def inner_fwd(x):
        return x * ad.jvp(lambda y: x + y, (2.0,), (1.0,))[1]

    def inner_pullback(x):
        return x * ad.pullback(lambda y: x + y, 2.0)[1](1.0)[0]

    for inner in (inner_rev, inner_fwd, inner_pullback):
        assert ad.grad(inner)(3.0) == pytest.approx(1.0)
        assert ad.jvp(inner, (3.0,), (1.0,))[1] == pytest.approx(1.0)
        assert ad.pullback(inner, 3.0)[1](1.0)[0] == pytest.approx(1.0)


def test_gradient_of_a_function_that_differentiates_a_closure_over_its_input():
    def f(x):
        (g,) = ad.gradient(lambda y: x * y ** 2 + wnp.sin(x * y), 3.0)   # 2xy + x cos(xy)
        return g

    x = 0.7
    expected = 6.0 + np.cos(3 * x) - 3 * x * np.sin(3 * x)
    assert ad.grad(f)(x) == pytest.approx(expected, rel=1e-12)
    assert ad.jvp(f, (x,), (1.0,))[1] == pytest.approx(expected, rel=1e-12)
    # and one level deeper: the derivative of that with respect to x again
    third = -3 * np.sin(3 * x) - 3 * np.sin(3 * x) - 9 * x * np.cos(3 * x)
    assert ad.grad(ad.grad(f))(x) == pytest.approx(third, rel=1e-10)


def test_derivatives_to_depth_four_in_mixed_modes():
    f = wnp.sin
    d4 = ad.grad(lambda x: ad.jvp(lambda y: ad.grad(ad.grad(f))(y), (x,), (1.0,))[1])
    assert d4(0.3) == pytest.approx(np.sin(0.3), rel=1e-12)


# ---- Jacobians -------------------------------------------------------------------------------
A = RNG.standard_normal((4, 3))


def wide(x):      # R^3 -> R^4
    return wnp.tanh(A @ x) * x[0]


def analytic_wide(x):
    t = np.tanh(A @ x)
    jac = (1 - t ** 2)[:, None] * A * x[0]
    jac[:, 0] += t
    return jac


@pytest.mark.parametrize("transform", [ad.jacfwd, ad.jacrev])
def test_jacfwd_and_jacrev_match_the_analytic_jacobian(transform):
    x = RNG.standard_normal(3)
    np.testing.assert_allclose(transform(wide)(x), analytic_wide(x), **CLOSE)


def test_jacobian_picks_a_mode_and_returns_one_block_per_argument():
    x = RNG.standard_normal(3)
    (jac,) = ad.jacobian(wide, x)                         # 4 outputs > 3 inputs: forward
    np.testing.assert_allclose(jac, analytic_wide(x), **CLOSE)
    w = RNG.standard_normal((3, 3))
    jw, jx = ad.jacobian(lambda w, x: wnp.sum(wnp.tanh(w @ x)), w, x)   # scalar: reverse
    t = np.tanh(w @ x)
    np.testing.assert_allclose(jw, np.outer(1 - t ** 2, x), **CLOSE)
    np.testing.assert_allclose(jx, (1 - t ** 2) @ w, **CLOSE)


def test_jacobians_of_trees_have_output_structure_of_input_structures():
    params = {"w": RNG.standard_normal((2, 3)), "b": RNG.standard_normal(2)}
    x = RNG.standard_normal(3)

    def f(p, x):
        return (p["w"] @ x + p["b"], wnp.sum(p["b"] ** 2))

    for transform in (ad.jacfwd, ad.jacrev):
        (dy_dp, dy_dx), (ds_dp, ds_dx) = transform(f, argnums=(0, 1))(params, x)
        assert dy_dp["w"].shape == (2, 2, 3) and dy_dp["b"].shape == (2, 2)
        np.testing.assert_allclose(dy_dx, params["w"], **CLOSE)
        np.testing.assert_allclose(dy_dp["b"], np.eye(2), **CLOSE)
        np.testing.assert_allclose(ds_dp["b"], 2 * params["b"], **CLOSE)
        np.testing.assert_allclose(ds_dx, 0, **CLOSE)
        np.testing.assert_allclose(dy_dp["w"][1, 1], x, **CLOSE)


def test_hessian_and_hvp():
    def f(x):
        return wnp.sum(wnp.sin(x) * x[0] ** 2) + wnp.prod(x)

    x, v = RNG.standard_normal(3), RNG.standard_normal(3)
    h = ad.hessian(f, x)
    expected = np.diag(-np.sin(x) * x[0] ** 2)
    expected[0, :] += 2 * x[0] * np.cos(x)
    expected[:, 0] += 2 * x[0] * np.cos(x)
    expected[0, 0] += 2 * np.sum(np.sin(x))
    for i in range(3):
        for j in range(3):
            if i != j:
                expected[i, j] += np.prod(x) / (x[i] * x[j])
    np.testing.assert_allclose(h, expected, **CLOSE)
    np.testing.assert_allclose(ad.hvp(f, x, v), expected @ v, **CLOSE)
    np.testing.assert_allclose(ad.jacrev(ad.grad(f))(x), expected, **CLOSE)


def test_hessian_and_hvp_of_a_tree_argument():
    def f(p):
        return wnp.sum(p["a"] ** 3) * p["b"]

    p = {"a": np.array([1.0, 2.0]), "b": np.array(3.0)}
    h = ad.hessian(f, p)
    np.testing.assert_allclose(h["a"]["a"], np.diag(6 * p["a"] * 3.0), **CLOSE)
    np.testing.assert_allclose(h["a"]["b"], 3 * p["a"] ** 2, **CLOSE)
    v = {"a": np.array([1.0, -1.0]), "b": np.array(2.0)}
    hv = ad.hvp(f, p, v)
    np.testing.assert_allclose(hv["a"], h["a"]["a"] @ v["a"] + h["a"]["b"] * 2.0, **CLOSE)
    np.testing.assert_allclose(hv["b"], h["b"]["a"] @ v["a"], **CLOSE)


def test_jacobian_functions_are_differentiable():
    x = RNG.standard_normal(3)
    check_grads(lambda x: ad.jacrev(wide)(x), (x,), rtol=1e-5, atol=1e-6)
    check_grads(lambda x: ad.hvp(lambda y: wnp.sum(wnp.sin(y) ** 2), x, x), (x,), order=2,
                rtol=1e-5, atol=1e-6)


# ---- the PDE-residual recipe (README) ---------------------------------------------------------
def laplacian(u, points):
    """Laplacian of a pointwise u: (n, d) -> (n,), batched: one hvp per coordinate."""
    total = lambda p: wnp.sum(u(p))  # noqa: E731  (u is pointwise, so this separates)
    n, d = points.shape
    out = 0.0
    for k in range(d):
        e = np.zeros((n, d))
        e[:, k] = 1.0
        out = out + ad.hvp(total, points, e)[:, k]
    return out


def divergence(field, points):
    """Divergence of a pointwise field: (n, d) -> (n, d), batched: one jvp per coordinate."""
    n, d = points.shape
    out = 0.0
    for k in range(d):
        e = np.zeros((n, d))
        e[:, k] = 1.0
        out = out + ad.jvp(field, (points,), (e,))[1][:, k]
    return out


def mlp(params, x):
    for w, b in params[:-1]:
        x = wnp.tanh(x @ w + b)
    w, b = params[-1]
    return (x @ w + b)[:, 0]


def test_batched_laplacian_and_divergence():
    pts = RNG.standard_normal((7, 2))
    u = lambda p: wnp.sin(p[:, 0]) * wnp.exp(p[:, 1]) + p[:, 0] ** 2 * p[:, 1]  # noqa: E731
    np.testing.assert_allclose(laplacian(u, pts), 2 * pts[:, 1], **CLOSE)
    field = lambda p: wnp.stack([p[:, 0] ** 2 * p[:, 1], wnp.sin(p[:, 1])], axis=1)  # noqa
    np.testing.assert_allclose(divergence(field, pts), 2 * pts[:, 0] * pts[:, 1]
                               + np.cos(pts[:, 1]), **CLOSE)
    sizes = [2, 16, 16, 1]
    params = [(RNG.standard_normal((a, b)) / np.sqrt(a), RNG.standard_normal(b))
              for a, b in zip(sizes[:-1], sizes[1:])]
    lap = laplacian(lambda p: mlp(params, p), pts)
    for i in range(3):   # against the trace of each point's full Hessian
        h = ad.hessian(lambda q: mlp(params, q[None, :])[0], pts[i])
        np.testing.assert_allclose(lap[i], np.trace(h), **CLOSE)
    # the residual is differentiable with respect to the network (PI-GAN training)
    g = ad.grad(lambda ps: wnp.sum(laplacian(lambda p: mlp(ps, p), pts) ** 2))(params)
    assert g[0][0].shape == (2, 16)
