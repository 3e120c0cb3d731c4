"""Student's t distribution: ``logpdf``, ``pdf``, ``cdf`` (``cdf`` is differentiable
in ``x``, ``loc`` and ``scale``; a traced ``df`` is refused by name)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...numpy import exp, log, log1p
from ..special import gammaln, stdtr


def logpdf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    z = (x - loc) / scale
    half = (df + 1) * 0.5
    return (gammaln(half) - gammaln(df * 0.5) - 0.5 * log(df * np.pi) - log(scale)
            - half * log1p(z * z / df))


def pdf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    return exp(logpdf(x, df, loc, scale))


def cdf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    return stdtr(df, (x - loc) / scale)


__all__ = ["cdf", "logpdf", "pdf"]
