"""Mutation inside differentiated functions: a traced array is a mutable handle to
an immutable value, so ``a[i] = v``, ``a[mask] = v`` and ``a += b`` rebind the
handle to a functional update; Python lists and dicts mutated during the
function are ordinary Python objects. Each function is also run on plain NumPy
arrays, whose finite differences judge the gradient."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp

from adcore_support import numerical_gradient

X = np.array([0.7, -1.3, 2.1, 0.4])


def write_int(x):
    a = x * 1.0
    a[1] = a[0] * a[2]
    return (a * a).sum()


def write_mask(x):
    a = x + 0.0
    a[a < 0] = 3 * a[a < 0] ** 2
    return (a * x).sum()


def write_slice_and_fancy(x):
    a = wnp.outer(x, x)
    a[1:, 0] = x[:3] ** 3
    a[[0, 2], [1, 3]] = a[[0, 2], [1, 3]] * 5
    return wnp.sum(wnp.sin(a))


def augmented(x):
    a = x * 2.0
    b = a  # an alias sees the update, as in NumPy
    a += x ** 2
    a *= x
    a[2] -= 1.5 * x[0]
    return (b * b).sum()


def fill_buffer(x):
    buf = x * 0  # a traced buffer of zeros
    for i in range(1, len(x)):
        buf[i] = buf[i - 1] + x[i] * x[i - 1]
    return buf.sum()


@pytest.mark.parametrize("f", [write_int, write_mask, write_slice_and_fancy, augmented,
                               fill_buffer])
def test_in_place_updates_of_traced_arrays(f):
    (g,) = ad.gradient(f, X)
    np.testing.assert_allclose(g, numerical_gradient(f, X), rtol=1e-6, atol=1e-8)


def test_in_place_updates_under_forward_mode():
    u = np.array([0.3, -0.2, 1.0, 0.5])
    for f in (write_int, augmented, fill_buffer):
        _, dy = ad.jvp(f, (X,), (u,))
        assert float(dy) == pytest.approx(float(numerical_gradient(f, X) @ u), rel=1e-6)


def test_functional_at_updates_leave_the_array_alone():
    def f(x):
        y = x.at[1].set(x[0] ** 2)
        z = x.at[np.array([0, 0, 3])].add(y[:3])  # repeated indices accumulate
        return (x * 10).sum() + (y * z).sum()

    def plain(x):
        y = x.copy()
        y[1] = x[0] ** 2
        z = x.copy()
        np.add.at(z, np.array([0, 0, 3]), y[:3])
        return (x * 10).sum() + (y * z).sum()

    value, (g,) = ad.value_and_grad(f)(X), ad.gradient(f, X)
    assert float(value[0]) == pytest.approx(plain(X))
    np.testing.assert_allclose(g, numerical_gradient(plain, X), rtol=1e-6)


def test_python_lists_and_dicts_mutated_inside_the_function():
    def f(params):
        history = []
        state = {"h": params["w"] * 1.0}
        for _ in range(3):
            state["h"] = np.tanh(state["h"] * params["w"])
            history.append(state["h"].sum())
        params["w"] = None  # mutating the caller's (unwrapped) dict is allowed too
        return sum(history)

    w = np.array([0.5, -0.25])
    (g,) = ad.gradient(f, {"w": w})
    np.testing.assert_allclose(g["w"], numerical_gradient(lambda v: f({"w": v}), w),
                               rtol=1e-6)


def write_input(x):
    x[0] = 10.0  # the traced argument itself, not a copy
    return (x * x).sum()


def add_into_input(x):
    x += 1
    x *= x
    return x.sum()


@pytest.mark.parametrize("f", [write_input, add_into_input])
def test_updating_an_input_argument_in_place(f):
    """The handle of an argument is rebound: the gradient is still with respect to the
    value passed in, and the caller's array is not modified."""
    x = X.copy()
    (g,) = ad.gradient(f, x)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_allclose(g, numerical_gradient(f, X.copy()), rtol=1e-6, atol=1e-8)
    value, g2 = ad.value_and_grad(f)(x)
    assert value == f(X.copy()) and np.array_equal(g2, g)
    _, back = ad.pullback(f, x)
    np.testing.assert_array_equal(back(1.0)[0], g)


def _write_wide_value(x):
    y = x * 1.0
    y[0] = np.float64(2.0)
    y[1:] += np.full(x.shape[0] - 1, 0.5, np.float64)
    return y


@pytest.mark.parametrize("transform", ["gradient", "staged"])
def test_indexed_writes_keep_the_arrays_dtype_as_numpy_does(transform):
    """Regression: a float64 value written into a float32 traced array made it float64 (and
    its gradient), where NumPy's ``a[i] = v`` keeps float32."""
    x = np.array([0.5, -1.0, 3.0], np.float32)
    expected = _write_wide_value(x)
    assert expected.dtype == np.float32
    if transform == "gradient":
        value, g = ad.value_and_grad(lambda x: (_write_wide_value(x) ** 2).sum())(x)
        assert value.dtype == np.float32 and g.dtype == np.float32
        np.testing.assert_allclose(g, [0.0, 2 * (-1.0 + 0.5), 2 * (3.0 + 0.5)])
    else:
        graph = ad.make_graph(_write_wide_value, x)
        out = ad.eval_graph(graph, x)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, expected)
    at = ad.make_graph(lambda x: x.at[0].add(np.float64(1.0)), x)
    assert ad.eval_graph(at, x).dtype == np.float32


@pytest.mark.parametrize("write", [
    lambda a, v: a.__setitem__(0, v),
    lambda a, v: a.at[0].add(v),
], ids=["setitem", "at-add"])
@pytest.mark.parametrize("operand, value, lost", [
    (np.arange(3), 2.5, "fractional part"),
    (np.arange(3.0), np.array(1.0 + 2.0j), "imaginary part"),
])
def test_indexed_writes_that_change_the_kind_are_refused(write, operand, value, lost):
    """NumPy truncates 2.5 into an int array silently (and drops an imaginary part with a
    warning); traced, that would drop a derivative too, so it is an error naming the fix."""
    def f(a):
        a = a + 0
        write(a, value)
        return a

    for run in (lambda: ad.make_graph(f, operand),  # staged, and eagerly traced:
                lambda: ad.vmap(f)(np.stack([operand, operand]))):
        with pytest.raises(TypeError, match=f"{lost}.*astype"):
            run()
