"""Python control flow on traced values, recursion and closures: eager tracers hold
concrete values, so the program runs as written and only the path taken is
differentiated."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp

from adcore_support import numerical_gradient


def branchy(x):
    if x > 0:
        return x ** 3
    return np.sin(x) * 2


@pytest.mark.parametrize("x", [1.3, -0.7])
def test_if_on_a_traced_scalar_takes_the_branch_of_the_value(x):
    (g,) = ad.gradient(branchy, x)
    assert g == pytest.approx(3 * x ** 2 if x > 0 else 2 * np.cos(x))


def test_if_on_a_reduction_of_a_traced_array():
    def f(x):
        if x.sum() > 1:
            return (x * x).sum()
        return x.prod()

    for x in (np.array([0.9, 0.8, 0.1]), np.array([0.2, -0.4, 0.3])):
        np.testing.assert_allclose(ad.gradient(f, x)[0], numerical_gradient(f, x), rtol=1e-6)


def test_while_loop_with_a_traced_condition():
    def doubling(x):
        while x < 10:
            x = x * 2
        return x

    # 1.5 is doubled three times, 3.0 twice: the derivative is 2**steps.
    assert ad.gradient(doubling, 1.5)[0] == pytest.approx(8.0)
    assert ad.gradient(doubling, 3.0)[0] == pytest.approx(4.0)


def test_newton_iteration_until_convergence():
    def cube_root(a):
        x = a
        while abs(x ** 3 - a) > 1e-12:
            x = x - (x ** 3 - a) / (3 * x ** 2)
        return x

    a = 5.0
    # Differentiating the iterations converges to d a^(1/3) / da.
    assert ad.gradient(cube_root, a)[0] == pytest.approx(a ** (-2 / 3) / 3, rel=1e-6)


def test_for_loop_and_early_break():
    def f(x):
        total = 0.0
        for i in range(len(x)):
            if x[i] < 0:
                break
            total = total + x[i] ** (i + 1)
        return total

    x = np.array([0.5, 1.5, -1.0, 2.0])
    np.testing.assert_allclose(ad.gradient(f, x)[0], [1.0, 3.0, 0.0, 0.0])


def test_recursion():
    def power(x, n):
        return 1.0 if n == 0 else x * power(x, n - 1)

    def nested_sin(x, depth):
        return x if depth == 0 else np.sin(nested_sin(x, depth - 1))

    assert ad.gradient(lambda x: power(x, 5), 1.3)[0] == pytest.approx(5 * 1.3 ** 4)
    x = 0.8
    expected = numerical_gradient(lambda v: nested_sin(v, 4), x)
    assert ad.gradient(lambda v: nested_sin(v, 4), x)[0] == pytest.approx(float(expected))


def test_closures_over_constants_and_over_traced_values():
    def make_model(scale):
        return lambda x: scale * wnp.sum(x ** 2)

    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(ad.gradient(make_model(3.0), x)[0], 6 * x)

    # The closure captures a value traced by the outer gradient.
    def outer(a):
        inner = make_model(a)
        return ad.gradient(inner, np.array([1.5]))[0][0]

    assert ad.gradient(outer, 2.0)[0] == pytest.approx(3.0)  # d/da (2 a x) at x = 1.5


def test_int_valued_control_on_traced_arrays():
    def f(x):
        k = int(np.argmax(x))
        return x[k] * len(x) + float(x.shape[0]) * x[0]

    x = np.array([0.1, 0.9, 0.3])
    np.testing.assert_allclose(ad.gradient(f, x)[0], [3.0, 3.0, 0.0])
