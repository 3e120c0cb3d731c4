"""Verification of the flow solver by a manufactured solution on a heterogeneous medium.

On the unit square, ``K = exp(0.8 sin(2 pi x) cos(pi y))`` and
``u = sin(2x + 0.5) cos(3y) + 0.5 x``; ``f = -div(K grad u)`` is derived by hand.
Heads are imposed on the west and south sides, the exact inflow ``K du/dn`` on the east
and north sides, so both kinds of boundary condition take part in the error.
"""

from __future__ import annotations

import itertools

import numpy as np

from .flow import BoundaryConditions, FlowSystem
from .geometry import NORMALS, rectangle_grid


def log_conductivity(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 0.8 * np.sin(2 * np.pi * x) * np.cos(np.pi * y)


def exact_head(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sin(2 * x + 0.5) * np.cos(3 * y) + 0.5 * x


def _head_gradient(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack(
        [2 * np.cos(2 * x + 0.5) * np.cos(3 * y) + 0.5, -3 * np.sin(2 * x + 0.5) * np.sin(3 * y)],
        axis=-1,
    )


def source_term(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``f = -K (laplacian u + grad Y . grad u)``."""
    laplacian = -13 * np.sin(2 * x + 0.5) * np.cos(3 * y)
    grad_y = np.stack(
        [
            1.6 * np.pi * np.cos(2 * np.pi * x) * np.cos(np.pi * y),
            -0.8 * np.pi * np.sin(2 * np.pi * x) * np.sin(np.pi * y),
        ],
        axis=-1,
    )
    return -np.exp(log_conductivity(x, y)) * (
        laplacian + np.sum(grad_y * _head_gradient(x, y), axis=-1)
    )


def manufactured_problem(n: int) -> tuple[FlowSystem, np.ndarray, np.ndarray]:
    """The system on an ``n`` x ``n`` grid, K at the cell centres and the exact heads there."""
    grid = rectangle_grid(1.0, 1.0, n, n)
    x, y = grid.centres.T
    faces = grid.boundary_faces
    fx, fy = faces.midpoint.T
    dirichlet = np.isin(faces.side, [0, 2])  # west, south
    inflow = (
        np.exp(log_conductivity(fx, fy))
        * np.sum(_head_gradient(fx, fy) * NORMALS[faces.side], axis=-1)
        * grid.h
    )
    bc = BoundaryConditions(
        dirichlet_cell=faces.cell[dirichlet],
        dirichlet_head=exact_head(fx, fy)[dirichlet],
        neumann_cell=faces.cell[~dirichlet],
        neumann_inflow=inflow[~dirichlet],
    )
    system = FlowSystem(grid, bc, source_term(x, y) * grid.h**2)
    return system, np.exp(log_conductivity(x, y)), exact_head(x, y)


def convergence_study(
    sizes: tuple[int, ...] = (16, 32, 64, 128), method: str = "direct"
) -> list[dict]:
    """Discrete L2 and max errors at the cell centres per grid, with the observed order
    ``log2(e_coarse / e_fine) / log2(h_coarse / h_fine)`` against the previous grid."""
    if any(n < 2 for n in sizes) or len(set(sizes)) != len(sizes):
        raise ValueError(
            f"grid sizes must be distinct and at least 2 cells per side, got {list(sizes)}"
        )
    rows = []
    for n in sizes:
        system, K, exact = manufactured_problem(n)
        error = system.solve(K, method) - exact
        h = system.grid.h
        rows.append(
            {
                "n": n,
                "h": h,
                "l2": float(np.sqrt(h * h * np.sum(error**2))),
                "max": float(np.abs(error).max()),
            }
        )
    for coarse, fine in itertools.pairwise(rows):
        ratio = np.log(coarse["h"] / fine["h"])
        fine["order_l2"] = float(np.log(coarse["l2"] / fine["l2"]) / ratio)
        fine["order_max"] = float(np.log(coarse["max"] / fine["max"]) / ratio)
    return rows
