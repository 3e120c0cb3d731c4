"""The PI-GAN training loop's guarantees: reproducible for a seed, resume = uninterrupted,
NaN stops without touching the last good checkpoint, Ctrl-C checkpoints, bad input and
bad run folders are refused with messages that name the fix."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from pigan_line import line_problem
from wengert.hpcgan.errors import TrainingDiverged, TrainingError, TrainingInterrupted
from wengert.hpcgan.pigan.config import ConfigError, make_config, parse_overrides
from wengert.hpcgan.pigan.training import (
    CHECKPOINT_FILE,
    initial_state,
    load_checkpoint,
    prepare_run_folder,
    read_metrics,
    run_training,
)

SMALL = {"latent_dim": 2, "width": 8, "depth": 2, "critic_width": 8, "critic_depth": 2,
         "batch": 8, "physics_batch": 2, "collocation": 8, "boundary": 2, "steps": 6,
         "checkpoint_every": 3, "log_every": 1, "critic_steps": 2, "generator_steps": 1,
         "dtype": "float64", "lr_generator": 1e-3, "lr_critic": 1e-3}


def config(**changes):
    return make_config((SMALL, "test"), (changes, "test changes"))


@pytest.fixture(scope="module")
def line():
    return line_problem()


def train(line, out: Path, cfg, resume=False, **kwargs):
    problem, observed = line
    if not resume:
        prepare_run_folder(out, {"config": cfg.fingerprint()}, resume=False)
    return run_training(problem, observed, cfg, out, resume=resume, progress=False, **kwargs)


def test_same_seed_same_metrics_other_seed_other_metrics(line, tmp_path):
    train(line, tmp_path / "a", config())
    train(line, tmp_path / "b", config())
    train(line, tmp_path / "c", config(seed=1))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "step_time"} for r in rows]
    a, b, c = (strip(read_metrics(tmp_path / n)) for n in "abc")
    assert len(a) == 6 and a == b
    assert a != c


def test_resumed_run_equals_uninterrupted_run(line, tmp_path):
    full = train(line, tmp_path / "full", config(steps=6))
    train(line, tmp_path / "part", config(steps=3))
    resumed = train(line, tmp_path / "part", config(steps=6), resume=True)
    for a, b in zip(ad_leaves(full), ad_leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "step_time"} for r in rows]
    assert strip(read_metrics(tmp_path / "full")) == strip(read_metrics(tmp_path / "part"))


def ad_leaves(state):
    from wengert import ad

    return [np.asarray(x) for x in ad.tree_leaves((state.generators, state.critic,
                                                   state.generator_opt, state.critic_opt))]


def test_nan_in_the_data_stops_and_keeps_the_last_good_checkpoint(line, tmp_path):
    problem, observed = line
    cfg = config(steps=3)
    train(line, tmp_path, cfg)
    before = (tmp_path / CHECKPOINT_FILE).read_bytes()
    poisoned = type(observed)(np.full_like(observed.snapshots, np.nan), observed.n_conductivity)
    with pytest.raises(TrainingDiverged, match=r"iteration 4: \w+ = nan \(not finite\).*last good checkpoint"):
        run_training(problem, poisoned, config(steps=6), tmp_path, resume=True, progress=False)
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == before
    assert load_checkpoint(tmp_path, initial_state(problem, observed, cfg)).iteration == 3


def test_ctrl_c_checkpoints_the_last_whole_iteration_and_resume_continues(line, tmp_path):
    def interrupt(state, metrics):
        if state.iteration == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="iteration 2 was checkpointed.*--resume"):
        train(line, tmp_path, config(checkpoint_every=100), on_iteration=interrupt)
    problem, observed = line
    assert load_checkpoint(tmp_path, initial_state(problem, observed, config())).iteration == 2
    assert train(line, tmp_path, config(), resume=True).iteration == 6


def test_run_folders_are_never_overwritten_or_resumed_with_another_setup(line, tmp_path):
    train(line, tmp_path, config(steps=2))
    with pytest.raises(TrainingError, match="already holds a run; pass --resume"):
        prepare_run_folder(tmp_path, {"config": config().fingerprint()}, resume=False)
    with pytest.raises(TrainingError, match=r"changed setup: config.width was 8, now 9"):
        prepare_run_folder(tmp_path, {"config": config(width=9).fingerprint()}, resume=True)
    # the length of a run may change on resume
    prepare_run_folder(tmp_path, {"config": config(steps=50).fingerprint()}, resume=True)
    with pytest.raises(TrainingError, match="nothing to resume"):
        prepare_run_folder(tmp_path / "empty", {"config": {}}, resume=True)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TrainingError, match="is not a folder"):
        prepare_run_folder(blocker, {}, resume=False)
    with pytest.raises(TrainingError, match="cannot create the run folder"):
        prepare_run_folder(blocker / "run", {}, resume=False)


def test_missing_or_truncated_checkpoint_is_refused(line, tmp_path):
    problem, observed = line
    cfg = config(steps=2)
    like = initial_state(problem, observed, cfg)
    with pytest.raises(TrainingError, match="has no checkpoint"):
        load_checkpoint(tmp_path, like)
    train(line, tmp_path, cfg)
    path = tmp_path / CHECKPOINT_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(TrainingError, match="cannot read the checkpoint.*damaged"):
        load_checkpoint(tmp_path, like)


def test_configuration_errors_name_the_key_and_the_fix():
    with pytest.raises(ConfigError, match="unknown training key 'widht'; did you mean 'width'"):
        make_config(({"widht": 3}, "here"))
    with pytest.raises(ConfigError, match="width must be at least 1, got 0"):
        make_config(({"width": 0}, "here"))
    with pytest.raises(ConfigError, match="width must be at most 16,384"):
        make_config(({"width": 10**6}, "here"))
    with pytest.raises(ConfigError, match="problem must be one of forward, inverse .*'inverse'"):
        make_config(({"problem": "invrse"}, "here"))
    with pytest.raises(ConfigError, match="beta2 must be in"):
        make_config(({"beta2": 1.0}, "here"))
    with pytest.raises(ConfigError, match="lr_critic must be a finite number"):
        make_config(({"lr_critic": "fast"}, "here"))
    with pytest.raises(ConfigError, match="nothing would train"):
        make_config(({"critic_steps": 0, "generator_steps": 0}, "here"))
    assert parse_overrides(["w_pde=0", "problem=inverse", "lr_critic=1e-3"]) == {
        "w_pde": 0, "problem": "inverse", "lr_critic": 1e-3}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["steps"])
    with pytest.raises(ConfigError, match="did you mean 'steps'"):
        parse_overrides(["stepz=3"])
    assert json.loads(json.dumps(make_config().to_dict()))["problem"] == "forward"


def test_well_limit_keeps_a_prefix_of_each_network():
    from wengert.hpcgan import load_preset
    from wengert.hpcgan.pigan.problem import site_problem

    preset = load_preset("tiny")
    full = site_problem(preset, "inverse")
    few = site_problem(preset, "inverse", well_limit=5)
    assert (len(full.conductivity_wells), len(full.head_wells)) == (3, 30)
    assert (len(few.conductivity_wells), len(few.head_wells)) == (3, 5)
    np.testing.assert_array_equal(few.head_wells, full.head_wells[:5])


def test_the_adversarial_weight_switches_the_critic_off_for_the_generator(line, tmp_path):
    """w_adv = 0 with no critic steps trains the generators on the physics alone (the
    experiment that separates how fast the residual falls from the adversarial game)."""
    state = train(line, tmp_path, config(w_adv=0.0, critic_steps=0, steps=4))
    rows = read_metrics(tmp_path)
    assert len(rows) == 4 and all("wasserstein" not in r for r in rows)
    assert state.critic_opt.step == 0
