"""Training that stops at NaN and leaves the caller's model alone; checkpoints that
are refused when damaged, honour the umask, and keep every dtype."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import wengert.ad.numpy as wnp
from wengert import nn


def _model(rng):
    return nn.Chain(nn.Dense(2, 4, nn.tanh, rng=rng), nn.BatchNorm(4), nn.Dense(4, 1, rng=rng))


def _data(rng, n=32):
    x = rng.standard_normal((n, 2)).astype(np.float32)
    return x, (x[:, :1] * 2).astype(np.float32)


def _loss(m, x, y):
    return nn.mse(m(x), y)


def _arrays(model):
    return {k: v.copy() for k, v in nn.state_dict(model).items()}


def _assert_unchanged(model, before):
    after = nn.state_dict(model)
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_train_leaves_the_callers_model_and_its_statistics_alone(rng):
    model = _model(rng)
    before = _arrays(model)
    trained, _ = nn.train(model, _loss, nn.DataLoader(_data(rng), 8), nn.Adam(0.01),
                          progress=False)
    _assert_unchanged(model, before)
    assert not np.array_equal(nn.state_dict(trained)["layers.1.mean"], before["layers.1.mean"])


def test_nan_in_the_data_stops_training_at_that_step(rng):
    model = _model(rng)
    before = _arrays(model)
    x, y = _data(rng)
    x[13, 1] = np.nan  # batch 2 of epoch 1 with batches of 8
    with pytest.raises(nn.NonFiniteError, match=r"epoch 1, step 2: the loss is nan"):
        nn.train(model, _loss, nn.DataLoader((x, y), 8), nn.Adam(0.01), progress=False)
    _assert_unchanged(model, before)


@pytest.mark.filterwarnings("ignore:.*encountered:RuntimeWarning")
def test_a_nan_gradient_with_a_finite_loss_stops_training(rng):
    def loss(m, x, y):  # sqrt(s**2) at s = 0 has the value 0 and the gradient 0/0
        return wnp.sqrt(wnp.sum(m(x) * 0.0) ** 2)

    model = nn.Dense(2, 1, rng=rng)
    with pytest.raises(nn.NonFiniteError, match=r"epoch 1, step 1: the loss is 0 but the "
                                                r"gradient of (weight|bias) holds NaN"):
        nn.train(model, loss, nn.DataLoader(_data(rng), 8), nn.Descent(0.1), progress=False)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # and raises no overflow warning
def test_a_huge_but_finite_gradient_does_not_stop_training(rng):
    # Its squares overflow float32, so the quick finiteness check must fall back to
    # looking at the entries instead of calling the gradient infinite.
    model = nn.Dense(2, 1, rng=rng)
    x = np.full((4, 2), 1e20, np.float32)
    opt = nn.Descent(1e-21)  # the gradient of the weight is 4e20 (its square 1.6e41)
    step = nn.train_step(model, lambda m, x: wnp.sum(m(x)), (x,), opt, opt.init(model))
    assert np.all(np.isfinite(step[0].weight)) and not np.array_equal(step[0].weight,
                                                                     model.weight)


def test_an_epoch_without_batches_raises(rng):
    with pytest.raises(ValueError, match="epoch 1 got no batches"):
        nn.train(_model(rng), _loss, [], nn.Adam(), progress=False)
    batches = iter([_data(rng, 8)])  # a generator: used up by the first epoch
    with pytest.raises(ValueError, match="epoch 2 got no batches"):
        nn.train(_model(rng), _loss, batches, nn.Adam(), epochs=2, progress=False)


# ---- checkpoints -------------------------------------------------------------------------------

FORMATS = ["model.safetensors", "model.npz"]


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_saved_file_mode_follows_the_umask(tmp_path, rng, name, umask, mode):
    old = os.umask(umask)
    try:
        path = nn.save(tmp_path / name, _model(rng))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    path.chmod(0o640)  # an existing file keeps its mode, as with a plain open()
    nn.save(path, _model(rng))
    assert path.stat().st_mode & 0o777 == 0o640


def _overwrite_bytes(path, value, needle):
    data = bytearray(path.read_bytes())
    at = data.index(needle)
    data[at:at + len(needle)] = value
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", FORMATS)
def test_overwritten_tensor_bytes_are_refused(tmp_path, rng, name):
    model = nn.Dense(3, 2, rng=rng)
    model = model.replace(weight=np.full((3, 2), 0.25, np.float32))
    path = nn.save(tmp_path / name, model)
    _overwrite_bytes(path, np.float32(7.0).tobytes(), np.float32(0.25).tobytes())
    # safetensors has no checksum of its own: ours names the array; zip's CRC guards .npz
    with pytest.raises(ValueError, match=rf"{name}.*damaged"):
        nn.load(path, model)


@pytest.mark.parametrize("name", FORMATS)
def test_unexpected_arrays_are_refused_unless_not_strict(tmp_path, rng, name):
    big = nn.Chain(nn.Dense(2, 3, rng=rng), nn.Dense(3, 1, rng=rng))
    small = nn.Chain(nn.Dense(2, 3))
    path = nn.save(tmp_path / name, big)
    with pytest.raises(ValueError, match=r"holds arrays the model does not have: "
                                         r"'layers.1.bias', 'layers.1.weight'.*strict=False"):
        nn.load(path, small)
    loaded = nn.load(path, small, strict=False)
    np.testing.assert_array_equal(loaded.layers[0].weight, big.layers[0].weight)


def test_bfloat16_round_trips_through_npz(tmp_path, rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    model = nn.Dense(3, 2, rng=rng)
    model = model.replace(weight=model.weight.astype(ml_dtypes.bfloat16),
                          bias=model.bias.astype(ml_dtypes.bfloat16))
    for name in FORMATS:
        loaded = nn.load(nn.save(tmp_path / name, model), model)
        assert loaded.weight.dtype == ml_dtypes.bfloat16
        np.testing.assert_array_equal(loaded.weight.view(np.uint16), model.weight.view(np.uint16))


@pytest.mark.parametrize("name", FORMATS)
def test_unreadable_checkpoints_name_the_file(tmp_path, rng, name):
    model = nn.Dense(2, 2, rng=rng)
    good = nn.save(tmp_path / name, model).read_bytes()
    damaged = {"empty": b"", "truncated": good[: len(good) // 2],
               "bad header": b"\xff" * 8 + good[8:]}
    for what, data in damaged.items():
        path = tmp_path / f"{what.replace(' ', '_')}{os.path.splitext(name)[1]}"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=rf"load: {path} is not a readable .* checkpoint"):
            nn.load(path, model)
    folder = tmp_path / f"folder{os.path.splitext(name)[1]}"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"{folder} is a folder"):
        nn.load(folder, model)


def test_next_save_removes_temporaries_of_killed_writers(tmp_path, rng):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = nn.io._hostname()
    stale = tmp_path / f".m.safetensors.{host}.{child.pid}.00ff00ff.tmp"
    live = tmp_path / f".m.safetensors.{host}.{os.getppid()}.00ff00ff.tmp"
    remote = tmp_path / f".m.safetensors.{host}x.{child.pid}.00ff00ff.tmp"  # another node's
    stale.write_bytes(b"half a checkpoint")
    live.write_bytes(b"a save in progress")
    remote.write_bytes(b"a save in progress elsewhere")
    nn.save(tmp_path / "m.safetensors", nn.Dense(2, 2, rng=rng))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, remote.name, "m.safetensors"])


# ---- errors that name the problem --------------------------------------------------------------

def test_shape_mismatch_names_the_layer_path_and_shapes(rng):
    model = nn.Chain(nn.Dense(3, 4, rng=rng),
                     nn.Chain(head=nn.SkipConnection(nn.Dense(5, 5, rng=rng), lambda a, b: a)))
    x = np.ones((2, 3), np.float32)
    with pytest.raises(nn.ShapeError, match=r"^layers\.1\.layers\.head\.layer: Dense\(5 => 5\) "
                                            r"expects inputs whose last dimension is 5, got "
                                            r"shape \(2, 4\)$"):
        model(x)
    with pytest.raises(nn.ShapeError, match=r"^layers\.1: Dense"):
        nn.Parallel(lambda *ys: ys, nn.Dense(3, 1), nn.Dense(2, 1))(x)
    assert nn.state_dict(model).keys() >= {"layers.1.layers.head.layer.weight"}  # same path


def test_convolution_input_smaller_than_its_kernel_raises(rng):
    conv = nn.Conv((5, 5), 1, 2, rng=rng)
    with pytest.raises(nn.ShapeError, match=r"spatial size \(3, 4\).*smaller than the kernel's "
                                            r"extent \(5, 5\)"):
        conv(np.ones((1, 3, 4, 1), np.float32))
    with pytest.raises(nn.ShapeError, match=r"extent \(9, 9\)"):  # dilation widens the kernel
        nn.Conv((5, 5), 1, 2, dilation=2)(np.ones((1, 8, 8, 1), np.float32))
    assert conv(np.ones((1, 5, 5, 1), np.float32)).shape == (1, 1, 1, 2)
    assert nn.Conv((5, 5), 1, 2, pad=1)(np.ones((1, 3, 3, 1), np.float32)).shape == (1, 1, 1, 2)
    assert nn.Conv((5, 5), 1, 2, pad="same")(np.ones((1, 3, 3, 1), np.float32)).shape == (
        1, 3, 3, 2)


@pytest.mark.parametrize("batchsize", [2.5, 2.0, "4", True, 0])
def test_dataloader_refuses_a_batch_size_that_is_not_a_whole_number(batchsize):
    with pytest.raises(ValueError, match="batchsize must be a whole number >= 1"):
        nn.DataLoader(np.zeros((10, 2)), batchsize)
    assert len(nn.DataLoader(np.zeros((10, 2)), np.int64(4))) == 3


def test_optimiser_state_repr_lists_states_by_parameter(rng):
    model = nn.Chain(nn.Dense(3, 4, rng=rng), nn.BatchNorm(4))
    text = repr(nn.Adam().init(model))
    assert text.startswith("OptState(step=0, {layers.0.weight: (array(3, 4), array(3, 4))")
    assert "layers.1.mean" not in text  # state buffers have no optimiser state
    many = nn.Chain(*(nn.Dense(2, 2) for _ in range(10)))
    assert repr(nn.Descent().init(many)).endswith("... 12 more})")
