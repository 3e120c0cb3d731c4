"""JVP and VJP rules of the control-flow primitives, as staged control flow.

Each rule stages new sub-graphs (the JVP or VJP of the old ones, obtained by
running them under a forward or reverse trace inside a staging trace) and
binds `cond`/`while`/`scan` again, so the result is differentiable once more
and lowers like any other loop.

Loops in reverse mode (`record_loop`, `adjoint_loop`): a *recording* loop runs the forward
iteration and writes each carry into a preallocated stack (``dynamic_update_slice``
at the step counter; ``max_steps`` rows), then an *adjoint* loop runs the
counter back down, reading each carry (``dynamic_slice``) and applying the
body's staged VJP. With ``checkpoint_every=k`` only every k-th carry is
stored; the adjoint loop walks the segments backwards, recomputes each
segment's k carries into a small stack and runs the adjoint over it: memory
``max_steps/k + k`` carries, time about one extra forward pass. Nothing is
unrolled. The forward mode rule is a loop over (carry, tangent).

When the reverse pass runs over staged values it calls the loops' forward rules
(``*_vjp_forward``): the recording loop then also gives the primal outputs (a
scan's stacked outputs included), so the staged gradient holds two loops, as
JAX's does, not the primal loop beside the recording one.

Cost note: JVP rules re-run the primal inside the tangent loop (the primal
outputs were already computed by the trace); when staged, dead-code
elimination removes the unused copy where only tangents are needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .._core import Aval, Tracer, aval_of, is_inexact_dtype, trace_level
from .._forward import JVPTrace, JVPTracer
from .._reverse import ReverseTrace, ReverseTracer
from .._staging import run_graph, stage
from .. import ir
from ..primitives._helpers import zeros
from ..primitives.dynamic import index_in_dim, update_index_in_dim, xp_of, zeros_on
from ..primitives.elementwise import (add_p, convert_element_type_p, eq_p, ge_p, gt_p, lt_p,
                                      min_p, real_p, select_p)
from ..primitives.structural import broadcast_in_dim_p
from ._bound import default_max_steps
from ._build import bind_cond, bind_scan, bind_while

_I32 = np.dtype(np.int32)


# ---- flat transformations of graphs --------------------------------------------------------
def graph_fn(graph: ir.Graph) -> Callable:
    return lambda *xs: run_graph(graph, list(xs))


def is_float(aval: Aval) -> bool:
    return is_inexact_dtype(aval.dtype)


def fit(x: Any, aval: Aval, like: Any = None) -> Any:
    """``x`` as a (co)tangent of type ``aval``: zeros for ``None``, then cast and
    broadcast; on ``like``'s backend when given (the reverse pass makes the zero
    cotangents of unused outputs with NumPy)."""
    if x is None:
        return zeros(aval.shape, aval.dtype) if like is None else \
            zeros_on(like, aval.shape, aval.dtype)
    if like is not None and not isinstance(x, Tracer) and not isinstance(like, Tracer) \
            and xp_of(x) is not xp_of(like):
        x = xp_of(like).asarray(x)
    have = aval_of(x)
    if have.dtype != aval.dtype:
        if have.dtype.kind == "c" and aval.dtype.kind != "c":
            x = real_p.bind(x)
        x = convert_element_type_p.bind(x, new_dtype=aval.dtype)
    if have.shape != aval.shape:
        x = broadcast_in_dim_p.bind(x, shape=aval.shape, broadcast_dimensions=tuple(
            range(len(aval.shape) - len(have.shape), len(aval.shape))))
    return x


def jvp_flat(fn: Callable, primals: Sequence[Any], tangents: Sequence[Any]
             ) -> tuple[list, list]:
    """Forward mode over flat lists; ``None`` tangents are symbolic zeros both ways."""
    trace = JVPTrace()
    with trace_level(trace):
        outs = fn(*(p if t is None else JVPTracer(trace, p, t)
                    for p, t in zip(primals, tangents)))
    mine = [isinstance(o, JVPTracer) and o._trace is trace for o in outs]
    return ([o.primal if m else o for o, m in zip(outs, mine)],
            [o.tangent if m else None for o, m in zip(outs, mine)])


def vjp_flat(fn: Callable, primals: Sequence[Any], diff: Sequence[bool]
             ) -> tuple[list, Callable]:
    """Reverse mode over flat lists: ``back(cts)`` (``None`` = zero) gives the
    cotangents of the inputs flagged in ``diff`` (``None`` elsewhere or if zero)."""
    trace = ReverseTrace()
    with trace_level(trace):
        ins = [trace.new_leaf(p) if d else p for p, d in zip(primals, diff)]
        outs = fn(*ins)
    mine = [type(o) is ReverseTracer and o._trace is trace for o in outs]

    def back(cts: Sequence[Any]) -> list:
        leaf = trace.backward([(o, c) for o, c, m in zip(outs, cts, mine)
                               if m and c is not None])
        return [leaf[x.idx] if d else None for x, d in zip(ins, diff)]

    return [o.value if m else o for o, m in zip(outs, mine)], back


def tangent_mask(graph: ir.Graph, nonzero: Sequence[bool]) -> list[bool]:
    """Which outputs of ``graph`` get a non-zero tangent from inputs ``nonzero``."""
    mask: list[bool] = []

    def probe(*xs: Any) -> list:
        it = iter(xs[len(graph.in_vars):])
        _, ts = jvp_flat(graph_fn(graph), xs[:len(graph.in_vars)],
                         [next(it) if z else None for z in nonzero])
        mask[:] = [t is not None for t in ts]
        return []

    stage(probe, list(graph.in_avals) + [a for a, z in zip(graph.in_avals, nonzero) if z])
    return mask


def _present(values: Sequence[Any], mask: Sequence[bool]) -> list:
    return [v for v, m in zip(values, mask) if m]


def _scatter(values: Sequence[Any], mask: Sequence[bool]) -> list:
    """Inverse of `_present`: ``None`` where ``mask`` is False."""
    it = iter(values)
    return [next(it) if m else None for m in mask]


def _tangent_fn(graph: ir.Graph, n_primals: int, nonzero: Sequence[bool],
                out_mask: Sequence[bool], fixed: Sequence[Any] = (),
                fixed_tangents: Sequence[Any] = ()) -> Callable:
    """``(*primals, *tangents[nonzero]) -> (*outs, *fitted tangents[out_mask])`` of the graph
    applied to ``(*fixed, *primals)``; ``fixed_tangents`` are those of ``fixed``."""
    avals = graph.out_avals

    def fn(*xs: Any) -> list:
        primals = list(fixed) + list(xs[:n_primals])
        tangents = list(fixed_tangents) + _scatter(xs[n_primals:], nonzero)
        ps, ts = jvp_flat(graph_fn(graph), primals, tangents)
        return list(ps) + [fit(t, a, p) for t, a, p in _present(list(zip(ts, avals, ps)),
                                                                 out_mask)]

    return fn


# ---- cond ------------------------------------------------------------------------------------
def cond_jvp(tangents, ans, index, *ops, branches):
    nonzero = [t is not None for t in tangents[1:]]
    out_mask = [any(m) for m in zip(*(tangent_mask(b, nonzero) for b in branches))]
    n_out = len(branches[0].out_atoms)
    fns = [_tangent_fn(b, len(ops), nonzero, out_mask) for b in branches]
    outs = bind_cond(index, [lambda *xs, fn=fn: fn(*xs)[n_out:] for fn in fns],
                     list(ops) + _present(tangents[1:], nonzero))
    return _scatter(outs, out_mask)


def cond_vjp(g, ans, index, *ops, branches):
    diff = [is_float(aval_of(x)) for x in ops]
    avals = branches[0].out_avals
    ct_mask = [is_float(a) for a in avals]
    like = next(iter(ops), None)
    cts = [fit(c, a, like) for c, a in _present(list(zip(g, avals)), ct_mask)]

    def adjoint(branch: ir.Graph) -> Callable:
        def fn(*xs: Any) -> list:
            _, back = vjp_flat(graph_fn(branch), xs[:len(ops)], diff)
            res = back(_scatter(xs[len(ops):], ct_mask))
            return [fit(r, aval_of(x), x) for r, x in
                    _present(list(zip(res, xs[:len(ops)])), diff)]

        return fn

    outs = bind_cond(index, [adjoint(b) for b in branches], list(ops) + cts)
    return [None] + _scatter(outs, diff)


# ---- while -----------------------------------------------------------------------------------
def _carry_mask(body: ir.Graph, before: list[bool], carry_nonzero: list[bool],
                after: list[bool], carry_avals: Sequence[Aval]) -> list[bool]:
    """Carries with non-zero tangents: grow the set until the body maps it into itself.
    ``before``/``after`` flag the non-zero tangents of the other body inputs."""
    while True:
        out = tangent_mask(body, before + carry_nonzero + after)
        grown = [(a or b) and is_float(v) for a, b, v in
                 zip(carry_nonzero, out, carry_avals)]
        if grown == carry_nonzero:
            return carry_nonzero
        carry_nonzero = grown


def while_jvp(tangents, ans, *args, cond_graph, body_graph, n_consts, max_steps,
              checkpoint_every):
    consts, init = list(args[:n_consts]), list(args[n_consts:])
    t_consts, t_init = list(tangents[:n_consts]), list(tangents[n_consts:])
    avals = body_graph.out_avals
    nonzero = _carry_mask(body_graph, [t is not None for t in t_consts],
                          [t is not None for t in t_init], [], avals)
    m = len(init)
    step = _tangent_fn(body_graph, m, nonzero, nonzero, consts, t_consts)
    outs = bind_while(lambda *xs: run_graph(cond_graph, consts + list(xs[:m]))[0], step,
                      init + [fit(t, a, x) for t, a, x in _present(list(zip(t_init, avals, init)),
                                                                   nonzero)],
                      max_steps, checkpoint_every)
    return _scatter(outs[m:], nonzero)


def _int32(x: Any) -> Any:
    return convert_element_type_p.bind(x, new_dtype=_I32)


class Recording(NamedTuple):
    """What the recording loop leaves: the step count, the checkpoint phase and slot,
    the carry stacks, the final carries and the stacked per-step outputs."""

    n: Any
    phase: Any
    slot: Any
    stacks: list
    final: list
    extras: list


def record_loop(init: list, step: Callable, more: Callable, bound: int, every: int | None,
                extra_avals: Sequence[Aval] = (), extra_row: Callable | None = None
                ) -> Recording:
    """Run ``x_{i+1}, e_i = step(i, x_i)`` while ``more(i, x_i)``, storing the carries
    (every ``every``-th, see the module docstring) and each ``e_i`` at row
    ``extra_row(i)`` of a stack of ``bound`` rows (a scan's outputs)."""
    m = len(init)
    k = every or 1
    rows = -(-bound // k)
    scratch = k > 1  # rows that are not checkpoints go to one extra scratch row
    like = init[0] if init else None
    stacks = [zeros_on(x, (rows + scratch,) + aval_of(x).shape, aval_of(x).dtype) for x in init]
    extras = [zeros_on(like, (bound,) + a.shape, a.dtype) for a in extra_avals]
    n_st = len(stacks)

    def rec_more(i, phase, slot, *rest):
        return more(i, list(rest[:m]))

    def rec_step(i, phase, slot, *rest):
        xs, st, ex = list(rest[:m]), rest[m:m + n_st], rest[m + n_st:]
        row = select_p.bind(eq_p.bind(phase, 0), slot, np.int32(rows)) if scratch else slot
        st = [update_index_in_dim(s, x, row) for s, x in zip(st, xs)]
        new, out = step(i, xs)
        if ex:
            r = extra_row(i)
            ex = [update_index_in_dim(b, e, r) for b, e in zip(ex, out)]
        wrap = eq_p.bind(phase + 1, k)
        return [i + 1, select_p.bind(wrap, np.int32(0), phase + 1), slot + _int32(wrap),
                *new, *st, *ex]

    zero = np.int32(0)
    out = bind_while(rec_more, rec_step, [zero, zero, zero, *init, *stacks, *extras],
                     max_steps=bound)
    return Recording(out[0], out[1], out[2], list(out[3 + m:3 + m + n_st]),
                     list(out[3:3 + m]), list(out[3 + m + n_st:]))


def adjoint_loop(rec: Recording, init: list, step: Callable, bound: int, every: int | None,
                 back_step: Callable, state: list) -> list:
    """The reverse sweep over a recorded loop ``x_{i+1} = step(i, x_i)``.

    ``back_step(i, x_i, state) -> state`` is one adjoint step; the result is
    the state after stepping back over every iteration. With ``every`` the
    carries between checkpoints are recomputed with ``step`` segment by segment.
    """
    m = len(init)
    k = every or 1
    rows = -(-bound // k)
    n, phase, slot, stacks = rec.n, rec.phase, rec.slot, rec.stacks
    zero = np.int32(0)

    def down(j):
        return ge_p.bind(j, 0)

    if k == 1:
        def adjoint_step(j, *st):
            return [j - 1, *back_step(j, [index_in_dim(s, j) for s in stacks], list(st))]

        return bind_while(lambda j, *st: down(j), adjoint_step, [n - 1, *state],
                          max_steps=bound)[1:]

    def segment_step(s, *st):
        start = s * k
        size = min_p.bind(n - start, np.int32(k))
        local = [zeros_on(c, (k,) + aval_of(x).shape, aval_of(x).dtype)
                 for c, x in zip(stacks, init)]

        def fill(t, *rest):
            xs, loc = list(rest[:m]), rest[m:]
            loc = [update_index_in_dim(a, x, t) for a, x in zip(loc, xs)]
            return [t + 1, *step(start + t, xs), *loc]

        filled = bind_while(lambda t, *rest: lt_p.bind(t, size), fill,
                            [zero, *[index_in_dim(c, s) for c in stacks], *local],
                            max_steps=k)[1 + m:]

        def adjoint_step(t, *st):
            return [t - 1, *back_step(start + t, [index_in_dim(a, t) for a in filled],
                                      list(st))]

        st = bind_while(lambda t, *st: down(t), adjoint_step, [size - 1, *st],
                        max_steps=k)[1:]
        return [s - 1, *st]

    segments = slot + _int32(gt_p.bind(phase, 0))
    return bind_while(lambda s, *st: down(s), segment_step, [segments - 1, *state],
                      max_steps=rows)[1:]


def _accumulate(total: list, new: list) -> list:
    return [add_p.bind(a, b) for a, b in zip(total, new)]


def while_vjp(g, ans, *args, **params):
    _, back = while_vjp_forward(*args, **params, unbounded_ok=False)
    return back(g)


def while_vjp_forward(*args, cond_graph, body_graph, n_consts, max_steps, checkpoint_every,
                      unbounded_ok=True):
    """The loop run once, recording its carries: its outputs, and ``back(g)`` giving the
    cotangents of every operand from the recording (the reverse pass's forward rule).
    Without a bound on the steps it declines (``None``) when ``unbounded_ok``: the
    loop then runs as a primal loop, and only a gradient that reaches it refuses."""
    if max_steps is None:
        max_steps = default_max_steps()
    if max_steps is None:
        if unbounded_ok:
            return None
        raise ValueError(
            "reverse-mode differentiation of a staged while_loop needs max_steps: it sizes "
            "the stack of stored carries (the loop is not unrolled). Pass "
            "while_loop(..., max_steps=N), optionally with checkpoint_every=k, or stage it "
            "inside wengert.ad.while_loop_bound(N) (wengert.xla.jit does, and grows N)")
    consts, init = list(args[:n_consts]), list(args[n_consts:])
    avals = body_graph.out_avals
    diff_c = [is_float(aval_of(c)) for c in consts]
    diff_x = [is_float(a) for a in avals]
    body = graph_fn(body_graph)
    nx = sum(diff_x)

    def step(i, xs):
        return body(*consts, *xs)

    rec = record_loop(init, lambda i, xs: (step(i, xs), ()),
                      lambda i, xs: run_graph(cond_graph, consts + xs)[0],
                      max_steps, checkpoint_every)

    def back_step(i, xs, state):
        _, back = vjp_flat(body, consts + xs, diff_c + diff_x)
        res = back(_scatter(state[:nx], diff_x))
        ct_x = [fit(r, a, x) for r, a, x in _present(list(zip(res[n_consts:], avals, xs)),
                                                       diff_x)]
        ct_c = [fit(r, aval_of(c), c) for r, c in _present(list(zip(res, consts)), diff_c)]
        return ct_x + _accumulate(state[nx:], ct_c)

    def back(g):
        state = [fit(c, a, x) for c, a, x in _present(list(zip(g, avals, init)), diff_x)] + \
            [fit(None, aval_of(c), c) for c in _present(consts, diff_c)]
        state = adjoint_loop(rec, init, step, max_steps, checkpoint_every, back_step, state)
        return _scatter(state[nx:], diff_c) + _scatter(state[:nx], diff_x)

    return _outputs_like(rec.final, avals), back


def _outputs_like(values: list, avals: Sequence[Aval]) -> list:
    """The loop's outputs in the primitive's output types (the recording loop's carries
    may be weakly typed where the primitive's are not, or the reverse)."""
    return [fit(v, a) if aval_of(v) != a else v for v, a in zip(values, avals)]


# ---- scan ------------------------------------------------------------------------------------
def scan_jvp(tangents, ans, *args, body_graph, length, reverse, n_consts, n_carry,
             checkpoint_every):
    consts = list(args[:n_consts])
    init = list(args[n_consts:n_consts + n_carry])
    xs = list(args[n_consts + n_carry:])
    t_consts = list(tangents[:n_consts])
    t_init = list(tangents[n_consts:n_consts + n_carry])
    t_xs = list(tangents[n_consts + n_carry:])
    avals = body_graph.out_avals
    x_nonzero = [t is not None for t in t_xs]
    c_nonzero = [t is not None for t in t_consts]
    nonzero = _carry_mask(body_graph, c_nonzero, [t is not None for t in t_init], x_nonzero,
                          avals[:n_carry])
    out_mask = tangent_mask(body_graph, c_nonzero + nonzero + x_nonzero)
    y_mask = out_mask[n_carry:]
    inner = _tangent_fn(body_graph, n_carry + len(xs), nonzero + x_nonzero,
                        nonzero + y_mask, consts, t_consts)
    nt = sum(nonzero)

    def step(*leaves):  # (*carry, *carry_t, *x, *x_t) -> (*carry, *carry_t, *y, *y_t)
        carry, carry_t = leaves[:n_carry], leaves[n_carry:n_carry + nt]
        x, x_t = leaves[n_carry + nt:n_carry + nt + len(xs)], leaves[n_carry + nt + len(xs):]
        out = inner(*carry, *x, *carry_t, *x_t)
        n_out = len(avals)
        return out[:n_carry] + out[n_out:n_out + nt] + out[n_carry:n_out] + out[n_out + nt:]

    t_carry0 = [fit(t, a, x) for t, a, x in _present(list(zip(t_init, avals, init)), nonzero)]
    carry, ys = bind_scan(step, init + t_carry0, xs + _present(t_xs, x_nonzero), length,
                          reverse, checkpoint_every)
    ny = len(avals) - n_carry
    return _scatter(carry[n_carry:], nonzero) + _scatter(ys[ny:], y_mask)


def scan_vjp(g, ans, *args, **params):
    _, back = scan_vjp_forward(*args, **params)
    return back(g)


def scan_vjp_forward(*args, body_graph, length, reverse, n_consts, n_carry, checkpoint_every):
    """The scan run once as a loop recording its carries and stacking its outputs: the
    primitive's outputs, and ``back(g)`` giving every operand's cotangent."""
    consts = list(args[:n_consts])
    init = list(args[n_consts:n_consts + n_carry])
    xs = list(args[n_consts + n_carry:])
    avals = body_graph.out_avals
    diff_c = [is_float(aval_of(c)) for c in consts]
    diff_x = [is_float(a) for a in avals[:n_carry]]
    diff_xs = [is_float(aval_of(x)) for x in xs]
    y_float = [is_float(a) for a in avals[n_carry:]]
    y_avals = [Aval((length,) + a.shape, a.dtype) for a in avals[n_carry:]]
    like = next(iter(args), None)
    body = graph_fn(body_graph)
    nx, nc = sum(diff_x), sum(diff_c)

    def row(i):
        return (length - 1) - i if reverse else i

    def step_with_ys(i, carry):
        out = body(*consts, *carry, *(index_in_dim(x, row(i)) for x in xs))
        return out[:n_carry], out[n_carry:]

    def step(i, carry):
        return step_with_ys(i, carry)[0]

    rec = record_loop(init, step_with_ys, lambda i, carry: lt_p.bind(i, length), length,
                      checkpoint_every, avals[n_carry:], row)

    def back_step(i, carry, state, ct_ys):
        r = row(i)
        x_rows = [index_in_dim(x, r) for x in xs]
        _, back = vjp_flat(body, consts + carry + x_rows, diff_c + diff_x + diff_xs)
        res = back(_scatter(state[:nx], diff_x) +
                   _scatter([index_in_dim(c, r) for c in ct_ys], y_float))
        ct_carry = [fit(c, a, v) for c, a, v in
                    _present(list(zip(res[n_consts:n_consts + n_carry], avals, carry)), diff_x)]
        ct_c = [fit(c, aval_of(v), v) for c, v in _present(list(zip(res, consts)), diff_c)]
        ct_x = [fit(c, aval_of(v), v) for c, v in
                _present(list(zip(res[n_consts + n_carry:], x_rows)), diff_xs)]
        bufs = [update_index_in_dim(b, c, r) for b, c in zip(state[nx + nc:], ct_x)]
        return ct_carry + _accumulate(state[nx:nx + nc], ct_c) + bufs

    def back(g):
        ct_ys = [fit(c, a, like) for c, a in _present(list(zip(g[n_carry:], y_avals)),
                                                      y_float)]
        state = [fit(c, a, x) for c, a, x in _present(list(zip(g[:n_carry], avals, init)),
                                                       diff_x)] + \
            [fit(None, aval_of(c), c) for c in _present(consts, diff_c)] + \
            [fit(None, aval_of(x), x) for x in _present(xs, diff_xs)]
        state = adjoint_loop(rec, init, step, length, checkpoint_every,
                             lambda i, carry, st: back_step(i, carry, st, ct_ys), state)
        return (_scatter(state[nx:nx + nc], diff_c) + _scatter(state[:nx], diff_x) +
                _scatter(state[nx + nc:], diff_xs))

    return _outputs_like(rec.final, avals[:n_carry]) + _outputs_like(rec.extras, y_avals), back
