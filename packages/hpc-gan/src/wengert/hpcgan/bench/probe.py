"""Communication timings for the performance model, measured under ``mpiexec``:
point-to-point (ping-pong between ranks 0 and 1, half the round trip) and ``Allreduce``
over all ranks, for messages of 8 B to 2 MiB.  Rank 0 writes them as JSON.

    mpiexec -n 2 python -m wengert.hpcgan.bench.probe OUT.json [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..distributed.mpi import mpi

SIZES = [8 << k for k in range(0, 19, 2)]  # 8 B .. 2 MiB


def _seconds(fn: Callable[[], None], comm: object, repeats: int) -> float:
    """The median of ``repeats`` timed calls, every rank starting together."""
    fn()  # warm-up: connection set-up, buffer registration
    times = []
    for _ in range(repeats):
        comm.Barrier()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def probe(repeats: int = 30) -> dict:
    MPI = mpi()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if size < 2:
        raise SystemExit("the probe needs at least 2 ranks: mpiexec -n 2 ...")
    p2p, allreduce = [], []
    for n in SIZES:
        buf = np.zeros(n // 8)

        def pingpong(buf: np.ndarray = buf) -> None:
            if rank == 0:
                comm.Send(buf, 1)
                comm.Recv(buf, 1)
            elif rank == 1:
                comm.Recv(buf, 0)
                comm.Send(buf, 0)

        p2p.append(_seconds(pingpong, comm, repeats) / 2)
        allreduce.append(_seconds(lambda buf=buf: comm.Allreduce(MPI.IN_PLACE, buf), comm,
                                  repeats))
    return {"ranks": size, "bytes": SIZES, "p2p_seconds": p2p, "allreduce_seconds": allreduce,
            "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    result = probe(args.repeats)
    if mpi().COMM_WORLD.Get_rank() == 0:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
