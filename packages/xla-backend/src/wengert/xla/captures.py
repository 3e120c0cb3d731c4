"""Noticing that a value a compiled function captured has changed since it was compiled.

As in JAX, a jitted function's globals and closure variables are read once, while it is
staged, and baked into the program: rebinding a global (``W = W * 2``) or writing into a
captured array does not reach the compiled program. Detecting every such change would
cost a walk over all the memory a function can reach on every call; what is cheap is
checked instead: the arrays and numbers the function itself names as globals or closure
variables are compared by identity, and those arrays up to `SNAPSHOT_MAX_SIZE` elements
(and the numbers) also by value. A change gives one warning per name.
"""

from __future__ import annotations

import types
import warnings
from typing import Any

import numpy as np

#: Arrays up to this many elements are copied at staging time and compared on each call.
SNAPSHOT_MAX_SIZE = 4096

_NUMBER = (bool, int, float, complex, np.number)


class CapturedValueWarning(UserWarning):
    """A global or closure value changed after the function that uses it was compiled."""


def _watchable(value: Any) -> bool:
    return isinstance(value, (np.ndarray, *_NUMBER))


class Captures:
    """The watchable globals and closure variables of a function, as they were staged."""

    __slots__ = ("_entries", "_fun", "_warned")

    def __init__(self, fun: Any) -> None:
        self._fun = fun
        self._entries: list[tuple[str, Any, Any, Any]] = []  # (name, where, object, snapshot)
        self._warned: set[str] = set()
        if not isinstance(fun, types.FunctionType):
            return
        code = fun.__code__
        for name in code.co_names:
            value = fun.__globals__.get(name)
            if _watchable(value):
                self._entries.append((name, None, value, _snapshot(value)))
        for name, cell in zip(code.co_freevars, fun.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if _watchable(value):
                self._entries.append((name, cell, value, _snapshot(value)))

    def check(self) -> None:
        """Warn (once per name) about each captured value that has changed."""
        for name, cell, staged, snapshot in self._entries:
            if name in self._warned:
                continue
            try:
                now = cell.cell_contents if cell is not None else self._fun.__globals__[name]
            except (KeyError, ValueError):
                continue
            if now is staged and (snapshot is None or _equal(now, snapshot)):
                continue
            self._warned.add(name)
            warnings.warn(
                f"{self._fun.__qualname__} uses {'global' if cell is None else 'closure'} "
                f"{name!r}, which changed after the function was compiled; the compiled "
                "program keeps the value it had then (as jax.jit does). Pass it as an "
                "argument to use its current value",
                CapturedValueWarning, stacklevel=3)


def _snapshot(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy() if value.size <= SNAPSHOT_MAX_SIZE else None
    return value


def _equal(now: Any, snapshot: Any) -> bool:
    if isinstance(snapshot, np.ndarray):
        return bool(np.array_equal(now, snapshot, equal_nan=True))
    return bool(now == snapshot) or bool(np.isnan(now) and np.isnan(snapshot))
