"""Level 1's coupling: neighbouring subdomains' generators must agree where their boxes
overlap.

Every generator step, each subdomain evaluates its head ``u`` and normal flux
``e^Y ∂u/∂n`` at interface points (cells shared with a neighbour, drawn from a generator
seeded by ``(seed, iteration, step, pair)`` so both sides draw the same points) for the
step's physics latents (shared by all subdomains: one ``ξ`` is one global field).  The
values go to the neighbour by non-blocking point-to-point messages, and each side adds

    L_if = Σ_j [ mean (u_i − u_j)² + mean (F_i − F_j)² ] / n_neighbours

to its generator loss with the neighbour's values held fixed (each side moves towards
the other).  ``n`` is the same unit vector on both sides, from the lower-numbered
subdomain to the higher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp
from wengert import ad

from ..pigan.config import TrainConfig
from ..pigan.losses import Snapshots, flux_residual, generator_terms, on_device_of
from ..pigan.networks import Generators
from ..pigan.steps import arithmetic, global_norm
from .decomposition import Decomposition
from .watchdog import Watchdog

_TAG = 4400


@dataclass(frozen=True, eq=False)
class Interface:
    neighbour: int  # the neighbouring subdomain
    partner: int  # the world rank of the neighbour's replica with this rank's shards
    centres: np.ndarray  # (k, 2) centres of the shared active cells
    normal: np.ndarray  # (2,) from the lower-numbered subdomain to the higher
    pair: int  # a number of the (unordered) pair, for the point stream


def interfaces(decomposition: Decomposition, i: int, partner_rank: Any) -> list[Interface]:
    """Subdomain ``i``'s interfaces; ``partner_rank(j)`` gives the world rank to talk to."""
    grid, n = decomposition.grid, len(decomposition.subdomains)
    out = []
    for j in decomposition.neighbours(i):
        shared = decomposition.shared_cells(i, j)
        if not len(shared):
            continue
        lo, hi = min(i, j), max(i, j)
        out.append(Interface(j, partner_rank(j), grid.centres[shared],
                             decomposition.normal(lo, hi), lo * n + hi))
    return out


def interface_points(face: Interface, config: TrainConfig, iteration: int, step: int,
                     h: float, dtype: Any) -> np.ndarray:
    """The pair's interface points of one generator step (the same on both sides)."""
    rng = np.random.default_rng([config.seed, iteration, 7_000 + step, face.pair])
    cells = rng.integers(0, len(face.centres), config.boundary)
    return (face.centres[cells] + h * (rng.random((len(cells), 2)) - 0.5)).astype(dtype)


def values(gen: Generators, xi: Any, x: Any, normal: np.ndarray) -> tuple[Any, Any]:
    """Head and normal flux at ``x`` for latents ``xi``: ``(b, k)`` each."""
    direction = on_device_of(x, np.broadcast_to(np.asarray(normal, x.dtype), x.shape).copy())
    return gen.u(x, xi), flux_residual(gen, xi, x, direction, 0.0)


def exchange(watchdog: Watchdog, comm: Any, faces: list[Interface], mine: list[np.ndarray],
             step: int) -> list[np.ndarray]:
    """Send ``mine[f]`` to face ``f``'s partner and receive its values (non-blocking)."""
    theirs = [np.empty_like(m) for m in mine]
    requests = []
    for face, m, t in zip(faces, mine, theirs):
        requests.append(comm.Irecv(t, face.partner, _TAG + step))
        requests.append(comm.Isend(np.ascontiguousarray(m), face.partner, _TAG + step))
    watchdog.waitall(requests, "interface exchange with subdomain(s) "
                     + ", ".join(str(f.neighbour) for f in faces))
    return theirs


def generator_gradients(gen: Generators, critic: Any, batch: dict, snapshots: Snapshots,
                        config: TrainConfig, weight: float, coupling: list[tuple]) -> tuple:
    """The generator's gradient and metrics with the interface term added; ``coupling``
    holds ``(points, normal, neighbour's u, neighbour's flux)`` per interface."""
    weights = {"adversarial": config.w_adv, "pde": config.w_pde, "bc": config.w_bc,
               "interface": weight}
    as_generators, as_critic = arithmetic(config)

    def objective(g: Generators) -> dict:
        g = as_generators(g)
        terms = generator_terms(g, as_critic(critic), snapshots, batch)
        mismatch = 0.0
        for x, normal, u_other, flux_other in coupling:
            u, flux = values(g, batch["xi_physics"], x, normal)
            mismatch = mismatch + wnp.mean((u - u_other) ** 2) + wnp.mean((flux - flux_other) ** 2)
        return dict(terms, interface=mismatch / len(coupling))

    terms, back = ad.pullback(objective, gen)
    (grads,) = back(weights)
    loss = sum(weights[k] * terms[k] for k in weights)
    return grads, dict(terms, generator_loss=loss, generator_grad_norm=global_norm(grads))
