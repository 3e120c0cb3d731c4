"""The normal distribution: ``logpdf``, ``pdf``, ``cdf``, ``logcdf``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...numpy import exp, log
from ..special import ndtr

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    z = (x - loc) / scale
    return -0.5 * z * z - log(scale) - _LOG_SQRT_2PI


def pdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    return exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    return ndtr((x - loc) / scale)


def logcdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """``log(cdf)``; accurate while ``cdf`` is not tiny (below about ``z = -37`` it is 0)."""
    return log(cdf(x, loc, scale))


__all__ = ["cdf", "logcdf", "logpdf", "pdf"]
