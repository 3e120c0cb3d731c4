"""`dynamic_slice` and `dynamic_update_slice`: XLA's indexing with run-time
start positions and static sizes.

They are what staged loops use to read and write per-iteration stacks (the
carries a staged `while_loop` stores for its VJP), because a start index that
is a staged value cannot be a Python slice bound.

Contract (as XLA): start indices are integer scalars, one per axis of the
operand, and are *clamped* so that the window lies inside the operand.

* ``dynamic_slice(operand, *starts, slice_sizes)`` -> ``operand[s0:s0+n0, ...]``
* ``dynamic_update_slice(operand, update, *starts)`` -> a copy of ``operand``
  with the window at ``starts`` replaced by ``update`` (same dtype).

Both are linear in their array operands: each is defined by its transpose, the
other primitive (`def_linear`).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .._core import Aval, Primitive, Tracer
from ._helpers import def_linear, shape_of, zeros


def _window(shape: tuple, starts: tuple, sizes: tuple) -> tuple:
    """The clamped window as Python slices (XLA semantics)."""
    if len(starts) != len(shape):
        raise ValueError(f"dynamic indexing of an array of rank {len(shape)} needs "
                         f"{len(shape)} start indices, got {len(starts)}")
    return tuple(slice(s, s + n) for s, n in
                 ((min(max(int(s), 0), d - n), n) for s, d, n in zip(starts, shape, sizes)))


def _dynamic_slice_impl(x, *starts, slice_sizes):
    # A copy, not a view: loops may later update the operand in place.
    return x[_window(x.shape, starts, slice_sizes)].copy()


def _dynamic_slice_shape(x, *starts, slice_sizes):
    if len(slice_sizes) != x.ndim or any(n > d or n < 0 for n, d in zip(slice_sizes, x.shape)):
        raise ValueError(f"dynamic_slice: slice sizes {slice_sizes} do not fit an operand of "
                         f"shape {x.shape}")
    return Aval(tuple(slice_sizes), x.dtype)


def _dynamic_slice_transpose(i, g, x, *starts, slice_sizes):
    return dynamic_update_slice_p.bind(zeros_on(g, shape_of(x), g.dtype), g, *starts)


dynamic_slice_p = def_linear(Primitive("dynamic_slice", _dynamic_slice_impl, keep_args=False),
                             _dynamic_slice_transpose, arity=None, shape=_dynamic_slice_shape)


def _dynamic_update_slice_impl(x, update, *starts):
    out = x.copy()
    out[_window(x.shape, starts, shape_of(update))] = update
    return out


def update_in_place(x: Any, update: Any, *starts: Any) -> Any:
    """`dynamic_update_slice` that writes into ``x``: for loops that own ``x``'s buffer."""
    x[_window(x.shape, starts, shape_of(update))] = update
    return x


def _dynamic_update_slice_shape(x, update, *starts):
    if x.dtype != update.dtype or x.ndim != update.ndim or any(
            n > d for n, d in zip(update.shape, x.shape)):
        raise ValueError(f"dynamic_update_slice: an update {update} does not fit an operand "
                         f"{x} (same dtype and rank, no larger)")
    return Aval(x.shape, x.dtype)


def _dynamic_update_slice_transpose(i, g, x, update, *starts):
    if i == 0:
        return dynamic_update_slice_p.bind(g, zeros_on(g, shape_of(update), g.dtype), *starts)
    return dynamic_slice_p.bind(g, *starts, slice_sizes=shape_of(update))


dynamic_update_slice_p = def_linear(
    Primitive("dynamic_update_slice", _dynamic_update_slice_impl, keep_args=False),
    _dynamic_update_slice_transpose, linear=(0, 1), jointly=True, arity=None,
    shape=_dynamic_update_slice_shape,
    make_zeros=lambda shape, dtype, like: zeros_on(like, shape, dtype))


def dynamic_slice(x: Any, starts: tuple, slice_sizes: tuple) -> Any:
    """``x[starts[0]:starts[0]+slice_sizes[0], ...]`` with clamped run-time starts."""
    return dynamic_slice_p.bind(x, *starts, slice_sizes=tuple(int(n) for n in slice_sizes))


def dynamic_update_slice(x: Any, update: Any, starts: tuple) -> Any:
    """A copy of ``x`` with ``update`` written at the clamped run-time ``starts``."""
    return dynamic_update_slice_p.bind(x, update, *starts)


def xp_of(*xs: Any) -> Any:
    """The array module of the ``xs``: cupy if any is a CuPy array, numpy otherwise."""
    for x in xs:
        if type(x).__module__.startswith("cupy"):
            return sys.modules["cupy"]
    return np


def zeros_on(ref: Any, shape: tuple, dtype: Any) -> Any:
    """Zeros on the array backend of ``ref`` (NumPy or CuPy), also when ``ref`` is only
    known at run time: then derived from it by a comparison that is always false."""
    from .elementwise import convert_element_type_p, lt_p
    from .structural import broadcast_in_dim_p, reshape_p

    if not isinstance(ref, Tracer):
        return zeros(shape, dtype) if xp_of(ref) is np else xp_of(ref).zeros(shape, dtype)
    ref_aval = ref.aval
    if ref_aval.size == 0:
        return zeros(shape, dtype)
    first = ref if not ref_aval.shape else reshape_p.bind(dynamic_slice(
        ref, (0,) * ref_aval.ndim, (1,) * ref_aval.ndim), new_sizes=())
    zero = convert_element_type_p.bind(lt_p.bind(first, first), new_dtype=np.dtype(dtype))
    return broadcast_in_dim_p.bind(zero, shape=tuple(shape), broadcast_dimensions=())


def index_in_dim(x: Any, i: Any) -> Any:
    """Row ``i`` (run-time) of ``x`` along axis 0, without the axis."""
    from .structural import reshape_p

    shape = shape_of(x)
    row = dynamic_slice(x, (i,) + (0,) * (len(shape) - 1), (1,) + tuple(shape[1:]))
    return reshape_p.bind(row, new_sizes=tuple(shape[1:]))


def update_index_in_dim(x: Any, row: Any, i: Any) -> Any:
    """``x`` with row ``i`` (run-time) along axis 0 replaced by ``row``."""
    from .structural import reshape_p

    shape = shape_of(x)
    row = reshape_p.bind(row, new_sizes=(1,) + tuple(shape[1:]))
    return dynamic_update_slice(x, row, (i,) + (0,) * (len(shape) - 1))
