"""A Python ``while`` on a traced value compiles *and* differentiates under
`xla.jit` without ``set_loop_options``: the backward pass gets a default bound,
and a run that goes past it is compiled again at a doubled bound (reported once)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
import wengert.xla as xla


def grow(x, target):
    y = x
    while wnp.sum(y) < target:     # about 750 iterations for target 20: past 256 and 512
        y = y * 1.001 + 0.01
    return wnp.sum(y * y)


def test_a_plain_python_while_differentiates_without_loop_options():
    x = np.array([0.5, 0.25])
    g = xla.jit(ad.grad(grow), static_argnums=1)
    np.testing.assert_allclose(np.asarray(g(x, 2.0)), ad.grad(grow)(x, 2.0), rtol=1e-12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = g(x, 20.0)
        again = g(x * 1.01, 20.0)  # the grown bound is kept: no new warning
    np.testing.assert_allclose(np.asarray(got), ad.grad(grow)(x, 20.0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(again), ad.grad(grow)(x * 1.01, 20.0), rtol=1e-12)
    bound_warnings = [w for w in caught if issubclass(w.category, xla.LoopBoundWarning)]
    assert len(bound_warnings) == 1
    assert "256" in str(bound_warnings[0].message)


def test_a_loop_with_explicit_max_steps_still_raises_when_exceeded():
    def bounded(x):
        y = x
        while wnp.sum(y) < 20.0:
            xla.set_loop_options(max_steps=10)
            y = y * 1.001 + 0.01
        return wnp.sum(y * y)

    with pytest.raises(ad.control.MaxStepsExceeded):
        xla.jit(ad.grad(bounded))(np.array([0.5, 0.25]))


def test_an_explicit_bound_exceeded_beside_a_default_one_ends_in_an_error(monkeypatch):
    from wengert.xla import compile as xla_compile

    monkeypatch.setattr(xla_compile, "MAX_LOOP_BOUND", 1024)

    def two_loops(x):
        y = x
        while wnp.sum(y) < 20.0:            # default bound, and enough at 1024
            y = y * 1.001 + 0.01
        z = y
        while wnp.sum(z) < 40.0:            # its own bound, too small: stays too small
            xla.set_loop_options(max_steps=10)
            z = z + 0.5
        return wnp.sum(z * y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xla.LoopBoundWarning)
        with pytest.raises(ad.control.MaxStepsExceeded, match="set_loop_options"):
            xla.jit(ad.grad(two_loops))(np.array([0.5, 0.25]))


def test_staging_without_a_bound_names_the_fix():
    def f(x):
        return ad.while_loop(lambda y: wnp.sum(y) < 5.0, lambda y: y + 1.0, x)

    with pytest.raises(ValueError, match="while_loop_bound"):
        ad.make_graph(ad.grad(lambda x: wnp.sum(f(x))), np.ones(2))
    with ad.while_loop_bound(16) as bound:
        graph = ad.make_graph(ad.grad(lambda x: wnp.sum(f(x))), np.ones(2))
    assert bound.used
    np.testing.assert_allclose(ad.eval_graph(graph, np.ones(2)), np.ones(2))
