"""In-place updates of traced handles, and a journal of them.

A traced array is a mutable handle (``a[i] = v`` rebinds it to a new value).
A function staged as a sub-graph (a branch, a loop body) may rebind handles
that live outside it; left alone, the other branch would see the update, or
the handle would escape holding a value of the finished sub-graph. `stage`
therefore journals the rebinds made while a sub-function runs and restores
the outer handles afterwards; `cond` turns them into extra branch outputs.
"""

from __future__ import annotations

import copy
from typing import Any

from . import ir
from ._core import ConcreteTracer, Tracer

_journals: list[dict[int, tuple[Tracer, tuple]]] = []


def _state(handle: Tracer) -> tuple:
    return tuple(getattr(handle, name) for name in type(handle).__slots__)


def rebind(handle: Tracer, new: Any) -> bool:
    """Point ``handle`` at ``new``'s value; False if ``new`` lives on another trace."""
    if type(new) is not type(handle) or new._trace is not handle._trace:
        return False
    if _journals and id(handle) not in _journals[-1]:
        _journals[-1][id(handle)] = (handle, _state(handle))
    for name in type(handle).__slots__:
        setattr(handle, name, getattr(new, name))
    return True


class journal:
    """Records, for each handle rebound inside the block, its state before the first
    rebind (innermost journal only: an enclosing one sees the rebinds made after)."""

    def __enter__(self) -> journal:
        self.entries: dict[int, tuple[Tracer, tuple]] = {}
        self.first_new_var = next(ir._ids)  # staged values made inside have larger ids
        _journals.append(self.entries)
        return self

    def __exit__(self, *exc: object) -> None:
        popped = _journals.pop()
        assert popped is self.entries, "mutation journals exited out of order"

    def outer(self, level: int) -> list[Tracer]:
        """The rebound handles made outside the block: of a trace below ``level`` and
        holding, before the block, a value staged before it. (Operations on outer values
        alone run at the outer level, so a temporary such as ``t = a[0]; t += 1`` is of an
        outer trace too, but its value is new.)"""
        found = []
        for h, state in self.entries.values():
            if h._trace.level >= level:
                continue
            before = copy.copy(h)
            for name, value in zip(type(h).__slots__, state):
                setattr(before, name, value)
            if _staged_var_id(before) < self.first_new_var:
                found.append(h)
        return found

    def restore(self, handles: list[Tracer]) -> None:
        """Put ``handles`` back to their state before the block."""
        for h in handles:
            for name, value in zip(type(h).__slots__, self.entries[id(h)][1]):
                setattr(h, name, value)


def _staged_var_id(x: Any) -> int:
    """The id of the staged variable under ``x`` (-1 if none: a concrete value)."""
    while isinstance(x, ConcreteTracer):
        x = x._primal()
    var = getattr(x, "var", None)
    return var.id if isinstance(var, ir.Var) else -1
