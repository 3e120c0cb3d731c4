"""Every zoo model and every layer option trains: model, gradient and
optimiser state flatten alike (``None`` fields included), with every
optimiser, on tiny inputs; and the training-step semantics that models
ported from PyTorch rely on (state updated twice in one step, tied weights)."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from wengert import ad, nn
from wengert.ad.testing import check_grads
from wengert.nn import models

OPTIMISERS = [nn.Descent(0.01), nn.Momentum(), nn.Nesterov(), nn.RMSProp(), nn.Adam(),
              nn.AdamW(), nn.AdaGrad(), nn.AdaDelta(), nn.AMSGrad(), nn.NAdam(), nn.Lion(),
              nn.OptimiserChain(nn.ClipGrad(1.0), nn.ClipNorm(1.0), nn.WeightDecay(),
                                nn.Adam(beta=(0.0, 0.9)))]


def _zoo(name, rng):
    """(model, input) at the smallest sizes each architecture accepts."""
    f32 = np.float32
    if name == "MLP":
        return models.MLP([4, 8, 3], nn.tanh, rng=rng), rng.standard_normal((2, 4)).astype(f32)
    if name == "LeNet5":
        return models.LeNet5((16, 16, 1), 3, rng=rng), rng.random((2, 16, 16, 1), f32)
    if name == "VGG11-BN":
        return (models.VGG11(batchnorm=True, imsize=(32, 32, 3), nclasses=3, hidden=8,
                             dropout=0.1, rng=rng), rng.random((2, 32, 32, 3), f32))
    return (models.ResNet18(imsize=(16, 16, 3), nclasses=3, rng=rng),
            rng.random((2, 16, 16, 3), f32))


def _moved(before, after) -> list[str]:
    """Names of the trainable arrays an update left unchanged."""
    old = dict(nn.named_parameters(before, trainable_only=True))
    return [n for n, p in nn.named_parameters(after, trainable_only=True)
            if np.array_equal(p, old[n])]


def _check_trains(name, optimisers, rng):
    model, x = _zoo(name, rng)
    y = nn.onehot([0, 2], 3)
    loss = lambda m: nn.logitcrossentropy(m(x), y)
    _, (g,) = nn.withgradient(loss, model)
    for opt in optimisers:
        state = opt.init(model)
        new, state = opt.update(model, g, state)
        assert _moved(model, new) == [], (opt, _moved(model, new))
        again, _ = opt.update(new, g, state)  # the returned state fits the returned model
        assert type(again) is type(model)
    return model, x, y, loss


@pytest.mark.parametrize("name", ["MLP", "LeNet5"])
def test_small_zoo_models_train_with_every_optimiser(name, rng):
    model, x, y, loss = _check_trains(name, OPTIMISERS, rng)
    trained, _ = nn.train(model, lambda m, x, y: nn.logitcrossentropy(m(x), y), [(x, y)] * 4,
                          nn.Adam(1e-3), epochs=2, progress=False)
    assert float(loss(trained)) < float(loss(model))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["VGG11-BN", "ResNet18"])
def test_large_zoo_models_train_with_every_optimiser(name, rng):
    model, x, y, _ = _check_trains(name, OPTIMISERS, rng)
    trained, _ = nn.train(model, lambda m, x, y: nn.logitcrossentropy(m(x), y), [(x, y)],
                          nn.Adam(), progress=False)
    assert _moved(model, trained) == []


class _Block(nn.Layer):
    """A user-written residual block whose ``downsample`` may be None (as
    torchvision's BasicBlock)."""

    body: nn.Layer
    downsample: nn.Layer | None

    def __init__(self, body, downsample=None):
        self.body, self.downsample = body, downsample

    def __call__(self, x):
        return self.body(x) + (x if self.downsample is None else self.downsample(x))


def _options(rng):
    """(layer, input) for every layer option that leaves a field ``None``, and
    the other layer kinds."""
    r = dict(rng=rng)
    img = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    seq = rng.standard_normal((2, 5, 4)).astype(np.float32)
    vec = rng.standard_normal((3, 4)).astype(np.float32)
    return {
        "Dense bias=False": (nn.Dense(4, 3, bias=False, **r), vec),
        "Bilinear bias=False": (nn.Bilinear(4, 4, 2, bias=False, **r), vec),
        "Conv bias=False": (nn.Conv((3, 3), 4, 2, bias=False, **r), img),
        "Conv 1-D stride dilation": (nn.Conv((2,), 4, 2, stride=2, dilation=2, pad=1, **r), seq),
        "ConvTranspose bias=False": (nn.ConvTranspose((3, 3), 4, 2, stride=2, bias=False, **r),
                                     img),
        "DepthwiseConv bias=False": (nn.DepthwiseConv((3, 3), 4, 8, bias=False, **r), img),
        "MultiHeadAttention bias=False": (nn.MultiHeadAttention(4, 2, bias=False, **r), seq),
        "BatchNorm affine=False": (nn.BatchNorm(4, affine=False), img),
        "BatchNorm track_stats=False": (nn.BatchNorm(4, track_stats=False), img),
        "LayerNorm affine=False": (nn.LayerNorm(4, affine=False), img),
        "GroupNorm affine=False": (nn.GroupNorm(4, 2, affine=False), img),
        "InstanceNorm": (nn.InstanceNorm(4), img),
        "InstanceNorm affine=True": (nn.InstanceNorm(4, affine=True), img),
        "block downsample=None": (_Block(nn.Dense(4, 4, **r)), vec),
        "block downsample=Dense": (_Block(nn.Dense(4, 4, **r), nn.Dense(4, 4, **r)), vec),
        "stateful LSTM": (nn.LSTM(4, 3, stateful=True, **r), seq),
        "GRU": (nn.GRU(4, 3, **r), seq),
        "RNN": (nn.RNN(4, 3, **r), seq),
        "Embedding": (nn.Embedding(5, 3, **r), np.array([[0, 4], [2, 2]])),
        "frozen Dense": (nn.Chain(nn.freeze(nn.Dense(4, 4, **r)), nn.Dense(4, 2, **r)), vec),
        "Maxout": (nn.Maxout(lambda: nn.Dense(4, 2, **r), 2), vec),
        "Parallel/SkipConnection": (nn.Parallel(operator.add, nn.Dense(4, 4, **r),
                                                nn.SkipConnection(nn.Dense(4, 4, **r),
                                                                  operator.add)), vec),
    }


OPTION_NAMES = list(_options(np.random.default_rng(0)))


@pytest.mark.parametrize("option", OPTION_NAMES)
def test_every_layer_option_trains(option, rng):
    layer, x = _options(rng)[option]
    model = nn.Chain(layer, lambda h: h if not isinstance(h, tuple) else h[0])
    loss = lambda m: ad.numpy.sum(m(x) ** 2)
    for opt in (nn.Adam(), nn.OptimiserChain(nn.ClipNorm(1.0), nn.Momentum())):
        _, (g,) = nn.withgradient(loss, model)
        new, _ = opt.update(model, g, opt.init(model))
        frozen = {n for n, _ in nn.named_parameters(model)} - {
            n for n, _ in nn.named_parameters(model, trainable_only=True)}
        assert _moved(model, new) == [] and all("layers.0.layers.0" in n for n in frozen)


def test_model_with_none_fields_flattens_like_its_gradient_and_state(rng):
    """The regression: ``update: the model has 1 leaves but the gradient has 2``."""
    model = nn.Chain(nn.Dense(3, 2, bias=False, rng=rng), nn.InstanceNorm(2))
    x = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    (g,) = ad.gradient(lambda m: ad.numpy.sum(m(x) ** 2), model)
    assert g.layers[0].bias is None
    opt = nn.Adam()
    new, _ = opt.update(model, g, opt.init(model))
    assert new.layers[0].bias is None and not np.array_equal(new.layers[0].weight,
                                                              model.layers[0].weight)


def test_batchnorm_called_twice_in_one_step_applies_both_updates(rng):
    """A GAN discriminator sees real then fake data in one step: under
    withgradient, as eagerly (and in PyTorch), both statistics updates apply."""
    real, fake = rng.standard_normal((8, 3)), rng.standard_normal((8, 3)) * 2 + 3
    dense = nn.Dense(3, 3, rng=rng, dtype=np.float64)
    eager = nn.Chain(dense, nn.BatchNorm(3, dtype=np.float64))
    eager(real), eager(fake)
    traced = nn.Chain(dense, nn.BatchNorm(3, dtype=np.float64))
    loss = lambda m: ad.numpy.sum(m(real) ** 3) + ad.numpy.sum(m(fake) ** 3)
    _, (g,) = nn.withgradient(loss, traced)
    for name in ("mean", "var"):
        np.testing.assert_allclose(getattr(traced.layers[1], name).value,
                                   getattr(eager.layers[1], name).value, rtol=1e-12)
    # the gradient is that of the same loss (batch statistics in each call)
    with pytest.warns(nn.StateNotUpdatedWarning):
        (g_ref,) = ad.gradient(loss, traced)
    np.testing.assert_allclose(g.layers[0].weight, g_ref.layers[0].weight, rtol=1e-12)
    trained, _ = nn.train(traced, lambda m, a, b: loss(m), [(real, fake)], nn.Descent(0.0),
                          progress=False)  # nn.train commits both as well, into its copy
    eager(real), eager(fake)
    np.testing.assert_allclose(trained.layers[1].mean.value, eager.layers[1].mean.value,
                               rtol=1e-12)


def test_pullback_gives_a_gan_step_one_generator_forward(rng):
    """PyTorch's GAN step: the generator runs once; its output trains the
    discriminator, then the generator's gradient is pulled back from that same
    forward pass. The generator's BatchNorm statistics update once (as in
    PyTorch), and the gradient equals the one from a second forward pass."""
    f64 = np.float64
    noise = rng.standard_normal((8, 2))
    gen = nn.Chain(nn.Dense(2, 3, rng=rng, dtype=f64), nn.BatchNorm(3, dtype=f64))
    disc = nn.Chain(nn.Dense(3, 1, nn.tanh, rng=rng, dtype=f64))
    reference = nn.Chain(gen.layers[0], nn.BatchNorm(3, dtype=f64))
    reference(noise)  # one eager update from the initial statistics
    fake, back = nn.pullback(lambda g: g(noise), gen)
    np.testing.assert_allclose(gen.layers[1].mean.value, reference.layers[1].mean.value,
                               rtol=1e-12)
    np.testing.assert_allclose(gen.layers[1].var.value, reference.layers[1].var.value,
                               rtol=1e-12)
    _, (g_fake,) = nn.withgradient(lambda f: ad.numpy.sum(disc(f) ** 2), fake)
    (g_gen,) = back(g_fake)
    recomputed = nn.Chain(gen.layers[0], nn.BatchNorm(3, dtype=f64))
    _, (want,) = nn.withgradient(lambda g: ad.numpy.sum(disc(g(noise)) ** 2), recomputed)
    np.testing.assert_allclose(g_gen.layers[0].weight, want.layers[0].weight, rtol=1e-12)
    np.testing.assert_allclose(g_gen.layers[1].γ, want.layers[1].γ, rtol=1e-12)


def test_stateful_recurrence_under_a_bare_gradient_warns(rng):
    layer = nn.GRU(2, 3, stateful=True, rng=rng)
    x = rng.standard_normal((1, 4, 2)).astype(np.float32)
    with pytest.warns(nn.StateNotUpdatedWarning, match="nn.withgradient"):
        ad.gradient(lambda m: ad.numpy.sum(m(x)), layer)
    assert layer.state.value is None
    nn.withgradient(lambda m: ad.numpy.sum(m(x)), layer)
    assert layer.state.value.shape == (1, 3)


def test_tied_weights_are_one_parameter(rng):
    """The same array in two layers: gradients summed, one update, counted once."""
    shared = nn.Dense(4, 4, rng=rng)
    model = nn.Chain(shared, nn.tanh, shared)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    assert nn.count_parameters(model) == (20, 0)
    assert len(nn.parameters(model)) == 2
    loss = lambda m: ad.numpy.sum(m(x) ** 2)
    (g,) = ad.gradient(loss, model)
    opt = nn.Descent(0.1)
    new, _ = opt.update(model, g, opt.init(model))
    w = new.layers[0].weight
    assert w is new.layers[2].weight
    np.testing.assert_allclose(w, shared.weight - 0.1 * (g.layers[0].weight + g.layers[2].weight),
                               rtol=1e-6)
    for opt in OPTIMISERS:  # stays tied over steps, with state for one copy
        m, s = model, opt.init(model)
        for _ in range(2):
            m, s = opt.update(m, ad.gradient(loss, m)[0], s)
        assert m.layers[0].weight is m.layers[2].weight


def test_weights_tied_through_a_view_are_refused(rng):
    emb = nn.Embedding(5, 4, rng=rng)
    head = nn.Dense(4, 5, rng=rng).replace(weight=emb.weight.T)
    with pytest.raises(ValueError, match=r"'layers.1.weight' is a view.*Embedding.attend"):
        nn.Adam().init(nn.Chain(emb, head))


def test_embedding_attend_ties_input_and_output_embeddings(rng):
    class TinyLM(nn.Layer):
        embed: nn.Embedding

        def __init__(self):
            self.embed = nn.Embedding(6, 4, rng=rng)

        def __call__(self, tokens):
            return self.embed.attend(nn.tanh(self.embed(tokens)))

    model, tokens = TinyLM(), np.array([[1, 2, 5]])
    loss = lambda m: nn.cross_entropy(m(tokens), np.array([[2, 5, 0]]))
    (g,) = ad.gradient(loss, model)
    e = model.embed.weight.astype(np.float64)
    check_grads(lambda w: nn.cross_entropy(nn.tanh(w[tokens]) @ ad.numpy.swapaxes(w, 0, 1),
                                           np.array([[2, 5, 0]])), (e,), modes=("rev",))
    assert g.embed.weight.shape == (6, 4) and nn.count_parameters(model) == (24, 0)


def test_updates_modify_none_of_their_inputs(rng):
    """Steps are subtracted in place only into memory the step owns."""
    model = nn.Chain(nn.Dense(3, 4, rng=rng), nn.Dense(4, 2, rng=rng))
    x = rng.standard_normal((5, 3)).astype(np.float32)
    (g,) = ad.gradient(lambda m: ad.numpy.sum(m(x) ** 2), model)
    for opt in OPTIMISERS + [nn.ClipNorm(1e6), nn.ClipGrad(1e6)]:
        state = opt.init(model)
        state = opt.update(model, g, state)[1]
        snapshot = [np.copy(a) for a in ad.tree_leaves((model, g, state.tree))
                    if isinstance(a, np.ndarray)]
        opt.update(model, g, state)
        after = [a for a in ad.tree_leaves((model, g, state.tree)) if isinstance(a, np.ndarray)]
        assert all(np.array_equal(a, b) for a, b in zip(snapshot, after)), opt
