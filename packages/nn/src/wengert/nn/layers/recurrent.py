"""Recurrent layers: cells map ``(x_t, state) -> (y_t, state)``; `Recurrence`
runs a cell over a batch-first sequence ``(N, T, features)``.

The input projection of every time step is one matrix product before the
loop; each step then costs one ``h @ Wh``. A ``None`` state means zeros
(and skips that product), so nothing is allocated per sequence and the
same code runs on any device. Weights are ``(in, gates * hidden)``, gates
in PyTorch's order (LSTM: i, f, g, o; GRU: r, z, n).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp

from .. import init as initialisers
from ..activations import sigmoid, tanh
from ..core import Buffer, Layer, match_dtype, static
from ..state import current, record

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell", "Recurrence", "reset"]

Array = Any


def _weights(n_in: int, n_hidden: int, gates: int, init: Callable, rng: Any, dtype: Any):
    return (init(rng, n_in, gates * n_hidden, dtype=dtype),
            init(rng, n_hidden, gates * n_hidden, dtype=dtype),
            np.zeros(gates * n_hidden, dtype))


class RNNCell(Layer):
    """``h = σ(x Wi + h Wh + b)`` (Elman)."""

    Wi: Array
    Wh: Array
    b: Array
    σ: Callable = static()

    def __init__(self, n_in: int, n_hidden: int, σ: Callable = tanh, *,
                 init: Callable = initialisers.glorot_uniform, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        self.Wi, self.Wh, self.b = _weights(n_in, n_hidden, 1, init, rng, dtype)
        self.σ = σ

    def project(self, x: Array) -> Array:
        return match_dtype(x, self.Wi.dtype, type(self).__name__) @ self.Wi + self.b

    def step(self, xp: Array, h: Array | None) -> tuple[Array, Array]:
        h = self.σ(xp if h is None else xp + h @ self.Wh)
        return h, h

    def __call__(self, x: Array, h: Array | None = None) -> tuple[Array, Array]:
        return self.step(self.project(x), h)

    def _signature(self) -> str:
        return f"{self.Wi.shape[0]} => {self.Wh.shape[0]}"


class LSTMCell(Layer):
    """Long short-term memory (Hochreiter & Schmidhuber 1997); state ``(h, c)``.
    One bias (PyTorch's ``b_ih + b_hh``)."""

    Wi: Array
    Wh: Array
    b: Array

    def __init__(self, n_in: int, n_hidden: int, *,
                 init: Callable = initialisers.glorot_uniform, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        self.Wi, self.Wh, self.b = _weights(n_in, n_hidden, 4, init, rng, dtype)

    project = RNNCell.project

    def step(self, xp: Array, state: tuple | None) -> tuple[Array, tuple]:
        gates = xp if state is None else xp + state[0] @ self.Wh
        i, f, g, o = wnp.split(gates, 4, axis=-1)
        c = sigmoid(i) * tanh(g)
        if state is not None:
            c = c + sigmoid(f) * state[1]
        h = sigmoid(o) * tanh(c)
        return h, (h, c)

    __call__ = RNNCell.__call__

    def _signature(self) -> str:
        return f"{self.Wi.shape[0]} => {self.Wh.shape[0]}"


class GRUCell(Layer):
    """Gated recurrent unit (Cho et al. 2014), PyTorch's form: the reset gate
    scales ``h Wh_n + bh_n``, so the hidden side keeps its own bias ``bh``."""

    Wi: Array
    Wh: Array
    b: Array
    bh: Array

    def __init__(self, n_in: int, n_hidden: int, *,
                 init: Callable = initialisers.glorot_uniform, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        self.Wi, self.Wh, self.b = _weights(n_in, n_hidden, 3, init, rng, dtype)
        self.bh = np.zeros(3 * n_hidden, dtype)

    project = RNNCell.project

    def step(self, xp: Array, h: Array | None) -> tuple[Array, Array]:
        hp = self.bh if h is None else h @ self.Wh + self.bh
        xr, xz, xn = wnp.split(xp, 3, axis=-1)
        hr, hz, hn = wnp.split(hp, 3, axis=-1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = tanh(xn + r * hn)
        h = (1 - z) * n if h is None else (1 - z) * n + z * h
        return h, h

    __call__ = RNNCell.__call__

    def _signature(self) -> str:
        return f"{self.Wi.shape[0]} => {self.Wh.shape[0]}"


class Recurrence(Layer):
    """Run ``cell`` over ``(N, T, features)`` and return every output ``(N, T, hidden)``.

    Each call starts from the zero state, unless ``stateful``: then the last
    state of one call (without its gradient) starts the next, until `reset`.
    """

    cell: Layer
    state: Buffer
    stateful: bool = static()

    def __init__(self, cell: Layer, *, stateful: bool = False) -> None:
        self.cell, self.state, self.stateful = cell, Buffer(), stateful

    def __call__(self, xs: Array) -> Array:
        proj = self.cell.project(xs)
        state = current(self.state) if self.stateful else None
        outputs = []
        for t in range(wnp.shape(xs)[1]):
            y, state = self.cell.step(proj[:, t], state)
            outputs.append(y)
        if self.stateful:
            record(self.state, state, "a stateful Recurrence")
        return wnp.stack(outputs, axis=1)

    def _sublayers(self) -> list:
        return [("", self.cell)]


def RNN(n_in: int, n_hidden: int, σ: Callable = tanh, *, stateful: bool = False,
        **kwargs: Any) -> Recurrence:
    return Recurrence(RNNCell(n_in, n_hidden, σ, **kwargs), stateful=stateful)


def LSTM(n_in: int, n_hidden: int, *, stateful: bool = False, **kwargs: Any) -> Recurrence:
    return Recurrence(LSTMCell(n_in, n_hidden, **kwargs), stateful=stateful)


def GRU(n_in: int, n_hidden: int, *, stateful: bool = False, **kwargs: Any) -> Recurrence:
    return Recurrence(GRUCell(n_in, n_hidden, **kwargs), stateful=stateful)


def reset(model: Any) -> Any:
    """Forget the carried state of every stateful `Recurrence` in ``model``."""
    for leaf in _recurrences(model):
        leaf.state.cell.value = None
    return model


def _recurrences(tree: Any) -> list[Recurrence]:
    from wengert import ad

    found = []
    ad.tree_flatten(tree, is_leaf=lambda x: isinstance(x, Recurrence) and not found.append(x))
    return found
