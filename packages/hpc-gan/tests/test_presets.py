"""Presets are data: the shipped ones load, and every kind of bad input is a clear error."""

import json

import numpy as np
import pytest
from wengert.hpcgan import PresetError, available_presets, load_preset
from wengert.hpcgan.presets import parse_preset
from wengert.hpcgan.site import RIVER


def test_shipped_presets_load_with_growing_grids():
    assert {"tiny", "small", "hanford"} <= set(available_presets())
    sizes = [load_preset(name).site.grid.n_active for name in ("tiny", "small", "hanford")]
    assert sizes == sorted(sizes) and sizes[0] < 1000 and sizes[2] > 50_000


def test_tiny_site_is_scaled_to_order_one_and_has_every_boundary_kind(tiny):
    site = tiny.site
    assert np.allclose(site.polygon.min(axis=0), 0.0) and site.polygon.max() < 2.0
    bc = site.boundary_conditions()
    assert len(bc.dirichlet_cell) > 0 and len(bc.neumann_cell) > 0
    assert len(bc.dirichlet_cell) + len(bc.neumann_cell) < len(
        site.grid.boundary_faces
    )  # the rest is no-flow
    first, last = site.river_head
    assert bc.dirichlet_head.min() >= min(first, last) and bc.dirichlet_head.max() <= max(
        first, last
    )
    # Sources: recharge over the active area minus the pumping rate.
    assert site.source().sum() == pytest.approx(
        site.recharge * site.grid.n_active * site.grid.h**2 - site.wells.pumping_rate.sum()
    )


def test_unknown_preset_name_suggests_the_closest():
    with pytest.raises(PresetError, match="unknown preset 'tiyn'; did you mean 'tiny'"):
        load_preset("tiyn")


def test_preset_from_a_path(tmp_path, tiny_definition):
    path = tmp_path / "mine.json"
    tiny_definition["name"] = "mine"
    path.write_text(json.dumps(tiny_definition))
    assert load_preset(str(path)).name == "mine"
    path.write_text("{ not json")
    with pytest.raises(PresetError, match="invalid JSON at line 1"):
        load_preset(str(path))
    with pytest.raises(PresetError, match="does not exist"):
        load_preset(str(tmp_path / "missing.json"))


def _breaks(definition, pattern):
    with pytest.raises(PresetError, match=pattern):
        parse_preset(definition, "test.json")


def test_mistyped_keys_get_a_did_you_mean(tiny_definition):
    tiny_definition["gird"] = tiny_definition.pop("grid")
    _breaks(tiny_definition, r"top level: unknown key 'gird'; did you mean 'grid'\?")


def test_mistyped_nested_key(tiny_definition):
    field = tiny_definition["field"]
    field["variance_fracton"] = field.pop("variance_fraction")
    _breaks(
        tiny_definition,
        r"field: unknown key 'variance_fracton'; did you mean 'variance_fraction'\?",
    )


def test_missing_key(tiny_definition):
    del tiny_definition["river"]["head"]
    _breaks(tiny_definition, "river: missing required key 'head'")


@pytest.mark.parametrize(
    "nx, pattern",
    [
        (0, "between 4 and"),
        (3, "between 4 and"),
        ("ten", "expected an integer"),
        (19_000, "more than 50,000,000 cells"),
    ],
)
def test_impossible_grid_sizes(tiny_definition, nx, pattern):
    tiny_definition["grid"]["nx"] = nx
    _breaks(tiny_definition, rf"grid.nx: .*{pattern}")


def test_impossible_sample_count_and_modes(tiny_definition):
    tiny_definition["simulation"]["samples"] = 0
    _breaks(tiny_definition, "simulation.samples")
    tiny_definition["simulation"]["samples"] = 10
    tiny_definition["field"]["max_modes"] = 10**6
    _breaks(tiny_definition, "field.max_modes: must lie between 1 and 339")


def test_well_outside_the_active_domain(tiny_definition):
    tiny_definition["wells"]["head"].append([590.0, 10.0])
    _breaks(tiny_definition, r"head well 12 at \(590, 10\) lies outside the active domain")


@pytest.mark.parametrize(
    "key, value", [("variance", 0), ("variance", -0.3), ("length", 0.0), ("length", -5)]
)
def test_non_positive_kernel_parameters(tiny_definition, key, value):
    tiny_definition["field"]["kernels"][1][key] = value
    _breaks(tiny_definition, rf"field.kernels\[1\].{key}: must be positive")


def test_unknown_kernel_type(tiny_definition):
    tiny_definition["field"]["kernels"][0]["type"] = "squared_exponentail"
    _breaks(
        tiny_definition,
        r"field.kernels\[0\]: unknown kernel type .* did you mean 'squared_exponential'",
    )


def test_bad_river_and_inflow_edges(tiny_definition):
    tiny_definition["river"]["edges"] = [2, 4]
    _breaks(tiny_definition, "river.edges: edges .* must be consecutive")
    tiny_definition["river"]["edges"] = [2, 30]
    _breaks(tiny_definition, r"river.edges\[1\]: must lie between 0 and 10")
    tiny_definition["river"]["edges"] = [7, 8]
    _breaks(tiny_definition, r"inflow\[0\].edges: edges \[8\] are already river edges")


def test_self_intersecting_polygon(tiny_definition):
    polygon = tiny_definition["polygon"]
    polygon[2], polygon[3] = polygon[3], polygon[2]
    polygon[2], polygon[7] = polygon[7], polygon[2]
    _breaks(tiny_definition, "polygon: edges cross")


def test_disconnected_site_on_a_coarse_grid(tiny_definition):
    # Two squares joined by a corridor narrower than a cell.
    tiny_definition["polygon"] = [
        [0, 0],
        [100, 0],
        [100, 45],
        [200, 45],
        [200, 0],
        [300, 0],
        [300, 100],
        [200, 100],
        [200, 55],
        [100, 55],
        [100, 100],
        [0, 100],
    ]
    tiny_definition.update(river={"edges": [5], "head": [0, 0]}, inflow=[], grid={"nx": 12})
    tiny_definition["wells"] = {"conductivity": [[50, 50]], "head": [[250, 50]]}
    _breaks(tiny_definition, "disconnected pieces")
    tiny_definition["grid"]["nx"] = 60
    assert (
        parse_preset(tiny_definition).site.grid.n_active > 0
    )  # fine enough to resolve the corridor


def test_river_head_is_linear_in_arc_length(tiny_definition):
    """River along the east side (upwards) then the top (westwards) of a unit square,
    heads 0 to 2: the head is y on the east side and 2 - x on the top."""
    tiny_definition.update(
        polygon=[[0, 0], [100, 0], [100, 100], [0, 100]],
        length_scale=100.0,
        river={"edges": [1, 2], "head": [0.0, 2.0]},
        inflow=[],
        grid={"nx": 10},
        wells={"conductivity": [[50, 50]], "head": [[50, 50]]},
    )
    site = parse_preset(tiny_definition).site
    bc = site.boundary_conditions()
    x, y = site.grid.boundary_faces.midpoint[site.face_kind == RIVER].T
    east = np.isclose(x, 1.0)
    assert east.sum() == 10 and np.isclose(y[~east], 1.0).sum() == 10
    assert np.allclose(bc.dirichlet_head[east], y[east])
    assert np.allclose(bc.dirichlet_head[~east], 2.0 - x[~east])


def test_a_slanted_inflow_edge_takes_in_flux_times_its_length(tiny_definition):
    """The staircase of faces along a slanted edge is longer than the edge by a factor
    |n_x| + |n_y|; the faces must still carry q L in total, not up to √2 times it."""
    for nx in (24, 96):
        tiny_definition["grid"]["nx"] = nx
        site = parse_preset(tiny_definition).site
        (edges, q), = site.inflow
        start, end = site.polygon[edges[0]], site.polygon[(edges[-1] + 1) % len(site.polygon)]
        expected = q * np.linalg.norm(end - start)
        total = site.boundary_conditions().neumann_inflow.sum()
        assert abs(total - expected) < 0.05 * expected, (nx, total, expected)
