"""Activations, losses, initialisers and one-hot encoding."""

from __future__ import annotations

import numpy as np
import pytest
from wengert import nn
from wengert.ad.testing import check_grads

ACTIVATIONS = {
    "relu": "relu", "relu6": "relu6", "leakyrelu": "leaky_relu", "elu": "elu", "selu": "selu",
    "celu": "celu", "sigmoid": "sigmoid", "tanh": "tanh", "softplus": "softplus",
    "logsigmoid": "logsigmoid", "softsign": "softsign", "hardtanh": "hardtanh",
    "hardsigmoid": "hardsigmoid", "swish": "silu", "mish": "mish", "softmax": "softmax",
    "logsoftmax": "log_softmax",
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations_against_torch(torch, rng, name):
    x = rng.standard_normal((3, 7)) * 4
    ref = getattr(torch.nn.functional, ACTIVATIONS[name])
    kw = {"dim": -1} if "softmax" in name else {}
    np.testing.assert_allclose(getattr(nn, name)(x), ref(torch.tensor(x), **kw).numpy(),
                               rtol=1e-12, atol=1e-12)
    x = x[np.abs(x) > 0.1]  # away from kinks, for finite differences
    check_grads(getattr(nn, name), (x,))


def test_gelu_is_the_tanh_approximation(torch, rng):
    x = rng.standard_normal(20) * 3
    np.testing.assert_allclose(nn.gelu(x), torch.nn.functional.gelu(
        torch.tensor(x), approximate="tanh").numpy(), rtol=1e-9, atol=1e-15)
    assert nn.relu(np.float32(2)).dtype == np.float32
    assert nn.sigmoid(np.array([1000.0, -1000.0])).tolist() == [1.0, 0.0]


def test_losses_against_torch(torch, rng):
    F = torch.nn.functional
    logits = rng.standard_normal((5, 4)) * 2
    labels = rng.integers(0, 4, 5)
    y = nn.onehot(labels, 4, dtype=np.float64)
    t = torch.tensor
    probs = nn.softmax(logits)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)) * 2
    p01, y01 = nn.sigmoid(a), (rng.random((5, 4)) > 0.5).astype(float)
    cases = [
        (nn.mse(a, b), F.mse_loss(t(a), t(b))),
        (nn.mae(a, b), F.l1_loss(t(a), t(b))),
        (nn.huber(a, b, delta=0.7), F.huber_loss(t(a), t(b), delta=0.7)),
        (nn.logitcrossentropy(logits, y), F.cross_entropy(t(logits), t(labels))),
        (nn.crossentropy(probs, y, eps=0), F.nll_loss(t(np.log(probs)), t(labels))),
        (nn.binarycrossentropy(p01, y01, eps=0), F.binary_cross_entropy(t(p01), t(y01))),
        (nn.logitbinarycrossentropy(a, y01), F.binary_cross_entropy_with_logits(t(a), t(y01))),
        (nn.kldivergence(probs, nn.softmax(b), eps=0),
         F.kl_div(t(np.log(probs)), t(nn.softmax(b)), reduction="batchmean")),
    ]
    for ours, theirs in cases:
        np.testing.assert_allclose(ours, theirs.item(), rtol=1e-10)
    sign = np.sign(b)
    np.testing.assert_allclose(nn.hinge(a, sign), np.mean(np.maximum(0, 1 - a * sign)))
    np.testing.assert_allclose(nn.mse(a, b, agg=np.sum), np.sum((a - b) ** 2))
    smooth = 0.5 * probs + 0.125  # finite differences of log need entries away from 0
    for loss, target in ((nn.logitcrossentropy, y), (nn.huber, 3 * b), (nn.kldivergence, probs)):
        check_grads(lambda z, loss=loss, target=target: loss(z, target),
                    (smooth if loss is nn.kldivergence else logits,))


def test_onehot_onecold():
    y = nn.onehot([2, 0, 1], 3)
    np.testing.assert_array_equal(y, np.eye(3, dtype=np.float32)[[2, 0, 1]])
    np.testing.assert_array_equal(nn.onecold(y), [2, 0, 1])
    assert nn.onecold(nn.onehot(["b", "a"], ["a", "b"]), ["a", "b"]).tolist() == ["b", "a"]
    with pytest.raises(ValueError, match="0..2"):
        nn.onehot([3], 3)


def test_initialisers_are_seeded_and_scaled():
    init = nn.init
    a = init.glorot_uniform(np.random.default_rng(0), 3, 3, 64, 128)
    b = init.glorot_uniform(np.random.default_rng(0), 3, 3, 64, 128)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (3, 3, 64, 128)
    assert np.abs(a).max() <= np.sqrt(6 / (9 * 64 + 9 * 128))
    rng = np.random.default_rng(1)
    assert abs(init.kaiming_normal(rng, 500, 400).std() - np.sqrt(2 / 500)) < 2e-3
    assert abs(init.glorot_normal(rng, 500, 400).std() - np.sqrt(2 / 900)) < 2e-3
    q = init.orthogonal(rng, 6, 4, dtype=np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-12)
    w = init.orthogonal(rng, 4, 6, dtype=np.float64)
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-12)
    assert init.zeros(None, 2, 3).sum() == 0 and init.ones(None, 2).sum() == 2


def test_sigmoid_is_accurate_in_both_tails(torch):
    x = np.array([-100, -30, -20, -17, 0, 17, 30], np.float32)
    s = nn.sigmoid(x)
    assert s.dtype == np.float32
    ref = torch.sigmoid(torch.tensor(x, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(s[1:], ref[1:], rtol=1e-6)  # -100: below float32's range
    assert np.isfinite(nn.binarycrossentropy(nn.sigmoid(np.float32([-20])), np.float32([1])))
    check_grads(nn.sigmoid, (np.array([-30.0, -5.0, 0.3, 8.0]),), order=2)


def test_binarycrossentropy_pytorch_form(torch, rng):
    p = np.array([1e-12, 0.3, 0.9, 1.0])
    y = np.array([1.0, 0.0, 1.0, 1.0])
    ref = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y)).item()
    np.testing.assert_allclose(nn.binarycrossentropy(p, y, clamp_log=-100), ref, rtol=1e-12)
    assert abs(nn.binarycrossentropy(p, y) - ref) > 1  # Flux's eps-inside-the-log default


def test_integer_labels_are_refused_by_one_hot_losses_and_taken_by_cross_entropy(torch, rng):
    logits, labels = rng.standard_normal((4, 4)), np.array([0, 3, 1, 2])
    # batch size == class count: (4,) labels used to broadcast against (4, 4) silently
    for loss in (nn.logitcrossentropy, nn.crossentropy, nn.kldivergence):
        with pytest.raises(ValueError, match="cross_entropy.*onehot"):
            loss(logits, labels)
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels))
    np.testing.assert_allclose(nn.cross_entropy(logits, labels), ref.item(), rtol=1e-12)
    np.testing.assert_allclose(nn.cross_entropy(logits, labels),
                               nn.logitcrossentropy(logits, nn.onehot(labels, 4)), rtol=1e-12)
    check_grads(lambda z: nn.cross_entropy(z, labels), (logits,))
    seq = rng.standard_normal((2, 3, 5))  # (N, T, classes): class axis last
    seq_labels = rng.integers(0, 5, (2, 3))
    ref = torch.nn.functional.cross_entropy(torch.tensor(seq).permute(0, 2, 1),
                                            torch.tensor(seq_labels))
    np.testing.assert_allclose(nn.cross_entropy(seq, seq_labels), ref.item(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"lie in \[0, 4\)"):
        nn.cross_entropy(logits, np.array([0, 1, 2, 4]))
    with pytest.raises(TypeError, match="integers"):
        nn.cross_entropy(logits, nn.onehot(labels, 4))
    with pytest.raises(ValueError, match="enlarging"):  # (N, 1) outputs, (N,) targets
        nn.mse(rng.standard_normal((4, 1)), rng.standard_normal(4))


def test_parametrised_activations():
    x = np.array([-2.0, 3.0])
    act = nn.leakyrelu(0.2)
    np.testing.assert_allclose(act(x), [-0.4, 3.0])
    np.testing.assert_allclose(nn.leakyrelu(x, 0.2), act(x))
    np.testing.assert_allclose(nn.leakyrelu(x), [-0.02, 3.0])
    np.testing.assert_allclose(nn.elu(0.5)(x), nn.elu(x, 0.5))
    assert "leakyrelu(0.2)" in repr(nn.Dense(2, 2, nn.leakyrelu(0.2)))
    # its own pullback (one masked select): right to second order, forward mode too
    check_grads(act, (np.array([-2.0, 0.5, 3.0, -0.1]),), order=2)


def test_softplus_own_pullback_is_exact_in_the_tails_and_smooth_at_zero():
    x = np.array([-np.inf, -100, -20, -1e-3, 0, 1e-3, 20, 100, np.inf], np.float32)
    np.testing.assert_array_equal(nn.softplus(x), np.logaddexp(x, np.float32(0)))
    assert np.isnan(nn.softplus(np.array([np.nan])))[0]
    check_grads(nn.softplus, (np.array([-30.0, -1.0, 0.0, 0.5, 30.0]),), order=2)


def test_logsoftmax_own_pullback_along_any_axis_to_second_order(torch, rng):
    x = rng.standard_normal((3, 4, 5)) * 3
    for axis in (0, 1, -1, (1, 2)):
        dim = axis if isinstance(axis, int) else None
        if dim is not None:
            np.testing.assert_allclose(nn.logsoftmax(x, axis=axis), torch.nn.functional.log_softmax(
                torch.tensor(x), dim=dim).numpy(), rtol=1e-12, atol=1e-12)
        check_grads(lambda z, axis=axis: nn.logsoftmax(z, axis=axis), (x,), order=2)
    out = nn.logsoftmax(x.astype(np.float32), axis=[1, 2])  # several axes, given as a list
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.exp(out).sum(axis=(1, 2)), 1, rtol=1e-5)
