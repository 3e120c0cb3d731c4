"""The hierarchical all-reduce: sum within each node, across node leaders, then broadcast
within each node — bucketed and non-blocking.

Arrays are packed by dtype into one flat buffer each, cut into buckets of at most
``bucket_bytes``.  Every bucket goes through three non-blocking stages
(``Ireduce`` to the node leader, ``Iallreduce`` among leaders, ``Ibcast`` from the
leader); bucket ``j+1``'s node reduction is in flight while bucket ``j`` crosses the
nodes.  Stages are started in bucket order on every rank (MPI requires the same order of
non-blocking collectives on a communicator), and every wait is the watchdog's.
Only ``1/ranks_per_node`` of the ranks send across nodes, which is the point on machines
whose inter-node links are much slower than the links inside a node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from wengert import ad

from .mpi import mpi
from .topology import Topology
from .watchdog import Watchdog

#: dtype kinds MPI sums natively (mpi4py maps their buffers to MPI datatypes).
_SUMMABLE = ("f", "i", "u", "c")
DEFAULT_BUCKET_BYTES = 4 << 20


class HierarchicalAllreduce:
    """Sums (``sum``) or averages (``mean_tree``) arrays over ``topology.comm``."""

    def __init__(self, topology: Topology, watchdog: Watchdog,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        if bucket_bytes < 16:
            raise ValueError(f"bucket_bytes must be at least 16, got {bucket_bytes}")
        self.topology, self.watchdog, self.bucket_bytes = topology, watchdog, bucket_bytes
        self.size = topology.comm.Get_size()
        self.bytes_sent = 0  # by this rank, across all calls (for the benchmark)

    def sum(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The element-wise sums over all ranks of each array (same shapes and dtypes on
        every rank), as new arrays."""
        arrays = [np.asarray(a) for a in arrays]
        for a in arrays:
            if a.dtype.kind not in _SUMMABLE or a.dtype.itemsize < 4 and a.dtype.kind == "f":
                raise TypeError(f"cannot all-reduce {a.dtype} arrays: MPI sums only 32/64-bit "
                                "floats, integers and complex; cast to float32 first")
        return packed_sums(arrays, self._sum_flat, np.concatenate)

    def mean_tree(self, tree: Any) -> Any:
        """``tree`` with every array leaf averaged over the ranks (``None`` leaves stay)."""
        return tree_mean(tree, self.sum, self.size)

    def _buckets(self, flat: np.ndarray) -> list[slice]:
        step = max(1, self.bucket_bytes // flat.itemsize)
        return [slice(i, min(i + step, flat.size)) for i in range(0, flat.size, step)] or [
            slice(0, 0)]

    def _sum_flat(self, flat: np.ndarray) -> np.ndarray:
        MPI = mpi()
        topo, wait = self.topology, self.watchdog.waitall
        node_alone = topo.node.Get_size() == 1
        total = flat.copy() if (node_alone or topo.is_leader) else np.empty_like(flat)
        buckets = self._buckets(flat)
        reduce_requests = [None if node_alone else topo.node.Ireduce(
            flat[b], total[b] if topo.is_leader else None, MPI.SUM, root=0) for b in buckets]
        cross_requests: list = []  # (request, what it is) per bucket
        for b, request in zip(buckets, reduce_requests):
            if topo.leaders is not None and topo.leaders.Get_size() > 1:
                wait([request], "node-local reduce")
                cross_requests.append((topo.leaders.Iallreduce(MPI.IN_PLACE, total[b], MPI.SUM),
                                       "all-reduce among node leaders"))
                self.bytes_sent += total[b].nbytes
            else:
                cross_requests.append((request, "node-local reduce"))
        broadcast_requests = []
        for b, (request, what) in zip(buckets, cross_requests):
            if topo.is_leader:
                wait([request], what)
            if not node_alone:
                broadcast_requests.append(topo.node.Ibcast(total[b], root=0))
        wait(broadcast_requests + reduce_requests, "node-local broadcast")
        return total


def packed_sums(arrays: Sequence[Any], sum_flat: Callable[[Any], Any],
                concatenate: Callable[[list], Any]) -> list:
    """The all-reduced sums of ``arrays``: packed by dtype into one flat buffer each
    (dtypes in sorted order, the same on every rank), summed by ``sum_flat``, and cut
    back into the arrays' shapes."""
    out: list = [None] * len(arrays)
    by_dtype: dict[Any, list[int]] = {}
    for i, a in enumerate(arrays):
        by_dtype.setdefault(a.dtype, []).append(i)
    for dtype in sorted(by_dtype, key=str):
        members = by_dtype[dtype]
        total = sum_flat(concatenate([arrays[i].ravel() for i in members]))
        offset = 0
        for i in members:
            n = arrays[i].size
            out[i] = total[offset:offset + n].reshape(arrays[i].shape)
            offset += n
    return out


def tree_mean(tree: Any, sum_arrays: Callable[[list], list], size: int) -> Any:
    """``tree`` with every array leaf replaced by its sum over ``size`` ranks (by
    ``sum_arrays``) divided by ``size`` (integer division for integer arrays)."""
    leaves, treedef = ad.tree_flatten(tree)
    where = [i for i, leaf in enumerate(leaves) if leaf is not None]
    sums = sum_arrays([leaves[i] for i in where])
    for i, s in zip(where, sums):
        leaves[i] = s / size if s.dtype.kind in "fc" else s // size
    return ad.tree_unflatten(treedef, leaves)


def flat_allreduce(comm: Any, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One blocking ``Allreduce`` per array: the reference the hierarchical one must equal."""
    MPI = mpi()
    out = []
    for a in arrays:
        a = np.ascontiguousarray(a)
        result = np.empty_like(a)
        comm.Allreduce(a, result, MPI.SUM)
        out.append(result)
    return out
