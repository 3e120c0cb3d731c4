"""Learning-rate schedules: callables of the step number ``t`` (from 1), to
pass wherever an optimiser takes ``eta``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CosineAnnealing", "Exponential", "Step", "Warmup"]


@dataclass(frozen=True)
class Step:
    """``eta * decay ** ((t - 1) // every)``."""

    eta: float
    decay: float = 0.1
    every: int = 1000

    def __call__(self, t: int) -> float:
        return self.eta * self.decay ** ((t - 1) // self.every)


@dataclass(frozen=True)
class Exponential:
    """``eta * decay ** (t - 1)``."""

    eta: float
    decay: float = 0.999

    def __call__(self, t: int) -> float:
        return self.eta * self.decay ** (t - 1)


@dataclass(frozen=True)
class CosineAnnealing:
    """From ``eta`` down to ``eta_min`` along a half cosine over ``period`` steps, repeating."""

    eta: float
    period: int
    eta_min: float = 0.0

    def __call__(self, t: int) -> float:
        phase = ((t - 1) % self.period) / self.period
        return self.eta_min + 0.5 * (self.eta - self.eta_min) * (1 + math.cos(math.pi * phase))


@dataclass(frozen=True)
class Warmup:
    """Linear warm-up over ``steps``, then ``after`` (a number or a schedule,
    counted from the end of the warm-up)."""

    after: float | Callable[[int], float]
    steps: int = 100

    def __call__(self, t: int) -> float:
        target = self.after(max(t - self.steps, 1)) if callable(self.after) else self.after
        return target * min(1.0, t / self.steps)
