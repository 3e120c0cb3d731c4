"""Elementwise primitives: one line of rules each, as a table.

Unary holomorphic functions are given by their derivative ``f'(ans, x)``;
`holomorphic` turns that into the JVP and the (conjugated) VJP. Binary rules
return the cotangent of each operand through `to_operand`, which undoes
broadcasting and keeps real operands real.
"""

from __future__ import annotations

import numpy as np

from .._core import Aval, Primitive, is_inexact_dtype
from ._helpers import (conj_if_complex, elementwise_shape, holomorphic, is_complex,
                       shape_of, to_operand)


def _unary(name: str, impl, deriv=None, *, keep_args: bool = True, keep_ans: bool = False,
           rules=None) -> Primitive:
    p = Primitive(name, impl, keep_args=keep_args, keep_ans=keep_ans)
    p.def_rules(shape=elementwise_shape(p))
    if deriv is not None:
        vjps, jvps = holomorphic(deriv)
        p.def_rules(vjps=vjps, jvps=jvps)
    elif rules is not None:
        p.def_rules(vjps=rules[0], jvps=rules[1])
    return p


def _binary(name: str, impl, vjps=None, jvps=None, *, keep_args: bool = True,
            keep_ans: bool = False) -> Primitive:
    p = Primitive(name, impl, keep_args=keep_args, keep_ans=keep_ans)
    p.def_rules(shape=elementwise_shape(p))
    if vjps is not None:
        p.def_rules(vjps=vjps, jvps=jvps)
    return p


def _zero_derivative():
    """Rules of piecewise-constant functions: a symbolic zero both ways."""
    return ((lambda g, ans, x: None,), (lambda t, ans, x: None,))


# ---- linear and sign-like ----------------------------------------------------
neg_p = _unary("neg", np.negative, keep_args=False,
               rules=((lambda g, ans, x: -g,), (lambda t, ans, x: -t,)))
conj_p = _unary("conj", np.conjugate, keep_args=False,
                rules=((lambda g, ans, x: to_operand(conj_p.bind(g), x),),
                       (lambda t, ans, x: conj_p.bind(t),)))
real_p = _unary("real", np.real, keep_args=False,
                rules=((lambda g, ans, x: to_operand(real_p.bind(g), x),),
                       (lambda t, ans, x: real_p.bind(t),)))
imag_p = _unary("imag", np.imag, keep_args=False,
                rules=((lambda g, ans, x: real_p.bind(g) * 1j if is_complex(x) else None,),
                       (lambda t, ans, x: imag_p.bind(t),)))
sign_p = _unary("sign", np.sign, keep_args=False, rules=_zero_derivative())
floor_p = _unary("floor", np.floor, keep_args=False, rules=_zero_derivative())
ceil_p = _unary("ceil", np.ceil, keep_args=False, rules=_zero_derivative())
round_p = _unary("round", np.rint, keep_args=False, rules=_zero_derivative())


def _abs_vjp(g, ans, x):
    # d|x| = sign(x) for real x; z/|z| for complex z (0 at the origin).
    if is_complex(x):
        safe = select_p.bind(eq_p.bind(ans, 0), 1.0, ans)
        return to_operand(g * (x / safe), x)
    return to_operand(g * sign_p.bind(x), x)


def _abs_jvp(t, ans, x):
    if is_complex(x):
        safe = select_p.bind(eq_p.bind(ans, 0), 1.0, ans)
        return real_p.bind(conj_p.bind(x) * t) / safe
    return t * sign_p.bind(x)


abs_p = _unary("abs", np.abs, rules=((_abs_vjp,), (_abs_jvp,)), keep_ans=True)

# ---- transcendental (holomorphic) ------------------------------------------------
sin_p = _unary("sin", np.sin, lambda ans, x: cos_p.bind(x))
cos_p = _unary("cos", np.cos, lambda ans, x: -sin_p.bind(x))
tan_p = _unary("tan", np.tan, lambda ans, x: 1 + ans * ans, keep_args=False, keep_ans=True)
arcsin_p = _unary("arcsin", np.arcsin, lambda ans, x: 1 / sqrt_p.bind(1 - x * x))
arccos_p = _unary("arccos", np.arccos, lambda ans, x: -1 / sqrt_p.bind(1 - x * x))
arctan_p = _unary("arctan", np.arctan, lambda ans, x: 1 / (1 + x * x))
sinh_p = _unary("sinh", np.sinh, lambda ans, x: cosh_p.bind(x))
cosh_p = _unary("cosh", np.cosh, lambda ans, x: sinh_p.bind(x))
tanh_p = _unary("tanh", np.tanh, lambda ans, x: 1 - ans * ans, keep_args=False, keep_ans=True)
arcsinh_p = _unary("arcsinh", np.arcsinh, lambda ans, x: 1 / sqrt_p.bind(x * x + 1))
arccosh_p = _unary("arccosh", np.arccosh,
                   lambda ans, x: 1 / (sqrt_p.bind(x - 1) * sqrt_p.bind(x + 1)))
arctanh_p = _unary("arctanh", np.arctanh, lambda ans, x: 1 / (1 - x * x))
exp_p = _unary("exp", np.exp, lambda ans, x: ans, keep_args=False, keep_ans=True)
expm1_p = _unary("expm1", np.expm1, lambda ans, x: ans + 1, keep_args=False, keep_ans=True)
log_p = _unary("log", np.log, lambda ans, x: 1 / x)
log1p_p = _unary("log1p", np.log1p, lambda ans, x: 1 / (1 + x))
sqrt_p = _unary("sqrt", np.sqrt, lambda ans, x: 0.5 / ans, keep_args=False, keep_ans=True)
cbrt_p = _unary("cbrt", np.cbrt, lambda ans, x: 1 / (3 * ans * ans), keep_args=False,
                keep_ans=True)


def _logistic_impl(x):
    """``1 / (1 + exp(-x))``: stable in both tails (far below 0 ``exp(-x)``
    overflows to ``inf`` and the result is the right limit 0; far above, it
    underflows to 0 and the result is 1: neither is reported). Vectorised ``exp``
    makes it about twice as fast as SciPy's ``expit`` (a scalar loop) on float32,
    and it runs unchanged on CuPy."""
    with np.errstate(over="ignore", under="ignore"):
        e = np.negative(x)
        if not getattr(e, "ndim", 0) or e.dtype.kind != "f":  # a scalar, or x an integer
            return 1 / (1 + np.exp(e))
        np.exp(e, out=e)  # one buffer for all four passes
        e += 1
        return np.reciprocal(e, out=e)


logistic_p = _unary("logistic", _logistic_impl, lambda ans, x: ans * (1 - ans),
                    keep_args=False, keep_ans=True)

# ---- binary arithmetic -----------------------------------------------------------
add_p = _binary(
    "add", np.add, keep_args=False,
    vjps=(lambda g, ans, x, y: to_operand(g, x), lambda g, ans, x, y: to_operand(g, y)),
    jvps=(lambda t, ans, x, y: t, lambda t, ans, x, y: t))
sub_p = _binary(
    "sub", np.subtract, keep_args=False,
    vjps=(lambda g, ans, x, y: to_operand(g, x), lambda g, ans, x, y: to_operand(-g, y)),
    jvps=(lambda t, ans, x, y: t, lambda t, ans, x, y: -t))
mul_p = _binary(
    "mul", np.multiply,
    vjps=(lambda g, ans, x, y: to_operand(g * conj_if_complex(y), x),
          lambda g, ans, x, y: to_operand(g * conj_if_complex(x), y)),
    jvps=(lambda t, ans, x, y: t * y, lambda t, ans, x, y: x * t))
div_p = _binary(
    "div", np.true_divide,
    vjps=(lambda g, ans, x, y: to_operand(g / conj_if_complex(y), x),
          lambda g, ans, x, y: to_operand(-g * conj_if_complex(x / (y * y)), y)),
    jvps=(lambda t, ans, x, y: t / y, lambda t, ans, x, y: -t * x / (y * y)))


def _pow_dx(ans, x, y):
    """y * x**(y-1). At x == 0 with y == 0 (x**0, or the derivative of x**1) it is
    0, the derivative of the constant 1, not 0 * inf: the exponent is made safe
    there by a select, so higher derivatives stay finite too."""
    if isinstance(y, (int, float, np.integer, np.floating)):  # a constant exponent
        return y * pow_p.bind(x, y - 1 if y != 0 else 0)
    at_origin = and_p.bind(eq_p.bind(x, 0), eq_p.bind(y, 0))
    safe_y = select_p.bind(at_origin, 1, y)
    return select_p.bind(at_origin, 0, y * pow_p.bind(x, safe_y - 1))


def _pow_dy(ans, x, y):
    # log(x) * x**y, defined as 0 where x == 0 (the limit for y > 0).
    safe_x = select_p.bind(eq_p.bind(x, 0), 1, x)
    return select_p.bind(eq_p.bind(x, 0), 0, log_p.bind(safe_x) * ans)


pow_p = _binary(
    "pow", np.power, keep_ans=True,
    vjps=(lambda g, ans, x, y: to_operand(g * conj_if_complex(_pow_dx(ans, x, y)), x),
          lambda g, ans, x, y: to_operand(g * conj_if_complex(_pow_dy(ans, x, y)), y)),
    jvps=(lambda t, ans, x, y: t * _pow_dx(ans, x, y),
          lambda t, ans, x, y: t * _pow_dy(ans, x, y)))


def _choose_weight(x, y, strict_p):
    # 1 where x wins, 0.5 on ties (so max(x, x) splits the gradient), else 0.
    wins = convert_element_type_p.bind(strict_p.bind(x, y), new_dtype=np.result_type(x, y))
    ties = convert_element_type_p.bind(eq_p.bind(x, y), new_dtype=np.result_type(x, y))
    return wins + 0.5 * ties


def _extremum(name, impl, strict_name):
    def w(x, y):
        return _choose_weight(x, y, _comparisons[strict_name])

    def wy(x, y):
        return _choose_weight(y, x, _comparisons[strict_name])

    return _binary(
        name, impl,
        vjps=(lambda g, ans, x, y: to_operand(g * w(x, y), x),
              lambda g, ans, x, y: to_operand(g * wy(x, y), y)),
        jvps=(lambda t, ans, x, y: t * w(x, y), lambda t, ans, x, y: t * wy(x, y)))


def _atan2_denominator(x, y):
    return x * x + y * y


atan2_p = _binary(
    "atan2", np.arctan2,
    vjps=(lambda g, ans, y, x: to_operand(g * x / _atan2_denominator(x, y), y),
          lambda g, ans, y, x: to_operand(-g * y / _atan2_denominator(x, y), x)),
    jvps=(lambda t, ans, y, x: t * x / _atan2_denominator(x, y),
          lambda t, ans, y, x: -t * y / _atan2_denominator(x, y)))

# C-style remainder (sign of the dividend), as XLA's `rem`.
rem_p = _binary(
    "rem", np.fmod,
    vjps=(lambda g, ans, x, y: to_operand(g, x),
          lambda g, ans, x, y: to_operand(-g * round_toward_zero(x / y), y)),
    jvps=(lambda t, ans, x, y: t, lambda t, ans, x, y: -t * round_toward_zero(x / y)))


# NumPy's floor_divide: integers in, integers out. Piecewise constant, so it has no
# rules: transformations see its result as a constant (a zero derivative).
floor_divide_p = _binary("floor_divide", np.floor_divide)


def round_toward_zero(x):
    return sign_p.bind(x) * floor_p.bind(abs_p.bind(x))


# ---- comparisons and logic (not differentiable) ------------------------------------
_comparisons = {name: _binary(name, impl) for name, impl in [
    ("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
    ("gt", np.greater), ("ge", np.greater_equal),
    ("and", np.logical_and), ("or", np.logical_or), ("xor", np.logical_xor),
]}
eq_p, ne_p, lt_p, le_p, gt_p, ge_p = (_comparisons[n] for n in ("eq", "ne", "lt", "le", "gt", "ge"))
and_p, or_p, xor_p = _comparisons["and"], _comparisons["or"], _comparisons["xor"]
not_p = _unary("not", np.logical_not)

# ---- bitwise (booleans and integers; NumPy refuses floats, and so do these) -----------
# ``|`` on booleans is logical, on integers bitwise: the ufuncs decide by dtype, as the
# Python operators of NumPy arrays do. ``right_shift`` is arithmetic on signed integers.
bitwise_and_p = _binary("bitwise_and", np.bitwise_and)
bitwise_or_p = _binary("bitwise_or", np.bitwise_or)
bitwise_xor_p = _binary("bitwise_xor", np.bitwise_xor)
left_shift_p = _binary("left_shift", np.left_shift)
right_shift_p = _binary("right_shift", np.right_shift)
invert_p = _unary("invert", np.invert)
isfinite_p = _unary("isfinite", np.isfinite)
isnan_p = _unary("isnan", np.isnan)

max_p = _extremum("max", np.maximum, "gt")
min_p = _extremum("min", np.minimum, "lt")


# ---- select and type conversion -------------------------------------------------------
def _select_zero(g):
    # A Python 0 is weakly typed (the result keeps g's dtype) and is the fast path of
    # np.where: a NumPy float32 scalar made ReLU's pullback twice as slow (NumPy 2.4).
    return 0


#: Below this many elements np.where's one call beats three bitwise passes.
_BITWISE_SELECT_MIN = 4096
_UINT = {4: np.uint32, 8: np.uint64}


def _positive_zero(v) -> bool:
    return type(v) in (int, float) and v == 0 and not np.signbit(v)


def _select_impl(c, x, y):
    """``np.where(c, x, y)``, by bit masks for large float arrays chosen by a
    boolean array of their shape (a ReLU's pullback): np.where branches per
    element, and a random mask mispredicts (3-5x slower). The masks select the
    same bits, signed zeros and NaN payloads included."""
    if not (type(c) is np.ndarray and c.dtype == np.bool_ and c.size >= _BITWISE_SELECT_MIN):
        return np.where(c, x, y)
    arrays = [v for v in (x, y) if type(v) is np.ndarray]
    dtype = arrays[0].dtype if arrays else None
    if (dtype is None or dtype.char not in "fd"
            or any(v.dtype != dtype or v.shape != c.shape for v in arrays)
            or any(type(v) is not np.ndarray and not _positive_zero(v) for v in (x, y))):
        return np.where(c, x, y)
    uint = _UINT[dtype.itemsize]
    mask = c.astype(uint)
    np.negative(mask, out=mask)  # all ones where c holds
    if type(x) is np.ndarray:
        picked = np.bitwise_and(x.view(uint), mask)
        if type(y) is np.ndarray:
            np.invert(mask, out=mask)
            np.bitwise_and(y.view(uint), mask, out=mask)
            np.bitwise_or(picked, mask, out=picked)
    else:  # x is +0.0: keep y where c does not hold
        np.invert(mask, out=mask)
        picked = np.bitwise_and(y.view(uint), mask, out=mask)
    return picked.view(dtype)


select_p = Primitive("select", _select_impl)
select_p.def_rules(
    shape=elementwise_shape(select_p),
    vjps=(None,
          lambda g, ans, c, x, y: to_operand(select_p.bind(c, g, _select_zero(g)), x),
          lambda g, ans, c, x, y: to_operand(select_p.bind(c, _select_zero(g), g), y)),
    jvps=(None,
          lambda t, ans, c, x, y: select_p.bind(c, t, _select_zero(t)),
          lambda t, ans, c, x, y: select_p.bind(c, _select_zero(t), t)))


def _convert_impl(x, new_dtype):
    return np.asarray(x).astype(new_dtype, copy=False) if not hasattr(x, "astype") \
        else x.astype(new_dtype, copy=False)


def _convert_vjp(g, ans, x, new_dtype):
    old = np.result_type(x)
    if not is_inexact_dtype(old):
        return None
    if is_complex(g) and old.kind != "c":
        g = real_p.bind(g)
    return convert_element_type_p.bind(g, new_dtype=old)


def _convert_jvp(t, ans, x, new_dtype):
    if not is_inexact_dtype(new_dtype):
        return None
    return convert_element_type_p.bind(t, new_dtype=new_dtype)


convert_element_type_p = Primitive("convert_element_type", _convert_impl, keep_args=False)
convert_element_type_p.def_rules(
    shape=lambda x, new_dtype: Aval(shape_of(x), new_dtype),
    vjps=(_convert_vjp,), jvps=(_convert_jvp,))
