"""Whole `wengert.nn` models through `wengert.xla` (the XLA.jl experiment):
VGG-19 forward, and forward+backward (`ad.grad` of a loss with respect to the
parameters), each lowered into ONE XLA program that matches eager numerics.

`wengert.xla` never imports `wengert.nn`; the model is passed as a tree, so
nothing in the compiler knows about layers.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("jax")
nn = pytest.importorskip("wengert.nn")

from wengert import (
    ad,
    xla,
)
from wengert.ad.primitives import Aval
from wengert.nn.models import VGG19

CALLBACK = re.compile(r"custom_call.*callback", re.IGNORECASE)


def forward(model, x):
    return model(x)


def loss(model, x, labels):
    return nn.logitcrossentropy(model(x), labels)


def _single_program(text: str) -> None:
    """One entry function, nothing that calls back into Python."""
    assert len(re.findall(r"func\.func public", text)) == 1
    assert not CALLBACK.search(text)
    assert "stablehlo.convolution" in text


def _relative_error(compiled, eager) -> float:
    compiled, eager = np.asarray(compiled, np.float64), np.asarray(eager, np.float64)
    return float(np.abs(compiled - eager).max() / max(np.abs(eager).max(), 1e-30))


@pytest.fixture(scope="module")
def small_vgg19():
    rng = np.random.default_rng(0)
    model = VGG19(imsize=(32, 32, 3), nclasses=10, dropout=0.0, rng=rng)
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    labels = nn.onehot(np.array([3, 7]), 10)
    return model, x, labels


@pytest.mark.slow
def test_vgg19_forward_is_one_program_matching_eager(small_vgg19):
    model, x, _ = small_vgg19
    lowered = xla.lower(forward, model, x)
    _single_program(lowered.as_text())
    compiled = lowered.compile()(model, x)
    assert _relative_error(compiled, forward(model, x)) < 1e-4


@pytest.mark.slow
def test_vgg19_forward_and_backward_is_one_program_matching_eager(small_vgg19):
    model, x, labels = small_vgg19
    grad = ad.grad(loss)
    lowered = xla.lower(grad, model, x, labels)
    text = lowered.as_text()
    _single_program(text)
    # forward and d/dw of each of the 16 convolutions, d/dx of all but the first
    assert text.count("stablehlo.convolution") == 3 * 16 - 1
    compiled = lowered.compile()(model, x, labels)
    eager = grad(model, x, labels)
    assert type(compiled) is type(eager)  # a model-shaped gradient
    pairs = list(zip(ad.tree_leaves(compiled), ad.tree_leaves(eager)))
    assert len(pairs) == 38  # 16 conv + 3 dense layers, weight and bias each
    assert max(_relative_error(c, e) for c, e in pairs) < 1e-4


@pytest.mark.slow
def test_full_size_vgg19_batch_100_lowers_to_one_program():
    """The paper's configuration (224x224x3, batch 100), lowered without running:
    parameters and input are given as shapes only."""
    model = VGG19(dropout=0.0, rng=np.random.default_rng(0))
    shapes = ad.tree_map(lambda p: Aval(p.shape, p.dtype), model)
    x = Aval((100, 224, 224, 3), np.float32)
    labels = Aval((100, 1000), np.float32)
    _single_program(xla.lower(forward, shapes, x).as_text())
    _single_program(xla.lower(ad.grad(loss), shapes, x, labels).as_text())


def test_batchnorm_running_statistics_are_program_inputs_not_stale_constants():
    """A compiled test-mode model reads the BatchNorm statistics it is called
    with: a training step between two calls changes the buffers in place, and
    the second compiled call must see the new values (it once baked the first
    ones into the program, keyed by the buffer's identity)."""
    rng = np.random.default_rng(0)
    model = nn.Chain(nn.Dense(3, 4, rng=rng), nn.BatchNorm(4), nn.Dense(4, 2, rng=rng))
    x = rng.standard_normal((5, 3)).astype(np.float32)
    run = xla.jit(forward)
    inference = nn.testmode(model)  # shares the statistics' cells with model
    first = inference(x)
    np.testing.assert_allclose(run(inference, x), first, rtol=1e-5, atol=1e-6)
    model(x * 3 + 2)  # a training-mode call moves the running statistics
    eager = inference(x)
    assert not np.allclose(eager, first, rtol=1e-3)
    np.testing.assert_allclose(run(inference, x), eager, rtol=1e-5, atol=1e-6)
