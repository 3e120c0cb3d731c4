"""Run under mpiexec on GPUs (one per rank): the NCCL hierarchical all-reduce equals a flat
MPI ``Allreduce`` of the same arrays (odd sizes, float32/float64/int64/complex, real
nodes and fake nodes of 1 rank), and jax arrays go in zero-copy where jax sees a GPU."""

import sys
from pathlib import Path

import cupy
import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).parents[1]))
from wengert.hpcgan.distributed.allreduce import flat_allreduce
from wengert.hpcgan.distributed.devices import gpu_for
from wengert.hpcgan.distributed.nccl import NcclAllreduce
from wengert.hpcgan.distributed.topology import topology
from wengert.hpcgan.distributed.watchdog import Watchdog

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
node = comm.Split_type(MPI.COMM_TYPE_SHARED, rank)
cupy.cuda.Device(gpu_for(node.Get_rank(), node.Get_size(),
                         cupy.cuda.runtime.getDeviceCount())).use()
watchdog = Watchdog(comm, timeout=60)
rng = np.random.default_rng(rank)
host = [rng.standard_normal(1001).astype(np.float32), rng.standard_normal((7, 3)),
        rng.integers(-5, 5, 13).astype(np.int64),
        (rng.standard_normal(5) + 1j * rng.standard_normal(5)).astype(np.complex128),
        np.zeros(0, np.float32)]
expected = flat_allreduce(comm, host)
for ranks_per_node in (None, 1):
    reducer = NcclAllreduce(topology(comm, ranks_per_node), watchdog)
    got = reducer.sum([cupy.asarray(a) for a in host])
    for g, e in zip(got, expected):
        assert isinstance(g, cupy.ndarray) and g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(cupy.asnumpy(g), e, rtol=1e-5 if e.dtype == np.float32
                                   else 1e-12)
    mean = reducer.mean_tree({"w": cupy.asarray(host[1])})["w"]
    np.testing.assert_allclose(cupy.asnumpy(mean), expected[1] / comm.Get_size(), rtol=1e-12)
try:
    import jax

    if jax.devices()[0].platform == "gpu":
        with jax.default_device(jax.devices("gpu")[cupy.cuda.Device().id]):
            got = reducer.sum([jax.numpy.asarray(host[0])])
        np.testing.assert_allclose(cupy.asnumpy(got[0]), expected[0], rtol=1e-5)
except ImportError:
    pass
if rank == 0:
    print(f"ok: NCCL hierarchical all-reduce == flat MPI Allreduce on {comm.Get_size()} GPUs",
          flush=True)
