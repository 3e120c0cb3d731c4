"""Rasterisation, cell lookup and boundary faces."""

import numpy as np
from wengert.hpcgan import rasterise, rectangle_grid
from wengert.hpcgan.geometry import nearest_edge, polygon_is_simple


def test_rectangle_boundary_faces_count_and_positions():
    grid = rectangle_grid(2.0, 1.0, 8, 4)
    faces = grid.boundary_faces
    assert np.bincount(faces.side).tolist() == [4, 4, 8, 8]
    west = faces.midpoint[faces.side == 0]
    assert np.allclose(west[:, 0], 0.0) and np.allclose(np.sort(west[:, 1]), grid.y)


def test_rasterised_triangle_activates_cells_whose_centres_are_inside():
    triangle = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    grid = rasterise(triangle, 20)
    x, y = np.meshgrid(grid.x, grid.y)
    assert np.all(grid.mask[x + y < 1.0 - 1e-9]) and not np.any(grid.mask[x + y > 1.0 + 1e-9])
    assert abs(grid.n_active * grid.h**2 - 0.5) < 0.06  # area, up to the staircase
    image = grid.to_image(np.arange(grid.n_active, dtype=float))
    assert np.isnan(image[-1, -1]) and image[0, 0] == 0.0


def test_locate_finds_active_cells_and_flags_the_rest():
    grid = rasterise(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 10)
    found = grid.locate(np.array([[0.05, 0.05], [0.95, 0.95], [-1.0, 0.5], [0.05, 0.15]]))
    assert found[0] == 0 and found[1] == -1 and found[2] == -1
    assert np.allclose(grid.centres[found[3]], [0.05, 0.15])


def test_nearest_edge_and_projection():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    edge, t = nearest_edge(np.array([[0.5, 0.1], [0.9, 0.7], [0.2, 0.99]]), square)
    assert edge.tolist() == [0, 1, 2]
    assert np.allclose(t, [0.5, 0.7, 0.8])


def test_polygon_simplicity():
    assert polygon_is_simple(np.array([[0, 0], [2, 0], [2, 1], [1, 2], [0, 1]], dtype=float))
    assert not polygon_is_simple(np.array([[0, 0], [1, 1], [1, 0], [0, 1]], dtype=float))  # bow tie
    assert not polygon_is_simple(
        np.array([[0, 0], [2, 0], [1, 0], [1, 1]], dtype=float)
    )  # folds back on itself
