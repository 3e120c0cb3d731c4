"""Differentiable `scipy.integrate.odeint`: ``dy/dt = func(y, t, *args)`` (SciPy's
argument order) solved by an adaptive Dormand–Prince 5(4) method, with the
gradient from the **adjoint method**: the pullback integrates the adjoint
system ``da/dt = -a ∂f/∂y``, ``d(args_bar)/dt = -a ∂f/∂args`` backwards in time
alongside ``y``, so memory does not grow with the number of steps taken.

Derivatives: reverse mode (`gradient`, `pullback`) uses the adjoint; forward
mode differentiates the solver's steps (the same solution to the tolerance).
Both agree with the exact derivative to about the solver tolerance, not to
machine precision. Pass parameters through ``args``: values that ``func``
closes over are differentiated through the solver's steps instead (right,
but every step is recorded). The solver needs concrete values (its step sizes depend on them), so `odeint`
cannot be staged. States are real arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import numpy as wnp
from .._api import adjoint, pullback
from .._core import ConcreteTracer, Tracer
from ..errors import ConcretizationError
from ..tree import tree_leaves, tree_map

# Dormand–Prince 5(4): nodes, stages, 5th-order weights, and 5th minus 4th-order weights.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = ((), (1 / 5,), (3 / 40, 9 / 40), (44 / 45, -56 / 15, 32 / 9),
      (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
      (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656))
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


def odeint(func: Callable, y0: Any, t: Any, args: tuple = (), rtol: float = 1.4e-8,
           atol: float = 1.4e-8, mxstep: int = 100000) -> Any:
    """``y`` at each time of ``t`` (increasing or decreasing; ``y[0] = y0``), shape
    ``(len(t), *y0.shape)``; differentiable in ``y0``, ``t`` and ``args``."""
    return _with_adjoint(func, float(rtol), float(atol), int(mxstep))(
        wnp.asarray(y0), wnp.asarray(t), tuple(args))


def _with_adjoint(func: Callable, rtol: float, atol: float, mxstep: int) -> Callable:
    def solve(state0: tuple, rhs: Callable, ts: Any) -> list:
        return _solve_at(rhs, state0, ts, rtol, atol, mxstep)

    @adjoint
    def run(y0: Any, t: Any, args: tuple) -> tuple[Any, Callable]:
        _refuse_staged((y0, t, args))
        ys = wnp.stack([s[0] for s in solve((y0,), lambda s, tt: (func(s[0], tt, *args),), t)])

        def back(g: Any) -> tuple:
            return _adjoint_sweep(func, ys, t, args, g, solve)

        return ys, back

    return run


def _adjoint_sweep(func: Callable, ys: Any, t: Any, args: tuple, g: Any,
                   solve: Callable) -> tuple:
    def augmented(state: tuple, tt: Any) -> tuple:
        y, a, _ = state
        dy, vjp = pullback(lambda yy, pp: func(yy, tt, *pp), y, args)
        a_y, a_args = vjp(a)
        return dy, -a_y, tree_map(lambda c: -c, a_args)

    n = ys.shape[0]
    a = g[n - 1]
    args_bar = tree_map(wnp.zeros_like, args)
    t_bar = []
    for i in range(n - 1, 0, -1):
        t_bar.append(wnp.sum(g[i] * func(ys[i], t[i], *args)))
        _, a, args_bar = solve((ys[i], a, args_bar), augmented, wnp.stack([t[i], t[i - 1]]))[-1]
        a = a + g[i - 1]
    t0_bar = -wnp.sum((a - g[0]) * func(ys[0], t[0], *args))
    return a, wnp.stack([t0_bar] + t_bar[::-1]), args_bar


def _solve_at(rhs: Callable, state: tuple, ts: Any, rtol: float, atol: float,
              mxstep: int) -> list:
    """The state at each time of ``ts`` (the first is ``state`` itself)."""
    out = [state]
    h = None
    k1 = None
    for i in range(1, ts.shape[0]):
        t0, t1 = ts[i - 1], ts[i]
        state, h, k1 = _integrate(rhs, state, t0, t1, h, k1, rtol, atol, mxstep)
        out.append(state)
    return out


def _axpy(state: tuple, h: Any, weights: tuple, ks: list) -> tuple:
    """``state + h * sum(w_i k_i)`` over trees."""
    def one(y: Any, *k_leaves: Any) -> Any:
        acc = None
        for w, k in zip(weights, k_leaves):
            if w:
                acc = w * k if acc is None else acc + w * k
        return y if acc is None else y + h * acc

    return tree_map(one, state, *ks)


def _integrate(rhs: Callable, state: tuple, t0: Any, t1: Any, h: float | None, k1: Any,
               rtol: float, atol: float, mxstep: int) -> tuple:
    span = _value(t1) - _value(t0)
    if span == 0:
        return state, h, k1
    direction = 1.0 if span > 0 else -1.0
    t = t0
    if k1 is None:
        k1 = rhs(state, t)
    if h is None:
        scale = [atol + rtol * np.abs(_value(y)) for y in tree_leaves(state)]
        d0 = _rms([_value(y) / s for y, s in zip(tree_leaves(state), scale)])
        d1 = _rms([_value(k) / s for k, s in zip(tree_leaves(k1), scale)])
        h = 0.01 * d0 / d1 if d0 > 1e-5 and d1 > 1e-5 else 1e-6
    h = min(abs(h), abs(span))
    for _ in range(mxstep):
        remaining = abs(_value(t1) - _value(t))
        if remaining <= 1e-14 * abs(span):
            return state, h, k1
        step = direction * min(h, remaining)
        last = step == direction * remaining
        ks = [k1]
        for c, a in zip(_C[1:], _A[1:]):
            ks.append(rhs(_axpy(state, step, a, ks), t + c * step))
        new = _axpy(state, step, _B, ks)
        t_new = t1 if last else t + step
        k7 = rhs(new, t_new)
        err = _axpy(tree_map(lambda y: y * 0, state), step, _E, ks + [k7])
        ratio = _rms([_value(e) / (atol + rtol * np.maximum(np.abs(_value(y)), np.abs(_value(n))))
                      for e, y, n in zip(tree_leaves(err), tree_leaves(state), tree_leaves(new))])
        if ratio <= 1.0:
            state, t, k1 = new, t_new, k7
        factor = 0.9 * ratio ** -0.2 if ratio > 0 else 10.0
        h = abs(step) * min(10.0, max(0.2, factor))
    raise RuntimeError(f"odeint: more than {mxstep} steps between t={_value(t0)} and "
                       f"t={_value(t1)}; the problem may be stiff (raise mxstep or loosen rtol)")


def _rms(parts: list) -> float:
    total = sum(float(np.sum(np.square(p))) for p in parts)
    count = sum(int(np.size(p)) for p in parts)
    return float(np.sqrt(total / max(count, 1)))


def _value(x: Any) -> Any:
    """The concrete value of ``x`` (step-size control is not differentiated)."""
    while isinstance(x, ConcreteTracer):
        x = x._primal()
    return x


def _refuse_staged(tree: Any) -> None:
    if any(isinstance(_value(v), Tracer) for v in tree_leaves(tree)):
        raise ConcretizationError(
            "odeint chooses its steps from concrete values and cannot be staged; inside "
            "make_graph or xla.jit write a fixed-step integrator with wengert.ad.scan")


__all__ = ["odeint"]
