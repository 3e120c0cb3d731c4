"""Random numbers inside compiled programs (issue 15 §4): the generator is lowered
into the executable and gives the eager numbers for the same key, so a training
step that draws noise keeps its signature (it takes a key)."""

from __future__ import annotations

import numpy as np

import wengert.ad as ad
import wengert.ad.numpy as wnp
import wengert.xla as xla

R = ad.random


def test_compiled_draws_equal_eager_draws():
    def draws(k):
        a, b = R.split(k)
        return (R.uniform(a, (3, 4)), R.uniform(b, (5,), np.float32, -2.0, 2.0),
                R.normal(a, (6,)), R.normal(b, (6,), np.float32), R.bits(a, (4,), np.uint8),
                R.bernoulli(b, 0.3, (7,)), R.permutation(a, 9), R.fold_in(b, 11))

    for seed in (0, 12345):
        k = R.key(seed)
        compiled, eager = xla.jit(draws)(k), draws(k)
        for c, e in zip(compiled, eager):
            c = np.asarray(c)
            assert c.dtype == e.dtype and c.shape == e.shape
            if e.dtype == np.float32:   # erfinv: XLA's and SciPy's differ by an ulp or so
                np.testing.assert_allclose(c, e, rtol=2e-6, atol=1e-7)
            elif e.dtype == np.float64:
                np.testing.assert_allclose(c, e, rtol=1e-14, atol=1e-15)
            else:
                np.testing.assert_array_equal(c, e)


def test_a_noisy_training_step_takes_a_key_and_compiles_once():
    calls = []

    def step(w, x, key):
        calls.append(1)
        key, sub = R.split(key)
        noisy = x + 0.1 * R.normal(sub, x.shape)
        keep = R.bernoulli(key, 0.8, w.shape)
        g = ad.grad(lambda w: wnp.sum((noisy @ (w * keep)) ** 2))(w)
        return w - 0.01 * g, key

    jstep = xla.jit(step)
    w, x, key = np.ones((3, 2)), np.arange(12.0).reshape(4, 3) / 10, R.key(7)
    we, ke = w, key
    for _ in range(3):
        w, key = jstep(w, x, key)
        we, ke = step(we, x, ke)
    assert len(calls) == 1 + 3
    np.testing.assert_allclose(np.asarray(w), we, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(key), ke)
    graph = jstep.graph(w, x, key)
    assert "threefry2x32" in {e.prim.name for e in graph.eqns}  # drawn inside the program
