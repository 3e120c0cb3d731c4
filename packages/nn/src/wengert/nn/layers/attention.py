"""Multi-head scaled dot-product attention (Vaswani et al. 2017), batch-first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp

from .. import init as initialisers
from ..activations import softmax
from ..core import Layer, match_dtype, static

__all__ = ["MultiHeadAttention", "causal_mask"]

Array = Any


def causal_mask(length: int) -> np.ndarray:
    """``mask[i, j]`` is True where query ``i`` may attend to key ``j <= i``."""
    return np.tril(np.ones((length, length), bool))


class MultiHeadAttention(Layer):
    """``attention(q, k=q, v=k, mask=None)``: inputs ``(N, L, dim)``; projections
    ``(dim, dim)`` stored as ``(in, out)``. ``mask`` (broadcastable to
    ``(N, heads, Lq, Lk)``) is True where attention is allowed."""

    Wq: Array
    Wk: Array
    Wv: Array
    Wo: Array
    bq: Array | None
    bk: Array | None
    bv: Array | None
    bo: Array | None
    heads: int = static()

    def __init__(self, dim: int, heads: int, *, bias: bool = True,
                 init: Callable = initialisers.glorot_uniform, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        if dim % heads:
            raise ValueError(f"MultiHeadAttention: dim {dim} is not divisible by {heads} heads")
        self.Wq, self.Wk, self.Wv, self.Wo = (init(rng, dim, dim, dtype=dtype) for _ in range(4))
        self.bq, self.bk, self.bv, self.bo = (np.zeros(dim, dtype) if bias else None
                                              for _ in range(4))
        self.heads = int(heads)

    def _split(self, x: Array, w: Array, b: Array | None) -> Array:
        x = match_dtype(x, w.dtype, "MultiHeadAttention")
        y = x @ w if b is None else x @ w + b
        n, length, dim = wnp.shape(y)
        return wnp.transpose(wnp.reshape(y, (n, length, self.heads, dim // self.heads)),
                             (0, 2, 1, 3))

    def __call__(self, q: Array, k: Array | None = None, v: Array | None = None,
                 mask: Array | None = None) -> Array:
        k = q if k is None else k
        v = k if v is None else v
        Q, K, V = self._split(q, self.Wq, self.bq), self._split(k, self.Wk, self.bk), \
            self._split(v, self.Wv, self.bv)
        # A Python float: a NumPy float64 scalar would promote float32 scores.
        scores = (Q @ wnp.swapaxes(K, -1, -2)) * float(1 / np.sqrt(wnp.shape(Q)[-1]))
        if mask is not None:
            scores = wnp.where(mask, scores, -1e30)
        out = softmax(scores) @ V  # (N, heads, Lq, dh)
        n, _, length, _ = wnp.shape(out)
        out = wnp.reshape(wnp.transpose(out, (0, 2, 1, 3)), (n, length, -1))
        return out @ self.Wo if self.bo is None else out @ self.Wo + self.bo

    def _signature(self) -> str:
        return f"{self.Wq.shape[0]}, heads={self.heads}"
