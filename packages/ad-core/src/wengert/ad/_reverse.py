"""Reverse mode: a tape of primitive applications and the backward sweep.

The tape is a plain list in creation order, which is already a topological
order, so the backward sweep is one reversed loop with no graph search.
Each entry is a tuple ``(prim, parents, args, ans, params)``; ``parents``
lists ``(argnum, tape_index, output_index)`` of the traced arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._core import Aval, ConcreteTracer, Primitive, Trace, Tracer, is_inexact_dtype
from .tree import _LEAF, flatten_up_to, tree_flatten, tree_unflatten

_EMPTY: tuple = ()


class ReverseTracer(ConcreteTracer):
    __slots__ = ("value", "idx", "out")

    def __init__(self, trace: ReverseTrace, value: Any, idx: int, out: int = -1) -> None:
        self._trace = trace
        self.value = value
        self.idx = idx
        self.out = out

    def _primal(self) -> Any:
        return self.value

    def __repr__(self) -> str:
        return f"ReverseTracer(level={self._trace.level}, value={self.value!r})"


def _shape_only(x: Any) -> Any:
    """What a rule that needs only shapes keeps of a float operand (indices stay)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None or not hasattr(x, "shape"):
        return x
    kind = dtype.kind
    if kind in "fc" or (kind == "V" and is_inexact_dtype(dtype)):
        aval = _new_aval(Aval)  # skips Aval.__init__'s conversions: these are canonical
        aval.shape, aval.dtype = x.shape, dtype
        return aval
    return x


_new_aval = object.__new__


class ReverseTrace(Trace):
    __slots__ = ("tape", "n_leaves")

    def __init__(self) -> None:
        super().__init__()
        self.tape: list[tuple] = []
        self.n_leaves = 0

    def new_leaf(self, value: Any) -> ReverseTracer:
        """An input of the differentiated function; leaves precede all operations."""
        idx = len(self.tape)
        assert idx == self.n_leaves, "leaves must be created before any operation is taped"
        self.tape.append((None, _EMPTY, _EMPTY, None, None))
        self.n_leaves += 1
        return ReverseTracer(self, value, idx)

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        vals = []
        parents = []
        lower = False
        for i, a in enumerate(args):
            if type(a) is ReverseTracer and a._trace is self:
                parents.append((i, a.idx, a.out))
                a = a.value
            vals.append(a)
            if isinstance(a, Tracer):
                lower = True
        if lower and parents and prim.vjp_forward is not None and any(
                _is_float(vals[p[0]]) for p in parents):
            out = self._process_with_forward_rule(prim, vals, parents, params)
            if out is not None:
                return out
        # Values of lower levels go back through bind; plain arrays straight to impl.
        ans = prim.bind(*vals, **params) if lower else prim.impl(*vals, **params)
        if not parents or prim.vjps is None:
            return ans
        tape = self.tape
        idx = len(tape)
        saved = vals if prim.keep_args else [_shape_only(v) for v in vals]
        if prim.multiple_results:
            kept = ans if prim.keep_ans else tuple(_shape_only(a) for a in ans)
            tape.append((prim, parents, saved, kept, params))
            return tuple(ReverseTracer(self, a, idx, k) for k, a in enumerate(ans))
        tape.append((prim, parents, saved, ans if prim.keep_ans else None, params))
        return ReverseTracer(self, ans, idx)

    def _process_with_forward_rule(self, prim: Primitive, vals: list, parents: list,
                                   params: dict) -> tuple | None:
        """``prim.vjp_forward`` computes the outputs and the pullback together; the
        tape holds the pullback, as for an `adjoint` function (one operand a leaf).
        ``None`` where the rule declines (then `impl` and `vjps` are used)."""
        done = prim.vjp_forward(*vals, **params)
        if done is None:
            return None
        outs, back = done
        idx = len(self.tape)
        traced = [_is_float(v) for v in outs]
        kept = tuple(_shape_only(v) if t else None for v, t in zip(outs, traced))
        node = _CustomVJPNode(lambda g: tuple(back(list(g))), tree_flatten(tuple(outs))[1],
                              [_LEAF] * len(vals), len(parents))
        self.tape.append((node, parents, (), kept, {}))
        return tuple(ReverseTracer(self, v, idx, k) if t else v
                     for k, (v, t) in enumerate(zip(outs, traced)))

    def backward(self, seeds: list[tuple[ReverseTracer, Any]]) -> list[Any]:
        """Run the backward sweep from ``(output tracer, cotangent)`` seeds.

        Returns the cotangents of the leaves in creation order (``None`` where
        no path reaches a leaf). The tape is left intact so `back` can be
        called again.
        """
        tape = self.tape
        cts: list[Any] = [None] * len(tape)
        owned: set[int] = set()
        for t, g in seeds:
            _accumulate(cts, owned, t.idx, t.out, g, len(tape[t.idx][3]) if t.out >= 0 else 0)
        for i in range(len(tape) - 1, self.n_leaves - 1, -1):
            g = cts[i]
            if g is None:
                continue
            cts[i] = None
            if owned:
                owned.discard(id(g))
            prim, parents, args, ans, params = tape[i]
            if prim.multiple_results:
                like = next((c for c in g if c is not None), None)
                g = tuple(_zeros_for(a, like) if c is None and a is not None else c
                          for c, a in zip(g, ans))
            vjps = prim.vjps
            for argnum, p, out in parents:
                rule = vjps[argnum]
                if rule is None:
                    continue
                c = rule(g, ans, *args, **params)
                if c is None:
                    continue
                if out < 0 and cts[p] is None:  # the common case, inlined
                    cts[p] = c
                else:
                    _accumulate(cts, owned, p, out, c, len(tape[p][3]) if out >= 0 else 0)
        return cts[: self.n_leaves]


def _zeros_for(x: Any, like: Any) -> Any:
    """The zero cotangent of an unused output, on the device of the used ones."""
    from .primitives._helpers import zeros

    return zeros(x.shape, x.dtype, like=like)


def _accumulate(cts: list, owned: set, p: int, out: int, c: Any, n_out: int) -> None:
    """Add cotangent ``c`` into slot ``p``, in place when the buffer is ours."""
    if out >= 0:
        slot = cts[p]
        if slot is None:
            slot = cts[p] = [None] * n_out
        old = slot[out]
        slot[out] = c if old is None else old + c
        return
    old = cts[p]
    if old is None:
        cts[p] = c
    elif id(old) in owned and type(old) is type(c) is np.ndarray and old.shape == c.shape \
            and old.dtype == np.result_type(old, c):
        np.add(old, c, out=old)
    else:
        s = old + c
        cts[p] = s
        if type(s) is np.ndarray:
            owned.add(id(s))


class _CustomVJPNode:
    """Tape entry of an `adjoint` function: its VJPs call the user's ``back`` once."""

    __slots__ = ("back", "y_def", "arg_defs", "n_parents", "pending", "last_g", "last_cts")
    multiple_results = True
    keep_ans = False

    def __init__(self, back: Any, y_def: Any, arg_defs: list, n_parents: int) -> None:
        self.back, self.y_def, self.arg_defs = back, y_def, arg_defs
        self.n_parents = self.pending = n_parents
        self.last_g = self.last_cts = None

    @property
    def vjps(self) -> _CustomVJPNode:
        return self

    def __getitem__(self, flat_index: int):
        return lambda g, ans, *args: self._take(g, flat_index)

    def _take(self, g: tuple, flat_index: int) -> Any:
        """Each parent asks once per sweep; the cache is dropped after the last one,
        so the backward pass does not keep every node's cotangents alive."""
        c = self._cotangents(g)[flat_index]
        self.pending -= 1
        if self.pending == 0:
            self.last_g = self.last_cts = None
        return c

    def _cotangents(self, g: tuple) -> list:
        if g is not self.last_g:
            y_def = self.y_def
            cts = self.back(g[0] if y_def is _LEAF else tree_unflatten(y_def, list(g)))
            if not isinstance(cts, tuple) or len(cts) != len(self.arg_defs):
                raise TypeError(f"adjoint: back must return a tuple with one cotangent per "
                                f"positional argument ({len(self.arg_defs)}), got {cts!r:.80}")
            flat: list = []
            for k, (ct, arg_def) in enumerate(zip(cts, self.arg_defs)):
                if arg_def is _LEAF:  # what flatten_up_to gives for a leaf
                    flat.append(ct)
                    continue
                flat.extend(flatten_up_to(arg_def, ct, f"adjoint: the cotangent that back "
                                                       f"returned for argument {k}"))
            self.last_g, self.last_cts, self.pending = g, flat, self.n_parents
        return self.last_cts


def _process_custom_vjp(self: ReverseTrace, fun: Any, args: tuple) -> Any:
    vals: list = []
    parents = []
    arg_defs = []
    flat_index = 0  # position among the flattened leaves of all arguments
    for a in args:
        if type(a) is ReverseTracer or type(a) is np.ndarray:  # a leaf: no tree to walk
            arg_defs.append(_LEAF)
            if type(a) is ReverseTracer and a._trace is self:
                parents.append((flat_index, a.idx, a.out))
                a = a.value
            vals.append(a)
            flat_index += 1
            continue
        leaves, treedef = tree_flatten(a)
        arg_defs.append(treedef)
        unwrapped = []
        for leaf in leaves:
            if type(leaf) is ReverseTracer and leaf._trace is self:
                parents.append((flat_index, leaf.idx, leaf.out))
                leaf = leaf.value
            unwrapped.append(leaf)
            flat_index += 1
        vals.append(tree_unflatten(treedef, unwrapped))
    y, back = fun(*vals)
    if not parents:
        return y
    y_leaves, y_def = tree_flatten(y)
    idx = len(self.tape)
    # Only float outputs are traced; the others get no cotangent (None in `kept`).
    traced = [_is_float(v) for v in y_leaves]
    kept = tuple(_shape_only(v) if t else None for v, t in zip(y_leaves, traced))
    self.tape.append((_CustomVJPNode(back, y_def, arg_defs, len(parents)), parents, (), kept, {}))
    return tree_unflatten(y_def, [ReverseTracer(self, v, idx, k) if t else v
                                  for k, (v, t) in enumerate(zip(y_leaves, traced))])


def _is_float(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return isinstance(x, (float, complex))
    return is_inexact_dtype(dtype)


ReverseTrace.process_custom_vjp = _process_custom_vjp
