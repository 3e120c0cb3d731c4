"""Normalisation layers, channels-last: statistics over the axes a layer
normalises, then a learned per-feature scale ``γ`` and shift ``β``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp
from wengert import ad

from ..activations import identity
from ..core import Buffer, Layer, is_array, match_dtype, static
from ..state import current, record

__all__ = ["BatchNorm", "GroupNorm", "InstanceNorm", "LayerNorm"]

Array = Any


def _moments(x: Array, axes: tuple[int, ...]) -> tuple[Array, Array, Array]:
    """``(mean, x - mean, biased variance)`` over ``axes``: the centred values come
    along, so normalising does not subtract the mean a second time."""
    mean = wnp.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    return mean, centred, wnp.mean(centred * centred, axis=axes, keepdims=True)


def _affine(y: Array, γ: Array | None, β: Array | None) -> Array:
    if γ is not None:
        y = y * γ
    return y if β is None else y + β


def _scale_shift(n: int | tuple, affine: bool, dtype: Any) -> tuple[Array | None, Array | None]:
    if not affine:
        return None, None
    return np.ones(n, dtype), np.zeros(n, dtype)


def _as_parameter_dtype(x: Array, layer: Layer) -> Array:
    """Keep a norm layer's dtype: that of its scale, or of its running mean."""
    like = layer.γ if layer.γ is not None else getattr(layer, "mean", None)
    like = like.value if isinstance(like, Buffer) else like
    return x if like is None else match_dtype(x, like.dtype, type(layer).__name__)


def _nonzero(cotangent: Array | None) -> bool:
    """Whether a cotangent can change the result (a traced one always may)."""
    return cotangent is not None and (not is_array(cotangent) or bool(cotangent.any()))


@ad.adjoint
def _batch_statistics_normalised(x: Array, γ: Array | None, β: Array | None, ε: float):
    """Training-mode BatchNorm over every axis but the last: ``(y, mean, var)``,
    with the textbook pullback (Ioffe & Szegedy 2015): the input's cotangent is
    ``γ/σ (dy - mean(dy) - x̂ mean(dy x̂))``, five passes over the activations,
    where the pullbacks of the forward's eight operations take about fifteen.
    Written with `wengert.ad.numpy`, so it is differentiable again."""
    axes = tuple(range(wnp.ndim(x) - 1))
    n = float(np.prod([wnp.shape(x)[a] for a in axes]))
    mean, centred, var = _moments(x, axes)
    inv = 1 / wnp.sqrt(var + ε)
    x_hat = centred * inv

    def back(cotangents):
        gy, g_mean, g_var = cotangents
        dβ = wnp.sum(gy, axis=axes)
        dγ = wnp.sum(gy * x_hat, axis=axes)
        gx = (gy - dβ / n - x_hat * (dγ / n)) * (inv if γ is None else inv * γ)
        if _nonzero(g_mean):  # the statistics' own cotangents (zero in a training step,
            gx = gx + g_mean / n  # where only the running statistics read them)
        if _nonzero(g_var):
            gx = gx + g_var * (2 / n) * centred
        return gx, None if γ is None else dγ, None if β is None else dβ, None

    return (_affine(x_hat, γ, β), mean, var), back


class BatchNorm(Layer):
    """Normalise each channel over the batch and spatial axes (Ioffe & Szegedy
    2015). Training mode uses the batch statistics and updates the running
    ones (``momentum`` weight on the new batch; unbiased variance, as
    PyTorch); test mode uses the running statistics."""

    γ: Array | None
    β: Array | None
    mean: Buffer | None
    var: Buffer | None
    σ: Callable = static()
    ε: float = static()
    momentum: float = static()
    training: bool = static()

    def __init__(self, channels: int, σ: Callable = identity, *, affine: bool = True,
                 track_stats: bool = True, ε: float = 1e-5, momentum: float = 0.1,
                 training: bool = True, dtype: Any = np.float32) -> None:
        self.γ, self.β = _scale_shift(channels, affine, dtype)
        self.mean = Buffer(np.zeros(channels, dtype)) if track_stats else None
        self.var = Buffer(np.ones(channels, dtype)) if track_stats else None
        self.σ, self.ε, self.momentum, self.training = σ, float(ε), float(momentum), training

    def __call__(self, x: Array) -> Array:
        x = _as_parameter_dtype(x, self)
        axes = tuple(range(wnp.ndim(x) - 1))
        if self.training or self.mean is None:
            y, mean, var = _batch_statistics_normalised(x, self.γ, self.β, self.ε)
            if self.training and self.mean is not None:
                if is_array(x) and not is_array(mean):  # a constant input's statistics,
                    mean, _, var = _moments(x, axes)  # traced with γ by the adjoint: store now
                self._update_stats(mean, var, int(np.prod([wnp.shape(x)[a] for a in axes])))
            return self.σ(y)
        mean, var = current(self.mean), current(self.var)
        y = (x - mean) * (1 / wnp.sqrt(var + self.ε))
        return self.σ(_affine(y, self.γ, self.β))

    def _update_stats(self, mean: Array, var: Array, n: int) -> None:
        m = self.momentum
        c = wnp.shape(mean)[-1]
        record(self.mean, (1 - m) * current(self.mean) + m * wnp.reshape(mean, (c,)), "BatchNorm")
        unbiased = wnp.reshape(var, (c,)) * (n / max(n - 1, 1))
        record(self.var, (1 - m) * current(self.var) + m * unbiased, "BatchNorm")

    def _signature(self) -> str:
        c = (self.γ if self.γ is not None else self.mean.value).shape[0]
        act = "" if self.σ is identity else f", {self.σ.__name__}"
        return f"{c}{act}" + ("" if self.training else ", testmode")


class LayerNorm(Layer):
    """Normalise over the last ``len(shape)`` axes of each sample (Ba et al. 2016)."""

    γ: Array | None
    β: Array | None
    shape: tuple = static()
    ε: float = static()

    def __init__(self, shape: int | Sequence[int], *, affine: bool = True, ε: float = 1e-5,
                 dtype: Any = np.float32) -> None:
        self.shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        self.γ, self.β = _scale_shift(self.shape, affine, dtype)
        self.ε = float(ε)

    def __call__(self, x: Array) -> Array:
        x = _as_parameter_dtype(x, self)
        nd = wnp.ndim(x)
        _, centred, var = _moments(x, tuple(range(nd - len(self.shape), nd)))
        return _affine(centred * (1 / wnp.sqrt(var + self.ε)), self.γ, self.β)

    def _signature(self) -> str:
        return str(self.shape if len(self.shape) > 1 else self.shape[0])


class GroupNorm(Layer):
    """Normalise each sample over its spatial axes and groups of channels (Wu & He 2018)."""

    γ: Array | None
    β: Array | None
    groups: int = static()
    ε: float = static()

    def __init__(self, channels: int, groups: int, *, affine: bool = True, ε: float = 1e-5,
                 dtype: Any = np.float32) -> None:
        if channels % groups:
            raise ValueError(f"GroupNorm: {channels} channels are not divisible into "
                             f"{groups} groups")
        self.γ, self.β = _scale_shift(channels, affine, dtype)
        self.groups, self.ε = int(groups), float(ε)

    def __call__(self, x: Array) -> Array:
        x = _as_parameter_dtype(x, self)
        shape = wnp.shape(x)
        g = wnp.reshape(x, shape[:-1] + (self.groups, shape[-1] // self.groups))
        axes = tuple(range(1, len(shape) - 1)) + (len(shape),)
        _, centred, var = _moments(g, axes)
        y = wnp.reshape(centred * (1 / wnp.sqrt(var + self.ε)), shape)
        return _affine(y, self.γ, self.β)

    def _signature(self) -> str:
        c = self.γ.shape[0] if self.γ is not None else "?"
        return f"{c}, groups={self.groups}"


class InstanceNorm(GroupNorm):
    """Normalise each channel of each sample over its spatial axes (Ulyanov et
    al. 2016): GroupNorm with one channel per group. No running statistics
    (PyTorch's default ``track_running_stats=False``); ``affine`` off by default."""

    def __init__(self, channels: int, *, affine: bool = False, ε: float = 1e-5,
                 dtype: Any = np.float32) -> None:
        super().__init__(channels, channels, affine=affine, ε=ε, dtype=dtype)
