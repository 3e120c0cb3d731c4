"""Affine layers: Dense, Bilinear, and the Embedding lookup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp

from .. import init as initialisers
from ..activations import identity
from ..core import Layer, match_dtype, static
from ..errors import ShapeError

__all__ = ["Bilinear", "Dense", "Embedding"]

Array = Any


class Dense(Layer):
    """``σ(x @ weight + bias)`` with ``weight`` of shape ``(in, out)`` (PyTorch's
    ``Linear.weight`` transposed), so batch-first inputs need no transpose."""

    weight: Array
    bias: Array | None
    σ: Callable = static()

    def __init__(self, n_in: int, n_out: int, σ: Callable = identity, *, bias: bool = True,
                 init: Callable = initialisers.glorot_uniform, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        self.weight = init(rng, n_in, n_out, dtype=dtype)
        self.bias = np.zeros(n_out, dtype) if bias else None
        self.σ = σ

    def __call__(self, x: Array) -> Array:
        shape = getattr(x, "shape", None)
        if shape is not None and (not shape or shape[-1] != self.weight.shape[0]):
            raise ShapeError(f"Dense({self._signature()}) expects inputs whose last dimension "
                             f"is {self.weight.shape[0]}, got shape {tuple(shape)}")
        y = match_dtype(x, self.weight.dtype, "Dense") @ self.weight
        return self.σ(y if self.bias is None else y + self.bias)

    def _signature(self) -> str:
        n_in, n_out = self.weight.shape
        return f"{n_in} => {n_out}" + _activation(self.σ) + ("" if self.bias is not None
                                                             else ", bias=False")


def _activation(σ: Callable) -> str:
    return "" if σ is identity else f", {getattr(σ, '__name__', σ)}"


class Bilinear(Layer):
    """``σ(x1ᵀ W_k x2 + b_k)`` for every output ``k``; ``weight`` is
    ``(out, in1, in2)`` as PyTorch's. Takes ``(x1, x2)`` or one ``x`` for both."""

    weight: Array
    bias: Array | None
    σ: Callable = static()

    def __init__(self, in1: int, in2: int, n_out: int, σ: Callable = identity, *,
                 bias: bool = True, init: Callable = initialisers.glorot_uniform,
                 rng: Any = None, dtype: Any = np.float32) -> None:
        self.weight = init(rng, n_out, in1, in2, dtype=dtype)
        self.bias = np.zeros(n_out, dtype) if bias else None
        self.σ = σ

    def __call__(self, x: Array | tuple) -> Array:
        x1, x2 = x if isinstance(x, tuple) else (x, x)
        dtype = self.weight.dtype
        x1, x2 = match_dtype(x1, dtype, "Bilinear"), match_dtype(x2, dtype, "Bilinear")
        y = wnp.einsum("...i,oij,...j->...o", x1, self.weight, x2)
        return self.σ(y if self.bias is None else y + self.bias)

    def _signature(self) -> str:
        o, i1, i2 = self.weight.shape
        return f"({i1}, {i2}) => {o}" + _activation(self.σ)


class Embedding(Layer):
    """Rows of ``weight`` (``(vocab, dim)``) looked up by integer index arrays."""

    weight: Array

    def __init__(self, vocab: int, dim: int, *, init: Callable = initialisers.normal,
                 rng: Any = None, dtype: Any = np.float32) -> None:
        self.weight = init(rng, vocab, dim, dtype=dtype)

    def __call__(self, index: Array) -> Array:
        return self.weight[index]

    def attend(self, h: Array) -> Array:
        """``h @ weight.T``: scores over the vocabulary from the same matrix
        (tied input and output embeddings, Press & Wolf 2017). Call it from the
        model's output layer; the weight stays one parameter."""
        return match_dtype(h, self.weight.dtype, "Embedding") @ wnp.swapaxes(self.weight, 0, 1)

    def _signature(self) -> str:
        return "{} => {}".format(*self.weight.shape)
