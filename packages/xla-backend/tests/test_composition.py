"""Compiled functions compose as JAX's do (issue 15 §1-§3): jit inside jit, grad,
jvp and checkpoint inlines; weakly typed numbers, static and keyword arguments;
in-place updates isolated per branch; recursion under autograph."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
import wengert.xla as xla


def h(x):
    return wnp.sum(wnp.sin(x) ** 2)


X = np.linspace(0.1, 1.0, 5)


def test_jit_of_grad_of_jit_is_the_gradient():
    # Used to return h(x): functools.wraps copied the inner Jitted's state onto the outer.
    got = xla.jit(ad.grad(xla.jit(h)))(X)
    np.testing.assert_allclose(np.asarray(got), ad.grad(h)(X), rtol=1e-12)


def test_jitted_functions_inline_under_every_transformation():
    inner = xla.jit(h)
    outer = xla.jit(lambda x: inner(x) * 2 + inner(x + 1))
    np.testing.assert_allclose(float(outer(X)), 2 * h(X) + h(X + 1), rtol=1e-12)
    np.testing.assert_allclose(ad.grad(inner)(X), ad.grad(h)(X), rtol=1e-12)
    y, t = ad.jvp(inner, (X,), (np.ones(5),))
    np.testing.assert_allclose(t, ad.jvp(h, (X,), (np.ones(5),))[1], rtol=1e-12)
    np.testing.assert_allclose(ad.grad(ad.checkpoint(inner))(X), ad.grad(h)(X), rtol=1e-12)
    assert len(outer.graph(X).eqns) > 1  # one program: the inner function's equations


def test_python_numbers_are_traced_weakly_and_do_not_recompile():
    calls = []

    def update(w, lr):
        calls.append(1)
        return w - lr * w

    step = xla.jit(update)
    w = np.ones(3, np.float32)
    for lr in (0.1, 0.2, 0.3):
        out = step(w, lr)
    assert len(calls) == 1
    assert out.dtype == np.float32                  # lr is weak: float32 stays float32
    np.testing.assert_allclose(np.asarray(out), 0.7, rtol=1e-6)
    step(w, np.float64(0.1))                        # a NumPy scalar is traced too (strong)
    assert len(calls) == 2


def test_static_argnames_and_keyword_arguments():
    calls = []

    def f(x, scale=1.0, *, power=2):
        calls.append(1)
        return x ** power * scale

    jf = xla.jit(f, static_argnames="power")
    np.testing.assert_allclose(np.asarray(jf(X, scale=3.0, power=3)), X ** 3 * 3)
    np.testing.assert_allclose(np.asarray(jf(X, scale=4.0, power=3)), X ** 3 * 4)
    assert len(calls) == 1
    np.testing.assert_allclose(np.asarray(jf(X, power=2)), X ** 2)
    assert len(calls) == 2
    by_position = xla.jit(lambda x, n: wnp.tile(x, n), static_argnames="n")
    assert by_position(X, 2).shape == (10,)     # a static name passed by position


def test_unhashable_static_arguments_are_keyed_by_value_or_refused():
    f = xla.jit(lambda x, sizes: x * len(sizes), static_argnums=1)
    sizes = [1]
    np.testing.assert_allclose(np.asarray(f(X, sizes)), X)
    sizes.append(2)                            # used to return the stale program's result
    np.testing.assert_allclose(np.asarray(f(X, sizes)), 2 * X)
    with pytest.raises(TypeError, match="not hashable"):
        f(X, np.ones(2))


def test_in_place_update_in_one_branch_does_not_leak_into_the_other():
    def put(im):
        im[0] += 1.0
        return im

    f = xla.jit(lambda im, c: put(im) if c > 0 else im)
    np.testing.assert_array_equal(np.asarray(f(np.zeros(2), np.array(-1.0))), [0, 0])
    np.testing.assert_array_equal(np.asarray(f(np.zeros(2), np.array(1.0))), [1, 0])

    def g(im, c):
        if c > 0:
            put(im)
        return im * 2

    np.testing.assert_array_equal(np.asarray(xla.jit(g)(np.zeros(2), np.array(-1.0))), [0, 0])
    np.testing.assert_array_equal(np.asarray(xla.jit(g)(np.zeros(2), np.array(1.0))), [2, 0])


def power(x, n):
    if n == 0:
        return wnp.ones_like(x)
    return x * power(x, n - 1)


def fact(n):
    if n <= 1:
        return n * 0 + 1.0
    return n * fact(n - 1)


def test_recursion_under_autograph():
    # Used to fail with KeyError: 'power' (the converted def shadowed its own name).
    np.testing.assert_allclose(np.asarray(xla.jit(power, static_argnums=1)(X, 3)), X ** 3)
    with pytest.raises(RecursionError, match="static_argnums"):
        xla.jit(fact)(np.array(4.0))   # the stopping condition is traced


def test_gradients_of_float32_parameters_stay_float32_when_compiled():
    c = np.arange(5.0)
    g = xla.jit(ad.grad(lambda w: wnp.sum(w * c)))(np.ones(5, np.float32))
    assert g.dtype == np.float32
