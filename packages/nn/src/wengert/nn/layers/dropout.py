"""Dropout: random zeroing in training mode, the identity in test mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp

from .. import init as initialisers
from ..core import Layer, on_device_of, static

__all__ = ["Dropout"]

Array = Any


class Dropout(Layer):
    """Zero each element with probability ``p`` and scale the rest by
    ``1 / (1 - p)`` (inverted dropout). ``dims`` limits the random mask to
    some axes (e.g. ``dims=(0, 3)`` drops whole channels of NHWC images); the
    mask is drawn from ``rng``, so runs are reproducible."""

    p: float = static()
    dims: tuple | None = static()
    rng: Any = static()
    training: bool = static()

    def __init__(self, p: float, *, dims: Sequence[int] | None = None, rng: Any = None,
                 training: bool = True) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p, self.dims = float(p), None if dims is None else tuple(dims)
        self.rng, self.training = initialisers.default_rng(rng), training

    def __call__(self, x: Array) -> Array:
        if not self.training or self.p == 0:
            return x
        shape = wnp.shape(x)
        if self.dims is not None:
            shape = tuple(d if i in self.dims or i - len(shape) in self.dims else 1
                          for i, d in enumerate(shape))
        keep = self.rng.random(shape) >= self.p
        scale = np.asarray(keep, dtype=x.dtype) * np.asarray(1 / (1 - self.p), x.dtype)
        return x * on_device_of(scale, x)

    def _signature(self) -> str:
        return f"p={self.p}" + ("" if self.dims is None else f", dims={self.dims}") + \
            ("" if self.training else ", testmode")
