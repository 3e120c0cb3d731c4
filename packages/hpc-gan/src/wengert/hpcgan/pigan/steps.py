"""One training step of each player, as functions of explicit state.

``critic_step(critic, gen, opt_state, batch)`` and ``generator_step(gen, critic,
opt_state, batch)`` return the updated player, its optimiser state and the step's
metrics.  They hold no hidden state, so a distributed trainer can call them per rank;
``*_gradients`` and ``*_update`` are their two halves, for averaging gradients across
replicas in between.  The batch
(latents, points, real snapshots) is drawn outside, on the host, from a generator
seeded by ``(seed, iteration)``: both backends see the same numbers, and a resumed run
draws what an uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp
from wengert import ad, nn

from .config import TrainConfig
from .losses import Snapshots, critic_terms, generator_terms
from .networks import Generators, bfloat16, critic_computing_in
from .problem import FlowProblem

Array = Any
BACKENDS = ("auto", "eager", "xla")


def draw_batch(problem: FlowProblem, real: np.ndarray, config: TrainConfig, iteration: int,
               kind: str, dtype: Any) -> dict[str, np.ndarray]:
    """The random inputs of one step of ``kind`` ("critic k" or "generator k") at
    ``iteration``, from a generator seeded by the run's seed, the iteration and the kind."""
    tag = sum(map(ord, kind)) * 1_000 + int(kind.split()[-1])
    rng = np.random.default_rng([config.seed, iteration, tag])
    batch = {"xi": rng.standard_normal((config.batch, config.latent_dim))}
    if kind.startswith("critic"):
        batch["real"] = real[rng.integers(0, len(real), config.batch)]
        batch["eps"] = rng.random((config.batch, 1))
    else:
        x = problem.sample_interior(rng, config.collocation)
        batch.update(x=x, xi_physics=rng.standard_normal((config.physics_batch,
                                                          config.latent_dim)), source=problem.source(x), **problem.boundary_batch(rng, config.boundary))
    return {k: np.asarray(v, dtype) for k, v in batch.items()}


def global_norm(tree: Any) -> Array:
    """``sqrt(Σ g²)`` over the float leaves of a gradient tree."""
    leaves = [g for g in ad.tree_leaves(tree) if g is not None and hasattr(g, "shape")]
    return wnp.sqrt(sum(wnp.sum(g * g) for g in leaves))


@dataclass(frozen=True)
class Steps:
    """The step functions of one configuration, eager or compiled.

    ``*_gradients(player, other, batch) -> (gradient, metrics)`` are the halves a
    data-parallel trainer averages across replicas before ``*_update(player, gradient,
    state) -> (player, state)``; ``*_step`` is both in one call (one executable under xla).
    """

    critic_step: Callable[..., tuple]
    generator_step: Callable[..., tuple]
    critic_gradients: Callable[..., tuple]
    generator_gradients: Callable[..., tuple]
    critic_update: Callable[..., tuple]
    generator_update: Callable[..., tuple]
    backend: str


def make_steps(config: TrainConfig, snapshots: Snapshots, backend: str = "eager",
               device: Any = None) -> Steps:
    """Build the step functions for ``backend``: ``eager`` runs ``wengert.ad`` on NumPy (or
    CuPy); ``xla`` compiles each whole step — losses, the nested residual, gradients and
    the Adam update — into one XLA executable (for the jax ``device``, if given)."""
    opt_g, opt_c = optimisers(config)
    weights = {"adversarial": config.w_adv, "pde": config.w_pde, "bc": config.w_bc}
    as_generators, as_critic = arithmetic(config)

    def critic_gradients(critic: Any, gen: Generators, batch: dict) -> tuple:
        def objective(c: Any) -> dict:
            return critic_terms(as_critic(c), as_generators(gen), snapshots, batch)

        terms, back = ad.pullback(objective, critic)
        (grads,) = back({"wasserstein": -1.0, "penalty": config.gp_lambda})
        return grads, dict(terms, critic_loss=config.gp_lambda * terms["penalty"]
                           - terms["wasserstein"], critic_grad_norm=global_norm(grads))

    def generator_gradients(gen: Generators, critic: Any, batch: dict) -> tuple:
        def objective(g: Generators) -> dict:
            return generator_terms(as_generators(g), as_critic(critic), snapshots, batch)

        terms, back = ad.pullback(objective, gen)
        (grads,) = back(weights)
        loss = sum(weights[k] * terms[k] for k in weights)
        return grads, dict(terms, generator_loss=loss, generator_grad_norm=global_norm(grads))

    def critic_step(critic: Any, gen: Generators, state: Any, batch: dict) -> tuple:
        grads, metrics = critic_gradients(critic, gen, batch)
        return (*opt_c.update(critic, grads, state), metrics)

    def generator_step(gen: Generators, critic: Any, state: Any, batch: dict) -> tuple:
        grads, metrics = generator_gradients(gen, critic, batch)
        return (*opt_g.update(gen, grads, state), metrics)

    backend = resolve_backend(backend)
    functions = map(compiler(backend, device), (critic_step, generator_step, critic_gradients,
                                        generator_gradients, opt_c.update, opt_g.update))
    return Steps(*functions, backend)


def arithmetic(config: TrainConfig) -> tuple[Callable[[Generators], Any], Callable[[Any], Any]]:
    """How a step's losses see the generators and the critic: as they are, or, with
    ``mixed_precision = bf16``, as views computing in bfloat16 (`FieldGenerator.computing_in`,
    `critic_computing_in`) of the float32 master weights the optimiser updates.  Losses,
    the residual's sums and the gradients stay in float32."""
    if config.mixed_precision == "none":
        return (lambda gen: gen), (lambda critic: critic)
    low = bfloat16()
    return (lambda gen: gen.computing_in(low)), (lambda critic: critic_computing_in(critic, low))


def compiler(backend: str, device: Any = None) -> Callable[[Callable], Callable]:
    """What makes a step function for ``backend`` (resolved): ``xla.jit`` (for the jax
    ``device``, if given) for ``xla``, the function itself for ``eager``."""
    if backend == "xla":
        return lambda f: _xla().jit(f, device=device)
    return lambda f: f


def resolve_backend(backend: str) -> str:
    """``auto`` is ``xla`` where wengert-xla is installed, ``eager`` elsewhere."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "xla" if _xla() is not None else "eager"
    if backend == "xla" and _xla() is None:
        raise ValueError("--backend xla needs wengert-xla: pip install 'wengert-hpcgan[xla]'")
    return backend


def optimisers(config: TrainConfig) -> tuple[nn.Adam, nn.Adam]:
    """The generator's and the critic's Adam (their states are part of a checkpoint)."""
    return (nn.Adam(config.lr_generator, beta=(config.beta1, config.beta2)),
            nn.Adam(config.lr_critic, beta=(config.beta1, config.beta2)))


def _xla() -> Any:
    try:
        from wengert import xla
    except ImportError:
        return None
    return xla
