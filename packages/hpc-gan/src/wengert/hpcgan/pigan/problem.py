"""What the PI-GAN learns from: the flow problem's physics at sampled points and the
observed snapshots, independent of how the problem was built (a site preset, or the
1-D problem of the tests).

The site's boundary follows the finite-volume reference exactly: boundary points are
the centres of the rasterised site's boundary faces, each with the face's condition
(river head, inflow flux or no flow) and outward normal, so generated and reference
fields solve the same problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..geometry import NORMALS
from ..presets import Preset
from ..site import RIVER


@dataclass(frozen=True, eq=False)
class FlowProblem:
    """``-∇·(e^Y ∇u) = f`` in the domain, ``u = g`` on Dirichlet points, ``e^Y ∂u/∂n = q``
    on flux points, observed at wells.  All coordinates are scaled (O(1))."""

    name: str
    dim: int
    sample_interior: Callable[[np.random.Generator, int], np.ndarray]  # (n, dim) points
    source: Callable[[np.ndarray], np.ndarray]  # f at points, (n,)
    dirichlet_points: np.ndarray  # (kd, dim)
    dirichlet_head: np.ndarray  # (kd,)
    flux_points: np.ndarray  # (kf, dim)
    flux_normals: np.ndarray  # (kf, dim) outward unit normals
    flux_inflow: np.ndarray  # (kf,) q; 0 on no-flow boundaries
    conductivity_wells: np.ndarray  # (kc, dim) the training network
    head_wells: np.ndarray  # (kh, dim)
    validation_wells: np.ndarray  # (kv, dim) never seen in training

    def boundary_batch(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """``n`` boundary points split between Dirichlet and flux points by their counts."""
        kd, kf = len(self.dirichlet_points), len(self.flux_points)
        n_dir = max(1, round(n * kd / (kd + kf))) if kd else 0
        i = rng.choice(kd, min(n_dir, kd), replace=False) if kd else np.zeros(0, int)
        j = rng.choice(kf, min(n - len(i), kf), replace=False) if kf else np.zeros(0, int)
        return {"x_dirichlet": self.dirichlet_points[i], "head": self.dirichlet_head[i],
                "x_flux": self.flux_points[j], "normal": self.flux_normals[j],
                "inflow": self.flux_inflow[j]}


def site_problem(preset: Preset, problem: str = "forward", *, pump_width: float = 1.0,
                 well_limit: int = 0) -> FlowProblem:
    """The PI-GAN problem of a site preset with the ``problem``'s observation network.

    Pumping wells become Gaussian sinks ``-Q exp(-|x-x_w|²/2s²)/(2πs²)`` of width
    ``s = pump_width · h`` (one cell by default): the finite-volume reference spreads
    ``Q`` over the well's cell.  Wells sit at the centres of the cells they lie in,
    where the reference observes them.  ``well_limit > 0`` keeps only the first that many
    wells of each kind (the networks are listed in farthest-point order, so a prefix is
    spread over the site): the well-count study trains on such prefixes.
    """
    if preset.observations is None:
        raise ValueError(f"preset {preset.name!r} has no 'observations' section: a PI-GAN "
                         "needs its observation networks and validation wells")
    site, grid = preset.site, preset.site.grid
    network = preset.observations.network(problem)
    keep = slice(well_limit or None)
    faces, kind = grid.boundary_faces, site.face_kind
    bc = site.boundary_conditions()
    river = kind == RIVER
    inflow_by_kind = {g + 1: q for g, (_, q) in enumerate(site.inflow)}
    flux = ~river
    q = np.array([inflow_by_kind.get(k, 0.0) for k in kind[flux]])
    width = pump_width * grid.h
    pumps, rates, recharge = site.wells.pumping, site.wells.pumping_rate, site.recharge
    centres = grid.centres

    def sample_interior(rng: np.random.Generator, n: int) -> np.ndarray:
        cells = rng.integers(0, grid.n_active, n)
        return centres[cells] + grid.h * (rng.random((n, 2)) - 0.5)

    def source(x: np.ndarray) -> np.ndarray:
        f = np.full(len(x), recharge)
        for p, rate in zip(pumps, rates):
            r2 = np.sum((x - p) ** 2, axis=1)
            f -= rate * np.exp(-r2 / (2 * width**2)) / (2 * np.pi * width**2)
        return f

    def at_cells(points: np.ndarray) -> np.ndarray:
        return centres[grid.locate(points)]

    return FlowProblem(
        name=f"{preset.name}/{problem}",
        dim=2,
        sample_interior=sample_interior,
        source=source,
        dirichlet_points=faces.midpoint[river],
        dirichlet_head=bc.dirichlet_head,
        flux_points=faces.midpoint[flux],
        flux_normals=NORMALS[faces.side[flux]],
        flux_inflow=q,
        conductivity_wells=at_cells(network.conductivity[keep]),
        head_wells=at_cells(network.head[keep]),
        validation_wells=at_cells(preset.observations.validation),
    )
