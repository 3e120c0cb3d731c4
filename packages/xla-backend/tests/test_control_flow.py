"""Structured control flow compiles to XLA conditionals and loops, and so do its
staged derivatives: compiled values and gradients match eager `wengert.ad`."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
import wengert.xla as xla
from wengert.ad.primitives.control import MaxStepsExceeded


def _close(compiled, eager):
    for c, e in zip(ad.tree_leaves(compiled), ad.tree_leaves(eager)):
        np.testing.assert_allclose(np.asarray(c), e, rtol=1e-12, atol=1e-12)


def _compiled_and_eager(f, *args):
    """``f`` and its gradient, compiled and eager, compared."""
    _close(xla.jit(f, autograph=False)(*args), f(*args))
    grad = ad.grad(f)
    _close(xla.jit(grad, autograph=False)(*args), grad(*args))


def piecewise(x):
    return wnp.sum(ad.cond(wnp.sum(x) > 0, lambda y: wnp.sin(y) * y, lambda y: y ** 3, x))


def newton_sqrt(a):
    """sqrt(a) by Newton's iteration to tolerance: a data-dependent trip count."""
    def keep_going(c):
        x, _ = c
        return wnp.abs(x * x - a) > 1e-12 * a

    def step(c):
        x, n = c
        return 0.5 * (x + a / x), n + 1

    x, _ = ad.while_loop(keep_going, step, (a, 0), max_steps=100)
    return x


def test_cond_lowers_to_case_and_matches():
    x = np.array([0.3, -1.2, 2.0])
    assert "stablehlo.case" in xla.lower(piecewise, x, autograph=False).as_text()
    _compiled_and_eager(piecewise, x)
    _compiled_and_eager(piecewise, -x)


def test_data_dependent_while_and_its_gradient():
    a = np.array(7.3)
    text = xla.lower(ad.grad(newton_sqrt), a, autograph=False).as_text()
    assert text.count("stablehlo.while") >= 2  # the forward loop and the backward loop
    _compiled_and_eager(newton_sqrt, a)
    np.testing.assert_allclose(np.asarray(xla.jit(ad.grad(newton_sqrt))(a)),
                               0.5 / np.sqrt(a), rtol=1e-10)


def test_while_past_max_steps_raises():
    f = xla.jit(lambda x: ad.while_loop(lambda v: v < 100.0, lambda v: v + 1.0, x, max_steps=5),
                autograph=False)
    assert float(np.asarray(f(np.array(97.0)))) == 100.0
    with pytest.raises(MaxStepsExceeded):
        f(np.array(0.0))


@pytest.mark.parametrize("traced_bound", [False, True])
def test_fori_loop_and_gradient(traced_bound):
    def f(x, n):
        return wnp.sum(ad.fori_loop(0, n, lambda i, c: wnp.cos(c) * (i + 1.0), x,
                                    max_steps=16))

    x = np.array([0.1, 0.7])
    n = np.int64(5) if traced_bound else 5
    _close(xla.jit(f, autograph=False)(x, n), f(x, 5))
    grad = ad.grad(f)
    _close(xla.jit(grad, autograph=False)(x, n), grad(x, 5))


def test_scan_and_gradient():
    def f(h, xs):
        def cell(c, x):
            c = wnp.tanh(c * 0.9 + x)
            return c, c * c
        c, ys = ad.scan(cell, h, xs)
        return wnp.sum(ys) + wnp.sum(c)

    h, xs = np.array([0.2, -0.4]), np.linspace(-1, 1, 10).reshape(5, 2)
    assert "stablehlo.while" in xla.lower(f, h, xs, autograph=False).as_text()
    _compiled_and_eager(f, h, xs)


def test_nested_control_flow_gradient():
    def f(x):
        def body(c):
            y = ad.cond(c[0] > 1.0, lambda v: v * 1.1 + 0.2, lambda v: v * 1.7 + 0.1, c)
            return y
        return wnp.sum(ad.while_loop(lambda c: c[1] < 20.0, body, x, max_steps=50))

    _compiled_and_eager(f, np.array([0.3, 0.9]))


def _gru_like(w, xs):
    def cell(h, x):
        h = wnp.tanh(h @ w + x)
        return h, wnp.sum(h)

    h, ys = ad.scan(cell, wnp.zeros(3), xs)
    return wnp.sum(h) + wnp.sum(ys ** 2)


def _fori(x):
    return wnp.sum(ad.fori_loop(0, 10, lambda i, c: wnp.sin(c) * 1.1, x))


def _while(x):
    out = ad.while_loop(lambda c: c[1] < 7, lambda c: (c[0] * 1.3 + 0.1, c[1] + 1), (x, 0),
                        max_steps=20)
    return wnp.sum(out[0])


_LOOP_GRADIENTS = {
    "scan": (_gru_like, (np.random.default_rng(0).standard_normal((3, 3)) * 0.5,
                         np.random.default_rng(1).standard_normal((5, 3)))),
    "fori_loop": (_fori, (np.linspace(0.1, 1.0, 3),)),
    "while_loop": (_while, (np.linspace(0.1, 1.0, 3),)),
}


@pytest.mark.parametrize("name", sorted(_LOOP_GRADIENTS))
def test_a_loop_gradient_lowers_to_two_loops(name):
    """The loop that records the carries also gives the primal outputs (a scan's stacked
    outputs too), so value and gradient need one forward and one adjoint loop, as in
    JAX; there used to be a third, the primal loop, beside the recording one."""
    f, args = _LOOP_GRADIENTS[name]
    for transform in (ad.grad, ad.value_and_grad):
        text = xla.lower(transform(f), *args).as_text()
        assert text.count("stablehlo.while") == 2, (name, transform.__name__)
    got = xla.jit(ad.value_and_grad(f))(*args)
    want = ad.value_and_grad(f)(*args)
    np.testing.assert_allclose(np.asarray(got[0]), want[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got[1]), want[1], rtol=1e-12)
