"""Misuse fails with an error that names the problem and the way out, never with
a bare AttributeError from inside the engine."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad import errors

from adcore_support import cupy_or_skip

X = np.array([0.5, -1.0, 2.0])


@pytest.mark.parametrize("f, words", [
    (lambda x: x * 2, ["real scalar", "shape (3,)"]),
    (lambda x: wnp.sum(x) * 1j, ["real scalar", "complex"]),
    (lambda x: "done", ["real scalar", "str"]),
    (lambda x: (x.sum(), x.prod()), ["real scalar", "2 values"]),
])
def test_gradient_needs_a_real_scalar(f, words):
    with pytest.raises(TypeError) as info:
        ad.gradient(f, X)
    for word in words:
        assert word in str(info.value)


def test_writing_a_traced_value_into_a_numpy_array():
    def f(x):
        a = np.zeros(3)
        a[0] = x[1]
        return a.sum()

    # NumPy wraps the error in its own ValueError; the transformations surface ours.
    with pytest.raises(errors.TracerArrayConversionError) as info:
        ad.gradient(f, X)
    assert "NumPy array" in str(info.value) and "wengert.ad.numpy" in str(info.value)

    def g(x):
        a = np.zeros(3)
        a[:2] = x[1:]
        return a.sum()

    with pytest.raises(errors.TracerArrayConversionError):
        ad.gradient(g, X)


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda x: np.array([x[0], 1.0])])
def test_converting_a_tracer_to_a_numpy_array(convert):
    with pytest.raises(errors.TracerArrayConversionError, match="stop_gradient"):
        ad.gradient(lambda x: convert(x).sum(), X)


@pytest.mark.parametrize("call, name", [
    (lambda x: np.unwrap(x), "numpy.unwrap"),
    (lambda x: np.histogram(x)[0], "numpy.histogram"),
    (lambda x: np.linalg.tensorinv(wnp.outer(x, x)[:, :, None, None] * x, ind=2),
     "numpy.linalg.tensorinv"),
    (lambda x: np.add.outer(x, x), "numpy.add.outer"),
    (lambda x: np.sum(x, out=np.zeros(())), "out="),
])
def test_numpy_function_without_a_rule_is_named(call, name):
    with pytest.raises(errors.NonDifferentiableError, match=name.replace(".", r"\.")) as info:
        ad.gradient(lambda x: wnp.sum(call(x)), X)
    assert "rule" in str(info.value) or "assign" in str(info.value)


def test_scipy_special_function_without_a_rule_is_named():
    scipy_special = pytest.importorskip("scipy.special")
    with pytest.raises(errors.NonDifferentiableError, match=r"scipy\.special\.j0"):
        ad.gradient(lambda x: wnp.sum(scipy_special.j0(x)), X)


def test_pullback_cotangent_of_the_wrong_shape_or_structure():
    _, back = ad.pullback(lambda x: x[:2] * 2, X)
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        back(np.ones(3))
    with pytest.raises(ValueError, match="structure"):
        back((np.ones(2), np.ones(2)))
    _, back = ad.pullback(lambda x: x.sum(), X)
    with pytest.raises(TypeError, match="complex"):
        back(1j)


def test_jvp_tangent_of_the_wrong_shape():
    with pytest.raises(ValueError, match="tangent 0"):
        ad.jvp(lambda x: x * 2, (X,), (np.ones(2),))


def test_inner_value_written_into_an_outer_array():
    def outer(a):
        def inner(b):
            a[0] = b * 2  # a belongs to the outer transformation
            return a.sum()

        return ad.gradient(inner, 1.5)[0]

    with pytest.raises(errors.TracerMutationError, match=r"\.at\["):
        ad.gradient(outer, X)


def test_adjoint_pullback_with_the_wrong_number_of_cotangents():
    @ad.adjoint
    def f(x, y):
        return x * y, lambda g: (g * y,)  # forgot y's cotangent

    with pytest.raises(TypeError, match="one cotangent per positional argument"):
        ad.gradient(lambda x: f(x, 2.0), 1.0)


def test_svd_with_full_matrices_names_the_fix():
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        ad.gradient(lambda a: wnp.linalg.svd(a)[0].sum(), np.ones((3, 2)))


def test_no_attribute_errors_from_array_methods():
    def f(x):
        y = x * 1.0
        y.sort()
        q, r = divmod(y, 0.75)
        y.fill(0.0)
        return q.sum() + r.sum() + round(x[0]) + x.round(1).sum() + x.take([0, 2]).sum() + y.sum()

    (g,) = ad.gradient(f, X)
    # r = y - 0.75 q passes 1 to every x (q and the rounding are flat); take adds x0 and x2.
    np.testing.assert_allclose(g, [2.0, 1.0, 2.0])


def test_mixing_numpy_and_cupy_is_refused():
    cupy = cupy_or_skip()
    with pytest.raises(TypeError, match="mix NumPy and CuPy"):
        ad.gradient(lambda p: wnp.sum(p[0] * p[1]), (X, cupy.asarray(X)))


def test_mixing_numpy_and_cupy_across_arguments_is_refused():
    cupy = cupy_or_skip()
    with pytest.raises(TypeError, match="mix NumPy and CuPy"):
        ad.gradient(lambda x, y: wnp.sum(x * y), X, cupy.asarray(X))


def test_jvp_primals_must_be_a_tuple():
    with pytest.raises(TypeError, match=r"primals must be a tuple.*jvp\(f, \(x,\), \(dx,\)\)"):
        ad.jvp(np.sin, np.ones(3), np.ones(3))


@pytest.mark.parametrize("argnums", ["x", ("x",), 1.0, True])
def test_argnums_that_are_not_positions_are_named(argnums):
    for transform in (ad.grad, ad.value_and_grad, ad.jacrev, ad.jacfwd):
        with pytest.raises(TypeError, match=r"argnums must be an int or a tuple of ints"):
            transform(lambda x: (x * x).sum(), argnums=argnums)(np.ones(3))


def test_object_arrays_of_floats_are_refused_not_given_none_gradients():
    x = np.array([1.0, 2.0], dtype=object)
    with pytest.raises(TypeError, match=r"dtype object holding floats.*np.asarray\(x, "
                                        r"dtype=float\)"):
        ad.gradient(lambda x: (x * x).sum(), x)
    with pytest.raises(TypeError, match=r"jvp: .*dtype object holding floats"):
        ad.jvp(lambda x: x * x, (x,), (np.ones(2),))
    labels = np.array(["a", "b"], dtype=object)  # not numbers: a non-differentiable input
    assert ad.gradient(lambda x, s: (x * x).sum(), np.ones(2), labels)[1] is None
