"""Level 1: the site split into overlapping rectangular subdomains (``--decomp PxQ``).

The bounding box of the active cells is cut into ``P`` columns and ``Q`` rows of cells
(the *cores*, which tile the site); each subdomain is its core grown by ``overlap`` cells
on every side, clipped to the grid.  Subdomains whose core holds no active cell are
dropped.  A subdomain's problem keeps the collocation cells, boundary faces and wells
inside its grown box; neighbours (cores sharing an edge) share the active cells of the
intersection of their boxes, where the interface-continuity loss ties them together.

Stitching blends the subdomains' fields with a partition of unity: ``w_i(x)`` is 1 on
the core shrunk by half the overlap, falls linearly to 0 at the grown box's edge, and
``Σ_i w_i`` normalises it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from ..errors import TrainingError
from ..geometry import Grid
from ..pigan.problem import FlowProblem
from ..pigan.training import Observed

DEFAULT_OVERLAP = 2  # cells


def parse_decomp(text: str) -> tuple[int, int]:
    """``"PxQ"`` → ``(P, Q)``: ``P`` subdomains along x, ``Q`` along y."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise TrainingError(f"--decomp {text!r}: expected PxQ with P, Q ≥ 1, e.g. --decomp 2x1")
    return int(match[1]), int(match[2])


@dataclass(frozen=True, eq=False)
class Subdomain:
    index: int  # position among the kept subdomains
    lo: np.ndarray  # (2,) lower corner of the grown box (scaled coordinates)
    hi: np.ndarray  # (2,) upper corner of the grown box
    core_lo: np.ndarray
    core_hi: np.ndarray
    cells: np.ndarray  # active-cell indices inside the grown box

    def contains(self, points: np.ndarray) -> np.ndarray:
        return np.all((points >= self.lo) & (points <= self.hi), axis=1)

    def weight(self, points: np.ndarray, ramp: float) -> np.ndarray:
        """The unnormalised partition-of-unity weight at ``points``: 1 deep inside the
        core, linear over ``ramp`` to 0 at the grown box's edge."""
        inside = np.minimum(points - self.lo, self.hi - points)  # distance to the box edge
        return np.prod(np.clip(inside / ramp, 0.0, 1.0), axis=1) + 0.0


@dataclass(frozen=True, eq=False)
class Decomposition:
    grid: Grid
    subdomains: list[Subdomain]
    overlap: int

    @property
    def ramp(self) -> float:
        return max(self.overlap, 1) * self.grid.h

    def neighbours(self, i: int) -> list[int]:
        """Subdomains whose cores share an edge with subdomain ``i``'s."""
        a = self.subdomains[i]
        out = []
        tol = 1e-9 * self.grid.h
        for b in self.subdomains:
            if b.index == i:
                continue
            touch = np.abs(np.minimum(a.core_hi, b.core_hi) - np.maximum(a.core_lo, b.core_lo))
            span = np.minimum(a.core_hi, b.core_hi) - np.maximum(a.core_lo, b.core_lo)
            if np.sum(touch < tol) == 1 and np.all(span > -tol):
                out.append(b.index)
        return out

    def shared_cells(self, i: int, j: int) -> np.ndarray:
        return np.intersect1d(self.subdomains[i].cells, self.subdomains[j].cells)

    def normal(self, i: int, j: int) -> np.ndarray:
        """Unit vector across the interface from subdomain ``i`` towards ``j``."""
        a, b = self.subdomains[i], self.subdomains[j]
        d = (b.core_lo + b.core_hi - a.core_lo - a.core_hi) / 2
        axis = int(np.argmax(np.abs(d)))
        n = np.zeros(2)
        n[axis] = np.sign(d[axis])
        return n

    def weights(self, points: np.ndarray) -> np.ndarray:
        """``(n_subdomains, n)`` partition-of-unity weights at ``points`` (sum 1)."""
        w = np.stack([s.weight(points, self.ramp) for s in self.subdomains])
        total = w.sum(axis=0)
        lost = total <= 0  # a point outside every shrunk box: nearest box's weight
        if lost.any():
            w[:, lost] = np.stack([s.contains(points[lost]) for s in self.subdomains])
            total = w.sum(axis=0)
        return w / total


def decompose(grid: Grid, p: int, q: int, overlap: int = DEFAULT_OVERLAP) -> Decomposition:
    """Cut the active cells' bounding box into ``p × q`` cores grown by ``overlap`` cells."""
    rows, cols = np.nonzero(grid.mask)
    c0, c1, r0, r1 = cols.min(), cols.max() + 1, rows.min(), rows.max() + 1
    if p > c1 - c0 or q > r1 - r0:
        raise TrainingError(f"--decomp {p}x{q}: the site spans only {c1 - c0} x {r1 - r0} "
                            "cells; choose fewer subdomains")
    xs = np.linspace(c0, c1, p + 1).round().astype(int)
    ys = np.linspace(r0, r1, q + 1).round().astype(int)
    index = grid.index
    origin, h = np.asarray(grid.origin, float), grid.h
    subdomains = []
    for j in range(q):
        for i in range(p):
            core = index[ys[j]:ys[j + 1], xs[i]:xs[i + 1]]
            if not (core >= 0).any():
                continue  # no active cell: dropped
            gx = max(xs[i] - overlap, 0), min(xs[i + 1] + overlap, grid.nx)
            gy = max(ys[j] - overlap, 0), min(ys[j + 1] + overlap, grid.ny)
            grown = index[gy[0]:gy[1], gx[0]:gx[1]]
            subdomains.append(Subdomain(
                len(subdomains),
                origin + h * np.array([gx[0], gy[0]]), origin + h * np.array([gx[1], gy[1]]),
                origin + h * np.array([xs[i], ys[j]]), origin + h * np.array([xs[i + 1],
                                                                             ys[j + 1]]),
                np.sort(grown[grown >= 0])))
    return Decomposition(grid, subdomains, overlap)


def restrict(problem: FlowProblem, observed: Observed, decomposition: Decomposition,
             i: int) -> tuple[FlowProblem, Observed]:
    """Subdomain ``i``'s problem: its cells, boundary points and wells (a well belongs to
    every subdomain whose grown box contains it), and the real snapshots of its wells."""
    sub, grid = decomposition.subdomains[i], decomposition.grid
    centres = grid.centres[sub.cells]
    kc_in = sub.contains(problem.conductivity_wells)
    kh_in = sub.contains(problem.head_wells)
    if not (kc_in.any() or kh_in.any()):
        raise TrainingError(f"subdomain {i} (box {sub.lo.round(3)}..{sub.hi.round(3)}) holds "
                            "no training well, so its critic would see nothing; choose a "
                            "coarser --decomp")
    d_in, f_in = sub.contains(problem.dirichlet_points), sub.contains(problem.flux_points)
    if not (d_in.any() or f_in.any()):
        raise TrainingError(f"subdomain {i} touches no site boundary; interior subdomains are "
                            "not supported yet (their boundary loss would be empty): choose "
                            "--decomp with P, Q ≤ 2")

    def sample_interior(rng: np.random.Generator, n: int) -> np.ndarray:
        cells = rng.integers(0, len(centres), n)
        return centres[cells] + grid.h * (rng.random((n, 2)) - 0.5)

    kc = problem.conductivity_wells.shape[0]
    columns = np.concatenate([np.nonzero(kc_in)[0], kc + np.nonzero(kh_in)[0]])
    sub_problem = replace(
        problem, name=f"{problem.name}[{i}]", sample_interior=sample_interior,
        dirichlet_points=problem.dirichlet_points[d_in],
        dirichlet_head=problem.dirichlet_head[d_in], flux_points=problem.flux_points[f_in],
        flux_normals=problem.flux_normals[f_in], flux_inflow=problem.flux_inflow[f_in],
        conductivity_wells=problem.conductivity_wells[kc_in],
        head_wells=problem.head_wells[kh_in],
        validation_wells=problem.validation_wells[sub.contains(problem.validation_wells)])
    return sub_problem, Observed(observed.snapshots[:, columns], int(kc_in.sum()))
