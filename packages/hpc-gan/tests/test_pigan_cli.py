"""``wengert-hpcgan train`` and ``evaluate`` end to end on ``tiny`` (small networks, a few
iterations): the run folder, the metrics, the figures and report, and the errors a user
meets first. (Eager against compiled training is in ``integration_tests/``.)"""

from __future__ import annotations

import json

import numpy as np
from wengert.hpcgan import load_preset, simulate
from wengert.hpcgan.cli import main

FAST = ["width=8", "depth=2", "critic_width=8", "critic_depth=2", "batch=8", "physics_batch=2",
        "collocation=16", "boundary=8", "checkpoint_every=2", "log_every=1", "critic_steps=1"]


def train(data, out, *extra):
    return main(["train", "--preset", "tiny", "--data", str(data), "--out", str(out),
                 "--backend", "eager", "--steps", "3", "--quiet", "--set", *FAST, *extra])


def test_train_then_evaluate_writes_metrics_figures_and_report(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(tiny_data, run) == 0
    assert {"run.json", "checkpoint.safetensors", "metrics.jsonl"} <= {p.name for p in
                                                                     run.iterdir()}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert {"wasserstein", "pde", "bc", "generator_grad_norm", "step_time"} <= set(rows[0])
    baseline = tmp_path / "nophysics"
    assert train(tiny_data, baseline, "w_pde=0", "w_bc=0") == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--samples", "20", "--compare", str(baseline)]) == 0
    printed = capsys.readouterr().out
    assert "PI-GAN vs Monte Carlo" in printed and "compared run" in printed
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("u_mean_rel_l2", "u_std_rel_l2", "Y_mean_rms_in_sigma", "Y_std_rel_l2"):
        assert np.isfinite(metrics["pigan"]["site"][key])
        assert np.isfinite(metrics["baseline_run"]["pigan"]["validation_wells"][key])
    assert metrics["mean_conductivity_solve"]["site"]["u_std_rel_l2"] == 1.0  # no spread
    assert metrics["pigan"]["fv_residual"] > 0
    for name in ("statistics", "errors", "histograms", "losses", "site"):
        assert (run / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    page = (run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "compared run" in page
    assert "<table class='configuration'><tr><th>preset</th><td>tiny</td>" in page
    assert "<th>w_pde</th>" in page and "validation wells (never trained on)" in page


def test_user_errors_are_messages_with_the_fix(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(tiny_data, run) == 0
    capsys.readouterr()
    assert train(tiny_data, run) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert train(tiny_data, run, "width=9") == 2  # no --resume: still refused, nothing touched
    capsys.readouterr()
    assert main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(run),
                 "--resume", "--quiet", "--set", *FAST, "width=9"]) == 2
    assert "changed setup: config.width was 8, now 9" in capsys.readouterr().err
    assert train(tiny_data, tmp_path / "x", "widht=3") == 2
    assert "did you mean 'width'" in capsys.readouterr().err
    small = tmp_path / "small-data"
    simulate(load_preset("small"), small, samples=1, workers=1, progress=False)
    assert train(small, tmp_path / "y") == 2
    assert "holds a dataset of preset 'small', not 'tiny'" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is not a PI-GAN run" in capsys.readouterr().err
