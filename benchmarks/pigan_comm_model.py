"""An α–β model of the data-parallel step, fitted to this machine and extrapolated to
27,500 GPUs: hierarchical versus flat all-reduce.  Run under MPI with 2 ranks:

    mpiexec -n 2 python benchmarks/pigan_comm_model.py [--png comm_model.png]

Measured here (rank 0 prints them): the time of one data-parallel training step of
``tiny``'s players on 1 rank (compute), the gradient size, and point-to-point and
``Allreduce`` times for messages of 8 B to 4 MiB between the 2 ranks, to which
``t(n) = α + β n`` is fitted (intra-node: both ranks share this machine).  Assumed, not
measured (no second node here): the inter-node α_e, β_e (defaults: 2 µs and 1/(12.5 GB/s),
an EDR InfiniBand link) and 6 GPUs per node.  Modelled, for P ranks on N = P/6 nodes
and a gradient of n bytes:

    flat ring:     T_flat(P) = 2(P−1) α_e + 2 (P−1)/P · n β_e
    hierarchical:  T_hier(P) = 2⌈log2 6⌉ α_i + 2 n β_i + 2(N−1) α_e + 2 (N−1)/N · n β_e
    efficiency:    E(P) = T_c / (T_c + T_comm(P))   (weak scaling, no overlap)

``T_c`` is the CPU step measured here unless ``--compute-seconds`` gives another (a GPU
step is far shorter, which makes communication matter far more).  The PNG draws both
curves and, as separate markers, the efficiency measured at 1 and 2 ranks.  On a machine
shared with other work the measured numbers are not meaningful.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from mpi4py import MPI
from report_rows import Row, add_json_option, write_rows
from wengert import ad
from wengert.hpcgan.distributed.allreduce import HierarchicalAllreduce
from wengert.hpcgan.distributed.sharding import draw_shards
from wengert.hpcgan.distributed.topology import topology
from wengert.hpcgan.distributed.watchdog import Watchdog
from wengert.hpcgan.pigan.config import make_config
from wengert.hpcgan.pigan.problem import site_problem
from wengert.hpcgan.pigan.steps import make_steps
from wengert.hpcgan.pigan.training import Observed, initial_state
from wengert.hpcgan.presets import load_preset

SIZES = [8 << k for k in range(0, 20, 2)]  # 8 B .. 2 MiB
GPUS_PER_NODE = 6


def fit(sizes: list[int], times: list[float]) -> tuple[float, float]:
    """Least-squares α, β of ``t = α + β n``."""
    A = np.stack([np.ones(len(sizes)), np.asarray(sizes, float)], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(A, np.asarray(times), rcond=None)
    return max(float(alpha), 0.0), max(float(beta), 0.0)


def timed(fn, repeats: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", default="comm_model.png")
    parser.add_argument("--alpha-inter", type=float, default=2e-6)
    parser.add_argument("--beta-inter", type=float, default=1 / 12.5e9)
    parser.add_argument("--compute-seconds", type=float,
                        help="T_c of the model (e.g. a GPU's measured step time); default: "
                             "the CPU step measured here")
    parser.add_argument("--quick", action="store_true",
                        help="5 timed exchanges per message size (make bench)")
    add_json_option(parser)
    args = parser.parse_args()
    repeats = 5 if args.quick else 20
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if size != 2:
        raise SystemExit("run with mpiexec -n 2")
    p2p, allreduce = [], []
    for n in SIZES:
        buf = np.zeros(n // 8)

        def pingpong(buf: np.ndarray = buf) -> None:
            if rank == 0:
                comm.Send(buf, 1)
                comm.Recv(buf, 1)
            else:
                comm.Recv(buf, 0)
                comm.Send(buf, 0)

        p2p.append(timed(pingpong, repeats) / 2)
        allreduce.append(timed(lambda buf=buf: comm.Allreduce(MPI.IN_PLACE, buf), repeats))

    # one training step's compute and its gradient size, on tiny's preset networks
    preset = load_preset("tiny")
    config = make_config((preset.train, "tiny"), ({"steps": 1}, "bench"))
    problem = site_problem(preset)
    kc, kh = len(problem.conductivity_wells), len(problem.head_wells)
    observed = Observed(np.random.default_rng(0).standard_normal((64, kc + kh)), kc)
    state = initial_state(problem, observed, config)
    steps = make_steps(config, observed.normaliser(problem, np.float32), "eager")
    n_bytes = sum(np.asarray(x).nbytes for x in ad.tree_leaves(state.generators))
    reducer = HierarchicalAllreduce(topology(comm), Watchdog(comm, 600))

    def step(reduce: bool) -> tuple[float, float]:
        """One generator step on this rank's half of the batch, with or without the
        all-reduce (weak scaling: the same work per rank at 1 and 2 ranks)."""
        batch = draw_shards(problem, observed.snapshots, config, 1, "generator 0",
                            range(rank, rank + 1), 2, np.float32)
        start = time.perf_counter()
        grads, _ = steps.generator_gradients(state.generators, state.critic, batch)
        middle = time.perf_counter()
        if reduce:
            reducer.mean_tree(grads)
        return middle - start, time.perf_counter() - middle

    one = [step(False) for _ in range(3)] if rank == 0 else []  # rank 1 idles meanwhile
    comm.Barrier()
    two = [step(True) for _ in range(3)]
    if rank != 0:
        return
    measured = float(np.median([c for c, _ in one]))
    step2 = float(np.median([c + m for c, m in two]))
    compute = args.compute_seconds or measured
    alpha_i, beta_i = fit(SIZES, p2p)
    print(f"measured (2 ranks on this machine): compute {measured * 1e3:.1f} ms per "
          f"generator step, gradient {n_bytes / 1e3:.1f} kB, α_intra {alpha_i * 1e6:.2f} µs, "
          f"β_intra {1 / beta_i / 1e9 if beta_i else math.inf:.2f} GB/s; weak efficiency at "
          f"2 ranks {measured / step2:.1%} (the same half batch per rank at 1 and 2 ranks)")
    ranks = np.unique(np.geomspace(1, 27_500, 60).astype(int))
    a_e, b_e = args.alpha_inter, args.beta_inter
    nodes = np.maximum(ranks / GPUS_PER_NODE, 1)
    flat = np.where(ranks > 1, 2 * (ranks - 1) * a_e + 2 * (ranks - 1) / ranks * n_bytes * b_e, 0)
    intra = np.where(ranks > 1, 2 * math.ceil(math.log2(GPUS_PER_NODE)) * alpha_i
                     + 2 * n_bytes * beta_i, 0)
    inter = np.where(nodes > 1, 2 * (nodes - 1) * a_e + 2 * (nodes - 1) / nodes * n_bytes * b_e,
                     0)
    e_flat, e_hier = compute / (compute + flat), compute / (compute + intra + inter)
    print(f"modelled at 27,500 ranks: flat {e_flat[-1]:.1%}, hierarchical {e_hier[-1]:.1%}")
    write_rows(args.json, [Row(
        "hpc-gan", "data-parallel generator step (tiny), 2 ranks with hierarchical all-reduce",
        step2 * 1e3, measured * 1e3, "our 1-rank step, no all-reduce", "ms",
        notes=f"modelled weak efficiency at 27,500 ranks: hierarchical {e_hier[-1]:.1%}, "
              f"flat {e_flat[-1]:.1%} (SC19: 93.1%)")])

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.semilogx(ranks, 100 * e_flat, label="modelled: flat ring all-reduce")
    ax.semilogx(ranks, 100 * e_hier, label="modelled: hierarchical (6 per node)")
    ax.plot([1, 2], [100.0, 100 * measured / step2], "ks", label="measured (this machine)")
    ax.set_xlabel("ranks (GPUs)")
    ax.set_ylabel("weak-scaling efficiency, %")
    ax.set_title("α–β model: measured intra-node, assumed inter-node (no overlap)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)
    print(args.png)


if __name__ == "__main__":
    main()
