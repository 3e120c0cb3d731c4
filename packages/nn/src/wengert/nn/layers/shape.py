"""Layers that only move data: Flatten and Upsample."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp

from ..core import Layer, on_device_of, static

__all__ = ["Flatten", "Upsample"]

Array = Any


class Flatten(Layer):
    """``(N, ...) -> (N, prod(...))``."""

    def __call__(self, x: Array) -> Array:
        return wnp.reshape(x, (wnp.shape(x)[0], -1))


@cache
def _interpolation(n_in: int, n_out: int, mode: str, dtype: Any) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix of 1-D resampling (PyTorch's
    ``align_corners=False`` coordinates for bilinear)."""
    m = np.zeros((n_out, n_in), dtype)
    rows = np.arange(n_out)
    if mode == "nearest":
        m[rows, np.minimum(rows * n_in // n_out, n_in - 1)] = 1
        return m
    src = np.maximum((rows + 0.5) * n_in / n_out - 0.5, 0)
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    np.add.at(m, (rows, lo), 1 - frac)
    np.add.at(m, (rows, hi), frac)
    return m


class Upsample(Layer):
    """Resize the spatial axes by integer ``scale`` (``"nearest"`` or
    ``"bilinear"``/``"linear"``/``"trilinear"``, separable). Each axis is one
    small matrix product, so it is differentiable and runs on any device."""

    scale: tuple = static()
    mode: str = static()

    def __init__(self, scale: int | Sequence[int] = 2, mode: str = "nearest") -> None:
        if mode not in ("nearest", "bilinear", "linear", "trilinear"):
            raise ValueError(f"Upsample: unknown mode {mode!r}")
        self.scale = (int(scale),) if isinstance(scale, (int, np.integer)) else tuple(scale)
        self.mode = "nearest" if mode == "nearest" else "linear"

    def __call__(self, x: Array) -> Array:
        n_sp = wnp.ndim(x) - 2
        scale = self.scale * n_sp if len(self.scale) == 1 else self.scale
        for axis, s in zip(range(1, n_sp + 1), scale):
            n = wnp.shape(x)[axis]
            m = _interpolation(n, n * s, self.mode, np.dtype(x.dtype).name)
            m = on_device_of(m, x)
            x = wnp.moveaxis(wnp.tensordot(m, x, axes=([1], [axis])), 0, axis)
        return x

    def _signature(self) -> str:
        return f"scale={self.scale}, mode={self.mode!r}"
