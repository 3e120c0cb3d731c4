"""What becomes a staged input (issue 15 §3, issue 10): weakly typed Python numbers,
NumPy scalars, static arguments; isolation of in-place updates inside staged
branches; gradients in their argument's dtype."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.lax as lax
import wengert.ad.numpy as wnp
from wengert.ad.errors import TracerArrayConversionError, TracerMutationError
from wengert.ad.primitives import WeakAval


def test_numpy_scalars_and_0d_arrays_are_staged_inputs():
    for x in (np.float64(1.2), np.array(1.2), np.complex128(1 + 2j), np.float32(0.5)):
        graph = ad.make_graph(lambda a: a * 2, x)
        assert len(graph.in_vars) == 1 and graph.in_vars[0].aval.dtype == np.asarray(x).dtype
        np.testing.assert_allclose(ad.eval_graph(graph, x * 3), x * 6)


def test_python_numbers_are_weakly_typed_inputs():
    graph = ad.make_graph(lambda w, lr: w - lr * w, np.ones(3, np.float32), 0.1)
    (lr,) = graph.in_vars[1:]
    assert isinstance(lr.aval, WeakAval)
    assert graph.out_avals[0].dtype == np.float32            # as NumPy: lr is weak
    np.testing.assert_allclose(ad.eval_graph(graph, np.ones(3, np.float32), 0.25), 0.75)
    # Two weak numbers stay weak; a NumPy scalar is strong.
    both = ad.make_graph(lambda w, i, dt: w * (i * dt), np.ones(2, np.float32), 3, 0.5)
    assert both.out_avals[0].dtype == np.float32
    strong = ad.make_graph(lambda w, lr: w * lr, np.ones(2, np.float32), np.float64(0.1))
    assert strong.out_avals[0].dtype == np.float64


def test_static_argnums_bake_values_in():
    graph = ad.make_graph(lambda x, n: wnp.tile(x, n), np.ones(2), 3, static_argnums=1)
    assert len(graph.in_vars) == 1 and graph.out_avals[0].shape == (6,)
    assert ad.make_graph(lambda x, flag: x if flag else -x, np.ones(2), True).in_vars[0] \
        is not None  # bools stay static: the Python `if` runs at staging time


def test_a_branch_updating_an_outer_array_in_place_does_not_leak_into_the_other():
    def put(im):
        im[0] += 1.0
        return im

    def f(im, c):
        return ad.cond(c > 0, lambda: put(im), lambda: im)

    def g(im, c):   # the update is visible after the cond on the branch that made it
        ad.cond(c > 0, lambda: [put(im), None][1], lambda: None)
        return im * 2

    for fun, taken, not_taken in ((f, [1, 0], [0, 0]), (g, [2, 0], [0, 0])):
        graph = ad.make_graph(fun, np.zeros(2), np.array(1.0))
        np.testing.assert_array_equal(ad.eval_graph(graph, np.zeros(2), np.array(1.0)), taken)
        np.testing.assert_array_equal(ad.eval_graph(graph, np.zeros(2), np.array(-1.0)),
                                      not_taken)


def test_a_loop_body_updating_an_outer_array_is_refused():
    def f(x, n):
        acc = wnp.zeros_like(x) + x

        def body(i, c):
            acc[0] += 1.0   # only outer values: it would run once, not n times
            return c * 2

        return ad.fori_loop(0, n, body, x), acc

    with pytest.raises(TracerMutationError, match="carry"):
        ad.make_graph(f, np.ones(2), 3)


def test_gradients_have_their_arguments_dtype():
    c = np.arange(3.0)
    x = np.ones(3, np.float32)
    assert ad.grad(lambda x: wnp.sum(x * c))(x).dtype == np.float32
    assert ad.pullback(lambda x: x * c, x)[1](np.ones(3))[0].dtype == np.float32
    graph = ad.make_graph(ad.grad(lambda x: wnp.sum(x * c)), x)
    assert graph.out_avals[0].dtype == np.float32
    np.testing.assert_allclose(ad.eval_graph(graph, x), c)


def test_the_conversion_error_suggests_what_works():
    def f(x):
        out = wnp.zeros(3)
        out[0] = x[0]
        return out.sum()

    with pytest.raises(TracerArrayConversionError, match="dynamic_update_slice") as info:
        ad.grad(f)(np.ones(3))
    assert "wnp.zeros(...) then" not in str(info.value)

    def fixed(x):   # the suggestion, followed
        return lax.dynamic_update_slice(wnp.zeros(3), x[:1], (0,)).sum()

    np.testing.assert_array_equal(ad.grad(fixed)(np.ones(3)), [1, 0, 0])


def test_dynamic_slice_in_dim_takes_traced_starts():
    x = np.arange(12.0).reshape(4, 3)
    graph = ad.make_graph(lambda x, i: lax.dynamic_slice_in_dim(x, i, 2, axis=0), x, 1)
    np.testing.assert_array_equal(ad.eval_graph(graph, x, 2), x[2:4])
    np.testing.assert_array_equal(ad.eval_graph(graph, x, 7), x[2:4])   # clamped, as XLA
