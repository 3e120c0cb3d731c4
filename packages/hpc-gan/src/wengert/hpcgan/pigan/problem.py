"""What the PI-GAN learns from: the flow problem's physics at sampled points and the
observed snapshots, independent of how the problem was built (a site preset, or the
1-D problem of the tests).

The generators solve the continuum problem on the site polygon: collocation points
are uniform in the polygon, boundary points lie on its edges with the edge's condition
(river head, inflow flux or no flow) and outward normal.  (The finite-volume reference
solves the same problem on the rasterised site; its staircase faces are no boundary
for a smooth field: a no-flow condition on every stair would stop all flow along a
slanted edge.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PolygonPath

from ..geometry import polygon_edges
from ..presets import Preset


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
    width = pump_width * grid.h
    pumps, rates, recharge = site.wells.pumping, site.wells.pumping_rate, site.recharge
    centres = grid.centres
    outline = PolygonPath(site.polygon)
    low, high = site.polygon.min(axis=0), site.polygon.max(axis=0)

    def sample_interior(rng: np.random.Generator, n: int) -> np.ndarray:
        points = np.zeros((0, 2))
        while len(points) < n:  # rejection from the bounding box
            box = low + (high - low) * rng.random((2 * n, 2))
            points = np.concatenate([points, box[outline.contains_points(box)]])
        return points[:n]

    def source(x: np.ndarray) -> np.ndarray:
        f = np.full(len(x), recharge)
        for p, rate in zip(pumps, rates):
            r2 = np.sum((x - p) ** 2, axis=1)
            f -= rate * np.exp(-r2 / (2 * width**2)) / (2 * np.pi * width**2)
        return f

    def at_cells(points: np.ndarray) -> np.ndarray:
        return centres[grid.locate(points)]

    boundary = _edge_points(preset, spacing=grid.h / 2)
    river = boundary["river"]
    return FlowProblem(
        name=f"{preset.name}/{problem}",
        dim=2,
        sample_interior=sample_interior,
        source=source,
        dirichlet_points=boundary["points"][river],
        dirichlet_head=boundary["head"][river],
        flux_points=boundary["points"][~river],
        flux_normals=boundary["normals"][~river],
        flux_inflow=boundary["inflow"][~river],
        conductivity_wells=at_cells(network.conductivity[keep]),
        head_wells=at_cells(network.head[keep]),
        validation_wells=at_cells(preset.observations.validation),
    )


def _edge_points(preset: Preset, spacing: float) -> dict[str, np.ndarray]:
    """Points along every polygon edge about ``spacing`` apart (segment midpoints), with
    the edge's outward normal, whether it is river, its head there and its inflow."""
    site = preset.site
    start, end = polygon_edges(site.polygon)
    x, y = site.polygon.T
    clockwise = np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0
    inflow = {e: q for edges, q in site.inflow for e in edges}
    rows: dict[str, list] = {"points": [], "normals": [], "river": [], "head": [], "inflow": []}
    for e, (a, b) in enumerate(zip(start, end)):
        length = float(np.linalg.norm(b - a))
        count = max(1, round(length / spacing))
        t = (np.arange(count) + 0.5) / count
        tangent = (b - a) / length
        normal = np.array([tangent[1], -tangent[0]]) * (-1 if clockwise else 1)
        is_river = e in site.river_edges
        rows["points"].append(a + t[:, None] * (b - a))
        rows["normals"].append(np.tile(normal, (count, 1)))
        rows["river"].append(np.full(count, is_river))
        rows["head"].append(site.river_head_at(np.full(count, e), t) if is_river
                            else np.zeros(count))
        rows["inflow"].append(np.full(count, inflow.get(e, 0.0)))
    return {k: np.concatenate(v) for k, v in rows.items()}
