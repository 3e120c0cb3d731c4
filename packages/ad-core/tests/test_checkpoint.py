"""`checkpoint`: identical gradients, less memory held for the backward pass,
closures and nesting, and the impurity warning (random numbers drawn without
an explicit key)."""

import functools
import tracemalloc
import warnings

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.checkpoint import ImpureCheckpointWarning

CLOSE = dict(rtol=1e-12, atol=1e-14)


def block(x, w1, b1, w2, b2):
    return x + 0.1 * wnp.tanh(wnp.tanh(x @ w1 + b1) @ w2 + b2)


def residual_mlp(x, params, wrap):
    step = wrap(block)
    for p in params:
        x = step(x, *p)
    return wnp.sum(x * x)


def make_params(n_blocks, width, hidden, rng):
    return [(rng.standard_normal((width, hidden)) / np.sqrt(width), np.zeros(hidden),
             rng.standard_normal((hidden, width)) / np.sqrt(hidden), np.zeros(width))
            for _ in range(n_blocks)]


def peak_bytes(fn):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_checkpointed_64_block_mlp_holds_4x_less_memory_for_identical_gradients():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1024, 8))          # a narrow residual stream, wide blocks
    params = make_params(64, 8, 64, rng)
    plain, plain_peak = peak_bytes(
        lambda: ad.gradient(lambda x, p: residual_mlp(x, p, lambda f: f), x, params))
    ckpt, ckpt_peak = peak_bytes(
        lambda: ad.gradient(lambda x, p: residual_mlp(x, p, ad.checkpoint), x, params))
    for a, b in zip(ad.tree_leaves(plain), ad.tree_leaves(ckpt)):
        np.testing.assert_allclose(b, a, **CLOSE)
    assert plain_peak >= 4 * ckpt_peak, (plain_peak, ckpt_peak)


def test_values_and_gradients_of_closures_nesting_and_forward_mode():
    w = np.array([0.3, -1.2, 0.8])

    def f(x, w):
        g = ad.checkpoint(lambda x: wnp.sin(x * w) * x)   # closes over traced w
        return wnp.sum(g(g(x)))

    def f_plain(x, w):
        g = lambda x: wnp.sin(x * w) * x  # noqa: E731
        return wnp.sum(g(g(x)))

    x = np.array([1.0, 2.0, -0.5])
    assert f(x, w) == pytest.approx(f_plain(x, w), rel=1e-15)
    for a, b in zip(ad.gradient(f, x, w), ad.gradient(f_plain, x, w)):
        np.testing.assert_allclose(a, b, **CLOSE)
    np.testing.assert_allclose(ad.hessian(lambda x: f(x, w), x),
                               ad.hessian(lambda x: f_plain(x, w), x), rtol=1e-10)
    np.testing.assert_allclose(ad.jvp(lambda x: f(x, w), (x,), (w,))[1],
                               ad.jvp(lambda x: f_plain(x, w), (x,), (w,))[1], **CLOSE)
    graph = ad.make_graph(ad.grad(f), x, w)
    np.testing.assert_allclose(ad.eval_graph(graph, x, w), ad.grad(f_plain)(x, w), **CLOSE)


def test_checkpoint_keeps_integer_outputs_and_trees():
    def f(d):
        return {"y": d["x"] ** 2, "n": 3}, d["x"] + 1

    ck = ad.checkpoint(f)
    (g,) = ad.gradient(lambda d: wnp.sum(ck(d)[0]["y"] * ck(d)[0]["n"] + ck(d)[1]),
                       {"x": np.arange(3.0)})
    np.testing.assert_allclose(g["x"], 6 * np.arange(3.0) + 1)


def test_random_numbers_without_a_key_warn_and_are_replayed():
    def noisy(x):
        return x * np.random.standard_normal(x.shape)

    rng = np.random.default_rng(5)

    def noisy_closure(x):
        return x * rng.standard_normal(x.shape)

    x = np.ones(4)
    for fn in (noisy, noisy_closure):
        with pytest.warns(ImpureCheckpointWarning, match="random"):
            y, back = ad.pullback(ad.checkpoint(fn), x)
        # the recomputation replays the draws, so the gradient matches the forward pass
        np.testing.assert_allclose(back(np.ones(4))[0], y / x, **CLOSE)


def test_pure_functions_with_an_explicit_key_do_not_warn():
    def keyed(x, seed):
        return x * np.random.default_rng(seed).standard_normal(x.shape)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = ad.grad(lambda x: wnp.sum(ad.checkpoint(keyed)(x, 7)))(np.ones(3))
    np.testing.assert_allclose(g, np.random.default_rng(7).standard_normal(3), **CLOSE)


# ---- callable objects: their traced parameters are inputs too ------------------------------
class Affine:
    """A layer-like object with parameters, registered as a tree (as `wengert.nn` layers)."""

    def __init__(self, w, b):
        self.w, self.b = w, b

    def __call__(self, x):
        return wnp.tanh(x @ self.w + self.b)

    def apply(self, x):
        return self(x) * 2.0


ad.register_tree(Affine, lambda a: ([a.w, a.b], None), lambda _, c: Affine(*c))


class Opaque:
    """Not a tree: checkpoint cannot rebuild it around new values."""

    def __init__(self, w):
        self.w = w

    def __call__(self, x):
        return x @ self.w


def _affine_and_input():
    rng = np.random.default_rng(3)
    return Affine(rng.standard_normal((3, 4)), rng.standard_normal(4)), rng.standard_normal((2, 3))


def _partial_call(layer, h):
    return layer(h)


# (checkpointed form, the same call without checkpoint)
CALLABLE_FORMS = {
    "object": (lambda l: ad.checkpoint(l), lambda l: l),
    "bound method": (lambda l: ad.checkpoint(l.apply), lambda l: l.apply),
    "__call__": (lambda l: ad.checkpoint(l.__call__), lambda l: l),
    "closure over a method": (lambda l: (lambda m: ad.checkpoint(lambda h: m(h)))(l.apply),
                              lambda l: l.apply),
    "partial": (lambda l: ad.checkpoint(functools.partial(_partial_call, l)), lambda l: l),
}


@pytest.mark.parametrize("name", list(CALLABLE_FORMS))
def test_checkpoint_of_a_callable_object_differentiates_its_parameters(name):
    checkpointed, plain = CALLABLE_FORMS[name]
    layer, h = _affine_and_input()

    def loss(wrap):
        return lambda l, h: wnp.sum(wrap(l)(h) ** 2)

    got = ad.gradient(loss(checkpointed), layer, h)
    ref = ad.gradient(loss(plain), layer, h)
    assert isinstance(got[0], Affine)
    for a, b in zip(ad.tree_leaves(got), ad.tree_leaves(ref)):
        np.testing.assert_allclose(a, b, **CLOSE)


def test_checkpoint_refuses_an_object_whose_traced_attributes_it_cannot_see():
    w = np.random.default_rng(0).standard_normal((3, 2))
    x = np.ones((1, 3))
    with pytest.raises(TypeError, match=r"Opaque.*'w'.*register_tree"):
        ad.gradient(lambda w: wnp.sum(ad.checkpoint(Opaque(w))(x)), w)
    # Without traced attributes it is an ordinary function.
    g = ad.gradient(lambda x: wnp.sum(ad.checkpoint(Opaque(w))(x)), x)[0]
    np.testing.assert_allclose(g, np.broadcast_to(w.sum(1), (1, 3)), **CLOSE)


def test_policy_save_matmuls_reuses_the_forward_products():
    rng = np.random.default_rng(5)
    w, x = rng.standard_normal((4, 4)), rng.standard_normal((3, 4))

    def layer(w, x):
        return wnp.tanh(wnp.tanh(x @ w) @ w)

    def loss(policy):
        return lambda w, x: wnp.sum(ad.checkpoint(layer, policy=policy)(w, x) ** 2)

    want = ad.grad(lambda w, x: wnp.sum(layer(w, x) ** 2))(w, x)
    np.testing.assert_allclose(ad.grad(loss("save_matmuls"))(w, x), want, rtol=1e-13)
    decorated = ad.checkpoint(policy="dots_saveable")(layer)
    np.testing.assert_allclose(ad.grad(lambda w, x: wnp.sum(decorated(w, x) ** 2))(w, x), want,
                               rtol=1e-13)

    def products(policy):
        graph = ad.make_graph(ad.grad(loss(policy)), w, x, simplify=False)
        np.testing.assert_allclose(ad.eval_graph(graph, w, x), want, rtol=1e-13)
        return sum(e.prim.name == "dot_general" for e in graph.eqns)

    # forward 2 + backward 4; recomputing the forward adds 2 unless they are saved
    assert products(None) == 8 and products("save_matmuls") == 6
    with pytest.raises(ValueError, match="unknown policy"):
        ad.checkpoint(layer, policy="save_everything")
