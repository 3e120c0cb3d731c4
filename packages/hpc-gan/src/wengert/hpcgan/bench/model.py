"""``wengert-hpcgan bench model``: an α–β model of the data-parallel iteration, fitted to
measurements on this machine and extrapolated to 27,500 GPUs on 4,584 nodes.

Measured here: the compute time ``T_c`` of one iteration (the 1-rank weak-scaling run
of ``bench``), the gradient sizes, and point-to-point and ``Allreduce`` times for 8 B to
2 MiB between ranks of this machine (`probe`), to which ``t(n) = α + β n`` is fitted —
intra-node only, as one machine has no inter-node link.  Assumed (labelled so): the
inter-node ``α_e``, ``β_e`` (default 2 µs and 12.5 GB/s: one EDR InfiniBand rail of a
Summit node, which has two) and ``g = 6`` GPUs per node.  Modelled, for ``P`` ranks on
``N = ⌈P/g⌉`` nodes and a message of ``n`` bytes:

    A(p, n; α, β) = 2⌈log2 p⌉ α + 2 (p−1)/p · n β     (recursive halving and doubling)
    R(p, n; α, β) = 2 (p−1) α + 2 (p−1)/p · n β          (ring)
    flat:          T = A(P, n; α_i, β_i)  if P ≤ g,
                   else min(R(P, n; α_e, β_e), A(P, n; α_e, g β_e))
                   (MPI's better algorithm: the ring is latency-bound, recursive halving
                   makes the g ranks of a node share its link)
    hierarchical:  T = 2⌈log2 m⌉ α_i + 4 (m−1)/m · n β_i + A(N, n; α_e, β_e),  m = min(P, g)
                   (reduce to the node leader and broadcast back, each as a scatter and a
                   gather inside the node; the N leaders all-reduce across nodes)
    E(P) = T_c / (T_c + Σ_messages T(P, n))                (weak scaling, no overlap)

An iteration all-reduces ``critic_steps`` critic gradients and ``generator_steps``
generator gradients.  Everything beyond the measured rank counts is modelled.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from wengert import ad

from ..pigan.config import make_config, parse_overrides
from ..pigan.problem import site_problem
from ..pigan.training import Observed, initial_state
from ..presets import load_preset
from .scaling import BenchError, Measurement, launcher

GPUS_PER_NODE = 6
SUMMIT_GPUS, SUMMIT_NODES = 27_500, 4_584
ASSUMED_INTER_ALPHA = 2e-6  # s: MPI latency across an EDR InfiniBand fabric
ASSUMED_INTER_BANDWIDTH = 12.5e9  # B/s: one EDR rail (100 Gb/s)
TARGET = 0.931  # SC19's weak-scaling efficiency at 27,500 GPUs


@dataclass(frozen=True)
class Link:
    alpha: float  # seconds per message
    beta: float  # seconds per byte

    def describe(self) -> str:
        bandwidth = f"{1 / self.beta / 1e9:.2f} GB/s" if self.beta > 0 else "unbounded"
        return f"α = {self.alpha * 1e6:.2f} µs, 1/β = {bandwidth}"


def fit(sizes: list[int], seconds: list[float]) -> Link:
    """``t = α + β n`` by least squares on the relative error (sizes span six decades:
    plain least squares would let the largest messages decide α), clipped at 0."""
    t = np.asarray(seconds, float)
    A = np.stack([np.ones(len(sizes)), np.asarray(sizes, float)], axis=1) / t[:, None]
    (alpha, beta), *_ = np.linalg.lstsq(A, np.ones(len(t)), rcond=None)
    return Link(max(float(alpha), 0.0), max(float(beta), 0.0))


def allreduce_seconds(parties: np.ndarray, n: float, link: Link) -> np.ndarray:
    """``A(p, n; α, β)``, recursive halving and doubling: zero for one party."""
    p = np.asarray(parties, float)
    steps = np.ceil(np.log2(np.maximum(p, 1)))
    return np.where(p > 1, 2 * steps * link.alpha + 2 * (p - 1) / p * n * link.beta, 0.0)


def ring_seconds(parties: np.ndarray, n: float, link: Link) -> np.ndarray:
    """``R(p, n; α, β)``, the ring all-reduce."""
    p = np.asarray(parties, float)
    return 2 * (p - 1) * link.alpha + 2 * (p - 1) / p * n * link.beta


def flat_seconds(ranks: np.ndarray, n: float, intra: Link, inter: Link,
                 per_node: int = GPUS_PER_NODE) -> np.ndarray:
    shared = Link(inter.alpha, inter.beta * per_node)
    across = np.minimum(ring_seconds(ranks, n, inter), allreduce_seconds(ranks, n, shared))
    return np.where(ranks <= per_node, allreduce_seconds(ranks, n, intra), across)


def hierarchical_seconds(ranks: np.ndarray, n: float, intra: Link, inter: Link,
                         per_node: int = GPUS_PER_NODE) -> np.ndarray:
    local = np.minimum(np.asarray(ranks, float), per_node)
    node = (2 * np.ceil(np.log2(local)) * intra.alpha
            + 4 * (local - 1) / local * n * intra.beta)
    return node + allreduce_seconds(np.ceil(np.asarray(ranks) / per_node), n, inter)


def efficiency(compute: float, comm: np.ndarray) -> np.ndarray:
    return compute / (compute + comm)


@dataclass
class ModelResult:
    compute_seconds: float
    message_bytes: list[int]  # one all-reduce per entry, per iteration
    p2p: Link  # fitted to the probe
    allreduce: Link  # fitted to the probe
    intra: Link  # what the model uses inside a node: p2p, unless one was assumed
    inter: Link
    ranks: np.ndarray
    flat: np.ndarray
    hierarchical: np.ndarray
    measured: list[tuple[int, float]]  # (ranks, weak efficiency)
    probe: dict
    runs: list[Measurement]  # the weak-scaling runs behind T_c and the measured points

    def at(self, ranks: int) -> tuple[float, float]:
        flat = sum(flat_seconds(np.array([ranks]), n, self.intra, self.inter)[0]
                   for n in self.message_bytes)
        hier = sum(hierarchical_seconds(np.array([ranks]), n, self.intra, self.inter)[0]
                   for n in self.message_bytes)
        return (float(efficiency(self.compute_seconds, flat)),
                float(efficiency(self.compute_seconds, hier)))


def gradient_messages(preset_name: str, overrides: list[str]) -> list[int]:
    """The bytes of each all-reduce of one iteration (the players' parameters)."""
    preset = load_preset(preset_name)
    config = make_config((preset.train, f"preset {preset.name}"),
                         (parse_overrides(overrides), "--set"))
    problem = site_problem(preset, config.problem, pump_width=config.pump_width,
                           well_limit=config.well_limit)
    kc, kh = len(problem.conductivity_wells), len(problem.head_wells)
    observed = Observed(np.random.default_rng(0).standard_normal((8, kc + kh)), kc)
    state = initial_state(problem, observed, config)

    def size(tree: object) -> int:
        return sum(np.asarray(a).nbytes for a in ad.tree_leaves(tree) if hasattr(a, "shape"))

    return ([size(state.critic)] * config.critic_steps
            + [size(state.generators)] * config.generator_steps)


def run_probe(ranks: int = 2, repeats: int = 30) -> dict:
    """Launch `probe` under mpiexec and read its timings."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.json"
        done = subprocess.run([*launcher(), "-n", str(ranks), sys.executable, "-m",
                               "wengert.hpcgan.bench.probe", str(out), "--repeats",
                               str(repeats)], capture_output=True, text=True, timeout=600,
                              check=False)
        if done.returncode != 0:
            raise BenchError(f"the communication probe failed (exit {done.returncode}):\n"
                             f"{done.stderr[-2000:]}")
        return json.loads(out.read_text())


def build_model(weak: list[Measurement], messages: list[int], probe: dict, *,
                compute_seconds: float | None = None, intra: Link | None = None,
                inter: Link = Link(ASSUMED_INTER_ALPHA, 1 / ASSUMED_INTER_BANDWIDTH)
                ) -> ModelResult:
    """Fit the links, take ``T_c`` from the 1-rank run (or ``compute_seconds``), predict
    (inside a node with the fitted point-to-point link, or an assumed ``intra``)."""
    one = min(weak, key=lambda m: m.config.ranks)
    if one.config.ranks != 1:
        raise BenchError("the model needs the 1-rank weak-scaling run for its compute time")
    compute = compute_seconds or (one.step_seconds - one.comm_seconds)
    p2p = fit(probe["bytes"], probe["p2p_seconds"])
    allreduce = fit(probe["bytes"], probe["allreduce_seconds"])
    intra = intra or p2p
    ranks = np.unique(np.concatenate([np.geomspace(1, SUMMIT_GPUS, 80).astype(int),
                                      [1, 2, GPUS_PER_NODE, SUMMIT_GPUS]]))
    flat = sum(flat_seconds(ranks, n, intra, inter) for n in messages)
    hier = sum(hierarchical_seconds(ranks, n, intra, inter) for n in messages)
    measured = sorted((m.config.ranks, m.efficiency) for m in weak)
    return ModelResult(compute, messages, p2p, allreduce, intra, inter, ranks,
                       efficiency(compute, flat), efficiency(compute, hier), measured, probe,
                       weak)


def summary(model: ModelResult) -> list[str]:
    flat, hier = model.at(SUMMIT_GPUS)
    flat2, hier2 = model.at(2)
    total = sum(model.message_bytes)
    lines = [
        (f"measured here: compute T_c = {model.compute_seconds * 1e3:.1f} ms per iteration; "
        f"{len(model.message_bytes)} all-reduces per iteration, {total / 1e3:.1f} kB in all"),
        (f"measured here (intra-node, {model.probe['ranks']} ranks): point-to-point "
        f"{model.p2p.describe()}; Allreduce {model.allreduce.describe()}"),
        ("intra-node link of the model: " + ("the point-to-point fit above"
                                              if model.intra == model.p2p else
                                              f"assumed {model.intra.describe()}")),
        (f"assumed (not measurable on one machine): inter-node {model.inter.describe()} "
        f"(EDR InfiniBand, one rail), {GPUS_PER_NODE} GPUs per node"),
        "measured weak efficiency: " + ", ".join(f"{r} rank(s) {100 * e:.1f} %"
                                                 for r, e in model.measured),
        f"modelled at 2 ranks: {100 * hier2:.1f} % (flat {100 * flat2:.1f} %)",
        (f"modelled at {SUMMIT_GPUS:,} GPUs / {SUMMIT_NODES:,} nodes: hierarchical "
        f"{100 * hier:.1f} %, flat {100 * flat:.1f} % (target {100 * TARGET:.1f} %)"),
    ]
    return lines


def plot(model: ModelResult, png: str | Path, title: str) -> Path:
    """The modelled curves and the measured points, told apart by style and legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.semilogx(model.ranks, 100 * model.hierarchical, "-", color="C0",
                label=f"modelled: hierarchical all-reduce ({GPUS_PER_NODE} per node)")
    ax.semilogx(model.ranks, 100 * model.flat, "--", color="C3",
                label="modelled: flat all-reduce")
    r, e = zip(*model.measured)
    ax.plot(r, [100 * v for v in e], "ko", markersize=7, label="measured on this machine")
    ax.axhline(100 * TARGET, color="grey", linestyle=":", label="SC19: 93.1 % at 27,500 GPUs")
    ax.axvline(SUMMIT_GPUS, color="grey", linewidth=0.8)
    ax.set_xlabel("ranks (GPUs)")
    ax.set_ylabel("weak-scaling efficiency, %")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)


def write_json(model: ModelResult, path: str | Path) -> None:
    flat, hier = model.at(SUMMIT_GPUS)
    Path(path).write_text(json.dumps({
        "measured": {"compute_seconds": model.compute_seconds,
                     "message_bytes": model.message_bytes,
                     "p2p": vars(model.p2p), "allreduce": vars(model.allreduce),
                     "weak_efficiency": model.measured, "probe": model.probe,
                     "runs": [m.to_dict() for m in model.runs]},
        "assumed": {"inter_node": vars(model.inter), "gpus_per_node": GPUS_PER_NODE,
                    "intra_node": None if model.intra == model.p2p else vars(model.intra)},
        "modelled": {"ranks": model.ranks.tolist(), "flat": model.flat.tolist(),
                     "hierarchical": model.hierarchical.tolist(),
                     f"at_{SUMMIT_GPUS}": {"flat": flat, "hierarchical": hier}},
    }, indent=1) + "\n")
