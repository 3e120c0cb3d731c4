"""Recurrent layers: cells map ``(x_t, state) -> (y_t, state)``; `Recurrence`
runs a cell over a batch-first sequence ``(N, T, features)``.

The input projection of every time step is one matrix product before the
loop; each step then costs one ``h @ Wh``. Steps run time-major (a batch-first
sequence is a transposed view of one): a step's slice of the projections, the
stacked outputs and the stacked gate cotangents are then contiguous, and the
recurrent weight's gradient multiplies views of those stacks, not copies. LSTM and GRU run the whole
sequence as one adjoint (hand-written pullback, recurrent weight gradient in
one GEMM): a step's dozen small array operations would otherwise each be a
tape entry and a rule dispatch, which is most of a step's time at these
sizes. A ``None`` state means zeros
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


def _split(x: Array, n: int) -> list:
    size = wnp.shape(x)[-1] // n
    return [x[..., k * size:(k + 1) * size] for k in range(n)]


def _recurrent_weight_grad(h0: Array | None, hs: Array, dps: Array) -> Array | None:
    """``sum_t h_{t-1}^T dp_t``, one GEMM over all steps (a product per step, each
    added into the running sum, costs several times more at these sizes). ``hs``
    and ``dps`` are time-major stacks, so without ``h0`` the shifted operands are
    views of them, not copies."""
    if h0 is None:
        hs, dps = hs[:-1], dps[1:]
    else:
        hs = wnp.concatenate([h0[None], hs[:-1]])
    if wnp.shape(hs)[0] == 0:
        return None
    return (wnp.reshape(hs, (-1, wnp.shape(hs)[-1])).T
            @ wnp.reshape(dps, (-1, wnp.shape(dps)[-1])))


@ad.adjoint
def _lstm_sequence(proj: Array, Wh: Array, h0: Array | None, c0: Array | None) -> tuple:
    """An LSTM over all time steps, ``proj`` ``(T, N, 4H)`` being the time-major
    input projections: ``(outputs (T, N, H), (h, c))``. One adjoint for the whole
    sequence: a handful of array operations per step each way, where each
    operation would otherwise be a tape entry and a rule dispatch (the cost of a
    step at these sizes), and the recurrent weight's gradient in one GEMM. The
    pullback is written with differentiable operations: higher orders work."""
    h, c = h0, c0
    width = wnp.shape(Wh)[0]
    hs, saved = [], []
    for t in range(wnp.shape(proj)[0]):
        gates = proj[t] if h is None else proj[t] + h @ Wh
        sif = sigmoid(gates[:, :2 * width])  # the input and forget gates in one pass
        si, sf = sif[:, :width], sif[:, width:]
        tg, so = tanh(gates[:, 2 * width:3 * width]), sigmoid(gates[:, 3 * width:])
        c_prev, c = c, si * tg if c is None else si * tg + sf * c
        tc = tanh(c)
        h = so * tc
        hs.append(h)
        saved.append((si, sf, tg, so, tc, c_prev))
    hs = wnp.stack(hs)

    def back(cts: tuple) -> tuple:
        d_out, (dh, dc) = cts
        dgates = []
        for t in reversed(range(len(saved))):
            si, sf, tg, so, tc, c_prev = saved[t]
            dh = dh + d_out[t]
            dc = dh * so * (1 - tc * tc) + dc
            di = dc * tg * si * (1 - si)
            df = wnp.zeros_like(di) if c_prev is None else dc * c_prev * sf * (1 - sf)
            dg = dc * si * (1 - tg * tg)
            do = dh * tc * so * (1 - so)
            dgates.append(wnp.concatenate([di, df, dg, do], axis=-1))
            dc = None if c_prev is None else dc * sf
            dh = dgates[-1] @ Wh.T if t > 0 or h0 is not None else None
        dgates = wnp.stack(dgates[::-1])
        return (dgates, _recurrent_weight_grad(h0, hs, dgates), dh, dc)

    return (hs, (h, c)), back


@ad.adjoint
def _gru_sequence(proj: Array, Wh: Array, bh: Array, h0: Array | None) -> tuple:
    """A GRU (PyTorch's form) over all time steps as one adjoint, for the reasons
    `_lstm_sequence` gives: ``(outputs (T, N, H), h)`` from ``proj`` ``(T, N, 3H)``."""
    h = h0
    hs, saved = [], []
    for t in range(wnp.shape(proj)[0]):
        hp = bh if h is None else h @ Wh + bh
        xr, xz, xn = _split(proj[t], 3)
        hr, hz, hn = _split(hp, 3)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = tanh(xn + r * hn)
        h_prev, h = h, (1 - z) * n if h is None else (1 - z) * n + z * h
        hs.append(h)
        saved.append((r, z, n, hn, h_prev))
    hs = wnp.stack(hs)

    def back(cts: tuple) -> tuple:
        d_out, dh = cts
        dxs, dhps = [], []
        for t in reversed(range(len(saved))):
            r, z, n, hn, h_prev = saved[t]
            dh = dh + d_out[t]
            dz = dh * (-n if h_prev is None else h_prev - n)
            da = dh * (1 - z) * (1 - n * n)
            dar = da * hn * r * (1 - r)
            daz = dz * z * (1 - z)
            dxs.append(wnp.concatenate([dar, daz, da], axis=-1))
            dhps.append(wnp.concatenate([dar, daz, da * r], axis=-1))
            dh = None if h_prev is None else dh * z + dhps[-1] @ Wh.T
        dhps = wnp.stack(dhps[::-1])
        dbh = wnp.sum(dhps, axis=(0, 1))
        return (wnp.stack(dxs[::-1]), _recurrent_weight_grad(h0, hs, dhps), dbh, dh)

    return (hs, h), back


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

    def sequence(self, proj: Array, state: tuple | None) -> tuple[Array, tuple]:
        """All time steps of the time-major ``proj`` ``(T, N, 4H)``: ``(outputs
        (T, N, H), last state)``."""
        h0, c0 = (None, None) if state is None else state
        return _lstm_sequence(proj, self.Wh, h0, c0)

    def step(self, xp: Array, state: tuple | None) -> tuple[Array, tuple]:
        _, state = self.sequence(xp[None], state)
        return state[0], state

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

    def sequence(self, proj: Array, h: Array | None) -> tuple[Array, Array]:
        """All time steps of the time-major ``proj`` ``(T, N, 3H)``: ``(outputs
        (T, N, H), last state)``."""
        return _gru_sequence(proj, self.Wh, self.bh, h)

    def step(self, xp: Array, h: Array | None) -> tuple[Array, Array]:
        h = self.sequence(xp[None], h)[1]
        return h, h

    __call__ = RNNCell.__call__

    def _signature(self) -> str:
        return f"{self.Wi.shape[0]} => {self.Wh.shape[0]}"


class Recurrence(Layer):
    """Run ``cell`` over ``(N, T, features)`` and return every output ``(N, T, hidden)``;
    with ``batch_first=False`` (PyTorch's default) over ``(T, N, features)``.

    Each call starts from the zero state, unless ``stateful``: then the last
    state of one call (without its gradient) starts the next, until `reset`.
    A cell with a ``sequence(proj, state)`` method (LSTM, GRU) runs all steps in
    it; any other cell is stepped here.
    """

    cell: Layer
    state: Buffer
    stateful: bool = static()
    batch_first: bool = static()

    def __init__(self, cell: Layer, *, stateful: bool = False, batch_first: bool = True) -> None:
        self.cell, self.state, self.stateful = cell, Buffer(), stateful
        self.batch_first = batch_first

    def __call__(self, xs: Array) -> Array:
        if self.batch_first:  # steps run time-major: each step's slice is contiguous
            xs = wnp.swapaxes(xs, 0, 1)
        proj = self.cell.project(xs)
        state = current(self.state) if self.stateful else None
        if hasattr(self.cell, "sequence"):  # the whole sequence in one adjoint
            ys, state = self.cell.sequence(proj, state)
        else:
            outputs = []
            for step in wnp.unstack(proj):  # one pullback stacks every step's cotangent
                y, state = self.cell.step(step, state)
                outputs.append(y)
            ys = wnp.stack(outputs)
        if self.stateful:
            record(self.state, state, "a stateful Recurrence")
        return wnp.swapaxes(ys, 0, 1) if self.batch_first else ys

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
