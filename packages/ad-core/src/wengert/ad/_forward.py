"""Forward mode: tracers that carry a primal and a tangent.

A missing tangent is ``None`` (a symbolic zero), so inputs that are not being
differentiated cost nothing.
"""

from __future__ import annotations

from typing import Any

from ._core import ConcreteTracer, Primitive, Trace, Tracer


class JVPTracer(ConcreteTracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace: JVPTrace, primal: Any, tangent: Any) -> None:
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    def _primal(self) -> Any:
        return self.primal

    def __repr__(self) -> str:
        return f"JVPTracer(level={self._trace.level}, primal={self.primal!r})"


class JVPTrace(Trace):
    __slots__ = ()

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        primals = []
        tangents = []
        any_tangent = lower = False
        for a in args:
            if type(a) is JVPTracer and a._trace is self:
                tangents.append(a.tangent)
                any_tangent = True
                a = a.primal
            else:
                tangents.append(None)
            primals.append(a)
            if isinstance(a, Tracer):
                lower = True
        ans = prim.bind(*primals, **params) if lower else prim.impl(*primals, **params)
        if not any_tangent or (prim.jvps is None and prim.jvp is None):
            return ans
        if prim.multiple_results:
            outs = prim.jvp(tangents, ans, *primals, **params)
            return tuple(a if t is None else JVPTracer(self, a, t) for a, t in zip(ans, outs))
        t_out = None
        jvps = prim.jvps
        for i, t in enumerate(tangents):
            if t is not None and jvps[i] is not None:
                c = jvps[i](t, ans, *primals, **params)
                if c is not None:
                    t_out = c if t_out is None else t_out + c
        if t_out is None:
            return ans
        shape = getattr(ans, "shape", ())
        t_shape = getattr(t_out, "shape", ())
        if t_shape != shape:  # a tangent of a broadcast operand
            from .primitives.structural import broadcast_in_dim_p

            t_out = broadcast_in_dim_p.bind(t_out, shape=shape, broadcast_dimensions=tuple(
                range(len(shape) - len(t_shape), len(shape))))
        return JVPTracer(self, ans, t_out)
