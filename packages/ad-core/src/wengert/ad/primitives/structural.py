"""Structural primitives: shapes, broadcasting, indexing (read and write),
concatenation, padding, reversal. All are linear: each is defined by its
transpose rule alone (`def_linear`), its JVP being the primitive itself.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .._core import Aval, Primitive, Tracer
from ._helpers import (def_linear, dtype_key, is_complex, is_cupy, on_device_of, shape_of,
                       to_operand, zeros)


# ---- reshape / transpose / broadcast -------------------------------------------------
reshape_p = def_linear(
    Primitive("reshape", lambda x, new_sizes: np.reshape(x, new_sizes), keep_args=False),
    lambda i, ct, x, new_sizes: reshape_p.bind(ct, new_sizes=shape_of(x)),
    shape=lambda x, new_sizes: Aval(new_sizes, x.dtype))

transpose_p = def_linear(
    Primitive("transpose", lambda x, permutation: np.transpose(x, permutation),
              keep_args=False),
    lambda i, ct, x, permutation: transpose_p.bind(
        ct, permutation=tuple(int(p) for p in np.argsort(permutation))),
    shape=lambda x, permutation: Aval(tuple(x.shape[i] for i in permutation), x.dtype))


def _broadcast_in_dim_impl(x, shape, broadcast_dimensions):
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = np.shape(x)[i]
    return np.broadcast_to(np.reshape(x, expanded), shape)


def _broadcast_in_dim_transpose(i, g, x, shape, broadcast_dimensions):
    from .reductions import reduce_sum_p

    xshape = shape_of(x)
    kept = set(broadcast_dimensions)
    axes = tuple(d for d in range(len(shape)) if d not in kept) + tuple(
        d for i, d in enumerate(broadcast_dimensions) if xshape[i] == 1 and shape[d] != 1)
    if axes:
        g = reduce_sum_p.bind(g, axes=tuple(sorted(axes)))
    if shape_of(g) != xshape:
        g = reshape_p.bind(g, new_sizes=xshape)
    return g if is_complex(x) or not is_complex(g) else to_operand(g, x)


broadcast_in_dim_p = def_linear(
    Primitive("broadcast_in_dim", _broadcast_in_dim_impl, keep_args=False),
    _broadcast_in_dim_transpose,
    shape=lambda x, shape, broadcast_dimensions: Aval(shape, x.dtype))

rev_p = def_linear(
    Primitive("rev", lambda x, dimensions: np.flip(x, dimensions), keep_args=False),
    lambda i, ct, x, dimensions: rev_p.bind(ct, dimensions=dimensions),
    shape=lambda x, dimensions: Aval(x.shape, x.dtype))


# ---- indexing: numpy semantics, static index structure + dynamic index arrays -----------
def encode_index(index: Any) -> tuple[tuple, list]:
    """Split a NumPy index into a hashable static spec and its array parts."""
    items = index if isinstance(index, tuple) else (index,)
    spec = []
    arrays = []
    for item in items:
        if item is None:
            spec.append(("newaxis",))
        elif item is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(item, slice):
            spec.append(("slice",) + tuple(_static_int(v) for v in
                                           (item.start, item.stop, item.step)))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            spec.append(("int", int(item)))
        else:
            arr = item if isinstance(item, Tracer) or hasattr(item, "__array_namespace__") \
                or is_cupy(item) else np.asarray(item)
            kind = np.dtype(arr.dtype).kind
            if kind not in "iub":
                raise IndexError(
                    f"arrays used as indices must be integers or booleans, got {arr.dtype}; "
                    "convert with .astype(int)")
            spec.append(("array",))
            arrays.append(arr)
    return tuple(spec), arrays


def _static_int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, Tracer):
        return int(v.concrete_value("a slice bound"))
    return int(v)


def decode_index(spec: tuple, arrays) -> tuple:
    out = []
    it = iter(arrays)
    for item in spec:
        kind = item[0]
        if kind == "slice":
            out.append(slice(*item[1:]))
        elif kind == "int":
            out.append(item[1])
        elif kind == "newaxis":
            out.append(None)
        elif kind == "ellipsis":
            out.append(Ellipsis)
        else:
            out.append(next(it))
    return tuple(out)


def _getitem_impl(x, *arrays, spec):
    return x[decode_index(spec, arrays)]


def _getitem_shape(x, *arrays, spec):
    if any(a.dtype == np.bool_ for a in arrays):
        raise TypeError(
            "boolean-mask indexing gives a data-dependent shape, which cannot be staged; "
            "use wengert.ad.numpy.where(mask, x, 0) instead")
    dummy = np.broadcast_to(np.zeros((), x.dtype), x.shape)
    index_arrays = [np.zeros(a.shape, a.dtype) for a in arrays]
    return Aval(dummy[decode_index(spec, index_arrays)].shape, x.dtype)


def _getitem_transpose(i, g, x, *arrays, spec):
    if is_complex(g) and not is_complex(x):
        from .elementwise import real_p

        g = real_p.bind(g)
    return scatter_add_p.bind(zeros(shape_of(x), g.dtype, g), g, *arrays, spec=spec)


getitem_p = def_linear(Primitive("getitem", _getitem_impl, keep_args=False), _getitem_transpose,
                       arity=None, shape=_getitem_shape)


def _has_arrays(spec: tuple) -> bool:
    return any(item[0] == "array" for item in spec)


def _scatter_add_impl(operand, updates, *arrays, spec):
    written_dtype(operand.dtype, updates)
    out = operand.copy()
    index = decode_index(spec, arrays)
    if not _has_arrays(spec):
        out[index] += updates
    elif type(out) is np.ndarray:
        if not _add_rows(out, index, updates):
            np.add.at(out, index, updates)
    else:  # cupy: its scatter_add handles repeated indices
        sys.modules["cupyx"].scatter_add(out, index, updates)
    return out


def _add_rows(out: np.ndarray, index: tuple, updates: Any) -> bool:
    """``out[rows] += updates`` with repeated ``rows`` (one integer array on the first
    axis: an embedding's gradient), as a sparse matrix product summing each row's
    updates in their order: several times faster than ``np.add.at``, and on a zero
    ``out`` (every gather's pullback) bitwise the same. ``False``: not this case."""
    rows = index[0]
    if (out.dtype not in (np.float32, np.float64) or type(rows) is not np.ndarray
            or rows.dtype.kind not in "iu" or np.shape(updates) != rows.shape + out.shape[1:]
            or np.size(updates) < _ADD_ROWS_MIN or updates.dtype != out.dtype
            or any(i != slice(None) for i in index[1:])):
        return False
    rows = rows.ravel()
    n = out.shape[0]
    if rows.min() < -n or rows.max() >= n:
        return False  # np.add.at raises the IndexError
    import scipy.sparse

    unique, group = np.unique(np.where(rows < 0, rows + n, rows), return_inverse=True)
    sums = scipy.sparse.csr_matrix(
        (np.ones(rows.size, out.dtype), (group.ravel(), np.arange(rows.size))),
        shape=(unique.size, rows.size)) @ updates.reshape(rows.size, -1)
    out[unique] += sums.reshape((unique.size,) + out.shape[1:])
    return True


_ADD_ROWS_MIN = 4096  # below this, building the sparse matrix costs more than np.add.at

_WEAK_KINDS = {bool: np.bool_, int: np.int_, float: np.float64, complex: np.complex128}


def written_dtype(operand_dtype: Any, updates: Any) -> np.dtype:
    """An indexed write keeps its operand's dtype, as NumPy's ``a[i] = v`` and JAX's
    ``a.at[i].set(v)`` do: float64 values written into a float32 array are rounded to it.
    A write that would change the values' kind (float into an integer array, complex into
    a real one) is refused: NumPy truncates silently, and a derivative would be dropped."""
    target = np.dtype(operand_dtype)
    kind = dtype_key(updates)  # a Python number is weak: only its kind counts
    source = np.dtype(_WEAK_KINDS[kind] if isinstance(kind, type) else kind)
    if np.can_cast(source, target, casting="same_kind") or (
            kind in (bool, int) and target.kind in "biu"):
        return target
    raise TypeError(
        f"writing {source} values into an array of dtype {target} (a[i] = v, a[i] += v, "
        f"a.at[i].set/add) would cast them to {target}, losing "
        f"{'their imaginary part' if source.kind == 'c' else 'their fractional part'} and any "
        "derivative; NumPy does this silently. Convert explicitly: "
        "a = a.astype(np.result_type(a, v)) before the write, or write v.astype(a.dtype)")


def _operand_shape(operand, updates, *arrays, spec):
    return Aval(operand.shape, written_dtype(operand.dtype, updates))


def _landed(operand, arrays, spec):
    """Mask over the indexed region: which updates land. With repeated integer indices
    NumPy assigns in order, so only the last update to an element survives."""
    region = _getitem_shape(operand, *arrays, spec=spec).shape
    ids = on_device_of(arrays[0], np.arange(1, int(np.prod(region, dtype=np.int64)) + 1)
                       .reshape(region))
    owners = index_update_p.bind(on_device_of(arrays[0], np.zeros(shape_of(operand), ids.dtype)),
                                 ids, *arrays, spec=spec)
    from .elementwise import eq_p

    return eq_p.bind(getitem_p.bind(owners, *arrays, spec=spec), ids)


def _index_transpose(i, g, operand, updates, *arrays, spec, replaces: bool):
    if i == 0:
        return index_update_p.bind(g, 0, *arrays, spec=spec) if replaces else g
    picked = getitem_p.bind(g, *arrays, spec=spec)
    if replaces and any(np.dtype(a.dtype).kind in "iu" for a in arrays):
        from .elementwise import select_p

        picked = select_p.bind(_landed(operand, arrays, spec), picked,
                               np.dtype(picked.dtype).type(0))
    return to_operand(picked, updates)


def _def_index_rules(prim: Primitive, replaces: bool) -> Primitive:
    """Rules of an indexed write, linear in (operand, updates) jointly; ``replaces``: the
    write replaces (not adds to) the entries."""
    return def_linear(prim, lambda i, *a, spec: _index_transpose(i, *a, spec=spec,
                                                                 replaces=replaces),
                      linear=(0, 1), jointly=True, arity=None, shape=_operand_shape)


scatter_add_p = _def_index_rules(
    Primitive("scatter_add", _scatter_add_impl, keep_args=False), replaces=False)


def _index_update_impl(operand, updates, *arrays, spec):
    written_dtype(operand.dtype, updates)
    out = operand.copy()
    out[decode_index(spec, arrays)] = updates
    return out


index_update_p = _def_index_rules(
    Primitive("index_update", _index_update_impl, keep_args=False), replaces=True)


# ---- concatenate / pad ---------------------------------------------------------------
def _concat_transpose(i, g, *xs, dimension):
    start = sum(shape_of(x)[dimension] for x in xs[:i])
    stop = start + shape_of(xs[i])[dimension]
    spec = tuple(("slice", None, None, None) for _ in range(dimension)) + (
        ("slice", start, stop, None),)
    return to_operand(getitem_p.bind(g, spec=spec), xs[i])


def _concat_shape(*xs, dimension):
    first = xs[0].shape
    size = sum(x.shape[dimension] for x in xs)
    shape = first[:dimension] + (size,) + first[dimension + 1:]
    return Aval(shape, np.result_type(*(x.dtype for x in xs)))


concatenate_p = def_linear(
    Primitive("concatenate", lambda *xs, dimension: np.concatenate(xs, dimension),
              keep_args=False),
    _concat_transpose, linear=None, jointly=True, arity=None, shape=_concat_shape)


def _pad_geometry(shape, padding_config):
    """Per axis: output size and the strided slice of the output that holds x."""
    out_shape = []
    interior_slices = []
    for n, (lo, hi, interior) in zip(shape, padding_config):
        core = n + max(n - 1, 0) * interior
        out_shape.append(lo + core + hi)
        interior_slices.append((lo, interior + 1, n))
    return tuple(out_shape), interior_slices


def _pad_impl(x, padding_value, padding_config):
    shape = np.shape(x)
    # Pad with non-negative margins first, then crop negative ones (XLA semantics).
    grown = [(max(lo, 0), max(hi, 0), interior) for lo, hi, interior in padding_config]
    out_shape, places = _pad_geometry(shape, grown)
    out = np.full_like(x, padding_value, shape=out_shape)
    out[tuple(slice(lo, lo + step * (n - 1) + 1 if n else lo, step)
              for lo, step, n in places)] = x
    crop = tuple(slice(-min(lo, 0), size + min(hi, 0))
                 for (lo, hi, _), size in zip(padding_config, out_shape))
    return out[crop]


def _pad_spec(shape, padding_config):
    spec = []
    for n, (lo, _, interior) in zip(shape, padding_config):
        step = interior + 1
        spec.append(("slice", lo, lo + step * (n - 1) + 1 if n else lo, step))
    return tuple(spec)


def _pad_transpose(i, g, x, padding_value, padding_config):
    return (_pad_transpose_x if i == 0 else _pad_transpose_value)(g, x, padding_value,
                                                                  padding_config)


def _pad_transpose_x(g, x, padding_value, padding_config):
    # Un-crop negative margins with zeros, then take the strided interior.
    positive = [(max(-lo, 0), max(-hi, 0), 0) for lo, hi, _ in padding_config]
    if any(lo or hi for lo, hi, _ in positive):
        g = pad_p.bind(g, 0.0, padding_config=tuple(positive))
    grown = [(max(lo, 0), max(hi, 0), interior) for lo, hi, interior in padding_config]
    return getitem_p.bind(g, spec=_pad_spec(shape_of(x), grown))


def _pad_transpose_value(g, x, padding_value, padding_config):
    from .reductions import reduce_sum_p

    all_axes = tuple(range(len(shape_of(g))))
    total = reduce_sum_p.bind(g, axes=all_axes)
    inner = _pad_transpose_x(g, x, padding_value, padding_config)
    return to_operand(total - reduce_sum_p.bind(inner, axes=all_axes), padding_value)


def _pad_shape(x, padding_value, padding_config):
    shape = tuple(lo + n + max(n - 1, 0) * interior + hi
                  for n, (lo, hi, interior) in zip(x.shape, padding_config))
    return Aval(shape, x.dtype)


pad_p = def_linear(Primitive("pad", _pad_impl, keep_args=False), _pad_transpose, linear=(0, 1),
                   jointly=True, arity=2, shape=_pad_shape)
