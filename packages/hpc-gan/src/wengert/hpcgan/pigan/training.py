"""The PI-GAN training loop: explicit state, atomic checkpoints, metrics, safe stops.

A run folder holds ``run.json`` (what the run is: preset, problem, configuration,
dataset), ``checkpoint.safetensors`` (both players, both optimiser states and the
iteration, one file written atomically through ``nn.save``) and ``metrics.jsonl``.
Every random draw of iteration ``i`` comes from a generator seeded by ``(seed, i)``,
so a run resumed from a checkpoint continues exactly as the uninterrupted run would.
A non-finite or diverging loss stops the run before anything is written, so the
last good checkpoint stays; Ctrl-C writes a checkpoint of the last whole iteration.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from wengert import ad, nn

from ..errors import TrainingDiverged, TrainingError, TrainingInterrupted
from ..files import write_atomically
from .config import TrainConfig
from .losses import Snapshots
from .networks import FieldGenerator, Generators, cast, discriminator
from .problem import FlowProblem
from .steps import Steps, draw_batch, make_steps, optimisers

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.jsonl"
RUN_FORMAT = "wengert-hpcgan PI-GAN run"


@dataclass
class RunState:
    """Everything a training run carries from one iteration to the next."""

    generators: Generators
    critic: Any
    generator_opt: nn.OptState
    critic_opt: nn.OptState
    iteration: int = 0


@dataclass(frozen=True, eq=False)
class Observed:
    """The training observations: real snapshots (Y at the network's conductivity wells,
    then u at its head wells), one row per Monte Carlo realisation."""

    snapshots: np.ndarray  # (N, kc + kh)
    n_conductivity: int

    def normaliser(self, problem: FlowProblem, dtype: Any) -> Snapshots:
        std = self.snapshots.std(axis=0)
        return Snapshots(problem.conductivity_wells.astype(dtype),
                         problem.head_wells.astype(dtype),
                         self.snapshots.mean(axis=0).astype(dtype),
                         np.where(std > 0, std, 1.0).astype(dtype))


def initial_state(problem: FlowProblem, observed: Observed, config: TrainConfig) -> RunState:
    """Fresh players from ``config.seed``.  Each generator's output is scaled to the
    observed mean and spread of its field (the prior's ``0, 1`` where nothing of it is
    observed), so the networks learn O(1) corrections."""
    dtype = np.dtype(config.dtype)
    rng = np.random.default_rng([config.seed, 0x5EED])
    kc = observed.n_conductivity
    Y_obs, u_obs = observed.snapshots[:, :kc], observed.snapshots[:, kc:]

    def generator(values: np.ndarray) -> FieldGenerator:
        offset, scale = (float(values.mean()), float(values.std())) if values.size else (0.0, 1.0)
        return FieldGenerator(problem.dim, config.latent_dim, config.width, config.depth,
                              offset=offset, scale=scale if scale > 0 else 1.0, rng=rng)

    gen = cast(Generators(generator(Y_obs), generator(u_obs)), dtype)
    critic = discriminator(observed.snapshots.shape[1], config.critic_width,
                           config.critic_depth, rng=rng, dtype=dtype)
    opt_g, opt_c = optimisers(config)
    return RunState(gen, critic, _counted(opt_g.init(gen)), _counted(opt_c.init(critic)))


def _counted(state: nn.OptState) -> nn.OptState:
    """The step count as an integer array: a compiled step then takes it as an input
    instead of compiling a new program for every count."""
    return dataclasses.replace(state, step=np.asarray(state.step, np.int64))


# ---- checkpoints ---------------------------------------------------------------------------

def checkpoint_tree(state: RunState) -> dict:
    """The tree a checkpoint file stores for ``state`` (players, optimiser moments, step
    counts): the one layout shared by single-process and distributed checkpoints."""
    return {"generators": state.generators, "critic": state.critic,
            "generator_opt": ad.tree_leaves(state.generator_opt.tree),
            "critic_opt": ad.tree_leaves(state.critic_opt.tree),
            "steps": np.array([state.iteration, int(state.generator_opt.step),
                               int(state.critic_opt.step)], np.int64)}


def save_checkpoint(folder: Path, state: RunState) -> Path:
    """Write the run state atomically (the old checkpoint stays until the new one is whole)."""
    host = ad.tree_map(np.asarray, checkpoint_tree(state))
    return nn.save(folder / CHECKPOINT_FILE, host)


def load_checkpoint(folder: Path, like: RunState) -> RunState:
    """The run state saved in ``folder``, shaped like ``like`` (a fresh initial state)."""
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        raise TrainingError(f"{folder} has no checkpoint ({CHECKPOINT_FILE} is missing); start "
                            "the run without --resume")
    try:
        tree = nn.load(path, checkpoint_tree(like))
    except Exception as exc:  # truncated, corrupted or of another model: never half-load
        raise TrainingError(f"cannot read the checkpoint {path} ({exc}); it is damaged or "
                            "belongs to another configuration: start a new run in another "
                            "--out folder") from exc
    return state_from_tree(tree, like)


def state_from_tree(tree: dict, like: RunState) -> RunState:
    """The run state of a checkpoint's tree (as read by ``nn.load`` in ``like``'s shape)."""
    iteration, g_step, c_step = (int(s) for s in tree["steps"])

    def opt(old: nn.OptState, leaves: list, step: int) -> nn.OptState:
        _, treedef = ad.tree_flatten(old.tree)
        return nn.OptState(np.asarray(step, np.int64), ad.tree_unflatten(treedef, leaves))

    return RunState(tree["generators"], tree["critic"],
                    opt(like.generator_opt, tree["generator_opt"], g_step),
                    opt(like.critic_opt, tree["critic_opt"], c_step), iteration)


# ---- the run folder ----------------------------------------------------------------------

def write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2).encode()
    write_atomically(path, lambda handle: handle.write(text))


def prepare_run_folder(out: Path, description: dict, resume: bool) -> None:
    """Create ``out`` for a new run, or check that it holds the run being resumed.

    ``description`` is what must match on resume: preset, problem, dataset, configuration
    fingerprint.  A folder holding another run is never overwritten.
    """
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} exists and is not a folder; choose another --out")
    run_file = out / RUN_FILE
    if not resume:
        if run_file.exists():
            raise TrainingError(f"{out} already holds a run; pass --resume to continue it, or "
                                "choose another --out")
        try:
            out.mkdir(parents=True, exist_ok=True)
            write_json(run_file, {"format": RUN_FORMAT, **description})
        except OSError as exc:
            raise TrainingError(f"cannot create the run folder {out} ({exc.strerror}); choose "
                                "another --out") from exc
        return
    if not run_file.exists():
        raise TrainingError(f"nothing to resume in {out}: {RUN_FILE} is missing; start the run "
                            "without --resume")
    try:
        saved = json.loads(run_file.read_text())
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot read {run_file} ({exc}); start a new run in another "
                            "--out") from exc
    differences = sorted(_differences(saved, {"format": RUN_FORMAT, **description}))
    if differences:
        raise TrainingError(f"cannot resume {out} with a changed setup: "
                            f"{'; '.join(differences)}. Resume with the original settings, "
                            "or start a new run in another --out")


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{where}.{key}" if where else key)
        return out
    return [] if old == new else [f"{where} was {old!r}, now {new!r}"]


def read_metrics(out: Path) -> list[dict]:
    path = out / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # a line cut by a kill: everything before it is whole
    return rows


def trim_metrics(out: Path, iteration: int) -> None:
    """On resume, keep only the metrics up to the checkpoint's ``iteration``: the log then
    reads as one continuous run."""
    rows = [r for r in read_metrics(out) if r["iteration"] <= iteration]
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    write_atomically(out / METRICS_FILE, lambda handle: handle.write(text))


# ---- the loop ----------------------------------------------------------------------------

def check_finite(metrics: dict, iteration: int, limit: float) -> None:
    """Raise `TrainingDiverged`, naming the metric and the remedies, when a metric is not
    finite or above ``limit``: the caller then keeps its last good checkpoint."""
    for name, value in metrics.items():
        if not math.isfinite(value) or abs(value) > limit:
            raise TrainingDiverged(
                f"training stopped at iteration {iteration}: {name} = {value:g} "
                f"({'not finite' if not math.isfinite(value) else f'above {limit:g}'}); "
                "the last good checkpoint was kept. Lower the learning rates, raise gp_lambda, "
                "or check the data for NaN")


def run_training(problem: FlowProblem, observed: Observed, config: TrainConfig, out: Path, *,
                 backend: str = "eager", resume: bool = False, progress: bool = True,
                 to_device: Callable[[Any], Any] | None = None,
                 on_iteration: Callable[[RunState, dict], None] | None = None) -> RunState:
    """Train ``config.steps`` iterations (each ``critic_steps`` critic updates, then
    ``generator_steps`` generator updates), checkpointing into ``out``; returns the state.

    ``out`` must already be prepared (`prepare_run_folder`).  ``to_device`` moves state
    and batches (for ``--device gpu``).
    """
    move = to_device or (lambda tree: tree)
    dtype = np.dtype(config.dtype)
    snapshots = observed.normaliser(problem, dtype)
    steps = make_steps(config, snapshots, backend)
    state = initial_state(problem, observed, config)
    if resume:
        state = load_checkpoint(out, state)
        trim_metrics(out, state.iteration)
    elif (out / METRICS_FILE).exists():
        (out / METRICS_FILE).unlink()
    state = move(state)
    bar = tqdm(total=config.steps, initial=min(state.iteration, config.steps),
               desc=f"train {problem.name} ({steps.backend})", disable=not progress,
               unit="it")
    good = state
    try:
        while state.iteration < config.steps:
            start = time.perf_counter()
            state, metrics = _iteration(state, steps, problem, observed, config, move, dtype)
            metrics = {k: float(v) for k, v in metrics.items()}
            check_finite(metrics, state.iteration, config.divergence_limit)
            good = state
            metrics["step_time"] = time.perf_counter() - start
            if state.iteration % config.log_every == 0 or state.iteration == config.steps:
                append_metrics(out, state.iteration, metrics)
                bar.set_postfix({k: f"{metrics[k]:.3g}" for k in ("wasserstein", "pde", "bc")
                                 if k in metrics}, refresh=False)
            if state.iteration % config.checkpoint_every == 0 or state.iteration == config.steps:
                save_checkpoint(out, state)
            if on_iteration is not None:
                on_iteration(state, metrics)
            bar.update(1)
    except KeyboardInterrupt:
        save_checkpoint(out, good)
        raise TrainingInterrupted(f"interrupted: iteration {good.iteration} was checkpointed in "
                                  f"{out}; continue with --resume") from None
    finally:
        bar.close()
    return state


def _iteration(state: RunState, steps: Steps, problem: FlowProblem, observed: Observed,
               config: TrainConfig, move: Callable, dtype: Any) -> tuple[RunState, dict]:
    i = state.iteration + 1
    gen, critic, g_opt, c_opt = (state.generators, state.critic, state.generator_opt,
                                 state.critic_opt)
    metrics: dict = {}
    for k in range(config.critic_steps):
        batch = move(draw_batch(problem, observed.snapshots, config, i, f"critic {k}", dtype))
        critic, c_opt, m = steps.critic_step(critic, gen, c_opt, batch)
        metrics.update(m)
    for k in range(config.generator_steps):
        batch = move(draw_batch(problem, observed.snapshots, config, i, f"generator {k}", dtype))
        gen, g_opt, m = steps.generator_step(gen, critic, g_opt, batch)
        metrics.update(m)
    return RunState(gen, critic, g_opt, c_opt, i), metrics


def append_metrics(out: Path, iteration: int, metrics: dict) -> None:
    """Append one iteration's row to ``metrics.jsonl``, flushed to disk (a kill leaves at
    most a cut last line, which `read_metrics` drops)."""
    with open(out / METRICS_FILE, "a") as handle:
        handle.write(json.dumps({"iteration": iteration, **metrics}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
