"""Reductions and scans: sums, extrema, products, cumulative sums and products,
sorting. Reductions drop the reduced axes (XLA style); ``keepdims`` lives in
`wengert.ad.numpy`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .._core import Aval, Primitive
from ._helpers import def_linear, is_complex, on_device_of, shape_of, to_operand
from .elementwise import convert_element_type_p, eq_p
from .structural import broadcast_in_dim_p


def _reduced_shape(x, axes):
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


def _kept_dims(ndim, axes):
    return tuple(i for i in range(ndim) if i not in axes)


def _expand(g, x, axes):
    """Broadcast a reduced value back over the reduced axes of ``x``."""
    shape = shape_of(x)
    return broadcast_in_dim_p.bind(g, shape=shape,
                                   broadcast_dimensions=_kept_dims(len(shape), axes))


def _reduction(name, impl, *, keep_args=False, keep_ans=False):
    p = Primitive(name, lambda x, axes: impl(x, axis=axes), keep_args=keep_args,
                  keep_ans=keep_ans)
    p.def_rules(shape=lambda x, axes: Aval(_reduced_shape(x, axes), impl(
        np.zeros((1,) * x.ndim, x.dtype), axis=axes).dtype))
    return p


def _direct(numpy_fn, ufunc):
    """``numpy_fn`` (``np.sum``, ``np.max``, ...), calling ``ufunc.reduce`` itself on
    a NumPy array, which is what ``numpy_fn`` does after a layer of Python dispatch;
    other arrays (CuPy, scalars) go through ``numpy_fn``."""
    def impl(x, axis):
        if type(x) is np.ndarray:
            return ufunc.reduce(x, axis=axis)
        return numpy_fn(x, axis=axis)

    return impl


_plain_sum = _direct(np.sum, np.add)


@functools.lru_cache(maxsize=64)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


#: NumPy sums a contiguous row of up to this many elements in 8 running sums, not
#: pairwise: BLAS's matrix-vector product is then no less accurate.
_PAIRWISE_BLOCK = 128


def _sum(x, axis):
    """``np.sum``, as a matrix-vector product with ones where NumPy is slow:
    over a run of axes with axes after it (a bias or BatchNorm gradient over
    N, H, W; a global average pool), which NumPy adds row by row (4-9x slower
    with a few channels, and no more accurately), and over short trailing rows
    (a softmax or LayerNorm over 64 features: one reduction call per row)."""
    if not (type(x) is np.ndarray and x.dtype.char in "fd" and axis and x.size
            and x.flags.c_contiguous and tuple(axis) == tuple(range(axis[0], axis[-1] + 1))):
        return _plain_sum(x, axis)
    shape = x.shape
    pre, post = math.prod(shape[:axis[0]]), math.prod(shape[axis[-1] + 1:])
    n = x.size // (pre * post)
    if post > 1:
        ones = _ones(n, x.dtype)
        out = ones @ x.reshape(n, post) if pre == 1 else np.matmul(ones, x.reshape(pre, n, post))
    elif n <= _PAIRWISE_BLOCK and pre > 1:
        out = x.reshape(pre, n) @ _ones(n, x.dtype)
    else:
        return _plain_sum(x, axis)
    return out.reshape(shape[:axis[0]] + shape[axis[-1] + 1:])


reduce_sum_p = def_linear(_reduction("reduce_sum", _sum),
                          lambda i, ct, x, axes: to_operand(_expand(ct, x, axes), x))


def _extremum_weights(ans, x, axes):
    # Ties share the gradient equally, so the VJP is a valid subgradient.
    hit = convert_element_type_p.bind(eq_p.bind(x, _expand(ans, x, axes)),
                                      new_dtype=np.result_type(x))
    count = reduce_sum_p.bind(hit, axes=axes)
    return hit / _expand(count, x, axes)


def _extremum(name, impl):
    p = _reduction(name, impl, keep_args=True, keep_ans=True)
    p.def_rules(
        vjps=(lambda g, ans, x, axes: _expand(g, x, axes) * _extremum_weights(ans, x, axes),),
        jvps=(lambda t, ans, x, axes:
              reduce_sum_p.bind(t * _extremum_weights(ans, x, axes), axes=axes),))
    return p


reduce_max_p = _extremum("reduce_max", _direct(np.max, np.maximum))
reduce_min_p = _extremum("reduce_min", _direct(np.min, np.minimum))


def _prod_partials(x, axes):
    """d prod / d x_i = product of all other entries, safe when entries are zero.

    Moves the reduced axes last, flattens them, and multiplies exclusive
    cumulative products from the left and from the right.
    """
    from .structural import pad_p, reshape_p, transpose_p

    shape = shape_of(x)
    kept = _kept_dims(len(shape), axes)
    perm = kept + tuple(axes)
    moved = transpose_p.bind(x, permutation=perm)
    n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    flat = reshape_p.bind(moved, new_sizes=tuple(shape[k] for k in kept) + (n,))
    last = len(kept)
    cfg_left = tuple((0, 0, 0) for _ in kept) + ((1, -1, 0),)
    cfg_right = tuple((0, 0, 0) for _ in kept) + ((-1, 1, 0),)
    left = pad_p.bind(cumprod_p.bind(flat, axis=last, reverse=False), 1.0,
                      padding_config=cfg_left)
    right = pad_p.bind(cumprod_p.bind(flat, axis=last, reverse=True), 1.0,
                       padding_config=cfg_right)
    partial = reshape_p.bind(left * right, new_sizes=shape_of(moved))
    return transpose_p.bind(partial, permutation=tuple(np.argsort(perm)))


def _conj(x):
    from .elementwise import conj_p

    return conj_p.bind(x) if is_complex(x) else x


reduce_prod_p = _reduction("reduce_prod", _direct(np.prod, np.multiply), keep_args=True)
reduce_prod_p.def_rules(
    vjps=(lambda g, ans, x, axes: to_operand(_expand(g, x, axes) * _conj(_prod_partials(x, axes)),
                                             x),),
    jvps=(lambda t, ans, x, axes: reduce_sum_p.bind(t * _prod_partials(x, axes), axes=axes),))

argmax_p = Primitive("argmax", lambda x, axis: np.argmax(x, axis=axis))
argmax_p.def_rules(shape=lambda x, axis: Aval(_reduced_shape(x, (axis,)), np.int64))
argmin_p = Primitive("argmin", lambda x, axis: np.argmin(x, axis=axis))
argmin_p.def_rules(shape=lambda x, axis: Aval(_reduced_shape(x, (axis,)), np.int64))


# ---- cumulative sums and products -----------------------------------------------------
def _cum_impl(fn):
    def impl(x, axis, reverse):
        if reverse:
            return np.flip(fn(np.flip(x, axis), axis=axis), axis)
        return fn(x, axis=axis)

    return impl


cumsum_p = def_linear(
    Primitive("cumsum", _cum_impl(np.cumsum), keep_args=False),
    lambda i, ct, x, axis, reverse: cumsum_p.bind(ct, axis=axis, reverse=not reverse),
    shape=lambda x, axis, reverse: Aval(x.shape, x.dtype))


def _cumprod_vjp(g, ans, x, axis, reverse):
    # d ans_j / d x_i = ans_j / x_i for j >= i; summing g_j ans_j backwards.
    # Assumes no exact zeros in x (as autograd and PyTorch's fast path).
    s = cumsum_p.bind(g * _conj(ans), axis=axis, reverse=not reverse)
    return to_operand(s / _conj(x), x)


cumprod_p = Primitive("cumprod", _cum_impl(np.cumprod), keep_ans=True)
cumprod_p.def_rules(
    shape=lambda x, axis, reverse: Aval(x.shape, x.dtype),
    vjps=(_cumprod_vjp,),
    jvps=(lambda t, ans, x, axis, reverse:
          cumsum_p.bind(t / x, axis=axis, reverse=reverse) * ans,))


# ---- sorting ---------------------------------------------------------------------------
def _sort_permutation(x, axis):
    from ..numpy import argsort

    return argsort(x, axis=axis)


def _take_along(g, idx, axis):
    return take_along_axis_p.bind(g, idx, axis=axis)


sort_p = Primitive("sort", lambda x, axis: np.sort(x, axis=axis))
argsort_p = Primitive("argsort", lambda x, axis: np.argsort(x, axis=axis, kind="stable"))
argsort_p.def_rules(shape=lambda x, axis: Aval(x.shape, np.int64))

take_along_axis_p = Primitive(
    "take_along_axis", lambda x, idx, axis: np.take_along_axis(x, idx, axis=axis),
    keep_args=False)


def _take_along_transpose(i, g, x, idx, axis):
    from .structural import encode_index, scatter_add_p
    from ._helpers import zeros

    shape = shape_of(x)
    grids = [on_device_of(g, i) for i in np.indices(shape_of(idx), sparse=True)]
    index = tuple(idx if d == axis else grids[d] for d in range(len(shape)))
    spec, arrays = encode_index(index)
    return scatter_add_p.bind(zeros(shape, g.dtype, g), g, *arrays, spec=spec)


def_linear(take_along_axis_p, _take_along_transpose, arity=2,
           shape=lambda x, idx, axis: Aval(idx.shape, x.dtype))

sort_p.def_rules(
    shape=lambda x, axis: Aval(x.shape, x.dtype),
    vjps=(lambda g, ans, x, axis:
          _take_along_transpose(0, g, x, _sort_permutation(x, axis), axis),),
    jvps=(lambda t, ans, x, axis: _take_along(t, _sort_permutation(x, axis), axis),))
