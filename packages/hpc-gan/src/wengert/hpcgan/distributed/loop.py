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

With a domain decomposition (level 1) the world is ``n_subdomains × R`` ranks: rank
``s·R + r`` is replica ``r`` of subdomain ``s``.  Gradients are averaged within a
subdomain's replicas; metrics and finiteness flags over the whole world; generator steps
exchange interface values with the same replica of each neighbouring subdomain.

With ``--placement split`` the world is ``2 × R`` ranks: ranks ``0..R-1`` hold the
generators, ranks ``R..2R-1`` the critics, and generator rank ``r`` works with critic rank
``R + r`` on the same data shards (see `placement`).  Gradients are averaged within a
role's ranks; metrics and finiteness flags over the whole world.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from wengert import ad

from ..errors import TrainingDiverged, TrainingError, TrainingInterrupted
from ..pigan.config import TrainConfig
from ..pigan.problem import FlowProblem
from ..pigan.steps import Steps, global_norm, make_steps, resolve_backend
from ..pigan.training import (
    METRICS_FILE,
    Observed,
    RunState,
    append_metrics,
    check_finite,
    initial_state,
    save_checkpoint,
    trim_metrics,
)
from .allreduce import DEFAULT_BUCKET_BYTES, HierarchicalAllreduce
from .checkpoints import load_states, save_states
from .decomposition import DEFAULT_OVERLAP, Decomposition, restrict
from .devices import CPU, Binding, Reducer, bind, gradient_reducer, to_host
from .interface import (
    CoupledSteps,
    Interface,
    coupled_steps,
    exchange,
    interface_points,
    interfaces,
)
from .mpi import mpi
from .placement import PLACEMENTS, SplitSteps, generator_metrics, make_split_steps
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
    decomp: str = "1x1"  # level-1 domain decomposition, PxQ
    placement: str = "together"  # generators and critic on the same ranks, or "split"
    overlap: int = DEFAULT_OVERLAP  # cells each subdomain extends past its core
    interface_weight: float = 1.0  # weight of the interface-continuity loss


@dataclass
class Replica:
    """This rank's place in the job and its communication machinery."""

    world: Any
    comm: Any  # the replicas of this rank's subdomain
    reducer: Reducer  # the gradients' all-reduce over ``comm`` (MPI, or NCCL on GPUs)
    world_reducer: HierarchicalAllreduce | None  # metrics over ``world``; None: ``reducer``
    watchdog: Watchdog
    owned: range  # the data shards this rank draws
    shards: int
    subdomain: int = 0
    faces: tuple[Interface, ...] = ()
    n_subdomains: int = 1
    role: str = "both"  # "generator" or "critic" under --placement split
    partner: int = -1  # the world rank of the other role's rank with the same shards
    binding: Binding = CPU  # this rank's device
    comm_seconds: float = 0.0  # spent in all-reduces and interface exchanges so far

    @property
    def is_root(self) -> bool:
        return self.world.Get_rank() == 0


def check_layout(parallel: Parallel, size: int, n_subdomains: int = 1) -> int:
    """The replica count of ``parallel`` on a job of ``size`` ranks, or an error naming the fix."""
    if parallel.placement not in PLACEMENTS:
        raise TrainingError(f"unknown --placement {parallel.placement!r}; choose one of "
                            f"{', '.join(PLACEMENTS)}")
    roles = 2 if parallel.placement == "split" else 1
    if roles == 2 and n_subdomains > 1:
        raise TrainingError("--placement split works with one domain so far; drop --decomp, "
                            "or use --placement together with --decomp")
    replicas = parallel.replicas or max(size // (n_subdomains * roles), 1)
    if replicas * n_subdomains * roles != size:
        what = "subdomain(s)" if roles == 1 else "role(s) (generators, critic)"
        raise TrainingError(f"{n_subdomains * roles} {what} x {replicas} replica(s) need "
                            f"{replicas * n_subdomains * roles} MPI ranks, but the job has "
                            f"{size}; launch with mpiexec -n {replicas * n_subdomains * roles}")
    return replicas


def connect(world: Any, parallel: Parallel, config: TrainConfig, shards: int,
            decomposition: Decomposition | None = None, binding: Binding = CPU
            ) -> Replica:
    """Check the layout against the communicator and build the replica's machinery."""
    n_sub = len(decomposition.subdomains) if decomposition is not None else 1
    replicas = check_layout(parallel, world.Get_size(), n_sub)
    check_shards(config, shards, replicas)
    rank = world.Get_rank()
    group, replica = divmod(rank, replicas)  # group: the subdomain, or the role when split
    split = parallel.placement == "split"
    subdomain = 0 if split else group
    watchdog = Watchdog(world, parallel.timeout)
    comm = world if replicas == world.Get_size() else world.Split(group, rank)
    topo = topology(comm, parallel.ranks_per_node)
    host = HierarchicalAllreduce(topo, watchdog, parallel.bucket_bytes)
    reducer = gradient_reducer(binding, host, topo, watchdog, announce=rank == 0)
    if comm is world and reducer is host:
        world_reducer = None  # one all-reduce carries the gradients, metrics and flags
    elif comm is world:
        world_reducer = host  # gradients on the GPUs, metrics through MPI
    else:
        world_reducer = HierarchicalAllreduce(topology(world, parallel.ranks_per_node),
                                              watchdog, parallel.bucket_bytes)
    faces = () if n_sub == 1 else tuple(interfaces(
        decomposition, subdomain, lambda j: j * replicas + replica))
    if n_sub > 1 and not faces:
        raise TrainingError(f"subdomain {subdomain} shares no cells with another subdomain, so "
                            "nothing ties its fields to the rest; choose another --decomp")
    per_rank = shards // replicas
    return Replica(world, comm, reducer, world_reducer, watchdog,
                   range(replica * per_rank, (replica + 1) * per_rank), shards, subdomain,
                   faces, n_sub, role=("generator", "critic")[group] if split else "both",
                   partner=(1 - group) * replicas + replica if split else -1,
                   binding=binding)


def run_distributed(problem: FlowProblem, observed: Observed, config: TrainConfig, out: Path, *,
                    parallel: Parallel = Parallel(), shards: int | None = None, comm: Any = None,
                    decomposition: Decomposition | None = None, backend: str = "eager",
                    resume: bool = False, progress: bool = True, device: str = "cpu"
                    ) -> RunState:
    """`run_training` over the ranks of ``comm`` (default ``COMM_WORLD``): same folder,
    same checkpoint format, same guarantees.  ``out`` must be prepared by rank 0.  With a
    ``decomposition`` (of ``problem``'s grid) each subdomain trains its own players;
    returns this rank's subdomain's state.  ``device="gpu"`` binds each rank to the GPU
    of its node-local rank (`devices`)."""
    comm = comm if comm is not None else mpi().COMM_WORLD
    n_sub = len(decomposition.subdomains) if decomposition is not None else 1
    shards = shards or parallel.shards or check_layout(parallel, comm.Get_size(), n_sub)
    backend = resolve_backend(backend)
    replica = connect(comm, parallel, config, shards, decomposition,
                      bind(device, backend, comm))
    dtype = np.dtype(config.dtype)
    pieces = subdomain_problems(problem, observed, decomposition)
    problem, observed = pieces[replica.subdomain]
    snapshots = replica.binding.to_device(observed.normaliser(problem, dtype))
    split = replica.role != "both"
    steps = (make_split_steps if split else make_steps)(config, snapshots, backend,
                                                        replica.binding.handle)
    state = replica.binding.to_device(_starting_state(replica, pieces, config, out, resume))
    bar = tqdm(total=config.steps, initial=min(state.iteration, config.steps),
               desc=f"train {problem.name} ({steps.backend}, {comm.Get_size()} ranks)",
               disable=not (progress and replica.is_root), unit="it")
    good = state
    coupling = None if decomposition is None else Coupling(
        coupled_steps(config, snapshots, parallel.interface_weight, backend),
        decomposition.grid.h)
    try:
        while state.iteration < config.steps:
            start, comm_start = time.perf_counter(), replica.comm_seconds
            replica.watchdog.context = f"iteration {state.iteration + 1}"
            if split:
                state, metrics = _split_iteration(state, steps, replica, problem, observed,
                                                  config, dtype)
            else:
                state, metrics = _iteration(state, steps, replica, problem, observed, config,
                                            dtype, coupling)
            good = state
            metrics["step_time"] = time.perf_counter() - start
            metrics["comm_time"] = replica.comm_seconds - comm_start  # this rank's
            due = state.iteration == config.steps
            if replica.is_root and (state.iteration % config.log_every == 0 or due):
                append_metrics(out, state.iteration, metrics)
            if state.iteration % config.checkpoint_every == 0 or due:
                state = checkpoint(replica, out, state)
            bar.update(1)
    except KeyboardInterrupt:
        if replica.is_root and replica.comm is replica.world:  # replicas are equal: rank
            save_checkpoint(out, to_host(good))                # 0's last iteration is the run's
        raise TrainingInterrupted(f"interrupted at iteration {good.iteration}; continue from "
                                  f"the last checkpoint in {out} with --resume") from None
    finally:
        bar.close()
    return state


def subdomain_problems(problem: FlowProblem, observed: Observed,
                       decomposition: Decomposition | None) -> list[tuple[FlowProblem, Observed]]:
    """Every subdomain's problem and observations (the whole problem without one)."""
    if decomposition is None:
        return [(problem, observed)]
    return [restrict(problem, observed, decomposition, i)
            for i in range(len(decomposition.subdomains))]


@dataclass(frozen=True, eq=False)
class Coupling:
    """What a generator step of a subdomain needs for its interface term."""

    steps: CoupledSteps
    h: float  # cell size: interface points scatter within their cells


def checkpoint(replica: Replica, out: Path, state: RunState) -> RunState:
    """Rank 0 writes the one checkpoint of every subdomain atomically, from host copies
    (the replicas of a subdomain are equal: its first replica's state is sent); nobody
    continues before it is whole.  Under split placement rank 0 receives the critic's
    half of the state and returns its state with that critic; other ranks get their
    ``state`` back."""
    host = to_host(state)
    if replica.role == "critic" and replica.partner == 0:
        replica.watchdog.gather((host.critic, host.critic_opt),
                                "gathering the critic's checkpoint")
    elif replica.role != "both":
        parts = replica.watchdog.gather(None, "gathering the critic's checkpoint")
        if replica.is_root:
            critic, critic_opt = next(p for p in parts if p is not None)
            save_states(out, [dataclasses.replace(host, critic=critic, critic_opt=critic_opt)])
            state = dataclasses.replace(state, critic=critic, critic_opt=critic_opt)
    elif replica.n_subdomains == 1:
        if replica.is_root:
            save_states(out, [host])
    else:
        states = replica.watchdog.gather(host if replica.comm.Get_rank() == 0 else None,
                                         "gathering the subdomains' checkpoint")
        if replica.is_root:
            save_states(out, [s for s in states if s is not None])
    replica.watchdog.barrier("checkpoint barrier")
    return state


def _starting_state(replica: Replica, pieces: list, config: TrainConfig, out: Path,
                    resume: bool) -> RunState:
    """Fresh players (the same seed everywhere), or rank 0's checkpoint sent to all."""
    fresh = [initial_state(p, o, config) for p, o in pieces]
    if not resume:
        if replica.is_root and (out / METRICS_FILE).exists():
            (out / METRICS_FILE).unlink()
        return fresh[replica.subdomain]
    loaded, error = None, None
    if replica.is_root:
        try:
            loaded = load_states(out, fresh)
            trim_metrics(out, loaded[0].iteration)
        except TrainingError as exc:
            error = str(exc)
    loaded, error = replica.world.bcast((loaded, error), root=0)
    if error is not None:
        raise TrainingError(error)
    return loaded[replica.subdomain]


def _iteration(state: RunState, steps: Steps, replica: Replica, problem: FlowProblem,
               observed: Observed, config: TrainConfig, dtype: Any, coupling: Coupling | None
               ) -> tuple[RunState, dict]:
    i = state.iteration + 1
    gen, critic, g_opt, c_opt = (state.generators, state.critic, state.generator_opt,
                                 state.critic_opt)
    metrics: dict = {}
    batch = _batches(replica, problem, observed, config, i, dtype)
    for k in range(config.critic_steps):
        grads, m = steps.critic_gradients(critic, gen, batch(f"critic {k}"))
        grads, m = _average(replica, grads, m, i, config, "critic_grad_norm")
        critic, c_opt = steps.critic_update(critic, grads, c_opt)
        metrics.update(m)
    for k in range(config.generator_steps):
        b = batch(f"generator {k}")
        if replica.n_subdomains == 1:
            grads, m = steps.generator_gradients(gen, critic, b)
        else:
            grads, m = _coupled_gradients(gen, critic, b, replica, coupling, config, i, k, dtype)
        grads, m = _average(replica, grads, m, i, config, "generator_grad_norm")
        gen, g_opt = steps.generator_update(gen, grads, g_opt)
        metrics.update(m)
    return RunState(gen, critic, g_opt, c_opt, i), metrics


def _batches(replica: Replica, problem: FlowProblem, observed: Observed, config: TrainConfig,
             iteration: int, dtype: Any) -> Any:
    """``batch(kind)``: this rank's shards of a step's batch at ``iteration``, on its device."""
    def batch(kind: str) -> dict:
        return replica.binding.to_device(draw_shards(
            problem, observed.snapshots, config, iteration, kind, replica.owned,
            replica.shards, dtype))

    return batch


def _coupled_gradients(gen: Any, critic: Any, batch: dict, replica: Replica, coupling: Coupling,
                       config: TrainConfig, iteration: int, step: int, dtype: Any) -> tuple:
    """The generator gradient with the interface term: own interface values out to the
    neighbours, theirs in (non-blocking), then the gradient with theirs held fixed."""
    points = replica.binding.to_device([interface_points(f, config, iteration, step,
                                                         coupling.h, dtype)
                                        for f in replica.faces])
    xi = batch["xi_physics"]
    mine = [np.stack(to_host(list(coupling.steps.values(gen, xi, x, n)))) for x, n in points]
    start = time.perf_counter()
    theirs = exchange(replica.watchdog, replica.world, list(replica.faces), mine, step)
    replica.comm_seconds += time.perf_counter() - start
    theirs = replica.binding.to_device(theirs)
    terms = [(x, n, t[0], t[1]) for (x, n), t in zip(points, theirs)]
    return coupling.steps.gradients(gen, critic, batch, terms)


def _average(replica: Replica, grads: Any, metrics: dict, iteration: int, config: TrainConfig,
             norm_key: str) -> tuple[Any, dict]:
    """The replicas' mean gradient and the job's mean metrics, with each rank's
    finiteness flag; stops every rank together when any rank's numbers are bad."""
    _computed((grads, metrics))  # the step's own time is not communication time
    start = time.perf_counter()
    world = replica.world
    if replica.world_reducer is not None:  # subdomains: gradients within, metrics across
        grads = replica.reducer.mean_tree(grads)
        metrics = dict(metrics, **{norm_key: global_norm(grads)})
    names = sorted(metrics)
    local = np.array([float(metrics[k]) for k in names])
    bad = np.zeros(world.Get_size())
    bad[world.Get_rank()] = not _sound(local, config)
    if replica.world_reducer is None:
        grads, local, bad = replica.reducer.mean_tree((grads, local, bad))
    else:
        local, bad = replica.world_reducer.mean_tree((local, bad))
    averaged = dict(zip(names, map(float, local)))
    if replica.world_reducer is None:
        averaged[norm_key] = float(global_norm(grads))  # the norm of the step actually taken
    _stop_if_bad(world, bad, averaged, iteration, config)
    replica.comm_seconds += time.perf_counter() - start
    return grads, averaged


def _computed(tree: Any) -> None:
    """Wait until the arrays of ``tree`` are computed: a compiled step returns before its
    results are, and the wait would otherwise be timed as the all-reduce's."""
    for leaf in ad.tree_leaves(tree):
        wait = getattr(leaf, "block_until_ready", None)
        if wait is not None:
            wait()


def _sound(values: np.ndarray, config: TrainConfig) -> bool:
    return all(math.isfinite(v) and abs(v) <= config.divergence_limit for v in values)


def _stop_if_bad(world: Any, bad: np.ndarray, averaged: dict, iteration: int,
                 config: TrainConfig) -> None:
    """Every rank raises the same `TrainingDiverged` when any rank flagged its numbers
    (``bad`` is the all-reduced flag vector), or when the averaged metrics diverge."""
    culprits = [r for r, flag in enumerate(bad) if flag > 0]
    if culprits:
        raise TrainingDiverged(
            f"training stopped at iteration {iteration} on all {world.Get_size()} ranks: "
            f"rank{'s' if len(culprits) > 1 else ''} {', '.join(map(str, culprits))} computed a "
            "non-finite or diverging loss or gradient; the last good checkpoint was kept. Lower "
            "the learning rates, raise gp_lambda, or check the data for NaN")
    check_finite(averaged, iteration, config.divergence_limit)


# ---- --placement split ---------------------------------------------------------------------

_CRITIC_METRICS = ("critic_grad_norm", "critic_loss", "penalty", "wasserstein")
_GENERATOR_METRICS = ("adversarial", "bc", "generator_grad_norm", "generator_loss", "pde")
_SNAPSHOT_TAG, _COTANGENT_TAG = 5100, 5200


def _split_iteration(state: RunState, steps: SplitSteps, replica: Replica, problem: FlowProblem,
                     observed: Observed, config: TrainConfig, dtype: Any
                     ) -> tuple[RunState, dict]:
    """One iteration of a generator rank or of a critic rank (`placement`)."""
    i = state.iteration + 1
    gen, critic, g_opt, c_opt = (state.generators, state.critic, state.generator_opt,
                                 state.critic_opt)
    generator = replica.role == "generator"
    shape = (config.batch // replica.shards * len(replica.owned), len(observed.snapshots[0]))
    metrics: dict = {}
    batch = _batches(replica, problem, observed, config, i, dtype)
    for k in range(config.critic_steps):
        b = batch(f"critic {k}")
        if generator:
            fake = np.ascontiguousarray(to_host(steps.snapshots(gen, b["xi"])), dtype)
            _talk(replica, [replica.world.Isend(fake, replica.partner, _SNAPSHOT_TAG)],
                  "sending snapshots to the critic")
            _, m = _share(replica, None, {}, _CRITIC_METRICS, i, config)
        else:
            fake = _receive(replica, shape, dtype, _SNAPSHOT_TAG, "snapshots from the generators")
            grads, m = steps.critic_gradients(critic, replica.binding.to_device(fake), b)
            grads, m = _share(replica, grads, m, _CRITIC_METRICS, i, config)
            critic, c_opt = steps.critic_update(critic, grads, c_opt)
        metrics.update(m)
    for k in range(config.generator_steps):
        if generator:
            b = batch(f"generator {k}")
            fake = np.ascontiguousarray(to_host(steps.snapshots(gen, b["xi"])), dtype)
            reply = np.empty(1 + fake.size, dtype)
            requests = [replica.world.Isend(fake, replica.partner, _SNAPSHOT_TAG),
                        replica.world.Irecv(reply, replica.partner, _COTANGENT_TAG)]
            physics, terms = steps.physics_gradients(gen, b)  # while the critic works
            _talk(replica, requests, "exchanging snapshots and cotangents with the critic")
            cotangent = replica.binding.to_device(reply[1:].reshape(fake.shape))
            grads = steps.adversarial_gradients(gen, b["xi"], cotangent, physics)
            grads, m = _share(replica, grads, generator_metrics(config, terms, reply[0]),
                              _GENERATOR_METRICS, i, config)
            gen, g_opt = steps.generator_update(gen, grads, g_opt)
        else:
            fake = _receive(replica, shape, dtype, _SNAPSHOT_TAG, "snapshots from the generators")
            value, cotangent = to_host(steps.adversarial_cotangent(
                critic, replica.binding.to_device(fake)))
            reply = np.concatenate([np.reshape(np.asarray(value, dtype), 1),
                                    np.asarray(cotangent, dtype).ravel()])
            _talk(replica, [replica.world.Isend(reply, replica.partner, _COTANGENT_TAG)],
                  "sending cotangents to the generators")
            _, m = _share(replica, None, {}, _GENERATOR_METRICS, i, config)
        metrics.update(m)
    return RunState(gen, critic, g_opt, c_opt, i), metrics


def _talk(replica: Replica, requests: list, what: str) -> None:
    start = time.perf_counter()
    replica.watchdog.waitall(requests, f"{what} (rank {replica.partner})")
    replica.comm_seconds += time.perf_counter() - start


def _receive(replica: Replica, shape: tuple, dtype: Any, tag: int, what: str) -> np.ndarray:
    out = np.empty(shape, dtype)
    _talk(replica, [replica.world.Irecv(out, replica.partner, tag)], f"receiving {what}")
    return out


def _share(replica: Replica, grads: Any, metrics: dict, names: tuple[str, ...],
           iteration: int, config: TrainConfig) -> tuple[Any, dict]:
    """Split placement's `_average`: the gradient (``None`` on the other role's ranks) is
    averaged over this role's ranks; the step's metrics ``names``, held by one role, and
    every rank's finiteness flag over the world."""
    start = time.perf_counter()
    world = replica.world
    if grads is not None:
        grads = replica.reducer.mean_tree(grads)
        metrics = dict(metrics, **{next(k for k in names if k.endswith("grad_norm")):
                                   global_norm(grads)})
    local = np.array([float(metrics.get(k, 0.0)) for k in names])
    held = np.array([k in metrics for k in names], np.float64)
    bad = np.zeros(world.Get_size())
    bad[world.Get_rank()] = not _sound(local, config)
    local, held, bad = replica.world_reducer.sum([local, held, bad])
    averaged = {k: float(v / n) for k, v, n in zip(names, local, held)}
    _stop_if_bad(world, bad, averaged, iteration, config)
    replica.comm_seconds += time.perf_counter() - start
    return grads, averaged
