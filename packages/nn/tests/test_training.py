"""Model trees, modes, DataLoader, the training loop and its callbacks,
saving/loading, devices."""

from __future__ import annotations

import os

import numpy as np
import pytest
from wengert import ad, nn


def _tiny(rng):
    return nn.Chain(nn.Dense(2, 8, nn.tanh, rng=rng), nn.BatchNorm(8), nn.Dropout(0.1, rng=rng),
                    nn.Dense(8, 1, rng=rng))


def test_gradients_are_model_shaped(rng):
    model = _tiny(rng)
    x = rng.standard_normal((4, 2)).astype(np.float32)
    (g,) = ad.gradient(lambda m: nn.mse(m(x), np.zeros((4, 1), np.float32)), model)
    assert type(g) is nn.Chain and type(g.layers[0]) is nn.Dense
    assert g.layers[0].weight.shape == (2, 8) and g.layers[0].weight.dtype == np.float32
    assert not g.layers[1].mean.value.any() and g.layers[0].σ is nn.tanh


def test_modes_return_new_models(rng):
    model = _tiny(rng)
    test = nn.testmode(model)
    assert model.layers[2].training and not test.layers[2].training
    assert not test.layers[1].training and nn.trainmode(test).layers[1].training
    x = rng.standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_array_equal(test(x), test(x))  # deterministic in test mode


def test_dataloader(rng):
    x, y = np.arange(10)[:, None] * np.ones((1, 3)), np.arange(10)
    batches = list(nn.DataLoader((x, y), 4))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    assert len(nn.DataLoader((x, y), 4, partial=False)) == 2
    s1 = [b["y"] for b in nn.DataLoader({"x": x, "y": y}, 3, shuffle=True, rng=0)]
    s2 = [b["y"] for b in nn.DataLoader({"x": x, "y": y}, 3, shuffle=True, rng=0)]
    assert all(np.array_equal(a, b) for a, b in zip(s1, s2))
    assert sorted(np.concatenate(s1).tolist()) == list(range(10))
    loader = nn.DataLoader((x, y), 5, shuffle=True, rng=1)
    assert not np.array_equal(next(iter(loader))[1], next(iter(loader))[1])  # new order each epoch

    class Items:  # any indexable dataset
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full(2, i), i

    xb, yb = next(iter(nn.DataLoader(Items(), 3)))
    assert xb.shape == (3, 2) and yb.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="different lengths"):
        nn.DataLoader((x, y[:5]))


def test_train_fits_and_updates_batchnorm_statistics(rng):
    x = rng.uniform(-1, 1, (256, 2)).astype(np.float32)
    y = (x[:, :1] * x[:, 1:]).astype(np.float32)
    model = _tiny(rng)
    loss = lambda m, x, y: nn.mse(m(x), y)
    before = float(loss(nn.testmode(model), x, y))
    data = nn.DataLoader((x, y), 32, shuffle=True, rng=0)
    seen = []
    trained, state = nn.train(model, loss, data, nn.Adam(0.01), epochs=30, progress=False,
                              callbacks=[lambda info: seen.append(info.end_of_epoch)])
    assert float(loss(nn.testmode(trained), x, y)) < 0.2 * before
    assert state.step == 30 * 8 and seen.count(True) == 30
    assert not np.allclose(trained.layers[1].mean.value, 0)


def test_early_stopping_and_logger(rng):
    x = np.ones((8, 2), np.float32)
    model = nn.Dense(2, 1, rng=rng)
    stopper = nn.EarlyStopping(patience=2, metric=lambda m: 1.0)  # never improves after epoch 1
    lines = []
    _, state = nn.train(model, lambda m, x: nn.mse(m(x), x[:, :1]), nn.DataLoader((x,), 4),
                        nn.Descent(0.1), epochs=50, progress=False,
                        callbacks=[stopper, nn.Logger(every=1e9, print_fn=lines.append)])
    assert state.step == 3 * 2  # stopped after the third epoch
    assert lines[0].startswith("epoch 1 step 1") and sum("mean loss" in s for s in lines) == 3


def test_save_load_roundtrip_and_errors(tmp_path, rng):
    model = nn.Chain(nn.Conv((3, 3), 1, 2, rng=rng), nn.BatchNorm(2),
                     nn.freeze(nn.Dense(2, 3, rng=rng)))
    model.layers[1].mean.value = rng.standard_normal(2).astype(np.float32)
    fresh = nn.Chain(nn.Conv((3, 3), 1, 2), nn.BatchNorm(2), nn.freeze(nn.Dense(2, 3)))
    for name in ("model.safetensors", "model.npz"):
        path = nn.save(tmp_path / name, model)
        loaded = nn.load(path, like=fresh)
        saved, restored = nn.state_dict(model), nn.state_dict(loaded)
        assert list(saved) == list(restored)
        for k in saved:
            np.testing.assert_array_equal(saved[k], restored[k])
        assert loaded.layers[2]._frozen and isinstance(loaded.layers[1].mean, nn.Buffer)
    assert set(nn.state_dict(model)) == {"layers.0.weight", "layers.0.bias", "layers.1.γ",
                                         "layers.1.β", "layers.1.mean", "layers.1.var",
                                         "layers.2.weight", "layers.2.bias"}
    wrong = nn.Chain(nn.Conv((3, 3), 1, 4), nn.BatchNorm(4), nn.Dense(4, 3))
    with pytest.raises(ValueError, match="'layers.0.weight' has shape"):
        nn.load(tmp_path / "model.safetensors", like=wrong)
    with pytest.raises(ValueError, match="no array 'layers.3.weight'"):
        nn.load(tmp_path / "model.npz", like=nn.Chain(*fresh.layers, nn.Dense(3, 1)))


def test_a_failed_save_leaves_the_old_checkpoint(tmp_path, rng, monkeypatch):
    model = nn.Dense(2, 2, rng=rng)
    path = nn.save(tmp_path / "ckpt.safetensors", model)
    good = path.read_bytes()
    import safetensors.numpy

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        nn.save(path, nn.Dense(2, 2))
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_to_device_cpu_keeps_every_array(rng):
    model = nn.Chain(nn.freeze(nn.Dense(2, 2, rng=rng)), nn.BatchNorm(2))
    moved = nn.to_device(model, "cpu")
    assert moved.layers[0]._frozen and moved.layers[1].mean is not model.layers[1].mean
    np.testing.assert_array_equal(moved.layers[0].weight, model.layers[0].weight)
    with pytest.raises(ValueError, match="device"):
        nn.to_device(model, "tpu")


def test_gpu_round_trip(rng):
    cupy = pytest.importorskip("cupy", reason="CuPy and a CUDA device are needed")
    model = nn.Chain(nn.Conv((3, 3), 1, 4, nn.relu, pad=1, rng=rng), nn.BatchNorm(4),
                     nn.MaxPool((2, 2)), nn.Flatten(), nn.Dense(16, 2, rng=rng))
    gpu = nn.to_device(model, "gpu")
    x = rng.standard_normal((3, 4, 4, 1)).astype(np.float32)
    assert isinstance(gpu.layers[1].mean.value, cupy.ndarray)
    y = nn.onehot([0, 1, 1], 2)
    loss = lambda m, x, y: nn.logitcrossentropy(m(x), y)
    opt = nn.Adam()
    cpu_model, _, cpu_loss = nn.train_step(model, loss, (x, y), opt, opt.init(model))
    gpu_model, _, gpu_loss = nn.train_step(gpu, loss, (cupy.asarray(x), cupy.asarray(y)), opt,
                                           opt.init(gpu))
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-5)
    back = nn.to_device(gpu_model, "cpu")
    np.testing.assert_allclose(back.layers[0].weight, cpu_model.layers[0].weight, rtol=1e-4,
                               atol=1e-6)


def test_global_seed_makes_runs_repeat():
    def run():
        nn.seed(7)
        model = nn.Chain(nn.Dense(3, 4), nn.Dropout(0.5), nn.Dense(4, 1))
        batches = [b[0].tolist() for b in nn.DataLoader((np.arange(6),), 2, shuffle=True)]
        return model(np.ones((2, 3), np.float32)), batches

    (y1, b1), (y2, b2) = run(), run()
    np.testing.assert_array_equal(y1, y2)
    assert b1 == b2
    nn.seed(8)
    assert not np.array_equal(nn.Dense(3, 4).weight, (nn.seed(7), nn.Dense(3, 4).weight)[1])
    nn.seed(None)


def test_user_layers_print_their_sub_layers():
    class Block(nn.Layer):
        body: nn.Layer
        downsample: nn.Layer | None
        heads: tuple

        def __init__(self):
            self.body, self.downsample = nn.Dense(2, 2), None
            self.heads = (nn.Dense(2, 1), nn.Dense(2, 1))

        def __call__(self, x):
            return self.body(x)

    text = repr(Block())
    assert "body = Dense(2 => 2)" in text and "heads[1] = Dense(2 => 1)" in text
    assert "Total: 6 arrays, 12 parameters" in text


def test_save_and_load_a_dict_whose_keys_are_not_sorted(tmp_path):
    """Names must follow ad.tree_flatten's (sorted) key order, or arrays swap places."""
    rng = np.random.default_rng(0)
    tree = {"b": nn.Dense(2, 3, rng=rng), "a": nn.Dense(5, 1, rng=rng)}
    path = nn.save(tmp_path / "m.safetensors", tree)
    loaded = nn.load(path, tree)
    for name in ("a", "b"):
        np.testing.assert_array_equal(loaded[name].weight, tree[name].weight)
