"""Which ranks share a node: the two levels of the hierarchical all-reduce.

``node`` groups the ranks of one shared-memory node (``MPI.COMM_TYPE_SHARED``), or of one
fake node of ``ranks_per_node`` consecutive ranks, so the two-level path runs (and is
tested) on one machine.  ``leaders`` holds rank 0 of every node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .mpi import mpi


@dataclass(frozen=True, eq=False)
class Topology:
    comm: Any  # the ranks a reduction runs over
    node: Any  # this rank's node within ``comm``
    leaders: Any | None  # the node leaders (``None`` on ranks that lead no node)

    @property
    def is_leader(self) -> bool:
        return self.node.Get_rank() == 0

    @property
    def n_nodes(self) -> int:
        return self.comm.allreduce(1 if self.is_leader else 0)


def topology(comm: Any, ranks_per_node: int | None = None) -> Topology:
    """Split ``comm`` into nodes (real ones, or fake ones of ``ranks_per_node`` consecutive
    ranks) and their leaders.  Collective over ``comm``."""
    MPI = mpi()
    if ranks_per_node is not None:
        if ranks_per_node < 1:
            raise ValueError(f"ranks_per_node must be at least 1, got {ranks_per_node}")
        node = comm.Split(comm.Get_rank() // ranks_per_node, comm.Get_rank())
    else:
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, comm.Get_rank())
    leader = node.Get_rank() == 0
    leaders = comm.Split(0 if leader else MPI.UNDEFINED, comm.Get_rank())
    return Topology(comm, node, leaders if leader else None)
