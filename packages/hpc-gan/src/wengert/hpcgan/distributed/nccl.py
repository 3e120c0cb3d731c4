"""The hierarchical all-reduce of GPU gradients with NCCL (``cupy.cuda.nccl``).

The same two levels as `allreduce.HierarchicalAllreduce`, with the data staying on the
GPUs: ``ncclReduce`` to the node leader, ``ncclAllReduce`` among the node leaders,
``ncclBroadcast`` back within the node, all on one CUDA stream (NCCL pipelines each
operation internally, so there are no buckets).  One NCCL communicator per MPI
sub-communicator; its unique id is made by the sub-communicator's rank 0 and broadcast
over MPI.  The wait for the stream polls a CUDA event under the watchdog, so a dead
peer aborts the job instead of hanging it.  Arrays are packed by dtype into one flat
buffer each; complex arrays travel as pairs of reals.  jax arrays (``--backend xla``)
are read zero-copy through DLPack and come back as CuPy arrays, which the compiled
update takes zero-copy too.

Needs CuPy with NCCL and a GPU per rank; `devices.gradient_reducer` picks it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .allreduce import packed_sums, tree_mean
from .topology import Topology
from .watchdog import Watchdog

#: NumPy dtype -> (name of the NCCL datatype, the real dtype it is summed as).
_NCCL_TYPES = {np.dtype(np.float32): ("NCCL_FLOAT32", np.float32),
               np.dtype(np.float64): ("NCCL_FLOAT64", np.float64),
               np.dtype(np.complex64): ("NCCL_FLOAT32", np.float32),
               np.dtype(np.complex128): ("NCCL_FLOAT64", np.float64),
               np.dtype(np.int32): ("NCCL_INT32", np.int32),
               np.dtype(np.int64): ("NCCL_INT64", np.int64)}


class NcclAllreduce:
    """Averages (``mean_tree``) or sums (``sum``) GPU arrays over ``topology.comm``."""

    def __init__(self, topology: Topology, watchdog: Watchdog) -> None:
        import cupy
        from cupy.cuda import nccl

        self.cupy, self.nccl, self.watchdog = cupy, nccl, watchdog
        self.topology = topology
        self.size = topology.comm.Get_size()
        self.node = _communicator(nccl, topology.node)
        self.leaders = (_communicator(nccl, topology.leaders)
                        if topology.leaders is not None and topology.leaders.Get_size() > 1
                        else None)
        self.stream = cupy.cuda.Stream(non_blocking=True)

    def mean_tree(self, tree: Any) -> Any:
        """``tree`` with every array leaf averaged over the ranks (``None`` leaves stay)."""
        return tree_mean(tree, self.sum, self.size)

    def sum(self, arrays: list) -> list:
        """Element-wise sums over all ranks, as new CuPy arrays."""
        cp = self.cupy
        arrays = [a if isinstance(a, cp.ndarray) else cp.from_dlpack(a) for a in arrays]
        for a in arrays:
            if a.dtype not in _NCCL_TYPES:
                raise TypeError(f"cannot all-reduce {a.dtype} arrays with NCCL here: "
                                f"supported are {', '.join(map(str, _NCCL_TYPES))}")
        return packed_sums(arrays, self._sum_flat, cp.concatenate)

    def _sum_flat(self, flat: Any) -> Any:
        name, real = _NCCL_TYPES[np.dtype(flat.dtype)]
        datatype, total = getattr(self.nccl, name), flat.copy()
        # NCCL's stream does not wait for CuPy's current one by itself: order it after the
        # copy (and the backward pass that made the gradients).
        self.stream.wait_event(self.cupy.cuda.get_current_stream().record())
        buffer = total.view(real)
        count, pointer, stream = buffer.size, buffer.data.ptr, self.stream.ptr
        node_alone = self.topology.node.Get_size() == 1
        if not node_alone:  # in place at the leader: NCCL allows sendbuff == recvbuff
            self.node.reduce(pointer, pointer, count, datatype, self.nccl.NCCL_SUM, 0, stream)
        if self.leaders is not None:
            self.leaders.allReduce(pointer, pointer, count, datatype, self.nccl.NCCL_SUM,
                                   stream)
        if not node_alone:
            self.node.bcast(pointer, count, datatype, 0, stream)
        done = self.stream.record()
        self.watchdog.wait_until(lambda: done.done, "NCCL all-reduce of the gradients")
        return total


def _communicator(nccl: Any, comm: Any) -> Any:
    """The NCCL communicator of the MPI communicator ``comm`` (collective over it)."""
    uid = nccl.get_unique_id() if comm.Get_rank() == 0 else None
    uid = comm.bcast(uid, root=0)
    return nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())
