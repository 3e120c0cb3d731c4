"""Every layer: output shapes, derivatives against finite differences
(float64), and values (and gradients) against PyTorch with copied weights."""

from __future__ import annotations

import numpy as np
import pytest
from wengert import ad, nn
from wengert.ad.testing import check_grads

F64 = {"dtype": np.float64}


def _check_layer_grads(layer, x, **kw):
    """Finite-difference check over the layer's float arrays and the input.

    (`check_grads` builds ``None`` tangents for non-float leaves, which `ad.jvp`
    rejects; so the arrays go in alone. State buffers, such as BatchNorm's
    statistics, are not differentiated: they stay inside the layer.)
    """
    leaves, treedef = ad.tree_flatten(layer, is_leaf=lambda v: isinstance(v, nn.Buffer))
    slots = [i for i, v in enumerate(leaves) if isinstance(v, np.ndarray)]

    def run(arrays, x):
        new = list(leaves)
        for i, a in zip(slots, arrays):
            new[i] = a
        return ad.tree_unflatten(treedef, new)(x)

    check_grads(run, ([leaves[i] for i in slots], x), **kw)


def _assert_close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ---- Dense, Bilinear, Embedding --------------------------------------------------------------

def test_dense(torch, tl, rng):
    layer = nn.Dense(5, 3, nn.tanh, rng=rng, **F64)
    x = rng.standard_normal((4, 5))
    assert layer(x).shape == (4, 3) and layer(rng.standard_normal((2, 6, 5))).shape == (2, 6, 3)
    _check_layer_grads(layer, x)
    ref = torch.nn.Linear(5, 3).double()
    layer = layer.replace(weight=ref.weight.detach().numpy().T.copy(),
                          bias=ref.bias.detach().numpy().copy())
    _assert_close(layer(x), torch.tanh(ref(torch.tensor(x))).detach().numpy())
    assert nn.Dense(5, 3).weight.dtype == np.float32


def test_bilinear_and_embedding(torch, tl, rng):
    layer = nn.Bilinear(3, 4, 2, rng=rng, **F64)
    x1, x2 = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    ref = torch.nn.Bilinear(3, 4, 2).double()
    layer = layer.replace(weight=ref.weight.detach().numpy().copy(),
                          bias=ref.bias.detach().numpy().copy())
    _assert_close(layer((x1, x2)), ref(torch.tensor(x1), torch.tensor(x2)).detach().numpy())
    check_grads(lambda m, a, b: m((a, b)), (layer, x1, x2))
    emb = nn.Embedding(10, 3, rng=rng, **F64)
    idx = np.array([[1, 2, 2], [9, 0, 1]])
    assert emb(idx).shape == (2, 3, 3)
    (g,) = ad.gradient(lambda m: m(idx).sum(), emb)
    np.testing.assert_array_equal(g.weight[:, 0], np.bincount(idx.ravel(), minlength=10))


# ---- convolutions ----------------------------------------------------------------------------

CONV_OPTIONS = [
    {},
    {"stride": 2, "pad": 1},
    {"pad": "same", "dilation": 2},
    {"stride": (2, 1), "pad": ((1, 0), (2, 1))},
    {"groups": 2, "pad": 1},
    {"stride": 2, "dilation": (1, 2), "groups": 2, "pad": (2, 1)},
]


@pytest.mark.parametrize("options", CONV_OPTIONS)
def test_conv2d_against_torch(torch, tl, rng, options):
    layer = nn.Conv((3, 2), 4, 6, nn.relu, rng=rng, **options, **F64)
    x = rng.standard_normal((2, 7, 8, 4))
    y = layer(x)
    stride = options.get("stride", 1)
    dilation = options.get("dilation", 1)
    conv = torch.nn.Conv2d(4, 6, (3, 2), stride=stride, dilation=dilation,
                           groups=options.get("groups", 1), padding=0).double()
    layer = layer.replace(weight=tl.kernel(conv.weight),
                          bias=conv.bias.detach().numpy().copy())
    pad = layer.pad
    if pad == "SAME":
        from wengert.ad import lax

        pad = lax.padtype_to_pads((7, 8), (3, 2), layer.stride, "SAME", layer.dilation)
    xt = tl.to(x)
    xt_padded = torch.nn.functional.pad(xt, (pad[1][0], pad[1][1], pad[0][0], pad[0][1]))
    yt = torch.relu(conv(xt_padded))
    y = layer(x)
    assert y.shape == tl.back(yt).shape
    _assert_close(y, tl.back(yt))
    # gradients with respect to the input and the kernel
    r = rng.standard_normal(y.shape)
    gm, gx = ad.gradient(lambda m, x: (m(x) * r).sum(), layer, x)
    (yt * tl.to(r).detach()).sum().backward()
    _assert_close(gx, tl.back(xt.grad))
    _assert_close(gm.weight, tl.kernel(conv.weight.grad))
    _check_layer_grads(layer, x)


@pytest.mark.parametrize("dims", [1, 3])
def test_conv_1d_3d_against_torch(torch, tl, rng, dims):
    kernel = (3,) * dims
    layer = nn.Conv(kernel, 2, 3, stride=2, pad=1, rng=rng, **F64)
    x = rng.standard_normal((2,) + (5,) * dims + (2,))
    conv = getattr(torch.nn, f"Conv{dims}d")(2, 3, 3, stride=2, padding=1).double()
    layer = layer.replace(weight=tl.kernel(conv.weight),
                          bias=conv.bias.detach().numpy().copy())
    _assert_close(layer(x), tl.back(conv(tl.to(x))))
    _check_layer_grads(layer, x)


def test_same_padding_keeps_the_size(rng):
    for stride in (1, 2):
        y = nn.Conv((4, 3), 1, 2, pad="same", stride=stride)(np.ones((1, 9, 8, 1), np.float32))
        assert y.shape == (1, -(-9 // stride), -(-8 // stride), 2)


@pytest.mark.parametrize("options", [{}, {"stride": 2, "pad": 1}, {"stride": 2, "pad": 1,
                                                                         "output_padding": 1},
                                     {"stride": (2, 3), "dilation": 2, "groups": 2, "pad": (1, 0)}])
def test_conv_transpose_against_torch(torch, tl, rng, options):
    layer = nn.ConvTranspose((3, 3), 4, 6, rng=rng, **options, **F64)
    x = rng.standard_normal((2, 4, 5, 4))
    pad = options.get("pad", 0)
    ref = torch.nn.ConvTranspose2d(4, 6, 3, stride=options.get("stride", 1), padding=pad,
                                   output_padding=options.get("output_padding", 0),
                                   groups=options.get("groups", 1),
                                   dilation=options.get("dilation", 1)).double()
    layer = layer.replace(weight=tl.kernel(ref.weight),
                          bias=ref.bias.detach().numpy().copy())
    _assert_close(layer(x), tl.back(ref(tl.to(x))))
    _check_layer_grads(layer, x)


def test_conv_transpose_same_upsamples_by_the_stride(rng):
    layer = nn.ConvTranspose((3, 3), 2, 2, stride=2, pad="same", rng=rng)
    assert layer(np.ones((1, 5, 4, 2), np.float32)).shape == (1, 10, 8, 2)


def test_conv_transpose_is_the_adjoint_of_conv(rng):
    conv = nn.Conv((3, 3), 6, 4, stride=2, pad=1, bias=False, rng=rng, **F64)
    tconv = nn.ConvTranspose((3, 3), 4, 6, stride=2, pad=1, output_padding=1, bias=False,
                             **F64).replace(weight=conv.weight)
    x, y = rng.standard_normal((1, 8, 8, 6)), rng.standard_normal((1, 4, 4, 4))
    np.testing.assert_allclose(np.sum(conv(x) * y), np.sum(x * tconv(y)), rtol=1e-12)


def test_conv_and_conv_transpose_reject_channels_not_divisible_by_groups():
    for layer in (nn.Conv, nn.ConvTranspose):
        with pytest.raises(ValueError, match=f"{layer.__name__}: channels 3 => 4 must be"):
            layer((3, 3), 3, 4, groups=2)


def test_depthwise_conv(torch, tl, rng):
    layer = nn.DepthwiseConv((3, 3), 3, 6, pad=1, rng=rng, **F64)
    assert layer.weight.shape == (3, 3, 1, 6)
    x = rng.standard_normal((2, 5, 5, 3))
    ref = torch.nn.Conv2d(3, 6, 3, padding=1, groups=3).double()
    layer = layer.replace(weight=tl.kernel(ref.weight),
                          bias=ref.bias.detach().numpy().copy())
    _assert_close(layer(x), tl.back(ref(tl.to(x))))
    _check_layer_grads(layer, x)


# ---- pooling, reshaping ------------------------------------------------------------------------

@pytest.mark.parametrize("window,stride,pad", [((2, 2), None, 0), ((3, 3), 2, 1), ((3, 2), 1, 0)])
def test_pools_against_torch(torch, tl, rng, window, stride, pad):
    x = rng.standard_normal((2, 7, 6, 3))
    xt = tl.to(x)
    kw = {"stride": stride if stride is not None else window, "padding": pad}
    for ours, ref in ((nn.MaxPool(window, stride=stride, pad=pad), torch.nn.functional.max_pool2d),
                      (nn.MeanPool(window, stride=stride, pad=pad),
                       torch.nn.functional.avg_pool2d)):
        yt = ref(xt, window, **kw)
        _assert_close(ours(x), tl.back(yt))
        r = rng.standard_normal(ours(x).shape)
        (gx,) = ad.gradient(lambda x, ours=ours, r=r: (ours(x) * r).sum(), x)
        xt.grad = None
        (yt * tl.to(r).detach()).sum().backward()
        _assert_close(gx, tl.back(xt.grad))
        _check_layer_grads(ours, x)


def test_global_and_adaptive_pools(torch, tl, rng):
    x = rng.standard_normal((2, 6, 4, 3))
    xt = tl.to(x)
    _assert_close(nn.GlobalMeanPool()(x), tl.back(torch.nn.AdaptiveAvgPool2d(1)(xt)))
    _assert_close(nn.GlobalMaxPool()(x), tl.back(torch.nn.AdaptiveMaxPool2d(1)(xt)))
    _assert_close(nn.AdaptiveMeanPool((3, 2))(x),
                  tl.back(torch.nn.AdaptiveAvgPool2d((3, 2))(xt)))
    for layer in (nn.GlobalMeanPool(), nn.GlobalMaxPool(), nn.AdaptiveMeanPool((3, 2))):
        _check_layer_grads(layer, x)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample_against_torch(torch, tl, rng, mode):
    x = rng.standard_normal((2, 3, 4, 2))
    layer = nn.Upsample(2, mode=mode)
    ref = torch.nn.Upsample(scale_factor=2, mode=mode)
    _assert_close(layer(x), tl.back(ref(tl.to(x))))
    _check_layer_grads(layer, x)


def test_flatten_and_dropout(rng):
    x = rng.standard_normal((3, 2, 2, 5))
    assert nn.Flatten()(x).shape == (3, 20)
    drop = nn.Dropout(0.5, rng=np.random.default_rng(0))
    y = drop(np.ones((200, 50)))
    assert set(np.unique(y)) == {0.0, 2.0} and abs(np.mean(y == 0) - 0.5) < 0.02
    np.testing.assert_array_equal(nn.testmode(drop)(x), x)
    channel = nn.Dropout(0.5, dims=(0, 3), rng=np.random.default_rng(0))(np.ones((4, 3, 3, 8)))
    assert np.all(channel == channel[:, :1, :1, :])  # whole channels dropped
    a = nn.Dropout(0.3, rng=np.random.default_rng(7))(x)
    b = nn.Dropout(0.3, rng=np.random.default_rng(7))(x)
    np.testing.assert_array_equal(a, b)


# ---- normalisation -------------------------------------------------------------------------------

def test_batchnorm_train_and_test_mode_against_torch(torch, tl, rng):
    x = rng.standard_normal((4, 3, 5, 6)) * 2 + 1
    bn = nn.BatchNorm(6, **F64)
    ref = torch.nn.BatchNorm2d(6).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(rng.standard_normal(6)))
        ref.bias.copy_(torch.tensor(rng.standard_normal(6)))
    bn = bn.replace(γ=ref.weight.detach().numpy().copy(), β=ref.bias.detach().numpy().copy())
    for _ in range(2):  # two training-mode calls update the running statistics
        _assert_close(bn(x), tl.back(ref(tl.to(x))))
    _assert_close(bn.mean.value, ref.running_mean.numpy())
    _assert_close(bn.var.value, ref.running_var.numpy())
    ref.eval()
    x2 = rng.standard_normal((2, 3, 5, 6))
    _assert_close(nn.testmode(bn)(x2), tl.back(ref(tl.to(x2))))
    _check_layer_grads(nn.BatchNorm(6, **F64), x)
    _check_layer_grads(nn.testmode(bn), x2)


def test_batchnorm_statistics_get_no_gradient_and_update_through_withgradient(rng):
    bn = nn.BatchNorm(3, **F64)
    x = rng.standard_normal((8, 3)) + 5
    g, _ = ad.gradient(lambda m, x: (m(x) ** 2).sum(), bn, x)
    # the statistics are tree children (so compilers see them as inputs) but get no gradient
    assert not g.mean.value.any() and not g.var.value.any() and g.γ.shape == (3,)
    # traced statistics: a bare gradient computes gradients only
    np.testing.assert_array_equal(bn.mean.value, 0)
    _, (g2, _) = nn.withgradient(lambda m, x: (m(x) ** 2).sum(), bn, x)
    _assert_close(g2.γ, g.γ)
    _assert_close(bn.mean.value, 0.1 * x.mean(0))
    # statistics of a constant input are concrete, so they are stored at once
    nn.BatchNorm(3, **F64)(x)
    ad.gradient(lambda m: (m(x) ** 2).sum(), bn)
    _assert_close(bn.mean.value, 0.19 * x.mean(0))


@pytest.mark.parametrize("shape", [(6,), (5, 6)])
def test_layernorm_against_torch(torch, tl, rng, shape):
    x = rng.standard_normal((2, 3, 5, 6))
    ln = nn.LayerNorm(shape, **F64)
    ref = torch.nn.LayerNorm(shape).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(rng.standard_normal(shape)))
    ln = ln.replace(γ=ref.weight.detach().numpy().copy())
    _assert_close(ln(x), ref(torch.tensor(x)).detach().numpy())
    _check_layer_grads(ln, x)


def test_group_and_instance_norm_against_torch(torch, tl, rng):
    x = rng.standard_normal((2, 4, 3, 6)) * 3
    gn, ref = nn.GroupNorm(6, 3, **F64), torch.nn.GroupNorm(3, 6).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(rng.standard_normal(6)))
    gn = gn.replace(γ=ref.weight.detach().numpy().copy())
    _assert_close(gn(x), tl.back(ref(tl.to(x))))
    inorm = nn.InstanceNorm(6, **F64)
    _assert_close(inorm(x), tl.back(torch.nn.InstanceNorm2d(6)(tl.to(x))))
    _check_layer_grads(gn, x)
    _check_layer_grads(inorm, x)


# ---- containers and printing ---------------------------------------------------------------------

def test_containers(rng):
    d1, d2 = nn.Dense(3, 3, rng=rng, **F64), nn.Dense(3, 3, rng=rng, **F64)
    x = rng.standard_normal((2, 3))
    _assert_close(nn.Chain(d1, nn.relu, d2)(x), d2(nn.relu(d1(x))))
    named = nn.Chain(first=d1, act=nn.relu, second=d2)
    assert named["second"] is d2 and len(named[:2]) == 2
    _assert_close(nn.SkipConnection(d1, lambda a, b: a + b)(x), d1(x) + x)
    _assert_close(nn.Parallel(lambda a, b: a * b, d1, d2)(x), d1(x) * d2(x))
    _assert_close(nn.Parallel(np.add, d1, d2)((x, 2 * x)), d1(x) + d2(2 * x))
    _assert_close(nn.Maxout(d1, d2)(x), np.maximum(d1(x), d2(x)))
    assert len(nn.Maxout(lambda: nn.Dense(3, 2), 4).layers) == 4
    model = nn.Chain(d1, nn.relu, nn.SkipConnection(d2, np.add))
    _check_layer_grads(model, x)
    (g,) = ad.gradient(lambda m: m(x).sum(), model)
    assert isinstance(g, nn.Chain) and g.layers[1] is None
    assert g.layers[2].layer.weight.shape == (3, 3)


def test_summary_shows_layers_and_parameter_counts():
    model = nn.Chain(nn.Conv((3, 3), 1, 8, nn.relu, pad=1), nn.BatchNorm(8), nn.Flatten(),
                     nn.Dense(8 * 4 * 4, 10))
    text = repr(model)
    assert "Conv((3, 3), 1 => 8, relu, pad=((1, 1), (1, 1)))" in text
    assert "# 80 parameters" in text and "Dense(128 => 10)" in text
    assert "1,386 parameters, 16 non-trainable" in text.splitlines()[-1]


def test_layers_keep_their_parameter_dtype(rng):
    """A float32 layer given float64 input computes and returns float32 and says
    so once (as Flux), instead of silently promoting."""
    import warnings

    x64 = rng.standard_normal((2, 5, 5, 3))
    cases = [(nn.Dense(3, 2), x64), (nn.Conv((3, 3), 3, 2), x64),
             (nn.ConvTranspose((3, 3), 3, 2), x64), (nn.BatchNorm(3), x64),
             (nn.LayerNorm(3), x64), (nn.LSTM(3, 2), x64[:, 0]),
             (nn.MultiHeadAttention(3, 1), x64[:, 0]), (nn.Bilinear(3, 3, 2), x64)]
    for layer, x in cases:
        with pytest.warns(UserWarning, match="float32 parameters but got float64"):
            assert layer(x).dtype == np.float32, layer
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            layer(x)  # said once
    (g,) = ad.gradient(lambda m: ad.numpy.sum(m(x64)), nn.Dense(3, 2))
    assert g.weight.dtype == np.float32
    assert nn.Dense(3, 2)(np.ones((1, 3), int)).dtype == np.float32  # integers convert silently


def test_conv_names_a_channels_first_batch():
    x = np.zeros((2, 3, 8, 8), np.float32)  # PyTorch's NCHW
    for layer in (nn.Conv((3, 3), 3, 4), nn.ConvTranspose((3, 3), 3, 4)):
        with pytest.raises(ValueError, match=r"channels-first \(NCHW\).*np.moveaxis\(x, 1, -1\)"):
            layer(x)
    with pytest.raises(ValueError, match="2-D convolution takes"):
        nn.Conv((3, 3), 3, 4)(np.zeros((2, 8, 3), np.float32))


def test_batchnorm_pullback_matches_the_unfused_formula(rng):
    """Training-mode BatchNorm has its own pullback; its gradients (also through
    the batch statistics themselves, and with affine=False) equal those of the
    plain formula, to second order."""
    import wengert.ad.numpy as wnp
    from wengert.nn.layers.norm import _batch_statistics_normalised

    x = rng.standard_normal((6, 3, 4)) * 2 + 1
    γ, β = rng.standard_normal(4), rng.standard_normal(4)
    w = rng.standard_normal((6, 3, 4))

    def plain(x, γ, β):
        mean = wnp.mean(x, axis=(0, 1), keepdims=True)
        var = wnp.mean((x - mean) ** 2, axis=(0, 1), keepdims=True)
        y = (x - mean) / wnp.sqrt(var + 1e-5) * γ + β
        return wnp.sum(y * w) + wnp.sum(mean ** 2) + wnp.sum(wnp.sin(var))

    def fused(x, γ, β):
        y, mean, var = _batch_statistics_normalised(x, γ, β, 1e-5)
        return wnp.sum(y * w) + wnp.sum(mean ** 2) + wnp.sum(wnp.sin(var))

    for got, want in zip(ad.gradient(fused, x, γ, β), ad.gradient(plain, x, γ, β)):
        _assert_close(got, want)
    check_grads(fused, (x, γ, β), order=2)
    check_grads(lambda x: wnp.sum(_batch_statistics_normalised(x, None, None, 1e-5)[0] * w),
                (x,), order=2)
