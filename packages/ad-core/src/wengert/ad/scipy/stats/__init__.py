"""Differentiable `scipy.stats` distributions, one module each as in `jax.scipy.stats`:
``norm``, ``t`` and ``multivariate_normal``, with ``logpdf``, ``pdf`` and ``cdf``.

``stats.norm.logpdf(x, loc, scale)`` takes the arguments SciPy's frozen-free
calls take; every argument may be traced. (SciPy's distribution objects
convert their inputs to NumPy arrays, which no NumPy protocol lets a tracer
intercept: call these instead; the error from SciPy's names them.)
"""

from . import multivariate_normal, norm, t

__all__ = ["multivariate_normal", "norm", "t"]
