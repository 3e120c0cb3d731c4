"""``--placement split``: the generators and the critic on different ranks.

A generator rank holds ``G_Y, G_u`` and their optimiser, its partner critic rank holds
the critic and its optimiser.  What crosses between them is what the critic sees: the
generated snapshots ``v = S(G, ξ)`` at the wells (``b × (k_c + k_h)`` numbers), and, in
a generator step, the cotangent ``∂L_adv/∂v`` of ``L_adv = −E[D(std(v))]`` with the
value of ``L_adv``.  The generator's gradient is then exact:

    ∇_θ L_G = w_adv (∂v/∂θ)ᵀ ∂L_adv/∂v + ∇_θ (w_pde L_pde + w_bc L_bc)

where the first term is the pullback of the snapshot map, run on the generator rank
with the cotangent received, and the second is computed while the critic rank works.
A critic step needs only ``v`` (the critic's objective holds the generators fixed).
These are the step functions of each role, eager or compiled like `make_steps`'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wengert import ad

from ..pigan.config import TrainConfig
from ..pigan.losses import Snapshots, adversarial_term, critic_terms_of, physics_terms
from ..pigan.networks import Generators
from ..pigan.steps import arithmetic, compiler, global_norm, optimisers, resolve_backend

PLACEMENTS = ("together", "split")


@dataclass(frozen=True)
class SplitSteps:
    """Generator rank: ``snapshots(gen, xi) -> v``; ``physics_gradients(gen, batch) ->
    (gradient, terms)``; ``adversarial_gradients(gen, xi, cotangent, physics_gradient) ->
    gradient`` (the exact total).  Critic rank: ``critic_gradients(critic, v, batch) ->
    (gradient, metrics)``; ``adversarial_cotangent(critic, v) -> (L_adv, ∂L_adv/∂v)``.
    ``*_update`` are the optimisers' updates, as in `Steps`."""

    snapshots: Callable[..., Any]
    physics_gradients: Callable[..., tuple]
    adversarial_gradients: Callable[..., Any]
    critic_gradients: Callable[..., tuple]
    adversarial_cotangent: Callable[..., tuple]
    critic_update: Callable[..., tuple]
    generator_update: Callable[..., tuple]
    backend: str


def make_split_steps(config: TrainConfig, snapshots: Snapshots, backend: str = "eager",
                     device: Any = None) -> SplitSteps:
    """The two roles' step functions for ``backend`` (``xla`` compiles each one, for the
    jax ``device`` if given)."""
    opt_g, opt_c = optimisers(config)
    as_generators, as_critic = arithmetic(config)

    def generated(gen: Generators, xi: Any) -> Any:
        return snapshots.of(as_generators(gen), xi)

    def physics_gradients(gen: Generators, batch: dict) -> tuple:
        terms, back = ad.pullback(lambda g: physics_terms(as_generators(g), batch), gen)
        (grads,) = back({"pde": config.w_pde, "bc": config.w_bc})
        return grads, terms

    def adversarial_gradients(gen: Generators, xi: Any, cotangent: Any, physics: Any) -> Any:
        _, back = ad.pullback(lambda g: generated(g, xi), gen)
        (grads,) = back(config.w_adv * cotangent)
        return ad.tree_map(lambda a, b: a + b, grads, physics)

    def critic_gradients(critic: Any, fake: Any, batch: dict) -> tuple:
        terms, back = ad.pullback(
            lambda c: critic_terms_of(as_critic(c), snapshots, fake, batch), critic)
        (grads,) = back({"wasserstein": -1.0, "penalty": config.gp_lambda})
        return grads, dict(terms, critic_loss=config.gp_lambda * terms["penalty"]
                           - terms["wasserstein"], critic_grad_norm=global_norm(grads))

    def adversarial_cotangent(critic: Any, fake: Any) -> tuple:
        value, back = ad.pullback(lambda v: adversarial_term(as_critic(critic), snapshots, v),
                                  fake)
        (cotangent,) = back(1.0)
        return value, cotangent

    backend = resolve_backend(backend)
    functions = map(compiler(backend, device), (generated, physics_gradients, adversarial_gradients,
                                        critic_gradients, adversarial_cotangent, opt_c.update,
                                        opt_g.update))
    return SplitSteps(*functions, backend)


def generator_metrics(config: TrainConfig, terms: dict, adversarial: float) -> dict:
    """A split generator step's metrics, as a colocated step reports them (the gradient
    norm is added after averaging)."""
    terms = {"adversarial": adversarial, **terms}
    weights = {"adversarial": config.w_adv, "pde": config.w_pde, "bc": config.w_bc}
    return dict(terms, generator_loss=sum(weights[k] * terms[k] for k in weights))
