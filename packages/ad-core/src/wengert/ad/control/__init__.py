"""Structured control flow: `cond`, `while_loop`, `fori_loop`, `scan`.

Eagerly (nothing is being staged) they are plain Python: `cond` calls one
branch, the loops loop, and the reverse and forward traces see every step,
so no rules are involved. While staging (`make_graph`, `wengert.xla.jit`)
each becomes one equation whose sub-graphs are the staged branch or body
functions (see `wengert.ad.primitives.control` for the exact contract), with
JVP and VJP rules that build staged loops again; the VJP of a staged
`while_loop` stores its carries in a stack of ``max_steps`` rows, or only
every ``checkpoint_every``-th carry, and is never unrolled.

Arguments follow JAX: ``cond(pred, true_fn, false_fn, *operands)``,
``while_loop(cond_fn, body_fn, init)``, ``fori_loop(lower, upper, body_fn,
init)``, ``scan(f, init, xs, length=None)``. Carries and operands are trees.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .._core import ConcreteTracer, Tracer, trace_stack
from .._mutation import journal, rebind
from .._staging import StagingTrace
from ..errors import TracerMutationError
from ..primitives.control import MaxStepsExceeded
from ..primitives.elementwise import convert_element_type_p, ne_p
from ..tree import TreeDef, tree_flatten, tree_unflatten
from ._bound import while_loop_bound
from ._build import bind_cond, bind_scan, bind_while

__all__ = ["MaxStepsExceeded", "cond", "fori_loop", "scan", "while_loop", "while_loop_bound"]


def staging_active() -> bool:
    """True inside `make_graph` (or a sub-graph being staged) or `vmap`: loops then
    build their equation (which vmap batches) instead of looping in Python."""
    return any(type(t) is StagingTrace or getattr(t, "stages_control_flow", False)
               for t in trace_stack())


def is_concrete(x: Any) -> bool:
    """Whether ``x``'s value is known now (plain values and eager tracers)."""
    while isinstance(x, Tracer):
        if not isinstance(x, ConcreteTracer):
            return False
        x = x._primal()
    return True


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return None if value is None else int(value)


def _same_tree(got: TreeDef, expected: TreeDef, what: str) -> None:
    if got != expected:
        raise TypeError(f"{what}: the structure {got} differs from {expected}")


def _scalar_predicate(p: Any, what: str) -> Any:
    shape = p.shape if isinstance(p, Tracer) else np.shape(p)
    if shape != ():
        raise TypeError(f"{what} must be a scalar, got shape {shape}")
    dtype = p.dtype if hasattr(p, "dtype") else np.result_type(p)
    return p if np.dtype(dtype) == np.bool_ else ne_p.bind(p, 0)


# ---- cond -------------------------------------------------------------------------------
def cond(pred: Any, true_fn: Callable, false_fn: Callable, *operands: Any) -> Any:
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``.

    A concrete ``pred`` picks the branch in Python; a staged one gives one
    ``cond`` equation holding both branches (their outputs must agree in
    structure, shapes and dtypes).
    """
    if is_concrete(pred):
        return (true_fn if bool(pred) else false_fn)(*operands)
    leaves, in_tree = tree_flatten(list(operands))
    index = convert_element_type_p.bind(_scalar_predicate(pred, "cond: pred"),
                                        new_dtype=np.dtype(np.int32))
    # Arrays from outside that a branch updates in place (`im[0] += 1`) are isolated:
    # each branch starts from their old values, and their values after the branch
    # taken become extra outputs, rebound to the handles after the cond.
    written: dict[int, Tracer] = {}
    while True:
        known = list(written.values())
        out_trees: list[TreeDef] = []

        def flat(fn: Callable, known: list = known, out_trees: list = out_trees) -> Callable:
            def branch(*xs: Any) -> list:
                level = trace_stack()[-1].level
                with journal() as writes:
                    out_leaves, out_tree = tree_flatten(fn(*tree_unflatten(in_tree, list(xs))))
                    # Values as the branch leaves them, before the handles are restored.
                    out_leaves = [copy.copy(x) if isinstance(x, Tracer) else x
                                  for x in out_leaves]
                    extras = [copy.copy(h) for h in known]
                outer = writes.outer(level)
                writes.restore(outer)
                for h in outer:
                    written.setdefault(id(h), h)
                out_trees.append(out_tree)
                return out_leaves + extras

            return branch

        outs = bind_cond(index, [flat(false_fn), flat(true_fn)], leaves)
        if len(written) == len(known):
            break
    _same_tree(out_trees[1], out_trees[0], "cond: the output of true_fn vs false_fn")
    n = len(outs) - len(known)
    for h, new in zip(known, outs[n:]):
        if not rebind(h, new):
            raise TracerMutationError(
                "cond: a branch updated in place an array of an enclosing transformation; "
                "return the new value from the branch instead (a = cond(p, f, g, a))")
    return tree_unflatten(out_trees[0], outs[:n])


# ---- while_loop -------------------------------------------------------------------------
def while_loop(cond_fn: Callable, body_fn: Callable, init: Any, max_steps: int | None = None,
               *, checkpoint_every: int | None = None) -> Any:
    """``carry = init; while cond_fn(carry): carry = body_fn(carry)``.

    ``max_steps`` bounds the number of iterations (more is an error at run
    time); reverse-mode differentiation of a *staged* loop needs it, because
    it sizes the stack of stored carries (or a `while_loop_bound` in force
    while staging, which `wengert.xla.jit` sets and grows). ``checkpoint_every=k`` stores only
    every k-th carry and recomputes the others in the backward pass (memory
    ``max_steps/k + k`` carries for about one extra forward pass).
    """
    max_steps = _positive("max_steps", max_steps)
    checkpoint_every = _positive("checkpoint_every", checkpoint_every)
    if not staging_active():
        return _eager_while(cond_fn, body_fn, init, max_steps, checkpoint_every)
    leaves, tree = tree_flatten(init)

    def flat_cond(*xs: Any) -> Any:
        return _scalar_predicate(cond_fn(tree_unflatten(tree, list(xs))),
                                 "while_loop: cond_fn's result")

    def flat_body(*xs: Any) -> list:
        out_leaves, out_tree = tree_flatten(body_fn(tree_unflatten(tree, list(xs))))
        _same_tree(out_tree, tree, "while_loop: body_fn's output vs the carry")
        return out_leaves

    return tree_unflatten(tree, bind_while(flat_cond, flat_body, leaves, max_steps,
                                           checkpoint_every))


def _eager_while(cond_fn, body_fn, carry, max_steps, checkpoint_every):
    def advance(carry: Any, limit: int) -> tuple[Any, int]:
        k = 0
        while k < limit and cond_fn(carry):
            carry = body_fn(carry)
            k += 1
        return carry, k

    if checkpoint_every is not None:
        from ..checkpoint import checkpoint

        advance = checkpoint(advance)
    budget = sys.maxsize if max_steps is None else max_steps
    steps = 0
    while cond_fn(carry):
        if steps >= budget:
            raise MaxStepsExceeded(f"while_loop ran more than max_steps={max_steps} "
                                   "iterations; raise max_steps")
        carry, n = advance(carry, min(checkpoint_every or budget, budget - steps))
        steps += n
    return carry


# ---- fori_loop --------------------------------------------------------------------------
def fori_loop(lower: Any, upper: Any, body_fn: Callable, init: Any, *,
              max_steps: int | None = None, checkpoint_every: int | None = None) -> Any:
    """``for i in range(lower, upper): carry = body_fn(i, carry)``.

    Concrete bounds make it a `scan` of known length when staged (reverse
    mode then needs no ``max_steps``); staged bounds make it a `while_loop`.
    """
    if is_concrete(lower) and is_concrete(upper):
        lo, hi = int(lower), int(upper)
        if not staging_active() and checkpoint_every is None:
            for i in range(lo, hi):
                init = body_fn(i, init)
            return init

        def step(c: tuple, _: Any) -> tuple:
            return (c[0] + 1, body_fn(c[0], c[1])), None

        start = np.asarray(lo, np.int32 if -2**31 <= lo and hi < 2**31 else np.int64)
        return scan(step, (start, init), None, length=max(hi - lo, 0),
                    checkpoint_every=checkpoint_every)[0][1]
    return while_loop(lambda c: c[0] < upper, lambda c: (c[0] + 1, body_fn(c[0], c[1])),
                      (lower, init), max_steps, checkpoint_every=checkpoint_every)[1]


# ---- scan -------------------------------------------------------------------------------
def _scan_length(x_leaves: list, length: int | None) -> int:
    lengths = {(x.shape if isinstance(x, Tracer) else np.shape(x))[0] for x in x_leaves}
    if length is not None:
        lengths.add(int(length))
    if len(lengths) != 1:
        raise ValueError("scan: xs leaves must share their leading size, and match length; "
                         f"got sizes {sorted(lengths)}" if lengths else
                         "scan: pass length when xs is None")
    return lengths.pop()


def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, *, checkpoint_every: int | None = None) -> tuple[Any, Any]:
    """``carry, y = f(carry, x)`` over the rows of ``xs``: returns ``(carry, stacked ys)``.

    ``checkpoint_every=k`` stores every k-th carry for the reverse pass and
    recomputes the rest (eagerly: each k-step segment is `checkpoint`-ed).
    """
    checkpoint_every = _positive("checkpoint_every", checkpoint_every)
    x_leaves, x_tree = tree_flatten(xs)
    n = _scan_length(x_leaves, length)
    carry_leaves, carry_tree = tree_flatten(init)
    y_trees: list[TreeDef] = []

    def flat_body(*leaves: Any) -> list:
        carry = tree_unflatten(carry_tree, list(leaves[:len(carry_leaves)]))
        x = tree_unflatten(x_tree, list(leaves[len(carry_leaves):]))
        new, y = f(carry, x)
        new_leaves, new_tree = tree_flatten(new)
        _same_tree(new_tree, carry_tree, "scan: the carry returned by f vs init")
        y_leaves, y_tree = tree_flatten(y)
        y_trees.append(y_tree)
        return new_leaves + y_leaves

    if not staging_active():
        if n == 0:  # no step runs: stage f once for the avals of the (empty) ys
            from .._core import Aval, aval_of
            from .._staging import stage

            x_avals = [Aval(aval_of(x).shape[1:], aval_of(x).dtype) for x in x_leaves]
            graph, _ = stage(flat_body, [aval_of(c) for c in carry_leaves] + x_avals)
            empty = [np.zeros((0,) + a.shape, a.dtype)
                     for a in graph.out_avals[len(carry_leaves):]]
            return init, tree_unflatten(y_trees[0], empty)
        return _eager_scan(f, init, x_leaves, x_tree, n, reverse, checkpoint_every)
    carry, ys = bind_scan(flat_body, carry_leaves, x_leaves, n, reverse, checkpoint_every)
    return tree_unflatten(carry_tree, carry), tree_unflatten(y_trees[0], ys)


def _eager_scan(f, carry, x_leaves, x_tree, n, reverse, checkpoint_every):
    from .. import numpy as wnp

    order = list(range(n - 1, -1, -1) if reverse else range(n))
    y_tree: list[TreeDef] = []

    def run(carry: Any, indices: list[int]) -> tuple[Any, list]:
        rows = []
        for i in indices:
            carry, y = f(carry, tree_unflatten(x_tree, [x[i] for x in x_leaves]))
            leaves, tree = tree_flatten(y)
            y_tree[:] = [tree]
            rows.append(leaves)
        return carry, rows

    k = checkpoint_every or n
    rows: list = []
    for s in range(0, n, k):
        segment = lambda c, part=order[s:s + k]: run(c, part)  # noqa: E731
        if checkpoint_every is not None:
            from ..checkpoint import checkpoint

            segment = checkpoint(segment)
        carry, part_rows = segment(carry)
        rows.extend(part_rows)
    if reverse:
        rows.reverse()
    columns = [wnp.stack([row[j] for row in rows]) for j in range(len(rows[0]))]
    return carry, tree_unflatten(y_tree[0], columns)
