"""Porting from PyTorch: `nn.from_torch` copies a PyTorch model's weights into
the same architecture written with `wengert.nn` (outputs then match), and
`nn.to_torch_state_dict` goes back (PyTorch then computes our outputs). Every
zoo model is round-tripped against a PyTorch model written as PyTorch users
write it (NCHW, ``nn.Flatten`` of channels-first features)."""

from __future__ import annotations

import numpy as np
import pytest
from wengert import nn
from wengert.nn import models

F64 = {"dtype": np.float64}


def _nchw(torch, x):
    return torch.tensor(np.ascontiguousarray(np.moveaxis(x, -1, 1)))


def _out(t):
    a = t.detach().numpy()
    return np.moveaxis(a, 1, -1) if a.ndim > 2 else a


def _torch_models(torch):
    tnn = torch.nn

    def mlp():
        return tnn.Sequential(tnn.Linear(4, 8), tnn.ReLU(), tnn.Linear(8, 8), tnn.ReLU(),
                              tnn.Linear(8, 3))

    def lenet():
        return tnn.Sequential(
            tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
            tnn.Linear(16 * 4 * 4, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
            tnn.Linear(84, 10))

    def vgg11_bn():
        layers, c = [], 3
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
            if v == "M":
                layers.append(tnn.MaxPool2d(2))
            else:
                layers += [tnn.Conv2d(c, v, 3, padding=1), tnn.BatchNorm2d(v), tnn.ReLU()]
                c = v
        return tnn.Sequential(tnn.Sequential(*layers), tnn.Sequential(
            tnn.Flatten(), tnn.Linear(512, 16), tnn.ReLU(), tnn.Dropout(),
            tnn.Linear(16, 16), tnn.ReLU(), tnn.Dropout(), tnn.Linear(16, 10)))

    class BasicBlock(tnn.Module):  # torchvision's
        def __init__(self, n_in, n_out, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(n_in, n_out, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(n_out)
            self.conv2 = tnn.Conv2d(n_out, n_out, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(n_out)
            self.downsample = None
            if stride != 1 or n_in != n_out:
                self.downsample = tnn.Sequential(tnn.Conv2d(n_in, n_out, 1, stride, bias=False),
                                                 tnn.BatchNorm2d(n_out))

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    def resnet18():
        blocks, c = [], 64
        for i, w in enumerate((64, 128, 256, 512)):
            for j in range(2):
                blocks.append(BasicBlock(c, w, 2 if i > 0 and j == 0 else 1))
                c = w
        return tnn.Sequential(tnn.Conv2d(3, 64, 7, 2, 3, bias=False), tnn.BatchNorm2d(64),
                              tnn.ReLU(), tnn.MaxPool2d(3, 2, 1), *blocks,
                              tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(512, 10))

    return {
        "MLP": (mlp, lambda rng: models.MLP([4, 8, 8, 3], **F64), (2, 4)),
        "LeNet5": (lenet, lambda rng: models.LeNet5((28, 28, 1), 10, **F64), (2, 28, 28, 1)),
        "VGG11-BN": (vgg11_bn, lambda rng: models.VGG11(batchnorm=True, imsize=(32, 32, 3),
                                                         nclasses=10, hidden=16, **F64),
                     (2, 32, 32, 3)),
        "ResNet18": (resnet18, lambda rng: models.ResNet18(imsize=(32, 32, 3), nclasses=10,
                                                            **F64), (2, 32, 32, 3)),
    }


@pytest.mark.parametrize("name", ["MLP", "LeNet5", "VGG11-BN", "ResNet18"])
def test_zoo_models_round_trip_with_pytorch(torch, rng, name):
    make_torch, make_ours, shape = _torch_models(torch)[name]
    ref = make_torch().double()
    for m in ref.modules():  # non-trivial statistics, so the test-mode pairing is checked
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    ref.eval()
    x = rng.standard_normal(shape)
    ours = nn.testmode(nn.from_torch(ref, like=make_ours(rng)))
    xt = _nchw(torch, x) if len(shape) == 4 else torch.tensor(x)
    np.testing.assert_allclose(ours(x), _out(ref(xt)), rtol=1e-9, atol=1e-10)
    # back: a fresh PyTorch model loads our weights (strictly) and computes our outputs
    back = make_torch().double().eval()
    back.load_state_dict(nn.to_torch_state_dict(ours, like=back))
    np.testing.assert_allclose(_out(back(xt)), ours(x), rtol=1e-9, atol=1e-10)
    # and from a plain state_dict, in training mode (batch statistics, as PyTorch)
    ref.train()
    trained = nn.trainmode(nn.from_torch(ref.state_dict(), like=make_ours(rng)))
    if name != "VGG11-BN":  # dropout draws differ
        np.testing.assert_allclose(trained(x), _out(ref(xt)), rtol=1e-9, atol=1e-10)


def test_layers_with_their_own_layouts(torch, rng):
    tnn = torch.nn
    cases = [
        (tnn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
         nn.ConvTranspose((3, 3), 4, 6, stride=2, pad=1, output_padding=1, groups=2, **F64),
         (2, 5, 5, 4)),
        (tnn.Conv1d(4, 6, 3, dilation=2), nn.Conv((3,), 4, 6, dilation=2, **F64), (2, 9, 4)),
        (tnn.GroupNorm(2, 4), nn.GroupNorm(4, 2, **F64), (2, 3, 3, 4)),
        (tnn.Embedding(7, 4), nn.Embedding(7, 4, **F64), None),
        (tnn.MultiheadAttention(8, 2, batch_first=True), nn.MultiHeadAttention(8, 2, **F64),
         (2, 5, 8)),
    ]
    for ref, like, shape in cases:
        ref = ref.double()
        ours = nn.from_torch(ref, like=like)
        if shape is None:
            idx = np.array([[0, 6, 3]])
            np.testing.assert_allclose(ours(idx), ref(torch.tensor(idx)).detach().numpy())
            continue
        x = rng.standard_normal(shape)
        if isinstance(ref, tnn.MultiheadAttention):
            xt = torch.tensor(x)
            want = ref(xt, xt, xt, need_weights=False)[0].detach().numpy()
        else:
            want = _out(ref(_nchw(torch, x)))
        np.testing.assert_allclose(ours(x), want, rtol=1e-9, atol=1e-10)
        back = nn.to_torch_state_dict(ours, like=ref)
        for k, v in ref.state_dict().items():
            np.testing.assert_array_equal(back[k].numpy(), v.numpy())


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_with_num_layers_and_sequence_first_input(torch, rng, kind):
    ref = getattr(torch.nn, kind)(3, 5, num_layers=2).double()  # PyTorch's default: (T, N, F)
    ours = nn.from_torch(ref, like=getattr(nn, kind)(3, 5, num_layers=2, batch_first=False,
                                                      **F64))
    x = rng.standard_normal((6, 2, 3))
    np.testing.assert_allclose(ours(x), ref(torch.tensor(x))[0].detach().numpy(), rtol=1e-9,
                               atol=1e-10)
    back = getattr(torch.nn, kind)(3, 5, num_layers=2).double()
    back.load_state_dict(nn.to_torch_state_dict(ours, like=back))
    np.testing.assert_allclose(back(torch.tensor(x))[0].detach().numpy(), ours(x), rtol=1e-9,
                               atol=1e-10)
    cell = getattr(torch.nn, f"{kind}Cell")(3, 5).double()
    ours_cell = nn.from_torch(cell, like=getattr(nn, f"{kind}Cell")(3, 5, **F64))
    h = ours_cell(x[0])[0]
    np.testing.assert_allclose(h, (cell(torch.tensor(x[0])) if kind != "LSTM" else
                                   cell(torch.tensor(x[0]))[0]).detach().numpy(), rtol=1e-9)


def test_mismatches_name_both_sides(torch, rng):
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 3))
    with pytest.raises(ValueError, match="1 layers with weights .* 2 modules"):
        nn.from_torch(ref, like=nn.Chain(nn.Dense(4, 8)))
    with pytest.raises(ValueError, match=r"layers.1.weight has shape \(8, 2\).*'1' gives"):
        nn.from_torch(ref, like=nn.Chain(nn.Dense(4, 8), nn.Dense(8, 2)))
    with pytest.raises(ValueError, match="bias is absent here but present"):
        nn.from_torch(ref, like=nn.Chain(nn.Dense(4, 8), nn.Dense(8, 3, bias=False)))


def test_state_dict_without_a_torch_module_uses_our_paths():
    model = nn.Chain(nn.Dense(4, 8), nn.LSTM(8, 2))
    sd = nn.to_torch_state_dict(model)
    assert list(sd) == ["layers.0.weight", "layers.0.bias", "layers.1.cell.weight_ih_l0",
                        "layers.1.cell.weight_hh_l0", "layers.1.cell.bias_ih_l0",
                        "layers.1.cell.bias_hh_l0"]
    assert sd["layers.0.weight"].shape == (8, 4)
    again = nn.from_torch(sd, like=nn.Chain(nn.Dense(4, 8), nn.LSTM(8, 2)))
    np.testing.assert_array_equal(again.layers[0].weight, model.layers[0].weight)
    np.testing.assert_array_equal(again.layers[1].cell.b, model.layers[1].cell.b)


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_hidden_bias_trains_both_biases_as_pytorch_does(torch, rng, kind):
    """`hidden_bias=True` keeps PyTorch's `bias_hh` as a parameter of its own: after SGD
    steps the model still equals PyTorch's; one summed bias moves half as far."""
    ref = getattr(torch.nn, kind)(3, 4, batch_first=True).double()
    x, y = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 4))
    two = nn.from_torch(ref, like=getattr(nn, kind)(3, 4, hidden_bias=True, **F64))
    one = nn.from_torch(ref, like=getattr(nn, kind)(3, 4, **F64))
    assert two.cell.bh is not None and one.cell.bh is None
    opt, topt = nn.Descent(0.5), torch.optim.SGD(ref.parameters(), 0.5)
    states = [opt.init(two), opt.init(one)]
    for _ in range(3):
        topt.zero_grad()
        ((ref(torch.tensor(x))[0] - torch.tensor(y)) ** 2).mean().backward()
        topt.step()
        two, states[0], _ = nn.train_step(two, lambda m, x, y: nn.mse(m(x), y), (x, y), opt,
                                          states[0])
        one, states[1], _ = nn.train_step(one, lambda m, x, y: nn.mse(m(x), y), (x, y), opt,
                                          states[1])
    want = ref(torch.tensor(x))[0].detach().numpy()
    np.testing.assert_allclose(two(x), want, rtol=1e-9, atol=1e-12)
    assert np.abs(one(x) - want).max() > 1e-4
    back = nn.to_torch_state_dict(two, like=ref)
    for name, value in ref.state_dict().items():
        np.testing.assert_allclose(back[name].numpy(), value.numpy(), rtol=1e-9, atol=1e-12)


def test_from_torch_copies_so_pytorch_updates_do_not_leak_in(torch):
    """Biases, norms and embeddings used to be views of PyTorch's tensors: a PyTorch
    optimiser step (in place) then changed the converted model too."""
    ref = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4),
                              torch.nn.Embedding(5, 4)).double()
    ours = nn.from_torch(ref, like=nn.Chain(nn.Dense(3, 4, **F64), nn.LayerNorm(4, **F64),
                                            nn.Embedding(5, 4, **F64)))
    before = [np.array(a) for a in nn.parameters(ours)]
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(1.0)
    for a, b in zip(nn.parameters(ours), before):
        np.testing.assert_array_equal(a, b)


def test_weights_pytorch_ties_stay_one_array(torch, rng):
    """Two Linear layers sharing one Parameter become two Dense layers holding one
    array: one parameter, summed gradient, one update (a copy each would untie
    them silently at the first step)."""
    tnn = torch.nn
    ref = tnn.Sequential(tnn.Linear(4, 4), tnn.Tanh(), tnn.Linear(4, 4)).double()
    ref[2].weight = ref[0].weight
    ours = nn.from_torch(ref, like=nn.Chain(nn.Dense(4, 4, **F64), nn.tanh,
                                            nn.Dense(4, 4, **F64)))
    assert ours.layers[0].weight is ours.layers[2].weight
    assert ours.layers[0].bias is not ours.layers[2].bias
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(ours(x), ref(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    opt = nn.Descent(0.1)
    _, (g,) = nn.withgradient(lambda m: (m(x) ** 2).sum(), ours)
    stepped, _ = opt.update(ours, g, opt.init(ours))
    assert stepped.layers[0].weight is stepped.layers[2].weight
    assert nn.count_parameters(ours) == (16 + 4 + 4, 0)


def test_a_tie_our_layouts_cannot_share_is_refused_with_the_way_out(torch, rng):
    """PyTorch's word language model ties its decoder to its encoder: an Embedding
    (vocab, dim) and a Dense (dim, vocab) cannot be one array, so from_torch says
    so and names Embedding.attend, instead of untying them."""
    tnn = torch.nn
    torch.manual_seed(0)
    ref = tnn.ModuleDict({"encoder": tnn.Embedding(10, 4), "decoder": tnn.Linear(4, 10)})
    ref = ref.double()
    ref.decoder.weight = ref.encoder.weight
    like = nn.Chain(nn.Embedding(10, 4, **F64), nn.Dense(4, 10, **F64))
    with pytest.raises(ValueError, match=r"ties 'decoder.weight' to 'encoder.weight'.*attend"):
        nn.from_torch(ref, like=like)
    # the way out: the embedding alone, the output layer as attend + the decoder's bias
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("decoder")}
    embedding = nn.from_torch(state, like=nn.Chain(nn.Embedding(10, 4, **F64)))
    bias = ref.decoder.bias.detach().numpy().copy()
    tokens = rng.integers(0, 10, (2, 3))
    h = embedding.layers[0](tokens)
    want = ref.decoder(ref.encoder(torch.tensor(tokens))).detach().numpy()
    np.testing.assert_allclose(embedding.layers[0].attend(h) + bias, want, rtol=1e-12,
                               atol=1e-12)
