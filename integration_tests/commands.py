"""Running the installed commands from the integration tests: where a console script is,
a timeout on every run, and an MPI launcher where one exists (a skip naming the install
where not)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 300  # seconds per command: a hang fails the test instead of blocking CI

# Small networks and batches: a few iterations of tiny train in seconds.
FAST = ["width=8", "depth=2", "critic_width=8", "critic_depth=2", "batch=8", "physics_batch=2",
        "collocation=16", "boundary=8", "checkpoint_every=2", "log_every=1", "critic_steps=1"]


def installed(name: str) -> str:
    """A console script of the environment running the tests (beside its python)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"the {name} command is not installed: pip install the package providing it")
    return found


def run(command: list[str], *, env: dict[str, str] | None = None,
        **kwargs) -> subprocess.CompletedProcess:
    """Run a command (in ``env``, or this process's environment) with a timeout; a
    non-zero exit fails with its output."""
    env = dict(os.environ if env is None else env, OMP_NUM_THREADS="1")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              env=env, check=False, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{' '.join(command)} hung for {TIMEOUT} s:\n{exc.stderr}") from None
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done


def mpi_launcher() -> list[str]:
    """``mpiexec`` with the flags our tests need, or a skip naming what to install."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed: pip install 'wengert-hpcgan[mpi]'")
    found = installed("mpiexec")
    version = subprocess.run([found, "--version"], capture_output=True, text=True,
                             check=False).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        return [found, "--oversubscribe"]
    return [found]
