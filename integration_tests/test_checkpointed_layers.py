"""`wengert.ad.checkpoint` of `wengert.nn` layers: the layer's parameters, reached
through ``self``, get the same gradients as without checkpointing."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
import wengert.nn as nn


def _model_and_input():
    rng = np.random.default_rng(0)
    model = nn.Chain(nn.Dense(3, 5, nn.tanh, rng=rng, dtype=np.float64),
                     nn.Dense(5, 2, rng=rng, dtype=np.float64))
    return model, rng.standard_normal((4, 3))


@pytest.mark.parametrize("form", ["layer", "bound method"])
def test_checkpointed_layer_gradients_match_plain_ones(form):
    model, h = _model_and_input()

    def loss(checkpointed):
        def f(model, h):
            for layer in model.layers:
                call = layer if form == "layer" else layer.__call__
                h = (ad.checkpoint(call) if checkpointed else call)(h)
            return wnp.sum(h ** 2)
        return f

    got = ad.gradient(loss(True), model, h)
    ref = ad.gradient(loss(False), model, h)
    assert type(got[0]) is type(model)
    for a, b in zip(ad.tree_leaves(got), ad.tree_leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
