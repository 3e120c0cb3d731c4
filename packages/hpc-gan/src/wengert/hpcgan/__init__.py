"""wengert.hpcgan: the stochastic Hanford-like flow problem and its Monte Carlo reference data.

Physics only for now: site presets, random log-conductivity by Karhunen-Loeve expansion,
a finite-volume solver for ``-div(K grad u) = f`` and the Monte Carlo dataset writer.
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import DatasetError, HpcganError, PresetError, SimulationError
from .flow import BoundaryConditions, FlowSystem
from .geometry import Grid, rasterise, rectangle_grid
from .montecarlo import Dataset, load_dataset, simulate
from .presets import Preset, available_presets, load_preset
from .random_field import CovarianceModel, Kernel, KLExpansion, karhunen_loeve
from .site import Site, Wells

try:
    __version__ = version("wengert-hpcgan")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BoundaryConditions",
    "CovarianceModel",
    "Dataset",
    "DatasetError",
    "FlowSystem",
    "Grid",
    "HpcganError",
    "KLExpansion",
    "Kernel",
    "Preset",
    "PresetError",
    "SimulationError",
    "Site",
    "Wells",
    "available_presets",
    "karhunen_loeve",
    "load_dataset",
    "load_preset",
    "rasterise",
    "rectangle_grid",
    "simulate",
]
