"""Jacobians, Hessians and Hessian-vector products, composed from `jvp` and `pullback`.

`jacfwd` pushes one basis tangent per input entry (cheap for few inputs),
`jacrev` pulls one basis cotangent per output entry through a single reused
pullback (cheap for few outputs); `jacobian` picks whichever needs fewer
passes. `hessian` is forward-over-reverse and `hvp` never forms the Hessian.
Everything is built from differentiable operations, so these nest too.

Layout (as JAX): the Jacobian of an output leaf of shape ``o`` with respect
to an input leaf of shape ``i`` has shape ``o + i``; for trees, the result
has the output's structure with, at each leaf, the input's structure
(a tuple over ``argnums`` when that is a sequence).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import numpy as wnp
from ._api import _normalize_argnums, grad, is_differentiable, jvp, pullback, resolve_argnums
from ._core import Tracer
from .tree import tree_flatten, tree_unflatten


def _shape(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, Tracer) else np.shape(x)


def _dtype(x: Any) -> np.dtype:
    return x.dtype if hasattr(x, "dtype") else np.result_type(x)


def _basis(leaf: Any, k: int) -> np.ndarray:
    e = np.zeros(int(np.prod(_shape(leaf), dtype=np.int64)), _dtype(leaf))
    e[k] = 1
    return e.reshape(_shape(leaf))


def _split_args(args: tuple, nums: tuple[int, ...]) -> tuple[Callable, list, Any]:
    """``(rebuild, leaves, tree)``: the leaves of ``args[nums]`` and how to put new ones back."""
    leaves, tree = tree_flatten([args[i] for i in nums])

    def rebuild(new_leaves: list) -> tuple:
        full = list(args)
        for i, part in zip(nums, tree_unflatten(tree, list(new_leaves))):
            full[i] = part
        return tuple(full)

    return rebuild, leaves, tree


def _assemble(blocks: list[list[Any]], out_tree: Any, in_tree: Any, single: bool) -> Any:
    """Nest ``blocks[out leaf][in leaf]`` as output structure of input structures."""
    def inner(row: list) -> Any:
        parts = tree_unflatten(in_tree, row)
        return parts[0] if single else tuple(parts)

    return tree_unflatten(out_tree, [inner(row) for row in blocks])


def _columns_to_block(columns: list, out_shape: tuple, in_shape: tuple) -> Any:
    """Stacked columns ``(n_in, *out)`` -> the block ``out + in``."""
    stacked = wnp.stack(columns)
    moved = wnp.moveaxis(stacked, 0, -1) if out_shape else stacked
    return wnp.reshape(moved, out_shape + in_shape)


def _rows_to_block(rows: list, out_shape: tuple, in_shape: tuple) -> Any:
    """Stacked rows ``(n_out, *in)`` -> the block ``out + in``."""
    return wnp.reshape(wnp.stack(rows), out_shape + in_shape)


def _forward_jacobian(f: Callable, args: tuple, nums: tuple, single: bool) -> Any:
    rebuild, leaves, in_tree = _split_args(args, nums)
    columns: list[list[list]] = []   # [in leaf][column] -> output leaves
    out_leaves, out_tree = None, None
    for j, leaf in enumerate(leaves):
        cols = []
        for k in range(int(np.prod(_shape(leaf), dtype=np.int64)) if is_differentiable(leaf)
                       else 0):
            tangents = [_basis(x, k) if i == j else np.zeros(_shape(x), _dtype(x))
                        for i, x in enumerate(leaves)]
            y, dy = jvp(lambda *ls: f(*rebuild(ls)), leaves, tangents)
            out_leaves, out_tree = tree_flatten(y)
            cols.append(tree_flatten(dy)[0])
        columns.append(cols)
    if out_tree is None:  # no differentiable entry: evaluate once for the output's shape
        out_leaves, out_tree = tree_flatten(f(*args))
    blocks = [[_columns_to_block([c[o] for c in cols], _shape(y), _shape(x)) if cols else None
               for cols, x in zip(columns, leaves)] for o, y in enumerate(out_leaves)]
    return _assemble(blocks, out_tree, in_tree, single)


def _reverse_jacobian(f: Callable, args: tuple, nums: tuple, single: bool,
                      pulled: tuple | None = None) -> Any:
    rebuild, leaves, in_tree = _split_args(args, nums)
    y, back = pulled or pullback(lambda *ls: f(*rebuild(ls)), *leaves)
    out_leaves, out_tree = tree_flatten(y)
    rows: list[list[list]] = []   # [out leaf][row] -> input leaves
    for o, leaf in enumerate(out_leaves):
        zeros = [np.zeros(_shape(v), _dtype(v)) for v in out_leaves]
        per_row = []
        for k in range(int(np.prod(_shape(leaf), dtype=np.int64))):
            cts = list(zeros)
            cts[o] = _basis(leaf, k)
            per_row.append(back(tree_unflatten(out_tree, cts)))
        rows.append(per_row)
    blocks = [[_rows_to_block([r[i] for r in per_row], _shape(y), _shape(x))
               if is_differentiable(x) else None for i, x in enumerate(leaves)]
              for per_row, y in zip(rows, out_leaves)]
    return _assemble(blocks, out_tree, in_tree, single)


def jacfwd(f: Callable, argnums: int | Sequence[int] = 0, *,
           argnum: int | Sequence[int] | None = None) -> Callable:
    """The Jacobian function of ``f`` by forward mode: one `jvp` per input entry."""
    argnums = resolve_argnums(argnums, argnum)

    @functools.wraps(f)
    def jac(*args: Any) -> Any:
        nums, single = _normalize_argnums(argnums, len(args))
        return _forward_jacobian(f, args, nums, single)

    return jac


def jacrev(f: Callable, argnums: int | Sequence[int] = 0, *,
           argnum: int | Sequence[int] | None = None) -> Callable:
    """The Jacobian function of ``f`` by reverse mode: one pullback, one pass per output entry."""
    argnums = resolve_argnums(argnums, argnum)

    @functools.wraps(f)
    def jac(*args: Any) -> Any:
        nums, single = _normalize_argnums(argnums, len(args))
        return _reverse_jacobian(f, args, nums, single)

    return jac


def jacobian(f: Callable, *args: Any, argnums: int | Sequence[int] | None = None,
             argnum: int | Sequence[int] | None = None) -> Any:
    """Two forms. ``jacobian(f, *args)`` (Zygote): a tuple with the Jacobian with
    respect to each argument. ``jacobian(f)`` or ``jacobian(f, argnums=...)``
    (JAX, autograd): the Jacobian *function*, whose result for an ``int``
    ``argnums`` (default 0) is the one Jacobian, not a tuple.

    Uses reverse mode when the output has no more entries than the inputs,
    forward mode otherwise (the pullback computed to find the output size is
    reused in the first case).
    """
    if args and (argnums is not None or argnum is not None):
        raise TypeError("jacobian(f, *args) differentiates every argument; for some of them "
                        "use the function form jacobian(f, argnums=...)(*args)")
    if not args:
        chosen = resolve_argnums(0 if argnums is None else argnums, argnum)

        @functools.wraps(f)
        def jac(*args: Any) -> Any:
            return _jacobian(f, args, *_normalize_argnums(chosen, len(args)))

        return jac
    return _jacobian(f, args, tuple(range(len(args))), False)


def _jacobian(f: Callable, args: tuple, nums: tuple, single: bool) -> Any:
    rebuild, leaves, _ = _split_args(args, nums)
    n_in = sum(int(np.prod(_shape(x), dtype=np.int64)) for x in leaves if is_differentiable(x))
    pulled = pullback(lambda *ls: f(*rebuild(ls)), *leaves)
    n_out = sum(int(np.prod(_shape(y), dtype=np.int64)) for y in tree_flatten(pulled[0])[0])
    if n_out <= n_in:
        return _reverse_jacobian(f, args, nums, single, pulled)
    return _forward_jacobian(f, args, nums, single)


def hessian(f: Callable, *args: Any, argnums: int | Sequence[int] = 0,
            argnum: int | Sequence[int] | None = None) -> Any:
    """The Hessian of scalar ``f``, forward over reverse: ``hessian(f, x)`` at ``x``
    (a tree), or ``hessian(f)`` / ``hessian(f, argnums=...)``, the Hessian function
    (JAX, autograd)."""
    argnums = resolve_argnums(argnums, argnum)
    h = jacfwd(grad(f, argnums), argnums)
    return h(*args) if args else h


def hvp(f: Callable, x: Any, v: Any) -> Any:
    """``H(x) @ v`` for scalar ``f`` without forming ``H``: a `jvp` of the gradient."""
    return jvp(grad(f), (x,), (v,))[1]
