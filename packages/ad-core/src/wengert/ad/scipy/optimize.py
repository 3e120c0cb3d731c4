"""Differentiable `scipy.optimize.fixed_point`: the solution ``x* = func(x*, *args)``
found by iteration, differentiated by the implicit-function rule instead of
through the loop.

At the fixed point, ``dx* = (I - ∂f/∂x)^{-1} ∂f/∂args · dargs``. The pullback
solves the adjoint fixed point ``w = g + (∂f/∂x)^T w`` (by this same function)
and returns ``(∂f/∂args)^T w``. Because the pullback is itself written with
`fixed_point` and differentiable operations, derivatives of every order are
those of the exact solution, not of the truncated loop. ``x0`` gets a zero
derivative (the fixed point does not depend on where the iteration starts).

``func`` must be a contraction near the solution (plain iteration must
converge); the iteration runs on concrete values, so `fixed_point` cannot be
staged (use `wengert.ad.while_loop` there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._api import adjoint, pullback, stop_gradient
from .._core import ConcreteTracer, Tracer
from ..errors import ConcretizationError, NonDifferentiableError
from ..tree import tree_leaves


def fixed_point(func: Callable, x0: Any, args: tuple = (), xtol: float = 1e-12,
                maxiter: int = 10000) -> Any:
    """``x`` with ``x = func(x, *args)``, iterating from ``x0`` until successive iterates
    agree to ``xtol`` (relative); differentiable in ``args`` to any order."""
    return _implicit(func, float(xtol), int(maxiter))(x0, tuple(args))


def _implicit(func: Callable, xtol: float, maxiter: int) -> Callable:
    @adjoint
    def solve(x0: Any, args: tuple) -> tuple[Any, Callable]:
        leaves = tree_leaves((x0, args))
        if any(isinstance(v, Tracer) and not isinstance(v, ConcreteTracer) for v in leaves):
            raise ConcretizationError(
                "fixed_point iterates on concrete values and cannot be staged; inside "
                "make_graph or xla.jit write the iteration with wengert.ad.while_loop")
        if any(isinstance(v, Tracer) for v in leaves):
            x = solve(stop_gradient(x0), args)  # an outer transformation applies this rule too
        else:
            x = _iterate(func, x0, args, xtol, maxiter)

        def back(g: Any) -> tuple:
            w = fixed_point(_adjoint_map(func), g, (x, args, g), xtol, maxiter)
            _, vjp_args = pullback(lambda a: func(x, *a), args)
            return None, vjp_args(w)[0]

        return x, back

    return solve


def _adjoint_map(func: Callable) -> Callable:
    """``w -> g + (∂f/∂x)^T w`` at ``(x, args)``: its fixed point is the adjoint."""
    def step(w: Any, x: Any, args: tuple, g: Any) -> Any:
        _, vjp_x = pullback(lambda y: func(y, *args), x)
        return g + vjp_x(w)[0]

    return step


def _iterate(func: Callable, x: Any, args: tuple, xtol: float, maxiter: int) -> Any:
    for _ in range(maxiter):
        new = func(x, *args)
        if isinstance(new, Tracer):
            raise NonDifferentiableError(
                "fixed_point: func closes over a traced value, whose derivative the implicit "
                "rule cannot see; pass it through args=(...) instead")
        change = np.max(np.abs(np.asarray(new) - np.asarray(x)), initial=0.0)
        if change <= xtol * (1.0 + np.max(np.abs(np.asarray(new)), initial=0.0)):
            return new
        x = new
    raise RuntimeError(f"fixed_point did not converge in {maxiter} iterations (last change "
                       f"{change:.3g}); func must be a contraction near the solution")


__all__ = ["fixed_point"]
