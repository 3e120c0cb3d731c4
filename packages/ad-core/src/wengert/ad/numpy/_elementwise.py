"""Elementwise functions of `wengert.ad.numpy`: primitives and compositions."""

from __future__ import annotations

import copy as _copy
from typing import Any

import numpy as np

from .._core import Tracer as _Tracer
from ..primitives import elementwise as ew

# One primitive each: the bound method is the fastest dispatch there is.
negative = ew.neg_p.bind
sin, cos, tan = ew.sin_p.bind, ew.cos_p.bind, ew.tan_p.bind
arcsin, arccos, arctan = ew.arcsin_p.bind, ew.arccos_p.bind, ew.arctan_p.bind
sinh, cosh, tanh = ew.sinh_p.bind, ew.cosh_p.bind, ew.tanh_p.bind
arcsinh, arccosh, arctanh = ew.arcsinh_p.bind, ew.arccosh_p.bind, ew.arctanh_p.bind
exp, expm1, log, log1p = ew.exp_p.bind, ew.expm1_p.bind, ew.log_p.bind, ew.log1p_p.bind
sqrt, cbrt = ew.sqrt_p.bind, ew.cbrt_p.bind
absolute = abs = ew.abs_p.bind
sign, floor, ceil, rint = ew.sign_p.bind, ew.floor_p.bind, ew.ceil_p.bind, ew.round_p.bind
conjugate = conj = ew.conj_p.bind
real, imag = ew.real_p.bind, ew.imag_p.bind
add, subtract, multiply = ew.add_p.bind, ew.sub_p.bind, ew.mul_p.bind
divide = true_divide = ew.div_p.bind
power = ew.pow_p.bind
maximum, minimum = ew.max_p.bind, ew.min_p.bind
arctan2 = ew.atan2_p.bind
fmod = ew.rem_p.bind
equal, not_equal = ew.eq_p.bind, ew.ne_p.bind
less, less_equal, greater, greater_equal = ew.lt_p.bind, ew.le_p.bind, ew.gt_p.bind, ew.ge_p.bind
logical_and, logical_or, logical_xor = ew.and_p.bind, ew.or_p.bind, ew.xor_p.bind
logical_not = ew.not_p.bind
bitwise_and, bitwise_or, bitwise_xor = (ew.bitwise_and_p.bind, ew.bitwise_or_p.bind,
                                        ew.bitwise_xor_p.bind)
invert = bitwise_not = bitwise_invert = ew.invert_p.bind
left_shift = bitwise_left_shift = ew.left_shift_p.bind
right_shift = bitwise_right_shift = ew.right_shift_p.bind
isfinite, isnan = ew.isfinite_p.bind, ew.isnan_p.bind


def positive(x: Any) -> Any:
    """``+x``: a new handle to the same value, so that a later ``x += 1`` (which rebinds
    ``x``) leaves it alone, as NumPy's copy does. NumPy has no positive of booleans."""
    if _dtype(x) == np.bool_:
        raise TypeError("numpy.positive (unary +) is not defined for booleans, in NumPy "
                        "either; convert first, e.g. x.astype(int)")
    return _copy.copy(x) if isinstance(x, _Tracer) else np.positive(x)


def _dtype(*xs: Any) -> np.dtype:
    """NumPy's result dtype of ``xs`` (Python numbers weak)."""
    return np.result_type(*(x.dtype if hasattr(x, "dtype") else x for x in xs))


def square(x: Any) -> Any:
    return x * x


def reciprocal(x: Any) -> Any:
    return 1.0 / x


def exp2(x: Any) -> Any:
    return exp(x * np.log(2.0))


def log2(x: Any) -> Any:
    return log(x) / np.log(2.0)


def log10(x: Any) -> Any:
    return log(x) / np.log(10.0)


def float_power(x: Any, y: Any) -> Any:
    return power(x, y)


def hypot(x: Any, y: Any) -> Any:
    return sqrt(x * x + y * y)


def logaddexp(x: Any, y: Any) -> Any:
    """log(exp(x) + exp(y)) without overflow.

    Each side of the select is the exact function, so derivatives of every
    order are right, also at ``x == y`` (where ``max + log1p(exp(-|x - y|))``
    has kinks whose second derivatives vanish). The exponents are clamped
    by selects, not by max/min, so the unused side neither overflows nor
    breaks a tie.
    """
    d = subtract(x, y)
    x_larger = greater(d, 0)
    upper = where(x_larger, d, 0)   # d where x is the larger, else 0
    lower = where(x_larger, 0, d)   # d where y is the larger, else 0
    return where(x_larger, x + log1p(exp(-upper)), y + log1p(exp(lower)))


def logaddexp2(x: Any, y: Any) -> Any:
    return logaddexp(x * np.log(2.0), y * np.log(2.0)) / np.log(2.0)


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        raise NotImplementedError(
            "where(condition) with one argument returns data-dependent indices; "
            "use numpy.nonzero on a concrete value instead")
    return ew.select_p.bind(condition, x, y)


def clip(a: Any, a_min: Any = None, a_max: Any = None, *, min: Any = None,  # noqa: A002
         max: Any = None) -> Any:  # noqa: A002  (NumPy 2.1's spelling)
    a_min = min if a_min is None else a_min
    a_max = max if a_max is None else a_max
    if a_min is not None:
        a = maximum(a, a_min)
    if a_max is not None:
        a = minimum(a, a_max)
    return a


def mod(x: Any, y: Any) -> Any:
    """Python/NumPy remainder (sign of the divisor); integers stay integers, and an
    integer remainder by zero is 0, as NumPy's (which also warns)."""
    r = x - floor_divide(x, y) * y
    if _dtype(x, y).kind in "iub":
        r = where(equal(y, 0), 0, r)
    return r


remainder = mod


def trunc(x: Any) -> Any:
    return ew.round_toward_zero(x)


fix = trunc


def round(x: Any, decimals: int = 0) -> Any:  # noqa: A001  (numpy's name)
    if decimals == 0:
        return rint(x)
    scale = 10.0 ** decimals
    return rint(x * scale) / scale


around = round


def deg2rad(x: Any) -> Any:
    return x * (np.pi / 180.0)


def rad2deg(x: Any) -> Any:
    return x * (180.0 / np.pi)


radians, degrees = deg2rad, rad2deg


def angle(z: Any, deg: bool = False) -> Any:
    a = arctan2(imag(z), real(z))
    return rad2deg(a) if deg else a


def sinc(x: Any) -> Any:
    px = np.pi * where(equal(x, 0), 1.0, x)
    return where(equal(x, 0), 1.0, sin(px) / px)


def fmax(x: Any, y: Any) -> Any:
    return where(isnan(y), x, where(isnan(x), y, maximum(x, y)))


def fmin(x: Any, y: Any) -> Any:
    return where(isnan(y), x, where(isnan(x), y, minimum(x, y)))


def copysign(x: Any, y: Any) -> Any:
    return abs(x) * where(ew.lt_p.bind(y, 0), -1.0, 1.0)


# NumPy 2's array-API spellings.
acos, acosh, asin, asinh = arccos, arccosh, arcsin, arcsinh
atan, atanh, atan2, pow = arctan, arctanh, arctan2, power  # noqa: A001
fabs = abs


def isinf(x: Any) -> Any:
    return logical_not(logical_or(isfinite(x), isnan(x)))


def floor_divide(x: Any, y: Any) -> Any:
    """NumPy's ``//``: integers stay integers; a constant as far as derivatives go."""
    return ew.floor_divide_p.bind(x, y)


def divmod(x: Any, y: Any) -> tuple[Any, Any]:  # noqa: A001  (numpy's name)
    return floor_divide(x, y), mod(x, y)


def modf(x: Any) -> tuple[Any, Any]:
    """(fractional part, integral part), both with the sign of ``x``."""
    whole = trunc(x)
    return x - whole, whole


def ldexp(x: Any, i: Any) -> Any:
    return x * power(2.0, i)


def heaviside(x: Any, h0: Any) -> Any:
    return where(less(x, 0), 0.0, where(equal(x, 0), h0, 1.0))

__all__ = [n for n in dir() if not n.startswith("_") and n not in {"np", "Any", "annotations", "ew"}]


def select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    """The first choice whose condition holds, else ``default``."""
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        out = where(cond, choice, out)
    return out


def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Any:
    big = np.finfo(np.result_type(x.dtype if hasattr(x, "dtype") else x, 1.0))
    x = where(isnan(x), nan, x)
    x = where(logical_and(isinf(x), greater(x, 0)), big.max if posinf is None else posinf, x)
    return where(logical_and(isinf(x), less(x, 0)), big.min if neginf is None else neginf, x)


def isclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8,
            equal_nan: bool = False) -> Any:
    close = less_equal(abs(a - b), atol + rtol * abs(b))
    return logical_or(close, logical_and(isnan(a), isnan(b))) if equal_nan else close


def allclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    """A Python bool, as NumPy's (so it needs concrete values: no derivative flows)."""
    from ._reductions import all as all_

    return bool(all_(isclose(a, b, rtol, atol, equal_nan)))


def real_if_close(a: Any, tol: float = 100) -> Any:
    """The real part if every imaginary part is within ``tol`` machine epsilons of 0 (``tol``
    above 1), else ``a``: a decision on concrete values, as NumPy's result dtype depends on it."""
    from .._core import Tracer
    from ._common import as_array
    from ._reductions import all as all_

    a = as_array(a)
    if a.dtype.kind != "c":
        return a
    cutoff = tol * np.finfo(a.dtype).eps if tol > 1 else tol
    small = all_(less(abs(imag(a)), cutoff))
    small = small.concrete_value("real_if_close") if isinstance(small, Tracer) else small
    return real(a) if bool(small) else a
