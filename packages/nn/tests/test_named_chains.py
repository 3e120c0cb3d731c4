"""Named chains (dicts of layers) whose keys are not in sorted order: `wengert.ad`
flattens dicts in sorted key order, and the names `nn` gives leaves (saving,
loading, state dicts) must follow that order, not the insertion order."""

from __future__ import annotations

import numpy as np
from wengert import ad, nn


def _named(rng=None):
    # "encode" sorts after "decode": insertion order and tree order differ.
    return nn.Chain(encode=nn.Dense(4, 3, nn.tanh, rng=rng), decode=nn.Dense(3, 2, rng=rng))


def test_state_dict_names_follow_the_tree_order(rng):
    model = _named(rng)
    state = nn.state_dict(model)
    assert list(state) == ["layers.decode.weight", "layers.decode.bias",
                           "layers.encode.weight", "layers.encode.bias"]
    for value, leaf in zip(state.values(), ad.tree_leaves(model)):
        np.testing.assert_array_equal(value, leaf)


def test_save_and_load_a_named_chain(tmp_path, rng):
    model = _named(rng)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    for name in ("model.safetensors", "model.npz"):
        loaded = nn.load(nn.save(tmp_path / name, model), like=_named())
        np.testing.assert_array_equal(loaded(x), model(x))
        assert list(loaded.layers) == ["encode", "decode"]  # the model keeps its own order
