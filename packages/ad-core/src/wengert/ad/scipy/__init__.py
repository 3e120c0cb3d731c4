"""SciPy-compatible namespaces whose functions are differentiable
(``wengert.ad.scipy.special``), as `wengert.ad.numpy` is for NumPy."""

from . import special

__all__ = ["special"]
