"""Mixed precision (``--precision bf16``): bfloat16 layers on float32 master weights, with
the residual and the losses accumulated in float32, trains like float32 on ``tiny``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from wengert import ad
from wengert.hpcgan.cli import main
from wengert.hpcgan.pigan.config import ConfigError, make_config
from wengert.hpcgan.pigan.runs import train
from wengert.hpcgan.pigan.steps import draw_batch, make_steps
from wengert.hpcgan.pigan.training import initial_state, read_metrics

sys.path.insert(0, str(Path(__file__).parent))
from pigan_line import line_problem

SMALL = {"width": 32, "depth": 3, "critic_width": 32, "critic_depth": 3, "batch": 16,
         "physics_batch": 4, "collocation": 64, "boundary": 16, "log_every": 1}


def test_bf16_training_on_tiny_stays_within_tolerance_of_float32(tiny_data, tmp_path):
    """20 iterations, eager: the residual terms within 1 % of float32's at every
    iteration (measured: 0.3 %), the adversarial terms within 3 % + 0.01 (measured: at
    most 0.3 of that budget), and the master weights stay float32."""
    runs = {}
    for precision in ("float32", "bf16"):
        out, state = train("tiny", data=tiny_data, out=tmp_path / precision, backend="eager",
                           steps=20, overrides=SMALL, precision=precision, progress=False)
        runs[precision] = read_metrics(out)
        assert {np.asarray(a).dtype for a in ad.tree_leaves(state)
                if np.asarray(a).dtype.kind == "f"} == {np.dtype(np.float32)}
    single, mixed = runs["float32"], runs["bf16"]
    assert len(single) == len(mixed) == 20
    for key in ("pde", "bc"):
        a, b = (np.array([r[key] for r in rows]) for rows in (single, mixed))
        np.testing.assert_allclose(b, a, rtol=0.01, err_msg=key)
    for key in ("wasserstein", "penalty", "adversarial", "critic_loss", "generator_loss"):
        a, b = (np.array([r[key] for r in rows]) for rows in (single, mixed))
        np.testing.assert_allclose(b, a, rtol=0.03, atol=0.01, err_msg=key)
    assert max(abs(s["pde"] - m["pde"]) for s, m in zip(single, mixed)) > 0  # bf16 was used


def _line_step(mixed_precision: str, backend: str = "eager"):
    problem, observed = line_problem()
    config = make_config(({"latent_dim": 2, "width": 16, "depth": 3, "critic_width": 16,
                           "critic_depth": 2, "batch": 8, "physics_batch": 4,
                           "collocation": 16, "boundary": 2,
                           "mixed_precision": mixed_precision}, "test"))
    state = initial_state(problem, observed, config)
    steps = make_steps(config, observed.normaliser(problem, np.float32), backend)
    batch = draw_batch(problem, observed.snapshots, config, 1, "generator 0", np.float32)
    return steps, state, batch


def test_bf16_gradients_are_float32_and_close_to_float32_gradients():
    """The casts are differentiated: the master weights' gradient is float32, and within
    bfloat16's rounding (a few %) of the float32 gradient."""
    grads = {}
    for mode in ("none", "bf16"):
        steps, state, batch = _line_step(mode)
        g, _ = steps.generator_gradients(state.generators, state.critic, batch)
        grads[mode] = np.concatenate([np.asarray(a).ravel() for a in ad.tree_leaves(g)])
        assert grads[mode].dtype == np.float32
    exact, mixed = grads["none"], grads["bf16"]
    assert 0 < np.linalg.norm(mixed - exact) < 0.05 * np.linalg.norm(exact)


def test_compiled_bf16_step_multiplies_in_bfloat16():
    xla = pytest.importorskip("wengert.xla", reason="wengert-xla (and jax) are not installed")
    steps, state, batch = _line_step("bf16")
    text = xla.lower(steps.generator_gradients, state.generators, state.critic,
                     batch).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    assert dots and any("bf16" in line for line in dots), dots[:3]


def test_precision_choices_and_conflicts_are_refused_with_the_fix(tiny_data, tmp_path, capsys):
    with pytest.raises(ConfigError, match="keeps float32 master weights, but dtype is float64"):
        make_config(({"mixed_precision": "bf16", "dtype": "float64"}, "test"))
    assert main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out",
                 str(tmp_path / "run"), "--precision", "bf16", "--set", "dtype=float64"]) == 2
    assert ("--precision bf16 sets dtype=float32, but --set gives dtype=float64; give one of "
            "them") in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
