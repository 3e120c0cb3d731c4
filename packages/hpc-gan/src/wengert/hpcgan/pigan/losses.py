"""The PI-GAN's losses: the flow equation's residual of generated fields, its boundary
residuals, and the WGAN-GP critic and generator objectives on well snapshots.

Derivatives in ``x`` come from nested forward mode: the flux ``K ∂u/∂x_k`` is a JVP of
the head generator along ``e_k``, and its divergence a JVP of that along ``e_k`` again,
for all points of all realisations at once.  These sit inside the reverse-mode
gradient in the weights that a training step takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp
from wengert import ad

from .networks import Generators

Array = Any


@dataclass(frozen=True)
class Snapshots:
    """Where a snapshot is observed and how it is standardised for the critic.

    A snapshot is one realisation's ``Y`` at the conductivity wells followed by its ``u``
    at the head wells; ``mean``/``std`` (per entry, from the training observations)
    bring both to O(1) before the critic sees them.
    """

    conductivity_wells: np.ndarray  # (kc, d)
    head_wells: np.ndarray  # (kh, d)
    mean: np.ndarray  # (kc + kh,)
    std: np.ndarray  # (kc + kh,)

    def of(self, gen: Generators, xi: Array) -> Array:
        """Generated snapshots, shape ``(b, kc + kh)``, in physical units."""
        return wnp.concatenate([gen.Y(self.conductivity_wells, xi),
                                gen.u(self.head_wells, xi)], axis=1)

    def standardise(self, v: Array) -> Array:
        return (v - self.mean) / self.std


def _along(f: Any, x: Array, direction: Array) -> Array:
    """Directional derivative of a pointwise field ``f`` at every point of ``x``."""
    return ad.jvp(f, (x,), (direction,))[1]


def _unit(x: np.ndarray, k: int) -> np.ndarray:
    e = np.zeros(x.shape, x.dtype)
    e[:, k] = 1
    return on_device_of(x, e)


def on_device_of(x: Array, constant: np.ndarray) -> Array:
    """A NumPy ``constant`` on ``x``'s device: a CuPy copy when ``x`` is a CuPy array (an
    eager step on the GPU), the constant itself otherwise (NumPy, or a staged program,
    which embeds it)."""
    return ad.to_device(constant, "gpu") if type(x).__module__.startswith("cupy") else constant


def pde_residual(gen: Generators, xi: Array, x: Array, source: Array) -> Array:
    """``∇·(e^{G_Y} ∇G_u) + f`` at points ``x`` (n, d) for latents ``xi`` (b, m): (b, n).

    Zero for fields that satisfy ``-∇·(K∇u) = f`` (the solver's sign convention).
    """
    def G_Y(p: Array) -> Array:
        return gen.Y(p, xi)

    def G_u(p: Array) -> Array:
        return gen.u(p, xi)

    divergence = 0.0
    for k in range(x.shape[1]):
        e = _unit(x, k)

        def flux(p: Array, e: np.ndarray = e) -> Array:
            return wnp.exp(G_Y(p)) * _along(G_u, p, e)

        divergence = divergence + _along(flux, x, e)
    return divergence + source


def dirichlet_residual(gen: Generators, xi: Array, x: Array, head: Array) -> Array:
    """``G_u − g`` at Dirichlet boundary points: (b, k)."""
    return gen.u(x, xi) - head


def flux_residual(gen: Generators, xi: Array, x: Array, normal: Array, inflow: Array) -> Array:
    """``e^{G_Y} ∂G_u/∂n − q`` at flux boundary points (``q = 0``: no flow): (b, k)."""
    return wnp.exp(gen.Y(x, xi)) * _along(lambda p: gen.u(p, xi), x, normal) - inflow


def generator_terms(gen: Generators, critic: Any, snapshots: Snapshots, batch: dict) -> dict:
    """The generator objective's three terms (combined with weights by the step):
    ``adversarial = −E[D(fake)]``, ``pde = mean r²``, ``bc = mean b²`` over all boundaries."""
    fake = snapshots.of(gen, batch["xi"])
    return {"adversarial": adversarial_term(critic, snapshots, fake),
            **physics_terms(gen, batch)}


def adversarial_term(critic: Any, snapshots: Snapshots, fake: Array) -> Array:
    """``−E[D(fake)]`` for generated snapshots ``fake`` in physical units."""
    return -wnp.mean(critic(snapshots.standardise(fake)))


def physics_terms(gen: Generators, batch: dict) -> dict:
    """``pde = mean r²`` and ``bc = mean b²`` (all boundaries) of the generated fields.

    They use their own (smaller) batch of latents ``xi_physics``: the residual costs far
    more per realisation than a snapshot, and it constrains each realisation separately,
    so fewer realisations per step suffice."""
    xi = batch["xi_physics"]
    r = pde_residual(gen, xi, batch["x"], batch["source"])
    b_dir = dirichlet_residual(gen, xi, batch["x_dirichlet"], batch["head"])
    b_flux = flux_residual(gen, xi, batch["x_flux"], batch["normal"], batch["inflow"])
    n_bc = b_dir.shape[1] + b_flux.shape[1]
    return {
        "pde": wnp.mean(r * r),
        "bc": (wnp.sum(b_dir * b_dir) + wnp.sum(b_flux * b_flux)) / (n_bc * b_dir.shape[0]),
    }


def gradient_penalty(critic: Any, real: Array, fake: Array, eps: Array) -> Array:
    """``E[(‖∇_v D(v̂)‖ − 1)²]`` on ``v̂ = ε real + (1 − ε) fake`` (Gulrajani et al. 2017):
    a gradient inside the gradient the critic step takes."""
    mixed = eps * real + (1 - eps) * fake
    slopes = ad.grad(lambda v: wnp.sum(critic(v)))(mixed)
    norm = wnp.sqrt(wnp.sum(slopes * slopes, axis=1) + 1e-12)
    return wnp.mean((norm - 1) ** 2)


def critic_terms(critic: Any, gen: Generators, snapshots: Snapshots, batch: dict) -> dict:
    """The critic objective's terms: ``wasserstein = E[D(real)] − E[D(fake)]`` (the
    estimate the critic maximises) and the gradient penalty."""
    fake = ad.stop_gradient(snapshots.of(gen, batch["xi"]))
    return critic_terms_of(critic, snapshots, fake, batch)


def critic_terms_of(critic: Any, snapshots: Snapshots, fake: Array, batch: dict) -> dict:
    """`critic_terms` for given generated snapshots ``fake`` (physical units): what a
    critic on another rank than the generators computes from the snapshots it receives."""
    fake = snapshots.standardise(fake)
    real = snapshots.standardise(batch["real"])
    return {
        "wasserstein": wnp.mean(critic(real)) - wnp.mean(critic(fake)),
        "penalty": gradient_penalty(critic, real, fake, batch["eps"]),
    }
