"""Structured control flow as primitives: `cond`, `while`, `scan`.

Staged, each construct is ONE equation whose params hold sub-graphs
(`wengert.ad.ir.Graph`). Sub-graphs are closure-converted: every value the
user's functions closed over is an explicit operand (a "const") of the
equation, so a sub-graph reads only its own inputs and lifted constants.

Param contract (what `wengert.xla` lowers; names and order are fixed)
--------------------------------------------------------------------
``cond(index, *operands) -> (*outs)``
    * ``index``: integer scalar; branch ``clamp(index, 0, len(branches) - 1)``
      runs (XLA ``case``). ``ad.cond(pred, true_fn, false_fn, ...)`` binds
      ``index = int32(pred)`` with ``branches = (false_graph, true_graph)``.
    * ``branches``: ``tuple[Graph, ...]``; each maps ``(*operands)`` to outputs
      with identical avals (captured values are leading operands).

``while(*consts, *init) -> (*final_carry)``
    * ``cond_graph``: ``(*consts, *carry) -> (bool[],)``.
    * ``body_graph``: ``(*consts, *carry) -> (*carry)``, same avals as ``init``.
    * ``n_consts``: how many leading operands are loop-invariant consts.
    * ``max_steps``: ``int | None``. When set, running more than
      ``max_steps`` iterations is an error at run time (the eager
      implementation raises `MaxStepsExceeded`; a lowering that cannot raise
      conjoins ``steps < max_steps`` to the condition and reports the
      overflow). It bounds the carry stack of the reverse-mode rule.
    * ``checkpoint_every``: ``int | None``; read only by the VJP rule (store
      every k-th carry, recompute the rest). Lowerings ignore it.

``scan(*consts, *init, *xs) -> (*final_carry, *ys)``
    * ``body_graph``: ``(*consts, *carry, *x) -> (*carry, *y)``; ``x`` are the
      rows ``xs[j][i]``, ``ys[j][i]`` the stacked ``y`` (leading axis ``length``).
    * ``length``: int; ``reverse``: bool (iterate ``i = length-1 .. 0``);
      ``n_consts``, ``n_carry``: operand split; ``checkpoint_every`` as for
      ``while``.

The implementations below run the sub-graphs with `run_graph` (NumPy or
CuPy), exactly as ``lax.cond`` / ``lax.while_loop`` / ``lax.scan`` would;
the JVP and VJP rules (`wengert.ad.control._ad`) build new staged loops, so
they differentiate again. The VJP of ``while`` never unrolls: it stores the
carries in a preallocated stack of ``max_steps`` rows.
"""

from __future__ import annotations



from .._core import Primitive
from .._staging import run_graph
from .. import ir
from .dynamic import dynamic_update_slice_p, update_in_place, xp_of


class MaxStepsExceeded(RuntimeError):
    """A `while_loop` ran past its ``max_steps``."""


class JointVJP:
    """A per-argument VJP table whose entries are computed together.

    A loop's adjoint yields the cotangents of all operands in one backward
    loop; the reverse pass asks for them one operand at a time with the same
    cotangent tuple, so the last result is kept, keyed by that tuple.
    """

    __slots__ = ("fn", "last_g", "last")

    def __init__(self, fn) -> None:
        self.fn, self.last_g, self.last = fn, None, None

    def __getitem__(self, i: int):
        def rule(g, ans, *args, **params):
            if g is not self.last_g:
                result = self.fn(g, ans, *args, **params)
                self.last_g, self.last = g, result
            return self.last[i]

        return rule


def _lazy(name: str):
    """A rule from `wengert.ad.control._ad` (imported on first use: it stages graphs)."""
    def rule(*args, **params):
        from ..control import _ad

        return getattr(_ad, name)(*args, **params)

    return rule


def _outputs(values: list, avals: tuple, like: tuple) -> tuple:
    """Graph outputs that are Python literals become arrays of the declared dtype, on
    the backend of the operands ``like``."""
    xp = xp_of(*like)
    return tuple(v if hasattr(v, "shape") else xp.asarray(v, a.dtype)
                 for v, a in zip(values, avals))


# ---- cond -------------------------------------------------------------------------------
def _cond_impl(index, *operands, branches):
    g = branches[min(max(int(index), 0), len(branches) - 1)]
    return _outputs(run_graph(g, list(operands)), g.out_avals, operands)


cond_p = Primitive("cond", _cond_impl, multiple_results=True)
cond_p.def_rules(shape=lambda index, *ops, branches: branches[0].out_avals,
                 jvp=_lazy("cond_jvp"), vjps=JointVJP(_lazy("cond_vjp")))


# ---- while ------------------------------------------------------------------------------
def owned_updates(body: ir.Graph, n_consts: int) -> tuple[dict, set]:
    """Carries that the body only overwrites with a `dynamic_update_slice`
    and passes on: a loop that owns their buffers may update them in place
    (a carry stack then costs O(row) per iteration instead of O(stack)).

    Returns ``({equation index: in-place impl}, {carry positions})``.
    """
    uses: dict[int, int] = {}
    for e in body.eqns:
        for a in e.inputs:
            if isinstance(a, ir.Var):
                uses[a.id] = uses.get(a.id, 0) + 1
    for a in body.out_atoms:
        if isinstance(a, ir.Var):
            uses[a.id] = uses.get(a.id, 0) + 1
    producer = {e.outputs[0].id: k for k, e in enumerate(body.eqns)
                if e.prim is dynamic_update_slice_p}
    inplace, owned = {}, set()
    for j, (v, out) in enumerate(zip(body.in_vars[n_consts:], body.out_atoms)):
        k = producer.get(out.id) if isinstance(out, ir.Var) else None
        if k is not None and body.eqns[k].inputs[0] is v and uses.get(v.id) == 1 \
                and uses.get(out.id) == 1:
            inplace[k] = update_in_place
            owned.add(j)
    return inplace, owned


def _while_impl(*args, cond_graph, body_graph, n_consts, max_steps, checkpoint_every):
    consts, carry = list(args[:n_consts]), list(args[n_consts:])
    inplace, owned = owned_updates(body_graph, n_consts)
    carry = [x.copy() if j in owned else x for j, x in enumerate(carry)]
    steps = 0
    while bool(run_graph(cond_graph, consts + carry)[0]):
        if max_steps is not None and steps >= max_steps:
            raise MaxStepsExceeded(
                f"while_loop ran more than max_steps={max_steps} iterations; raise max_steps "
                "(it sizes the carry stack of the reverse-mode rule)")
        carry = run_graph(body_graph, consts + carry, inplace)
        steps += 1
    return _outputs(carry, body_graph.out_avals, args)


while_p = Primitive("while", _while_impl, multiple_results=True)
while_p.def_rules(shape=lambda *args, body_graph, **params: body_graph.out_avals,
                  jvp=_lazy("while_jvp"), vjps=JointVJP(_lazy("while_vjp")),
                  vjp_forward=_lazy("while_vjp_forward"))


# ---- scan -------------------------------------------------------------------------------
def _scan_impl(*args, body_graph, length, reverse, n_consts, n_carry, checkpoint_every):
    consts = list(args[:n_consts])
    carry = list(args[n_consts:n_consts + n_carry])
    xs = args[n_consts + n_carry:]
    y_avals = body_graph.out_avals[n_carry:]
    xp = xp_of(*args)
    ys = [xp.empty((length,) + a.shape, a.dtype) for a in y_avals]
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        out = run_graph(body_graph, consts + carry + [x[i] for x in xs])
        carry = out[:n_carry]
        for buf, y in zip(ys, out[n_carry:]):
            buf[i] = y
    return _outputs(carry, body_graph.out_avals[:n_carry], args) + tuple(ys)


def _scan_shape(*args, body_graph, length, n_carry, **params):
    avals = body_graph.out_avals
    return avals[:n_carry] + tuple(type(a)((length,) + a.shape, a.dtype)
                                   for a in avals[n_carry:])


scan_p = Primitive("scan", _scan_impl, multiple_results=True)
scan_p.def_rules(shape=_scan_shape, jvp=_lazy("scan_jvp"), vjps=JointVJP(_lazy("scan_vjp")),
                 vjp_forward=_lazy("scan_vjp_forward"))
