"""Unmodified NumPy (and scipy.special) code is differentiated: traced values
implement ``__array_ufunc__`` and ``__array_function__``, and their methods and
operators, so ``np.sin(x)``, ``x @ W`` and ``x.T`` reach `wengert.ad.numpy`."""

from __future__ import annotations

import numpy as np
import scipy.special

import wengert.ad as ad

from adcore_support import numerical_gradient

RNG = np.random.default_rng(5)
X = RNG.normal(size=(4, 3))
W = RNG.normal(size=(3, 2))
B = RNG.normal(size=2)


def plain_numpy_model(x, w, b):
    """Written against NumPy alone; nothing here knows about wengert."""
    h = np.tanh(x @ w + b)
    z = np.concatenate([h, x[:, :1] ** 2], axis=1)
    z = z.T.reshape(-1)
    spread = np.sum(np.square(z - np.mean(z))) / z.size
    stats = np.max(np.abs(h), axis=0).sum() + np.linalg.norm(w) + np.std(x.ravel())
    soft = scipy.special.expit(h).prod() + np.exp(np.log1p(np.abs(b))).sum()
    spectrum = np.abs(np.fft.rfft(x[0], n=6)).sum()
    return spread + stats + soft + np.dot(b, b) + np.einsum("ij,jk->", x, w) + spectrum


def test_unmodified_numpy_program():
    gx, gw, gb = ad.gradient(plain_numpy_model, X, W, B)
    np.testing.assert_allclose(gx, numerical_gradient(lambda v: plain_numpy_model(v, W, B), X),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gw, numerical_gradient(lambda v: plain_numpy_model(X, v, B), W),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gb, numerical_gradient(lambda v: plain_numpy_model(X, W, v), B),
                               rtol=1e-5, atol=1e-7)


def test_methods_operators_and_ufunc_reductions():
    def f(x):
        y = (-x).T @ x / 2 + abs(x).sum(axis=0, keepdims=True) ** 2 - x.mean() % 1.0
        y = np.add.reduce(y, axis=1) + np.multiply.accumulate(x[:, 0])[-1]
        det = np.linalg.det(y[None] * np.eye(3))
        return y.clip(-3, 3).cumsum().max() + x.var(axis=1).std() + det

    np.testing.assert_allclose(ad.gradient(f, X[:3])[0], numerical_gradient(f, X[:3]),
                               rtol=1e-5, atol=1e-7)


def test_linalg_solve_through_numpy():
    a = np.eye(3) * 3 + X[:3] * 0.2

    def f(a):
        return np.linalg.solve(a, np.ones(3)).sum() + np.linalg.slogdet(a)[1]

    np.testing.assert_allclose(ad.gradient(f, a)[0], numerical_gradient(f, a), rtol=1e-6)
