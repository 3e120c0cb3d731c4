"""GPU binding and the choice of the gradient all-reduce (NCCL or MPI), as functions of
what a rank finds; they run without a GPU.  The NCCL path itself runs under mpiexec on
GPUs only (``test_nccl_allreduce_equals_flat_allreduce_on_gpus`` and
``benchmarks/gpu_pigan_check.sh``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wengert.hpcgan.distributed.devices import (
    Binding,
    HostStaged,
    choose_reducer,
    gpu_for,
    nccl_available,
    to_host,
)
from wengert.hpcgan.errors import TrainingError


def test_each_rank_of_a_node_takes_the_gpu_of_its_node_local_rank():
    assert [gpu_for(r, 4, 4) for r in range(4)] == [0, 1, 2, 3]
    assert [gpu_for(r, 6, 8) for r in range(6)] == [0, 1, 2, 3, 4, 5]
    # the launcher isolated one GPU per rank (CUDA_VISIBLE_DEVICES): every rank's is 0
    assert [gpu_for(r, 6, 1) for r in range(6)] == [0] * 6


def test_more_ranks_than_gpus_or_no_gpu_is_an_error_naming_the_fix():
    with pytest.raises(TrainingError, match="8 ranks on this node but 4 GPUs; launch at most 4"):
        gpu_for(5, 8, 4)
    with pytest.raises(TrainingError, match="sees no GPU"):
        gpu_for(0, 1, 0)


def test_nccl_is_chosen_only_for_gpu_ranks_with_nccl_and_a_gpu_each():
    assert choose_reducer("cpu", True, [])[0] == "mpi"
    assert choose_reducer("gpu", True, ["0000:07:00.0", "0000:0b:00.0"])[0] == "nccl"
    kind, why = choose_reducer("gpu", False, ["0000:07:00.0", "0000:0b:00.0"])
    assert kind == "mpi" and "cupy.cuda.nccl is not available" in why
    kind, why = choose_reducer("gpu", True, ["0000:07:00.0", "0000:07:00.0"])
    assert kind == "mpi" and "share a GPU, which NCCL refuses" in why


class _Summing:
    """A stand-in for the MPI all-reduce over 2 ranks whose other rank holds ``other``."""

    def __init__(self, other: dict) -> None:
        self.other, self.seen = other, None

    def mean_tree(self, tree: dict) -> dict:
        self.seen = tree
        return {k: (v + self.other[k]) / 2 if v is not None else None for k, v in tree.items()}


def test_host_staged_fallback_averages_host_copies_and_returns_to_the_device():
    other = {"w": np.full((2, 3), 3.0, np.float32), "b": None}
    host = _Summing(other)
    mine = {"w": np.ones((2, 3), np.float32), "b": None}
    out = HostStaged(host, Binding("cpu")).mean_tree(mine)
    assert all(isinstance(v, np.ndarray) for v in host.seen.values() if v is not None)
    np.testing.assert_array_equal(out["w"], np.full((2, 3), 2.0, np.float32))
    assert out["b"] is None


def test_to_host_keeps_numbers_and_none_and_copies_arrays():
    tree = {"a": np.arange(3.0), "n": 7, "none": None}
    out = to_host(tree)
    assert out["n"] == 7 and out["none"] is None
    np.testing.assert_array_equal(out["a"], tree["a"])


def _gpus() -> int:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 -- no cupy, no driver or no device: all mean none
        print(f"no usable GPU: {exc}")
        return 0


@pytest.mark.gpu
def test_nccl_allreduce_equals_flat_allreduce_on_gpus():
    """One rank per GPU, at most 2 (with one GPU the NCCL communicators have one rank:
    the packing, DLPack and stream paths still run)."""
    count = _gpus()
    if count < 1 or not nccl_available():
        pytest.skip(f"needs a GPU and cupy.cuda.nccl (found {count} GPU(s), NCCL "
                    f"{'available' if nccl_available() else 'missing'}); "
                    "benchmarks/gpu_pigan_check.sh runs it on a GPU machine")
    launcher = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
    script = Path(__file__).parent / "mpi" / "check_nccl.py"
    result = subprocess.run([launcher, "-n", str(min(count, 2)), sys.executable, str(script)],
                            capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0 and "ok: NCCL" in result.stdout, result.stdout + result.stderr


class _Comm:
    """A communicator stand-in whose ``allgather`` returns this rank's value beside the
    other ranks' ``others``."""

    def __init__(self, others: list) -> None:
        self.others = others

    def allgather(self, mine):
        return [mine, *self.others]


class _Topology:
    def __init__(self, node_others: list, comm_others: list) -> None:
        self.node, self.comm = _Comm(node_others), _Comm(comm_others)


class _Device:
    def __init__(self, index: int) -> None:
        self.pci_bus_id = f"0000:0{index}:00.0"


class _FakeCupy:
    class cuda:
        Device = _Device


@pytest.fixture
def gpu_rank(monkeypatch):
    """A rank bound to GPU 1 with NCCL available, and a stand-in NCCL reducer."""
    from wengert.hpcgan.distributed import devices, nccl

    monkeypatch.setattr(devices, "nccl_available", lambda: True)
    monkeypatch.setattr(devices, "_cupy", lambda: _FakeCupy)
    monkeypatch.setattr(nccl, "NcclAllreduce", lambda topology, watchdog: ("nccl", topology))
    return Binding("gpu", 1)


def test_gradient_reducer_is_nccl_when_every_rank_can_run_it(gpu_rank, capsys):
    from wengert.hpcgan.distributed.devices import gradient_reducer

    topology = _Topology(["0000:02:00.0"], ["nccl"])
    assert gradient_reducer(gpu_rank, "host", topology, None, announce=True) == (
        "nccl", topology)
    assert "gradient all-reduce: NCCL on the GPUs" in capsys.readouterr().err


def test_gradient_reducer_falls_back_to_mpi_when_a_gpu_is_shared_or_a_rank_lacks_nccl(
        gpu_rank, capsys):
    from wengert.hpcgan.distributed.devices import gradient_reducer

    shared = gradient_reducer(gpu_rank, "host", _Topology(["0000:01:00.0"], ["mpi"]), None,
                              announce=True)
    assert isinstance(shared, HostStaged) and shared.host == "host"
    assert "share a GPU, which NCCL refuses" in capsys.readouterr().err
    other = gradient_reducer(gpu_rank, "host", _Topology(["0000:02:00.0"], ["mpi"]), None,
                             announce=True)
    assert isinstance(other, HostStaged)
    assert "some ranks cannot use NCCL" in capsys.readouterr().err


def test_gradient_reducer_on_the_cpu_is_the_mpi_all_reduce_itself():
    from wengert.hpcgan.distributed.devices import CPU, gradient_reducer

    assert gradient_reducer(CPU, "host", _Topology([], ["mpi"]), None, announce=True) == "host"
