"""The PI-GAN's operators: the PDE and boundary residuals against analytic fields, and
the derivatives a training step takes (the residual's weight gradient, the gradient
penalty) against float64 central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import wengert.ad.numpy as wnp
from wengert import ad
from wengert.ad.testing import check_grads
from wengert.hpcgan.pigan.losses import (
    dirichlet_residual,
    flux_residual,
    gradient_penalty,
    pde_residual,
)
from wengert.hpcgan.pigan.networks import FieldGenerator, Generators, cast, discriminator


class Analytic:
    """Fields written as formulas: ``Y = a·x``, ``u = Σ x_k² + c`` with ``a`` and ``c``
    scaled by each realisation's latent (so the batch dimension is exercised)."""

    def __init__(self, a: np.ndarray, c: float) -> None:
        self.a, self.c = a, c

    def Y(self, x, xi):
        return xi[:, :1] * (x @ self.a)[None, :]

    def u(self, x, xi):
        return wnp.sum(x * x, axis=1)[None, :] + self.c * xi[:, 1:2]


def test_residual_of_analytic_fields_matches_the_formula():
    rng = np.random.default_rng(0)
    a = np.array([0.3, -0.7])
    x, xi = rng.random((9, 2)), rng.standard_normal((3, 2))
    f = rng.random(9)
    fields = Analytic(a, 2.0)
    # ∇·(e^Y ∇u) = e^Y (Δu + ∇Y·∇u) with Δu = 4, ∇u = 2x, ∇Y = s a (s = ξ₀)
    s = xi[:, :1]
    K = np.exp(s * (x @ a)[None, :])
    expected = K * (4.0 + s * (2 * x @ a)[None, :]) + f
    np.testing.assert_allclose(pde_residual(fields, xi, x, f), expected, rtol=1e-12)


def test_residual_vanishes_on_a_manufactured_solution():
    """Y = 0 and u = -f |x|²/4 solve -Δu = f exactly; Dirichlet and flux data taken from u."""
    rng = np.random.default_rng(1)
    f = 0.8

    class Manufactured:
        def Y(self, x, xi):
            return wnp.zeros((xi.shape[0], x.shape[0]))

        def u(self, x, xi):
            return wnp.broadcast_to(-f / 4 * wnp.sum(x * x, axis=1), (xi.shape[0], x.shape[0]))

    x, xi = rng.random((7, 2)), rng.standard_normal((2, 3))
    np.testing.assert_allclose(pde_residual(Manufactured(), xi, x, np.full(7, f)), 0, atol=1e-12)
    head = -f / 4 * np.sum(x * x, axis=1)
    np.testing.assert_allclose(dirichlet_residual(Manufactured(), xi, x, head), 0, atol=1e-15)
    normal = np.tile([0.6, 0.8], (7, 1))
    inflow = -f / 2 * x @ np.array([0.6, 0.8])  # K ∂u/∂n with K = 1
    np.testing.assert_allclose(flux_residual(Manufactured(), xi, x, normal, inflow), 0,
                               atol=1e-12)


@pytest.fixture
def small_generators():
    rng = np.random.default_rng(2)
    make = lambda: FieldGenerator(2, 3, 6, 2, offset=0.1, scale=0.7, rng=rng)
    return cast(Generators(make(), make()), np.float64)


def test_residual_weight_gradient_matches_finite_differences(small_generators):
    """Second derivatives in x inside the gradient in the weights, checked in both modes."""
    rng = np.random.default_rng(3)
    x, xi, f = rng.random((5, 2)), rng.standard_normal((2, 3)), rng.random(5)

    def loss(gen):
        r = pde_residual(gen, xi, x, f)
        return wnp.mean(r * r)

    check_grads(loss, (small_generators,), order=1, rtol=1e-5, atol=1e-8)


def test_gradient_penalty_matches_finite_differences():
    rng = np.random.default_rng(4)
    critic = discriminator(5, 7, 2, rng=rng, dtype=np.float64)
    real, fake = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    eps = rng.random((4, 1))
    check_grads(lambda c: gradient_penalty(c, real, fake, eps), (critic,), order=1,
                rtol=1e-5, atol=1e-8)
    # and its value: ‖∇_v D‖ by finite differences of D at the mixed points
    mixed = eps * real + (1 - eps) * fake
    h = 1e-6
    slopes = np.stack([(np.asarray(critic(mixed + h * e)) - np.asarray(critic(mixed - h * e)))
                       [:, 0] / (2 * h) for e in np.eye(5)], axis=1)
    expected = np.mean((np.linalg.norm(slopes, axis=1) - 1) ** 2)
    np.testing.assert_allclose(gradient_penalty(critic, real, fake, eps), expected, rtol=1e-6)


def test_generator_broadcasts_one_latent_over_its_points(small_generators):
    rng = np.random.default_rng(5)
    x, xi = rng.random((4, 2)), rng.standard_normal((3, 3))
    together = np.asarray(small_generators.u(x, xi))
    assert together.shape == (3, 4)
    for b in range(3):
        np.testing.assert_allclose(together[b], np.asarray(small_generators.u(x, xi[b:b + 1]))[0])
    with pytest.raises(ValueError, match="at least 1 hidden layer"):
        FieldGenerator(2, 3, 6, 0, rng=rng)


def test_generated_fields_are_differentiable_in_the_coordinates(small_generators):
    """The flux of the boundary residual is a directional derivative: compare with FD."""
    rng = np.random.default_rng(6)
    x, xi = rng.random((3, 2)), rng.standard_normal((2, 3))
    n = np.tile([1.0, 0.0], (3, 1))
    h = 1e-6
    du = (np.asarray(small_generators.u(x + h * n, xi)) -
          np.asarray(small_generators.u(x - h * n, xi))) / (2 * h)
    K = np.exp(np.asarray(small_generators.Y(x, xi)))
    np.testing.assert_allclose(flux_residual(small_generators, xi, x, n, np.zeros(3)), K * du,
                               rtol=1e-6)
    assert ad.gradient(lambda g: wnp.sum(flux_residual(g, xi, x, n, np.zeros(3))),
                       small_generators)[0] is not None
