"""``wengert-hpcgan bench``: the counted FLOPs, the configurations it launches, the
efficiencies and the α–β model (in process), and one short weak-scaling run of
``bench`` and ``bench model`` under ``mpiexec`` (skipped, saying why, without MPI).
No timing is asserted anywhere: the numbers only have to be well formed."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from wengert.hpcgan.bench import model as bm
from wengert.hpcgan.bench import scaling
from wengert.hpcgan.bench.flops import analytic_flops, critic_flops, generator_flops
from wengert.hpcgan.cli import build_parser
from wengert.hpcgan.pigan.config import make_config
from wengert.hpcgan.pigan.networks import FieldGenerator
from wengert.hpcgan.pigan.problem import site_problem
from wengert.hpcgan.pigan.training import Observed, initial_state

SMALL = {"width": 8, "depth": 2, "critic_width": 8, "critic_depth": 2, "batch": 4,
         "physics_batch": 2, "collocation": 8, "boundary": 4}


def test_generator_flops_are_the_dense_layers_matmuls():
    g = FieldGenerator(2, 3, 5, 3, rng=np.random.default_rng(0))
    b, n = 4, 7
    # coords 2->5 on n points, latent 3->5 on b latents, two hidden 5->5 and 5->1 on b*n
    expected = 2 * n * 2 * 5 + 2 * b * 3 * 5 + 2 * (2 * b * n * 5 * 5) + 2 * b * n * 5
    assert generator_flops(g, b, n) == expected
    x = np.random.default_rng(1).standard_normal((n, 2)).astype(np.float32)
    xi = np.random.default_rng(2).standard_normal((b, 3)).astype(np.float32)
    assert g(x, xi).shape == (b, n)  # the shapes the count assumes


def test_counted_flops_scale_with_the_batch_and_add_interface_work(tiny):
    problem = site_problem(tiny)
    kc, kh = len(problem.conductivity_wells), len(problem.head_wells)
    observed = Observed(np.zeros((4, kc + kh)), kc)
    config = make_config((SMALL, "test"))
    state = initial_state(problem, observed, config)
    one = analytic_flops(problem, config, state.generators, state.critic)
    assert one.iteration == (config.critic_steps * one.critic_step
                             + config.generator_steps * one.generator_step)
    assert one.critic_step == (generator_flops(state.generators.Y, 4, kc)
                               + generator_flops(state.generators.u, 4, kh)
                               + 12 * critic_flops(state.critic, 4))
    double = make_config(({**SMALL, "batch": 8, "physics_batch": 4}, "test"))
    two = analytic_flops(problem, double, state.generators, state.critic)
    assert 1.8 < two.generator_step / one.generator_step <= 2.0  # first layer's x half is shared
    coupled = analytic_flops(problem, config, state.generators, state.critic, 16)
    assert coupled.generator_step > one.generator_step
    assert coupled.critic_step == one.critic_step


def test_configurations_weak_grows_the_batch_strong_keeps_it(monkeypatch):
    monkeypatch.setattr(scaling, "free_cores", lambda: 4)
    configs = scaling.configurations("tiny", [1, 2, 4], ["weak", "strong"], ["1x1", "2x1"],
                                     "eager", 8, 2)
    weak = [(c.decomp, c.ranks, c.replicas, c.batch) for c in configs if c.mode == "weak"]
    assert weak == [("1x1", 1, 1, 8), ("1x1", 2, 2, 16), ("1x1", 4, 4, 32),
                    ("2x1", 2, 1, 8), ("2x1", 4, 2, 16)]
    strong = {(c.decomp, c.ranks): c.batch for c in configs if c.mode == "strong"}
    assert strong == {("1x1", 1): 32, ("1x1", 2): 32, ("1x1", 4): 32, ("2x1", 2): 16,
                      ("2x1", 4): 16}


def test_configurations_refuse_oversubscription_and_impossible_layouts(monkeypatch):
    monkeypatch.setattr(scaling, "free_cores", lambda: 2)
    with pytest.raises(scaling.BenchError, match="exceeds the 2 free cores"):
        scaling.configurations("tiny", [1, 4], ["weak"], ["1x1"], "eager", 8, 2)
    assert scaling.configurations("tiny", [1, 4], ["weak"], ["1x1"], "eager", 8, 2,
                                  oversubscribe=True)
    with pytest.raises(scaling.BenchError, match="multiples of 4"):
        scaling.configurations("tiny", [1, 2], ["weak"], ["2x2"], "eager", 8, 2)
    with pytest.raises(scaling.BenchError, match="does not split into"):
        scaling.configurations("tiny", [1, 2, 3], ["strong"], ["1x1"], "eager", 3, 2,
                               oversubscribe=True)


def _measurement(mode: str, ranks: int, step: float) -> scaling.Measurement:
    config = scaling.Configuration(mode, ranks, "1x1", 1, "eager", "tiny", 8 * ranks, 2 * ranks)
    return scaling.Measurement(config, step, 0.25 * step, 10, 1e9 * ranks, None)


def test_efficiencies_against_the_fewest_ranks_and_the_table():
    results = scaling.with_efficiencies([_measurement("weak", 1, 0.10),
                                         _measurement("weak", 2, 0.125),
                                         _measurement("strong", 1, 0.2),
                                         _measurement("strong", 2, 0.125)])
    assert [m.efficiency for m in results] == pytest.approx([1.0, 0.8, 1.0, 0.8])
    assert results[1].flop_rate == pytest.approx(2e9 / 0.125)
    assert results[1].comm_fraction == pytest.approx(0.25)
    table = scaling.markdown_table(results, "header")
    assert table.count("\n| weak |") == 2 and "80.0 % (vs 1)" in table
    assert json.loads(json.dumps(results[1].to_dict()))["replicas"] == 2


def test_alpha_beta_fit_recovers_a_link():
    sizes = [8 << k for k in range(0, 19, 2)]
    link = bm.fit(sizes, [3e-6 + n / 2e9 for n in sizes])
    assert link.alpha == pytest.approx(3e-6, rel=1e-6)
    assert 1 / link.beta == pytest.approx(2e9, rel=1e-6)


def test_model_flat_and_hierarchical_all_reduce_times():
    intra, inter = bm.Link(1.0, 0.0), bm.Link(10.0, 0.0)
    ranks = np.array([1, 2, 6, 12, 24])
    # latency only: flat = 2⌈log2 P⌉ α (intra up to one node; across nodes the recursive
    # halving beats the ring's 2(P-1) α), hierarchical = inside the node + the leaders'
    np.testing.assert_allclose(bm.flat_seconds(ranks, 0, intra, inter), [0, 2, 6, 80, 100])
    np.testing.assert_allclose(bm.hierarchical_seconds(ranks, 0, intra, inter),
                               [0, 2, 6, 6 + 20, 6 + 40])
    # bandwidth only: in recursive halving a node's six ranks share its link, so the flat
    # all-reduce takes the ring; the hierarchical one sends one message per node across
    n, link, free = 1000.0, bm.Link(0.0, 1e-3), bm.Link(0.0, 0.0)
    assert bm.flat_seconds(np.array([12]), n, free, link)[0] == pytest.approx(2 * 11 / 12 * n
                                                                              * 1e-3)
    assert bm.hierarchical_seconds(np.array([12]), n, free, link)[0] == pytest.approx(n * 1e-3)
    inside = bm.hierarchical_seconds(np.array([6]), n, bm.Link(0.0, 1e-3), free)[0]
    assert inside == pytest.approx(4 * 5 / 6 * n * 1e-3)  # scatter+gather reduce and broadcast
    assert bm.efficiency(1.0, np.array([0.0, 1.0])).tolist() == [1.0, 0.5]


def test_model_from_measurements_predicts_summit_and_draws_both(tmp_path):
    weak = scaling.with_efficiencies([_measurement("weak", 1, 0.1),
                                      _measurement("weak", 2, 0.11)])
    sizes = [8 << k for k in range(0, 19, 2)]
    probe = {"ranks": 2, "bytes": sizes, "p2p_seconds": [1e-6 + n / 5e9 for n in sizes],
             "allreduce_seconds": [2e-6 + n / 3e9 for n in sizes]}
    result = bm.build_model(weak, [400_000] * 6, probe)
    assert result.compute_seconds == pytest.approx(0.075)  # the 1-rank step less its comm
    assert result.ranks[0] == 1 and result.ranks[-1] == bm.SUMMIT_GPUS
    assert result.hierarchical[0] == 1.0 and result.measured == [(1, 1.0), (2, pytest.approx(
        0.1 / 0.11))]
    flat, hier = result.at(bm.SUMMIT_GPUS)
    assert 0 < flat < hier < 1  # the flat one pays 2(P-1) latencies or a shared link
    text = "\n".join(bm.summary(result))
    assert "assumed" in text and "measured here" in text and "27,500" in text
    png = bm.plot(result, tmp_path / "model.png", "title")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bm.write_json(result, tmp_path / "model.json")
    saved = json.loads((tmp_path / "model.json").read_text())
    assert set(saved) == {"measured", "assumed", "modelled"}
    with pytest.raises(scaling.BenchError, match="1-rank"):
        bm.build_model(weak[1:], [1], probe)


def test_bench_command_line():
    args = build_parser().parse_args(["bench", "model", "--ranks", "1", "2", "--steps", "5"])
    assert (args.kind, args.ranks, args.steps, args.modes) == ("model", [1, 2], 5,
                                                               ["weak", "strong"])
    assert build_parser().parse_args(["bench"]).kind == "scaling"


def test_bench_model_runs_weak_scaling_under_mpiexec_and_fits_the_model(tmp_path):
    """``bench model``: two weak-scaling configurations (1 and 2 ranks, eager, small
    networks) through the same path as ``bench``, the probe, and the model fitted to them:
    a table, JSON and a PNG with finite, well-formed numbers."""
    pytest.importorskip("mpi4py", reason="pip install 'wengert-hpcgan[mpi]'")
    try:
        scaling.launcher()
    except scaling.BenchError as exc:
        pytest.skip(str(exc))
    common = ["--ranks", "1", "2", "--backend", "eager", "--steps", "3", "--warmup", "1",
              "--per-replica", "4", "--physics-per-replica", "1", "--work", str(tmp_path),
              "--oversubscribe", "--quiet", "--set",
              *[f"{k}={v}" for k, v in SMALL.items() if "batch" not in k]]
    done = subprocess.run([sys.executable, "-m", "wengert.hpcgan.cli", "bench", "model",
                           "--png", str(tmp_path / "m.png"), "--json", str(tmp_path / "m.json"),
                           "--markdown", str(tmp_path / "b.md"), "--probe-repeats", "3",
                           *common], capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "m.json").read_text())
    rows = saved["measured"]["runs"]
    assert [(r["config"]["ranks"], r["config"]["batch"]) for r in rows] == [(1, 4), (2, 8)]
    assert rows[0]["efficiency"] == 1.0 and rows[1]["efficiency"] > 0
    assert all(math.isfinite(r["flop_rate"]) and 0 <= r["comm_fraction"] < 1 for r in rows)
    assert rows[1]["flops"] == 2 * rows[0]["flops"]
    assert saved["measured"]["probe"]["ranks"] == 2
    assert (tmp_path / "b.md").read_text() in done.stdout
    assert "modelled at 27,500 GPUs" in done.stdout
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


def test_communication_time_starts_after_the_step_has_computed():
    """Regression: a compiled step returns before its arrays are computed, and the wait
    was timed as all-reduce time (40 % "communication" on one rank).  The loop now waits
    for every array of the gradients and metrics before it starts the clock."""
    from wengert.hpcgan.distributed.loop import _computed

    class Pending:
        waited = 0

        def block_until_ready(self):
            Pending.waited += 1
            return self

    _computed(({"w": Pending(), "b": [Pending(), np.zeros(2)]}, {"loss": Pending()}))
    assert Pending.waited == 3
