"""Cell-centred finite volumes for steady saturated flow, ``-div(K grad u) = f``.

Two-point fluxes with harmonic-mean transmissibilities between neighbouring active
cells; Dirichlet heads are imposed on boundary faces half a cell from the owning
centre; Neumann data enter as volumetric inflows.  The matrix is a symmetric
M-matrix, positive definite as soon as one Dirichlet face exists.

The sparsity pattern depends only on the grid, so :class:`FlowSystem` builds it once
and each realisation of ``K`` only fills in the numbers (Monte Carlo solves thousands).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .geometry import Grid

#: Above this many unknowns ``method="auto"`` uses algebraic multigrid (when pyamg is installed).
AMG_THRESHOLD = 40_000
SOLVER_METHODS = ("auto", "direct", "amg")


@dataclass(frozen=True, eq=False)
class BoundaryConditions:
    """Boundary data per boundary face; faces not listed are no-flow."""

    dirichlet_cell: np.ndarray  # active index of the cell owning each Dirichlet face
    dirichlet_head: np.ndarray  # prescribed head at the face centre
    neumann_cell: np.ndarray  # active index of the cell owning each flux face
    neumann_inflow: np.ndarray  # volumetric inflow through the face (flux x face length)


def pyamg_available() -> bool:
    try:
        import pyamg  # noqa: F401
    except ImportError:
        return False
    return True


class FlowSystem:
    """The finite-volume system of one grid and one set of boundary conditions and sources.

    ``source`` is the volumetric source per active cell (``f`` integrated over the cell:
    recharge times cell area, minus pumping), positive when water is added.
    """

    def __init__(self, grid: Grid, bc: BoundaryConditions, source: np.ndarray) -> None:
        n = grid.n_active
        if len(bc.dirichlet_cell) == 0:
            raise ValueError(
                "no Dirichlet face: the head is defined only up to a constant; add a river boundary"
            )
        source = np.asarray(source, dtype=np.float64)
        if source.shape != (n,):
            raise ValueError(
                f"source has shape {source.shape}, expected ({n},) (one value per active cell)"
            )
        self.grid, self.bc, self.source = grid, bc, source
        index = grid.index
        pairs = []
        for left, right in ((index[:, :-1], index[:, 1:]), (index[:-1, :], index[1:, :])):
            both = (left >= 0) & (right >= 0)
            pairs.append((left[both], right[both]))
        self._a = np.concatenate([p[0] for p in pairs])  # interior faces: cell on one side,
        self._b = np.concatenate([p[1] for p in pairs])  # cell on the other
        rows = np.concatenate([self._a, self._b, np.arange(n)])
        cols = np.concatenate([self._b, self._a, np.arange(n)])
        self._order = np.lexsort((cols, rows))
        self._indices = cols[self._order]
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
        self._fixed_rhs = source + np.bincount(bc.neumann_cell, bc.neumann_inflow, minlength=n)

    @property
    def n(self) -> int:
        return self.grid.n_active

    def _check(self, K: np.ndarray) -> np.ndarray:
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (self.n,):
            raise ValueError(
                f"K has shape {K.shape}, expected ({self.n},) (one value per active cell)"
            )
        if not np.all(np.isfinite(K) & (K > 0)):
            raise ValueError("K must be finite and positive in every active cell")
        return K

    def transmissibilities(self, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interior-face and Dirichlet-face transmissibilities.

        With square cells the face length equals the centre distance, so an interior face
        carries the harmonic mean of its two cells' K and a Dirichlet face, half a cell
        from the centre, carries 2 K of its cell.
        """
        K = self._check(K)
        ka, kb = K[self._a], K[self._b]
        return 2.0 * ka * kb / (ka + kb), 2.0 * K[self.bc.dirichlet_cell]

    def assemble(self, K: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        """The matrix ``A`` and right-hand side ``b`` of ``A u = b``."""
        t_int, t_dir = self.transmissibilities(K)
        diagonal = np.bincount(self._a, t_int, self.n) + np.bincount(self._b, t_int, self.n)
        diagonal += np.bincount(self.bc.dirichlet_cell, t_dir, self.n)
        values = np.concatenate([-t_int, -t_int, diagonal])[self._order]
        A = sp.csr_matrix((values, self._indices, self._indptr), shape=(self.n, self.n))
        b = self._fixed_rhs + np.bincount(
            self.bc.dirichlet_cell, t_dir * self.bc.dirichlet_head, self.n
        )
        return A, b

    def resolve_method(self, method: str) -> str:
        """The concrete solver (``direct`` or ``amg``) that ``method`` stands for on this grid."""
        if method not in SOLVER_METHODS:
            raise ValueError(f"unknown solver method {method!r}; choose one of {SOLVER_METHODS}")
        if method == "auto":
            return "amg" if self.n >= AMG_THRESHOLD and pyamg_available() else "direct"
        return method

    def solve(self, K: np.ndarray, method: str = "auto", rtol: float = 1e-10) -> np.ndarray:
        """Heads at the active cell centres.

        ``direct`` is SuperLU; ``amg`` is conjugate gradients preconditioned by smoothed
        aggregation (pyamg), stopped at a residual of ``rtol * |b|``; ``auto`` picks AMG
        for large grids when pyamg is installed.
        """
        method = self.resolve_method(method)
        A, b = self.assemble(K)
        if method == "direct":
            return spla.spsolve(A.tocsc(), b)
        try:
            import pyamg
        except ImportError as exc:
            raise ValueError(
                "solver method 'amg' needs pyamg: pip install 'wengert-hpcgan[amg]'"
            ) from exc
        # pyamg estimates spectral radii from NumPy's global random generator: seed it
        # for the setup (and restore it) so that every solve is reproducible.
        saved = np.random.get_state()
        np.random.seed(0)
        try:
            hierarchy = pyamg.smoothed_aggregation_solver(A, symmetry="symmetric")
        finally:
            np.random.set_state(saved)
        u = hierarchy.solve(b, tol=rtol, accel="cg", maxiter=500)
        residual = np.linalg.norm(b - A @ u)
        if residual > 10 * rtol * np.linalg.norm(b):
            raise RuntimeError(
                f"AMG-CG did not converge: relative residual {residual / np.linalg.norm(b):.2e}"
            )
        return u

    def dirichlet_outflow(self, K: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Volumetric outflow through each Dirichlet face (negative where water enters)."""
        _, t_dir = self.transmissibilities(K)
        return t_dir * (u[self.bc.dirichlet_cell] - self.bc.dirichlet_head)

    def mass_imbalance(self, K: np.ndarray, u: np.ndarray) -> float:
        """Sources plus Neumann inflow minus Dirichlet outflow, relative to the throughput."""
        outflow = self.dirichlet_outflow(K, u)
        inflow = np.concatenate([self.source, self.bc.neumann_inflow])
        throughput = np.abs(inflow).sum() + np.abs(outflow).sum()
        return float(abs(inflow.sum() - outflow.sum()) / throughput) if throughput > 0 else 0.0
