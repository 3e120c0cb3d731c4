"""What the PI-GAN asks of the stack below it: second derivatives of a network
with respect to its inputs (the PDE residual at collocation points), inside a
gradient with respect to the network's weights — eagerly and compiled into one
XLA program — checked against finite differences and against each other.
"""

import re

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert import nn

xla = pytest.importorskip("wengert.xla", reason="wengert-xla (and jax) are not installed")


def laplacian(u, X):
    """Sum of second derivatives of a pointwise network ``u: (n, d) -> (n,)``, per point."""
    total = lambda X: wnp.sum(u(X))  # noqa: E731
    out = 0.0
    for k in range(X.shape[1]):
        e = np.zeros(X.shape)
        e[:, k] = 1.0
        out = out + ad.hvp(total, X, e)[:, k]
    return out


def residual_loss(model, X, source):
    """Mean squared residual of Poisson's equation, Δu = f, for u = model(X)."""
    u = lambda X: model(X)[:, 0]  # noqa: E731
    r = laplacian(u, X) - source
    return wnp.mean(r * r)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(7)
    model = ad.tree_map(lambda a: np.asarray(a, np.float64),
                        nn.models.MLP([2, 16, 16, 1], nn.tanh, rng=rng))
    X = rng.uniform(-1, 1, (12, 2))
    source = np.sin(X[:, 0]) * X[:, 1]
    return model, X, source


def _leaves(tree):
    return [np.asarray(g) for g in ad.tree_leaves(tree) if g is not None]


def test_laplacian_of_the_network_matches_finite_differences(problem):
    model, X, _ = problem
    u = lambda X: model(X)[:, 0]  # noqa: E731
    h = 1e-4
    fd = sum((u(X + h * e) - 2 * u(X) + u(X - h * e)) / h**2
             for e in (np.array([1.0, 0.0]), np.array([0.0, 1.0])))
    np.testing.assert_allclose(laplacian(u, X), fd, rtol=1e-5, atol=1e-6)


def test_weight_gradient_of_the_residual_matches_finite_differences(problem):
    model, X, source = problem
    (g,) = ad.gradient(lambda m: residual_loss(m, X, source), model)
    W = model.layers[1].weight
    direction = np.random.default_rng(1).standard_normal(W.shape)

    def loss_along(t):
        bumped = ad.tree_map(lambda a: a + t * direction if a is W else a, model)
        return residual_loss(bumped, X, source)

    eps = 1e-6
    fd = (loss_along(eps) - loss_along(-eps)) / (2 * eps)
    np.testing.assert_allclose(np.sum(g.layers[1].weight * direction), fd, rtol=1e-5)


def test_compiled_residual_gradient_is_one_program_matching_eager(problem):
    model, X, source = problem
    grad_fn = ad.grad(lambda m, X, f: residual_loss(m, X, f))
    eager = grad_fn(model, X, source)
    compiled_fn = xla.jit(grad_fn)
    compiled = compiled_fn(model, X, source)
    for e, c in zip(_leaves(eager), _leaves(compiled)):
        np.testing.assert_allclose(np.asarray(c), e, rtol=1e-9, atol=1e-12)
    text = compiled_fn.lower(model, X, source).as_text()
    assert len(re.findall(r"func\.func public", text)) == 1  # one XLA program
    assert not re.search(r"custom_call.*callback", text, re.IGNORECASE)  # no host round trips
    assert "stablehlo.dot_general" in text
