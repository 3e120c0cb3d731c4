"""The model zoo: standard parameter counts, and VGG-19 / ResNet-18 end to end
against the same networks assembled from PyTorch modules with copied weights."""

from __future__ import annotations

import numpy as np
import pytest
from wengert import ad, nn
from wengert.nn import models


def test_standard_parameter_counts():
    # torchvision's published counts for the same architectures
    assert nn.count_parameters(models.VGG19())[0] == 143_667_240
    assert nn.count_parameters(models.ResNet18())[0] == 11_689_512
    assert nn.count_parameters(models.ResNet34())[0] == 21_797_672
    vgg19 = models.VGG19(imsize=(32, 32, 3), nclasses=10)
    convs = [l for l in vgg19["features"].layers if isinstance(l, nn.Conv)]
    dense = [l for l in vgg19["classifier"].layers if isinstance(l, nn.Dense)]
    assert (len(convs), len(dense)) == (16, 3)


@pytest.mark.parametrize("depth,bn,count", [(11, False, 132_863_336), (16, False, 138_357_544),
                                            (11, True, 132_868_840), (19, True, 143_678_248)])
def test_vgg_variants(depth, bn, count):
    model = models.VGG(depth, batchnorm=bn, imsize=(32, 32, 3), nclasses=1000)
    # only the first dense layer depends on the image size: 512 * 7 * 7 inputs at 224x224
    at_224 = nn.count_parameters(model)[0] + (512 * 49 - 512) * 4096
    assert at_224 == count


def test_small_models(rng):
    lenet = models.LeNet5((28, 28, 1), 10, rng=rng)
    assert lenet(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)
    assert nn.count_parameters(models.LeNet5((32, 32, 1)))[0] == 61_706  # the 1998 LeNet-5
    mlp = models.MLP([4, 8, 8, 3], rng=rng)
    assert mlp(np.zeros((5, 4), np.float32)).shape == (5, 3) and len(mlp) == 3


# ---- the same network in PyTorch -----------------------------------------------------------

def _to_torch(layer, torch):
    """Build the PyTorch module of one of our layers (NCHW inside), copying weights."""
    tnn = torch.nn

    def t(a):
        return torch.tensor(np.asarray(a, np.float64))

    if isinstance(layer, nn.Chain):
        return tnn.Sequential(*(_to_torch(l, torch) for l in layer.layers.values()) if
                              isinstance(layer.layers, dict) else
                              (_to_torch(l, torch) for l in layer.layers))
    if isinstance(layer, nn.Conv):
        (lo, _), _ = layer.pad
        conv = tnn.Conv2d(layer.weight.shape[2], layer.weight.shape[3], layer.weight.shape[:2],
                          stride=layer.stride, padding=lo, bias=layer.bias is not None).double()
        conv.weight.data = t(np.moveaxis(layer.weight, (-1, -2), (0, 1)))
        if layer.bias is not None:
            conv.bias.data = t(layer.bias)
        return tnn.Sequential(conv, _activation(layer.σ, torch))
    if isinstance(layer, nn.BatchNorm):
        bn = tnn.BatchNorm2d(layer.γ.shape[0]).double()
        bn.weight.data, bn.bias.data = t(layer.γ), t(layer.β)
        bn.running_mean.data, bn.running_var.data = t(layer.mean.value), t(layer.var.value)
        bn.train(layer.training)
        return tnn.Sequential(bn, _activation(layer.σ, torch))
    if isinstance(layer, nn.Dense):
        lin = tnn.Linear(*layer.weight.shape).double()
        lin.weight.data, lin.bias.data = t(layer.weight.T), t(layer.bias)
        return tnn.Sequential(lin, _activation(layer.σ, torch))
    if isinstance(layer, nn.MaxPool):
        return tnn.MaxPool2d(layer.window, layer.stride, layer.pad[0][0])
    if isinstance(layer, nn.Dropout):
        return tnn.Dropout(layer.p) if layer.training else tnn.Identity()
    if isinstance(layer, nn.Flatten):  # flatten in NHWC order, as ours
        return _Lambda(lambda x: x.permute(0, 2, 3, 1).flatten(1), torch)
    if isinstance(layer, nn.GlobalMeanPool):
        return tnn.AdaptiveAvgPool2d(1)
    if isinstance(layer, nn.SkipConnection):
        inner = _to_torch(layer.layer, torch)
        return _Lambda(lambda x: inner(x) + x, torch, inner)
    if isinstance(layer, nn.Parallel):
        a, b = (_to_torch(l, torch) for l in layer.layers)
        return _Lambda(lambda x: a(x) + b(x), torch, a, b)
    return _activation(layer, torch)


def _activation(σ, torch):
    return {nn.relu: torch.nn.ReLU(), nn.identity: torch.nn.Identity()}[σ]


def _Lambda(fn, torch, *children):
    class Lambda(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.ModuleList(children)

        def forward(self, x):
            return fn(x)

    return Lambda()


def _compare(model, torch, rng, tol):
    x = rng.standard_normal((2, 32, 32, 3))
    ref = _to_torch(model, torch)
    xt = torch.tensor(np.moveaxis(x, -1, 1).copy())
    y = model(x)
    np.testing.assert_allclose(y, ref(xt).detach().numpy(), rtol=tol, atol=tol)
    return x, ref, xt


def test_vgg19_end_to_end_against_torch(torch, rng):
    model = nn.testmode(models.VGG19(imsize=(32, 32, 3), nclasses=10, rng=rng))
    model = ad.tree_map(lambda a: a.astype(np.float64) if isinstance(a, np.ndarray) else a, model)
    _compare(model, torch, rng, 1e-9)


def test_resnet18_end_to_end_against_torch_in_train_mode(torch, rng):
    model = models.ResNet18(imsize=(32, 32, 3), nclasses=10, rng=rng)
    model = ad.tree_map(lambda a: a.astype(np.float64) if isinstance(a, np.ndarray) else a, model)
    x, ref, xt = _compare(model, torch, rng, 1e-9)
    ref.train()
    labels = np.array([3, 7])
    loss = lambda m: nn.logitcrossentropy(m(x), nn.onehot(labels, 10, np.float64))
    (g,) = ad.gradient(loss, model)
    torch.nn.functional.cross_entropy(ref(xt), torch.tensor(labels)).backward()
    stem_conv = ref[0][0][0]
    np.testing.assert_allclose(g["stem"][0].weight,
                               np.moveaxis(stem_conv.weight.grad.numpy(), (0, 1), (-1, -2)),
                               rtol=1e-7, atol=1e-9)
    head = ref[2][2][0]
    np.testing.assert_allclose(g["head"][2].weight, head.weight.grad.numpy().T, rtol=1e-7,
                               atol=1e-9)
