"""Which accelerator a rank computes on, and through what its gradients are averaged.

``--device gpu`` binds each rank to the GPU of its node-local rank (the ``k``-th rank
of a node, counted over ``MPI.COMM_TYPE_SHARED``, takes the node's ``k``-th visible
GPU, or its only one when the launcher gives every rank its own through
``CUDA_VISIBLE_DEVICES``): CuPy's current device for ``--backend eager``, the jax
device the steps are compiled for under ``--backend xla``.

Gradients living on GPUs are all-reduced by NCCL (`nccl.NcclAllreduce`); the MPI
all-reduce through host memory is the fallback, chosen with a printed reason when
``cupy.cuda.nccl`` is missing or when two ranks of a node drive the same GPU (NCCL
refuses a communicator with a GPU twice in it).  The choices are plain functions of
what was found, so they are tested on machines without a GPU.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from wengert import ad

from ..errors import TrainingError
from .mpi import mpi

DEVICES = ("cpu", "gpu")


class Reducer(Protocol):
    """What the training loop needs from a gradient all-reduce: the mean over the ranks
    of every array leaf of a tree (`HierarchicalAllreduce`, `NcclAllreduce`,
    `HostStaged`)."""

    def mean_tree(self, tree: Any) -> Any: ...


@dataclass(frozen=True)
class Binding:
    """This rank's device: ``gpu`` is the ordinal among the GPUs the process sees
    (``None`` on the CPU); ``handle`` is the backend's device object (a jax device
    under ``xla``, ``None`` otherwise)."""

    device: str
    gpu: int | None = None
    handle: Any = None

    def to_device(self, tree: Any) -> Any:
        """Host arrays of ``tree`` onto this rank's device (CuPy arrays on the GPU; the
        compiled backend copies host inputs itself, so ``xla`` trees stay as they are)."""
        if self.device == "gpu" and self.handle is None:
            return ad.to_device(tree, "gpu")
        return tree


#: The binding of a CPU rank.
CPU = Binding("cpu")


def to_host(tree: Any) -> Any:
    """Every array leaf of ``tree`` (NumPy, CuPy or jax) as a NumPy array; other leaves
    (numbers, ``None``) unchanged.  For checkpoints and MPI messages."""
    tree = ad.to_device(tree, "cpu")  # CuPy -> NumPy
    return ad.tree_map(lambda x: np.asarray(x) if hasattr(x, "__array__") else x, tree)


def gpu_for(local_rank: int, local_size: int, visible: int) -> int:
    """The GPU ordinal of the node's ``local_rank``-th of ``local_size`` ranks when the
    process sees ``visible`` GPUs, or an error naming the fix."""
    if visible < 1:
        raise TrainingError("--device gpu: this rank sees no GPU (check CUDA_VISIBLE_DEVICES "
                            "and the driver), or train with --device cpu")
    if visible == 1:
        return 0  # the launcher gave this rank its own GPU (or all ranks share one)
    if local_size > visible:
        raise TrainingError(f"--device gpu: {local_size} ranks on this node but {visible} "
                            f"GPUs; launch at most {visible} ranks per node (e.g. srun "
                            "--ntasks-per-node, jsrun -a1 -g1, mpiexec -ppn)")
    return local_rank


def choose_reducer(device: str, nccl_available: bool, node_gpus: list[str]) -> tuple[str, str]:
    """``("nccl" | "mpi", why)`` for a rank on ``device`` whose node's ranks drive the
    GPUs ``node_gpus`` (PCI bus ids, one per rank of the node)."""
    if device != "gpu":
        return "mpi", "gradients on the CPU"
    if not nccl_available:
        return "mpi", ("cupy.cuda.nccl is not available (install cupy with NCCL, e.g. "
                       "cupy-cuda12x and nvidia-nccl-cu12): gradients go through host memory")
    if len(set(node_gpus)) < len(node_gpus):
        return "mpi", ("ranks of one node share a GPU, which NCCL refuses: gradients go "
                       "through host memory; launch one rank per GPU for NCCL")
    return "nccl", "NCCL on the GPUs (node-local reduce, leaders' all-reduce, broadcast)"


def bind(device: str, backend: str, world: Any) -> Binding:
    """Bind this rank to its device (collective over ``world``: the node's ranks are
    counted)."""
    if device not in DEVICES:
        raise TrainingError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return CPU
    MPI = mpi()
    node = world.Split_type(MPI.COMM_TYPE_SHARED, world.Get_rank())
    local_rank, local_size = node.Get_rank(), node.Get_size()
    node.Free()
    if backend == "xla":
        # CuPy (NCCL buffers) shares the card with XLA: no preallocation of 75 % by jax.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        import jax

        gpus = _jax_gpus(jax)
        index = gpu_for(local_rank, local_size, len(gpus))
        _cupy_device(index)
        return Binding("gpu", index, gpus[index])
    cupy = _cupy()
    index = gpu_for(local_rank, local_size, cupy.cuda.runtime.getDeviceCount())
    _cupy_device(index)
    return Binding("gpu", index)


def gradient_reducer(binding: Binding, host: Any, topology: Any, watchdog: Any,
                     announce: bool) -> Reducer:
    """NCCL for GPU gradients where it can run, else ``host`` (the MPI all-reduce over
    the same ranks), staged through host memory for CuPy arrays.  Collective over
    ``topology.comm``; ``announce`` prints the choice (on one rank)."""
    available = binding.device == "gpu" and nccl_available()
    mine = _cupy().cuda.Device(binding.gpu).pci_bus_id if available else ""
    node_gpus = topology.node.allgather(mine) if binding.device == "gpu" else []
    kind, why = choose_reducer(binding.device, available, node_gpus)
    kinds = set(topology.comm.allgather(kind))
    if kinds != {kind}:  # one rank cannot run NCCL: every rank takes the fallback
        kind, why = "mpi", "some ranks cannot use NCCL: gradients go through host memory"
    if announce and binding.device == "gpu":
        print(f"wengert-hpcgan: gradient all-reduce: {why}", file=sys.stderr, flush=True)
    if kind == "nccl":
        from .nccl import NcclAllreduce

        return NcclAllreduce(topology, watchdog)
    return host if binding.device == "cpu" else HostStaged(host, binding)


class HostStaged:
    """The MPI all-reduce for gradients on a GPU: copied to host memory, averaged, copied
    back to the device (the fallback when NCCL cannot run)."""

    def __init__(self, host: Any, binding: Binding) -> None:
        self.host, self.binding = host, binding

    def mean_tree(self, tree: Any) -> Any:
        return self.binding.to_device(self.host.mean_tree(to_host(tree)))


def nccl_available() -> bool:
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, "available", True))


def _cupy() -> Any:
    try:
        import cupy
    except ImportError:
        raise TrainingError("--device gpu with --backend eager needs CuPy: pip install "
                            "cupy-cuda12x (or train with --backend xla, or --device cpu)"
                            ) from None
    return cupy


def _cupy_device(index: int) -> None:
    """Make GPU ``index`` CuPy's current device, where CuPy is installed (NCCL's buffers
    and eager arrays are allocated there)."""
    try:
        import cupy
    except ImportError:
        return
    cupy.cuda.Device(index).use()


def _jax_gpus(jax: Any) -> list:
    try:
        return list(jax.devices("gpu"))
    except RuntimeError:
        return []
