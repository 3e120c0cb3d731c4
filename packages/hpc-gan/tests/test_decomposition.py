"""Level 1's geometry: ``--decomp PxQ`` cores tile the site, grown boxes overlap, the
partition of unity sums to one, and a subdomain's problem keeps what lies in its box."""

from __future__ import annotations

import numpy as np
import pytest
from wengert.hpcgan import load_preset
from wengert.hpcgan.distributed.decomposition import decompose, parse_decomp, restrict
from wengert.hpcgan.errors import TrainingError
from wengert.hpcgan.pigan.problem import site_problem
from wengert.hpcgan.pigan.training import Observed


@pytest.fixture(scope="module")
def tiny_site():
    preset = load_preset("tiny")
    problem = site_problem(preset, "forward")
    k = len(problem.conductivity_wells) + len(problem.head_wells)
    observed = Observed(np.arange(5 * k, dtype=float).reshape(5, k),
                        len(problem.conductivity_wells))
    return preset.site.grid, problem, observed


def test_cores_tile_the_site_and_grown_boxes_overlap(tiny_site):
    grid, _, _ = tiny_site
    d = decompose(grid, 2, 2, overlap=2)
    assert len(d.subdomains) == 4
    centres = grid.centres
    in_core = [np.all((centres > s.core_lo) & (centres < s.core_hi), axis=1)
               for s in d.subdomains]
    assert np.array_equal(np.sum(in_core, axis=0), np.ones(grid.n_active))  # a tiling
    assert sorted(d.neighbours(0)) == [1, 2]  # edges, not the diagonal corner
    shared = d.shared_cells(0, 1)
    assert len(shared) > 0 and np.all(np.isin(shared, d.subdomains[1].cells))
    np.testing.assert_array_equal(d.normal(0, 1), [1.0, 0.0])
    np.testing.assert_array_equal(d.normal(0, 2), [0.0, 1.0])


def test_partition_of_unity_sums_to_one_and_is_one_deep_in_a_core(tiny_site):
    grid, _, _ = tiny_site
    d = decompose(grid, 2, 1, overlap=2)
    w = d.weights(grid.centres)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    assert np.all(w >= 0)
    left_deep = grid.centres[:, 0] < d.subdomains[0].core_hi[0] - 2 * d.ramp
    np.testing.assert_array_equal(w[0, left_deep], 1.0)
    blended = (w[0] > 0) & (w[1] > 0)
    assert blended.any()  # the overlap is blended, not cut


def test_subdomain_problem_keeps_its_wells_boundary_and_snapshot_columns(tiny_site):
    grid, problem, observed = tiny_site
    d = decompose(grid, 2, 1)
    total = 0
    for i, s in enumerate(d.subdomains):
        sub, obs = restrict(problem, observed, d, i)
        assert np.all(s.contains(sub.conductivity_wells)) and np.all(s.contains(sub.head_wells))
        assert obs.snapshots.shape[1] == len(sub.conductivity_wells) + len(sub.head_wells)
        assert obs.n_conductivity == len(sub.conductivity_wells)
        x = sub.sample_interior(np.random.default_rng(0), 200)
        assert np.all(s.contains(x)) and np.all(s.contains(sub.dirichlet_points))
        total += len(sub.conductivity_wells)
        kc = np.nonzero(s.contains(problem.conductivity_wells))[0]
        np.testing.assert_array_equal(obs.snapshots[:, 0], observed.snapshots[:, kc[0]])
    assert total >= len(problem.conductivity_wells)  # every well belongs somewhere


def test_bad_decompositions_are_refused_with_the_fix():
    assert parse_decomp("2x3") == (2, 3)
    for text in ("2", "0x1", "axb", ""):
        with pytest.raises(TrainingError, match="expected PxQ"):
            parse_decomp(text)
    grid = load_preset("tiny").site.grid
    with pytest.raises(TrainingError, match="choose fewer subdomains"):
        decompose(grid, 100, 1)


class _Constant:
    """A stand-in generator whose fields are one constant everywhere."""

    def __init__(self, value: float) -> None:
        self.value = value

    def Y(self, points, xi):
        return np.full((len(xi), len(points)), self.value)

    u = Y


def test_stitched_field_is_each_subdomains_deep_inside_and_blends_between(tiny_site):
    from wengert.hpcgan.distributed.stitching import StitchedGenerators

    grid, _, _ = tiny_site
    d = decompose(grid, 2, 1)
    stitched = StitchedGenerators(d, [_Constant(1.0), _Constant(3.0)])
    field = stitched.u(grid.centres, np.zeros((2, 4)))
    w = d.weights(grid.centres)
    np.testing.assert_allclose(field, np.broadcast_to(w[0] + 3 * w[1], field.shape))
    assert np.any(field[0] == 1.0) and np.any(field[0] == 3.0)
    between = (field[0] > 1.0) & (field[0] < 3.0)
    assert between.any() and np.all(np.isin(np.nonzero(between)[0], d.shared_cells(0, 1)))


def test_coupled_generator_gradient_weights_the_adversarial_term_by_w_adv():
    """With the interface term weighted 0, a subdomain's generator gradient is the
    single-domain step's, including ``w_adv`` (it used to weight the adversarial term 1)."""
    import sys
    from pathlib import Path

    from wengert import ad
    from wengert.hpcgan.distributed.interface import generator_gradients
    from wengert.hpcgan.pigan.config import make_config
    from wengert.hpcgan.pigan.steps import draw_batch, make_steps
    from wengert.hpcgan.pigan.training import initial_state

    sys.path.insert(0, str(Path(__file__).parent))
    from pigan_line import line_problem

    problem, observed = line_problem()
    config = make_config(({"latent_dim": 2, "width": 8, "depth": 2, "critic_width": 8,
                           "critic_depth": 2, "batch": 8, "physics_batch": 4, "collocation": 8,
                           "boundary": 2, "dtype": "float64", "w_adv": 0.3}, "test"))
    state = initial_state(problem, observed, config)
    snapshots = observed.normaliser(problem, np.float64)
    batch = draw_batch(problem, observed.snapshots, config, 1, "generator 0", np.float64)
    expected, metrics = make_steps(config, snapshots).generator_gradients(
        state.generators, state.critic, batch)
    x = np.array([[0.3], [0.6]])
    coupling = [(x, np.ones_like(x), np.zeros((4, 2)), np.zeros((4, 2)))]
    got, mine = generator_gradients(state.generators, state.critic, batch, snapshots, config,
                                    0.0, coupling)
    for a, b in zip(ad.tree_leaves(got), ad.tree_leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mine["generator_loss"], metrics["generator_loss"], rtol=1e-12)


def _coupled_case(tiny_site, **overrides):
    """A subdomain's players, one generator batch and one interface term (float64)."""
    from wengert.hpcgan.distributed.interface import interface_points, interfaces
    from wengert.hpcgan.pigan.config import make_config
    from wengert.hpcgan.pigan.steps import draw_batch
    from wengert.hpcgan.pigan.training import initial_state

    grid, problem, observed = tiny_site
    config = make_config(({"width": 6, "depth": 2, "critic_width": 6, "critic_depth": 2,
                           "batch": 3, "physics_batch": 2, "collocation": 5, "boundary": 4,
                           "dtype": "float64", **overrides}, "test"))
    d = decompose(grid, 2, 1)
    sub, obs = restrict(problem, observed, d, 0)
    state = initial_state(sub, obs, config)
    batch = draw_batch(sub, obs.snapshots, config, 1, "generator 0", np.float64)
    face = interfaces(d, 0, lambda j: j)[0]
    x, normal = interface_points(face, config, 1, 0, grid.h, np.float64)
    rng = np.random.default_rng(3)
    other = rng.standard_normal((2, config.physics_batch, len(x)))
    return config, obs.normaliser(sub, np.float64), state, batch, [(x, normal, *other)]


@pytest.mark.slow
def test_compiled_coupled_generator_step_equals_the_eager_one(tiny_site):
    """The xla backend compiles the interface-coupled gradient (and the values sent to the
    neighbour) into executables; they must give the eager numbers (float64, 1e-9)."""
    pytest.importorskip("wengert.xla", reason="pip install 'wengert-hpcgan[xla]'")
    from wengert import ad
    from wengert.hpcgan.distributed.interface import coupled_steps

    config, snapshots, state, batch, terms = _coupled_case(tiny_site)
    eager = coupled_steps(config, snapshots, 0.5, "eager")
    compiled = coupled_steps(config, snapshots, 0.5, "xla")
    x, normal = terms[0][:2]
    for a, b in zip(eager.values(state.generators, batch["xi_physics"], x, normal),
                    compiled.values(state.generators, batch["xi_physics"], x, normal)):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-9)
    (g1, m1), (g2, m2) = (s.gradients(state.generators, state.critic, batch, terms)
                          for s in (eager, compiled))
    for a, b in zip(ad.tree_leaves(g1), ad.tree_leaves(g2)):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-9, atol=1e-12)
    for key in ("interface", "pde", "generator_loss"):
        assert float(m2[key]) == pytest.approx(float(m1[key]), rel=1e-9)
