"""A 1-D stochastic elliptic problem with an exact Monte Carlo reference, for testing the
whole PI-GAN pipeline in seconds:

    -(e^Y u')' = f on [0, 1],   u(0) = 0,   e^Y u'(1) = q,

with ``Y`` a 3-mode KL expansion (the Brownian-motion modes ``√2 sin((k-½)πx)``).
Integrating once, ``e^Y u' = q + f (1 - x)``, so every realisation's head is one
quadrature, ``u(x) = ∫₀ˣ (q + f(1-s)) e^{-Y(s)} ds`` — independent of the PI-GAN code.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import cumulative_trapezoid
from wengert.hpcgan.pigan.problem import FlowProblem
from wengert.hpcgan.pigan.training import Observed

F, Q = 1.0, 1.0
SIGMA2 = 0.5  # variance of the underlying Brownian-type field
MODES = 3


def modes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(1, MODES + 1) - 0.5
    eigenvalues = SIGMA2 / (k * np.pi) ** 2
    return eigenvalues, np.sqrt(2.0) * np.sin(np.pi * np.outer(x, k))


def realisations(x: np.ndarray, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``Y`` and ``u`` of ``samples`` realisations on the fine grid ``x`` (exact up to the
    quadrature's O(h²))."""
    eigenvalues, phi = modes(x)
    xi = np.random.default_rng(seed).standard_normal((samples, MODES))
    Y = xi * np.sqrt(eigenvalues) @ phi.T
    u = cumulative_trapezoid((Q + F * (1 - x)) * np.exp(-Y), x, axis=1, initial=0.0)
    return Y, u


FINE = np.linspace(0.0, 1.0, 2001)
CONDUCTIVITY_WELLS = np.linspace(0.05, 0.95, 7)
HEAD_WELLS = np.array([0.5, 1.0])


def _cells(points: np.ndarray) -> np.ndarray:
    return np.rint(points * (len(FINE) - 1)).astype(int)


def line_problem() -> tuple[FlowProblem, Observed]:
    """The problem and 2,000 observed realisations of the forward network."""
    problem = FlowProblem(
        name="line/forward",
        dim=1,
        sample_interior=lambda rng, n: rng.random((n, 1)),
        source=lambda x: np.full(len(x), F),
        dirichlet_points=np.array([[0.0]]),
        dirichlet_head=np.array([0.0]),
        flux_points=np.array([[1.0]]),
        flux_normals=np.array([[1.0]]),
        flux_inflow=np.array([Q]),
        conductivity_wells=CONDUCTIVITY_WELLS[:, None],
        head_wells=HEAD_WELLS[:, None],
        validation_wells=np.linspace(0.1, 0.9, 20)[:, None],
    )
    Y, u = realisations(FINE, 2000, seed=1)
    snapshots = np.concatenate([Y[:, _cells(CONDUCTIVITY_WELLS)], u[:, _cells(HEAD_WELLS)]], 1)
    return problem, Observed(snapshots, len(CONDUCTIVITY_WELLS))


#: Tiny float64 players for the distributed tests under mpiexec (seconds per launch).
SMALL_TRAINING = {"latent_dim": 2, "width": 8, "depth": 2, "critic_width": 8,
                  "critic_depth": 2, "batch": 8, "physics_batch": 4, "collocation": 8,
                  "boundary": 2, "checkpoint_every": 2, "log_every": 1, "critic_steps": 2,
                  "generator_steps": 1, "dtype": "float64", "lr_generator": 1e-3,
                  "lr_critic": 1e-3}
