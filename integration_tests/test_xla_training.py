"""``ad`` -> ``nn`` -> ``xla``: a small CNN's whole training step — forward, backward and
the Adam update — compiled into one XLA executable and run for 20 steps gives the losses
and parameters of the same step run eagerly.

The step is plain code: ``ad.value_and_grad`` of the loss, then ``opt.update``; the model
and the optimiser state are trees, so the compiler knows nothing of layers or optimisers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")
from wengert import ad, nn, xla

STEPS = 20
# float64 throughout: eager NumPy and XLA differ only in summation order, so 20 Adam steps
# agree to a few ulps of the loss (float32 would need a tolerance loose enough to hide bugs).
RTOL = 1e-9


def small_cnn(rng):
    f64 = np.float64
    return nn.Chain(nn.Conv((3, 3), 1, 4, nn.relu, pad=1, rng=rng, dtype=f64),
                    nn.MaxPool((2, 2)),
                    nn.Conv((3, 3), 4, 8, nn.relu, pad="same", rng=rng, dtype=f64),
                    nn.MaxPool((2, 2)), nn.Flatten(), nn.Dense(2 * 2 * 8, 10, rng=rng, dtype=f64))


def loss(model, x, y):
    return nn.logitcrossentropy(model(x), y)


def make_step(opt):
    def step(model, state, x, y):
        value, grads = ad.value_and_grad(loss)(model, x, y)
        model, state = opt.update(model, grads, state)
        return model, state, value
    return step


def batches(rng):
    for _ in range(STEPS):
        x = rng.standard_normal((16, 8, 8, 1))
        yield x, nn.onehot(rng.integers(0, 10, 16), 10)


def train(opt, step):
    """20 steps from the same initial model on the same batches."""
    rng = np.random.default_rng(0)
    model = small_cnn(rng)
    state = opt.init(model)
    losses = []
    for x, y in batches(rng):
        model, state, value = step(model, state, x, y)
        losses.append(float(value))
    return model, losses


def test_compiled_cnn_training_step_gives_the_eager_losses_for_20_steps():
    opt = nn.Adam(1e-2)
    eager_model, eager = train(opt, make_step(opt))
    compiled_step = xla.jit(make_step(opt))
    compiled_model, compiled = train(opt, compiled_step)
    assert eager[-1] < eager[0]  # it trains
    np.testing.assert_allclose(compiled, eager, rtol=RTOL)
    for c, e in zip(ad.tree_leaves(compiled_model), ad.tree_leaves(eager_model), strict=True):
        np.testing.assert_allclose(np.asarray(c), e, rtol=1e-7, atol=1e-12)
    graph = compiled_step.lower(eager_model, opt.init(eager_model), *next(batches(
        np.random.default_rng(1)))).as_text()
    assert graph.count("func.func public") == 1  # forward, backward and update: one program
