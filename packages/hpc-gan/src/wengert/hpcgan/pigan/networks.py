"""The PI-GAN's players: field generators ``G(x, ξ)`` and the snapshot discriminator.

A generator is an MLP of the coordinates and the latent ``ξ``.  Its first layer is
split, ``tanh(x W_x + ξ W_ξ + b)``, so that the latent half is computed once per
realisation and broadcast over that realisation's points: on ``hanford`` ``ξ`` may have
thousands of entries while a step evaluates tens of thousands of points.

Mixed precision (`computing_in`): the players keep float32 master weights, and a step
differentiates a view of them whose layers compute in bfloat16.  The casts are ordinary
differentiable operations, so the gradient arrives in float32 on the master weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import wengert.ad.numpy as wnp
from wengert import ad, nn

Array = Any


class FieldGenerator(nn.Layer):
    """``G(x, ξ)``: points ``x`` of shape ``(n, d)`` and latents ``ξ`` of shape ``(b, m)``
    give the field of each of the ``b`` realisations at each point, shape ``(b, n)``.

    The raw network output is mapped to physical units by ``offset + scale * net``
    (both fixed from the training observations), so the network works on O(1) values.
    """

    coords: nn.Dense
    latent: nn.Dense
    hidden: nn.Chain
    out: nn.Dense
    offset: float = nn.static()
    scale: float = nn.static()

    def __init__(self, dim: int, latent_dim: int, width: int, depth: int, *, offset: float = 0.0,
                 scale: float = 1.0, rng: np.random.Generator, dtype: Any = np.float32) -> None:
        if depth < 1:
            raise ValueError(f"a generator needs at least 1 hidden layer, got depth={depth}")
        self.coords = nn.Dense(dim, width, rng=rng, dtype=dtype)
        self.latent = nn.Dense(latent_dim, width, bias=False, rng=rng, dtype=dtype)
        self.hidden = nn.Chain(*(nn.Dense(width, width, nn.tanh, rng=rng, dtype=dtype)
                                 for _ in range(depth - 1)))
        self.out = nn.Dense(width, 1, rng=rng, dtype=dtype)
        self.offset, self.scale = float(offset), float(scale)

    def __call__(self, x: Array, xi: Array) -> Array:
        h = wnp.tanh(self.coords(x)[None, :, :] + self.latent(xi)[:, None, :])
        y = self.out(self.hidden(_as(h, self.out.weight.dtype)))[..., 0]
        return self.offset + self.scale * _as(y, h.dtype)

    def computing_in(self, dtype: Any) -> FieldGenerator:
        """This generator with its hidden and output layers in ``dtype`` (bf16 mixed
        precision).  The first layer, where the coordinates enter, stays in the master
        dtype: it is cheap (``d`` and ``m`` inputs), and bfloat16's 8-bit mantissa would
        move collocation points by up to 1/256 of their coordinate.  The output comes
        back in the master dtype, so the residual is accumulated there."""
        return self.replace(hidden=cast(self.hidden, dtype), out=cast(self.out, dtype))

    def _sublayers(self) -> list[tuple[str, Any]]:
        return [("coords", self.coords), ("latent", self.latent), ("hidden", self.hidden),
                ("out", self.out)]


class Generators(nn.Layer):
    """The two generators of one PI-GAN: log-conductivity ``G_Y`` and head ``G_u``."""

    Y: FieldGenerator
    u: FieldGenerator

    def __init__(self, Y: FieldGenerator, u: FieldGenerator) -> None:
        self.Y, self.u = Y, u

    def _sublayers(self) -> list[tuple[str, Any]]:
        return [("Y", self.Y), ("u", self.u)]

    def computing_in(self, dtype: Any) -> Generators:
        """Both generators' `FieldGenerator.computing_in`."""
        return Generators(self.Y.computing_in(dtype), self.u.computing_in(dtype))


def critic_computing_in(critic: Any, dtype: Any) -> Any:
    """The critic as a function whose layers compute in ``dtype`` (bf16 mixed
    precision): the snapshot goes in cast to ``dtype``, the value comes out in the
    snapshot's dtype."""
    low = cast(critic, dtype)

    def critic_value(v: Array) -> Array:
        return _as(low(_as(v, dtype)), v.dtype)

    return critic_value


def bfloat16() -> np.dtype:
    """NumPy's bfloat16 (from ml_dtypes, which jax and wengert-ad use too)."""
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError("mixed precision (bf16) needs the ml_dtypes package: pip install "
                          "ml_dtypes") from None
    return np.dtype(ml_dtypes.bfloat16)


def discriminator(n_inputs: int, width: int, depth: int, *, rng: np.random.Generator,
                  dtype: Any = np.float32) -> nn.Chain:
    """A tanh MLP from a (standardised) snapshot to one critic value (WGAN: no sigmoid)."""
    return cast(nn.models.MLP([n_inputs] + [width] * depth + [1], nn.tanh, rng=rng), dtype)


def cast(tree: Any, dtype: Any) -> Any:
    """``tree`` with every float32/float64 array (traced ones included: the cast is then
    differentiated) converted to ``dtype``."""
    return ad.tree_map(lambda a: a.astype(dtype) if getattr(a, "dtype", None) is not None
                       and np.dtype(a.dtype).kind == "f" else a, tree)


def _as(x: Array, dtype: Any) -> Array:
    return x if x.dtype == dtype else x.astype(dtype)
