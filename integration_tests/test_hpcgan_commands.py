"""``ad`` + ``nn`` + ``xla`` -> ``hpcgan``, through the installed ``wengert-hpcgan`` command:
the ``tiny`` PI-GAN trained with the eager and the compiled backend gives the same losses,
and a data-parallel run under ``mpiexec -n 2`` is evaluated into metrics and a report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from commands import FAST, run

# Eager and XLA run the same float64 arithmetic in a different order (XLA fuses and
# reassociates), so 20 steps of GAN training agree to rounding, not bit for bit.
RTOL, ATOL = 1e-7, 1e-10


def _losses(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_eager_and_xla_backends_train_tiny_to_the_same_losses(hpcgan, tiny_data, tmp_path):
    pytest.importorskip("wengert.xla", reason="wengert-xla (and jax) are not installed")
    for backend in ("eager", "xla"):
        run([hpcgan, "train", "--preset", "tiny", "--data", str(tiny_data), "--out",
             str(tmp_path / backend), "--backend", backend, "--steps", "20", "--quiet",
             "--set", *FAST, "dtype=float64"])
    eager, xla = _losses(tmp_path / "eager"), _losses(tmp_path / "xla")
    assert len(eager) == len(xla) == 20
    for e, x in zip(eager, xla):
        assert e["iteration"] == x["iteration"]
        for key in ("wasserstein", "penalty", "adversarial", "pde", "bc"):
            np.testing.assert_allclose(x[key], e[key], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{key} at iteration {e['iteration']}")


def test_mpiexec_replicas_train_then_evaluate_writes_metrics_and_report(distributed_run):
    description = json.loads((distributed_run / "run.json").read_text())
    assert description["distributed"]["data_shards"] == 2
    assert [r["iteration"] for r in _losses(distributed_run)] == [1, 2, 3, 4]
    metrics = json.loads((distributed_run / "metrics.json").read_text())
    for baseline in ("pigan", "mean_conductivity_solve"):
        for where in ("site", "validation_wells"):
            for key in ("u_mean_rel_l2", "u_std_rel_l2", "Y_mean_rms_in_sigma", "Y_std_rel_l2"):
                assert np.isfinite(metrics[baseline][where][key]), (baseline, where, key)
    page = (distributed_run / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
