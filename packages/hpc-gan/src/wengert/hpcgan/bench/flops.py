"""FLOPs of one PI-GAN training iteration: counted from the networks' matrix products,
and, for the compiled backend, XLA's own cost analysis beside it.

The count (ours, an estimate that ignores elementwise work: tanh, exp, Adam) charges a
dense layer ``2 · rows · fan_in · fan_out`` and composes whole programs with three rules:

* a JVP evaluates the primal and the tangent: 2 forward passes;
* a JVP of a JVP (the residual's second derivatives): 4 forward passes;
* a reverse sweep costs about twice its forward program: value and gradient 3×.

So, for ``G`` a generator on ``b`` realisations × ``n`` points and ``D`` the critic on
``b`` snapshots (``M`` the forward matmul FLOPs, ``d`` the space dimension):

    generator step = 3 [ M_G(b, wells) + M_D(b) + 6d M_G(b_p, n_c) + M_G(b_p, n_dir)
                         + 3 M_G(b_p, n_flux) + 4 M_G(b_p, n_if) ] + 4 M_G(b_p, n_if)
    critic step    = M_G(b, wells) + 3 · 2 M_D(b) + 3 · 2 M_D(b)     (losses, penalty)

``n_if`` are the interface points of a decomposed run (the second ``4 M_G`` is the
evaluation sent to the neighbour).  The penalty is a gradient (forward and input
cotangent: 2 M_D) differentiated again (3×).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from wengert import ad

from ..pigan.config import TrainConfig
from ..pigan.networks import FieldGenerator, Generators
from ..pigan.problem import FlowProblem
from ..pigan.steps import draw_batch, make_steps
from ..pigan.training import Observed, initial_state


def dense_flops(rows: int, fan_in: int, fan_out: int) -> int:
    return 2 * rows * fan_in * fan_out


def generator_flops(g: FieldGenerator, realisations: int, points: int) -> int:
    """Forward matmul FLOPs of ``G(x, ξ)`` for ``realisations`` latents at ``points`` points
    (the coordinate and latent halves of the first layer are computed once each)."""
    dim, width = g.coords.weight.shape
    latent = g.latent.weight.shape[0]
    hidden = sum(1 for a in ad.tree_leaves(g.hidden) if getattr(a, "ndim", 0) == 2)
    rows = realisations * points
    return (dense_flops(points, dim, width) + dense_flops(realisations, latent, width)
            + hidden * dense_flops(rows, width, width) + dense_flops(rows, width, 1))


def critic_flops(critic: Any, snapshots: int) -> int:
    """Forward matmul FLOPs of the critic MLP on ``snapshots`` snapshots."""
    weights = [a for a in ad.tree_leaves(critic) if getattr(a, "ndim", 0) == 2]
    return sum(dense_flops(snapshots, *w.shape) for w in weights)


@dataclass(frozen=True)
class IterationFlops:
    """FLOPs of one training iteration of one rank (``critic_steps`` critic steps and
    ``generator_steps`` generator steps)."""

    critic_step: int
    generator_step: int
    iteration: int


def analytic_flops(problem: FlowProblem, config: TrainConfig, generators: Generators,
                   critic: Any, interface_points: int = 0) -> IterationFlops:
    """The counted FLOPs of one iteration with ``config``'s batch sizes on ``problem``
    (``interface_points``: the interface points per generator step, all faces)."""
    batch = draw_batch(problem, np.zeros((1, len(problem.conductivity_wells)
                                          + len(problem.head_wells))), config, 1,
                       "generator 0", np.float32)
    b, bp = config.batch, config.physics_batch
    dim = batch["x"].shape[1]
    Y, u = generators.Y, generators.u
    snapshot = (generator_flops(Y, b, len(problem.conductivity_wells))
                + generator_flops(u, b, len(problem.head_wells)))
    D = critic_flops(critic, b)
    n_c, n_dir, n_flux = len(batch["x"]), len(batch["x_dirichlet"]), len(batch["x_flux"])

    def both(points: int, u_passes: int, y_passes: int) -> int:
        return u_passes * generator_flops(u, bp, points) + y_passes * generator_flops(Y, bp, points)

    residual = dim * both(n_c, 4, 2)
    boundary = both(n_dir, 1, 0) + both(n_flux, 2, 1)
    interface = both(interface_points, 3, 1) if interface_points else 0
    generator = 3 * (snapshot + D + residual + boundary + interface) + interface
    critic_step = snapshot + 6 * D + 6 * D
    return IterationFlops(critic_step, generator,
                          config.critic_steps * critic_step + config.generator_steps * generator)


def xla_flops(problem: FlowProblem, config: TrainConfig) -> IterationFlops | None:
    """XLA's cost analysis of the compiled critic and generator steps (Adam included) of
    one rank with ``config``'s batch sizes; ``None`` where wengert-xla is not installed."""
    try:
        from wengert import xla  # noqa: F401
    except ImportError:
        return None
    kc, kh = len(problem.conductivity_wells), len(problem.head_wells)
    observed = Observed(np.random.default_rng(0).standard_normal((8, kc + kh)), kc)
    state = initial_state(problem, observed, config)
    dtype = np.dtype(config.dtype)
    steps = make_steps(config, observed.normaliser(problem, dtype), "xla")

    def flops(step: Any, *args: Any) -> int:
        cost = step.lower(*args).compile().cost_analysis()
        return int(cost.get("flops", 0))

    critic = flops(steps.critic_step, state.critic, state.generators, state.critic_opt,
                   draw_batch(problem, observed.snapshots, config, 1, "critic 0", dtype))
    generator = flops(steps.generator_step, state.generators, state.critic,
                      state.generator_opt,
                      draw_batch(problem, observed.snapshots, config, 1, "generator 0", dtype))
    return IterationFlops(critic, generator,
                          config.critic_steps * critic + config.generator_steps * generator)
