"""Differentiable `scipy.special` functions: ``erf``, ``erfc``, ``erfinv``, ``gammaln``,
``digamma``, ``polygamma``, ``expit``, ``logit``, ``xlogy``, ``logsumexp``,
``ndtr`` (the normal distribution function) and ``stdtr`` (Student's t; not
differentiable in the degrees of freedom, which is refused by name).
Each takes plain arrays (and returns plain arrays) or traced values.
"""

from __future__ import annotations

from typing import Any

from ..numpy._reductions import logsumexp
from ..primitives import elementwise as _ew
from ..primitives import special as _sp

erf = _sp.erf_p.bind
erfc = _sp.erfc_p.bind
erfinv = _sp.erfinv_p.bind
gammaln = _sp.gammaln_p.bind
digamma = psi = _sp.digamma_p.bind
expit = _ew.logistic_p.bind
logit = _sp.logit_p.bind
xlogy = _sp.xlogy_p.bind
stdtr = _sp.stdtr_p.bind


def ndtr(x: Any) -> Any:
    """The standard normal distribution function, ``(1 + erf(x / sqrt 2)) / 2``."""
    return 0.5 * erfc(x * -_SQRT_HALF)


_SQRT_HALF = 0.7071067811865476


def polygamma(n: int, x: Any) -> Any:
    """The ``n``-th derivative of digamma; ``n`` is a static integer."""
    return _sp.polygamma_p.bind(x, n=int(n))


__all__ = ["digamma", "erf", "erfc", "erfinv", "expit", "gammaln", "logit", "logsumexp",
           "ndtr", "polygamma", "psi", "stdtr", "xlogy"]
