"""Run under mpiexec -n 2R: ``--placement split`` (R generator ranks, R critic ranks,
snapshots and their cotangents sent between them) trains like one rank holding both
players and all R shards, in float64, up to the order of the sums."""

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
from wengert.hpcgan.pigan.training import initial_state, read_metrics

comm = MPI.COMM_WORLD
R = comm.Get_size() // 2
config = make_config((SMALL_TRAINING, "check"), ({"steps": 3, "generator_steps": 2}, "check"))
problem, observed = line_problem()
folder = Path(comm.bcast(tempfile.mkdtemp() if comm.Get_rank() == 0 else None))
if comm.Get_rank() == 0:
    (folder / "split").mkdir()
comm.Barrier()
state = run_distributed(problem, observed, config, folder / "split", progress=False,
                        parallel=Parallel(placement="split", bucket_bytes=256))
if comm.Get_rank() == 0:
    (folder / "one").mkdir()
    one = run_distributed(problem, observed, config, folder / "one", progress=False,
                          comm=MPI.COMM_SELF, shards=R)
    split_rows, one_rows = read_metrics(folder / "split"), read_metrics(folder / "one")
    assert len(split_rows) == len(one_rows) == config.steps
    worst = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-300) for a, b in zip(split_rows, one_rows)
                for k in b if k not in ("step_time", "comm_time"))
    mine = [np.asarray(x) for x in ad.tree_leaves((state.generators, state.critic))]
    theirs = [np.asarray(x) for x in ad.tree_leaves((one.generators, one.critic))]
    weights = max(float(np.max(np.abs(a - b))) for a, b in zip(mine, theirs))
    start = initial_state(problem, observed, config).critic  # the critic rank's, trained:
    moved = max(float(np.max(np.abs(np.asarray(a) - b)))
                for a, b in zip(ad.tree_leaves(state.critic), ad.tree_leaves(start)))
    assert worst < 1e-12 and weights < 1e-12 and moved > 0, (worst, weights, moved)
    print(f"ok: split placement on {2 * R} ranks vs one rank, {config.steps} iterations: max "
          f"relative loss difference {worst:.1e}, max weight difference {weights:.1e}",
          flush=True)
