"""Each optimiser's steps against PyTorch's on the same gradients; composition,
schedules, and leaves that must not move."""

from __future__ import annotations

import numpy as np
import pytest
from wengert import ad, nn

PAIRS = {
    "Descent": (lambda: nn.Descent(0.1), lambda t, p: t.optim.SGD(p, lr=0.1)),
    "Momentum": (lambda: nn.Momentum(0.1, 0.9), lambda t, p: t.optim.SGD(p, 0.1, momentum=0.9)),
    "Nesterov": (lambda: nn.Nesterov(0.1, 0.9),
                 lambda t, p: t.optim.SGD(p, 0.1, momentum=0.9, nesterov=True)),
    "RMSProp": (lambda: nn.RMSProp(0.01, 0.9), lambda t, p: t.optim.RMSprop(p, 0.01, alpha=0.9)),
    "Adam": (lambda: nn.Adam(0.01), lambda t, p: t.optim.Adam(p, 0.01)),
    "AdamW": (lambda: nn.AdamW(0.01, weight_decay=0.1),
              lambda t, p: t.optim.AdamW(p, 0.01, weight_decay=0.1)),
    "AMSGrad": (lambda: nn.AMSGrad(0.01), lambda t, p: t.optim.Adam(p, 0.01, amsgrad=True)),
    "NAdam": (lambda: nn.NAdam(0.01), lambda t, p: t.optim.NAdam(p, 0.01)),
    "AdaGrad": (lambda: nn.AdaGrad(0.1), lambda t, p: t.optim.Adagrad(p, 0.1, eps=1e-10)),
    "AdaDelta": (lambda: nn.AdaDelta(1.0, 0.9), lambda t, p: t.optim.Adadelta(p, 1.0, rho=0.9)),
    "WeightDecay+Descent": (lambda: nn.OptimiserChain(nn.WeightDecay(0.01), nn.Descent(0.1)),
                            lambda t, p: t.optim.SGD(p, 0.1, weight_decay=0.01)),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_steps_match_torch(torch, rng, name):
    ours, theirs = PAIRS[name]
    model = nn.Dense(3, 2, dtype=np.float64, rng=rng)
    params = [torch.tensor(model.weight.copy(), requires_grad=True),
              torch.tensor(model.bias.copy(), requires_grad=True)]
    topt = theirs(torch, params)
    opt = ours()
    state = opt.init(model)
    for _ in range(3):
        grads = model.replace(weight=rng.standard_normal((3, 2)), bias=rng.standard_normal(2))
        model, state = opt.update(model, grads, state)
        for p, g in zip(params, (grads.weight, grads.bias)):
            p.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(model.weight, params[0].detach().numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.bias, params[1].detach().numpy(), rtol=1e-8, atol=1e-12)
    assert state.step == 3


def test_clipping_matches_torch_utilities(torch, rng):
    g = rng.standard_normal((4, 3)) * 5
    for ours, clip in ((nn.ClipGrad(1.0), lambda p: torch.nn.utils.clip_grad_value_(p, 1.0)),
                       (nn.ClipNorm(2.0), lambda p: torch.nn.utils.clip_grad_norm_(p, 2.0))):
        x = np.zeros((4, 3))
        new, _ = nn.OptimiserChain(ours, nn.Descent(1.0)).update(
            [x], [g], nn.OptimiserChain(ours, nn.Descent(1.0)).init([x]))
        p = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(g)
        clip([p])
        # (PyTorch divides by norm + 1e-6, hence the tolerance)
        np.testing.assert_allclose(new[0], -p.grad.numpy(), rtol=1e-6)


def test_lion_first_step_is_the_sign(rng):
    x, g = rng.standard_normal(5), rng.standard_normal(5)
    opt = nn.Lion(0.1)
    (new,), _ = opt.update([x], [g], opt.init([x]))
    np.testing.assert_allclose(new, x - 0.1 * np.sign(g))


def test_a_rule_without_apply_names_itself_and_what_to_implement():
    class Half(nn.Optimiser):
        pass

    with pytest.raises(NotImplementedError, match=r"Half must implement apply\(state, x, dx, t\)"):
        Half().update([np.ones(2)], [np.ones(2)], Half().init([np.ones(2)]))


def test_float32_stays_float32_and_inputs_are_not_modified(rng):
    model = nn.Dense(3, 2, rng=rng)
    before = model.weight.copy()
    grads = ad.gradient(lambda m: m(np.ones((1, 3), np.float32)).sum(), model)[0]
    for opt in (nn.Adam(), nn.NAdam(), nn.Lion(), nn.AdaDelta(), nn.Momentum()):
        new, _ = opt.update(model, grads, opt.init(model))
        assert new.weight.dtype == np.float32 and new.bias.dtype == np.float32
    np.testing.assert_array_equal(model.weight, before)


def test_frozen_parameters_and_state_get_no_gradient_and_no_update(rng):
    model = nn.Chain(nn.freeze(nn.Dense(3, 3, rng=rng)), nn.BatchNorm(3), nn.Dense(3, 1, rng=rng))
    x = rng.standard_normal((4, 3)).astype(np.float32)
    (g,) = ad.gradient(lambda m: m(x).sum(), model)
    # state is a tree child (compilers see it as an input) that gets no gradient
    assert g.layers[0].weight is None and not g.layers[1].mean.value.any()
    assert g.layers[2].weight is not None
    opt = nn.Descent(0.5)
    new, _ = opt.update(model, g, opt.init(model))
    assert new.layers[1].mean is model.layers[1].mean  # the same state cell, not updated
    np.testing.assert_array_equal(new.layers[0].weight, model.layers[0].weight)
    assert not np.array_equal(new.layers[2].weight, model.layers[2].weight)
    thawed = nn.thaw(new)
    (g2,) = ad.gradient(lambda m: m(x).sum(), thawed)
    assert g2.layers[0].weight is not None
    moved, _ = opt.update(thawed, g2, opt.init(new))  # state from the frozen model still fits
    assert not np.array_equal(moved.layers[0].weight, model.layers[0].weight)


def test_schedules():
    s = nn.schedules
    assert [s.Step(1.0, 0.5, 2)(t) for t in (1, 2, 3, 5)] == [1.0, 1.0, 0.5, 0.25]
    assert s.Exponential(1.0, 0.5)(3) == 0.25
    cos = s.CosineAnnealing(1.0, 10)
    assert cos(1) == 1.0 and abs(cos(6) - 0.5) < 1e-12 and cos(11) == 1.0
    warm = s.Warmup(s.Exponential(2.0, 0.5), steps=4)
    assert [warm(t) for t in (1, 2, 4, 5, 6)] == [0.5, 1.0, 2.0, 2.0, 1.0]
    x = np.zeros(2)
    opt = nn.Descent(s.Step(1.0, 0.1, 1))
    state = opt.init([x])
    for _ in range(2):
        (x,), state = opt.update([x], [np.ones(2)], state)
    np.testing.assert_allclose(x, -1.1)


def test_adam_update_can_be_staged_and_matches_eager(rng):
    """A whole training step (gradient and Adam update) must stage into one graph, as
    xla.jit does; the step count then travels as an integer array."""
    import dataclasses

    model = nn.Dense(3, 2, nn.tanh, rng=rng)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    opt = nn.Adam(1e-2, beta=(0.0, 0.9))

    def step(model, state, x):
        (g,) = ad.gradient(lambda m: np.sum(m(x) ** 2), model)
        return opt.update(model, g, state)

    state = dataclasses.replace(opt.init(model), step=np.asarray(3, np.int32))
    eager_model, eager_state = step(model, state, x)
    graph = ad.make_graph(step, model, state, x)
    staged_model, staged_state = ad.eval_graph(graph, model, state, x)
    for e, s in zip(ad.tree_leaves(eager_model), ad.tree_leaves(staged_model)):
        assert np.asarray(s).dtype == np.float32
        np.testing.assert_allclose(np.asarray(s), e, rtol=1e-6)
    assert int(staged_state.step) == 4


def test_a_state_after_update_has_the_structure_of_a_fresh_one(rng):
    """The leaf cache `update` keeps must not change the state's tree: compiled steps
    key their programs on it and would compile a second one."""
    model = nn.Dense(3, 2, rng=rng)
    opt = nn.Adam()
    state = opt.init(model)
    (g,) = ad.gradient(lambda m: np.sum(m(np.ones((1, 3), np.float32))), model)
    _, new = opt.update(model, g, state)
    assert ad.tree_flatten(new)[1] == ad.tree_flatten(state)[1]
    assert len(ad.tree_leaves(new)) == len(ad.tree_leaves(state))


def test_clip_global_norm_matches_pytorch(torch, rng):
    params = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    grads = [rng.standard_normal((3, 4)) * 5, rng.standard_normal(4) * 5]
    tp = [torch.tensor(p, requires_grad=True) for p in params]
    for t, g in zip(tp, grads):
        t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_norm_(tp, 1.0)
    opt = nn.OptimiserChain(nn.ClipGlobalNorm(1.0), nn.Descent(1.0))
    new, _ = opt.update(params, grads, opt.init(params))
    for p, t, n in zip(params, tp, new):
        np.testing.assert_allclose(p - n, t.grad.numpy(), rtol=1e-12)
    # ClipNorm clips each array on its own: a different step
    per_array, _ = nn.OptimiserChain(nn.ClipNorm(1.0), nn.Descent(1.0)).update(
        params, grads, opt.init(params))
    assert not np.allclose(per_array[1], new[1])


def test_parameter_groups(torch, rng):
    """AdamW with weight decay on matrices only, as PyTorch's two param groups."""
    model = nn.Chain(nn.Dense(3, 4, rng=rng, dtype=np.float64), nn.LayerNorm(4, dtype=np.float64))
    x = rng.standard_normal((5, 3))
    opt = nn.ParameterGroups(lambda name, p: "decay" if p.ndim > 1 else "plain",
                             decay=nn.AdamW(1e-2, weight_decay=0.5),
                             plain=nn.AdamW(1e-2, weight_decay=0.0))
    (g,) = ad.gradient(lambda m: ad.numpy.sum(m(x) ** 3), model)
    new, state = opt.update(model, g, opt.init(model))
    tp = [torch.tensor(p, requires_grad=True) for p in nn.parameters(model)]
    ref = torch.optim.AdamW([{"params": tp[:1], "weight_decay": 0.5},
                             {"params": tp[1:], "weight_decay": 0.0}], lr=1e-2)
    for t, gr in zip(tp, [g.layers[0].weight, g.layers[0].bias, g.layers[1].γ, g.layers[1].β]):
        t.grad = torch.tensor(gr)
    ref.step()
    for n_new, t in zip(nn.parameters(new), tp):
        np.testing.assert_allclose(n_new, t.detach().numpy(), rtol=1e-10)
    assert state.tree.layers[0].weight.state[0] == "decay"
    with pytest.raises(KeyError, match="group 'other', which has no rule"):
        nn.ParameterGroups(lambda n, p: "other", decay=nn.Adam()).init(model)
