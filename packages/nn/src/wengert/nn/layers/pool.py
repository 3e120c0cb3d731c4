"""Pooling over the spatial axes of channels-last inputs ``(N, spatial..., C)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp
from wengert.ad import lax

from ..core import Layer, static
from .conv import Pad, _pads, _tuple

__all__ = ["AdaptiveMeanPool", "GlobalMaxPool", "GlobalMeanPool", "MaxPool", "MeanPool"]

Array = Any


def _window_args(x: Array, window: tuple, stride: tuple, pad: Any) -> tuple:
    full = (1,) + window + (1,)
    steps = (1,) + stride + (1,)
    pads = pad if isinstance(pad, str) else ((0, 0),) + pad + ((0, 0),)
    return full, steps, pads


class _Pool(Layer):
    window: tuple = static()
    stride: tuple = static()
    pad: Any = static()

    def __init__(self, window: Sequence[int], *, stride: int | Sequence[int] | None = None,
                 pad: Pad = 0) -> None:
        self.window = tuple(int(k) for k in window)
        n = len(self.window)
        self.stride = self.window if stride is None else _tuple(stride, n)
        self.pad = _pads(pad, n)

    def _signature(self) -> str:
        extra = "" if self.stride == self.window else f", stride={self.stride}"
        if self.pad != ((0, 0),) * len(self.window):
            extra += f", pad={self.pad}"
        return f"{self.window}{extra}"


class MaxPool(_Pool):
    """Maximum over each window (stride defaults to the window)."""

    def __call__(self, x: Array) -> Array:
        return lax.reduce_window_max(x, *_window_args(x, self.window, self.stride, self.pad))


class MeanPool(_Pool):
    """Mean over each window; padding counts as zeros (PyTorch's default)."""

    def __call__(self, x: Array) -> Array:
        s = lax.reduce_window_sum(x, *_window_args(x, self.window, self.stride, self.pad))
        return s * (1.0 / int(np.prod(self.window)))


def _spatial(x: Array) -> tuple[int, ...]:
    return tuple(range(1, wnp.ndim(x) - 1))


class GlobalMaxPool(Layer):
    """Maximum over all spatial positions; keeps size-1 spatial axes."""

    def __call__(self, x: Array) -> Array:
        return wnp.max(x, axis=_spatial(x), keepdims=True)


class GlobalMeanPool(Layer):
    """Mean over all spatial positions; keeps size-1 spatial axes."""

    def __call__(self, x: Array) -> Array:
        return wnp.mean(x, axis=_spatial(x), keepdims=True)


class AdaptiveMeanPool(Layer):
    """Mean pooling to a fixed output size: stride ``n // out``, window
    ``n - (out - 1) * stride`` (Flux's rule; equal to PyTorch's adaptive
    pooling whenever ``out`` divides ``n``)."""

    out: tuple = static()

    def __init__(self, out: Sequence[int]) -> None:
        self.out = tuple(int(o) for o in out)

    def __call__(self, x: Array) -> Array:
        sizes = wnp.shape(x)[1:-1]
        stride = tuple(n // o for n, o in zip(sizes, self.out))
        window = tuple(n - (o - 1) * s for n, o, s in zip(sizes, self.out, stride))
        return MeanPool(window, stride=stride)(x)

    def _signature(self) -> str:
        return str(self.out)
