"""The bound that reverse mode gives a staged `while_loop` declared without
``max_steps`` (its VJP stores the carries in a stack of that many rows).

Without a bound in force such a loop cannot be differentiated in reverse
mode (an error says so). A compiler that can rerun a program, such as
`wengert.xla.jit`, sets one with `while_loop_bound` while staging, and when a
run reports that a loop went past it, stages again with a larger one.
"""

from __future__ import annotations

import contextvars

_current: contextvars.ContextVar[while_loop_bound | None] = contextvars.ContextVar(
    "wengert_while_loop_bound", default=None)


class while_loop_bound:
    """Context manager: inside it, a staged `while_loop` without ``max_steps`` that is
    differentiated in reverse mode gets ``max_steps``. ``used`` tells afterwards
    whether any loop took it (only those need restaging when a run overflows)."""

    def __init__(self, max_steps: int) -> None:
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.max_steps = max_steps
        self.used = False
        self._token: contextvars.Token | None = None

    def __enter__(self) -> while_loop_bound:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def default_max_steps() -> int | None:
    """The bound in force (recording that it was used), or ``None``."""
    bound = _current.get()
    if bound is None:
        return None
    bound.used = True
    return bound.max_steps
