"""Special functions (scipy.special on NumPy arrays, cupyx.scipy.special on CuPy
arrays) with derivative rules. ``digamma`` differentiates to ``polygamma``,
which differentiates to itself, so every order is available.
(``expit`` is the elementwise ``logistic`` primitive.)
"""

from __future__ import annotations

import numpy as np

from .elementwise import _binary, _unary, eq_p, exp_p, log_p, select_p
from ._helpers import is_cupy, to_operand

_TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)


def _special(name: str):
    """The implementation of ``name`` for the operands' backend (SciPy imported lazily)."""
    def impl(*args):
        if any(is_cupy(a) for a in args):
            import cupy
            import cupyx.scipy.special as backend

            args = [cupy.asarray(a) for a in args]  # its polygamma wants an array order
        else:
            import scipy.special as backend
        return getattr(backend, name)(*args)

    return impl


_polygamma = _special("polygamma")

erf_p = _unary("erf", _special("erf"), lambda ans, x: _TWO_OVER_SQRT_PI * exp_p.bind(-(x * x)))
erfc_p = _unary("erfc", _special("erfc"),
                lambda ans, x: -_TWO_OVER_SQRT_PI * exp_p.bind(-(x * x)))
polygamma_p = _unary("polygamma", lambda x, n: _polygamma(n, x),
                     rules=((lambda g, ans, x, n: g * polygamma_p.bind(x, n=n + 1),),
                            (lambda t, ans, x, n: t * polygamma_p.bind(x, n=n + 1),)))
digamma_p = _unary("digamma", _special("digamma"), lambda ans, x: polygamma_p.bind(x, n=1))
gammaln_p = _unary("gammaln", _special("gammaln"), lambda ans, x: digamma_p.bind(x))
# d erfinv(x)/dx = sqrt(pi)/2 exp(erfinv(x)^2): from the answer, so kept.
erfinv_p = _unary("erfinv", _special("erfinv"),
                  lambda ans, x: (np.sqrt(np.pi) / 2) * exp_p.bind(ans * ans), keep_ans=True)
logit_p = _unary("logit", _special("logit"), lambda ans, x: 1 / (x * (1 - x)))


def _xlogy_dy(x, y):
    # x / y, and 0 where x == 0 (xlogy(0, y) is 0 for every y).
    zero = eq_p.bind(x, 0)
    return select_p.bind(zero, 0.0, x / select_p.bind(zero, 1.0, y))


xlogy_p = _binary(
    "xlogy", _special("xlogy"),
    vjps=(lambda g, ans, x, y: to_operand(g * log_p.bind(y), x),
          lambda g, ans, x, y: to_operand(g * _xlogy_dy(x, y), y)),
    jvps=(lambda t, ans, x, y: t * log_p.bind(y), lambda t, ans, x, y: t * _xlogy_dy(x, y)))


def _stdtr_dt(df, t):
    """Student's t density: the derivative of its distribution function in ``t``."""
    half = (df + 1) * 0.5
    log_norm = gammaln_p.bind(half) - gammaln_p.bind(df * 0.5) - 0.5 * log_p.bind(df * np.pi)
    return exp_p.bind(log_norm - half * log_p.bind(1 + t * t / df))


def _stdtr_ddf(*args):
    from ..errors import NonDifferentiableError

    raise NonDifferentiableError(
        "stdtr (Student's t distribution function, scipy.stats.t.cdf): the derivative with "
        "respect to the degrees of freedom is not implemented; pass df as a constant "
        "(or wengert.ad.stop_gradient(df))")


stdtr_p = _binary(
    "stdtr", _special("stdtr"),
    vjps=(_stdtr_ddf, lambda g, ans, df, t: to_operand(g * _stdtr_dt(df, t), t)),
    jvps=(_stdtr_ddf, lambda t_, ans, df, t: t_ * _stdtr_dt(df, t)))
