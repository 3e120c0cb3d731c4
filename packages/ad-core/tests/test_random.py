"""`wengert.ad.random` (issue 15 §4): counter-based splittable keys; the numbers
of `jax.random` (threefry) for the same key; pure functions of the key, so they
batch under vmap and differentiate in their float parameters."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp

R = ad.random


def test_keys_and_draws_are_pure_functions_of_the_key():
    k = R.key(0)
    assert k.dtype == np.uint32 and k.shape == (2,)
    np.testing.assert_array_equal(R.uniform(k, (4,)), R.uniform(k, (4,)))
    a, b = R.split(k)
    assert not np.array_equal(R.uniform(a, (4,)), R.uniform(b, (4,)))
    assert R.split(k, 5).shape == (5, 2)
    assert not np.array_equal(R.fold_in(k, 1), R.fold_in(k, 2))
    with pytest.raises(TypeError, match="expected a key"):
        R.uniform(np.zeros(2), (3,))


def test_distributions_have_the_right_moments():
    k = R.key(1)
    u = R.uniform(k, (20000,), minval=-1.0, maxval=3.0)
    assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 0.05
    z = R.normal(k, (20000,), np.float32)
    assert z.dtype == np.float32 and abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    b = R.bernoulli(k, 0.25, (20000,))
    assert b.dtype == np.bool_ and abs(b.mean() - 0.25) < 0.02
    p = R.permutation(k, 50)
    np.testing.assert_array_equal(np.sort(p), np.arange(50))
    x = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(np.sort(R.permutation(k, x, axis=0)[:, 0]), x[:, 0])


def test_the_numbers_of_jax_random():
    jax = pytest.importorskip("jax")
    import jax.random as jr

    x64 = getattr(jax, "enable_x64", None)
    if x64 is None:  # jax < 0.7
        from jax.experimental import enable_x64 as x64
    with x64(True):
        for seed in (42, 2**40 + 3):
            jk, k = jr.PRNGKey(seed), R.key(seed)
            np.testing.assert_array_equal(k, np.asarray(jr.key_data(jk)))
            np.testing.assert_array_equal(R.split(k, 3), np.asarray(jr.split(jk, 3)))
            np.testing.assert_array_equal(R.fold_in(k, 7), np.asarray(jr.fold_in(jk, 7)))
            for dtype in (np.uint8, np.uint32, np.uint64):
                np.testing.assert_array_equal(R.bits(k, (3, 4), dtype),
                                              np.asarray(jr.bits(jk, (3, 4), dtype)))
            for dtype in (np.float32, np.float64):
                np.testing.assert_array_equal(R.uniform(k, (2, 5), dtype),
                                              np.asarray(jr.uniform(jk, (2, 5), dtype)))
                np.testing.assert_allclose(R.normal(k, (7,), dtype),
                                           np.asarray(jr.normal(jk, (7,), dtype)),
                                           rtol=1e-6 if dtype == np.float32 else 1e-13)
            np.testing.assert_array_equal(R.bernoulli(k, 0.3, (9,)),
                                          np.asarray(jr.bernoulli(jk, 0.3, (9,))))
            np.testing.assert_array_equal(R.permutation(k, 20),
                                          np.asarray(jr.permutation(jk, 20)))


def test_random_numbers_stage_batch_and_differentiate():
    k = R.key(3)
    graph = ad.make_graph(lambda k: R.normal(k, (3,)), k)
    np.testing.assert_array_equal(ad.eval_graph(graph, k), R.normal(k, (3,)))
    keys = R.split(k, 4)
    batched = ad.vmap(lambda kk: R.uniform(kk, (5,)))(keys)
    np.testing.assert_array_equal(batched, np.stack([R.uniform(kk, (5,)) for kk in keys]))
    # A reparameterised draw is differentiable in its parameters.
    g = ad.grad(lambda lo, hi: wnp.sum(R.uniform(k, (6,), minval=lo, maxval=hi)),
                argnums=(0, 1))(np.array(-1.0), np.array(2.0))
    u = R.uniform(k, (6,))
    np.testing.assert_allclose(g, (np.sum(1 - u), np.sum(u)), rtol=1e-12)
