"""Structured grids of square cells and the rasterisation of a site polygon onto them.

The solver and the random field both live on the *active* cells (cell centres inside
the polygon), numbered row by row (``y`` slow, ``x`` fast).  Fields travel as vectors
over active cells and are shown as ``(ny, nx)`` images with NaN outside the site.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from matplotlib.path import Path as _PolygonPath

#: Cell sides in the order used by :class:`BoundaryFaces`: west, east, south, north.
SIDES = ("west", "east", "south", "north")
#: Outward unit normal of each side, as (x, y).
NORMALS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


@dataclass(frozen=True, eq=False)
class BoundaryFaces:
    """The faces between an active cell and an inactive cell (or the grid's edge)."""

    cell: np.ndarray  # active-cell index owning each face
    side: np.ndarray  # index into SIDES
    midpoint: np.ndarray  # (k, 2) face centres

    def __len__(self) -> int:
        return len(self.cell)


@dataclass(frozen=True, eq=False)
class Grid:
    """A uniform grid of square cells of side ``h`` whose lower-left corner is ``origin``."""

    origin: tuple[float, float]
    h: float
    mask: np.ndarray  # (ny, nx) bool, True on active cells

    @property
    def nx(self) -> int:
        return self.mask.shape[1]

    @property
    def ny(self) -> int:
        return self.mask.shape[0]

    @cached_property
    def n_active(self) -> int:
        return int(self.mask.sum())

    @cached_property
    def index(self) -> np.ndarray:
        """``(ny, nx)`` map from a cell to its active index, -1 outside the site."""
        index = np.full(self.mask.shape, -1, dtype=np.int64)
        index[self.mask] = np.arange(self.n_active)
        return index

    @cached_property
    def x(self) -> np.ndarray:
        return self.origin[0] + self.h * (np.arange(self.nx) + 0.5)

    @cached_property
    def y(self) -> np.ndarray:
        return self.origin[1] + self.h * (np.arange(self.ny) + 0.5)

    @cached_property
    def centres(self) -> np.ndarray:
        """``(n_active, 2)`` coordinates of the active cell centres."""
        rows, cols = np.nonzero(self.mask)
        return np.column_stack([self.x[cols], self.y[rows]])

    def to_image(self, values: np.ndarray) -> np.ndarray:
        """Scatter ``(..., n_active)`` values into ``(..., ny, nx)`` images, NaN outside."""
        values = np.asarray(values, dtype=np.float64)
        image = np.full(values.shape[:-1] + self.mask.shape, np.nan)
        image[..., self.mask] = values
        return image

    def locate(self, points: np.ndarray) -> np.ndarray:
        """Active index of the cell holding each point; -1 where it is not an active cell."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        col = np.floor((points[:, 0] - self.origin[0]) / self.h).astype(np.int64)
        row = np.floor((points[:, 1] - self.origin[1]) / self.h).astype(np.int64)
        inside = (col >= 0) & (col < self.nx) & (row >= 0) & (row < self.ny)
        found = np.full(len(points), -1, dtype=np.int64)
        found[inside] = self.index[row[inside], col[inside]]
        return found

    @cached_property
    def boundary_faces(self) -> BoundaryFaces:
        """Every face of an active cell whose neighbour across it is not active."""
        padded = np.pad(self.mask, 1, constant_values=False)
        cells, sides = [], []
        for side, (dx, dy) in enumerate(NORMALS.astype(int)):
            neighbour = padded[1 + dy : 1 + dy + self.ny, 1 + dx : 1 + dx + self.nx]
            exposed = self.mask & ~neighbour
            cells.append(self.index[exposed])
            sides.append(np.full(int(exposed.sum()), side))
        cell = np.concatenate(cells)
        side = np.concatenate(sides)
        midpoint = self.centres[cell] + 0.5 * self.h * NORMALS[side]
        return BoundaryFaces(cell=cell, side=side, midpoint=midpoint)


def rectangle_grid(width: float, height: float, nx: int, ny: int) -> Grid:
    """A fully active ``nx`` by ``ny`` grid on ``[0, width] x [0, height]`` (square cells)."""
    if not math.isclose(width / nx, height / ny, rel_tol=1e-12):
        raise ValueError(
            f"cells must be square: width/nx = {width / nx}, height/ny = {height / ny}"
        )
    return Grid(origin=(0.0, 0.0), h=width / nx, mask=np.ones((ny, nx), dtype=bool))


def rasterise(polygon: np.ndarray, nx: int) -> Grid:
    """Cover the polygon's bounding box with ``nx`` square cells across; a cell is active
    when its centre lies inside the polygon."""
    polygon = np.asarray(polygon, dtype=np.float64)
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    h = (hi[0] - lo[0]) / nx
    ny = max(1, math.ceil((hi[1] - lo[1]) / h - 1e-9))
    box = Grid(origin=(float(lo[0]), float(lo[1])), h=float(h), mask=np.ones((ny, nx), dtype=bool))
    inside = _PolygonPath(polygon).contains_points(box.centres)
    return Grid(origin=box.origin, h=box.h, mask=inside.reshape(ny, nx))


def polygon_edges(polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points of each edge; edge ``e`` joins vertex ``e`` to vertex ``e + 1``."""
    polygon = np.asarray(polygon, dtype=np.float64)
    return polygon, np.roll(polygon, -1, axis=0)


def nearest_edge(points: np.ndarray, polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point, the nearest polygon edge and the position ``t`` in [0, 1] along it
    of the point's projection."""
    start, end = polygon_edges(polygon)
    direction = end - start
    rel = points[:, None, :] - start[None, :, :]
    t = np.clip(
        np.einsum("pek,ek->pe", rel, direction) / np.einsum("ek,ek->e", direction, direction),
        0.0,
        1.0,
    )
    gap = rel - t[..., None] * direction[None]
    edge = np.argmin(np.einsum("pek,pek->pe", gap, gap), axis=1)
    return edge, t[np.arange(len(points)), edge]


def polygon_is_simple(polygon: np.ndarray) -> bool:
    """True when no two non-adjacent edges of the polygon cross or touch."""
    start, end = polygon_edges(polygon)
    n = len(start)

    def orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> float:
        return float(np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])))

    def on_segment(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> bool:
        """r, collinear with p-q, lies within the segment's bounding box."""
        return bool(np.all(np.minimum(p, q) <= r) and np.all(r <= np.maximum(p, q)))

    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # adjacent through the closing vertex
            a, b, c, d = start[i], end[i], start[j], end[j]
            o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
            if o1 * o2 < 0 and o3 * o4 < 0:
                return False
            touching = (
                (o1 == 0 and on_segment(a, b, c))
                or (o2 == 0 and on_segment(a, b, d))
                or (o3 == 0 and on_segment(c, d, a))
                or (o4 == 0 and on_segment(c, d, b))
            )
            if touching:
                return False
    return True
