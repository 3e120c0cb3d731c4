"""The errors `wengert.ad` raises, so callers can catch them by kind, and the one
place that unwraps them from NumPy's own errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class TracerArrayConversionError(TypeError):
    """A traced value was turned into a plain NumPy array (its derivative would be lost)."""


class TracerMutationError(TypeError):
    """An in-place update that cannot be expressed on the traced handle."""


class ConcretizationError(TypeError):
    """Python control flow asked for the value of a staged (abstract) tracer."""


class NonDifferentiableError(TypeError):
    """A function with no differentiation rule was applied to a traced value."""


class EscapedTracerError(TypeError):
    """A traced value was used after the transformation that made it had returned."""


class DerivativeDroppedError(TypeError):
    """A differentiable traced value was converted to a Python number (its derivative
    would silently be lost)."""


def call_user_function(f: Callable, args: Sequence[Any]) -> Any:
    """Call ``f``, surfacing our conversion error where NumPy wrapped it.

    Storing a tracer into a plain array makes NumPy raise its own
    "setting an array element with a sequence", with ours only as the cause.
    """
    try:
        return f(*args)
    except (ValueError, TypeError) as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, TracerArrayConversionError) and exc is not cause:
            raise cause.with_traceback(exc.__traceback__) from None
        raise
