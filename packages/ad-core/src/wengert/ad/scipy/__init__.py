"""SciPy-compatible namespaces whose functions are differentiable, as
`wengert.ad.numpy` is for NumPy: ``special``, ``stats`` (``norm``, ``t``,
``multivariate_normal``), ``signal`` (``convolve``, ``correlate``),
``integrate`` (``odeint``, by the adjoint method), ``optimize``
(``fixed_point``, by the implicit-function rule) and ``linalg``
(``solve_triangular``, ``cho_factor``, ``cho_solve``)."""

from . import integrate, linalg, optimize, signal, special, stats

__all__ = ["integrate", "linalg", "optimize", "signal", "special", "stats"]
