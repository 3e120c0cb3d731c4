"""The data-parallel training loop: every replica runs the single-process step halves on
its shards of the batch, and the hierarchical all-reduce averages the gradients between
``*_gradients`` and ``*_update``, so every replica applies the same update and holds the
same players after every step.

Rank 0 writes the run's one checkpoint (the players are equal everywhere) and its
metrics; a barrier after each checkpoint makes it the job's coordinated restart point.
The metrics travel with the gradients, together with one flag per rank that says whether
the rank's own losses and gradient norms were finite: every rank sees the same flags,
so a NaN on one rank stops all of them at the same iteration, with the rank named and
the last good checkpoint kept.  Every collective wait is the watchdog's, so a dead or
hung rank aborts the job instead of hanging it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import TrainingDiverged, TrainingError, TrainingInterrupted
from ..pigan.config import TrainConfig
from ..pigan.problem import FlowProblem
from ..pigan.steps import Steps, global_norm, make_steps
from ..pigan.training import (
    METRICS_FILE,
    Observed,
    RunState,
    _check_finite,
    _log,
    _trim_metrics,
    initial_state,
    load_checkpoint,
    save_checkpoint,
)
from .allreduce import DEFAULT_BUCKET_BYTES, HierarchicalAllreduce
from .mpi import mpi
from .sharding import check_shards, draw_shards
from .topology import topology
from .watchdog import Watchdog


@dataclass(frozen=True)
class Parallel:
    """How a run is spread over MPI ranks (``--replicas``, ``--ranks-per-node``, ...)."""

    replicas: int | None = None  # data-parallel replicas (default: every rank)
    shards: int | None = None  # data shards of a batch (default: replicas; fixed for a run)
    ranks_per_node: int | None = None  # fake nodes for the two-level all-reduce
    bucket_bytes: int = DEFAULT_BUCKET_BYTES
    timeout: float = 300.0  # seconds a collective may wait before the job is aborted
    decomp: str = "1x1"  # level-1 domain decomposition
    placement: str = "together"  # generators and critic on the same ranks


@dataclass
class Replica:
    """This rank's place in the job and its communication machinery."""

    comm: Any
    reducer: HierarchicalAllreduce
    watchdog: Watchdog
    owned: range  # the data shards this rank draws
    shards: int

    @property
    def is_root(self) -> bool:
        return self.comm.Get_rank() == 0


def check_layout(parallel: Parallel, size: int) -> int:
    """The replica count of ``parallel`` on a job of ``size`` ranks, or an error naming the fix."""
    if parallel.decomp != "1x1" or parallel.placement != "together":
        raise TrainingError(f"--decomp {parallel.decomp} / --placement {parallel.placement}: "
                            "domain decomposition and split placement are not implemented yet; "
                            "run with --decomp 1x1 --placement together (data parallelism)")
    replicas = parallel.replicas or size
    if replicas != size:
        raise TrainingError(f"--replicas {replicas} needs {replicas} MPI ranks, but the job has "
                            f"{size}; launch with mpiexec -n {replicas}")
    return replicas


def connect(comm: Any, parallel: Parallel, config: TrainConfig, shards: int) -> Replica:
    """Check the layout against the communicator and build the replica's machinery."""
    replicas = check_layout(parallel, comm.Get_size())
    check_shards(config, shards, replicas)
    watchdog = Watchdog(comm, parallel.timeout)
    reducer = HierarchicalAllreduce(topology(comm, parallel.ranks_per_node), watchdog,
                                    parallel.bucket_bytes)
    per_rank = shards // replicas
    rank = comm.Get_rank()
    return Replica(comm, reducer, watchdog, range(rank * per_rank, (rank + 1) * per_rank), shards)


def run_distributed(problem: FlowProblem, observed: Observed, config: TrainConfig, out: Path, *,
                    parallel: Parallel = Parallel(), shards: int | None = None, comm: Any = None,
                    backend: str = "eager", resume: bool = False, progress: bool = True
                    ) -> RunState:
    """`run_training` over the ranks of ``comm`` (default ``COMM_WORLD``): same folder,
    same checkpoint format, same guarantees.  ``out`` must be prepared by rank 0."""
    comm = comm if comm is not None else mpi().COMM_WORLD
    replica = connect(comm, parallel, config, shards or parallel.shards or comm.Get_size())
    dtype = np.dtype(config.dtype)
    steps = make_steps(config, observed.normaliser(problem, dtype), backend)
    state = _starting_state(replica, problem, observed, config, out, resume)
    bar = tqdm(total=config.steps, initial=min(state.iteration, config.steps),
               desc=f"train {problem.name} ({steps.backend}, {comm.Get_size()} ranks)",
               disable=not (progress and replica.is_root), unit="it")
    good = state
    try:
        while state.iteration < config.steps:
            start = time.perf_counter()
            replica.watchdog.context = f"iteration {state.iteration + 1}"
            state, metrics = _iteration(state, steps, replica, problem, observed, config, dtype)
            good = state
            metrics["step_time"] = time.perf_counter() - start
            due = state.iteration == config.steps
            if replica.is_root and (state.iteration % config.log_every == 0 or due):
                _log(out, state.iteration, metrics)
            if state.iteration % config.checkpoint_every == 0 or due:
                checkpoint(replica, out, state)
            bar.update(1)
    except KeyboardInterrupt:
        if replica.is_root:  # the replicas are equal: rank 0's last whole iteration is the run's
            save_checkpoint(out, good)
        raise TrainingInterrupted(f"interrupted: iteration {good.iteration} was checkpointed in "
                                  f"{out}; continue with --resume") from None
    finally:
        bar.close()
    return state


def checkpoint(replica: Replica, out: Path, state: RunState) -> None:
    """Rank 0 writes the checkpoint atomically; nobody continues before it is whole."""
    if replica.is_root:
        save_checkpoint(out, state)
    replica.watchdog.barrier("checkpoint barrier")


def _starting_state(replica: Replica, problem: FlowProblem, observed: Observed,
                    config: TrainConfig, out: Path, resume: bool) -> RunState:
    """Fresh players (the same seed everywhere), or rank 0's checkpoint sent to all."""
    state = initial_state(problem, observed, config)
    if not resume:
        if replica.is_root and (out / METRICS_FILE).exists():
            (out / METRICS_FILE).unlink()
        return state
    loaded, error = None, None
    if replica.is_root:
        try:
            loaded = load_checkpoint(out, state)
            _trim_metrics(out, loaded.iteration)
        except TrainingError as exc:
            error = str(exc)
    loaded, error = replica.comm.bcast((loaded, error), root=0)
    if error is not None:
        raise TrainingError(error)
    return loaded


def _iteration(state: RunState, steps: Steps, replica: Replica, problem: FlowProblem,
               observed: Observed, config: TrainConfig, dtype: Any) -> tuple[RunState, dict]:
    i = state.iteration + 1
    gen, critic, g_opt, c_opt = (state.generators, state.critic, state.generator_opt,
                                 state.critic_opt)
    metrics: dict = {}

    def batch(kind: str) -> dict:
        return draw_shards(problem, observed.snapshots, config, i, kind, replica.owned,
                           replica.shards, dtype)

    for k in range(config.critic_steps):
        grads, m = steps.critic_gradients(critic, gen, batch(f"critic {k}"))
        grads, m = _average(replica, grads, m, i, config, "critic_grad_norm")
        critic, c_opt = steps.critic_update(critic, grads, c_opt)
        metrics.update(m)
    for k in range(config.generator_steps):
        grads, m = steps.generator_gradients(gen, critic, batch(f"generator {k}"))
        grads, m = _average(replica, grads, m, i, config, "generator_grad_norm")
        gen, g_opt = steps.generator_update(gen, grads, g_opt)
        metrics.update(m)
    return RunState(gen, critic, g_opt, c_opt, i), metrics


def _average(replica: Replica, grads: Any, metrics: dict, iteration: int, config: TrainConfig,
             norm_key: str) -> tuple[Any, dict]:
    """The replicas' mean gradient and metrics, in one all-reduce with each rank's
    finiteness flag; stops every rank together when any rank's numbers are bad."""
    names = sorted(metrics)
    local = np.array([float(metrics[k]) for k in names])
    bad = np.zeros(replica.comm.Get_size())
    bad[replica.comm.Get_rank()] = not all(math.isfinite(v) and abs(v) <= config.divergence_limit
                                           for v in local)
    grads, local, bad = replica.reducer.mean_tree((grads, local, bad))
    culprits = [r for r, flag in enumerate(bad) if flag > 0]
    if culprits:
        raise TrainingDiverged(
            f"training stopped at iteration {iteration} on all {replica.comm.Get_size()} ranks: "
            f"rank{'s' if len(culprits) > 1 else ''} {', '.join(map(str, culprits))} computed a "
            "non-finite or diverging loss or gradient; the last good checkpoint was kept. Lower "
            "the learning rates, raise gp_lambda, or check the data for NaN")
    averaged = dict(zip(names, map(float, local)))
    averaged[norm_key] = float(global_norm(grads))  # the norm of the step actually taken
    _check_finite(averaged, iteration, config.divergence_limit)
    return grads, averaged
