"""The batching rules of `wengert.ad.batching`, one entry per primitive.

Most are derived, not written one by one: every elementwise primitive (its
shape rule says so) batches by broadcasting; reductions and scans over an
axis shift the axis past the batch axis; operations whose array arguments
already allow leading batch axes (linear algebra, FFT) just see one more.
Structural operations get short rules; convolution and solve fold the batch
into an axis the operation already maps over (the convolution's batch or output
features, the solve's right-hand sides). The rest (control flow, custom rules,
pooling derivatives) map over the batch with one `scan`
(`batching.sequential`), as do the vectorised rules in the cases they do not
cover (e.g. indexing with batched index arrays).

Batched operands carry the batch axis first; unbatched ones are as the
function saw them. Every rule returns outputs with the batch axis first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Aval, Primitive, registry
from .batching import rules, sequential
from .primitives import structural as st
from .primitives.elementwise import convert_element_type_p
from .primitives.structural import broadcast_in_dim_p, reshape_p, transpose_p


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(getattr(x, "shape", ()))


def _dtype(x: Any) -> np.dtype:
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.result_type(x)


def _example_ndim(x: Any, batched: bool) -> int:
    return len(_shape(x)) - (1 if batched else 0)


def _with_batch(x: Any, size: int) -> Any:
    """An unbatched operand repeated along a new first axis."""
    if not hasattr(x, "shape"):
        x = np.asarray(x)
    shape = _shape(x)
    return broadcast_in_dim_p.bind(x, shape=(size, *shape),
                                   broadcast_dimensions=tuple(range(1, len(shape) + 1)))


def _all_batched(vals: list, batched: list, size: int) -> list:
    return [v if b else _with_batch(v, size) for v, b in zip(vals, batched)]


def _rank_up(x: Any, rank: int) -> Any:
    """A batched operand with singleton axes after the batch axis, to ``rank`` example
    axes, so that NumPy broadcasting lines its axes up with the others'."""
    shape = _shape(x)
    missing = rank - (len(shape) - 1)
    if missing <= 0:
        return x
    return reshape_p.bind(x, new_sizes=(shape[0], *(1,) * missing, *shape[1:]))


def _axis(axis: int, ndim: int) -> int:
    """An example axis as an axis of the batched value."""
    return axis % ndim + 1 if ndim else 1


# ---- derived families --------------------------------------------------------------------------
def elementwise(prim: Primitive) -> Callable:
    """The rule of an elementwise (broadcasting) primitive: batched operands get
    singleton axes so that NumPy broadcasting lines the others up behind the batch."""
    def rule(vals, batched, size, **params):
        rank = max(_example_ndim(v, b) for v, b in zip(vals, batched))
        args = [_rank_up(v, rank) if b else v for v, b in zip(vals, batched)]
        out = prim.bind(*args, **params)
        return out, ([True] * len(out) if prim.multiple_results else True)
    return rule


def _over_axes(prim: Primitive, param: str) -> Callable:
    """A reduction (``axes``: None, int or tuple) or scan/sort (``axis``) of one operand."""
    def rule(vals, batched, size, **params):
        (x,) = vals
        ndim = len(_shape(x)) - 1
        axes = params[param]
        if axes is None:
            if param == "axis":  # over the flattened array: flatten each example
                x = reshape_p.bind(x, new_sizes=(size, int(np.prod(_shape(x)[1:],
                                                                   dtype=np.int64))))
                return prim.bind(x, **{**params, param: 1}), True
            axes = tuple(range(ndim))
        if isinstance(axes, (int, np.integer)):
            new = _axis(int(axes), ndim)
        else:
            new = tuple(_axis(int(a), ndim) for a in axes)
        return prim.bind(x, **{**params, param: new}), True
    return rule


def _leading_batch(prim: Primitive) -> Callable:
    """Operations on the trailing axes whose leading axes batch (linalg, fft)."""
    def rule(vals, batched, size, **params):
        out = prim.bind(*_all_batched(vals, batched, size), **params)
        n = len(out) if prim.multiple_results else 1
        return out, ([True] * n if prim.multiple_results else True)
    return rule


# ---- structural --------------------------------------------------------------------------------
def _reshape(vals, batched, size, *, new_sizes):
    return reshape_p.bind(vals[0], new_sizes=(size, *new_sizes)), True


def _transpose(vals, batched, size, *, permutation):
    return transpose_p.bind(vals[0], permutation=(0, *(p + 1 for p in permutation))), True


def _broadcast_in_dim(vals, batched, size, *, shape, broadcast_dimensions):
    return broadcast_in_dim_p.bind(vals[0], shape=(size, *shape), broadcast_dimensions=(
        0, *(d + 1 for d in broadcast_dimensions))), True


def _rev(vals, batched, size, *, dimensions):
    ndim = len(_shape(vals[0])) - 1
    return registry["rev"].bind(vals[0], dimensions=tuple(
        _axis(int(d), ndim) for d in dimensions)), True


def _concatenate(vals, batched, size, *, dimension):
    ndim = _example_ndim(vals[0], batched[0])
    return registry["concatenate"].bind(*_all_batched(vals, batched, size),
                                        dimension=_axis(dimension, ndim)), True


def _pad(vals, batched, size, *, padding_config):
    x, value = vals
    if batched[1]:
        return sequential(registry["pad"])(vals, batched, size, padding_config=padding_config)
    return registry["pad"].bind(x if batched[0] else _with_batch(x, size), value,
                                padding_config=((0, 0, 0), *padding_config)), True


def _convert(vals, batched, size, *, new_dtype):
    return convert_element_type_p.bind(vals[0], new_dtype=new_dtype), True


def _dot_general(vals, batched, size, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    a, b = vals
    up = lambda dims: tuple(d + 1 for d in dims)  # noqa: E731
    dot = registry["dot_general"]
    if batched[0] and batched[1]:
        return dot.bind(a, b, dimension_numbers=((up(lc), up(rc)), ((0, *up(lb)),
                                                                     (0, *up(rb))))), True
    if batched[0]:
        out = dot.bind(a, b, dimension_numbers=((up(lc), rc), (up(lb), rb)))
        where = len(lb)  # the batch axis is the first free axis of a
    else:
        out = dot.bind(a, b, dimension_numbers=((lc, up(rc)), (lb, up(rb))))
        where = len(_shape(a)) - len(lc)  # after the batch axes and a's free axes
    return _to_front(out, where), True


def _to_front(x: Any, axis: int) -> Any:
    if axis == 0:
        return x
    perm = (axis, *(i for i in range(len(_shape(x))) if i != axis))
    return transpose_p.bind(x, permutation=perm)


def _take_along_axis(vals, batched, size, *, axis):
    x, idx = _all_batched(vals, batched, size)
    return registry["take_along_axis"].bind(x, idx, axis=_axis(axis, len(_shape(x)) - 1)), True


# ---- indexing ---------------------------------------------------------------------------------
def _simple_index(spec: tuple, arrays: list) -> bool:
    """Whether a full slice in front keeps the result's leading axis the batch axis:
    NumPy moves advanced-index axes to the front when they are not adjacent (and a
    boolean mask counts as several)."""
    if any(_dtype(a) == np.bool_ for a in arrays):
        return False
    advanced = [k for k, item in enumerate(spec) if item[0] in ("array", "int")]
    arrays = any(item[0] == "array" for item in spec)
    return not arrays or advanced == list(range(advanced[0], advanced[-1] + 1))


_ALL = ("slice", None, None, None)


def _getitem(vals, batched, size, *, spec):
    if any(batched[1:]) or not _simple_index(spec, vals[1:]):
        return sequential(registry["getitem"])(vals, batched, size, spec=spec)
    return registry["getitem"].bind(vals[0], *vals[1:], spec=(_ALL, *spec)), True


def _index_write(name: str) -> Callable:
    """``scatter_add``/``index_update``: operand and updates batched, indices not."""
    def rule(vals, batched, size, *, spec):
        prim = registry[name]
        if any(batched[2:]) or not _simple_index(spec, vals[2:]):
            return sequential(prim)(vals, batched, size, spec=spec)
        operand, updates, *arrays = vals
        operand = operand if batched[0] else _with_batch(operand, size)
        if batched[1]:
            region = registry["getitem"].shape_rule(
                Aval(_shape(operand)[1:], _dtype(operand)),
                *(Aval(_shape(a), _dtype(a)) for a in arrays), spec=spec)
            updates = _rank_up(updates, len(region.shape))
        return prim.bind(operand, updates, *arrays, spec=(_ALL, *spec)), True
    return rule


def _dynamic_slice(vals, batched, size, *, slice_sizes):
    if any(batched[1:]):
        return sequential(registry["dynamic_slice"])(vals, batched, size,
                                                     slice_sizes=slice_sizes)
    return registry["dynamic_slice"].bind(vals[0], 0, *vals[1:],
                                          slice_sizes=(size, *slice_sizes)), True


def _dynamic_update_slice(vals, batched, size):
    prim = registry["dynamic_update_slice"]
    if any(batched[2:]):
        return sequential(prim)(vals, batched, size)
    x, update = _all_batched(vals[:2], batched[:2], size)
    return prim.bind(x, update, 0, *vals[2:]), True


def _window(prim_name: str) -> Callable:
    def rule(vals, batched, size, *, window_dimensions, window_strides, padding):
        return registry[prim_name].bind(
            vals[0], window_dimensions=(1, *window_dimensions),
            window_strides=(1, *window_strides), padding=((0, 0), *padding)), True
    return rule


# ---- folding the batch into an axis of the example -------------------------------------------
def _merge_batch(x: Any, dim: int) -> Any:
    """A batched operand with its batch axis folded into example axis ``dim`` (batch
    outer): an operation that maps over ``dim`` then maps over the batch too."""
    shape = _shape(x)
    n = len(shape) - 1
    perm = (*range(1, dim + 1), 0, *range(dim + 1, n + 1))
    moved = transpose_p.bind(x, permutation=perm)
    merged = shape[1:dim + 1] + (shape[0] * shape[dim + 1],) + shape[dim + 2:]
    return reshape_p.bind(moved, new_sizes=merged)


def _split_batch(y: Any, dim: int, size: int) -> Any:
    """Inverse of `_merge_batch` on an output: axis ``dim`` holds batch x example."""
    shape = _shape(y)
    split = shape[:dim] + (size, shape[dim] // size) + shape[dim + 1:]
    y = reshape_p.bind(y, new_sizes=split)
    perm = (dim, *range(dim), *range(dim + 1, len(split)))
    return transpose_p.bind(y, permutation=perm)


def _conv(vals, batched, size, *, dimension_numbers, feature_group_count, **params):
    """A batched input folds into the convolution's batch axis; a batched kernel (one
    feature group) into its output features. Both batched: one scan."""
    prim = registry["conv_general_dilated"]
    lhs, rhs = vals
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    kw = dict(params, dimension_numbers=dimension_numbers,
              feature_group_count=feature_group_count)
    if batched[0] and not batched[1]:
        out = prim.bind(_merge_batch(lhs, lhs_spec[0]), rhs, **kw)
        return _split_batch(out, out_spec[0], size), True
    if batched[1] and not batched[0] and feature_group_count == 1:
        out = prim.bind(lhs, _merge_batch(rhs, rhs_spec[0]), **kw)
        return _split_batch(out, out_spec[1], size), True
    return sequential(prim)(vals, batched, size, **kw)


def _solve(vals, batched, size):
    """One shared matrix: the batch becomes more right-hand sides (one factorisation).
    Otherwise a batch of systems; a vector right-hand side becomes a column first (a
    batched vector would read as a matrix)."""
    prim = registry["solve"]
    a, b = vals
    b_ndim = _example_ndim(b, batched[1])
    if not batched[0] and len(_shape(a)) == 2 and b_ndim in (1, 2):
        n = _shape(a)[0]
        columns = transpose_p.bind(b, permutation=(1, 0, *range(2, b_ndim + 1)))
        wide = _shape(columns)
        out = prim.bind(a, reshape_p.bind(columns, new_sizes=(n, wide[1] * wide[2]))
                        if b_ndim == 2 else columns)
        if b_ndim == 2:
            out = reshape_p.bind(out, new_sizes=_shape(columns))
        return transpose_p.bind(out, permutation=(1, 0, *range(2, b_ndim + 1))), True
    a, b = _all_batched(vals, batched, size)
    if b_ndim == 1:
        a_ndim = len(_shape(a)) - 1
        col = reshape_p.bind(b, new_sizes=(size, *(1,) * (a_ndim - 2), _shape(b)[1], 1))
        out = prim.bind(a, col)
        return reshape_p.bind(out, new_sizes=_shape(out)[:-1]), True
    return prim.bind(a, b), True


# ---- the table ----------------------------------------------------------------------------------
_SPECIFIC: dict[str, Callable] = {
    "reshape": _reshape, "transpose": _transpose, "broadcast_in_dim": _broadcast_in_dim,
    "rev": _rev, "concatenate": _concatenate, "pad": _pad,
    "convert_element_type": _convert, "dot_general": _dot_general,
    "take_along_axis": _take_along_axis, "getitem": _getitem,
    "scatter_add": _index_write("scatter_add"), "index_update": _index_write("index_update"),
    "dynamic_slice": _dynamic_slice, "dynamic_update_slice": _dynamic_update_slice,
    "reduce_window_sum": _window("reduce_window_sum"),
    "reduce_window_max": _window("reduce_window_max"),
    "conv_general_dilated": _conv, "solve": _solve,
}
_AXES = {"reduce_sum": "axes", "reduce_max": "axes", "reduce_min": "axes",
         "reduce_prod": "axes", "argmax": "axis", "argmin": "axis", "cumsum": "axis",
         "cumprod": "axis", "sort": "axis", "argsort": "axis"}
_LEADING_BATCH = ("cholesky", "triangular_solve", "eigh", "eig", "svd", "qr", "slogdet", "fft",
                  "lu", "lu_pivots_to_permutation")
_UNARY_IDENTITY_LIKE = ("stop_gradient",)
#: Mapped over the batch with one scan: control flow and custom rules (their sub-graphs
#: are batched by running them per example), and operations without a vectorised rule yet.
SEQUENTIAL = ("cond", "while", "scan", "custom_vjp_call", "custom_jvp_call",
              "select_and_gather_add", "select_and_scatter_add")


def install() -> None:
    """Fill `batching.rules` for every primitive of the registry it can derive a rule for,
    and for those listed above; primitives registered later call it again."""
    for name, prim in registry.items():
        if name in rules:
            continue
        if name in _SPECIFIC:
            rules[name] = _SPECIFIC[name]
        elif name in _AXES:
            rules[name] = _over_axes(prim, _AXES[name])
        elif name in _LEADING_BATCH:
            rules[name] = _leading_batch(prim)
        elif getattr(prim.shape_rule, "elementwise", False) or name in _UNARY_IDENTITY_LIKE:
            rules[name] = elementwise(prim)
        elif name in SEQUENTIAL:
            rules[name] = sequential(prim)


install()
