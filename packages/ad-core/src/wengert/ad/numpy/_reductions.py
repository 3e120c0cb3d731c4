"""Reductions with NumPy's ``axis``/``keepdims``, cumulative ops and sorting."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from ..primitives import reductions as red
from ..primitives import structural as st
from ._common import as_array, normalize_axes, normalize_axis, shape_of
from ._creation import astype


def _keep(out: Any, x_shape: tuple, axes: tuple, keepdims: bool) -> Any:
    if not keepdims:
        return out
    return st.reshape_p.bind(out, new_sizes=tuple(
        1 if i in axes else d for i, d in enumerate(x_shape)))


def _reduce(prim, a: Any, axis: Any, keepdims: bool, dtype: Any = None) -> Any:
    a = as_array(a)
    if dtype is not None:
        a = astype(a, dtype)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape))
    return _keep(prim.bind(a, axes=axes), shape, axes, keepdims)


def sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    return _reduce(red.reduce_sum_p, a, axis, keepdims, dtype)


def prod(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return _reduce(red.reduce_prod_p, a, axis, keepdims, dtype)


def max(a: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    return _reduce(red.reduce_max_p, a, axis, keepdims)


def min(a: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    return _reduce(red.reduce_min_p, a, axis, keepdims)


amax, amin = max, min


def _count(shape: tuple, axes: tuple) -> int:
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def mean(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    a = as_array(a)
    if dtype is None and a.dtype.kind in "biu":
        dtype = np.float64
    shape = shape_of(a)
    total = sum(a, axis, dtype, keepdims)
    return total / _count(shape, normalize_axes(axis, len(shape)))


def var(a: Any, axis: Any = None, dtype: Any = None, ddof: int = 0,
        keepdims: bool = False) -> Any:
    from ._elementwise import abs as absolute

    a = as_array(a)
    shape = shape_of(a)
    centered = a - mean(a, axis, dtype, keepdims=True)
    sq = centered * centered if a.dtype.kind != "c" else absolute(centered) ** 2
    n = _count(shape, normalize_axes(axis, len(shape)))
    return sum(sq, axis, dtype, keepdims) / (n - ddof)


def std(a: Any, axis: Any = None, dtype: Any = None, ddof: int = 0,
        keepdims: bool = False) -> Any:
    from ._elementwise import sqrt

    v = var(a, axis, dtype, ddof, keepdims)
    a = as_array(a)
    if ddof == 0 and _count(shape_of(a), normalize_axes(axis, a.ndim)) == 1:
        # One value per result: the deviation is identically 0, and so is its derivative
        # (sqrt's derivative at 0 would make it 0 * inf). var is that zero already.
        return v
    return sqrt(v)


def average(a: Any, axis: Any = None, weights: Any = None) -> Any:
    """Weighted mean; 1-d ``weights`` lie along ``axis``, as in NumPy."""
    from ._shape import broadcast_to, reshape

    if weights is None:
        return mean(a, axis)
    a, weights = as_array(a), as_array(weights)
    if weights.ndim == 1 and a.ndim > 1 and isinstance(axis, (int, np.integer)):
        along = normalize_axis(int(axis), a.ndim)
        weights = reshape(weights, tuple(-1 if i == along else 1 for i in range(a.ndim)))
    weights = broadcast_to(weights, shape_of(a))
    return sum(a * weights, axis) / sum(weights, axis)


def _arg_extremum(prim, a: Any, axis: Any, keepdims: bool) -> Any:
    a = as_array(a)
    if axis is None:
        from ._shape import ravel

        a, axis = ravel(a), 0
    ax = normalize_axis(axis, a.ndim)
    out = prim.bind(a, axis=ax)
    return _keep(out, shape_of(a), (ax,), keepdims)


def argmax(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return _arg_extremum(red.argmax_p, a, axis, keepdims)


def argmin(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return _arg_extremum(red.argmin_p, a, axis, keepdims)


def all(a: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    from ._elementwise import not_equal

    return min(astype(not_equal(as_array(a), 0), np.int8), axis, keepdims).astype(bool)


def any(a: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    from ._elementwise import not_equal

    return max(astype(not_equal(as_array(a), 0), np.int8), axis, keepdims).astype(bool)


def _flat_or_axis(a: Any, axis: Any) -> tuple[Any, int]:
    a = as_array(a)
    if axis is None:
        from ._shape import ravel

        return ravel(a), 0
    return a, normalize_axis(axis, a.ndim)


def cumsum(a: Any, axis: Any = None, dtype: Any = None) -> Any:
    a, ax = _flat_or_axis(a if dtype is None else astype(as_array(a), dtype), axis)
    return red.cumsum_p.bind(a, axis=ax, reverse=False)


def cumprod(a: Any, axis: Any = None, dtype: Any = None) -> Any:
    a, ax = _flat_or_axis(a if dtype is None else astype(as_array(a), dtype), axis)
    return red.cumprod_p.bind(a, axis=ax, reverse=False)


def sort(a: Any, axis: int | None = -1, kind: str | None = None) -> Any:
    """Stable whatever ``kind`` says (ties then get a deterministic derivative)."""
    a, ax = _flat_or_axis(a, axis)
    return red.sort_p.bind(a, axis=ax)


def argsort(a: Any, axis: int | None = -1, kind: str | None = None) -> Any:
    a, ax = _flat_or_axis(a, axis)
    return red.argsort_p.bind(a, axis=ax)


def partition(a: Any, kth: Any, axis: int | None = -1, kind: str = "introselect") -> Any:
    """A valid partition for every ``kth``: the sorted array (NumPy leaves the order
    inside each part unspecified; here it is sorted, so derivatives are deterministic)."""
    _check_kth(a, kth, axis)
    return sort(a, axis)


def argpartition(a: Any, kth: Any, axis: int | None = -1, kind: str = "introselect") -> Any:
    """The indices `partition` uses: those of a stable sort."""
    _check_kth(a, kth, axis)
    return argsort(a, axis)


def _check_kth(a: Any, kth: Any, axis: int | None) -> None:
    n = int(np.prod(shape_of(a))) if axis is None else shape_of(a)[
        normalize_axis(axis, len(shape_of(a)))]
    for k in np.ravel(kth):
        if not -n <= int(k) < n:
            raise ValueError(f"kth(={int(k)}) out of bounds ({n})")


def take_along_axis(arr: Any, indices: Any, axis: int | None) -> Any:
    arr, ax = _flat_or_axis(arr, axis)
    return red.take_along_axis_p.bind(arr, indices, axis=ax)


def logsumexp(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """log(sum(exp(a))) with the maximum factored out (it gets no gradient of its own)."""
    from .._api import stop_gradient
    from ._elementwise import exp, log, isfinite, where

    a = as_array(a)
    m = stop_gradient(max(a, axis, keepdims=True))
    m = where(isfinite(m), m, 0.0)
    out = log(sum(exp(a - m), axis, keepdims=True)) + m
    if keepdims:
        return out
    return st.reshape_p.bind(out, new_sizes=tuple(
        d for i, d in enumerate(shape_of(out)) if i not in normalize_axes(axis, a.ndim)))


def nansum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """``sum`` with NaNs counted as zero (they get zero gradient)."""
    from ._elementwise import isnan, where

    a = as_array(a)
    return sum(where(isnan(a), 0, a), axis, dtype, keepdims)


def nanmean(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    from ._elementwise import isnan, logical_not

    a = as_array(a)
    count = sum(astype(logical_not(isnan(a)), np.finfo(np.result_type(a.dtype, 1.0)).dtype),
                axis, keepdims=keepdims)
    return nansum(a, axis, dtype, keepdims) / count


def ptp(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return max(a, axis, keepdims) - min(a, axis, keepdims)


def quantile(a: Any, q: Any, axis: Any = None, keepdims: bool = False,
             method: str = "linear") -> Any:
    """Quantiles by sorting and linear interpolation; ``q`` is a constant (scalar or 1-d)."""
    if method != "linear":
        raise NotImplementedError(f"quantile(method={method!r}): only 'linear' is supported")
    from ._shape import expand_dims, moveaxis, reshape, stack

    a = as_array(a)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape))
    rest = tuple(i for i in range(len(shape)) if i not in axes)
    flat = reshape(moveaxis(a, axes, tuple(range(len(rest), len(shape)))),
                   tuple(shape[i] for i in rest) + (-1,))
    ordered = sort(flat, axis=-1)
    n = shape_of(ordered)[-1]
    qs = np.asarray(q, dtype=float)
    if qs.ndim > 1 or np.any((qs < 0) | (qs > 1)):
        raise ValueError("quantile: q must be a scalar or 1-d, with values in [0, 1]")
    out = []
    for pos in np.atleast_1d(qs) * (n - 1):
        lo, frac = int(np.floor(pos)), float(pos - np.floor(pos))
        hi = builtins.min(lo + 1, n - 1)
        out.append(ordered[..., lo] * (1 - frac) + ordered[..., hi] * frac)
    result = stack(out) if qs.ndim else out[0]
    if keepdims:
        for ax in axes:
            result = expand_dims(result, ax + (1 if qs.ndim else 0))
    return result


def percentile(a: Any, q: Any, axis: Any = None, keepdims: bool = False,
               method: str = "linear") -> Any:
    return quantile(a, np.asarray(q, dtype=float) / 100, axis, keepdims, method)


def median(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return quantile(a, 0.5, axis, keepdims)


def trapezoid(y: Any, x: Any = None, dx: float = 1.0, axis: int = -1) -> Any:
    """The trapezoidal rule along ``axis``; differentiable in ``y`` and in ``x``."""
    from ._shape import diff, moveaxis

    y = moveaxis(as_array(y), axis, -1)
    widths = dx if x is None else diff(as_array(x), axis=-1)
    return sum(widths * (y[..., 1:] + y[..., :-1]), axis=-1) / 2


def count_nonzero(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    from ._elementwise import not_equal

    return sum(astype(not_equal(as_array(a), 0), np.int64), axis, keepdims=keepdims)
