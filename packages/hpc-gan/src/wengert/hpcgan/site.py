"""The aquifer site: polygon, river, inflow boundary, recharge and wells on a grid.

Everything here is in scaled coordinates, ``(site units - offset) / length_scale``, so
that the domain is O(1) for learning; ``to_units`` maps back for messages and figures.
The boundary faces of the rasterised site inherit the condition of the polygon edge
nearest to them: Dirichlet head on the river, a prescribed inflow on inflow edges,
no flow elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.ndimage

from .errors import PresetError
from .flow import BoundaryConditions
from .geometry import NORMALS, Grid, nearest_edge, polygon_edges

NO_FLOW, RIVER = -1, 0  # face kinds; inflow group g has kind g + 1


@dataclass(frozen=True, eq=False)
class Wells:
    """Observation wells (conductivity ``Y`` and head ``u``) and pumping wells (point sinks)."""

    conductivity: np.ndarray  # (k, 2)
    head: np.ndarray  # (k, 2)
    pumping: np.ndarray  # (k, 2)
    pumping_rate: np.ndarray  # (k,) volumetric extraction, positive out of the aquifer


@dataclass(frozen=True, eq=False)
class Site:
    """A rasterised site with its boundary conditions; checks that it can be solved."""

    name: str
    polygon: np.ndarray  # (V, 2)
    river_edges: tuple[int, ...]  # consecutive edges; edge e joins vertex e and e + 1
    river_head: tuple[float, float]  # head at the river's first and last vertex
    inflow: tuple[tuple[tuple[int, ...], float], ...]  # (edges, inflow per unit boundary length)
    recharge: float  # source per unit area
    wells: Wells
    grid: Grid
    length_scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        self._check_connected()
        if not np.any(self.face_kind == RIVER):
            raise PresetError(
                f"site {self.name!r}: no grid face lies on the river edges "
                f"{list(self.river_edges)}; refine the grid"
            )
        for kind in ("conductivity", "head", "pumping"):
            points = getattr(self.wells, kind)
            for i in np.flatnonzero(self.grid.locate(points) < 0):
                x, y = self.to_units(points[i])
                raise PresetError(
                    f"site {self.name!r}: {kind} well {i} at ({x:g}, {y:g}) lies outside the "
                    "active domain "
                    "(its grid cell's centre is outside the site polygon); move it inside the site "
                    "or refine the grid"
                )

    def _check_connected(self) -> None:
        """Every active cell must reach the river through faces, or the system is singular."""
        labels, count = scipy.ndimage.label(self.grid.mask)
        if count > 1:
            sizes = np.bincount(labels.ravel())[1:]
            raise PresetError(
                f"site {self.name!r}: on a {self.grid.nx} x {self.grid.ny} grid the active cells "
                f"form {count} "
                f"disconnected pieces (sizes {sorted(sizes.tolist(), reverse=True)}); refine the "
                "grid or widen the polygon's narrow parts"
            )

    def to_units(self, points: np.ndarray) -> np.ndarray:
        """Scaled coordinates back to site units."""
        return np.asarray(points) * self.length_scale + np.asarray(self.offset)

    @cached_property
    def _nearest(self) -> tuple[np.ndarray, np.ndarray]:
        return nearest_edge(self.grid.boundary_faces.midpoint, self.polygon)

    @cached_property
    def face_kind(self) -> np.ndarray:
        """Per boundary face: RIVER, NO_FLOW or the inflow group's index plus one."""
        edge, _ = self._nearest
        kind = np.full(len(edge), NO_FLOW)
        kind[np.isin(edge, self.river_edges)] = RIVER
        for group, (edges, _) in enumerate(self.inflow):
            kind[np.isin(edge, edges)] = group + 1
        return kind

    def river_head_at(self, edge: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Head varying linearly with arc length along the river, at position ``t`` of ``edge``."""
        start, end = polygon_edges(self.polygon)
        lengths = np.linalg.norm(end - start, axis=1)[list(self.river_edges)]
        order = {e: k for k, e in enumerate(self.river_edges)}
        k = np.array([order[e] for e in edge], dtype=np.int64)
        s = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])[k] + t * lengths[k]
        first, last = self.river_head
        return first + (last - first) * s / lengths.sum()

    def boundary_conditions(self) -> BoundaryConditions:
        faces, kind = self.grid.boundary_faces, self.face_kind
        edge, t = self._nearest
        river = kind == RIVER
        inflow = kind > 0
        flux = (
            np.array([q for _, q in self.inflow])[kind[inflow] - 1] if self.inflow else np.zeros(0)
        )
        # A slanted edge of length L is a staircase of faces; weighting each face by
        # |n_edge · n_face| makes the faces carry q L in all (unweighted they would carry
        # q L (|n_x| + |n_y|), up to √2 times the edge's inflow).
        start, end = polygon_edges(self.polygon)
        tangent = end[edge[inflow]] - start[edge[inflow]]
        edge_normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
        edge_normal /= np.linalg.norm(edge_normal, axis=1, keepdims=True)
        alignment = np.abs(np.sum(edge_normal * NORMALS[faces.side[inflow]], axis=1))
        return BoundaryConditions(
            dirichlet_cell=faces.cell[river],
            dirichlet_head=self.river_head_at(edge[river], t[river]),
            neumann_cell=faces.cell[inflow],
            neumann_inflow=flux * self.grid.h * alignment,
        )

    def source(self) -> np.ndarray:
        """Volumetric source per active cell: recharge times area, minus pumping."""
        source = np.full(self.grid.n_active, self.recharge * self.grid.h**2)
        np.subtract.at(source, self.grid.locate(self.wells.pumping), self.wells.pumping_rate)
        return source
