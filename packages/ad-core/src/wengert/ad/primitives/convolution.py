"""Convolution and windowed reductions, shaped as XLA's ops.

* ``conv_general_dilated(lhs, rhs)``: window strides, ``(lo, hi)`` padding
  per spatial axis (negative crops), input ("lhs", transposed-convolution)
  and kernel ("rhs", atrous) dilation, feature groups, and any layout through
  ``dimension_numbers = (lhs_spec, rhs_spec, out_spec)``: each spec lists the
  (batch | out-feature, feature | in-feature, spatial...) dimension indices.
* ``reduce_window_sum`` / ``reduce_window_max``: pooling over windows of
  every axis (size-1 windows on batch and channel axes).
* ``select_and_gather_add`` / ``select_and_scatter_add``: the derivatives of
  the windowed max (XLA's SelectAndScatter): they route a value to, or take
  it from, the first maximum of each window of ``operand``. Each is the
  other's transpose, so max pooling is differentiable to any order.

Convolution has three implementations, chosen per call signature by a cost
model (`_algorithm`): a patch matrix (im2col: a strided view of every output
position's window, one copy laid out to follow the input's memory, one
GEMM); an input-side scatter for unit strides (one GEMM over all taps, then
one add per tap); and one GEMM per output pixel over only the taps that meet
input pixels (dilated inputs with large kernels). Pooling takes one view per
position *inside* the window (each of the output's shape), folded with a few
elementwise ops (no window copy, no loop over pixels). Every derivative rule is again a convolution, a windowed
reduction, pad, reverse, reshape or transpose, so all are differentiable.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any

import numpy as np

from .._core import Aval, Primitive
from ._helpers import conj_if_complex, def_linear, shape_of, to_operand
from .structural import pad_p, reshape_p, rev_p, transpose_p


def _xp(x: Any) -> Any:
    cupy = sys.modules.get("cupy")
    return cupy if cupy is not None and isinstance(x, cupy.ndarray) else np


def _patches(x: Any, kernel: tuple, strides: tuple, dilation: tuple, out_sp: tuple) -> Any:
    """View (no copy) ``(N, Out..., K..., C)`` of channels-last ``x``: the im2col
    layout, so one reshape copy gives the GEMM operand (``as_strided`` directly:
    `sliding_window_view` plus a transpose costs several times more here)."""
    st = x.strides
    sp = st[1:-1]
    return _xp(x).lib.stride_tricks.as_strided(
        x, (x.shape[0], *out_sp, *kernel, x.shape[-1]),
        (st[0], *(a * s for a, s in zip(sp, strides)), *(a * d for a, d in zip(sp, dilation)),
         st[-1]), writeable=False)


def _out_size(n: int, k: int, stride: int, pad: tuple, lhs_dil: int = 1, rhs_dil: int = 1) -> int:
    dilated = (n - 1) * lhs_dil + 1 if n else 0
    extent = (k - 1) * rhs_dil + 1
    return max(0, (pad[0] + dilated + pad[1] - extent) // stride + 1)


def _permute(x: Any, perm: tuple) -> Any:
    return x if perm == tuple(range(len(perm))) else transpose_p.bind(x, permutation=perm)


@functools.lru_cache(maxsize=256)
def _inverse(perm: tuple) -> tuple:
    return tuple(int(i) for i in np.argsort(perm))


# ---- conv_general_dilated ------------------------------------------------------------------
# Internally every operand is brought to the canonical channels-last layout:
# lhs (N, S..., C), rhs (K..., I, O), out (N, S..., F).

def _canonical_perms(dimension_numbers: tuple) -> tuple[tuple, tuple, tuple]:
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    return ((lhs_spec[0], *lhs_spec[2:], lhs_spec[1]),
            (*rhs_spec[2:], rhs_spec[1], rhs_spec[0]),
            (out_spec[0], *out_spec[2:], out_spec[1]))


def _canonical_numbers(nd: int) -> tuple:
    spatial = tuple(range(1, nd - 1))
    return ((0, nd - 1) + spatial, (nd - 1, nd - 2) + tuple(range(nd - 2)),
            (0, nd - 1) + spatial)


def _scatter_conv(x: Any, w: Any, padding: tuple, lhs_dilation: tuple,
                  rhs_dilation: tuple) -> Any:
    """Unit-stride convolution that works from the input side: one GEMM of the
    input with all taps of the kernel, then each tap's product is added into the
    output at the (strided, when the input is dilated) positions it reaches.
    A dilated input (a transposed convolution, a strided convolution's input
    derivative) costs no multiplications by its zeros, and no patch matrix is
    built: the cheaper side when the output has fewer channels than the input.
    Canonical layouts."""
    n_sp = x.ndim - 2
    kernel, (c_in, c_out) = w.shape[:n_sp], w.shape[n_sp:]
    in_sp = x.shape[1:-1]
    out_sp = tuple(_out_size(n, k, 1, pad, d, r) for n, k, pad, d, r in
                   zip(in_sp, kernel, padding, lhs_dilation, rhs_dilation))
    xp = _xp(x)
    taps = math.prod(kernel)
    # Tap-major products: each tap's slice is then a contiguous image, so the adds
    # below run over whole rows (pixel-major, their inner loops are c_out long).
    z = xp.matmul(x.reshape(-1, c_in), w.reshape(taps, c_in, c_out))
    z = z.reshape((taps,) + x.shape[:-1] + (c_out,))
    dtype = np.result_type(x.dtype, w.dtype)
    # The output pixels of one residue class modulo the input dilation (a phase)
    # are reached by the same taps: each phase accumulates in its own dense
    # buffer, so every add runs along whole rows; the phases interleave once.
    phases: dict = {}
    for t, k in enumerate(np.ndindex(*kernel)):
        src, dst, phase = [slice(None)], [slice(None)], []
        for n, m, ki, (lo, _), d, r in zip(in_sp, out_sp, k, padding, lhs_dilation,
                                           rhs_dilation):
            start = lo - ki * r  # input j lands on output start + j * d
            j_lo = max(0, -(start // d) if start < 0 else 0)
            j_hi = min(n, (m - 1 - start) // d + 1) if m - 1 >= start else 0
            if j_hi <= j_lo:
                break
            src.append(slice(j_lo, j_hi))
            first = start + j_lo * d
            phase.append(first % d)
            dst.append(slice(first // d, first // d + j_hi - j_lo))
        else:
            key = tuple(phase)
            if key not in phases:
                phases[key] = xp.zeros((x.shape[0], *((m - p + d - 1) // d for m, p, d in
                                                      zip(out_sp, key, lhs_dilation)), c_out),
                                       dtype)
            phases[key][tuple(dst)] += z[t][tuple(src)]
    if max(lhs_dilation) == 1 and phases:
        return phases[(0,) * n_sp]
    out = xp.zeros((x.shape[0], *out_sp, c_out), dtype)
    for key, buf in phases.items():
        out[(slice(None), *(slice(p, None, d) for p, d in zip(key, lhs_dilation)))] = buf
    return out


@functools.lru_cache(maxsize=256)
def _reach(n: int, k: int, stride: int, lo: int, lhs_dil: int, rhs_dil: int,
           out: int) -> tuple:
    """Per output index along one axis: the input slice and the matching kernel
    slice of the taps that land on an input pixel (not on a dilation zero or the
    padding), or ``None`` when none does. Both are arithmetic progressions."""
    reach = []
    for o in range(out):
        pairs = [(q // lhs_dil, t) for t in range(k)
                 for q in (o * stride + t * rhs_dil - lo,)
                 if q % lhs_dil == 0 and 0 <= q // lhs_dil < n]
        if not pairs:
            reach.append(None)
            continue
        (j0, t0), (j1, t1) = pairs[0], pairs[-1]
        js = (j1 - j0) // (len(pairs) - 1) if len(pairs) > 1 else 1
        ts = (t1 - t0) // (len(pairs) - 1) if len(pairs) > 1 else 1
        reach.append((slice(j0, j1 + 1, js), slice(t0, t1 + 1, ts)))
    return tuple(reach)


def _window_conv(x: Any, w: Any, strides: tuple, padding: tuple, lhs_dilation: tuple,
                 rhs_dilation: tuple) -> Any:
    """One GEMM per output pixel, over exactly the input pixels and taps that
    meet there: for a few output pixels and a large kernel on a dilated input
    (the kernel derivative of a transposed or strided convolution, whose
    "kernel" is a whole cotangent map) this skips the dilation zeros that a
    patch matrix would copy and multiply. Canonical layouts."""
    n_sp = x.ndim - 2
    kernel, c_out = w.shape[:n_sp], w.shape[-1]
    in_sp = x.shape[1:-1]
    out_sp = tuple(_out_size(n, k, s, pad, d, r) for n, k, s, pad, d, r in
                   zip(in_sp, kernel, strides, padding, lhs_dilation, rhs_dilation))
    reach = [_reach(n, k, s, lo, d, r, m) for n, k, s, (lo, _), d, r, m in
             zip(in_sp, kernel, strides, padding, lhs_dilation, rhs_dilation, out_sp)]
    xp = _xp(x)
    x = xp.ascontiguousarray(x)  # once, not once per output pixel
    out = xp.zeros((x.shape[0], *out_sp, c_out), np.result_type(x.dtype, w.dtype))
    for o in np.ndindex(*out_sp):
        axes = [r[i] for r, i in zip(reach, o)]
        if None in axes:
            continue
        xs = x[(slice(None), *(a[0] for a in axes))]
        ws = w[tuple(a[1] for a in axes)]
        out[(slice(None), *o)] = xs.reshape(x.shape[0], -1) @ ws.reshape(-1, c_out)
    return out


def _memory_order(strides: tuple, shape: tuple, axes: tuple) -> list:
    """``axes`` from the largest stride to the smallest (size-1 axes first: their
    stride means nothing), so that copying in this order reads memory forward."""
    return sorted(axes, key=lambda a: (shape[a] > 1, -abs(strides[a])))


def _run(shape: tuple, strides: tuple, itemsize: int, order: list) -> int:
    """How many elements a copy in axis ``order`` reads contiguously at a time."""
    run = 1
    for a in reversed(order):
        if shape[a] == 1:
            continue
        if strides[a] != run * itemsize:
            break
        run *= shape[a]
    return run


@functools.lru_cache(maxsize=512)
def _patch_layout(shape: tuple, strides: tuple, itemsize: int) -> tuple | None:
    """How to copy a patch view ``(N, Out..., K..., C)`` into the GEMM's patch
    matrix so that the copy reads memory forward: ``None`` when the view's own
    order does (a plain reshape), else ``(pixels, taps, pixels_first)``, each
    side's axes ordered by stride. A copy along short kernel rows, or across a
    transposed operand (a kernel derivative sees the batch as its channels),
    is several times slower than one along image rows. Cached per layout: the
    convolutions of a training step are small enough that planning shows."""
    n_sp = (len(shape) - 2) // 2
    pixels = _memory_order(strides, shape, tuple(range(n_sp + 1)))
    taps = _memory_order(strides, shape, tuple(range(n_sp + 1, 2 * n_sp + 2)))
    pixels_first = (_run(shape, strides, itemsize, pixels + taps)
                    >= _run(shape, strides, itemsize, taps + pixels))
    if pixels_first and pixels + taps == sorted(pixels + taps):
        return None
    return tuple(pixels), tuple(taps), pixels_first


def _im2col_conv(x: Any, w: Any, strides: tuple, padding: tuple, lhs_dilation: tuple,
                 rhs_dilation: tuple, groups: int) -> Any:
    """The general path: the input (padded and dilated) is copied once into a
    patch matrix (laid out by `_patch_layout`), then one GEMM (one per group)
    whose output is C-contiguous, pixels by features: every elementwise op
    downstream then runs over contiguous memory."""
    n_sp = x.ndim - 2
    x = _padded(x, ((0, 0, 0),) + tuple((lo, hi, d - 1) for (lo, hi), d in
                                          zip(padding, lhs_dilation)) + ((0, 0, 0),), 0)
    kernel = w.shape[:n_sp]
    out_sp = tuple(_out_size(n, k, s, (0, 0), 1, d) for n, k, s, d in
                   zip(x.shape[1:-1], kernel, strides, rhs_dilation))
    n, c = x.shape[0], x.shape[-1]
    i, o = c // groups, w.shape[-1]
    m = n * math.prod(out_sp)
    kp = math.prod(kernel)
    view = _patches(x, kernel, strides, rhs_dilation, out_sp)  # (N, Out..., K..., C)
    xp = _xp(x)
    if groups > 1:  # one GEMM per group; BLAS needs contiguous operands
        cols = xp.ascontiguousarray(view.reshape(m, kp, groups, i).transpose(2, 0, 1, 3))
        kern = xp.ascontiguousarray(w.reshape(kp, i, groups, o // groups).transpose(2, 0, 1, 3))
        y = xp.matmul(cols.reshape(groups, m, kp * i),
                      kern.reshape(groups, kp * i, o // groups)).transpose(1, 0, 2)
        return y.reshape((n, *out_sp, o))
    layout = _patch_layout(view.shape, view.strides, view.itemsize)
    if layout is None:
        return (view.reshape(m, kp * c) @ w.reshape(kp * c, o)).reshape((n, *out_sp, o))
    pixels, taps, pixels_first = layout
    # the kernel's axes (K..., C, O) in the order the taps side of the matrix takes
    kern = w.transpose([a - n_sp - 1 for a in taps] + [n_sp + 1]).reshape(kp * c, o)
    if pixels_first:
        cols = xp.ascontiguousarray(view.transpose(pixels + taps)).reshape(m, kp * c)
    else:  # copied taps by pixels; BLAS reads its transpose without another copy
        cols = xp.ascontiguousarray(view.transpose(taps + pixels)).reshape(kp * c, m).T
    y = (cols @ kern).reshape([view.shape[a] for a in pixels] + [o])
    # rows follow the input's pixel order: a transposed input (a kernel derivative)
    # gives a transposed output, which the derivative's own transpose makes whole
    return y.transpose([pixels.index(a) for a in range(n_sp + 1)] + [n_sp + 1])


#: Relative costs for choosing a convolution algorithm, in units of one strided
#: element copy: one multiply-add in a GEMM, one NumPy call's fixed overhead, and
#: the Python and indexing around each tap of the scatter path (measured on the
#: convolutions of the nn benchmarks' models: about 15 microseconds a tap).
_FLOP_COST = 0.03
_CALL_COST = 3000.0
_SCATTER_TAP_COST = 10 * _CALL_COST


@functools.lru_cache(maxsize=512)
def _algorithm(x_shape: tuple, w_shape: tuple, strides: tuple, padding: tuple,
               lhs_dilation: tuple, rhs_dilation: tuple) -> Any:
    """The cheapest of the three paths for one ungrouped convolution, by a rough
    model of copies, multiply-adds and NumPy calls (cached per signature)."""
    n_sp = len(x_shape) - 2
    n, in_sp, c = x_shape[0], x_shape[1:-1], x_shape[-1]
    kernel, o = w_shape[:n_sp], w_shape[-1]
    out_sp = [_out_size(a, k, s, p, d, r) for a, k, s, p, d, r in
              zip(in_sp, kernel, strides, padding, lhs_dilation, rhs_dilation)]
    taps, m_in, m_out = math.prod(kernel), n * math.prod(in_sp), n * math.prod(out_sp)
    padded = math.prod((a - 1) * d + 1 + max(lo, 0) + max(hi, 0)
                       for a, d, (lo, hi) in zip(in_sp, lhs_dilation, padding))
    costs = {_im2col_conv: n * padded * c + m_out * taps * c * (1 + _FLOP_COST * o)
             + 4 * _CALL_COST}
    if max(strides) == 1 and taps > 1:  # one tap: the patch matrix is the input itself
        costs[_scatter_conv] = m_in * taps * o * (2 + _FLOP_COST * c) + taps * _SCATTER_TAP_COST
    if max(lhs_dilation) > 1:  # the taps that meet input pixels, per output pixel
        live = taps / math.prod(lhs_dilation)
        costs[_window_conv] = math.prod(out_sp) * (
            (n + o) * live * c + _FLOP_COST * n * live * c * o + 3 * _CALL_COST)
    return min(costs, key=costs.get)


def _conv_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count):
    lp, rp, op = _canonical_perms(dimension_numbers)
    x = lhs.transpose(lp)
    w = rhs.transpose(rp)
    algorithm = _im2col_conv
    if feature_group_count == 1 and x.size and w.size:
        algorithm = _algorithm(x.shape, w.shape, tuple(window_strides), tuple(padding),
                               tuple(lhs_dilation), tuple(rhs_dilation))
    if algorithm is _scatter_conv:
        y = _scatter_conv(x, w, padding, lhs_dilation, rhs_dilation)
    elif algorithm is _window_conv:
        y = _window_conv(x, w, window_strides, padding, lhs_dilation, rhs_dilation)
    else:
        y = _im2col_conv(x, w, window_strides, padding, lhs_dilation, rhs_dilation,
                         feature_group_count)
    return y.transpose(_inverse(op))


def check_conv_features(lhs_shape: tuple, rhs_shape: tuple, dimension_numbers: tuple,
                        feature_group_count: int) -> None:
    """Shared by the shape rule (staged) and `lax.conv_general_dilated` (eager), whose
    implementation would otherwise fail with a bare NumPy reshape error."""
    lhs_spec, rhs_spec, _ = dimension_numbers
    c, i = lhs_shape[lhs_spec[1]], rhs_shape[rhs_spec[1]]
    o = rhs_shape[rhs_spec[0]]
    g = feature_group_count
    if c != i * g or o % g:
        raise TypeError(f"conv_general_dilated: input features {c} must equal kernel input "
                        f"features {i} x feature_group_count {g}, and output features {o} "
                        f"must be divisible by {g}")


def _conv_shape(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                dimension_numbers, feature_group_count):
    check_conv_features(lhs.shape, rhs.shape, dimension_numbers, feature_group_count)
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    o = rhs.shape[rhs_spec[0]]
    sizes = [_out_size(lhs.shape[ld], rhs.shape[rd], s, p, a, b) for ld, rd, s, p, a, b in
             zip(lhs_spec[2:], rhs_spec[2:], window_strides, padding, lhs_dilation,
                 rhs_dilation)]
    shape = [0] * lhs.ndim
    shape[out_spec[0]], shape[out_spec[1]] = lhs.shape[lhs_spec[0]], o
    for d, size in zip(out_spec[2:], sizes):
        shape[d] = size
    return Aval(tuple(shape), np.result_type(lhs.dtype, rhs.dtype))


def _regroup(x: Any, groups: int, split: tuple, perm: tuple, merged: tuple) -> Any:
    """Reshape to ``split`` (its second-to-last axis counts the feature groups),
    transpose by ``perm``, reshape to ``merged``. With one group the reshapes only
    add and drop that size-1 axis, so one transpose does it (fewer operations in
    every backward pass)."""
    group_axis = len(split) - 2
    if groups == 1:
        return _permute(x, tuple(a - (a > group_axis) for a in perm if a != group_axis))
    x = reshape_p.bind(x, new_sizes=split)
    return reshape_p.bind(transpose_p.bind(x, permutation=perm), new_sizes=merged)


def _conv(lhs, rhs, **params):
    return conv_general_dilated_p.bind(lhs, rhs, **params)


def _conv_transpose(i, g, lhs, rhs, **params):
    """Convolution is linear in each operand: the input side, then the kernel side."""
    return (_conv_transpose_lhs if i == 0 else _conv_transpose_rhs)(g, lhs, rhs, **params)


def _conv_transpose_lhs(g, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                  dimension_numbers, feature_group_count):
    """dx: a stride-1 convolution of the (stride-dilated) cotangent with the flipped,
    in/out-swapped kernel, subsampled by the input dilation."""
    lp, rp, op = _canonical_perms(dimension_numbers)
    w = _permute(rhs, rp)  # (K..., I, O)
    gc = _permute(g, op)  # (N, Out..., O)
    n_sp = len(window_strides)
    kernel, (i, o) = shape_of(w)[:n_sp], shape_of(w)[n_sp:]
    groups = feature_group_count
    w = _regroup(w, groups, kernel + (i, groups, o // groups),
                 tuple(range(n_sp)) + (n_sp + 2, n_sp + 1, n_sp), kernel + (o // groups, groups * i))
    w = rev_p.bind(conj_if_complex(w), dimensions=tuple(range(n_sp)))
    in_sizes = [shape_of(lhs)[d] for d in dimension_numbers[0][2:]]
    out_sizes = shape_of(gc)[1:-1]
    pads = []
    for n, k, s, (lo, _), ld, rd, no in zip(in_sizes, kernel, window_strides, padding,
                                           lhs_dilation, rhs_dilation, out_sizes):
        extent, dilated = (k - 1) * rd + 1, (n - 1) * ld + 1
        pads.append((extent - 1 - lo, dilated + lo - (no - 1) * s - 1))
    dx = _conv(gc, w, window_strides=tuple(lhs_dilation), padding=tuple(pads),
               lhs_dilation=tuple(window_strides), rhs_dilation=tuple(rhs_dilation),
               dimension_numbers=_canonical_numbers(n_sp + 2), feature_group_count=groups)
    return to_operand(_permute(dx, _inverse(lp)), lhs)


def _conv_transpose_rhs(g, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                  dimension_numbers, feature_group_count):
    """dw: the input convolved with the cotangent as kernel; the batch axis is
    contracted (it plays the feature role) and each group's input features
    play the batch role."""
    lp, rp, op = _canonical_perms(dimension_numbers)
    x = _permute(conj_if_complex(lhs), lp)  # (N, S..., C); dw = sum g conj(x)
    gc = _permute(g, op)  # (N, Out..., O)
    n_sp = len(window_strides)
    groups = feature_group_count
    xs = shape_of(x)
    n, sp, c = xs[0], xs[1:-1], xs[-1]
    i = c // groups
    x = _regroup(x, groups, (n,) + sp + (groups, i),
                 (n_sp + 2,) + tuple(range(1, n_sp + 1)) + (n_sp + 1, 0),
                 (i,) + sp + (groups * n,))  # (I, S..., G*N)
    gk = _permute(gc, tuple(range(1, n_sp + 1)) + (0, n_sp + 1))  # (Out..., N, O)
    kernel = [shape_of(rhs)[d] for d in dimension_numbers[1][2:]]
    out_sizes = shape_of(gc)[1:-1]
    pads = []
    for n_in, k, s, (lo, _), ld, rd, no in zip(sp, kernel, window_strides, padding,
                                              lhs_dilation, rhs_dilation, out_sizes):
        dilated = (n_in - 1) * ld + 1
        pads.append((lo, (k - 1) * rd + (no - 1) * s + 1 - lo - dilated))
    dw = _conv(x, gk, window_strides=tuple(rhs_dilation), padding=tuple(pads),
               lhs_dilation=tuple(lhs_dilation), rhs_dilation=tuple(window_strides),
               dimension_numbers=_canonical_numbers(n_sp + 2), feature_group_count=groups)
    dw = _permute(dw, tuple(range(1, n_sp + 1)) + (0, n_sp + 1))  # (K..., I, O)
    return to_operand(_permute(dw, _inverse(rp)), rhs)


conv_general_dilated_p = def_linear(Primitive("conv_general_dilated", _conv_impl),
                                    _conv_transpose, linear=(0, 1), arity=2, shape=_conv_shape)


# ---- windowed reductions ------------------------------------------------------------------

def _padded(x: Any, config: tuple, value: Any) -> Any:
    """``pad`` for the impls: a filled buffer and one strided assignment (the
    primitive's general impl costs several times more on these small arrays);
    negative margins (crops) go through it."""
    if all(c == (0, 0, 0) for c in config):
        return x
    if any(lo < 0 or hi < 0 for lo, hi, _ in config):
        return pad_p.impl(x, value, padding_config=config)
    shape = tuple(lo + (n + (n - 1) * d if n else 0) + hi
                  for n, (lo, hi, d) in zip(x.shape, config))
    xp = _xp(x)
    if x.flags.c_contiguous:
        out = xp.zeros(shape, x.dtype) if value == 0 else xp.full(shape, value, x.dtype)
    else:  # the buffer keeps the memory order of x (a transposed operand stays transposed)
        order = tuple(_memory_order(x.strides, x.shape, tuple(range(x.ndim))))
        out = xp.full(tuple(shape[a] for a in order), value, x.dtype).transpose(_inverse(order))
    out[tuple(slice(lo, lo + (d + 1) * (n - 1) + 1 if n else lo, d + 1)
              for n, (lo, _, d) in zip(x.shape, config))] = x
    return out


@functools.lru_cache(maxsize=512)
def _pool_geometry(shape: tuple, window: tuple, strides: tuple, padding: tuple) -> tuple:
    """Pad config and every in-window position's view index: per shape, cached
    (building them costs more than pooling a small batch)."""
    config = tuple((lo, hi, 0) for lo, hi in padding)
    out = [_out_size(n, k, s, p) for n, k, s, p in zip(shape, window, strides, padding)]
    return config, tuple(tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in
                               zip(at, strides, out)) for at in np.ndindex(*window))


def _window_views(x: Any, window: tuple, strides: tuple, padding: tuple, value: Any):
    """``x`` padded with ``value``, and one strided view of it per position inside
    the window (``np.ndindex`` order), each of the output's shape: a windowed
    reduction is then a fold of a few elementwise ops over views."""
    config, index = _pool_geometry(x.shape, window, strides, padding)
    x = _padded(x, config, value)
    return x, [x[i] for i in index]


def _fold(ufunc: Any, views: list) -> Any:
    acc = ufunc(views[0], views[1]) if len(views) > 1 else views[0].copy()
    for v in views[2:]:
        ufunc(acc, v, out=acc)
    return acc


def _reduce_window_sum_impl(x, *, window_dimensions, window_strides, padding):
    _, views = _window_views(x, window_dimensions, window_strides, padding, 0)
    return _fold(_xp(x).add, views)


def _reduce_window_shape(x, *, window_dimensions, window_strides, padding):
    return Aval(tuple(_out_size(n, k, s, p) for n, k, s, p in
                      zip(x.shape, window_dimensions, window_strides, padding)), x.dtype)


def _reduce_window_sum_vjp(g, ans, x, *, window_dimensions, window_strides, padding):
    """Every input position receives the cotangents of the windows that cover it:
    a stride-1 window sum of the stride-dilated, re-padded cotangent."""
    config = []
    for n, k, s, (lo, _), no in zip(shape_of(x), window_dimensions, window_strides, padding,
                                    shape_of(g)):
        config.append((k - 1 - lo, n + lo - (no - 1) * s - 1, s - 1))
    spread = pad_p.bind(g, np.zeros((), g.dtype), padding_config=tuple(config))
    return reduce_window_sum_p.bind(spread, window_dimensions=window_dimensions,
                                    window_strides=(1,) * len(window_dimensions),
                                    padding=((0, 0),) * len(window_dimensions))


reduce_window_sum_p = Primitive("reduce_window_sum", _reduce_window_sum_impl, keep_args=False)
reduce_window_sum_p.def_rules(
    shape=_reduce_window_shape,
    vjps=(_reduce_window_sum_vjp,),
    jvps=(lambda t, ans, x, **params: reduce_window_sum_p.bind(t, **params),))


def _lowest(dtype: Any) -> Any:
    return -np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min


def _disjoint(window: tuple, strides: tuple, padding: tuple) -> bool:
    """Windows that tile the array (stride = window, no padding): max pooling as
    layers use it, where every position belongs to at most one window."""
    return tuple(strides) == tuple(window) and all(p == (0, 0) for p in padding)


def _blocks(x: Any, window: tuple) -> Any:
    """Disjoint windows as one copy ``(K, Out...)``: block k holds every window's
    k-th position (``np.ndindex`` order), contiguous. The folds and masks then
    run over contiguous memory; strided views of a channels-last array with few
    channels run in inner loops as short as its channel count (LeNet's 6)."""
    out = tuple(n // k for n, k in zip(x.shape, window))
    x = x[tuple(slice(0, o * k) for o, k in zip(out, window))]
    split = x.reshape(tuple(d for o, k in zip(out, window) for d in (o, k)))
    nd = x.ndim
    blocks = _xp(x).ascontiguousarray(
        split.transpose([2 * i + 1 for i in range(nd)] + [2 * i for i in range(nd)]))
    return blocks.reshape((-1,) + out)


def _unblocked(blocks: Any, window: tuple, shape: tuple) -> Any:
    """The inverse of `_blocks`, in an array of ``shape`` whose positions outside
    every window (a remainder the windows do not reach) are zero."""
    nd, out = len(shape), blocks.shape[1:]
    interleave = [a for i in range(nd) for a in (nd + i, i)]
    y = blocks.reshape(tuple(window) + out).transpose(interleave).reshape(
        tuple(o * k for o, k in zip(out, window)))
    xp = _xp(blocks)
    if y.shape == tuple(shape):
        return xp.ascontiguousarray(y)
    full = xp.zeros(shape, blocks.dtype)
    full[tuple(slice(0, n) for n in y.shape)] = y
    return full


def _windows(x: Any, window: tuple, strides: tuple, padding: tuple, value: Any) -> list:
    """Every in-window position's values, each of the output's shape: contiguous
    blocks for disjoint windows (the max derivatives make a dozen passes over
    them), strided views of the padded array otherwise."""
    if _disjoint(window, strides, padding):
        return list(_blocks(x, window))
    return _window_views(x, window, strides, padding, value)[1]


def _reduce_window_max_impl(x, *, window_dimensions, window_strides, padding):
    # strided views even for disjoint windows: three maxima cost less than a copy
    _, views = _window_views(x, window_dimensions, window_strides, padding, _lowest(x.dtype))
    return _fold(_xp(x).maximum, views)


def _first_max(views: list):
    """Per position inside the window (``views`` of the operand), where it holds
    its window's *first* maximum (one-hot over the positions of each window, as
    XLA's SelectAndScatter)."""
    top = _fold(_xp(views[0]).maximum, views)
    nan = top != top  # a NaN is its window's maximum (as argmax and PyTorch)
    nan = nan if nan.any() else None
    free = None
    for v in views:
        hit = v == top
        if nan is not None:
            hit |= v != v
        if free is None:
            free = ~hit
        else:
            hit &= free
            free ^= hit
        yield hit


def _select_and_gather_add_impl(tangent, operand, *, window_dimensions, window_strides,
                                padding):
    xp = _xp(tangent)
    views = _windows(tangent, window_dimensions, window_strides, padding, 0)
    out = xp.zeros(views[0].shape, tangent.dtype)
    hits = _first_max(_windows(operand, window_dimensions, window_strides, padding,
                               _lowest(operand.dtype)))
    for hit, v in zip(hits, views):
        xp.copyto(out, v, where=hit)
    return out


def _select_and_scatter_add_impl(source, operand, *, window_dimensions, window_strides,
                                 padding):
    xp = _xp(source)
    hits = _first_max(_windows(operand, window_dimensions, window_strides, padding,
                               _lowest(operand.dtype)))
    if _disjoint(window_dimensions, window_strides, padding):
        # Each position is written once: a product with the mask is exact for
        # finite values and several times faster than a masked copy.
        finite = bool(xp.isfinite(source).all())
        blocks = xp.zeros((math.prod(window_dimensions),) + source.shape, source.dtype)
        for hit, b in zip(hits, blocks):
            if finite:
                xp.multiply(source, hit, out=b)
            else:
                xp.copyto(b, source, where=hit)
        return _unblocked(blocks, window_dimensions, operand.shape)
    out, views = _window_views(xp.zeros(operand.shape, source.dtype), window_dimensions,
                               window_strides, padding, 0)
    for hit, v in zip(hits, views):  # windows may share positions: accumulate
        v += xp.where(hit, source, 0)
    return out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(operand.shape, padding))]


def _pooled_shape(tangent, operand, **params):
    return Aval(_reduce_window_shape(operand, **params).shape, tangent.dtype)


def _operand_shape(source, operand, **params):
    return Aval(operand.shape, source.dtype)


reduce_window_max_p = Primitive("reduce_window_max", _reduce_window_max_impl)
select_and_gather_add_p = Primitive("select_and_gather_add", _select_and_gather_add_impl)
select_and_scatter_add_p = Primitive("select_and_scatter_add", _select_and_scatter_add_impl)

reduce_window_max_p.def_rules(
    shape=_reduce_window_shape,
    vjps=(lambda g, ans, x, **p: select_and_scatter_add_p.bind(g, x, **p),),
    jvps=(lambda t, ans, x, **p: select_and_gather_add_p.bind(t, x, **p),))
select_and_gather_add_p.def_rules(
    shape=_pooled_shape,
    vjps=(lambda g, ans, t, x, **p: select_and_scatter_add_p.bind(g, x, **p), None),
    jvps=(lambda t2, ans, t, x, **p: select_and_gather_add_p.bind(t2, x, **p), None))
select_and_scatter_add_p.def_rules(
    shape=_operand_shape,
    vjps=(lambda g, ans, s, x, **p: select_and_gather_add_p.bind(g, x, **p), None),
    jvps=(lambda t, ans, s, x, **p: select_and_scatter_add_p.bind(t, x, **p), None))
