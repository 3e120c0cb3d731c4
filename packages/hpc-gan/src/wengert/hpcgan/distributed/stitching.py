"""``evaluate`` of a decomposed run: the subdomains' generators blended into one field
by the decomposition's partition of unity, ``G(x, ξ) = Σ_i w_i(x) G_i(x, ξ)``.  All
subdomains share the latent ``ξ``, so one ``ξ`` gives one stitched global realisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..pigan.config import TrainConfig
from ..pigan.networks import Generators
from ..pigan.problem import FlowProblem
from ..pigan.training import Observed, initial_state
from ..presets import Preset
from .checkpoints import load_states
from .decomposition import Decomposition, restrict
from .runs import site_decomposition


class StitchedGenerators:
    """``Y(x, ξ)`` and ``u(x, ξ)`` like `Generators`, blended over subdomains."""

    def __init__(self, decomposition: Decomposition, generators: list[Generators]) -> None:
        self.decomposition, self.generators = decomposition, generators

    def Y(self, points: Any, xi: Any) -> np.ndarray:
        return self._blend("Y", points, xi)

    def u(self, points: Any, xi: Any) -> np.ndarray:
        return self._blend("u", points, xi)

    def _blend(self, field: str, points: Any, xi: Any) -> np.ndarray:
        points = np.asarray(points)
        weights = self.decomposition.weights(points.astype(np.float64))
        out = np.zeros((len(xi), len(points)))
        for w, gen in zip(weights, self.generators):
            where = w > 0
            if where.any():
                out[:, where] += w[where] * np.asarray(getattr(gen, field)(points[where], xi),
                                                       np.float64)
        return out


def load_stitched(folder: Path, layout: dict, preset: Preset, problem: FlowProblem,
                  observed: Observed, config: TrainConfig) -> StitchedGenerators:
    """The stitched generators of the decomposed run in ``folder`` (``layout``: the
    ``distributed`` entry of its ``run.json``)."""
    decomposition = site_decomposition(preset, layout)
    likes = [initial_state(*restrict(problem, observed, decomposition, i), config)
             for i in range(len(decomposition.subdomains))]
    states = load_states(folder, likes)
    return StitchedGenerators(decomposition, [s.generators for s in states])
