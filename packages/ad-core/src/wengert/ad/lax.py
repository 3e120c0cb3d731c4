"""XLA-style operations that are not NumPy functions (as ``jax.lax``).

Convolution with every XLA option, windowed reductions (pooling) and the
general tensor contraction. Each is one primitive of `wengert.ad.primitives`,
so it is differentiable to any order, runs on NumPy or CuPy arrays, and
lowers to one XLA operation.

Layouts are channels-last by default (``NHWC`` input, ``HWIO`` kernel,
``NHWC`` output, and the 1-D/3-D analogues), the layout XLA and tensor
cores prefer. Other layouts are named with strings, e.g.
``dimension_numbers=("NCHW", "OIHW", "NCHW")``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .numpy import _common
from .primitives.contraction import dot_general_p
from .primitives import dynamic
from .primitives.convolution import (
    check_conv_features,
    conv_general_dilated_p,
    reduce_window_max_p,
    reduce_window_sum_p,
)

__all__ = ["conv_dimension_numbers", "conv_general_dilated", "dot_general",
           "dynamic_slice", "dynamic_slice_in_dim", "dynamic_update_slice",
           "dynamic_update_slice_in_dim", "padtype_to_pads", "reduce_window",
           "reduce_window_max", "reduce_window_sum"]

Padding = str | Sequence[tuple[int, int]]


def _array(x: Any) -> Any:
    """Arrays of any backend and traced values pass through; the rest become NumPy."""
    return x if hasattr(x, "shape") and hasattr(x, "dtype") else _common.as_array(x)


def dot_general(lhs: Any, rhs: Any, dimension_numbers: Any) -> Any:
    """XLA's DotGeneral: ``dimension_numbers = ((lhs_contract, rhs_contract),
    (lhs_batch, rhs_batch))``; the output is batch, lhs-free, rhs-free dimensions."""
    (lc, rc), (lb, rb) = dimension_numbers
    dims = ((tuple(map(int, lc)), tuple(map(int, rc))), (tuple(map(int, lb)), tuple(map(int, rb))))
    return dot_general_p.bind(_array(lhs), _array(rhs),
                              dimension_numbers=dims)


def conv_dimension_numbers(lhs: str, rhs: str, out: str) -> tuple[tuple[int, ...], ...]:
    """Layout strings -> ``(lhs_spec, rhs_spec, out_spec)`` index tuples.

    ``N``/``C`` mark batch and feature of ``lhs`` and ``out``, ``O``/``I`` the
    output and input features of ``rhs``; every other letter is a spatial
    dimension, ordered as in ``lhs`` (e.g. ``("NHWC", "HWIO", "NHWC")``).
    """
    spatial = [c for c in lhs if c not in "NC"]
    for name, s, special in (("lhs", lhs, "NC"), ("rhs", rhs, "OI"), ("out", out, "NC")):
        if sorted(s) != sorted(list(special) + spatial) or len(set(s)) != len(s):
            raise ValueError(f"conv_dimension_numbers: {name} layout {s!r} must hold "
                             f"{special[0]!r}, {special[1]!r} and the spatial letters "
                             f"{''.join(spatial)!r} of {lhs!r}, each once")
    return (tuple(lhs.index(c) for c in ("N", "C", *spatial)),
            tuple(rhs.index(c) for c in ("O", "I", *spatial)),
            tuple(out.index(c) for c in ("N", "C", *spatial)))


def _channels_last(ndim: int) -> tuple[tuple[int, ...], ...]:
    spatial = "DHW"[3 - (ndim - 2):] if ndim <= 5 else "".join(chr(97 + i) for i in range(ndim - 2))
    return conv_dimension_numbers("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")


def padtype_to_pads(in_shape: Sequence[int], window_shape: Sequence[int],
                    window_strides: Sequence[int], padding: Padding,
                    dilation: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
    """``"VALID"``, ``"SAME"`` (output size ``ceil(n / stride)``; the extra
    pixel goes at the end, as XLA and PyTorch) or explicit ``(lo, hi)`` pairs."""
    dilation = dilation or (1,) * len(in_shape)
    if not isinstance(padding, str):
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
        if len(pads) != len(in_shape):
            raise ValueError(f"padding has {len(pads)} (lo, hi) pairs for {len(in_shape)} "
                             "spatial dimensions")
        return pads
    kind = padding.upper()
    if kind == "VALID":
        return ((0, 0),) * len(in_shape)
    if kind != "SAME":
        raise ValueError(f"padding must be 'SAME', 'VALID' or (lo, hi) pairs, got {padding!r}")
    pads = []
    for n, k, s, d in zip(in_shape, window_shape, window_strides, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _ints(v: Any, n: int, name: str) -> tuple[int, ...]:
    """``n`` positive ints: a stride, dilation or window below 1 has no meaning
    (stride 0 would otherwise surface as a bare ZeroDivisionError)."""
    if v is None:
        return (1,) * n
    out = (int(v),) * n if isinstance(v, (int, np.integer)) else tuple(int(x) for x in v)
    if len(out) != n:
        raise ValueError(f"{name} has {len(out)} entries for {n} spatial dimensions")
    if min(out, default=1) < 1:
        raise ValueError(f"{name} must be >= 1 in every dimension, got {out}; "
                         "use 1 where no stride, dilation or window is wanted")
    return out


def conv_general_dilated(lhs: Any, rhs: Any, window_strides: Sequence[int] | None = None,
                         padding: Padding = "VALID",
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Sequence[str] | Sequence[Sequence[int]] | None = None,
                         feature_group_count: int = 1) -> Any:
    """XLA's ConvGeneralDilated (a cross-correlation, as every DL framework's "conv").

    ``lhs_dilation`` inserts zeros between input pixels (the transposed
    convolution); ``rhs_dilation`` spaces the kernel taps (atrous);
    ``feature_group_count`` splits the features into independent groups
    (depthwise when it equals the input features). Channels-last by default.
    """
    lhs, rhs = _array(lhs), _array(rhs)
    ndim = lhs.ndim
    if rhs.ndim != ndim or ndim < 3:
        raise ValueError(f"conv_general_dilated: input and kernel need the same rank >= 3, "
                         f"got shapes {_common.shape_of(lhs)} and {_common.shape_of(rhs)}")
    if dimension_numbers is None:
        dims = _channels_last(ndim)
    elif isinstance(dimension_numbers[0], str):
        dims = conv_dimension_numbers(*dimension_numbers)
    else:
        dims = tuple(tuple(int(d) for d in spec) for spec in dimension_numbers)
    n_sp = ndim - 2
    strides = _ints(window_strides, n_sp, "window_strides")
    lhs_dil = _ints(lhs_dilation, n_sp, "lhs_dilation")
    rhs_dil = _ints(rhs_dilation, n_sp, "rhs_dilation")
    lshape, rshape = _common.shape_of(lhs), _common.shape_of(rhs)
    groups = int(feature_group_count)
    check_conv_features(lshape, rshape, dims, groups)
    if isinstance(padding, str) and padding.upper() == "SAME" and lhs_dil != (1,) * n_sp:
        raise ValueError("padding='SAME' with lhs_dilation is ambiguous; give (lo, hi) pairs")
    pads = padtype_to_pads([lshape[d] for d in dims[0][2:]], [rshape[d] for d in dims[1][2:]],
                           strides, padding, rhs_dil)
    return conv_general_dilated_p.bind(
        lhs, rhs, window_strides=strides, padding=pads, lhs_dilation=lhs_dil,
        rhs_dilation=rhs_dil, dimension_numbers=dims,
        feature_group_count=groups)


def _window_params(x: Any, window_dimensions: Sequence[int],
                   window_strides: Sequence[int] | None, padding: Padding):
    shape = _common.shape_of(x)
    window = _ints(window_dimensions, len(shape), "window_dimensions")
    strides = _ints(window_strides, len(shape), "window_strides")
    return {"window_dimensions": window, "window_strides": strides,
            "padding": padtype_to_pads(shape, window, strides, padding)}


def reduce_window_sum(x: Any, window_dimensions: Sequence[int],
                      window_strides: Sequence[int] | None = None,
                      padding: Padding = "VALID") -> Any:
    """Sum over every window (zero padding). Windows span every axis of ``x``."""
    x = _array(x)
    return reduce_window_sum_p.bind(x, **_window_params(x, window_dimensions, window_strides,
                                                        padding))


def reduce_window_max(x: Any, window_dimensions: Sequence[int],
                      window_strides: Sequence[int] | None = None,
                      padding: Padding = "VALID") -> Any:
    """Maximum over every window (padding never wins). The derivative goes to
    the first maximum of each window, as XLA's SelectAndScatter and PyTorch."""
    x = _array(x)
    return reduce_window_max_p.bind(x, **_window_params(x, window_dimensions, window_strides,
                                                        padding))


_MONOIDS: dict[str, tuple[Callable, Callable]] = {
    "sum": (reduce_window_sum, lambda dtype: 0),
    "max": (reduce_window_max, lambda dtype: -np.inf if np.dtype(dtype).kind == "f"
            else np.iinfo(dtype).min),
}


def _monoid(computation: str | Callable) -> str | None:
    from . import numpy as wnp

    if isinstance(computation, str):
        return computation if computation in _MONOIDS else None
    for kind, fns in (("sum", (np.add, wnp.add)), ("max", (np.maximum, wnp.maximum))):
        if any(computation == f for f in fns):
            return kind
    return None


def reduce_window(operand: Any, init_value: Any, computation: str | Callable,
                  window_dimensions: Sequence[int], window_strides: Sequence[int] | None = None,
                  padding: Padding = "VALID") -> Any:
    """XLA's ReduceWindow for its two differentiable monoids.

    ``computation`` is ``"sum"``/``"max"`` or an add/maximum function (NumPy's
    or ours); ``init_value`` must be its identity (0, or -inf / the lowest
    integer), which also fills the padding.
    """
    kind = _monoid(computation)
    if kind is None:
        raise NotImplementedError(f"reduce_window: computation {computation!r} is not supported; "
                                  "use 'sum' (add) or 'max' (maximum); min is -max(-x)")
    fn, identity = _MONOIDS[kind]
    dtype = operand.dtype if hasattr(operand, "dtype") else np.result_type(operand)
    if init_value != identity(dtype):
        raise ValueError(f"reduce_window: init_value for {kind!r} must be its identity "
                         f"{identity(dtype)!r}, got {init_value!r}")
    return fn(operand, window_dimensions, window_strides, padding)


# ---- indexing with run-time starts ---------------------------------------------------------


def dynamic_slice(operand: Any, start_indices: Sequence[Any], slice_sizes: Sequence[int]
                  ) -> Any:
    """``operand[s0:s0+n0, ...]`` with start indices known only at run time (traced
    scalars), clamped so the window fits, as XLA's DynamicSlice."""
    return dynamic.dynamic_slice(_array(operand), tuple(start_indices), tuple(slice_sizes))


def dynamic_update_slice(operand: Any, update: Any, start_indices: Sequence[Any]) -> Any:
    """A copy of ``operand`` with ``update`` written at run-time (clamped) starts: the
    functional form of ``a[s:s+n] = update`` that works on untraced arrays too."""
    return dynamic.dynamic_update_slice(_array(operand), _array(update), tuple(start_indices))


def dynamic_slice_in_dim(operand: Any, start_index: Any, slice_size: int, axis: int = 0
                         ) -> Any:
    """``dynamic_slice`` along one axis: ``slice_size`` entries from ``start_index``."""
    operand = _array(operand)
    axis = axis % operand.ndim
    starts = [0] * operand.ndim
    starts[axis] = start_index
    sizes = list(operand.shape)
    sizes[axis] = int(slice_size)
    return dynamic_slice(operand, starts, sizes)


def dynamic_update_slice_in_dim(operand: Any, update: Any, start_index: Any, axis: int
                                ) -> Any:
    """``dynamic_update_slice`` along one axis."""
    operand = _array(operand)
    starts: list[Any] = [0] * operand.ndim
    starts[axis % operand.ndim] = start_index
    return dynamic_update_slice(operand, update, starts)
