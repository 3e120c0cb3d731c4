"""The finite-volume solver: convergence order, exact layered solutions, mass balance,
and the structure of its matrix."""

import itertools
import sys

import numpy as np
import pytest
from wengert.hpcgan import BoundaryConditions, FlowSystem, rectangle_grid
from wengert.hpcgan.verification import convergence_study


def test_manufactured_solution_converges_at_second_order():
    rows = convergence_study((8, 16, 32, 64))
    assert rows[-1]["order_l2"] > 1.9
    assert rows[-1]["order_max"] > 1.7
    assert all(fine["l2"] < coarse["l2"] for coarse, fine in itertools.pairwise(rows))


def _channel(K_of_cell, nx=40, ny=8, head=(1.0, 0.0)):
    """A rectangle with heads on the west and east sides and no flow north and south."""
    grid = rectangle_grid(1.0, ny / nx, nx, ny)
    faces = grid.boundary_faces
    west, east = faces.side == 0, faces.side == 1
    bc = BoundaryConditions(
        dirichlet_cell=np.concatenate([faces.cell[west], faces.cell[east]]),
        dirichlet_head=np.concatenate([np.full(west.sum(), head[0]), np.full(east.sum(), head[1])]),
        neumann_cell=np.zeros(0, dtype=int),
        neumann_inflow=np.zeros(0),
    )
    system = FlowSystem(grid, bc, np.zeros(grid.n_active))
    return system, K_of_cell(grid)


def test_layers_in_series_reproduce_the_exact_1d_solution():
    """Layers normal to the flow, interfaces on cell faces: u(x) = u_W - q * int_0^x dx'/K,
    q = (u_W - u_E) / int_0^1 dx'/K.  Harmonic means make the scheme exact at the centres."""
    layers = np.array([1.0, 10.0, 0.1, 3.0, 0.5])

    def K_of_cell(grid):
        return layers[(grid.centres[:, 0] * len(layers)).astype(int)]

    system, K = _channel(K_of_cell)
    u = system.solve(K)
    h = system.grid.h
    K_row = K_of_cell(system.grid)[: system.grid.nx]
    resistance_to_centre = np.cumsum(h / K_row) - 0.5 * h / K_row
    q = 1.0 / np.sum(h / K_row)
    exact = 1.0 - q * resistance_to_centre
    assert np.allclose(u.reshape(system.grid.ny, -1), exact, rtol=0, atol=1e-12)
    assert np.allclose(
        system.dirichlet_outflow(K, u).sum(), 0.0, atol=1e-12
    )  # what enters west leaves east


def test_layers_parallel_to_the_flow_give_a_linear_head():
    system, K = _channel(lambda grid: np.exp(3 * np.sin(7 * grid.centres[:, 1])))
    u = system.solve(K)
    assert np.allclose(u, 1.0 - system.grid.centres[:, 0], atol=1e-12)


@pytest.fixture(scope="module")
def tiny_system(tiny):
    site = tiny.site
    K = np.exp(np.random.default_rng(3).normal(0.0, 1.0, site.grid.n_active))
    return FlowSystem(site.grid, site.boundary_conditions(), site.source()), K


def test_matrix_is_a_symmetric_positive_definite_m_matrix(tiny_system):
    system, K = tiny_system
    A, _ = system.assemble(K)
    dense = A.toarray()
    assert np.array_equal(dense, dense.T)
    off = dense - np.diag(np.diag(dense))
    assert np.all(np.diag(dense) > 0) and np.all(off <= 0)
    row_sums = dense.sum(axis=1)
    assert np.all(row_sums >= -1e-12)  # weakly diagonally dominant,
    assert np.any(row_sums > 1e-6)  # strictly on rows touching the river
    assert np.linalg.eigvalsh(dense).min() > 0
    assert np.all(
        np.linalg.inv(dense) >= -1e-12
    )  # monotone: non-negative data give non-negative heads


def test_discrete_mass_balance_with_direct_solver(tiny_system):
    system, K = tiny_system
    u = system.solve(K, "direct")
    assert system.mass_imbalance(K, u) < 1e-12
    sources = system.source.sum() + system.bc.neumann_inflow.sum()
    assert system.dirichlet_outflow(K, u).sum() == pytest.approx(sources, rel=1e-12)


def test_amg_solver_agrees_and_balances_mass(tiny_system):
    pytest.importorskip("pyamg")
    system, K = tiny_system
    before = np.random.get_state()[1].copy()
    u = system.solve(K, "amg", rtol=1e-11)
    assert np.array_equal(np.random.get_state()[1], before)  # the caller's global RNG is untouched
    assert np.array_equal(u, system.solve(K, "amg", rtol=1e-11))  # and the setup is reproducible
    assert np.allclose(u, system.solve(K, "direct"), atol=1e-8)
    assert system.mass_imbalance(K, u) < 1e-8


def test_amg_without_pyamg_is_a_clear_error(tiny_system, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyamg", None)
    system, K = tiny_system
    assert system.resolve_method("auto") == "direct"
    with pytest.raises(ValueError, match=r"pip install 'wengert-hpcgan\[amg\]'"):
        system.solve(K, "amg")


def test_invalid_conductivity_and_missing_dirichlet_are_rejected(tiny_system):
    system, K = tiny_system
    with pytest.raises(ValueError, match="positive"):
        system.solve(np.where(np.arange(len(K)) == 3, -1.0, K))
    with pytest.raises(ValueError, match="one value per active cell"):
        system.solve(K[:-1])
    bc = BoundaryConditions(
        np.zeros(0, dtype=int), np.zeros(0), np.zeros(0, dtype=int), np.zeros(0)
    )
    with pytest.raises(ValueError, match="no Dirichlet face"):
        FlowSystem(system.grid, bc, system.source)
