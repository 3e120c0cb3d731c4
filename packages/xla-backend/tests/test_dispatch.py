"""Calls with many array inputs in containers take jax's dispatch directly.

A call whose arguments are NumPy or jax arrays in tuples, lists and dicts, seen
before, is found by jax's flattening and one comparison of the leaves' types,
dtypes and shapes; its result must be exactly what the first (slow) call path
gives: any change of dtype, shape, structure or kind of leaf goes the slow way.
"""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wengert.ad as ad
import wengert.xla as xla

Pair = collections.namedtuple("Pair", "first second")


def _step(params, state, lr):
    new = {k: params[k] - lr * state["m"][k] for k in ("w", "b")}
    return Pair(new, {"v": state["v"] + 1, "m": [state["m"]["w"].sum(), state["m"]["b"]]})


def _args(dtype=np.float32, n=3):
    w, b = np.arange(n * 2, dtype=dtype).reshape(n, 2), np.ones(2, dtype)
    # keys out of sorted order: jax orders them, the program's inputs must line up
    return ({"w": w, "b": b}, {"v": np.zeros((), dtype), "m": {"w": w * 2, "b": b * 3}},
            np.array(0.5, dtype))


def _check(got, want):
    assert type(got) is Pair and list(got.second) == ["v", "m"]  # the function's key order
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        g = np.asarray(g)
        assert g.dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_repeated_calls_skip_the_tree_walk_and_give_the_same_results(monkeypatch):
    f = xla.jit(_step)
    args = _args()
    _check(f(*args), _step(*args))
    walks = []
    flatten = ad.tree_flatten
    monkeypatch.setattr(ad, "tree_flatten", lambda *a, **k: walks.append(1) or flatten(*a, **k))
    for scale in (2.0, 3.0):  # new values, same signature
        args = jax.tree_util.tree_map(lambda x, s=scale: x * np.float32(s), _args())
        _check(f(*args), _step(*args))
    jax_args = jax.tree_util.tree_map(jnp.asarray, _args())
    f(*jax_args)  # first call with jax arrays: the slow path once
    walks.clear()
    _check(f(*jax_args), _step(*_args()))
    assert not walks, "a call seen before walked the argument tree"


@pytest.mark.parametrize("change", ["dtype", "shape", "python number", "same array twice",
                                    "structure"])
def test_any_change_of_signature_takes_the_slow_path(change):
    f = xla.jit(_step)
    f(*_args())
    f(*_args())
    params, state, lr = _args()
    if change == "dtype":  # float64 NumPy inputs: a float64 program, not float32 again
        params, state, lr = _args(np.float64)
    elif change == "shape":
        params, state, lr = _args(n=4)
    elif change == "python number":
        lr = 0.25
    elif change == "same array twice":
        state["m"]["w"] = params["w"]
    else:  # a new leaf (unused by _step) and a list for a dict
        state = {**state, "extra": [np.ones(2, np.float32)]}
    _check(f(params, state, lr), _step(params, state, lr))


def test_arrays_on_another_device_run_there():
    """A jax array committed elsewhere is refused by jax's dispatch before anything
    runs; the call then takes the full path, which runs on the arrays' device.
    (Two CPU devices need a fresh process: XLA reads the flag at start-up.)"""
    import os
    import subprocess
    import sys

    script = (
        "import jax, numpy as np, wengert.xla as xla\n"
        "d0, d1 = jax.devices()\n"
        "f = xla.jit(lambda t: t[0] * 2 + t[1])\n"
        "for d in (d0, d0, d1, d1, d0):\n"
        "    t = tuple(jax.device_put(np.full(3, k, np.float32), d) for k in (1, 2))\n"
        "    out = f(t)\n"
        "    assert out.sharding.device_set == {d}, (out.sharding, d)\n"
        "    assert np.allclose(out, 4.0)\n")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          check=False, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
