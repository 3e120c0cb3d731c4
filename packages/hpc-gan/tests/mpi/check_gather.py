"""Run under mpiexec -n 2: the watchdog's gather equals ``comm.gather`` for objects of
different sizes, then rank 1 hangs (sleeps without answering) before a second gather, and
rank 0's gather aborts the job naming it (``comm.gather``, which the decomposed checkpoint
used, would wait with it)."""

import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).parents[1]))
from wengert.hpcgan.distributed.watchdog import Watchdog

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
watchdog = Watchdog(comm, timeout=2.0, grace=1.0)
mine = {"rank": rank, "weights": np.arange(3 + 1000 * rank, dtype=np.float64)} if rank else None
got = watchdog.gather(mine, "test gather")
expected = comm.gather(mine, root=0)
if rank == 0:
    assert got[0] is None and got[1]["rank"] == 1, got
    np.testing.assert_array_equal(got[1]["weights"], expected[1]["weights"])
    print("ok: watched gather == comm.gather", flush=True)
else:
    assert got is None
comm.Barrier()
if rank == 1:
    time.sleep(120)  # hung: the watchdog must end the job long before this
watchdog.context = "rank 1 hangs"
watchdog.gather(rank, "gathering the subdomains' checkpoint")
print(f"rank {rank}: the gather returned although rank 1 hangs", flush=True)
