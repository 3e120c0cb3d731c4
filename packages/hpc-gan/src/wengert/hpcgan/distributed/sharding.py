"""Data parallelism's batches: a step's batch is ``shards`` equal slices, each drawn from
its own generator, so replicas can draw their slices independently.

Shard ``s`` of the step ``kind`` at ``iteration`` draws its latents ``ξ``, real
snapshots and penalty mixes from a generator seeded by ``(seed, iteration, kind, s)``;
the collocation and boundary points come from ``(seed, iteration, kind)`` and are the
same on every shard.  Every loss is then a mean of equal-size per-row terms over the
same points, so the mean of the shards' gradients is the gradient of the whole batch:
``R`` replicas with ``B/R`` realisations each give the same step as one rank holding all
``R`` shards, up to the order of the floating-point sums.  A rank owning several shards
concatenates them, which makes a run resumable with any replica count dividing
``shards``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import TrainingError
from ..pigan.config import TrainConfig
from ..pigan.problem import FlowProblem

#: Keys drawn per shard (one row per realisation); everything else is shared.
_PER_REALISATION = ("xi", "real", "eps", "xi_physics")


def check_shards(config: TrainConfig, shards: int, replicas: int) -> None:
    """The batch must split into ``shards`` equal slices and the shards over the replicas."""
    for key in ("batch", "physics_batch"):
        if getattr(config, key) % shards:
            raise TrainingError(f"{key} = {getattr(config, key)} does not split into {shards} "
                                f"equal data shards; choose {key} as a multiple of {shards} "
                                "(--set) or another replica count")
    if shards % replicas:
        raise TrainingError(f"{replicas} replicas cannot share {shards} data shards equally "
                            f"(the run was started with {shards}); use a replica count that "
                            f"divides {shards}")


def _tag(kind: str) -> int:
    return sum(map(ord, kind)) * 1_000 + int(kind.split()[-1])


def draw_shard(problem: FlowProblem, real: np.ndarray, config: TrainConfig, iteration: int,
               kind: str, shard: int, shards: int) -> dict[str, np.ndarray]:
    """Shard ``shard`` of ``shards`` of the step's batch (float64; cast by the caller)."""
    rng = np.random.default_rng([config.seed, iteration, _tag(kind), 1 + shard])
    b = config.batch // shards
    out = {"xi": rng.standard_normal((b, config.latent_dim))}
    if kind.startswith("critic"):
        out["real"] = real[rng.integers(0, len(real), b)]
        out["eps"] = rng.random((b, 1))
        return out
    out["xi_physics"] = rng.standard_normal((config.physics_batch // shards, config.latent_dim))
    shared = np.random.default_rng([config.seed, iteration, _tag(kind), 0])
    x = problem.sample_interior(shared, config.collocation)
    out.update(x=x, source=problem.source(x), **problem.boundary_batch(shared, config.boundary))
    return out


def draw_shards(problem: FlowProblem, real: np.ndarray, config: TrainConfig, iteration: int,
                kind: str, owned: range, shards: int, dtype: Any) -> dict[str, np.ndarray]:
    """The batch of a rank that owns the shards ``owned``: their per-realisation rows
    concatenated in shard order, the shared points once."""
    parts = [draw_shard(problem, real, config, iteration, kind, s, shards) for s in owned]
    batch = {k: np.concatenate([p[k] for p in parts]) if k in _PER_REALISATION else parts[0][k]
             for k in parts[0]}
    return {k: np.asarray(v, dtype) for k, v in batch.items()}
