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
