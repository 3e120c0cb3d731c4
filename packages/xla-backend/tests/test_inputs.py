"""What `xla.jit` refuses or warns about: non-numeric array arguments, and captured
globals or closure values that change after compilation (baked in, as in jax.jit)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import wengert.xla as xla


@pytest.mark.parametrize("bad, kind", [(np.array(["a", "b"]), "string"),
                                       (np.array([b"a"]), "string"),
                                       (np.array([1.0, 2.0], dtype=object), "object")])
def test_string_and_object_arrays_are_refused_by_name(bad, kind):
    f = xla.jit(lambda x, s: x * 2)
    with pytest.raises(TypeError, match=rf"argument 1 holds a NumPy {kind} array .*"
                                        r"static_argnums=\(1,\)"):
        f(np.ones(2), bad)
    with pytest.raises(TypeError, match=rf"argument 0 holds a NumPy {kind} array"):
        xla.jit(lambda t: t[1] * 2)((bad, np.ones(2)))


OFFSET = np.zeros(3)
SCALE = 2.0


def shifted(x):
    return x * SCALE + OFFSET


def test_a_rebound_global_is_baked_in_and_warned_about(monkeypatch):
    f = xla.jit(shifted)
    x = np.ones(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(f(x), 2 * x)  # compiles
        np.testing.assert_array_equal(f(x), 2 * x)  # unchanged: no warning
    monkeypatch.setitem(globals(), "OFFSET", np.ones(3))
    with pytest.warns(xla.CapturedValueWarning, match=r"shifted uses global 'OFFSET', which "
                                                      r"changed after the function was compiled"):
        np.testing.assert_array_equal(f(x), 2 * x)  # the staged value, as jax.jit
    monkeypatch.setitem(globals(), "SCALE", 3.0)
    with pytest.warns(xla.CapturedValueWarning, match="global 'SCALE'"):
        f(x)


def test_an_array_written_in_place_in_a_closure_is_warned_about():
    bias = np.zeros(3)
    f = xla.jit(lambda x: x + bias)
    f(np.ones(3))
    bias[0] = 7.0
    with pytest.warns(xla.CapturedValueWarning, match="closure 'bias'"):
        np.testing.assert_array_equal(f(np.ones(3)), np.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(np.ones(3))  # once per name
