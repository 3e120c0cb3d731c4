"""``wengert-hpcgan bench``: weak and strong scaling of distributed training, measured by
launching ``mpiexec -n N wengert-hpcgan train`` for each configuration.

A configuration is (mode, ranks, decomposition, backend, preset); the replicas are
``ranks / subdomains``.  *Weak* scaling keeps the realisations per replica fixed (the
batch grows with the replicas), *strong* scaling keeps the whole batch fixed.  Every
run trains ``steps`` iterations with one rank bound to one core (no oversubscription);
the medians of rank 0's ``step_time`` and ``comm_time`` over the iterations after the
``warmup`` (compilation) are reported with the FLOPs of an iteration (counted, and XLA's
cost analysis for the compiled backend), the achieved FLOP/s, the communication
fraction, and the efficiency against the configuration of the same mode and
decomposition with the fewest ranks: ``t_1 / t_N`` (weak), ``t_1 R_1 / (t_N R_N)``
(strong).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..distributed.decomposition import DEFAULT_OVERLAP, parse_decomp
from ..distributed.loop import subdomain_problems
from ..distributed.runs import site_decomposition
from ..errors import HpcganError
from ..montecarlo import DATASET_FILE, simulate
from ..pigan.config import TrainConfig, make_config, parse_overrides
from ..pigan.problem import site_problem
from ..pigan.steps import resolve_backend
from ..pigan.training import Observed, initial_state, read_metrics
from ..presets import Preset, load_preset
from .flops import analytic_flops, xla_flops

MODES = ("weak", "strong")


class BenchError(HpcganError):
    """A benchmark cannot run as asked (the message names the fix)."""


@dataclass(frozen=True)
class Configuration:
    mode: str  # weak or strong
    ranks: int
    decomp: str  # PxQ
    subdomains: int
    backend: str
    preset: str
    batch: int  # the whole job's batch (realisations per critic/adversarial step)
    physics_batch: int

    @property
    def replicas(self) -> int:
        return self.ranks // self.subdomains


@dataclass
class Measurement:
    config: Configuration
    step_seconds: float  # median over the measured iterations (rank 0)
    comm_seconds: float  # median time in all-reduces and interface exchanges (rank 0)
    iterations: int  # measured (after the warm-up)
    flops: float  # counted FLOPs of one iteration of the whole job
    xla_flops: float | None  # XLA's cost analysis of the same (1x1 decomposition only)
    efficiency: float = field(default=float("nan"))
    base_ranks: int = 0

    @property
    def comm_fraction(self) -> float:
        return self.comm_seconds / self.step_seconds

    @property
    def flop_rate(self) -> float:
        return self.flops / self.step_seconds

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(replicas=self.config.replicas, comm_fraction=self.comm_fraction,
                   flop_rate=self.flop_rate)
        return out


def free_cores() -> int:
    """The cores this process may run on (the affinity mask, as XLA and MPI see it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def launcher() -> list[str]:
    """``mpiexec`` with one core per rank: MPICH's Hydra or Open MPI, beside this Python
    (the ``mpich`` wheel) or on ``PATH``."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise BenchError("no mpiexec found: pip install 'wengert-hpcgan[mpi]' (mpi4py and the "
                         "mpich wheel), or put a system MPI's mpiexec on PATH")
    version = subprocess.run([found, "--version"], capture_output=True, text=True,
                             check=False).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        return [found, "--bind-to", "core"]
    return [found, "-bind-to", "core"]


def configurations(preset: str, ranks: list[int], modes: list[str], decomps: list[str],
                   backend: str, per_replica: int, physics_per_replica: int, *,
                   oversubscribe: bool = False) -> list[Configuration]:
    """Every (mode, decomposition, ranks) to run, checked before anything is launched."""
    cores = free_cores()
    if not oversubscribe and max(ranks) > cores:
        raise BenchError(f"--ranks {max(ranks)} exceeds the {cores} free cores: ranks sharing "
                         "a core measure the scheduler, not the scaling; list fewer ranks or "
                         "pass --oversubscribe")
    out = []
    for mode in modes:
        if mode not in MODES:
            raise BenchError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        for decomp in decomps:
            p, q = parse_decomp(decomp)
            subdomains = p * q
            counts = [n for n in ranks if n % subdomains == 0]
            if not counts:
                raise BenchError(f"--decomp {decomp} needs rank counts that are multiples of "
                                 f"{subdomains}; none of --ranks {ranks} is")
            most = max(counts) // subdomains
            for n in sorted(counts):
                replicas = n // subdomains
                scale = replicas if mode == "weak" else most
                out.append(Configuration(mode, n, decomp, subdomains, backend, preset,
                                         per_replica * scale, physics_per_replica * scale))
                if mode == "strong" and (out[-1].batch % replicas
                                         or out[-1].physics_batch % replicas):
                    raise BenchError(f"strong scaling: a batch of {out[-1].batch} (physics "
                                     f"{out[-1].physics_batch}) does not split into {replicas} "
                                     "replicas; choose --per-replica values divisible by them")
    return out


def train_config(preset: Preset, overrides: dict, config: Configuration) -> TrainConfig:
    return make_config((preset.train, f"preset {preset.name}"), (overrides, "--set"),
                       ({"batch": config.batch, "physics_batch": config.physics_batch},
                        "bench"))


def iteration_flops(preset: Preset, overrides: dict, config: Configuration,
                    xla_cache: dict) -> tuple[float, float | None]:
    """Counted FLOPs of one iteration of the whole job, and XLA's (single domain, xla
    backend; cached per per-replica batch, as compiling costs tens of seconds)."""
    train = train_config(preset, overrides, config)
    per_replica = replace(train, batch=train.batch // config.replicas,
                          physics_batch=train.physics_batch // config.replicas)
    problem = site_problem(preset, train.problem, pump_width=train.pump_width,
                           well_limit=train.well_limit)
    kc, kh = len(problem.conductivity_wells), len(problem.head_wells)
    observed = Observed(np.random.default_rng(0).standard_normal((8, kc + kh)), kc)
    decomposition = site_decomposition(preset, {"decomp": config.decomp,
                                                "overlap": DEFAULT_OVERLAP})
    total = 0
    for i, (piece, obs) in enumerate(subdomain_problems(problem, observed, decomposition)):
        faces = 0 if decomposition is None else len(decomposition.neighbours(i))
        state = initial_state(piece, obs, per_replica)
        total += analytic_flops(piece, per_replica, state.generators, state.critic,
                                faces * per_replica.boundary).iteration
    xla = None
    if config.backend != "eager" and config.subdomains == 1:
        key = (per_replica.batch, per_replica.physics_batch)
        if key not in xla_cache:
            counted = xla_flops(problem, per_replica)
            xla_cache[key] = None if counted is None else counted.iteration
        xla = None if xla_cache[key] is None else xla_cache[key] * config.replicas
    return float(total * config.replicas), None if xla is None else float(xla)


# One core per rank: BLAS and XLA's own thread pools would otherwise let the one-rank
# baseline use every core, and weak scaling would measure thread contention instead.
ONE_CORE_PER_RANK = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""),
                                        "--xla_cpu_multi_thread_eigen=false",
                                        "intra_op_parallelism_threads=1"])),
}


def run_configuration(config: Configuration, data: Path, work: Path, steps: int, warmup: int,
                      overrides: list[str], timeout: float) -> tuple[float, float, int]:
    """Train ``config`` under mpiexec; the medians of rank 0's step and communication
    times after the warm-up, and how many iterations they are over."""
    out = work / f"{config.mode}-{config.decomp}-{config.ranks}"
    shutil.rmtree(out, ignore_errors=True)
    command = [*launcher(), "-n", str(config.ranks), sys.executable, "-m", "wengert.hpcgan.cli",
               "train", "--preset", config.preset, "--data", str(data), "--out", str(out),
               "--backend", config.backend, "--steps", str(steps), "--quiet",
               "--replicas", str(config.replicas), "--decomp", config.decomp,
               "--set", *overrides, f"batch={config.batch}",
               f"physics_batch={config.physics_batch}", "log_every=1",
               f"checkpoint_every={steps + 1}"]
    env = dict(os.environ, **ONE_CORE_PER_RANK)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(command)} ran longer than {timeout:.0f} s; pass fewer "
                         "--steps or a longer --timeout") from None
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed (exit {done.returncode}):\n"
                         f"{done.stderr[-2000:]}")
    rows = read_metrics(out)[warmup:]
    if not rows:
        raise BenchError(f"--steps {steps} leaves no iteration after the {warmup} warm-up ones")
    return (statistics.median(r["step_time"] for r in rows),
            statistics.median(r["comm_time"] for r in rows), len(rows))


def with_efficiencies(measurements: list[Measurement]) -> list[Measurement]:
    """Each measurement's efficiency against the one of its mode and decomposition with
    the fewest ranks."""
    for m in measurements:
        group = [o for o in measurements
                 if (o.config.mode, o.config.decomp) == (m.config.mode, m.config.decomp)]
        base = min(group, key=lambda o: o.config.ranks)
        ratio = base.step_seconds / m.step_seconds
        m.efficiency = ratio if m.config.mode == "weak" else (
            ratio * base.config.replicas / m.config.replicas)
        m.base_ranks = base.config.ranks
    return measurements


def markdown_table(measurements: list[Measurement], header: str) -> str:
    """The results as a Markdown table (paste-ready for the README)."""
    lines = [header, "",
             ("| mode | decomp | ranks | replicas | backend | batch | step ms | comm % "
              "| GFLOP/it counted | GFLOP/it XLA | GFLOP/s | efficiency |"),
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in measurements:
        c = m.config
        xla = "—" if m.xla_flops is None else f"{m.xla_flops / 1e9:.4g}"
        base = "" if c.ranks == m.base_ranks else f" (vs {m.base_ranks})"
        lines.append(f"| {c.mode} | {c.decomp} | {c.ranks} | {c.replicas} | {c.backend} | "
                     f"{c.batch} | {m.step_seconds * 1e3:.1f} | {100 * m.comm_fraction:.1f} | "
                     f"{m.flops / 1e9:.4g} | {xla} | {m.flop_rate / 1e9:.3g} | "
                     f"{100 * m.efficiency:.1f} %{base} |")
    return "\n".join(lines) + "\n"


def machine_line(load_before: tuple, load_after: tuple) -> str:
    """What the reader needs to judge the numbers: cores, and the load around the runs."""
    return (f"{free_cores()} free cores; load average (1 min) {load_before[0]:.1f} before, "
            f"{load_after[0]:.1f} after — a load above the cores in use means other work "
            "shared them and the numbers are contended")


def run_scaling(preset_name: str, *, ranks: list[int], modes: list[str], decomps: list[str],
                backend: str, steps: int, warmup: int, per_replica: int | None,
                physics_per_replica: int | None, overrides: list[str], data: str | None,
                work: str | None, timeout: float, oversubscribe: bool = False,
                progress: bool = True) -> tuple[list[Measurement], str]:
    """Run every configuration; the measurements (with efficiencies) and the machine line."""
    preset = load_preset(preset_name)
    parsed = parse_overrides(overrides)
    base = make_config((preset.train, f"preset {preset.name}"), (parsed, "--set"))
    try:
        backend = resolve_backend(backend)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    configs = configurations(preset.name, ranks, modes, decomps, backend,
                             per_replica or base.batch,
                             physics_per_replica or base.physics_batch,
                             oversubscribe=oversubscribe)
    folder = Path(work) if work else Path(f"hpcgan-bench-{preset.name}")
    folder.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = folder / "data"
        if not (data / DATASET_FILE).exists():
            simulate(preset, data, samples=64, seed=0, progress=False)
    load_before = os.getloadavg()
    results, xla_cache = [], {}
    for config in configs:
        step, comm, n = run_configuration(config, Path(data), folder, steps, warmup, overrides,
                                          timeout)
        flops, counted_by_xla = iteration_flops(preset, parsed, config, xla_cache)
        results.append(Measurement(config, step, comm, n, flops, counted_by_xla))
        if progress:
            print(f"  {config.mode} {config.decomp} {config.ranks} rank(s): "
                  f"{step * 1e3:.1f} ms per iteration", file=sys.stderr, flush=True)
    return with_efficiencies(results), machine_line(load_before, os.getloadavg())


def write_results(measurements: list[Measurement], machine: str, json_path: str | None,
                  markdown_path: str | None) -> str:
    """The Markdown table (returned), also written to the files asked for."""
    table = markdown_table(measurements, f"Measured on {machine}.")
    if json_path:
        Path(json_path).write_text(json.dumps(
            {"machine": machine, "measurements": [m.to_dict() for m in measurements]},
            indent=1) + "\n")
    if markdown_path:
        Path(markdown_path).write_text(table)
    return table
