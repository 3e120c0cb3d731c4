"""Run under mpiexec: the hierarchical all-reduce equals a flat Allreduce for odd sizes,
several buckets, mixed dtypes, real and fake nodes.  Prints one line per checked case on
rank 0; any mismatch raises (non-zero exit)."""

import numpy as np
from mpi4py import MPI
from wengert.hpcgan.distributed.allreduce import HierarchicalAllreduce, flat_allreduce
from wengert.hpcgan.distributed.topology import topology
from wengert.hpcgan.distributed.watchdog import Watchdog

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
rng = np.random.default_rng(100 + rank)
arrays = [rng.standard_normal(7),  # odd sizes
          rng.standard_normal((3, 5)).astype(np.float32),
          rng.integers(-1000, 1000, 1001),  # int64, several buckets
          rng.standard_normal(0),  # empty
          rng.standard_normal((13, 3)) + 1j * rng.standard_normal((13, 3)),
          rng.integers(0, 50, 9).astype(np.float64)]  # integer-valued: sums are exact
reference = flat_allreduce(comm, arrays)
watchdog = Watchdog(comm, timeout=60)
for ranks_per_node in (None, 1, 2, 3):
    topo = topology(comm, ranks_per_node)
    for bucket_bytes in (16, 64, 1 << 20):
        reducer = HierarchicalAllreduce(topo, watchdog, bucket_bytes)
        result = reducer.sum(arrays)
        for a, r, ref in zip(arrays, result, reference):
            assert r.dtype == a.dtype and r.shape == a.shape, (r.dtype, r.shape)
            if a.dtype.kind in "iu" or a is arrays[-1]:
                assert np.array_equal(r, ref), (ranks_per_node, bucket_bytes, a.dtype)
            else:
                tol = 1e-5 if a.dtype == np.float32 else 1e-12
                np.testing.assert_allclose(r, ref, rtol=tol, atol=tol)
        mean = reducer.mean_tree({"a": arrays[0], "none": None, "b": [arrays[1]]})
        np.testing.assert_allclose(mean["a"], reference[0] / size, rtol=1e-12)
        assert mean["none"] is None
    nodes = topo.n_nodes  # collective: every rank counts
    if rank == 0:
        print(f"ok: {size} ranks, {nodes} node(s) (ranks_per_node={ranks_per_node}), "
              "buckets of 16 B, 64 B, 1 MiB", flush=True)
try:
    HierarchicalAllreduce(topology(comm), watchdog).sum([np.zeros(2, np.float16)])
except TypeError as exc:
    assert "float16" in str(exc)
else:
    raise AssertionError("float16 was accepted")
