"""SciPy-compatible namespaces whose functions are differentiable
(``wengert.ad.scipy.special``, ``wengert.ad.scipy.linalg``), as `wengert.ad.numpy`
is for NumPy."""

from . import linalg, special

__all__ = ["linalg", "special"]
