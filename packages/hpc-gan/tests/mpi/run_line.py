"""Run under mpiexec: train the 1-D line PI-GAN data-parallel, with a fault injected.

    python run_line.py MODE FOLDER [PLACEMENT]

MODE ``resume``: 2 iterations on all ranks, resumed to 4 on rank 0 alone (another replica
count), compared with 4 uninterrupted iterations on all ranks.  ``kill``: rank 1 kills
itself at iteration 3.  ``nan``: rank 1 sees NaN data at iteration 3.  ``killwrite``:
rank 0 is killed while writing the iteration-4 checkpoint.  Checkpoints every 2
iterations.  ``PLACEMENT`` (``together`` by default, or ``split``: rank 1 is then the critic
rank) is the ``--placement`` of the faulty modes.  The pytest wrapper checks the exit code, the messages and the folder.
"""

import os
import signal
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).parents[1]))
from pigan_line import SMALL_TRAINING, line_problem
from wengert.hpcgan.distributed import loop
from wengert.hpcgan.errors import TrainingDiverged
from wengert.hpcgan.pigan.config import make_config
from wengert.hpcgan.pigan.training import read_metrics

mode, folder = sys.argv[1], Path(sys.argv[2])
placement = sys.argv[3] if len(sys.argv) > 3 else "together"
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
problem, observed = line_problem()


def train(out: Path, steps: int, *, comm=comm, resume=False):
    shards = 1 if placement == "split" else 2
    if comm.Get_rank() == 0:
        out.mkdir(exist_ok=True)
    comm.Barrier()
    return loop.run_distributed(problem, observed, make_config((SMALL_TRAINING, "test"),
                                                               ({"steps": steps}, "test")),
                                out, comm=comm, shards=shards, resume=resume, progress=False,
                                parallel=loop.Parallel(timeout=10, placement=placement))


draw = loop.draw_shards


def faulty_draw(problem, real, config, iteration, kind, owned, shards, dtype):
    if iteration == 3 and mode == "kill" and rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    if iteration == 3 and mode == "nan" and rank == 1:
        real = np.full_like(real, np.nan)
    return draw(problem, real, config, iteration, kind, owned, shards, dtype)


checkpoint_writes = []


def killing_fsync(fd, fsync=os.fsync):
    """Kill this process at the second checkpoint write (iteration 4), after the new file
    is written but before it is renamed over the old one."""
    if ".checkpoint.safetensors." in os.readlink(f"/proc/self/fd/{fd}"):
        checkpoint_writes.append(fd)
        if len(checkpoint_writes) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    fsync(fd)


if mode == "resume":
    train(folder / "resumed", 2)
    if rank == 0:
        train(folder / "resumed", 4, comm=MPI.COMM_SELF, resume=True)  # 1 replica, 2 shards
    train(folder / "uninterrupted", 4)
    if rank == 0:
        a, b = read_metrics(folder / "resumed"), read_metrics(folder / "uninterrupted")
        assert [r["iteration"] for r in a] == [1, 2, 3, 4], a
        worst = max(abs(x[k] - y[k]) / abs(y[k]) for x, y in zip(a, b) for k in y
                    if k not in ("step_time", "comm_time"))
        assert worst < 1e-12, worst
        print(f"ok: resumed on 1 replica == uninterrupted on 2 (max relative difference "
              f"{worst:.1e})", flush=True)
elif mode in ("kill", "nan", "killwrite"):
    loop.draw_shards = faulty_draw
    if mode == "killwrite" and rank == 0:
        os.fsync = killing_fsync
    try:
        train(folder / "run", 6)
    except TrainingDiverged as exc:
        print(f"rank {rank} stopped: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(f"rank {rank}: finished 6 iterations (no fault happened)", flush=True)
else:
    raise SystemExit(f"unknown mode {mode}")
