"""Smoke test of the full-size ``hanford`` PI-GAN on the CPU: the data (93,575 cells,
1,738 KL modes: about 6 minutes on two cores) and 5 training iterations of the
preset's own configuration (two 6 x 1024 generators).  Not in CI's default run:
``pytest -m manual packages/hpc-gan/tests/test_pigan_hanford.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wengert.hpcgan import load_preset, simulate
from wengert.hpcgan.cli import main


@pytest.mark.manual
def test_hanford_starts_and_runs_five_iterations(tmp_path):
    data = tmp_path / "data"
    simulate(load_preset("hanford"), data, samples=16, seed=0, progress=False)
    run = tmp_path / "run"
    assert main(["train", "--preset", "hanford", "--data", str(data), "--out", str(run),
                 "--steps", "5", "--backend", "eager", "--quiet", "--set", "log_every=1",
                 "physics_batch=2"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(r["generator_loss"]) for r in rows)
