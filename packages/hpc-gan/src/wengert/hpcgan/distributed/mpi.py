"""The one place that imports mpi4py: a missing MPI is an error that names the fix, and a
single-process run never initialises MPI."""

from __future__ import annotations

import os
from typing import Any

from ..errors import TrainingError

#: Variables that MPI launchers (MPICH/Hydra, Open MPI, Slurm, PMIx/jsrun) set in every rank.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_NTASKS",
                            "MPI_LOCALNRANKS")


def mpi() -> Any:
    """The ``mpi4py.MPI`` module (initialises MPI on first use)."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise TrainingError("distributed training needs mpi4py and an MPI library: "
                            "pip install 'wengert-hpcgan[mpi]' (mpi4py and the mpich wheel), or "
                            "mpi4py built against your system MPI") from exc
    return MPI


def launched_with_several_ranks() -> bool:
    """Whether this process was started by an MPI launcher with more than one rank
    (read from the launcher's environment, without initialising MPI)."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        try:
            if int(os.environ.get(name, "1")) > 1:
                return True
        except ValueError:
            continue
    return False


def world_rank() -> int:
    """This process's rank in ``COMM_WORLD``."""
    return mpi().COMM_WORLD.Get_rank()
