"""Every Python operator on a traced array means what it means on a NumPy array.

One table: each operator is applied to integer, boolean and float operands (and
Python numbers on either side), on plain NumPy arrays and on traced values, eagerly
(under `gradient` and under `vmap`) and staged (`make_graph` + `eval_graph`). The
traced result must have NumPy's value *and dtype*, or raise where NumPy raises;
``a | b`` on integers once staged a logical or and returned booleans.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp

BINARY: dict[str, Callable] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "@": operator.matmul,
    "&": operator.and_, "|": operator.or_, "^": operator.xor, "<<": operator.lshift,
    ">>": operator.rshift, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "divmod": lambda a, b: divmod(a, b)[0] * 1 + divmod(a, b)[1] * 0,
}
UNARY: dict[str, Callable] = {"neg": operator.neg, "pos": operator.pos,
                              "~": operator.invert, "abs": operator.abs}

# Negative left operands tell arithmetic from logical right shifts and floor from
# truncating division; right operands are positive and small (powers and shifts).
ARRAYS = {
    "int32": np.array([-7, 5, 12], np.int32),
    "int64": np.array([3, -6, 9], np.int64),
    "uint8": np.array([200, 5, 12], np.uint8),
    "bool": np.array([True, False, True]),
    "float64": np.array([-1.5, 2.0, 3.25]),
    "float32": np.array([0.5, -2.0, 4.0], np.float32),
}
RIGHT = {
    "int32": np.array([2, 3, 5], np.int32),
    "int64": np.array([1, 2, 3], np.int64),
    "uint8": np.array([1, 3, 2], np.uint8),
    "bool": np.array([True, True, False]),
    "float64": np.array([2.0, 0.5, 1.5]),
    "float32": np.array([1.5, 2.0, 0.25], np.float32),
}
PAIRS = [("int32", "int32"), ("int64", "int32"), ("uint8", "uint8"), ("bool", "bool"),
         ("int32", "bool"), ("float64", "float64"), ("float32", "int32"), ("bool", "float64"),
         ("int32", 3), (3, "int32"), ("bool", True), ("uint8", 2), ("float32", 2),
         ("float64", 2.5)]


def _operand(spec: Any, side: dict) -> Any:
    return side[spec] if isinstance(spec, str) else spec


def _numpy(fn: Callable, args: tuple) -> tuple[Any, type | None]:
    try:
        with np.errstate(all="ignore"):
            return np.asarray(fn(*args)), None
    except (TypeError, ValueError) as exc:
        return None, type(exc)


def _eager_under_gradient(fn: Callable, args: tuple) -> Any:
    """``fn`` on reverse-mode tracers: each array operand is rebuilt from a float
    tracer by an exact conversion, so every dtype is traced."""
    arrays = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    seen = {}

    def f(*floats):
        traced = list(args)
        for i, x in zip(arrays, floats):
            traced[i] = x.astype(args[i].dtype)
        seen["out"] = ad.stop_gradient(fn(*traced))
        return sum(wnp.sum(x) for x in floats)

    ad.gradient(f, *(args[i].astype(np.float64) for i in arrays))
    return seen["out"]


def _eager_under_vmap(fn: Callable, args: tuple) -> Any:
    """``fn`` mapped over a batch of two copies of its array operands."""
    in_axes = tuple(0 if isinstance(a, np.ndarray) else None for a in args)
    batched = [np.stack([a, a]) if isinstance(a, np.ndarray) else a for a in args]
    out = ad.vmap(lambda *xs: fn(*xs), in_axes=in_axes)(*batched)
    np.testing.assert_array_equal(out[0], out[1])
    return out[0]


def _staged(fn: Callable, args: tuple) -> Any:
    """Python numbers stay static here: the weak-number tracing has its own tests."""
    arrays = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]

    def f(*xs):
        full = list(args)
        for i, x in zip(arrays, xs):
            full[i] = x
        return fn(*full)

    inputs = [args[i] for i in arrays]
    return ad.eval_graph(ad.make_graph(f, *inputs), *inputs)


WAYS = {"gradient": _eager_under_gradient, "vmap": _eager_under_vmap, "staged": _staged}


def _cases() -> list:
    cases = [pytest.param(name, (a, b), id=f"{a}{name}{b}")
             for name in BINARY for a, b in PAIRS
             if name != "@" or isinstance(a, str) and isinstance(b, str)]  # no scalar @
    cases += [pytest.param(name, (a,), id=f"{name}{a}") for name in UNARY for a in ARRAYS]
    return cases


def _args(spec: tuple) -> tuple:
    if len(spec) == 1:
        return (_operand(spec[0], ARRAYS),)
    return _operand(spec[0], ARRAYS), _operand(spec[1], RIGHT)


@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize("name, spec", _cases())
def test_operator_matches_numpy(name: str, spec: tuple, way: str) -> None:
    fn = {**BINARY, **UNARY}[name]
    args = _args(spec)
    expected, refusal = _numpy(fn, args)
    if refusal is not None:
        with pytest.raises((TypeError, ValueError)), np.errstate(all="ignore"):
            WAYS[way](fn, args)
        return
    with np.errstate(all="ignore"):  # integer division by False: 0, as NumPy's
        got = np.asarray(WAYS[way](fn, args))
    assert got.dtype == expected.dtype, f"{name} {spec}: dtype {got.dtype}, NumPy's {expected.dtype}"
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("make", [operator.pos, lambda a: a.copy()], ids=["+a", "a.copy()"])
@pytest.mark.parametrize("dtype", [np.int32, np.float64])
def test_a_copy_is_not_updated_with_its_source(make: Callable, dtype: type) -> None:
    """``b = +a`` (or ``a.copy()``) then ``a += 1``: b keeps the old value, as in NumPy."""
    def f(x):
        a = x.astype(dtype)
        b = make(a)
        a += 1
        a[0] = 10
        return b

    graph = ad.make_graph(f, np.arange(3.0))
    np.testing.assert_array_equal(ad.eval_graph(graph, np.arange(3.0)), np.arange(3.0))
    np.testing.assert_array_equal(ad.vmap(f)(np.arange(6.0).reshape(2, 3)),
                                  np.arange(6.0).reshape(2, 3))
