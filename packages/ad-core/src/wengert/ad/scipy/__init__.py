"""SciPy-compatible namespaces whose functions are differentiable, as
`wengert.ad.numpy` is for NumPy: ``special``, ``stats`` (``norm``, ``t``,
``multivariate_normal``), ``signal`` (``convolve``, ``correlate``),
``integrate`` (``odeint``, by the adjoint method) and ``optimize``
(``fixed_point``, by the implicit-function rule)."""

from . import integrate, optimize, signal, special, stats

__all__ = ["integrate", "optimize", "signal", "special", "stats"]
