"""RNN/LSTM/GRU and MultiHeadAttention against PyTorch, derivatives, state reset."""

from __future__ import annotations

import numpy as np
import pytest
from wengert import ad, nn
from wengert.ad.testing import check_grads

F64 = {"dtype": np.float64}


def _np(t):
    return t.detach().numpy().copy()


def _copy_recurrent(layer, ref, kind):
    w_ih, w_hh, b_ih, b_hh = (_np(getattr(ref, n + "_l0")) for n in
                              ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    fields = {"Wi": w_ih.T.copy(), "Wh": w_hh.T.copy()}
    fields.update({"b": b_ih, "bh": b_hh} if kind == "GRU" else {"b": b_ih + b_hh})
    return layer.replace(cell=layer.cell.replace(**fields))


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_against_torch(torch, rng, kind):
    layer = getattr(nn, kind)(3, 5, rng=rng, **F64)
    ref = getattr(torch.nn, kind)(3, 5, batch_first=True).double()
    layer = _copy_recurrent(layer, ref, kind)
    x = rng.standard_normal((2, 6, 3))
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)[0]
    np.testing.assert_allclose(layer(x), _np(yt), rtol=1e-10, atol=1e-12)
    r = rng.standard_normal(yt.shape)
    gm, gx = ad.gradient(lambda m, x: (m(x) * r).sum(), layer, x)
    (yt * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(gx, _np(xt.grad), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gm.cell.Wh, _np(ref.weight_hh_l0.grad).T, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cell", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_cells_derivatives(rng, cell):
    c = cell(2, 3, rng=rng, **F64)
    x = rng.standard_normal((4, 2))
    _, state = c(x)  # a nonzero state for the second step
    check_grads(lambda c, x, s: c(x, s)[0], (c, x, state))


def test_stateful_sequences_carry_state_until_reset(rng):
    layer = nn.GRU(2, 3, stateful=True, rng=rng, **F64)
    x = rng.standard_normal((1, 4, 2))
    whole = nn.GRU(2, 3, **F64).replace(cell=layer.cell)(np.concatenate([x, x], axis=1))
    first, second = layer(x), layer(x)
    np.testing.assert_allclose(second, whole[:, 4:], rtol=1e-12)
    nn.reset(layer)
    np.testing.assert_allclose(layer(x), first, rtol=1e-12)
    nn.reset(layer)
    _, (g,) = nn.withgradient(lambda m: m(x).sum(), layer)  # the carry is committed...
    assert g.state.value is None  # ...but never differentiated
    np.testing.assert_allclose(layer.state.value, first[:, -1], rtol=1e-12)


def test_multihead_attention_against_torch(torch, rng):
    d, h = 8, 2
    layer = nn.MultiHeadAttention(d, h, rng=rng, **F64)
    ref = torch.nn.MultiheadAttention(d, h, batch_first=True).double()
    w, b = _np(ref.in_proj_weight), _np(ref.in_proj_bias)
    layer = layer.replace(Wq=w[:d].T.copy(), Wk=w[d:2 * d].T.copy(), Wv=w[2 * d:].T.copy(),
                          bq=b[:d], bk=b[d:2 * d], bv=b[2 * d:],
                          Wo=_np(ref.out_proj.weight).T.copy(), bo=_np(ref.out_proj.bias))
    q, kv = rng.standard_normal((2, 5, d)), rng.standard_normal((2, 7, d))
    tq, tkv = torch.tensor(q), torch.tensor(kv)
    np.testing.assert_allclose(layer(q, kv), _np(ref(tq, tkv, tkv, need_weights=False)[0]),
                               rtol=1e-10, atol=1e-12)
    mask = nn.causal_mask(5)
    np.testing.assert_allclose(
        layer(q, mask=mask), _np(ref(tq, tq, tq, attn_mask=torch.tensor(~mask),
                                     need_weights=False)[0]), rtol=1e-10, atol=1e-12)
    check_grads(lambda m, q, kv: m(q, kv), (layer, q, kv))


def test_time_steps_and_cell_updates_are_adjoints_differentiable_twice(rng):
    """The per-step slices of the input projection share one pullback (a stack), and
    each step's gate arithmetic is one hand-written adjoint: both match finite
    differences, in forward mode too, and to second order."""
    x = rng.standard_normal((2, 4, 2))
    for cell in (nn.LSTMCell(2, 3, rng=rng, **F64), nn.GRUCell(2, 3, rng=rng, **F64),
                 nn.LSTMCell(2, 3, hidden_bias=True, rng=rng, **F64)):
        check_grads(lambda c, x: nn.Recurrence(c)(x), (cell, x))
        check_grads(lambda c, x: nn.Recurrence(c)(x), (cell, x), order=2, modes=("rev",))


def test_sequences_from_a_given_state_match_steps_and_differences(rng):
    """The whole-sequence adjoints from a nonzero state (a stateful layer's second
    call): outputs equal stepping the cell, derivatives match finite differences,
    the recurrent weight's gradient included."""
    x = rng.standard_normal((3, 2, 2))  # time-major: 3 steps of a batch of 2
    for cell in (nn.LSTMCell(2, 3, rng=rng, **F64), nn.GRUCell(2, 3, rng=rng, **F64)):
        _, state = cell(rng.standard_normal((2, 2)))
        ys, last = cell.sequence(cell.project(x), state)
        s = state
        for t in range(3):
            y, s = cell(x[t], s)
            np.testing.assert_allclose(ys[t], y, rtol=1e-12)
        np.testing.assert_allclose(ad.tree_flatten(last)[0], ad.tree_flatten(s)[0], rtol=1e-12)
        check_grads(lambda c, x, s: c.sequence(c.project(x), s), (cell, x, state))
