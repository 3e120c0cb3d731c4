"""Distributed PI-GAN training on MPI: the hierarchical all-reduce, data-parallel
replicas with sharded batches, coordinated checkpoints and a watchdog that turns a dead
rank into a clean abort.  See "Distributed training" in the package README.

Importing this package does not initialise MPI; building a `Topology` or running
`run_distributed` does (mpi4py from the ``mpi`` extra)."""

from .allreduce import HierarchicalAllreduce, flat_allreduce
from .loop import Parallel, run_distributed
from .sharding import draw_shard, draw_shards
from .topology import Topology, topology
from .watchdog import Watchdog

__all__ = ["HierarchicalAllreduce", "Parallel", "Topology", "Watchdog", "draw_shard",
           "draw_shards", "flat_allreduce", "run_distributed", "topology"]
