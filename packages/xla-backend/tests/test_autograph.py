"""Python control flow on traced values compiles (autograph), and so do its
gradients; compiled results match eager `wengert.ad` on the same code."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
import wengert.xla as xla
from wengert.xla import ConversionError


def _same(f, *args, grad=True):
    """Compiled value (and gradient w.r.t. the first argument) equal eager ones."""
    np.testing.assert_allclose(np.asarray(xla.jit(f)(*args)), f(*args), rtol=1e-12)
    if grad:
        g = ad.grad(f)
        np.testing.assert_allclose(np.asarray(xla.jit(g)(*args)), g(*args), rtol=1e-12)


# ---- the listed cases ---------------------------------------------------------------------


def piecewise(x):
    if x > 1.0:
        y = x * x
    elif x > 0.0:
        y = wnp.sin(x)
    else:
        return -3.0 * x
    return y + 1.0


@pytest.mark.parametrize("x", [2.0, 0.5, -1.0])
def test_piecewise_function(x):
    _same(piecewise, np.array(x))
    text = xla.lower(piecewise, np.array(x)).as_text()
    assert "stablehlo.case" in text


def newton_sqrt(a):
    x = a
    steps = 0
    while wnp.abs(x * x - a) > 1e-12 * a:
        xla.set_loop_options(max_steps=100)
        x = 0.5 * (x + a / x)
        steps += 1
    return x


def test_newton_iteration_to_tolerance():
    a = np.array(7.3)
    _same(newton_sqrt, a)
    np.testing.assert_allclose(np.asarray(xla.jit(ad.grad(newton_sqrt))(a)), 0.5 / np.sqrt(a),
                               rtol=1e-10)
    assert "stablehlo.while" in xla.lower(newton_sqrt, a).as_text()


def first_above(xs, t):
    """Early exit from a for loop with a static trip count."""
    found = -1
    for i in range(xs.shape[0]):
        if xs[i] > t:
            found = i
            break
    return found


def first_above_while(xs, t, n):
    """Early exit from a while loop whose bound is traced."""
    i = 0
    found = -1
    while i < n and found < 0:
        xla.set_loop_options(max_steps=64)
        if xs[i] > t:
            found = i
        i += 1
    return found


def weighted_until(xs, t):
    """Differentiable early exit: accumulate until the partial sum passes t."""
    total = 0.0 * xs[0]
    for i in range(xs.shape[0]):
        if total > t:
            break
        total = total + xs[i] * xs[i]
    return total


@pytest.mark.parametrize("t", [0.4, 2.0])
def test_early_exit_search(t):
    xs = np.array([0.1, 0.5, 0.9, 0.3])
    assert int(np.asarray(xla.jit(first_above)(xs, np.array(t)))) == first_above(xs, t)
    n = np.array(4)
    assert int(np.asarray(xla.jit(first_above_while)(xs, np.array(t), n))) == \
        first_above_while(xs, t, 4)
    _same(weighted_until, xs, np.array(t / 2))


# ---- loops ------------------------------------------------------------------------------------


def traced_range(x, n):
    acc = x * 0.0
    for i in range(n):
        xla.set_loop_options(max_steps=32)
        if i % 2 == 1:
            continue
        acc = acc + wnp.cos(x * i)
    return wnp.sum(acc)


def test_for_over_a_traced_range_with_continue():
    x = np.array([0.3, 0.8])
    np.testing.assert_allclose(np.asarray(xla.jit(traced_range)(x, np.array(7))),
                               traced_range(x, 7), rtol=1e-12)
    g = ad.grad(traced_range)
    np.testing.assert_allclose(np.asarray(xla.jit(g)(x, np.array(7))), g(x, 7), rtol=1e-12)


def python_conditions(x, mode):
    if mode == "square":       # a static argument: stays Python
        y = x * x
    else:
        y = x
    for k in range(3):          # a static range: unrolled at trace time
        y = y + k
    return wnp.sum(y)


def test_plain_python_conditions_stay_python():
    x = np.arange(3.0)
    graph = xla.jit(python_conditions, static_argnums=1).graph(x, "square")
    assert not any(e.prim.name in ("cond", "while", "scan") for e in graph.eqns)
    _same(python_conditions, x, "square", grad=False)


def loop_temporary(x):
    while wnp.sum(x) < 10.0:
        step = wnp.abs(x) + 1.0  # first assigned in the body: local to each iteration
        x = x + step
    return x


def test_loop_temporaries():
    np.testing.assert_allclose(np.asarray(xla.jit(loop_temporary)(np.array([0.5, -0.2]))),
                               loop_temporary(np.array([0.5, -0.2])))


# ---- functions and methods -----------------------------------------------------------------------


def clip_norm(v, limit):
    norm = wnp.sqrt(wnp.sum(v * v))
    if norm > limit:
        v = v * (limit / norm)
    return v


class Model:
    def __init__(self, scale):
        self.scale = scale

    def activation(self, h):
        if wnp.sum(h) > 0 or wnp.max(h) > 2.0:
            return wnp.tanh(h) * self.scale
        return h * 0.1

    def __call__(self, x):
        def inner(z):  # a nested function with its own control flow
            if not wnp.all(z > 0):
                z = wnp.abs(z)
            return z

        return wnp.sum(self.activation(clip_norm(inner(x), 2.0)))


@pytest.mark.parametrize("x", [[0.3, -2.0, 1.5], [-0.3, -0.1, 0.2]])
def test_helpers_nested_functions_and_methods(x):
    model = Model(1.5)
    x = np.array(x)
    np.testing.assert_allclose(np.asarray(xla.jit(model)(x)), model(x), rtol=1e-12)
    g = ad.grad(lambda v: model(v))
    np.testing.assert_allclose(np.asarray(xla.jit(g)(x)), g(x), rtol=1e-12)


# ---- errors -----------------------------------------------------------------------------------------


def one_sided(x):
    if x > 0:
        y = x * 2.0
    return y


def test_variable_assigned_in_one_branch_is_a_clear_error():
    with pytest.raises(NameError, match=r"'y'.*only one path of the if at .*test_autograph"):
        xla.jit(one_sided)(np.array(1.0))


def generator(x):
    yield x


def test_generators_and_missing_source_are_refused():
    with pytest.raises(ConversionError, match=r"test_autograph.py:\d+.*generator"):
        xla.jit(generator)(np.array(1.0))
    namespace = {}
    exec("def f(x):\n    if x > 0:\n        x = -x\n    return x\n", namespace)
    with pytest.raises(ConversionError, match="source code is unavailable"):
        xla.jit(namespace["f"])(np.array(1.0))
    with pytest.raises(ad.errors.ConcretizationError):
        xla.jit(namespace["f"], autograph=False)(np.array(1.0))
