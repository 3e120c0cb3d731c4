"""Shared fixtures of the integration suite: the installed ``wengert-hpcgan`` command, a
small ``tiny`` Monte Carlo dataset made with it, and a data-parallel run under MPI.

Everything here goes through what a user has after ``pip install``: the console scripts and
the public Python APIs, never a package's internals."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside (import-mode importlib)
from commands import FAST, installed, mpi_launcher, run


@pytest.fixture(scope="session")
def hpcgan() -> str:
    return installed("wengert-hpcgan")


@pytest.fixture(scope="session")
def tiny_data(hpcgan, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-data") / "data"
    run([hpcgan, "simulate", "--preset", "tiny", "--samples", "48", "--workers", "1",
         "--quiet", "--out", str(folder)])
    return folder


@pytest.fixture(scope="session")
def distributed_run(hpcgan, tiny_data, tmp_path_factory) -> Path:
    """``mpiexec -n 2 wengert-hpcgan train --replicas 2`` on tiny, then ``evaluate``."""
    folder = tmp_path_factory.mktemp("mpi-run") / "run"
    run([*mpi_launcher(), "-n", "2", hpcgan, "train", "--preset", "tiny", "--data",
         str(tiny_data), "--out", str(folder), "--backend", "eager", "--replicas", "2",
         "--steps", "4", "--quiet", "--set", *FAST])
    run([hpcgan, "evaluate", str(folder), "--samples", "40"])
    return folder
