"""Custom differentiation rules under every transformation.

* `adjoint` functions (a hand-written pullback) under **forward mode**: the
  pullback ``back`` is linear in the cotangent, so the JVP is its transpose,
  ``J t = back^T t``, obtained by running reverse mode over ``back`` (at a
  zero cotangent, any point would do) and pulling ``t`` back through it. One
  extra recorded ``back`` per call and no basis vectors, so the cost does not
  grow with the size of the input; it needs ``back`` to be written with
  differentiable operations. If it is not, the primal code is differentiated
  instead (what `adjoint` did before). To give the JVP yourself, use
  `custom_jvp`.
* `custom_jvp`: a hand-written JVP rule (JAX's convention,
  ``rule(primals, tangents) -> (y, y_dot)``), used by forward mode; reverse
  mode uses its transpose (the rule must be linear in the tangents).
* **Staging**: an `adjoint` or `custom_jvp` function becomes ONE equation whose
  params hold the staged primal and the staged pullback (or JVP), so the
  rule survives into the graph and transformations of the graph use it.

Param contract (lowerings run ``graph``; the other graph serves the rules):

``custom_vjp_call(*consts, *args) -> (*outs)``
    ``graph``: ``(*consts, *args) -> (*outs)``; ``bwd_graph``:
    ``(*consts, *args, *cts) -> (*arg_cts)`` with one cotangent per float
    output in ``cts`` and per float argument in ``arg_cts``; ``n_consts``.
``custom_jvp_call(*consts, *args) -> (*outs)``
    ``graph`` as above; ``jvp_graph``: ``(*consts, *args, *arg_tangents) ->
    (*outs, *out_tangents)`` (float arguments and outputs only); ``n_consts``.

Values the custom function closes over (the consts) are differentiated
through the primal graph; the rule covers the positional arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import ir
from ._api import is_differentiable, pullback, top_trace
from ._core import Aval, Primitive, aval_of, is_inexact_dtype
from ._forward import JVPTrace, JVPTracer
from ._reverse import ReverseTrace
from ._staging import StagingTrace, _abstract, run_graph, stage
from .errors import NonDifferentiableError, TracerArrayConversionError
from .primitives.control import JointVJP
from .primitives.dynamic import zeros_on
from .tree import TreeDef, flatten_up_to, tree_flatten, tree_map, tree_unflatten


def _float(x: Any) -> bool:
    return is_differentiable(x)




def _arg_cotangents(args_tree: TreeDef, per_arg: Any) -> list:
    """The leaves of the cotangents a pullback returned, checked against the arguments'
    structure (a dict with other keys must not pass because its leaf count fits)."""
    if not isinstance(per_arg, (tuple, list)) or len(per_arg) != len(args_tree.children):
        raise TypeError(f"a custom pullback must return a tuple with one cotangent per "
                        f"positional argument ({len(args_tree.children)}), got {per_arg!r:.80}")
    return flatten_up_to(args_tree, list(per_arg), "the cotangent a custom pullback returned")


def _output_tangents(y_tree: TreeDef, y_dot: Any) -> list:
    return flatten_up_to(y_tree, y_dot, "the output tangent of a custom_jvp rule")


# ---- the reverse trace, with trees of arguments -----------------------------------------------
def call_adjoint(trace: ReverseTrace, fun: Callable, args: tuple) -> Any:
    """``trace.process_custom_vjp(fun, args)`` for tree arguments and any outputs.

    The tape entry sees flat leaves; only float outputs go through it, the
    others (counters, flags) come back as they are. ``fun(*args)`` returns
    ``(y, back)`` with ``back(dy)`` giving one cotangent tree per argument.
    """
    in_leaves, in_tree = tree_flatten(list(args))
    out: dict = {}

    def flat(*leaves: Any) -> tuple[list, Callable]:
        y, back = fun(*tree_unflatten(in_tree, list(leaves)))
        y_leaves, out["tree"] = tree_flatten(y)
        out["leaves"] = y_leaves
        out["diff"] = diff = [_float(v) for v in y_leaves]

        def float_back(g: list) -> tuple:
            it = iter(g)
            full = [next(it) if d else np.zeros(np.shape(v), np.result_type(v))
                    for v, d in zip(y_leaves, diff)]
            return tuple(_arg_cotangents(in_tree, back(tree_unflatten(out["tree"], full))))

        return [v for v, d in zip(y_leaves, diff) if d], float_back

    floats = iter(trace.process_custom_vjp(flat, in_leaves))
    return tree_unflatten(out["tree"], [next(floats) if d else v
                                        for v, d in zip(out["leaves"], out["diff"])])


# ---- flat transposition ----------------------------------------------------------------------
def transpose(linear: Callable, likes: Sequence[Any], cotangents: Sequence[Any]) -> list:
    """``L^T c`` for ``linear(*lin) -> list`` linear in inputs shaped like ``likes``
    (``None`` = zero)."""
    from .control._ad import vjp_flat

    _, back = vjp_flat(linear, [zeros_on(x, aval_of(x).shape, aval_of(x).dtype) for x in likes],
                       [True] * len(likes))
    return back(list(cotangents))


# ---- forward mode over `adjoint` ----------------------------------------------------------------
def jvp_of_adjoint(trace: JVPTrace, fun: Callable, args: tuple) -> Any:
    """What `JVPTrace.process_custom_vjp` does: the transposed pullback (module doc)."""
    leaves, tree = tree_flatten(list(args))
    mine = [isinstance(x, JVPTracer) and x._trace is trace for x in leaves]
    primals = [x.primal if m else x for x, m in zip(leaves, mine)]
    y, back = fun(*tree_unflatten(tree, primals))
    y_leaves, y_tree = tree_flatten(y)
    diff = [_float(v) for v in y_leaves]

    def back_flat(*cts: Any) -> list:
        it = iter(cts)
        full = [next(it) if d else np.zeros(np.shape(v), np.result_type(v))
                for v, d in zip(y_leaves, diff)]
        return _arg_cotangents(tree, back(tree_unflatten(y_tree, full)))

    try:
        tangents = transpose(back_flat, [v for v, d in zip(y_leaves, diff) if d],
                             [x.tangent if m else None for x, m in zip(leaves, mine)])
    except (NonDifferentiableError, TracerArrayConversionError):
        return fun(*args)[0]   # back is not differentiable: differentiate the primal code
    it = iter(tangents)
    out = [JVPTracer(trace, v, _fit(t, v)) if d and (t := next(it)) is not None else v
           for v, d in zip(y_leaves, diff)]
    return tree_unflatten(y_tree, out)


def _fit(t: Any, like: Any) -> Any:
    from .control._ad import fit

    return fit(t, aval_of(like), like)


# ---- custom_jvp --------------------------------------------------------------------------------
class custom_jvp:
    """A function with a hand-written JVP rule (JAX's convention).

    >>> @custom_jvp
    ... def softplus(x): return wnp.log1p(wnp.exp(x))
    >>> @softplus.defjvp
    ... def _(primals, tangents): (x,), (t,) = primals, tangents; \
return softplus(x), t * wnp.exp(-wnp.logaddexp(0, -x))

    Forward mode calls the rule; reverse mode transposes it (it must be
    linear in the tangents); staging records one ``custom_jvp_call``
    equation. Tangents of integer arguments are ``None``; float arguments
    without a tangent get zeros. If the wrapped function is an `adjoint`
    function, reverse mode uses its pullback instead.
    """

    def __init__(self, fun: Callable) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.rule: Callable | None = None
        self._staging = False   # set while its own equation is staged (the rule may call it)

    def defjvp(self, rule: Callable) -> Callable:
        self.rule = rule
        return rule

    def __call__(self, *args: Any) -> Any:
        if self.rule is None:
            raise TypeError(f"custom_jvp: {self.__name__} has no rule; define one with "
                            f"@{self.__name__}.defjvp")
        trace = top_trace(args)
        if isinstance(trace, JVPTrace):
            return self._forward(trace, args)
        if isinstance(trace, ReverseTrace):
            if hasattr(self.fun, "__wengert_adjoint__"):
                return self.fun(*args)
            return call_adjoint(trace, self._with_transposed_rule, args)
        if isinstance(trace, StagingTrace) and not self._staging:
            self._staging = True
            try:
                return self._stage(args)
            finally:
                self._staging = False
        return self.fun(*args)

    def _tangents(self, primals: list) -> list:
        return [zeros_on(p, aval_of(p).shape, aval_of(p).dtype) if _float(p) else None
                for p in primals]

    def _forward(self, trace: JVPTrace, args: tuple) -> Any:
        leaves, tree = tree_flatten(list(args))
        mine = [isinstance(x, JVPTracer) and x._trace is trace for x in leaves]
        primals = [x.primal if m else x for x, m in zip(leaves, mine)]
        tangents = [x.tangent if m else t
                    for x, m, t in zip(leaves, mine, self._tangents(primals))]
        y, y_dot = self.rule(tuple(tree_unflatten(tree, primals)),
                             tuple(tree_unflatten(tree, tangents)))
        y_leaves, y_tree = tree_flatten(y)
        t_leaves = _output_tangents(y_tree, y_dot)
        return tree_unflatten(y_tree, [JVPTracer(trace, v, _fit(t, v)) if t is not None and
                                       _float(v) else v for v, t in zip(y_leaves, t_leaves)])

    def _with_transposed_rule(self, *args: Any) -> tuple[Any, Callable]:
        y = self(*args)
        y_tree = tree_flatten(y)[1]

        def tangent_out(*ts: Any) -> Any:
            y_dot = self.rule(args, ts)[1]
            _output_tangents(y_tree, y_dot)  # its structure must be y's
            return y_dot

        def back(dy: Any) -> tuple:
            t0 = tree_map(lambda x: zeros_on(x, aval_of(x).shape, aval_of(x).dtype)
                          if _float(x) else None, list(args))
            return pullback(tangent_out, *t0)[1](dy)

        return y, back

    def _stage(self, args: tuple) -> Any:
        operands, rebuild = _operands(args)
        avals = [aval_of(x) for x in operands]
        diff = [is_float(a) for a in avals]
        out_tree: list = []

        def primal(*xs: Any) -> list:
            leaves, t = tree_flatten(self.fun(*rebuild(xs)))
            out_tree[:] = [t]
            return leaves

        def rule(*zs: Any) -> list:
            xs, ts = zs[:len(avals)], _scatter(zs[len(avals):], diff)
            y, y_dot = self.rule(tuple(rebuild(xs)), tuple(rebuild(ts)))
            y_leaves, y_tree = tree_flatten(y)
            t_leaves = _output_tangents(y_tree, y_dot)
            return y_leaves + [_fit(t, v) for v, t in zip(y_leaves, t_leaves) if _float(v)]

        from .control._build import stage_together

        (graph, jvp_graph), consts = stage_together(
            [(primal, avals), (rule, avals + [a for a, d in zip(avals, diff) if d])])
        outs = custom_jvp_call_p.bind(*consts, *operands, graph=graph, jvp_graph=jvp_graph,
                                      n_consts=len(consts))
        return tree_unflatten(out_tree[0], list(outs))


def is_float(aval: Aval) -> bool:
    return is_inexact_dtype(aval.dtype)


def _scatter(values: Sequence[Any], mask: Sequence[bool]) -> list:
    it = iter(values)
    return [next(it) if m else None for m in mask]


def _operands(args: tuple) -> tuple[list, Callable]:
    """Array leaves of ``args`` become equation operands; the rest stays static."""
    leaves, tree = tree_flatten(list(args))
    dynamic = [_abstract(x) is not None for x in leaves]

    def rebuild(xs: Sequence[Any]) -> list:
        it = iter(xs)
        return tree_unflatten(tree, [next(it) if d else x for x, d in zip(leaves, dynamic)])

    return [x for x, d in zip(leaves, dynamic) if d], rebuild


# ---- staged `adjoint` ---------------------------------------------------------------------------
_pullbacks_being_staged: set[Any] = set()  # code objects (a converted copy shares them)


class LazyGraph:
    """A pullback graph staged when a rule first needs it, not with its equation.

    An `adjoint` function whose pullback calls the same function (a fixed-point
    solver's pullback solves another fixed point) would otherwise stage pullbacks
    of pullbacks without end; staged lazily, each level is staged only if it is
    differentiated."""

    __slots__ = ("_make", "_graph")

    def __init__(self, make: Callable[[], ir.Graph]) -> None:
        self._make: Callable[[], ir.Graph] | None = make
        self._graph: ir.Graph | None = None

    def get(self) -> ir.Graph:
        if self._graph is None:
            self._graph = self._make()
            self._make = None
        return self._graph

    def __repr__(self) -> str:
        return "<pullback staged on first use>" if self._graph is None else repr(self._graph)


def _graph(g: ir.Graph | LazyGraph) -> ir.Graph:
    return g.get() if isinstance(g, LazyGraph) else g


def stage_adjoint(fun: Callable, args: tuple) -> Any:
    """What `StagingTrace.process_custom_vjp` does: one ``custom_vjp_call`` equation."""
    from .control._build import stage_together

    operands, rebuild = _operands(args)
    avals = [aval_of(x) for x in operands]
    out: list = []

    def primal(*xs: Any) -> list:
        leaves, tree = tree_flatten(fun(*rebuild(xs))[0])
        out[:] = [tree, [aval_of(v) for v in leaves]]
        return leaves

    primal_graph, primal_consts = stage(primal, avals)  # also the cotangents' types
    out_tree, out_avals = out
    ct_mask = [is_float(a) for a in out_avals]
    diff = [is_float(a) for a in avals]

    def bwd(*zs: Any) -> list:
        xs, cts = zs[:len(avals)], _scatter(zs[len(avals):], ct_mask)
        y, back = fun(*rebuild(xs))
        full = [zeros_on(v, a.shape, a.dtype) if c is None else c
                for c, a, v in zip(cts, out_avals, tree_flatten(y)[0])]
        arg_leaves, arg_tree = tree_flatten(list(args))
        flat = _arg_cotangents(arg_tree, back(tree_unflatten(out_tree, full)))
        dynamic = iter(flat[k] for k, x in enumerate(arg_leaves) if _abstract(x) is not None)
        return [_fit(c, x) for c, x, d in zip(dynamic, xs, diff) if d]

    bwd_avals = avals + [a for a, m in zip(out_avals, ct_mask) if m]
    key = getattr(fun, "__code__", None) or id(fun)
    if key in _pullbacks_being_staged:   # the pullback calls `fun` again: stage lazily
        graph, consts = primal_graph, primal_consts
        bwd_graph: ir.Graph | LazyGraph = LazyGraph(
            lambda: _stage_over(bwd, bwd_avals, consts, fun))
    else:
        _pullbacks_being_staged.add(key)
        try:
            (graph, bwd_graph), consts = stage_together([(primal, avals), (bwd, bwd_avals)])
        finally:
            _pullbacks_being_staged.discard(key)
    outs = custom_vjp_call_p.bind(*consts, *operands, graph=graph, bwd_graph=bwd_graph,
                                  n_consts=len(consts))
    return tree_unflatten(out_tree, list(outs))


def _stage_over(fn: Callable, avals: list[Aval], consts: list, fun: Callable) -> ir.Graph:
    """Stage ``fn`` as a graph of ``(*consts, *avals)``: the values it closes over must
    be among the equation's ``consts`` (those its primal closes over)."""
    graph, captured = stage(fn, avals)
    where = {id(c): k for k, c in enumerate(consts)}
    missing = [c for c in captured if id(c) not in where]
    if missing:
        raise NotImplementedError(
            f"adjoint: the pullback of {getattr(fun, '__qualname__', fun)!r} calls the "
            "function itself and closes over traced values its primal does not use; pass "
            "them as arguments")
    ins = [ir.Var(aval_of(c)) for c in consts]
    for c, v in zip(captured, graph.in_vars):
        ins[where[id(c)]] = v
    return ir.Graph(ins + list(graph.in_vars[len(captured):]), graph.const_vars, graph.consts,
                    graph.eqns, graph.out_atoms, out_tree=graph.out_tree)


# ---- the two equations ---------------------------------------------------------------------------
def _impl(*args, graph, n_consts, **rule_graphs):
    return tuple(v if hasattr(v, "shape") else np.asarray(v, a.dtype)
                 for v, a in zip(run_graph(graph, list(args)), graph.out_avals))


def _shape(*args, graph, **params):
    return graph.out_avals


def _split(args: tuple, n_consts: int) -> tuple[list, list]:
    return list(args[:n_consts]), list(args[n_consts:])


def _consts_jvp(graph: ir.Graph, consts: list, xs: list, t_consts: list) -> list:
    """Output tangents from the consts' tangents, through the primal graph."""
    from .control._ad import graph_fn, jvp_flat

    if all(t is None for t in t_consts):
        return [None] * len(graph.out_atoms)
    return jvp_flat(graph_fn(graph), consts + xs, t_consts + [None] * len(xs))[1]


def _consts_vjp(graph: ir.Graph, consts: list, xs: list, g: Sequence[Any]) -> list:
    """The consts' cotangents, through the primal graph."""
    from .control._ad import graph_fn, vjp_flat

    diff = [is_float(aval_of(c)) for c in consts] + [False] * len(xs)
    if not any(diff):
        return [None] * len(consts)
    _, back = vjp_flat(graph_fn(graph), consts + xs, diff)
    return back(list(g))[:len(consts)]


def _add(a: Any, b: Any) -> Any:
    return a if b is None else b if a is None else a + b


def _custom_vjp_call_vjp(g, ans, *args, graph, bwd_graph, n_consts):
    consts, xs = _split(args, n_consts)
    diff = [is_float(aval_of(x)) for x in xs]
    cts = [c for c, a in zip(g, graph.out_avals) if is_float(a)]
    arg_cts = _scatter(run_graph(_graph(bwd_graph), consts + xs + cts), diff)
    return _consts_vjp(graph, consts, xs, g) + arg_cts


def _custom_vjp_call_jvp(tangents, ans, *args, graph, bwd_graph, n_consts):
    consts, xs = _split(args, n_consts)
    t_consts, t_xs = _split(tuple(tangents), n_consts)
    out_float = [is_float(a) for a in graph.out_avals]
    diff = [is_float(aval_of(x)) for x in xs]

    def bwd(*cts: Any) -> list:
        return run_graph(_graph(bwd_graph), consts + xs + list(cts))

    lin = transpose(bwd, [y for y, f in zip(ans, out_float) if f],
                    [t for t, d in zip(t_xs, diff) if d])
    return [_add(a, b) for a, b in zip(_scatter(lin, out_float),
                                       _consts_jvp(graph, consts, xs, t_consts))]


def _custom_jvp_call_jvp(tangents, ans, *args, graph, jvp_graph, n_consts):
    consts, xs = _split(args, n_consts)
    t_consts, t_xs = _split(tuple(tangents), n_consts)
    diff = [is_float(aval_of(x)) for x in xs]
    t_in = [_fit(t, x) for t, x, d in zip(t_xs, xs, diff) if d]
    n_out = len(graph.out_atoms)
    out_float = [is_float(a) for a in graph.out_avals]
    rule = _scatter(run_graph(jvp_graph, consts + xs + t_in)[n_out:], out_float)
    return [_add(a, b) for a, b in zip(rule, _consts_jvp(graph, consts, xs, t_consts))]


def _custom_jvp_call_vjp(g, ans, *args, graph, jvp_graph, n_consts):
    consts, xs = _split(args, n_consts)
    diff = [is_float(aval_of(x)) for x in xs]
    n_out = len(graph.out_atoms)

    def tangent_map(*ts: Any) -> list:
        return run_graph(jvp_graph, consts + xs + list(ts))[n_out:]

    cts = [c for c, a in zip(g, graph.out_avals) if is_float(a)]
    arg_cts = transpose(tangent_map, [x for x, d in zip(xs, diff) if d], cts)
    return _consts_vjp(graph, consts, xs, g) + _scatter(arg_cts, diff)


custom_vjp_call_p = Primitive("custom_vjp_call", _impl, multiple_results=True)
custom_vjp_call_p.def_rules(shape=_shape, jvp=_custom_vjp_call_jvp,
                            vjps=JointVJP(_custom_vjp_call_vjp))
custom_jvp_call_p = Primitive("custom_jvp_call", _impl, multiple_results=True)
custom_jvp_call_p.def_rules(shape=_shape, jvp=_custom_jvp_call_jvp,
                            vjps=JointVJP(_custom_jvp_call_vjp))


# The traces know nothing of custom rules (imports go one way, from the interpreter up):
# this module teaches forward mode and staging how to process an `adjoint` function.
JVPTrace.process_custom_vjp = jvp_of_adjoint
StagingTrace.process_custom_vjp = lambda self, fun, args: stage_adjoint(fun, args)
