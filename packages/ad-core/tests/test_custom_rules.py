"""Custom rules under every transformation: `adjoint` under forward mode (the
transposed pullback), `custom_jvp` under reverse mode (the transposed rule),
both under nesting and staging (one equation each). Rules that deliberately
differ from the primal derivative show which one a transformation used."""

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.testing import check_grads

CLOSE = dict(rtol=1e-12, atol=1e-14)
RNG = np.random.default_rng(1)
A = RNG.standard_normal((3, 2))


@ad.adjoint
def straight_through_round(x):
    """round(x) forward, identity backward: the JVP must follow the pullback."""
    return wnp.round(x), lambda g: (g,)


@ad.adjoint
def matvec(m, x):
    return m @ x, lambda g: (wnp.outer(g, x), m.T @ g)


@ad.adjoint
def scaled_tree(p):
    """A tree argument and a tree output; back deliberately doubles the gradient."""
    y = {"s": wnp.sum(p["a"] * p["b"]), "v": p["a"] * 3.0}
    return y, lambda g: ({"a": 2 * (g["s"] * p["b"] + 3.0 * g["v"]), "b": 2 * g["s"] * p["a"]},)


@ad.custom_jvp
def soft_clip(x):
    return wnp.tanh(x)


@soft_clip.defjvp
def _soft_clip_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return soft_clip(x), 2.0 * t / wnp.cosh(x) ** 2    # twice the true derivative


def test_forward_mode_of_adjoint_is_the_transposed_pullback():
    x = np.array([0.2, 1.7, -2.4])
    t = np.array([1.0, -2.0, 0.5])
    y, dy = ad.jvp(straight_through_round, (x,), (t,))
    np.testing.assert_array_equal(y, np.round(x))
    np.testing.assert_allclose(dy, t, **CLOSE)         # not 0, the primal code's derivative
    m, v = RNG.standard_normal((3, 2)), RNG.standard_normal(2)
    dm, dv = RNG.standard_normal((3, 2)), RNG.standard_normal(2)
    np.testing.assert_allclose(ad.jvp(matvec, (m, v), (dm, dv))[1], dm @ v + m @ dv, **CLOSE)
    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, -1.0])}
    tp = {"a": np.array([0.5, 0.0]), "b": np.array([0.0, 1.0])}
    dy = ad.jvp(scaled_tree, (p,), (tp,))[1]
    np.testing.assert_allclose(dy["s"], 2 * (3.0 * 0.5 + 2.0 * 1.0), **CLOSE)
    np.testing.assert_allclose(dy["v"], 2 * 3.0 * tp["a"], **CLOSE)


def test_forward_mode_falls_back_to_the_primal_code_when_back_is_not_differentiable():
    @ad.adjoint
    def f(x):
        return x ** 2, lambda g: (np.asarray(g) * 0 + 2 * np.asarray(x),)  # plain NumPy

    x = np.array([1.0, 3.0])
    np.testing.assert_allclose(ad.jvp(f, (x,), (np.ones(2),))[1], 2 * x, **CLOSE)


def test_custom_jvp_in_forward_and_reverse_mode():
    x = np.array([0.3, -1.1])
    true = 1 / np.cosh(x) ** 2
    np.testing.assert_allclose(soft_clip(x), np.tanh(x), **CLOSE)
    np.testing.assert_allclose(ad.jvp(soft_clip, (x,), (np.ones(2),))[1], 2 * true, **CLOSE)
    np.testing.assert_allclose(ad.grad(lambda x: wnp.sum(soft_clip(x)))(x), 2 * true, **CLOSE)
    with pytest.raises(TypeError, match="defjvp"):
        ad.custom_jvp(wnp.sin)(x)


def test_custom_rules_under_nesting():
    x = np.array(0.4)
    # d/dx of (2 sech^2 x) = -4 sech^2 x tanh x: the rule is differentiated again
    second = -4 * np.tanh(0.4) / np.cosh(0.4) ** 2
    assert ad.grad(ad.grad(soft_clip))(x) == pytest.approx(second, rel=1e-12)
    assert ad.jvp(ad.grad(soft_clip), (x,), (np.float64(1.0),))[1] == pytest.approx(second,
                                                                                    rel=1e-12)
    assert ad.grad(lambda x: ad.jvp(soft_clip, (x,), (np.float64(1.0),))[1])(x) == \
        pytest.approx(second, rel=1e-12)
    m, v = RNG.standard_normal((3, 2)), RNG.standard_normal(2)
    h = ad.hessian(lambda v: wnp.sum(matvec(m, v) ** 3), v)
    np.testing.assert_allclose(h, m.T @ np.diag(6 * (m @ v)) @ m, **CLOSE)
    check_grads(lambda m, v: matvec(m, wnp.sin(v)), (m, v), order=2)


# ---- staging: one equation each, and the graph keeps the rule ----------------------------------
def test_staged_adjoint_is_one_equation_whose_pullback_is_staged():
    m, v = RNG.standard_normal((3, 2)), RNG.standard_normal(2)
    graph = ad.make_graph(lambda m, v: wnp.sin(matvec(m, v)), m, v)
    names = [e.prim.name for e in graph.eqns]
    assert names.count("custom_vjp_call") == 1 and "dot_general" not in names
    assert "custom_vjp_call" in str(graph)
    run = lambda m, v: ad.eval_graph(graph, m, v)  # noqa: E731
    np.testing.assert_allclose(run(m, v), np.sin(m @ v), **CLOSE)
    check_grads(run, (m, v), order=2)

    x = np.array([0.2, 1.7, -2.4])
    sgraph = ad.make_graph(straight_through_round, x)
    np.testing.assert_allclose(ad.grad(lambda x: wnp.sum(ad.eval_graph(sgraph, x)))(x),
                               np.ones(3), **CLOSE)
    np.testing.assert_allclose(ad.jvp(lambda x: ad.eval_graph(sgraph, x), (x,), (x,))[1], x,
                               **CLOSE)
    staged_grad = ad.make_graph(ad.grad(lambda x: wnp.sum(straight_through_round(x))), x)
    np.testing.assert_allclose(ad.eval_graph(staged_grad, x), np.ones(3), **CLOSE)


def test_staged_custom_jvp_keeps_its_rule_in_the_graph():
    x = np.array([0.3, -1.1])
    graph = ad.make_graph(lambda x: soft_clip(x) * 2.0, x)
    assert [e.prim.name for e in graph.eqns][0] == "custom_jvp_call"
    run = lambda x: ad.eval_graph(graph, x)  # noqa: E731
    true = 2 / np.cosh(x) ** 2
    np.testing.assert_allclose(ad.jvp(run, (x,), (np.ones(2),))[1], 2 * true, **CLOSE)
    np.testing.assert_allclose(ad.grad(lambda x: wnp.sum(run(x)))(x), 2 * true, **CLOSE)
    staged_jvp = ad.make_graph(lambda x, t: ad.jvp(soft_clip, (x,), (t,))[1], x, x)
    np.testing.assert_allclose(ad.eval_graph(staged_jvp, x, np.ones(2)), true, **CLOSE)


def test_values_closed_over_by_a_staged_custom_function_get_derivatives_through_its_primal():
    def f(x, w):
        @ad.adjoint
        def scale(x):
            return x * w, lambda g: (g * w,)
        return wnp.sum(scale(x) ** 2)

    x, w = np.array([1.0, 2.0]), np.array(0.5)
    graph = ad.make_graph(f, x, w)
    assert [e.prim.name for e in graph.eqns][0] == "custom_vjp_call"
    run = lambda x, w: ad.eval_graph(graph, x, w)  # noqa: E731
    gx, gw = ad.gradient(run, x, w)
    np.testing.assert_allclose(gx, 2 * x * w ** 2, **CLOSE)
    np.testing.assert_allclose(gw, 2 * w * np.sum(x ** 2), **CLOSE)
    check_grads(run, (x, w))


@ad.adjoint
def _fixed_point(f, a, x0):
    """x = f(a, x) by iteration; the pullback solves w = g + (df/dx)^T w by calling
    _fixed_point again (the pattern of JAX's fixed-point example)."""
    x = ad.fori_loop(0, 80, lambda i, x: f(a, x), x0)

    def back(g):
        def adjoint_step(p, w):
            g, a, x = p
            return g + ad.pullback(lambda x: f(a, x), x)[1](w)[0]

        w = _fixed_point(adjoint_step, (g, a, x), g)
        return None, ad.pullback(lambda a: f(a, x), a)[1](w)[0], None

    return x, back


def test_staging_an_adjoint_whose_pullback_calls_itself():
    # Used to recurse without end: each staged pullback staged the pullback it calls.
    f = lambda a, x: a * wnp.cos(x)  # noqa: E731
    loss = lambda a: wnp.sum(_fixed_point(f, a, wnp.zeros_like(a)) ** 2)  # noqa: E731
    a = np.array([0.3, 0.6])
    x = ad.fori_loop(0, 80, lambda i, x: a * np.cos(x), np.zeros(2))
    exact = 2 * x * np.cos(x) / (1 + a * np.sin(x))
    np.testing.assert_allclose(ad.grad(loss)(a), exact, rtol=1e-10)
    graph = ad.make_graph(ad.grad(loss), a)
    np.testing.assert_allclose(ad.eval_graph(graph, a), exact, rtol=1e-10)
    # Second order differentiates the lazily staged inner pullback.
    hess = ad.make_graph(ad.jacfwd(ad.grad(loss)), a)
    np.testing.assert_allclose(ad.eval_graph(hess, a), ad.jacfwd(ad.grad(loss))(a),
                               rtol=1e-8)
