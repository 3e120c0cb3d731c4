"""Presets: a site, its grid, wells and random field as a small JSON file.

Geometry, grid and wells are data, not code.  A preset gives lengths in site units
(polygon, well positions, correlation lengths) and a ``length_scale``; loading it
shifts the polygon's bounding box to the origin and divides by ``length_scale``.
Heads, fluxes, recharge and pumping rates are dimensionless.  Validation names the
offending key and suggests the nearest valid one.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import PresetError
from .geometry import polygon_is_simple, rasterise
from .random_field import CovarianceModel, Kernel
from .site import Site, Wells

#: Allowed keys per section; a leading "?" marks an optional key.
_SCHEMA: dict[str, tuple[str, ...]] = {
    "": (
        "name",
        "?description",
        "length_scale",
        "polygon",
        "river",
        "?inflow",
        "?recharge",
        "grid",
        "wells",
        "field",
        "?simulation",
        "?observations",
        "?train",
    ),
    "river": ("edges", "head"),
    "inflow[]": ("edges", "flux"),
    "grid": ("nx",),
    "wells": ("conductivity", "head", "?pumping"),
    "wells.pumping[]": ("position", "rate"),
    "field": ("mean", "kernels", "variance_fraction", "?max_modes"),
    "field.kernels[]": ("type", "variance", "length"),
    "simulation": ("?samples",),
    "observations": ("forward", "inverse", "validation"),
    "observations.network": ("conductivity", "head"),
}
#: Held-out validation wells a preset must carry (accuracy is reported there).
MIN_VALIDATION_WELLS = 20
MAX_CELLS = 50_000_000


@dataclass(frozen=True, eq=False)
class FieldSpec:
    """The random log-conductivity: mean, covariance and how far to truncate its KL expansion."""

    mean: float
    model: CovarianceModel
    variance_fraction: float
    max_modes: int | None


@dataclass(frozen=True, eq=False)
class Network:
    """One observation network of the PI-GAN: where Y and where u are measured (scaled)."""

    conductivity: np.ndarray  # (kc, 2)
    head: np.ndarray  # (kh, 2)


@dataclass(frozen=True, eq=False)
class Observations:
    """The forward network (many Y wells, few u wells), the inverse one (few Y, many u),
    and held-out validation wells that no training ever sees."""

    forward: Network
    inverse: Network
    validation: np.ndarray  # (kv, 2)

    def network(self, problem: str) -> Network:
        if problem not in ("forward", "inverse"):
            raise ValueError(f"problem must be 'forward' or 'inverse', got {problem!r}")
        return getattr(self, problem)


@dataclass(frozen=True, eq=False)
class Preset:
    name: str
    description: str
    site: Site
    field: FieldSpec
    samples: int
    definition: dict  # the JSON as read, recorded in dataset metadata
    observations: Observations | None = None  # needed to train a PI-GAN
    train: dict | None = None  # the preset's training keys (see wengert.hpcgan.pigan.config)


def available_presets() -> list[str]:
    """Names of the presets shipped with the package."""
    folder = resources.files(__package__) / "presets"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load_preset(name: str) -> Preset:
    """A shipped preset by name, or any preset file given by its path (ending in .json)."""
    if name.endswith(".json"):
        path = Path(name)
        if not path.is_file():
            raise PresetError(f"preset file {name!r} does not exist")
        text, source = path.read_text(), str(path)
    else:
        names = available_presets()
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PresetError(
                f"unknown preset {name!r}; {hint}Available presets: {', '.join(names)} (or pass a "
                "path to a .json file)"
            )
        text = (resources.files(__package__) / "presets" / f"{name}.json").read_text()
        source = f"{name}.json"
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(
            f"preset {source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    return parse_preset(definition, source)


class _Reader:
    """Typed access to the JSON tree that reports errors with the key's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> PresetError:
        return PresetError(f"preset {self.source}: {where}: {problem}")

    def section(self, data: Any, where: str, schema: str) -> dict:
        if not isinstance(data, dict):
            raise self.fail(where or "top level", f"expected an object, got {type(data).__name__}")
        keys = _SCHEMA[schema]
        allowed = [k.lstrip("?") for k in keys]
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(
                    where or "top level",
                    f"unknown key {key!r}; {hint}Allowed keys: {', '.join(allowed)}",
                )
        for key in keys:
            if not key.startswith("?") and key not in data:
                raise self.fail(where or "top level", f"missing required key {key!r}")
        return data

    def number(self, value: Any, where: str, *, positive: bool = False) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise self.fail(where, f"expected a finite number, got {value!r}")
        if positive and value <= 0:
            raise self.fail(where, f"must be positive, got {value!r}")
        return float(value)

    def integer(self, value: Any, where: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {value!r}")
        if not low <= value <= high:
            raise self.fail(where, f"must lie between {low} and {high}, got {value}")
        return value

    def items(self, value: Any, where: str, *, allow_empty: bool = True) -> list:
        if not isinstance(value, list) or (not value and not allow_empty):
            raise self.fail(
                where, f"expected a {'non-empty ' if not allow_empty else ''}list, got {value!r}"
            )
        return value

    def points(self, value: Any, where: str) -> np.ndarray:
        points = []
        for i, p in enumerate(self.items(value, where)):
            if not isinstance(p, list) or len(p) != 2:
                raise self.fail(f"{where}[{i}]", f"expected a point [x, y], got {p!r}")
            points.append([self.number(c, f"{where}[{i}]") for c in p])
        return np.array(points, dtype=np.float64).reshape(-1, 2)

    def edges(self, value: Any, where: str, n_vertices: int) -> tuple[int, ...]:
        edges = tuple(
            self.integer(e, f"{where}[{i}]", 0, n_vertices - 1)
            for i, e in enumerate(self.items(value, where, allow_empty=False))
        )
        if any((b - a) % n_vertices != 1 for a, b in itertools.pairwise(edges)):
            raise self.fail(
                where,
                f"edges {list(edges)} must be consecutive (edge e joins polygon vertices e and "
                "e+1)",
            )
        return edges


def parse_preset(definition: dict, source: str = "<dict>") -> Preset:
    """Validate a preset's JSON tree and build its site and random field."""
    r = _Reader(source)
    top = r.section(definition, "", "")
    name = top["name"]
    if not isinstance(name, str) or not name:
        raise r.fail("name", f"expected a non-empty string, got {name!r}")
    scale = r.number(top["length_scale"], "length_scale", positive=True)
    polygon = r.points(top["polygon"], "polygon")
    if len(polygon) < 3:
        raise r.fail("polygon", f"needs at least 3 vertices, got {len(polygon)}")
    if not polygon_is_simple(polygon):
        raise r.fail(
            "polygon",
            "edges cross or touch each other; list the vertices in order around the boundary",
        )
    offset = polygon.min(axis=0)

    def scaled(points: np.ndarray) -> np.ndarray:
        return (points - offset) / scale

    v = len(polygon)
    river = r.section(top["river"], "river", "river")
    river_edges = r.edges(river["edges"], "river.edges", v)
    head = r.items(river["head"], "river.head")
    if len(head) != 2:
        raise r.fail(
            "river.head",
            f"expected [head at the first river vertex, head at the last], got {head!r}",
        )
    inflow = []
    for i, group in enumerate(r.items(top.get("inflow", []), "inflow")):
        where = f"inflow[{i}]"
        group = r.section(group, where, "inflow[]")
        edges = r.edges(group["edges"], f"{where}.edges", v)
        if set(edges) & set(river_edges):
            raise r.fail(
                f"{where}.edges",
                f"edges {sorted(set(edges) & set(river_edges))} are already river edges",
            )
        inflow.append((edges, r.number(group["flux"], f"{where}.flux")))

    grid_spec = r.section(top["grid"], "grid", "grid")
    nx = r.integer(grid_spec["nx"], "grid.nx", 4, 20_000)
    width, height = np.ptp(polygon, axis=0)
    if nx * math.ceil(nx * height / width) > MAX_CELLS:
        raise r.fail(
            "grid.nx", f"{nx} cells across makes more than {MAX_CELLS:,} cells; choose a smaller nx"
        )
    grid = rasterise(scaled(polygon), nx)

    wells = r.section(top["wells"], "wells", "wells")
    pumping = [
        r.section(p, f"wells.pumping[{i}]", "wells.pumping[]")
        for i, p in enumerate(r.items(wells.get("pumping", []), "wells.pumping"))
    ]
    site = Site(
        name=name,
        polygon=scaled(polygon),
        river_edges=river_edges,
        river_head=(r.number(head[0], "river.head[0]"), r.number(head[1], "river.head[1]")),
        inflow=tuple(inflow),
        recharge=r.number(top.get("recharge", 0.0), "recharge"),
        wells=Wells(
            conductivity=scaled(r.points(wells["conductivity"], "wells.conductivity")),
            head=scaled(r.points(wells["head"], "wells.head")),
            pumping=scaled(r.points([p["position"] for p in pumping], "wells.pumping.position")),
            pumping_rate=np.array(
                [r.number(p["rate"], f"wells.pumping[{i}].rate") for i, p in enumerate(pumping)]
            ),
        ),
        grid=grid,
        length_scale=scale,
        offset=(float(offset[0]), float(offset[1])),
    )

    field = r.section(top["field"], "field", "field")
    kernels = []
    for i, k in enumerate(r.items(field["kernels"], "field.kernels", allow_empty=False)):
        where = f"field.kernels[{i}]"
        k = r.section(k, where, "field.kernels[]")
        try:
            kernels.append(
                Kernel(
                    k["type"],
                    r.number(k["variance"], f"{where}.variance", positive=True),
                    r.number(k["length"], f"{where}.length", positive=True) / scale,
                )
            )
        except PresetError as exc:
            raise r.fail(where, str(exc)) from None
    fraction = r.number(field["variance_fraction"], "field.variance_fraction")
    if not 0 < fraction <= 1:
        raise r.fail("field.variance_fraction", f"must lie in (0, 1], got {fraction}")
    max_modes = field.get("max_modes")
    if max_modes is not None:
        max_modes = r.integer(max_modes, "field.max_modes", 1, grid.n_active)
    simulation = r.section(top.get("simulation", {}), "simulation", "simulation")
    samples = r.integer(simulation.get("samples", 100), "simulation.samples", 1, 10_000_000)
    observations = None
    if "observations" in top:
        observations = _observations(r, top["observations"], scaled, site)
    train = top.get("train")
    if train is not None and not isinstance(train, dict):
        raise r.fail("train", f"expected an object of training keys, got {train!r}")
    return Preset(
        observations=observations,
        train=train,
        name=name,
        description=str(top.get("description", "")),
        site=site,
        field=FieldSpec(
            r.number(field["mean"], "field.mean"),
            CovarianceModel(tuple(kernels)),
            fraction,
            max_modes,
        ),
        samples=samples,
        definition=definition,
    )


def _observations(r: _Reader, data: Any, scaled: Any, site: Site) -> Observations:
    """Parse and check the observation networks: every well inside the active domain, and
    no validation well in a cell that a training network observes."""
    section = r.section(data, "observations", "observations")

    def points(value: Any, where: str) -> np.ndarray:
        pts = scaled(r.points(value, where))
        cells = site.grid.locate(pts)
        for i in np.flatnonzero(cells < 0):
            x, y = site.to_units(pts[i])
            raise r.fail(f"{where}[{i}]", f"well at ({x:g}, {y:g}) lies outside the active "
                         "domain; move it inside the site")
        return pts

    networks = {}
    for problem in ("forward", "inverse"):
        where = f"observations.{problem}"
        net = r.section(section[problem], where, "observations.network")
        networks[problem] = Network(points(net["conductivity"], f"{where}.conductivity"),
                                    points(net["head"], f"{where}.head"))
        if len(networks[problem].conductivity) + len(networks[problem].head) == 0:
            raise r.fail(where, "observes nothing; list at least one well")
    validation = points(section["validation"], "observations.validation")
    if len(validation) < MIN_VALIDATION_WELLS:
        raise r.fail("observations.validation", f"needs at least {MIN_VALIDATION_WELLS} "
                     f"held-out wells, got {len(validation)}")
    seen = set()
    for net in networks.values():
        seen |= set(site.grid.locate(np.concatenate([net.conductivity, net.head])).tolist())
    shared = sorted(i for i, c in enumerate(site.grid.locate(validation)) if c in seen)
    if shared:
        raise r.fail("observations.validation", f"wells {shared} lie in cells that a training "
                     "network observes; held-out wells must be held out")
    return Observations(networks["forward"], networks["inverse"], validation)
