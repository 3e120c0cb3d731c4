"""The forms users bring from autograd and JAX: `elementwise_grad`, the function
forms `jacobian(f)(x)` and `hessian(f)(x)`, and ``argnum=`` as an alias of
``argnums=`` (the Zygote forms `jacobian(f, x)`, `hessian(f, x)` keep working)."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp

X = np.array([0.1, 0.5, 1.0])


def test_elementwise_grad_is_the_derivative_of_each_entry():
    np.testing.assert_allclose(ad.elementwise_grad(wnp.tanh)(X), 1 - np.tanh(X) ** 2)
    np.testing.assert_allclose(ad.elementwise_grad(ad.elementwise_grad(wnp.sin))(X), -np.sin(X))
    ga, gb = ad.elementwise_grad(lambda a, b: a * b, argnums=(0, 1))(X, 2 * X)
    np.testing.assert_allclose(ga, 2 * X)
    np.testing.assert_allclose(gb, X)
    assert ad.elementwise_grad(wnp.sin)(0.5) == pytest.approx(np.cos(0.5))


def test_jacobian_and_hessian_function_forms():
    np.testing.assert_allclose(ad.jacobian(wnp.sin)(X), np.diag(np.cos(X)))
    np.testing.assert_allclose(ad.jacobian(lambda a, b: a * b, argnums=1)(X, 2 * X), np.diag(X))
    (j,) = ad.jacobian(wnp.sin, X)                  # Zygote's form: one per argument
    np.testing.assert_allclose(j, np.diag(np.cos(X)))
    f = lambda x: wnp.sum(x ** 3)
    np.testing.assert_allclose(ad.hessian(f)(X), np.diag(6 * X))
    np.testing.assert_allclose(ad.hessian(f, X), np.diag(6 * X))
    h = ad.hessian(lambda a, b: wnp.sum(a * a * b), argnums=1)(X, X)
    np.testing.assert_allclose(h, np.zeros((3, 3)))
    with pytest.raises(TypeError, match="argnums"):
        ad.jacobian(wnp.sin, X, argnums=0)


@pytest.mark.parametrize("transform", [ad.grad, ad.value_and_grad, ad.elementwise_grad,
                                       ad.jacfwd, ad.jacrev, ad.jacobian])
def test_argnum_is_an_alias_of_argnums(transform):
    scalar = transform in (ad.grad, ad.value_and_grad)

    def f(a, b):
        return wnp.sum(a * b) if scalar else a * b

    def derivative(**which):
        out = transform(f, **which)(X, 2 * X)
        return out[1] if transform is ad.value_and_grad else out

    expected = X if scalar or transform is ad.elementwise_grad else np.diag(X)
    np.testing.assert_allclose(derivative(argnum=1), expected)
    np.testing.assert_allclose(derivative(argnums=1), expected)
    with pytest.raises(TypeError, match="argnums or its alias argnum"):
        transform(f, argnums=1, argnum=1)
