"""Stage Python functions into the sub-graphs of one control-flow equation.

Every builder takes functions of *flat* leaves, stages them at the operands'
avals (closure conversion lifts captured values into consts shared by all
sub-graphs of the equation), checks that the avals agree, and binds the
primitive. The public API (`wengert.ad.control`) and the JVP/VJP rules both
build their loops here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import ir
from .._core import Aval, aval_of
from .._staging import stage
from ..primitives.control import cond_p, scan_p, while_p


def as_operand(x: Any) -> Any:
    """Python scalars become 0-d arrays (their aval's dtype); everything else passes."""
    if isinstance(x, (bool, int, float, complex)):
        return np.asarray(x, aval_of(x).dtype)
    return x


def stage_together(fns: Sequence[tuple[Callable, Sequence[Aval]]]
                   ) -> tuple[list[ir.Graph], list[Any]]:
    """Stage each ``(function, input avals)``; give all graphs the union of their
    captures as leading inputs, in one order (so one equation passes them once)."""
    staged = [stage(fn, list(avals)) for fn, avals in fns]
    consts: list[Any] = []
    index: dict[int, int] = {}
    for _, captured in staged:
        for c in captured:
            if id(c) not in index:
                index[id(c)] = len(consts)
                consts.append(c)
    graphs = []
    for g, captured in staged:
        own = {id(c): v for c, v in zip(captured, g.in_vars)}
        ins = [own.get(id(c)) or ir.Var(aval_of(c)) for c in consts]
        graphs.append(ir.Graph(ins + list(g.in_vars[len(captured):]), g.const_vars, g.consts,
                               g.eqns, g.out_atoms, out_tree=g.out_tree))
    return graphs, consts


def check_avals(got: Sequence[Aval], expected: Sequence[Aval], what: str) -> None:
    if len(got) != len(expected):
        raise TypeError(f"{what}: expected {len(expected)} values, got {len(got)}")
    for k, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            raise TypeError(f"{what}: leaf {k} is {g} but must be {e} (shapes and dtypes of "
                            "loop carries and branch outputs must not change; cast with "
                            ".astype or build the initial value with the final dtype)")


def bind_cond(index: Any, branches: Sequence[Callable], operands: Sequence[Any]) -> list:
    """One ``cond`` equation: ``branches[index](*operands)`` (flat leaves in and out)."""
    operands = [as_operand(x) for x in operands]
    avals = [aval_of(x) for x in operands]
    graphs, consts = stage_together([(b, avals) for b in branches])
    for k, g in enumerate(graphs[1:], 1):
        check_avals(g.out_avals, graphs[0].out_avals, f"cond: the output of branch {k} "
                    "differs from branch 0")
    return list(cond_p.bind(index, *consts, *operands, branches=tuple(graphs)))


def bind_while(cond_fn: Callable, body_fn: Callable, init: Sequence[Any],
               max_steps: int | None = None, checkpoint_every: int | None = None) -> list:
    """One ``while`` equation over flat carries."""
    init = [as_operand(x) for x in init]
    avals = [aval_of(x) for x in init]
    (cond_g, body_g), consts = stage_together([(cond_fn, avals), (body_fn, avals)])
    if cond_g.out_avals != (Aval((), np.bool_),):
        raise TypeError(f"while_loop: cond_fn must return a boolean scalar, got "
                        f"{list(cond_g.out_avals)}")
    check_avals(body_g.out_avals, avals, "while_loop: body_fn's output differs from the carry")
    return list(while_p.bind(*consts, *init, cond_graph=cond_g, body_graph=body_g,
                             n_consts=len(consts), max_steps=max_steps,
                             checkpoint_every=checkpoint_every))


def bind_scan(body_fn: Callable, init: Sequence[Any], xs: Sequence[Any], length: int,
              reverse: bool = False, checkpoint_every: int | None = None) -> tuple[list, list]:
    """One ``scan`` equation; ``body_fn(*carry, *x_rows)`` returns ``[*carry, *y]``."""
    init = [as_operand(x) for x in init]
    avals = [aval_of(x) for x in init]
    x_avals = [Aval(aval_of(x).shape[1:], aval_of(x).dtype) for x in xs]
    (body_g,), consts = stage_together([(body_fn, avals + x_avals)])
    check_avals(body_g.out_avals[:len(init)], avals,
                "scan: the carry returned by f differs from the initial carry")
    out = scan_p.bind(*consts, *init, *xs, body_graph=body_g, length=length, reverse=reverse,
                      n_consts=len(consts), n_carry=len(init), checkpoint_every=checkpoint_every)
    return list(out[:len(init)]), list(out[len(init):])
