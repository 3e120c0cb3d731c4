"""Distributed training under a real MPI launcher (``mpiexec -n 2`` and ``-n 4``,
oversubscribed on small machines): the hierarchical all-reduce against a flat one,
replicas against one rank with the combined batch, resume with another replica count,
and the fault cases (a killed rank, NaN on one rank, a checkpoint write cut short).
Each case runs the scripts in ``tests/mpi`` through ``mpiexec`` with a timeout; they
skip, with the reason, where mpi4py or an MPI launcher is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wengert.hpcgan.distributed.mpi import launched_with_several_ranks
from wengert.hpcgan.distributed.sharding import check_shards, draw_shard, draw_shards
from wengert.hpcgan.errors import TrainingError
from wengert.hpcgan.pigan.config import make_config

sys.path.insert(0, str(Path(__file__).parent))
from pigan_line import line_problem

SCRIPTS = Path(__file__).parent / "mpi"
TIMEOUT = 240  # seconds per launch; a hang fails the test instead of blocking CI


def _launcher() -> list[str]:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed: pip install 'wengert-hpcgan[mpi]'")
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec on PATH: pip install 'wengert-hpcgan[mpi]' (the mpich wheel)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True,
                             check=False).stdout
    if "HYDRA" in version:  # MPICH: survivors of a dead rank are left to the watchdog
        return [found, "-disable-auto-cleanup"]
    if "Open MPI" in version or "OpenRTE" in version:
        return [found, "--oversubscribe"]
    pytest.skip(f"unknown MPI launcher {found} (the tests know MPICH's and Open MPI's)")


def mpiexec(n: int, script: str, *args: str) -> subprocess.CompletedProcess:
    command = [*_launcher(), "-n", str(n), sys.executable, str(SCRIPTS / script), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{' '.join(command)} hung for {TIMEOUT} s:\n{exc.stderr}") from None


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def ended_for_dead_rank(result: subprocess.CompletedProcess, rank: int) -> None:
    """The job ended non-zero, and either the watchdog named the dead rank or (MPICH's
    Hydra does this in some runs, before the watchdog's timeout) the launcher itself
    reported the killed process and ended the job."""
    assert result.returncode != 0
    text = result.stdout + result.stderr
    named = f"no answer from rank {rank} (died or hung); aborting all 2 ranks" in text
    assert named or "Killed (signal 9)" in text, text


def checkpoint_iteration(folder: Path, prefix: str = "") -> int:
    from safetensors.numpy import load_file

    return int(load_file(str(folder / "checkpoint.safetensors"))[prefix + "steps"][0])


@pytest.mark.parametrize("ranks", [2, 4])
def test_hierarchical_allreduce_equals_flat_allreduce(ranks):
    out = ok(mpiexec(ranks, "check_allreduce.py"))
    assert out.count("ok:") == 4, out  # real nodes and 1, 2, 3 ranks per fake node


@pytest.mark.parametrize("ranks", [2, 4])
def test_replicas_train_like_one_rank_with_the_combined_batch(ranks):
    assert f"ok: {ranks} replicas vs one rank" in ok(mpiexec(ranks, "check_replicas.py"))


def test_resume_with_another_replica_count_continues_the_run_exactly(tmp_path):
    assert "ok: resumed on 1 replica == uninterrupted on 2" in ok(
        mpiexec(2, "run_line.py", "resume", str(tmp_path)))


@pytest.mark.parametrize("ranks", [2, 4])
def test_split_placement_trains_like_one_rank_with_both_players(ranks):
    assert f"ok: split placement on {ranks} ranks vs one rank" in ok(
        mpiexec(ranks, "check_split.py"))


@pytest.mark.parametrize("placement", ["together", "split"])
def test_killed_rank_ends_the_job_naming_it_and_keeps_the_checkpoint(tmp_path, placement):
    ended_for_dead_rank(mpiexec(2, "run_line.py", "kill", str(tmp_path), placement), 1)
    assert checkpoint_iteration(tmp_path / "run") == 2


@pytest.mark.parametrize("placement", ["together", "split"])
def test_nan_on_one_rank_stops_every_rank_at_the_same_iteration(tmp_path, placement):
    result = mpiexec(2, "run_line.py", "nan", str(tmp_path), placement)
    assert result.returncode == 2, result.stderr
    for rank in (0, 1):
        assert (f"rank {rank} stopped: training stopped at iteration 3 on all 2 ranks: rank 1 "
                "computed a non-finite") in result.stderr
    assert checkpoint_iteration(tmp_path / "run") == 2


def test_checkpoint_write_cut_short_leaves_the_last_good_checkpoint(tmp_path):
    ended_for_dead_rank(mpiexec(2, "run_line.py", "killwrite", str(tmp_path)), 0)
    assert checkpoint_iteration(tmp_path / "run") == 2  # not the iteration-4 file being written


def test_checkpoint_gather_is_watched_and_a_hung_rank_aborts_it():
    result = mpiexec(2, "check_gather.py")
    assert "ok: watched gather == comm.gather" in result.stdout, result.stdout + result.stderr
    assert result.returncode != 0 and "the gather returned" not in result.stdout
    assert ("gathering the subdomains' checkpoint (rank 1 hangs) did not complete within 2 s; "
            "no answer from rank 1 (died or hung); aborting all 2 ranks") in result.stderr, (
        result.stderr)


def test_mpiexec_train_on_tiny_and_layout_errors_printed_once(tiny_data, tmp_path):
    train = ["-m", "wengert.hpcgan.cli", "train", "--preset", "tiny", "--data",
             str(tiny_data), "--backend", "eager", "--steps", "2", "--quiet",
             "--set", "width=8", "depth=2", "critic_width=8", "critic_depth=2", "batch=8",
             "physics_batch=2", "collocation=16", "boundary=8", "log_every=1"]
    command = [*_launcher(), "-n", "2", sys.executable]
    run = subprocess.run([*command, *train, "--out", str(tmp_path / "run"), "--ranks-per-node",
                          "1"], capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("trained 2 iterations") == 1
    assert checkpoint_iteration(tmp_path / "run") == 2
    wrong = subprocess.run([*command, *train, "--out", str(tmp_path / "wrong"), "--replicas",
                            "4"], capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert wrong.returncode == 2
    assert wrong.stderr.count("1 subdomain(s) x 4 replica(s) need 4 MPI ranks, but the job "
                              "has 2") == 1
    assert not (tmp_path / "wrong").exists()  # refused before any folder was made
    split = subprocess.run([*command, *train, "--out", str(tmp_path / "split"), "--placement",
                            "split", "--replicas", "2"], capture_output=True, text=True,
                           timeout=TIMEOUT, check=False)
    assert split.returncode == 2
    assert split.stderr.count("2 role(s) (generators, critic) x 2 replica(s) need 4 MPI ranks"
                              ", but the job has 2") == 1


def test_two_subdomains_of_two_replicas_resume_on_one_replica_each(tiny_data, tmp_path):
    train = ["-m", "wengert.hpcgan.cli", "train", "--preset", "tiny", "--data",
             str(tiny_data), "--backend", "eager", "--quiet", "--out", str(tmp_path / "run"),
             "--decomp", "2x1", "--set", "width=8", "depth=2", "critic_width=8",
             "critic_depth=2", "batch=8", "physics_batch=2", "collocation=16", "boundary=8",
             "log_every=1"]
    four = subprocess.run([*_launcher(), "-n", "4", sys.executable, *train, "--steps", "2",
                           "--ranks-per-node", "2"], capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert four.returncode == 0, four.stderr
    layout = json.loads((tmp_path / "run" / "run.json").read_text())["distributed"]
    assert layout == {"data_shards": 2, "decomp": "2x1", "overlap": 2, "interface_weight": 1.0}
    two = subprocess.run([*_launcher(), "-n", "2", sys.executable, *train, "--steps", "3",
                          "--resume"], capture_output=True, text=True, timeout=TIMEOUT,
                         check=False)
    assert two.returncode == 0, two.stderr
    assert checkpoint_iteration(tmp_path / "run", "subdomain_1.") == 3


def test_two_subdomains_on_tiny_train_and_evaluate_stitched(tiny_data, tmp_path):
    """Level 1 end to end: ``mpiexec -n 2 ... --decomp 2x1`` trains both subdomains with
    the interface term, and ``evaluate`` reports finite errors of the stitched fields.
    (Whether they are within 1.5x of one domain's needs longer training than CI allows:
    the manual ``test_decomposition_accuracy.py`` asserts it.)"""
    from wengert.hpcgan.pigan.evaluation import evaluate
    from wengert.hpcgan.pigan.training import read_metrics

    run = tmp_path / "run"
    two = subprocess.run([*_launcher(), "-n", "2", sys.executable, "-m", "wengert.hpcgan.cli",
                          "train", "--preset", "tiny", "--data", str(tiny_data), "--backend",
                          "eager", "--steps", "10", "--quiet", "--out", str(run), "--decomp",
                          "2x1", "--set", "width=8", "depth=2", "critic_width=8",
                          "critic_depth=2", "batch=8", "physics_batch=2", "collocation=16",
                          "boundary=8", "log_every=1"], capture_output=True, text=True,
                         timeout=TIMEOUT, check=False)
    assert two.returncode == 0, two.stderr
    rows = read_metrics(run)
    assert [r["iteration"] for r in rows] == list(range(1, 11))
    assert all(np.isfinite(r["interface"]) and r["interface"] > 0 for r in rows)
    site = evaluate(run, samples=20, figures=False)["pigan"]["site"]
    for key in ("u_mean_rel_l2", "u_std_rel_l2", "Y_mean_rms_in_sigma", "Y_std_rel_l2"):
        assert np.isfinite(site[key])


# ---- in-process: the sharded batch ----------------------------------------------------------

CONFIG = make_config(({"batch": 8, "physics_batch": 4, "collocation": 8, "boundary": 2},
                      "test"))


def test_a_rank_owning_several_shards_draws_their_concatenation():
    problem, observed = line_problem()
    for kind in ("critic 0", "generator 0"):
        whole = draw_shards(problem, observed.snapshots, CONFIG, 5, kind, range(4), 4,
                            np.float64)
        parts = [draw_shard(problem, observed.snapshots, CONFIG, 5, kind, s, 4)
                 for s in range(4)]
        assert whole["xi"].shape == (8, CONFIG.latent_dim)
        np.testing.assert_array_equal(whole["xi"], np.concatenate([p["xi"] for p in parts]))
        assert not np.array_equal(parts[0]["xi"], parts[1]["xi"])
        if kind.startswith("generator"):  # the points are shared by every shard
            for p in parts:
                np.testing.assert_array_equal(p["x"], whole["x"])


def test_batches_that_do_not_split_into_the_shards_are_refused():
    with pytest.raises(TrainingError, match="physics_batch = 4 does not split into 8"):
        check_shards(CONFIG, 8, 8)
    with pytest.raises(TrainingError, match="3 replicas cannot share 4 data shards"):
        check_shards(CONFIG, 4, 3)


def test_launcher_environment_is_read_without_initialising_mpi(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_NTASKS",
                 "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_with_several_ranks()
    monkeypatch.setenv("PMI_SIZE", "4")
    assert launched_with_several_ranks()


@pytest.mark.parametrize("mixed_precision, tolerance", [("none", 1e-12), ("bf16", 2e-2)])
def test_split_step_functions_compose_to_the_colocated_gradients(mixed_precision, tolerance):
    """What split placement's two roles compute (snapshots, the critic's cotangent, the
    physics gradient, the pullback of the cotangent) adds up to the colocated step's
    gradient and metrics: exactly in float64, to bfloat16's rounding in mixed precision."""
    from wengert import ad
    from wengert.hpcgan.distributed.placement import generator_metrics, make_split_steps
    from wengert.hpcgan.pigan.steps import draw_batch, make_steps
    from wengert.hpcgan.pigan.training import initial_state

    problem, observed = line_problem()
    dtype = "float64" if mixed_precision == "none" else "float32"
    config = make_config(({"latent_dim": 2, "width": 8, "depth": 2, "critic_width": 8,
                           "critic_depth": 2, "batch": 8, "physics_batch": 4, "collocation": 8,
                           "boundary": 2, "dtype": dtype, "mixed_precision": mixed_precision,
                           "w_adv": 0.7}, "test"))
    state = initial_state(problem, observed, config)
    snapshots = observed.normaliser(problem, np.dtype(dtype))
    whole, split = make_steps(config, snapshots), make_split_steps(config, snapshots)
    batch = draw_batch(problem, observed.snapshots, config, 1, "generator 0", np.dtype(dtype))
    expected, metrics = whole.generator_gradients(state.generators, state.critic, batch)
    fake = split.snapshots(state.generators, batch["xi"])
    adversarial, cotangent = split.adversarial_cotangent(state.critic, fake)
    physics, terms = split.physics_gradients(state.generators, batch)
    got = split.adversarial_gradients(state.generators, batch["xi"], cotangent, physics)
    flat = [np.concatenate([np.ravel(a) for a in ad.tree_leaves(g)]) for g in (got, expected)]
    assert flat[0].dtype == np.dtype(dtype)
    assert np.linalg.norm(flat[0] - flat[1]) <= tolerance * np.linalg.norm(flat[1])
    mine = generator_metrics(config, terms, float(adversarial))
    for key in ("adversarial", "pde", "bc", "generator_loss"):
        np.testing.assert_allclose(float(mine[key]), float(metrics[key]), rtol=tolerance)
