"""Weight initialisers, each seeded by an explicit ``numpy.random.Generator``.

Call as ``init(rng, *shape, dtype=np.float32)``. Fans follow the
channels-last kernel layout ``(K..., in, out)`` (a Dense weight is ``(in,
out)``): ``fan_in = prod(K) * in``, ``fan_out = prod(K) * out``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["default_rng", "fans", "glorot_normal", "glorot_uniform", "kaiming_normal",
           "kaiming_uniform", "normal", "ones", "orthogonal", "seed", "uniform", "zeros"]

Rng = np.random.Generator
DType = Any

_default = np.random.default_rng()


def default_rng(rng: Rng | int | None) -> Rng:
    """``rng`` itself (an int seeds a new generator), or the library's generator
    when ``None`` (unseeded until `seed` is called)."""
    if rng is None:
        return _default
    return np.random.default_rng(rng) if isinstance(rng, (int, np.integer)) else rng


def seed(value: int | None) -> None:
    """Seed the generator every layer draws from when given no ``rng=``
    (initial weights, Dropout masks, DataLoader shuffles without ``rng``), so a
    script's runs repeat (as ``torch.manual_seed``); ``None`` reseeds from the OS."""
    global _default
    _default = np.random.default_rng(value)


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2], dtype=np.int64))
    return receptive * shape[-2], receptive * shape[-1]


def zeros(rng: Rng | None, *shape: int, dtype: DType = np.float32) -> np.ndarray:
    return np.zeros(shape, dtype)


def ones(rng: Rng | None, *shape: int, dtype: DType = np.float32) -> np.ndarray:
    return np.ones(shape, dtype)


def uniform(rng: Rng | None, *shape: int, scale: float = 1.0,
            dtype: DType = np.float32) -> np.ndarray:
    """U(-scale, scale)."""
    return default_rng(rng).uniform(-scale, scale, shape).astype(dtype)


def normal(rng: Rng | None, *shape: int, std: float = 1.0,
           dtype: DType = np.float32) -> np.ndarray:
    return (std * default_rng(rng).standard_normal(shape)).astype(dtype)


def glorot_uniform(rng: Rng | None, *shape: int, gain: float = 1.0,
                   dtype: DType = np.float32) -> np.ndarray:
    """Glorot & Bengio (2010): keeps activation variance across layers (Flux's default)."""
    fan_in, fan_out = fans(shape)
    return uniform(rng, *shape, scale=gain * np.sqrt(6 / (fan_in + fan_out)), dtype=dtype)


def glorot_normal(rng: Rng | None, *shape: int, gain: float = 1.0,
                  dtype: DType = np.float32) -> np.ndarray:
    fan_in, fan_out = fans(shape)
    return normal(rng, *shape, std=gain * np.sqrt(2 / (fan_in + fan_out)), dtype=dtype)


def kaiming_uniform(rng: Rng | None, *shape: int, gain: float = np.sqrt(2),
                    dtype: DType = np.float32) -> np.ndarray:
    """He et al. (2015): variance 2 / fan_in, for ReLU networks."""
    fan_in, _ = fans(shape)
    return uniform(rng, *shape, scale=gain * np.sqrt(3 / fan_in), dtype=dtype)


def kaiming_normal(rng: Rng | None, *shape: int, gain: float = np.sqrt(2),
                   dtype: DType = np.float32) -> np.ndarray:
    fan_in, _ = fans(shape)
    return normal(rng, *shape, std=gain / np.sqrt(fan_in), dtype=dtype)


def orthogonal(rng: Rng | None, *shape: int, gain: float = 1.0,
               dtype: DType = np.float32) -> np.ndarray:
    """Saxe et al. (2014): a (semi-)orthogonal matrix over ``(prod(shape[:-1]), shape[-1])``."""
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    cols = shape[-1]
    a = default_rng(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))  # a uniform (Haar) draw
    q = q if rows >= cols else q.T
    return (gain * q).reshape(shape).astype(dtype)
