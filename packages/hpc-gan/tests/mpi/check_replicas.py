"""Run under mpiexec -n R: R replicas with batch B/R each train exactly like one rank
holding the whole batch B (all R shards), up to the order of the sums.  Every rank
checks that its players equal rank 0's; rank 0 also runs the one-rank reference."""

import sys
import tempfile
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).parents[1]))
from pigan_line import SMALL_TRAINING, line_problem
from wengert import ad
from wengert.hpcgan.distributed.loop import Parallel, run_distributed
from wengert.hpcgan.pigan.config import make_config
from wengert.hpcgan.pigan.training import read_metrics

comm = MPI.COMM_WORLD
R = comm.Get_size()
config = make_config((SMALL_TRAINING, "check"), ({"steps": 4}, "check"))
problem, observed = line_problem()
folder = Path(comm.bcast(tempfile.mkdtemp() if comm.Get_rank() == 0 else None))
ranks_per_node = 2 if R == 4 else None  # two fake nodes of two ranks at -n 4
if comm.Get_rank() == 0:
    (folder / "replicas").mkdir()
comm.Barrier()
state = run_distributed(problem, observed, config, folder / "replicas", progress=False,
                        parallel=Parallel(ranks_per_node=ranks_per_node, bucket_bytes=256)
                        )
leaves = [np.asarray(x) for x in ad.tree_leaves((state.generators, state.critic))]
gathered = comm.gather(leaves, root=0)
if comm.Get_rank() == 0:
    for other in gathered[1:]:  # identical updates on every replica
        assert all(np.array_equal(a, b) for a, b in zip(leaves, other))
    (folder / "one").mkdir()
    one = run_distributed(problem, observed, config, folder / "one", progress=False,
                          comm=MPI.COMM_SELF, shards=R)
    worst = 0.0
    for a, b in zip(read_metrics(folder / "replicas"), read_metrics(folder / "one")):
        for key in ("wasserstein", "penalty", "adversarial", "pde", "bc", "critic_loss",
                    "generator_loss", "critic_grad_norm", "generator_grad_norm"):
            worst = max(worst, abs(a[key] - b[key]) / max(abs(b[key]), 1e-300))
    one_leaves = [np.asarray(x) for x in ad.tree_leaves((one.generators, one.critic))]
    weights = max(float(np.max(np.abs(a - b))) for a, b in zip(leaves, one_leaves))
    assert len(read_metrics(folder / "one")) == config.steps
    assert worst < 1e-12 and weights < 1e-12, (worst, weights)
    print(f"ok: {R} replicas vs one rank with the combined batch, {config.steps} iterations: "
          f"max relative loss difference {worst:.1e}, max weight difference {weights:.1e}")
