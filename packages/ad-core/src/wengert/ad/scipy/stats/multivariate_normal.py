"""The multivariate normal distribution: ``logpdf`` and ``pdf`` (differentiable in
``x``, ``mean`` and ``cov``, through a Cholesky factor); ``cdf`` has no derivative
here (SciPy integrates it numerically) and refuses traced arguments by name."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._core import Tracer
from ...errors import NonDifferentiableError
from ...numpy import diagonal, exp, linalg, log, sum
from ...primitives.linalg import triangular_solve_p
from ...tree import tree_leaves


def logpdf(x: Any, mean: Any = None, cov: Any = 1.0, allow_singular: bool = False) -> Any:
    """``x`` holds points in its last axis (a single point may be 1-d); ``cov`` is a
    positive definite matrix (or a scalar variance)."""
    if allow_singular:
        raise NotImplementedError("multivariate_normal.logpdf(allow_singular=True) is not "
                                  "supported; regularise cov instead")
    x = x if isinstance(x, Tracer) else np.asarray(x, float)
    k = x.shape[-1] if x.ndim else 1
    if np.ndim(cov) == 0:
        cov = cov * np.eye(k)
    centered = x if mean is None else x - mean
    chol = linalg.cholesky(cov)
    rows = centered.reshape((-1, k)).T  # one column per point
    z = triangular_solve_p.bind(chol, rows, left_side=True, lower=True, transpose_a=False,
                                conjugate_a=False)
    maha = sum(z * z, axis=0).reshape(centered.shape[:-1])
    log_det = 2 * sum(log(diagonal(chol)))
    return -0.5 * (k * np.log(2 * np.pi) + log_det + maha)


def pdf(x: Any, mean: Any = None, cov: Any = 1.0) -> Any:
    return exp(logpdf(x, mean, cov))


def cdf(x: Any, mean: Any = None, cov: Any = 1.0, **kwargs: Any) -> Any:
    """SciPy's value for plain arrays; traced arguments are refused (no derivative)."""
    if any(isinstance(leaf, Tracer) for leaf in tree_leaves((x, mean, cov))):
        raise NonDifferentiableError(
            "scipy.stats.multivariate_normal.cdf is computed by numerical integration and "
            "has no derivative rule in wengert.ad; differentiate a Monte Carlo estimate, or "
            "give it a rule with @wengert.ad.adjoint")
    from scipy import stats

    return stats.multivariate_normal.cdf(x, mean, cov, **kwargs)


__all__ = ["cdf", "logpdf", "pdf"]
