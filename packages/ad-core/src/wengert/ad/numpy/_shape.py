"""Shape manipulation, joining, splitting, padding and diagonals."""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from ..primitives import elementwise as ew
from ..primitives import structural as st
from ..primitives._helpers import on_device_of
from ._common import as_array, normalize_axes, normalize_axis, shape_of


def reshape(a: Any, newshape: Any = None, order: str = "C", *, shape: Any = None) -> Any:
    if order != "C":
        raise NotImplementedError("reshape supports only order='C'")
    new = shape if shape is not None else newshape
    a = as_array(a)
    if isinstance(new, (int, np.integer)):
        new = (int(new),)
    new = tuple(int(d) for d in new)
    size = math.prod(shape_of(a))
    if -1 in new:
        known = math.prod(d for d in new if d != -1)
        if new.count(-1) > 1 or known == 0 or size % known:
            raise ValueError(f"cannot reshape array of shape {shape_of(a)} into {new}")
        new = tuple(size // known if d == -1 else d for d in new)
    if math.prod(new) != size:
        raise ValueError(f"cannot reshape array of shape {shape_of(a)} into {new}")
    if new == shape_of(a):
        return a
    return st.reshape_p.bind(a, new_sizes=new)


def ravel(a: Any) -> Any:
    return reshape(a, (-1,))


def transpose(a: Any, axes: Any = None) -> Any:
    a = as_array(a)
    n = a.ndim
    perm = tuple(reversed(range(n))) if axes is None else tuple(
        normalize_axis(int(x), n) for x in axes)
    if sorted(perm) != list(range(n)):
        raise ValueError(f"axes {axes} are not a permutation of {n} dimensions")
    if perm == tuple(range(n)):
        return a
    return st.transpose_p.bind(a, permutation=perm)


def permute_dims(a: Any, axes: Any) -> Any:
    return transpose(a, axes)


def matrix_transpose(x: Any) -> Any:
    return swapaxes(x, -1, -2)


def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    a = as_array(a)
    perm = list(range(a.ndim))
    i, j = normalize_axis(axis1, a.ndim), normalize_axis(axis2, a.ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    a = as_array(a)
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [normalize_axis(s, a.ndim) for s in src]
    dst = [normalize_axis(d, a.ndim) for d in dst]
    order = [i for i in range(a.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def expand_dims(a: Any, axis: Any) -> Any:
    a = as_array(a)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out_ndim = a.ndim + len(axes)
    axes = sorted(normalize_axis(x, out_ndim) for x in axes)
    shape = list(shape_of(a))
    for x in axes:
        shape.insert(x, 1)
    return reshape(a, shape)


def squeeze(a: Any, axis: Any = None) -> Any:
    a = as_array(a)
    shape = shape_of(a)
    if axis is None:
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    else:
        axes = normalize_axes(axis, len(shape))
        for x in axes:
            if shape[x] != 1:
                raise ValueError(f"cannot squeeze axis {x} of size {shape[x]} (shape {shape})")
    return reshape(a, tuple(d for i, d in enumerate(shape) if i not in axes))


def broadcast_to(a: Any, shape: Any) -> Any:
    a = as_array(a)
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    src = shape_of(a)
    if src == shape:
        return a
    np.broadcast_shapes(src, shape)  # raises numpy's own message on mismatch
    lead = len(shape) - len(src)
    if lead < 0 or builtins.any(d != 1 and d != shape[i + lead] for i, d in enumerate(src)):
        raise ValueError(f"cannot broadcast an array of shape {src} to {shape}")
    return st.broadcast_in_dim_p.bind(a, shape=shape,
                                      broadcast_dimensions=tuple(range(lead, len(shape))))


def broadcast_arrays(*args: Any) -> list:
    shape = np.broadcast_shapes(*(shape_of(a) for a in args))
    return [broadcast_to(a, shape) for a in args]


def atleast_1d(a: Any) -> Any:
    a = as_array(a)
    return reshape(a, (1,)) if a.ndim == 0 else a


def atleast_2d(a: Any) -> Any:
    a = as_array(a)
    return reshape(a, (1,) * (2 - a.ndim) + shape_of(a)) if a.ndim < 2 else a


def _cast(arrays: list, dtype: Any) -> list:
    """NumPy 2's ``dtype=`` of the joining functions (``casting`` is accepted, as any
    cast of a traced value is explicit here)."""
    if dtype is None:
        return arrays
    from ._creation import astype

    return [astype(a, dtype) for a in arrays]


def concatenate(arrays: Any, axis: int | None = 0, *, dtype: Any = None,
                casting: str = "same_kind") -> Any:
    arrays = _cast([as_array(a) for a in arrays], dtype)
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    s0 = tuple(shape_of(arrays[0]))
    axis = normalize_axis(axis, len(s0))
    outside = s0[:axis] + s0[axis + 1:]
    for a in arrays[1:]:
        s1 = tuple(shape_of(a))
        if len(s1) != len(s0) or s1[:axis] + s1[axis + 1:] != outside:
            raise ValueError(f"concatenate: shapes {s0} and {s1} differ outside axis {axis}")
    if len(arrays) == 1:
        return arrays[0]
    return st.concatenate_p.bind(*arrays, dimension=axis)


def stack(arrays: Any, axis: int = 0, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    """One shape check and one reshape per array, then one concatenation: a
    recurrent layer stacks a sequence's steps every call, where the generic
    `expand_dims` and `concatenate` checks per array would cost more than the copy."""
    arrays = _cast([as_array(a) for a in arrays], dtype)
    if not arrays:
        raise ValueError("stack: need at least one array to stack")
    shape = tuple(shape_of(arrays[0]))
    for a in arrays[1:]:
        if tuple(shape_of(a)) != shape:
            raise ValueError(f"stack: all arrays must have the same shape, got {shape} and "
                             f"{tuple(shape_of(a))}")
    axis = normalize_axis(axis, len(shape) + 1)
    new = shape[:axis] + (1,) + shape[axis:]
    parts = [st.reshape_p.bind(a, new_sizes=new) for a in arrays]
    return parts[0] if len(parts) == 1 else st.concatenate_p.bind(*parts, dimension=axis)


def hstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    arrays = _cast([atleast_1d(a) for a in tup], dtype)
    return concatenate(arrays, axis=0 if arrays[0].ndim == 1 else 1)


def vstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    return concatenate(_cast([atleast_2d(a) for a in tup], dtype), axis=0)


row_stack = vstack
concat = concatenate  # the array-API names


def dstack(tup: Any) -> Any:
    return concatenate([atleast_3d(a) for a in tup], axis=2)


def split(a: Any, indices_or_sections: Any, axis: int = 0) -> list:
    a = as_array(a)
    axis = normalize_axis(axis, a.ndim)
    n = shape_of(a)[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if n % indices_or_sections:
            raise ValueError(f"array split does not result in an equal division: {n} into "
                             f"{indices_or_sections}")
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step))
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    pieces = [slice(lo, hi).indices(n)[:2] for lo, hi in zip(bounds[:-1], bounds[1:])]
    if all(hi >= lo for lo, hi in pieces) and all(
            later[0] == earlier[1] for earlier, later in zip(pieces, pieces[1:])):
        return _pieces(a, [slice(lo, hi) for lo, hi in pieces], axis, concatenate)
    lead = (slice(None),) * axis  # overlapping pieces: each its own slice
    return [a[lead + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:])]


def unstack(x: Any, /, *, axis: int = 0) -> list:
    """NumPy 2.1's ``unstack``: the slices of ``x`` along ``axis``, that axis dropped;
    their cotangents are stacked into one buffer (see `split`)."""
    x = as_array(x)
    axis = normalize_axis(axis, x.ndim)
    return _pieces(x, list(range(shape_of(x)[axis])), axis, stack)


def _pieces(a: Any, items: list, axis: int, join: Any) -> list:
    """``a[..., item]`` along ``axis`` for each item (slices that tile the axis, or
    each index), with one pullback that joins all the pieces' cotangents into one
    buffer: slicing piece by piece would send back a full-size, mostly zero
    gradient per piece (a recurrent loop over time steps, a split into gates)."""
    from .._api import adjoint

    lead = (slice(None),) * axis

    @adjoint
    def pieces(a: Any) -> tuple:
        return (tuple(a[lead + (item,)] for item in items),
                lambda cts: (join(list(cts), axis=axis),))

    return list(pieces(a))


def _split_along(a: Any, indices_or_sections: Any, axis: int, least_ndim: int, name: str) -> list:
    a = as_array(a)
    if a.ndim < least_ndim:
        raise ValueError(f"{name} only works on arrays of {least_ndim} or more dimensions")
    return split(a, indices_or_sections, axis)


def vsplit(ary: Any, indices_or_sections: Any) -> list:
    return _split_along(ary, indices_or_sections, 0, 2, "vsplit")


def hsplit(ary: Any, indices_or_sections: Any) -> list:
    a = as_array(ary)
    return _split_along(a, indices_or_sections, 1 if a.ndim > 1 else 0, 1, "hsplit")


def dsplit(ary: Any, indices_or_sections: Any) -> list:
    return _split_along(ary, indices_or_sections, 2, 3, "dsplit")


def rot90(m: Any, k: int = 1, axes: tuple = (0, 1)) -> Any:
    """Rotate by 90 degrees ``k`` times in the plane of ``axes`` (first towards second)."""
    m = as_array(m)
    a0, a1 = (normalize_axis(int(x), m.ndim) for x in axes)
    if a0 == a1:
        raise ValueError("rot90: axes must be different")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(m, (a0, a1))
    perm = list(range(m.ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    return transpose(flip(m, a1), perm) if k == 1 else flip(transpose(m, perm), a1)


def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    """Move ``axis`` to before position ``start`` (the legacy form of ``moveaxis``)."""
    a = as_array(a)
    n = a.ndim
    axis = normalize_axis(axis, n)
    if start < 0:
        start += n
    if not 0 <= start <= n:
        raise np.exceptions.AxisError(f"rollaxis: start {start} is out of bounds for an "
                                      f"array of dimension {n}")
    if axis < start:
        start -= 1
    return moveaxis(a, axis, start) if axis != start else a


def tile(a: Any, reps: Any) -> Any:
    a = as_array(a)
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    ndim = builtins.max(a.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    a = reshape(a, (1,) * (ndim - a.ndim) + shape_of(a))
    shape = shape_of(a)
    # Broadcast a new axis in front of each axis, then merge the pairs.
    expanded = reshape(a, tuple(x for d in shape for x in (1, d)))
    big = broadcast_to(expanded, tuple(x for r, d in zip(reps, shape) for x in (r, d)))
    return reshape(big, tuple(r * d for r, d in zip(reps, shape)))


def repeat(a: Any, repeats: int, axis: int | None = None) -> Any:
    a = as_array(a)
    if axis is None:
        a, axis = ravel(a), 0
    axis = normalize_axis(axis, a.ndim)
    if not isinstance(repeats, (int, np.integer)):
        index = np.repeat(np.arange(shape_of(a)[axis]), repeats)
        return take(a, index, axis=axis)
    shape = shape_of(a)
    expanded = expand_dims(a, axis + 1)
    big = broadcast_to(expanded, shape[:axis + 1] + (int(repeats),) + shape[axis + 1:])
    return reshape(big, shape[:axis] + (shape[axis] * int(repeats),) + shape[axis + 1:])


def take(a: Any, indices: Any, axis: int | None = None) -> Any:
    a = as_array(a)
    if axis is None:
        a, axis = ravel(a), 0
    axis = normalize_axis(axis, a.ndim)
    return a[(slice(None),) * axis + (indices,)]


def pad(array: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0) -> Any:
    if mode != "constant":
        raise NotImplementedError(
            f"pad(mode={mode!r}) is not differentiable here yet; only mode='constant' is")
    a = as_array(array)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (a.ndim, 2))
    config = tuple((int(lo), int(hi), 0) for lo, hi in widths)
    return st.pad_p.bind(a, constant_values, padding_config=config)


def flip(m: Any, axis: Any = None) -> Any:
    m = as_array(m)
    return st.rev_p.bind(m, dimensions=normalize_axes(axis, m.ndim))


def fliplr(m: Any) -> Any:
    return flip(m, 1)


def flipud(m: Any) -> Any:
    return flip(m, 0)


def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    a = as_array(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), shape_of(a))
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for s, ax in zip(shifts, axes):
        ax = normalize_axis(ax, a.ndim)
        n = shape_of(a)[ax]
        if n == 0:
            continue
        s %= n
        if s:
            lead = (slice(None),) * ax
            a = concatenate([a[lead + (slice(n - s, None),)], a[lead + (slice(0, n - s),)]],
                            axis=ax)
    return a


def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    a = moveaxis(as_array(a), (axis1, axis2), (-2, -1))
    n, m = shape_of(a)[-2:]
    rows = on_device_of(a, np.arange(builtins.max(0, -offset), builtins.min(n, m - offset)))
    return a[..., rows, rows + offset]


def diag(v: Any, k: int = 0) -> Any:
    v = as_array(v)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError("diag: input must be 1-d or 2-d")
    n = shape_of(v)[0] + builtins.abs(k)
    rows = on_device_of(v, np.arange(shape_of(v)[0]) + builtins.max(-k, 0))
    out = on_device_of(v, np.zeros((n, n), v.dtype))
    return st.scatter_add_p.bind(out, v, rows, rows + k,
                                 spec=(("array",), ("array",)))


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    from ._reductions import sum

    return sum(diagonal(a, offset, axis1, axis2), axis=-1)


def _tri_mask(shape: tuple, k: int, lower: bool) -> np.ndarray:
    n, m = shape[-2:]
    return np.tri(n, m, k, dtype=bool) if lower else ~np.tri(n, m, k - 1, dtype=bool)


def tril(m: Any, k: int = 0) -> Any:
    m = as_array(m)
    return ew.select_p.bind(on_device_of(m, _tri_mask(shape_of(m), k, True)), m,
                            np.dtype(m.dtype).type(0))


def triu(m: Any, k: int = 0) -> Any:
    m = as_array(m)
    return ew.select_p.bind(on_device_of(m, _tri_mask(shape_of(m), k, False)), m,
                            np.dtype(m.dtype).type(0))


def diff(a: Any, n: int = 1, axis: int = -1) -> Any:
    """n-th forward difference along ``axis``."""
    a = as_array(a)
    axis = normalize_axis(axis, a.ndim)
    lead = (slice(None),) * axis
    for _ in range(n):
        a = a[lead + (slice(1, None),)] - a[lead + (slice(None, -1),)]
    return a


def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """Second-order central differences inside, one-sided (first or second order) at the
    edges, as NumPy; spacings are scalars or coordinate arrays (either may be traced)."""
    f = as_array(f)
    axes = normalize_axes(axis, f.ndim) if axis is not None else tuple(range(f.ndim))
    if isinstance(axis, (int, np.integer)):
        axes = (normalize_axis(int(axis), f.ndim),)
    if len(varargs) == 0:
        spacings = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacings = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacings = list(varargs)
    else:
        raise TypeError(f"gradient: give one spacing, or one per axis ({len(axes)})")
    if edge_order not in (1, 2):
        raise ValueError("gradient: edge_order must be 1 or 2")
    out = [_gradient_along(f, ax, h, edge_order) for ax, h in zip(axes, spacings)]
    return out[0] if len(out) == 1 else out


def _gradient_along(f: Any, axis: int, h: Any, edge_order: int) -> Any:
    n = shape_of(f)[axis]
    if n < edge_order + 1:
        raise ValueError(f"gradient: an axis of size {n} is too short for edge_order "
                         f"{edge_order}; it needs at least {edge_order + 1} samples")
    lead = (slice(None),) * axis
    trail = (None,) * (f.ndim - axis - 1)

    def at(lo: int | None, hi: int | None) -> Any:
        return f[lead + (slice(lo, hi),)]

    if np.ndim(h) == 0:  # uniform spacing
        inner = (at(2, None) - at(None, -2)) / (2.0 * h)
        if edge_order == 1:
            first = (at(1, 2) - at(0, 1)) / h
            last = (at(-1, None) - at(-2, -1)) / h
        else:
            first = (-1.5 * at(0, 1) + 2.0 * at(1, 2) - 0.5 * at(2, 3)) / h
            last = (0.5 * at(-3, -2) - 2.0 * at(-2, -1) + 1.5 * at(-1, None)) / h
        return concatenate([first, inner, last], axis=axis)
    x = as_array(h)
    if x.ndim != 1 or shape_of(x)[0] != n:
        raise ValueError("gradient: coordinate arrays must be 1-d and match the axis length")
    dx = diff(x)
    dx1, dx2 = dx[:-1][(Ellipsis,) + trail], dx[1:][(Ellipsis,) + trail]
    a = -dx2 / (dx1 * (dx1 + dx2))
    b = (dx2 - dx1) / (dx1 * dx2)
    c = dx1 / (dx2 * (dx1 + dx2))
    inner = a * at(None, -2) + b * at(1, -1) + c * at(2, None)
    if edge_order == 1:
        first = (at(1, 2) - at(0, 1)) / dx[0]
        last = (at(-1, None) - at(-2, -1)) / dx[-1]
    else:
        d1, d2 = dx[0], dx[1]
        first = (-(2.0 * d1 + d2) / (d1 * (d1 + d2)) * at(0, 1) + (d1 + d2) / (d1 * d2)
                 * at(1, 2) - d1 / (d2 * (d1 + d2)) * at(2, 3))
        d1, d2 = dx[-2], dx[-1]
        last = (d2 / (d1 * (d1 + d2)) * at(-3, -2) - (d2 + d1) / (d1 * d2) * at(-2, -1)
                + (2.0 * d2 + d1) / (d2 * (d1 + d2)) * at(-1, None))
    return concatenate([first, inner, last], axis=axis)


def copy(a: Any) -> Any:
    """A new handle: writing into the copy leaves ``a`` alone."""
    a = as_array(a)
    return a.copy()


def append(arr: Any, values: Any, axis: int | None = None) -> Any:
    if axis is None:
        return concatenate([ravel(arr), ravel(values)])
    return concatenate([arr, values], axis=axis)


def column_stack(tup: Any) -> Any:
    arrays = [as_array(a) for a in tup]
    return concatenate([reshape(a, (-1, 1)) if a.ndim < 2 else a for a in arrays], axis=1)


def atleast_3d(a: Any) -> Any:
    a = as_array(a)
    shape = shape_of(a)
    if a.ndim == 0:
        return reshape(a, (1, 1, 1))
    if a.ndim == 1:
        return reshape(a, (1,) + shape + (1,))
    return reshape(a, shape + (1,)) if a.ndim == 2 else a


def array_split(a: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """``split`` that allows unequal sections (the first ones are one longer)."""
    if not isinstance(indices_or_sections, (int, np.integer)):
        return split(a, indices_or_sections, axis)
    n = shape_of(as_array(a))[normalize_axis(axis, as_array(a).ndim)]
    size, extra = divmod(n, int(indices_or_sections))
    bounds = np.cumsum([size + 1] * extra + [size] * (int(indices_or_sections) - extra))
    return split(a, [int(b) for b in bounds[:-1]], axis)


def meshgrid(*xi: Any, indexing: str = "xy", sparse: bool = False) -> list:
    n = len(xi)
    vectors = [ravel(as_array(x)) for x in xi]
    shapes = [[1] * n for _ in vectors]
    for k, v in enumerate(vectors):
        shapes[k][k] = shape_of(v)[0]
    if indexing == "xy" and n > 1:
        for s in shapes:
            s[0], s[1] = s[1], s[0]
    grids = [reshape(v, tuple(s)) for v, s in zip(vectors, shapes)]
    if sparse:
        return grids
    return broadcast_arrays(*grids)
