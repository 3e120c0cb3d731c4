"""Python operators in compiled code mean what they mean on NumPy arrays.

Each operator runs under `xla.jit` on integer, boolean and float operands (and
Python numbers, traced as weak scalars) and must give NumPy's value and dtype, or
refuse where NumPy refuses. ``a | b`` on integers once compiled to a logical or.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np
import pytest

import wengert.xla as xla

BINARY: dict[str, Callable] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "&": operator.and_,
    "|": operator.or_, "^": operator.xor, "<<": operator.lshift, ">>": operator.rshift,
    "==": operator.eq, "<": operator.lt, ">=": operator.ge,
}
UNARY: dict[str, Callable] = {"neg": operator.neg, "~": operator.invert, "abs": operator.abs}

LEFT = {"int32": np.array([-7, 5, 12], np.int32), "uint8": np.array([200, 5, 12], np.uint8),
        "bool": np.array([True, False, True]), "float32": np.array([0.5, -2.0, 4.0], np.float32)}
# A zero divisor (False, 0) checks NumPy's integer x // 0 == x % 0 == 0.
RIGHT = {"int32": np.array([2, 0, 5], np.int32), "uint8": np.array([1, 3, 2], np.uint8),
         "bool": np.array([True, True, False]), "float32": np.array([1.5, 2.0, 0.25], np.float32)}
PAIRS = [("int32", "int32"), ("uint8", "uint8"), ("bool", "bool"), ("int32", "bool"),
         ("float32", "float32"), ("float32", "int32"), ("int32", 3), (3, "int32"),
         ("uint8", 2), ("bool", True)]


def _value(spec, side):
    return side[spec] if isinstance(spec, str) else spec


def _numpy(fn: Callable, args: tuple):
    try:
        with np.errstate(all="ignore"):
            return np.asarray(fn(*args))
    except TypeError:
        return None


def _check_all(ops: dict[str, Callable], args: tuple) -> None:
    """One compiled program per operand pair (compiling is the slow part): every
    operator NumPy accepts, in one dict; each one NumPy refuses must be refused."""
    expected = {name: _numpy(fn, args) for name, fn in ops.items()}
    accepted = {name: fn for name, fn in ops.items() if expected[name] is not None}
    got = xla.jit(lambda *xs: {name: fn(*xs) for name, fn in accepted.items()})(*args)
    for name in accepted:
        value = np.asarray(got[name])
        assert value.dtype == expected[name].dtype, \
            f"{name}: dtype {value.dtype}, NumPy's {expected[name].dtype}"
        np.testing.assert_allclose(value, expected[name], rtol=1e-6, err_msg=name)
    for name in set(ops) - set(accepted):
        with pytest.raises(TypeError):
            xla.lower(ops[name], *args)


@pytest.mark.parametrize("a, b", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_binary_operators_compile_to_numpys_meaning(a, b) -> None:
    _check_all(BINARY, (_value(a, LEFT), _value(b, RIGHT)))


@pytest.mark.parametrize("dtype", sorted(LEFT))
def test_unary_operators_compile_to_numpys_meaning(dtype: str) -> None:
    _check_all(UNARY, (LEFT[dtype],))
