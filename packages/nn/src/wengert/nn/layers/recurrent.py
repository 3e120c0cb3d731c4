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
from wengert import ad

from .. import init as initialisers
from ..activations import sigmoid, tanh
from ..core import Buffer, Layer, match_dtype, static
from ..state import current, record
from .containers import Chain

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell", "Recurrence", "reset"]

Array = Any


@ad.adjoint
def _pieces(x: Array, n: int, axis: int, squeeze: bool) -> tuple:
    """``n`` equal slices of ``x`` along ``axis`` (each with that axis removed
    when ``squeeze``: unstacking time steps); the pullback writes all slices'
    cotangents into one buffer, where slicing piece by piece would send back a
    full-size, mostly zero gradient per piece."""
    size = wnp.shape(x)[axis] // n
    lead = (slice(None),) * (axis % wnp.ndim(x))
    parts = tuple(x[lead + ((i,) if squeeze else (slice(i * size, (i + 1) * size),))]
                  for i in range(n))

    def back(cotangents: tuple) -> tuple:
        join = wnp.stack if squeeze else wnp.concatenate
        return join(list(cotangents), axis=axis), None, None, None

    return parts, back


def _weights(n_in: int, n_hidden: int, gates: int, init: Callable, rng: Any, dtype: Any):
    return (init(rng, n_in, gates * n_hidden, dtype=dtype),
            init(rng, n_hidden, gates * n_hidden, dtype=dtype),
            np.zeros(gates * n_hidden, dtype))


def _input_projection(cell: Layer, x: Array, b: Array) -> Array:
    return match_dtype(x, cell.Wi.dtype, type(cell).__name__) @ cell.Wi + b


class RNNCell(Layer):
    """``h = σ(x Wi + h Wh + b)`` (Elman). With ``hidden_bias=True`` the cell keeps
    PyTorch's second bias ``bh`` (``b_hh``) as its own parameter: the same function,
    but each bias is trained on its own, as PyTorch trains them (one bias moves
    half as far per step as PyTorch moves the pair)."""

    Wi: Array
    Wh: Array
    b: Array
    bh: Array | None
    σ: Callable = static()

    def __init__(self, n_in: int, n_hidden: int, σ: Callable = tanh, *,
                 hidden_bias: bool = False, init: Callable = initialisers.glorot_uniform,
                 rng: Any = None, dtype: Any = np.float32) -> None:
        self.Wi, self.Wh, self.b = _weights(n_in, n_hidden, 1, init, rng, dtype)
        self.bh = np.zeros_like(self.b) if hidden_bias else None
        self.σ = σ

    def project(self, x: Array) -> Array:
        """Both biases join the input projection: added once per sequence, not per step."""
        return _input_projection(self, x, self.b if self.bh is None else self.b + self.bh)

    def step(self, xp: Array, h: Array | None) -> tuple[Array, Array]:
        h = self.σ(xp if h is None else xp + h @ self.Wh)
        return h, h

    def __call__(self, x: Array, h: Array | None = None) -> tuple[Array, Array]:
        return self.step(self.project(x), h)

    def _signature(self) -> str:
        return f"{self.Wi.shape[0]} => {self.Wh.shape[0]}"


class LSTMCell(Layer):
    """Long short-term memory (Hochreiter & Schmidhuber 1997); state ``(h, c)``.
    One bias (PyTorch's ``b_ih + b_hh``), or with ``hidden_bias=True`` both, as
    PyTorch trains them (see `RNNCell`)."""

    Wi: Array
    Wh: Array
    b: Array
    bh: Array | None

    def __init__(self, n_in: int, n_hidden: int, *, hidden_bias: bool = False,
                 init: Callable = initialisers.glorot_uniform, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        self.Wi, self.Wh, self.b = _weights(n_in, n_hidden, 4, init, rng, dtype)
        self.bh = np.zeros_like(self.b) if hidden_bias else None

    project = RNNCell.project

    def step(self, xp: Array, state: tuple | None) -> tuple[Array, tuple]:
        gates = xp if state is None else xp + state[0] @ self.Wh
        i, f, g, o = _pieces(gates, 4, -1, False)
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

    def project(self, x: Array) -> Array:
        return _input_projection(self, x, self.b)  # bh acts inside the reset gate

    def step(self, xp: Array, h: Array | None) -> tuple[Array, Array]:
        hp = self.bh if h is None else h @ self.Wh + self.bh
        xr, xz, xn = _pieces(xp, 3, -1, False)
        hr, hz, hn = _pieces(hp, 3, -1, False)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = tanh(xn + r * hn)
        h = (1 - z) * n if h is None else (1 - z) * n + z * h
        return h, h

    __call__ = RNNCell.__call__

    def _signature(self) -> str:
        return f"{self.Wi.shape[0]} => {self.Wh.shape[0]}"


class Recurrence(Layer):
    """Run ``cell`` over ``(N, T, features)`` and return every output ``(N, T, hidden)``;
    with ``batch_first=False`` (PyTorch's default) over ``(T, N, features)``.

    Each call starts from the zero state, unless ``stateful``: then the last
    state of one call (without its gradient) starts the next, until `reset`.
    """

    cell: Layer
    state: Buffer
    stateful: bool = static()
    batch_first: bool = static()

    def __init__(self, cell: Layer, *, stateful: bool = False, batch_first: bool = True) -> None:
        self.cell, self.state, self.stateful = cell, Buffer(), stateful
        self.batch_first = batch_first

    def __call__(self, xs: Array) -> Array:
        if not self.batch_first:
            xs = wnp.swapaxes(xs, 0, 1)
        proj = self.cell.project(xs)
        state = current(self.state) if self.stateful else None
        outputs = []
        for step in _pieces(proj, wnp.shape(xs)[1], 1, True):
            y, state = self.cell.step(step, state)
            outputs.append(y)
        if self.stateful:
            record(self.state, state, "a stateful Recurrence")
        return wnp.stack(outputs, axis=1 if self.batch_first else 0)

    def _sublayers(self) -> list:
        return [("", self.cell)]


def _stack(make: Callable[..., Layer], n_in: int, n_hidden: int, num_layers: int,
           stateful: bool, batch_first: bool, **kwargs: Any) -> Layer:
    """One `Recurrence`, or for ``num_layers > 1`` a `Chain` of them, each layer
    reading the previous one's outputs (PyTorch's ``num_layers``)."""
    layers = [Recurrence(make(n_in if i == 0 else n_hidden, n_hidden, **kwargs),
                         stateful=stateful, batch_first=batch_first) for i in range(num_layers)]
    return layers[0] if num_layers == 1 else Chain(*layers)


def RNN(n_in: int, n_hidden: int, σ: Callable = tanh, *, num_layers: int = 1,
        stateful: bool = False, batch_first: bool = True, **kwargs: Any) -> Layer:
    return _stack(RNNCell, n_in, n_hidden, num_layers, stateful, batch_first, σ=σ, **kwargs)


def LSTM(n_in: int, n_hidden: int, *, num_layers: int = 1, stateful: bool = False,
         batch_first: bool = True, **kwargs: Any) -> Layer:
    return _stack(LSTMCell, n_in, n_hidden, num_layers, stateful, batch_first, **kwargs)


def GRU(n_in: int, n_hidden: int, *, num_layers: int = 1, stateful: bool = False,
        batch_first: bool = True, **kwargs: Any) -> Layer:
    return _stack(GRUCell, n_in, n_hidden, num_layers, stateful, batch_first, **kwargs)


def reset(model: Any) -> Any:
    """Forget the carried state of every stateful `Recurrence` in ``model``."""
    for leaf in _recurrences(model):
        leaf.state.cell.value = None
    return model


def _recurrences(tree: Any) -> list[Recurrence]:
    found = []
    ad.tree_flatten(tree, is_leaf=lambda x: isinstance(x, Recurrence) and not found.append(x))
    return found
