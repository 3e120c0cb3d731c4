"""Staging: run a function on abstract values (shape + dtype) and record the
primitives it applies as a `Graph`.

Transformations compose with staging like with anything else: staging
``grad(f)`` records the forward and the backward pass in one graph, because
the reverse trace sits above the staging trace and its backward rules are
themselves primitives applied to staged values.
"""

from __future__ import annotations

import linecache
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from . import ir
from ._core import Aval, ConcreteTracer, Primitive, Trace, Tracer, aval_of, trace_level
from ._mutation import journal
from .errors import ConcretizationError, TracerMutationError, call_user_function
from .tree import tree_flatten, tree_unflatten

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_frame_description() -> str:
    """``file:line: source`` of the innermost frame outside wengert's own code."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown location>"
    fname, line = frame.f_code.co_filename, frame.f_lineno
    source = linecache.getline(fname, line).strip()
    return f"{fname}:{line}: {source}" if source else f"{fname}:{line}"


class StagedTracer(Tracer):
    __slots__ = ("aval_", "var")

    def __init__(self, trace: StagingTrace, aval: Aval, var: ir.Var) -> None:
        self._trace = trace
        self.aval_ = aval
        self.var = var

    @property
    def aval(self) -> Aval:
        return self.aval_

    @property
    def shape(self) -> tuple[int, ...]:
        return self.aval_.shape

    @property
    def dtype(self) -> np.dtype:
        return self.aval_.dtype

    def concrete_value(self, what: str) -> Any:
        raise ConcretizationError(
            f"{what} needs the value of a staged array ({self.aval_}), which is only known "
            f"when the graph runs. At {user_frame_description()}\n"
            "Python control flow cannot depend on staged values: use wengert.ad.cond, "
            "wengert.ad.while_loop or wengert.ad.fori_loop (wengert.xla.jit converts "
            "if/while/for automatically), or pass the value as a static argument.")

    def __repr__(self) -> str:
        return f"StagedTracer({self.aval_})"


def _shape_input(atom: ir.Atom) -> Any:
    return atom.value if isinstance(atom, ir.Literal) else atom.aval


class StagingTrace(Trace):
    """Records equations. With ``capture=True`` (sub-graphs of control flow),
    values of enclosing transformations that the staged function closes over
    become extra graph inputs ("closure conversion"), listed in ``captured``."""

    __slots__ = ("eqns", "const_vars", "consts", "_const_ids", "captured", "capture_vars")

    def __init__(self, capture: bool = False) -> None:
        super().__init__()
        self.eqns: list[ir.Eqn] = []
        self.const_vars: list[ir.Var] = []
        self.consts: list[Any] = []
        self._const_ids: dict[int, ir.Var] = {}
        self.captured: list[Tracer] | None = [] if capture else None
        self.capture_vars: list[ir.Var] = []

    def new_input(self, aval: Aval) -> StagedTracer:
        return StagedTracer(self, aval, ir.Var(aval))

    def atom(self, x: Any) -> ir.Atom:
        if isinstance(x, StagedTracer) and x._trace is self:
            return x.var
        if isinstance(x, Tracer) and self.captured is not None:
            var = self._const_ids.get(id(x))
            if var is None:
                var = self._const_ids[id(x)] = ir.Var(x.aval)
                self.captured.append(x)
                self.capture_vars.append(var)
            return var
        if isinstance(x, Tracer):
            raise ConcretizationError(
                "a value traced by an enclosing transformation was captured by a function being "
                f"staged (at {user_frame_description()}); pass it as an argument instead of "
                "closing over it")
        if isinstance(x, (bool, int, float, complex)):
            return ir.Literal(x)
        var = self._const_ids.get(id(x))
        if var is None:
            value = x if hasattr(x, "shape") and hasattr(x, "dtype") else np.asarray(x)
            var = ir.Var(aval_of(value))
            self._const_ids[id(x)] = var
            self.const_vars.append(var)
            self.consts.append(value)
        return var

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        if prim.shape_rule is None:
            raise NotImplementedError(f"primitive {prim.name!r} has no shape rule, so it cannot "
                                      "be staged")
        inputs = tuple(self.atom(a) for a in args)
        out = prim.shape_rule(*(_shape_input(a) for a in inputs), **params)
        if prim.multiple_results:
            outs = tuple(ir.Var(a) for a in out)
            self.eqns.append(ir.Eqn(prim, inputs, outs, params))
            return tuple(StagedTracer(self, v.aval, v) for v in outs)
        var = ir.Var(out)
        self.eqns.append(ir.Eqn(prim, inputs, (var,), params))
        return StagedTracer(self, out, var)


def _abstract(x: Any) -> Aval | None:
    """Arrays (and Avals) become graph inputs; Python scalars and other objects stay static."""
    if isinstance(x, Aval):
        return x
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, (bool, int, float, complex, str, type(None))) or callable(x):
        return None
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return Aval(x.shape, x.dtype)
    return None


def stage(fn: Callable, in_avals: list[Aval], *, simplify: bool = True
          ) -> tuple[ir.Graph, list[Any]]:
    """Stage ``fn(*inputs)`` (flat inputs, any output tree) as a sub-graph.

    Returns the graph, whose inputs are ``(*captured, *inputs)`` and whose
    ``out_tree`` is the output structure, and the captured values of
    enclosing transformations (staged or not) in the order of those inputs:
    the caller passes them as explicit operands of its equation.
    """
    trace = StagingTrace(capture=True)
    with trace_level(trace), journal() as writes:
        ins = [trace.new_input(a) for a in in_avals]
        in_vars = [t.var for t in ins]  # before fn: `x += 1` re-points the handles
        out_leaves, out_def = tree_flatten(fn(*ins))
        out_atoms = [trace.atom(o) for o in out_leaves]
    outer = writes.outer(trace.level)
    if outer:
        writes.restore(outer)
        raise TracerMutationError(
            f"a function staged as a loop body or custom rule updated in place "
            f"{len(outer)} array(s) created outside it (a[i] = v, a += b), at "
            f"{user_frame_description()}; pass such arrays in and return them (make them "
            "part of the loop carry) instead of updating them from inside")
    graph = ir.Graph([*trace.capture_vars, *in_vars], trace.const_vars,
                     trace.consts, trace.eqns, out_atoms, out_tree=out_def)
    return (ir.simplify(graph) if simplify else graph), trace.captured


def make_graph(f: Callable, *example_args: Any, static_argnums: int | tuple[int, ...] = (),
               simplify: bool = True) -> ir.Graph:
    """Stage ``f`` at the shapes and dtypes of ``example_args`` into a `Graph`.

    Leaves become graph inputs by `ir.input_aval`'s rules (a Python ``float`` is a
    weakly typed input, not a constant); the arguments at ``static_argnums``, and
    the other leaves, are static and baked into the graph. The graph's
    ``in_tree`` records which leaves were inputs, so `eval_graph` takes the same
    argument structure.
    """
    static = {static_argnums} if isinstance(static_argnums, int) else set(static_argnums)
    static = {i % len(example_args) for i in static} if example_args else set()
    trace = StagingTrace()
    leaves, in_def = tree_flatten(list(example_args))
    leaf_arg = [k for k, a in enumerate(example_args) for _ in tree_flatten(a)[0]]
    with trace_level(trace):
        in_vars = []
        staged = []
        is_input = []
        for leaf, k in zip(leaves, leaf_arg):
            aval = None if k in static else ir.input_aval(leaf)
            is_input.append(aval is not None)
            if aval is None:
                staged.append(leaf)
            else:
                t = trace.new_input(aval)
                in_vars.append(t.var)
                staged.append(t)
        out = call_user_function(f, tree_unflatten(in_def, staged))
        out_leaves, out_def = tree_flatten(out)
        out_atoms = [trace.atom(o) for o in out_leaves]
    graph = ir.Graph(in_vars, trace.const_vars, trace.consts, trace.eqns, out_atoms,
                     in_tree=(in_def, tuple(is_input)), out_tree=out_def)
    return ir.simplify(graph) if simplify else graph


def eval_graph(graph: ir.Graph, *args: Any) -> Any:
    """Run ``graph`` on ``args`` (the structure given to `make_graph`).

    Every equation is applied with `Primitive.bind`, so evaluation is itself
    differentiable and can be staged again.
    """
    leaves, in_def = tree_flatten(list(args))
    if graph.in_tree is not None:
        expected_def, is_input = graph.in_tree
        if in_def != expected_def:
            raise ValueError(f"eval_graph: arguments have structure {in_def}, but the graph was "
                             f"made from {expected_def}")
        leaves = [leaf for leaf, flag in zip(leaves, is_input) if flag]
    if len(leaves) != len(graph.in_vars):
        raise ValueError(f"eval_graph: the graph takes {len(graph.in_vars)} array inputs, "
                         f"got {len(leaves)}")
    for k, (v, x) in enumerate(zip(graph.in_vars, leaves)):
        shape = x.shape if hasattr(x, "shape") else np.shape(x)
        if tuple(shape) != v.aval.shape:
            raise ValueError(f"eval_graph: input {k} has shape {tuple(shape)}, but the graph "
                             f"expects {v.aval}")
    cupy = _cupy_among(leaves)
    outs = run_graph(graph if cupy is None else _consts_on(graph, cupy), leaves)
    if graph.out_tree is None:
        return outs
    return tree_unflatten(graph.out_tree, outs)


def _cupy_among(leaves: list) -> Any:
    """The cupy module if any input (or the value under a tracer) is a CuPy array."""
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return None
    for x in leaves:
        while isinstance(x, ConcreteTracer):
            x = x._primal()
        if isinstance(x, cupy.ndarray):
            return cupy
    return None


_ON_DEVICE: dict[int, tuple[ir.Graph, ir.Graph]] = {}


def _consts_on(graph: ir.Graph, xp: Any) -> ir.Graph:
    """``graph`` with its lifted NumPy constants, sub-graphs' included, moved to ``xp``
    (a graph's constants live where it runs). Cached per graph, the oldest forgotten."""
    hit = _ON_DEVICE.get(id(graph))
    if hit is not None and hit[0] is graph:
        return hit[1]

    def move(p: Any) -> Any:
        if isinstance(p, ir.Graph):
            return _consts_on(p, xp)
        if isinstance(p, tuple) and any(isinstance(g, ir.Graph) for g in p):
            return tuple(move(g) for g in p)
        return p

    eqns = [ir.Eqn(e.prim, e.inputs, e.outputs, {k: move(p) for k, p in e.params.items()})
            for e in graph.eqns]
    consts = [xp.asarray(c) if isinstance(c, (np.ndarray, np.generic)) else c
              for c in graph.consts]
    moved = ir.Graph(graph.in_vars, graph.const_vars, consts, eqns, graph.out_atoms,
                     graph.in_tree, graph.out_tree)
    if len(_ON_DEVICE) >= 512:
        del _ON_DEVICE[next(iter(_ON_DEVICE))]
    _ON_DEVICE[id(graph)] = (graph, moved)
    return moved


def run_graph(graph: ir.Graph, flat_args: list[Any],
              inplace: dict[int, Callable] | None = None) -> list[Any]:
    """Evaluate a graph on its flat inputs (no structure checks): for control-flow rules.

    Values are dropped after their last use, so eager evaluation of a large
    graph holds only what is still needed. ``inplace`` maps equation indices
    to implementations that may overwrite their first operand: loops pass
    it for buffers they own (see `wengert.ad.primitives.control`).
    """
    env: dict[int, Any] = {}
    for v, x in zip(graph.in_vars, flat_args):
        env[v.id] = x
    for v, c in zip(graph.const_vars, graph.consts):
        env[v.id] = c

    def read(a: ir.Atom) -> Any:
        return a.value if isinstance(a, ir.Literal) else env[a.id]

    for k, (e, dead) in enumerate(zip(graph.eqns, _dead_after(graph))):
        args = [read(a) for a in e.inputs]
        if inplace and k in inplace:
            out = inplace[k](*args, **e.params)
        else:
            out = e.prim.bind(*args, **e.params)
        if e.prim.multiple_results:
            for v, o in zip(e.outputs, out):
                env[v.id] = o
        else:
            env[e.outputs[0].id] = out
        for vid in dead:
            env.pop(vid, None)
    return [read(a) for a in graph.out_atoms]


_DEAD_AFTER: dict[int, tuple[ir.Graph, list]] = {}


def _dead_after(graph: ir.Graph) -> list[tuple[int, ...]]:
    """For each equation, the variables whose last use it is (outputs never die).

    Cached per graph object (loop bodies run once per iteration); the cache
    holds its graphs and forgets the oldest beyond 512.
    """
    hit = _DEAD_AFTER.get(id(graph))
    if hit is not None and hit[0] is graph:
        return hit[1]
    if len(_DEAD_AFTER) >= 512:
        del _DEAD_AFTER[next(iter(_DEAD_AFTER))]
    dead = _last_uses(graph)
    _DEAD_AFTER[id(graph)] = (graph, dead)
    return dead


def _last_uses(graph: ir.Graph) -> list[tuple[int, ...]]:
    last: dict[int, int] = {}
    for k, e in enumerate(graph.eqns):
        for a in e.inputs:
            if isinstance(a, ir.Var):
                last[a.id] = k
        for v in e.outputs:
            last.setdefault(v.id, k)
    for a in graph.out_atoms:
        if isinstance(a, ir.Var):
            last.pop(a.id, None)
    dead: list[list[int]] = [[] for _ in graph.eqns]
    for vid, k in last.items():
        dead[k].append(vid)
    return [tuple(d) for d in dead]
