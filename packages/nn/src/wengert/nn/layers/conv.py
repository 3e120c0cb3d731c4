"""Convolutions, channels-last: inputs ``(N, spatial..., C)``, kernels
``(K..., C_in / groups, C_out)``. 1-, 2- and 3-D from the kernel's rank."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp
from wengert.ad import lax

from .. import init as initialisers
from ..activations import identity
from ..core import Layer, match_dtype, static
from ..errors import ShapeError

__all__ = ["Conv", "ConvTranspose", "DepthwiseConv"]

Array = Any
Pad = int | str | Sequence[int] | Sequence[tuple[int, int]]


def _tuple(v: int | Sequence[int], n: int) -> tuple[int, ...]:
    return (int(v),) * n if isinstance(v, (int, np.integer)) else tuple(int(i) for i in v)


def _pads(pad: Pad, n: int) -> str | tuple[tuple[int, int], ...]:
    """``"same"``, one int for all sides, one int per axis, or (lo, hi) per axis."""
    if isinstance(pad, str):
        if pad.lower() != "same":
            raise ValueError(f"pad must be 'same', an int or (lo, hi) pairs, got {pad!r}")
        return "SAME"
    if isinstance(pad, (int, np.integer)):
        return ((int(pad), int(pad)),) * n
    pad = tuple(pad)
    if all(isinstance(p, (int, np.integer)) for p in pad):
        return tuple((int(p), int(p)) for p in pad)
    return tuple((int(lo), int(hi)) for lo, hi in pad)


def _describe(layer: Any, n_in: int, n_out: int) -> str:
    kernel = tuple(layer.weight.shape[:-2])
    parts = [f"{kernel}, {n_in} => {n_out}"]
    if layer.σ is not identity:
        parts.append(getattr(layer.σ, "__name__", str(layer.σ)))
    for name, default in (("stride", 1), ("dilation", 1), ("groups", 1)):
        v = getattr(layer, name)
        if v != default and v != (default,) * len(kernel):
            parts.append(f"{name}={v}")
    if layer.pad != ((0, 0),) * len(kernel):
        parts.append(f"pad={layer.pad}")
    if layer.bias is None:
        parts.append("bias=False")
    return ", ".join(parts)


class _Convolution(Layer):
    """Fields and set-up shared by `Conv` and `ConvTranspose`: they differ only
    in how ``_weight_features`` lays out the kernel's two feature axes."""

    weight: Array
    bias: Array | None
    σ: Callable = static()
    stride: tuple = static()
    pad: Any = static()
    dilation: tuple = static()
    groups: int = static()

    def __init__(self, kernel: Sequence[int], n_in: int, n_out: int, σ: Callable = identity, *,
                 stride: int | Sequence[int] = 1, pad: Pad = 0,
                 dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = True,
                 init: Callable = initialisers.glorot_uniform, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        kernel = tuple(kernel)
        if n_in % groups or n_out % groups:
            raise ValueError(f"{type(self).__name__}: channels {n_in} => {n_out} must be "
                             f"divisible by groups={groups}")
        n = len(kernel)
        self.weight = init(rng, *kernel, *self._weight_features(n_in, n_out, groups),
                           dtype=dtype)
        self.bias = np.zeros(n_out, dtype) if bias else None
        self.σ, self.groups = σ, int(groups)
        self.stride, self.dilation = _tuple(stride, n), _tuple(dilation, n)
        self.pad = _pads(pad, n)

    @staticmethod
    def _weight_features(n_in: int, n_out: int, groups: int) -> tuple[int, int]:
        return n_in // groups, n_out

    def _check_input(self, x: Array, n_in: int) -> Array:
        """Channels-last input of the kernel's rank, in the weights' dtype; an
        NCHW batch (PyTorch's layout) is named as such."""
        shape, n = wnp.shape(x), self.weight.ndim - 2
        name = type(self).__name__
        if len(shape) != n + 2:
            raise ValueError(f"{name}: a {n}-D convolution takes (N, {n} spatial axes, C) "
                             f"input, got shape {shape}")
        if shape[-1] != n_in:
            hint = (f"; axis 1 has {n_in}: this looks like a channels-first (NCHW) batch, "
                    f"as PyTorch's; wengert.nn is channels-last: pass np.moveaxis(x, 1, -1)"
                    if shape[1] == n_in else "")
            raise ValueError(f"{name}: expects {n_in} input channels on the last axis "
                             f"(channels-last, (N, ..., C)), got shape {shape}{hint}")
        return match_dtype(x, self.weight.dtype, name)


class Conv(_Convolution):
    """``σ(conv(x, weight) + bias)`` (cross-correlation, as every framework).

    ``pad`` is ``"same"`` (output size ``ceil(n / stride)``), an int, one int
    per axis, or ``(lo, hi)`` per axis.
    """

    def __call__(self, x: Array) -> Array:
        x = self._check_input(x, self.weight.shape[-2] * self.groups)
        self._check_spatial_size(x)
        y = lax.conv_general_dilated(x, self.weight, self.stride, self.pad,
                                     rhs_dilation=self.dilation,
                                     feature_group_count=self.groups)
        return self.σ(y if self.bias is None else y + self.bias)

    def _signature(self) -> str:
        return _describe(self, self.weight.shape[-2] * self.groups, self.weight.shape[-1])


    def _check_spatial_size(self, x: Array) -> None:
        """Refuse an input smaller than the (dilated) kernel: the output would be empty."""
        if isinstance(self.pad, str):  # "same": the output has ceil(n / stride) >= 1 pixels
            return
        kernel = self.weight.shape[:-2]
        spatial = tuple(getattr(x, "shape", ()))[-len(kernel) - 1:-1]
        padded = [n + lo + hi for n, (lo, hi) in zip(spatial, self.pad)]
        extent = [d * (k - 1) + 1 for k, d in zip(kernel, self.dilation)]
        if len(spatial) == len(kernel) and any(n < e for n, e in zip(padded, extent)):
            raise ShapeError(f"{type(self).__name__}({self._signature()}) got an input of shape "
                             f"{tuple(x.shape)} whose spatial size {spatial} (padded: "
                             f"{tuple(padded)}) is smaller than the kernel's extent "
                             f"{tuple(extent)}; use a larger input, more padding or pad='same'")


class DepthwiseConv(Conv):
    """A Conv with one group per input channel (``n_out`` a multiple of ``n_in``)."""

    def __init__(self, kernel: Sequence[int], n_in: int, n_out: int, σ: Callable = identity,
                 **kwargs: Any) -> None:
        super().__init__(kernel, n_in, n_out, σ, groups=n_in, **kwargs)


class ConvTranspose(_Convolution):
    """The adjoint of `Conv` with respect to its input ("deconvolution"):
    upsamples by ``stride``. ``weight`` is ``(K..., C_out / groups, C_in)``, the
    kernel of the Conv it transposes; the output size is
    ``(n - 1) * stride - pad_lo - pad_hi + dilation * (k - 1) + 1 + output_padding``
    as PyTorch's ``ConvTranspose``, or ``n * stride`` with ``pad="same"``. The
    other keywords are `Conv`'s.
    """

    output_padding: tuple = static()

    def __init__(self, kernel: Sequence[int], n_in: int, n_out: int, σ: Callable = identity, *,
                 output_padding: int | Sequence[int] = 0, **kwargs: Any) -> None:
        super().__init__(kernel, n_in, n_out, σ, **kwargs)
        self.output_padding = _tuple(output_padding, self.weight.ndim - 2)

    @staticmethod
    def _weight_features(n_in: int, n_out: int, groups: int) -> tuple[int, int]:
        return n_out // groups, n_in

    def _conv_padding(self) -> tuple[tuple[int, int], ...]:
        kernel = self.weight.shape[:-2]
        pads = []
        for i, (k, s, d, extra) in enumerate(zip(kernel, self.stride, self.dilation,
                                                 self.output_padding)):
            span = d * (k - 1)
            if self.pad == "SAME":
                total = span + 1 - s  # the input-side padding that gives n * s outputs
                pads.append((span - total // 2, span - (total - total // 2) + extra))
            else:
                lo, hi = self.pad[i]
                pads.append((span - lo, span - hi + extra))
        return tuple(pads)

    def __call__(self, x: Array) -> Array:
        w = self.weight
        x = self._check_input(x, w.shape[-1])
        n = w.ndim - 2
        kernel, (o_g, n_in) = w.shape[:n], w.shape[n:]
        g = self.groups
        # Per group, swap in/out features and flip the taps: the forward-conv kernel.
        w = wnp.reshape(w, kernel + (o_g, g, n_in // g))
        w = wnp.transpose(w, tuple(range(n)) + (n + 2, n + 1, n))
        w = wnp.flip(wnp.reshape(w, kernel + (n_in // g, g * o_g)), tuple(range(n)))
        y = lax.conv_general_dilated(x, w, None, self._conv_padding(), lhs_dilation=self.stride,
                                     rhs_dilation=self.dilation, feature_group_count=g)
        return self.σ(y if self.bias is None else y + self.bias)

    def _signature(self) -> str:
        return _describe(self, self.weight.shape[-1], self.weight.shape[-2] * self.groups)
