"""The lowering table: one rule per `wengert.ad` primitive, as `jax.lax` calls.

`interpret` walks a `wengert.ad.ir.Graph` inside a jax trace and applies each
equation's rule, so a whole graph (sub-graphs of control flow included)
becomes one jax function, hence one XLA program. Every rule receives the
equation's output avals first, then its inputs (jax values, or Python scalars
for IR literals) and params, and reproduces the primitive's eager NumPy
semantics exactly: operands are converted to the dtypes the IR recorded
(NumPy's promotion), broadcasting is explicit, and nothing is downcast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wengert.ad import ir
from wengert.ad.primitives import Aval
from wengert.ad.primitives.structural import decode_index
from wengert.ad.random import threefry_rounds

from .errors import LoweringError

Rule = Callable[..., Any]
RULES: dict[str, Rule] = {}


def interpret(graph: ir.Graph, inputs: Sequence[Any], consts: Sequence[Any] | None = None
              ) -> list[Any]:
    """Evaluate ``graph`` on jax values (inside a trace): the graph's outputs, flat.

    Bounded loops (``while`` with ``max_steps``) report overflow flags to the
    innermost `collect_overflow` scope.
    """
    env: dict[int, Any] = {}
    for v, x in zip(graph.in_vars, inputs):
        env[v.id] = x
    for v, c in zip(graph.const_vars, graph.consts if consts is None else consts):
        env[v.id] = c

    def read(a: ir.Atom) -> Any:
        return a.value if isinstance(a, ir.Literal) else env[a.id]

    for eqn in graph.eqns:
        rule = RULES.get(eqn.prim.name)
        if rule is None:
            raise LoweringError(
                f"primitive {eqn.prim.name!r} has no XLA lowering in wengert.xla; add a rule "
                "to wengert.xla.lowering.RULES (or run the function eagerly)")
        outs = tuple(o.aval for o in eqn.outputs)
        result = rule(outs, *(read(a) for a in eqn.inputs), **eqn.params)
        if eqn.prim.multiple_results:
            for v, r in zip(eqn.outputs, result):
                env[v.id] = _as(r, v.aval.dtype)
        else:
            env[eqn.outputs[0].id] = result
    return [_as(read(a), a.aval.dtype) for a in graph.out_atoms]


# ---- overflow of bounded loops ------------------------------------------------------------
# XLA cannot raise, so a `while` with ``max_steps`` stops there and raises a flag;
# flags raised inside sub-graphs travel out as extra outputs of the enclosing
# construct, and `compile.Program` raises `MaxStepsExceeded` after the run.

_overflow_sinks: list[list[Any]] = []


class collect_overflow:
    """Scope gathering the overflow flags raised by the equations traced within it."""

    def __enter__(self) -> collect_overflow:
        self.flags: list[Any] = []
        _overflow_sinks.append(self.flags)
        return self

    def __exit__(self, *exc: object) -> None:
        _overflow_sinks.pop()

    def any(self) -> Any:
        """One bool scalar (False when nothing could overflow)."""
        flag = jnp.zeros((), np.bool_)
        for f in self.flags:
            flag = lax.bitwise_or(flag, f)
        return flag


def _raise_overflow(flag: Any) -> None:
    if _overflow_sinks:
        _overflow_sinks[-1].append(flag)


def _sub(graph: ir.Graph) -> Callable[..., tuple]:
    """A sub-graph as a jax function returning ``(*outputs, overflow)``."""
    def fn(*args: Any) -> tuple:
        with collect_overflow() as scope:
            outs = interpret(graph, args)
        return (*outs, scope.any())

    return fn


def rule(*names: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for name in names:
            if name in RULES:
                raise ValueError(f"two lowering rules for {name!r}")
            RULES[name] = fn
        return fn

    return register


# ---- operand helpers -----------------------------------------------------------------------


def _as(x: Any, dtype: Any) -> Any:
    """``x`` as ``dtype``: Python scalars become typed constants, arrays are converted."""
    dtype = np.dtype(dtype)
    if not isinstance(x, jax.Array) and not hasattr(x, "aval"):
        return jnp.asarray(np.asarray(x).astype(dtype))
    if x.dtype == dtype:
        return x
    if x.dtype.kind == "c" and dtype.kind != "c":
        x = lax.real(x)
    return lax.convert_element_type(x, dtype)


def _bcast(x: Any, shape: tuple[int, ...]) -> Any:
    """NumPy broadcasting made explicit (lax ops take equal shapes)."""
    if x.shape == shape:
        return x
    lead = len(shape) - x.ndim
    return lax.broadcast_in_dim(x, shape, tuple(range(lead, len(shape))))


def _operands(out: Aval, args: Sequence[Any], dtype: Any = None) -> list[Any]:
    """Every operand in ``dtype`` (default: the output's) at the output's shape."""
    dtype = out.dtype if dtype is None else dtype
    return [_bcast(_as(a, dtype), out.shape) for a in args]


def _dtype_key(x: Any) -> Any:
    return x.dtype if hasattr(x, "dtype") else x


def _common_dtype(args: Sequence[Any]) -> np.dtype:
    """NumPy's promotion of the operands (Python scalars are weak, as in NumPy 2)."""
    return np.result_type(*(_dtype_key(a) for a in args))


def _axes(axes: Any, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    return tuple(int(a) % ndim if ndim else int(a) for a in axes)


# ---- elementwise -----------------------------------------------------------------------------

_SAME_DTYPE = {
    "neg": lax.neg, "sin": lax.sin, "cos": lax.cos, "tan": lax.tan, "arcsin": lax.asin,
    "arccos": lax.acos, "arctan": lax.atan, "sinh": lax.sinh, "cosh": lax.cosh,
    "tanh": lax.tanh, "arcsinh": lax.asinh, "arccosh": lax.acosh, "arctanh": lax.atanh,
    "exp": lax.exp, "expm1": lax.expm1, "log": lax.log, "log1p": lax.log1p, "sqrt": lax.sqrt,
    "cbrt": lax.cbrt, "logistic": lax.logistic, "sign": lax.sign,
    "add": lax.add, "sub": lax.sub, "mul": lax.mul, "div": lax.div, "max": lax.max,
    "min": lax.min, "atan2": lax.atan2,
}


def _integer_division(fn: Callable) -> Callable:
    """NumPy's integer ``//`` and ``fmod`` by zero give 0 (and warn); XLA's give
    garbage, so the zero divisors are masked."""
    def lower(x, y):
        out = fn(x, y)
        if x.dtype.kind in "iu":
            out = lax.select(lax.eq(y, jnp.zeros((), y.dtype)), jnp.zeros_like(out), out)
        return out

    return lower


def _on_booleans(fn: Callable, logical: Callable) -> Callable:
    """NumPy's ``+``/``*`` of booleans are logical or/and (XLA has no boolean add)."""
    return lambda x, y: logical(x, y) if x.dtype == np.bool_ else fn(x, y)


_SAME_DTYPE.update(rem=_integer_division(lax.rem),
                   floor_divide=_integer_division(jnp.floor_divide),
                   add=_on_booleans(lax.add, lax.bitwise_or),
                   mul=_on_booleans(lax.mul, lax.bitwise_and))


def _same_dtype_rule(fn: Callable) -> Rule:
    def lower(outs, *args):
        return fn(*_operands(outs[0], args))

    return lower


for _name, _fn in _SAME_DTYPE.items():
    rule(_name)(_same_dtype_rule(_fn))


def _integral(dtype: np.dtype) -> bool:
    return dtype.kind in "iub"


def _integer_identity_rule(fn: Callable) -> Rule:
    """floor/ceil/round are identities on integers (NumPy keeps their dtype)."""
    def lower(outs, x):
        (x,) = _operands(outs[0], (x,))
        return x if _integral(x.dtype) else fn(x)

    return lower


rule("floor")(_integer_identity_rule(lax.floor))
rule("ceil")(_integer_identity_rule(lax.ceil))
rule("round")(_integer_identity_rule(
    lambda x: lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN)))  # numpy.rint


def _complex_to_real_rule(fn: Callable, on_real: Callable) -> Rule:
    """abs/real/imag: complex operands keep their dtype and give a real result."""
    def lower(outs, x):
        if _common_dtype((x,)).kind == "c":
            return fn(_as(x, _common_dtype((x,))))
        return on_real(*_operands(outs[0], (x,)))

    return lower


rule("abs")(_complex_to_real_rule(
    lax.abs, lambda x: x if x.dtype.kind in "ub" else lax.abs(x)))  # unsigned: itself
rule("real")(_complex_to_real_rule(lax.real, lambda x: x))
rule("imag")(_complex_to_real_rule(lax.imag, jnp.zeros_like))


@rule("conj")
def _conj(outs, x):
    (x,) = _operands(outs[0], (x,))
    return lax.conj(x) if x.dtype.kind == "c" else x


@rule("pow")
def _pow(outs, x, y):
    x, y = _operands(outs[0], (x, y))
    if _integral(x.dtype):
        return jnp.power(x, y)  # integer exponentiation by squaring, as NumPy
    return lax.pow(x, y)


def _compare_rule(fn: Callable) -> Rule:
    """Comparisons and bitwise ops: operands in their common dtype, then ``fn``."""
    def lower(outs, x, y):
        return fn(*_operands(outs[0], (x, y), _common_dtype((x, y))))

    return lower


def _shift_right(x: Any, y: Any) -> Any:
    """NumPy's ``>>``: arithmetic on signed integers, logical on unsigned."""
    kind = x.dtype.kind
    return (lax.shift_right_arithmetic if kind == "i" else lax.shift_right_logical)(x, y)


for _name, _fn in {"eq": lax.eq, "ne": lax.ne, "lt": lax.lt, "le": lax.le, "gt": lax.gt,
                   "ge": lax.ge, "bitwise_and": lax.bitwise_and,
                   "bitwise_or": lax.bitwise_or, "bitwise_xor": lax.bitwise_xor}.items():
    rule(_name)(_compare_rule(_fn))
# Shifts of booleans give integers (NumPy: True << True == 2): operands in the output's dtype.
rule("left_shift")(_same_dtype_rule(lax.shift_left))
rule("right_shift")(_same_dtype_rule(_shift_right))


@rule("invert")
def _invert(outs, x):
    (x,) = _operands(outs[0], (x,))
    return lax.bitwise_not(x)  # on booleans: logical not, as NumPy's ``~``


def _truth(x: Any, shape: tuple[int, ...]) -> Any:
    """NumPy truthiness: nonzero is True."""
    x = _as(x, _common_dtype((x,)))
    if x.dtype != np.bool_:
        x = lax.ne(x, jnp.zeros((), x.dtype))
    return _bcast(x, shape)


def _logical_rule(fn: Callable) -> Rule:
    def lower(outs, *args):
        return fn(*(_truth(a, outs[0].shape) for a in args))

    return lower


rule("and")(_logical_rule(lax.bitwise_and))
rule("or")(_logical_rule(lax.bitwise_or))
rule("xor")(_logical_rule(lax.bitwise_xor))
rule("not")(_logical_rule(lax.bitwise_not))


def _predicate_rule(fn: Callable) -> Rule:
    def lower(outs, x):
        return fn(_as(x, _common_dtype((x,))))

    return lower


rule("isfinite")(_predicate_rule(jnp.isfinite))
rule("isnan")(_predicate_rule(jnp.isnan))


@rule("select")
def _select(outs, c, x, y):
    x, y = _operands(outs[0], (x, y))
    return lax.select(_truth(c, outs[0].shape), x, y)


@rule("convert_element_type")
def _convert(outs, x, new_dtype):
    return _as(x, outs[0].dtype)


@rule("stop_gradient")
def _identity(outs, x):
    return _as(x, outs[0].dtype)


# ---- contraction and convolution -------------------------------------------------------------


@rule("dot_general")
def _dot_general(outs, a, b, dimension_numbers):
    dtype = outs[0].dtype
    return lax.dot_general(_as(a, dtype), _as(b, dtype), dimension_numbers,
                           preferred_element_type=dtype)


@rule("conv_general_dilated")
def _conv(outs, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
          dimension_numbers, feature_group_count):
    dtype = outs[0].dtype
    return lax.conv_general_dilated(
        _as(lhs, dtype), _as(rhs, dtype), tuple(window_strides), tuple(map(tuple, padding)),
        lhs_dilation=tuple(lhs_dilation), rhs_dilation=tuple(rhs_dilation),
        dimension_numbers=lax.ConvDimensionNumbers(*map(tuple, dimension_numbers)),
        feature_group_count=feature_group_count, preferred_element_type=dtype)


# ---- reductions, scans, sorting --------------------------------------------------------------


def _reduction_rule(fn: Callable) -> Rule:
    """Reduce in the output dtype (NumPy sums small integers and bools as int64)."""
    def lower(outs, x, axes):
        x = _as(x, outs[0].dtype)
        return fn(x, axis=_axes(axes, x.ndim))

    return lower


rule("reduce_sum")(_reduction_rule(jnp.sum))
rule("reduce_max")(_reduction_rule(jnp.max))
rule("reduce_min")(_reduction_rule(jnp.min))
rule("reduce_prod")(_reduction_rule(jnp.prod))


def _arg_rule(fn: Callable) -> Rule:
    def lower(outs, x, axis):
        x = _as(x, _common_dtype((x,)))
        return _as(fn(x, axis=_axes(axis, x.ndim)[0]), outs[0].dtype)

    return lower


rule("argmax")(_arg_rule(jnp.argmax))
rule("argmin")(_arg_rule(jnp.argmin))


def _cumulative_rule(fn: Callable) -> Rule:
    def lower(outs, x, axis, reverse):
        x = _as(x, outs[0].dtype)
        return fn(x, axis=_axes(axis, x.ndim)[0], reverse=bool(reverse))

    return lower


rule("cumsum")(_cumulative_rule(lax.cumsum))
rule("cumprod")(_cumulative_rule(lax.cumprod))


@rule("sort")
def _sort(outs, x, axis):
    x = _as(x, outs[0].dtype)
    return lax.sort(x, dimension=_axes(axis, x.ndim)[0])


@rule("argsort")
def _argsort(outs, x, axis):
    x = _as(x, _common_dtype((x,)))
    dim = _axes(axis, x.ndim)[0]
    iota = lax.broadcasted_iota(outs[0].dtype, x.shape, dim)
    return lax.sort((x, iota), dimension=dim, is_stable=True, num_keys=1)[1]


@rule("take_along_axis")
def _take_along_axis(outs, x, idx, axis):
    x = _as(x, outs[0].dtype)
    return jnp.take_along_axis(x, _as(idx, _common_dtype((idx,))), axis=_axes(axis, x.ndim)[0])


# ---- structural -----------------------------------------------------------------------------


@rule("reshape")
def _reshape(outs, x, new_sizes):
    return lax.reshape(_as(x, outs[0].dtype), outs[0].shape)


@rule("transpose")
def _transpose(outs, x, permutation):
    return lax.transpose(_as(x, outs[0].dtype), tuple(permutation))


@rule("broadcast_in_dim")
def _broadcast_in_dim(outs, x, shape, broadcast_dimensions):
    return lax.broadcast_in_dim(_as(x, outs[0].dtype), outs[0].shape,
                                tuple(broadcast_dimensions))


@rule("rev")
def _rev(outs, x, dimensions):
    x = _as(x, outs[0].dtype)
    return lax.rev(x, _axes(dimensions, x.ndim))


@rule("concatenate")
def _concatenate(outs, *xs, dimension):
    dtype = outs[0].dtype
    return lax.concatenate([_as(x, dtype) for x in xs], _axes(dimension, len(outs[0].shape))[0])


@rule("pad")
def _pad(outs, x, padding_value, padding_config):
    dtype = outs[0].dtype
    return lax.pad(_as(x, dtype), _as(padding_value, dtype),
                   tuple(tuple(int(v) for v in c) for c in padding_config))


def _index(spec: tuple, arrays: Sequence[Any]) -> tuple:
    return decode_index(spec, [_as(a, _common_dtype((a,))) for a in arrays])


@rule("getitem")
def _getitem(outs, x, *arrays, spec):
    return _as(x, outs[0].dtype)[_index(spec, arrays)]


@rule("scatter_add")
def _scatter_add(outs, operand, updates, *arrays, spec):
    dtype = outs[0].dtype
    return _as(operand, dtype).at[_index(spec, arrays)].add(_as(updates, dtype))


@rule("index_update")
def _index_update(outs, operand, updates, *arrays, spec):
    dtype = outs[0].dtype
    return _as(operand, dtype).at[_index(spec, arrays)].set(_as(updates, dtype))


# ---- windowed reductions (pooling) and their derivatives -------------------------------------


def _window_max(x: Any, window_dimensions, window_strides, padding) -> Any:
    lowest = -np.inf if jnp.issubdtype(x.dtype, jnp.floating) else np.iinfo(x.dtype).min
    return lax.reduce_window(x, np.array(lowest, x.dtype), lax.max, tuple(window_dimensions),
                             tuple(window_strides), tuple(map(tuple, padding)))


@rule("reduce_window_sum")
def _reduce_window_sum(outs, x, *, window_dimensions, window_strides, padding):
    x = _as(x, outs[0].dtype)
    return lax.reduce_window(x, np.array(0, x.dtype), lax.add, tuple(window_dimensions),
                             tuple(window_strides), tuple(map(tuple, padding)))


@rule("reduce_window_max")
def _reduce_window_max(outs, x, *, window_dimensions, window_strides, padding):
    return _window_max(_as(x, outs[0].dtype), window_dimensions, window_strides, padding)


# XLA's SelectAndScatter / its transpose, reached through jax's own derivative of the
# windowed max (both route to the first maximum of each window, as wengert.ad's impls).


@rule("select_and_gather_add")
def _select_and_gather_add(outs, tangent, operand, **window):
    operand = _as(operand, _common_dtype((operand,)))
    return jax.jvp(lambda o: _window_max(o, **window), (operand,),
                   (_as(tangent, operand.dtype),))[1]


@rule("select_and_scatter_add")
def _select_and_scatter_add(outs, source, operand, **window):
    operand = _as(operand, _common_dtype((operand,)))
    _, back = jax.vjp(lambda o: _window_max(o, **window), operand)
    return _as(back(_as(source, operand.dtype))[0], outs[0].dtype)


# ---- dynamic indexing ----------------------------------------------------------------------


def _starts(starts: Sequence[Any], shape: tuple, sizes: tuple) -> list[Any]:
    """Start indices clamped so the window fits (the contract, as XLA's op).

    Clamping here also keeps jax from wrapping negative starts NumPy-style.
    """
    arrays = [np.dtype(s.dtype) for s in starts if hasattr(s, "dtype")]
    dtype = np.result_type(*arrays) if arrays else np.dtype(np.int32)
    return [lax.clamp(np.zeros((), dtype), _as(s, dtype), np.asarray(d - n, dtype))
            for s, d, n in zip(starts, shape, sizes)]


@rule("dynamic_slice")
def _dynamic_slice(outs, x, *starts, slice_sizes):
    x = _as(x, outs[0].dtype)
    return lax.dynamic_slice(x, _starts(starts, x.shape, slice_sizes), tuple(slice_sizes))


@rule("dynamic_update_slice")
def _dynamic_update_slice(outs, x, update, *starts):
    x, update = _as(x, outs[0].dtype), _as(update, outs[0].dtype)
    return lax.dynamic_update_slice(x, update, _starts(starts, x.shape, update.shape))


# ---- special functions ---------------------------------------------------------------------

for _name, _fn in {"erf": lax.erf, "erfc": lax.erfc, "erfinv": lax.erf_inv, "gammaln": lax.lgamma,
                   "digamma": lax.digamma, "logit": jax.scipy.special.logit,
                   "xlogy": jax.scipy.special.xlogy}.items():
    rule(_name)(_same_dtype_rule(_fn))


@rule("stdtr")
def _stdtr(outs, df, t):
    # Student's t distribution function through the regularized incomplete beta function.
    df, t = _operands(outs[0], (df, t))
    tail = 0.5 * jax.scipy.special.betainc(0.5 * df, 0.5, df / (df + t * t))
    return jnp.where(t > 0, 1 - tail, tail)


@rule("polygamma")
def _polygamma(outs, x, n):
    (x,) = _operands(outs[0], (x,))
    return lax.polygamma(jnp.full(x.shape, n, x.dtype), x)


# ---- random numbers (wengert.ad.random): the same cipher, in XLA's integer ops ---------------


class _LaxUint32:
    """The uint32 operations `wengert.ad.random.threefry_rounds` needs, on jax values."""

    @staticmethod
    def add(a: Any, b: Any) -> Any:
        return lax.add(a, _u32(b))

    @staticmethod
    def xor(a: Any, b: Any) -> Any:
        return lax.bitwise_xor(a, _u32(b))

    @staticmethod
    def rotl(x: Any, r: int) -> Any:
        return lax.bitwise_or(lax.shift_left(x, np.uint32(r)),
                              lax.shift_right_logical(x, np.uint32(32 - r)))


def _u32(v: Any) -> Any:
    return np.uint32(v) if isinstance(v, int) else v


@rule("threefry2x32")
def _threefry2x32(outs, k1, k2, x1, x2):
    shape = outs[0].shape
    k1, k2, x1, x2 = (_bcast(_as(v, np.uint32), shape) for v in (k1, k2, x1, x2))
    return threefry_rounds(k1, k2, x1, x2, _LaxUint32)


@rule("random_counters")
def _random_counters(outs, key, shape):
    size = int(np.prod(shape, dtype=np.int64))
    if size >= 2 ** 32:
        raise LoweringError("random: more than 2**32 numbers in one draw; split the key")
    lo = lax.reshape(lax.iota(np.uint32, size), tuple(shape))
    return jnp.zeros(tuple(shape), np.uint32), lo


@rule("random_combine")
def _random_combine(outs, y1, y2, bit_width):
    dtype = outs[0].dtype
    y1, y2 = _as(y1, np.uint32), _as(y2, np.uint32)
    if bit_width == 64:
        return lax.bitwise_or(lax.shift_left(_as(y1, dtype), np.uint64(32)), _as(y2, dtype))
    return _as(lax.bitwise_xor(y1, y2), dtype)


@rule("random_unit")
def _random_unit(outs, bits, dtype):
    dtype = np.dtype(outs[0].dtype)
    finfo = np.finfo(dtype)
    uint = np.dtype(f"uint{finfo.bits}")
    shift = uint.type(np.dtype(bits.dtype).itemsize * 8 - finfo.nmant)
    bits = _as(bits, uint)
    one = np.array(1.0, dtype).view(uint)
    floats = lax.bitcast_convert_type(lax.bitwise_or(lax.shift_right_logical(bits, shift), one),
                                      dtype)
    return floats - np.array(1.0, dtype)


# ---- fft -------------------------------------------------------------------------------------

_FFT_TYPES = {"fft": lax.FftType.FFT, "ifft": lax.FftType.IFFT, "rfft": lax.FftType.RFFT,
              "irfft": lax.FftType.IRFFT}


@rule("fft")
def _fft(outs, x, *, fft_type, fft_lengths):
    out = outs[0].dtype
    operand = np.finfo(out).dtype if fft_type == "rfft" else np.result_type(out, np.complex64)
    return lax.fft(_as(x, operand), _FFT_TYPES[fft_type], tuple(fft_lengths))


# ---- linear algebra (matrices in the last two axes, leading axes batch) ----------------------


@rule("cholesky")
def _cholesky(outs, a):
    # LAPACK reads the lower triangle only; so does wengert.ad's rule.
    return lax.linalg.cholesky(_as(a, outs[0].dtype), symmetrize_input=False)


@rule("triangular_solve")
def _triangular_solve(outs, a, b, *, left_side, lower, transpose_a, conjugate_a):
    dtype = outs[0].dtype
    return lax.linalg.triangular_solve(_as(a, dtype), _as(b, dtype), left_side=left_side,
                                       lower=lower, transpose_a=transpose_a,
                                       conjugate_a=conjugate_a)


@rule("solve")
def _solve(outs, a, b):
    dtype = outs[0].dtype
    return jnp.linalg.solve(_as(a, dtype), _as(b, dtype))


@rule("slogdet")
def _slogdet(outs, a):
    return tuple(jnp.linalg.slogdet(_as(a, _common_dtype((a,)))))


@rule("eigh")
def _eigh(outs, a):
    w, v = jnp.linalg.eigh(_as(a, outs[1].dtype), UPLO="L", symmetrize_input=False)
    return w, v


@rule("svd")
def _svd(outs, a):
    return tuple(jnp.linalg.svd(_as(a, outs[0].dtype), full_matrices=False))


@rule("eig")
def _eig(outs, a):
    # XLA's eig runs LAPACK's geev on CPU: the same order and gauge as NumPy's.
    w, v = lax.linalg.eig(a, compute_left_eigenvectors=False)
    return w.astype(outs[0].dtype), v.astype(outs[1].dtype)


@rule("lu")
def _lu(outs, a):
    lu, pivots, permutation = lax.linalg.lu(_as(a, outs[0].dtype))
    return lu, _as(pivots, np.int32), _as(permutation, np.int32)


@rule("lu_pivots_to_permutation")
def _lu_pivots_to_permutation(outs, pivots, *, permutation_size):
    return _as(lax.linalg.lu_pivots_to_permutation(_as(pivots, np.int32), permutation_size),
               np.int32)


@rule("qr")
def _qr(outs, a):
    return tuple(jnp.linalg.qr(_as(a, outs[0].dtype), mode="reduced"))


# ---- structured control flow (sub-graphs; contract in wengert.ad.primitives.control) ---------


@rule("cond")
def _cond(outs, index, *operands, branches):
    index = lax.clamp(np.int32(0), _as(index, np.int32), np.int32(len(branches) - 1))
    *results, overflow = lax.switch(index, [_sub(g) for g in branches], *operands)
    _raise_overflow(overflow)
    return tuple(results)


@rule("while")
def _while(outs, *args, cond_graph, body_graph, n_consts, max_steps, checkpoint_every):
    consts, init = args[:n_consts], [_as(x, o.dtype) for x, o in zip(args[n_consts:], outs)]
    body = _sub(body_graph)

    def go_on(state):
        steps, _, carry = state
        keep = interpret(cond_graph, (*consts, *carry))[0]
        return keep if max_steps is None else lax.bitwise_and(keep, steps < max_steps)

    def step(state):
        steps, overflow, carry = state
        *carry, inner = body(*consts, *carry)
        return steps + 1, lax.bitwise_or(overflow, inner), tuple(carry)

    start = (jnp.zeros((), np.int32), jnp.zeros((), np.bool_), tuple(init))
    steps, overflow, carry = lax.while_loop(go_on, step, start)
    if max_steps is not None:
        unfinished = interpret(cond_graph, (*consts, *carry))[0]
        overflow = lax.bitwise_or(overflow, lax.bitwise_and(steps >= max_steps, unfinished))
    _raise_overflow(overflow)
    return carry


@rule("scan")
def _scan(outs, *args, body_graph, length, reverse, n_consts, n_carry, checkpoint_every):
    consts = args[:n_consts]
    init = [_as(x, o.dtype) for x, o in zip(args[n_consts:n_consts + n_carry], outs)]
    xs = [_as(x, _common_dtype((x,))) for x in args[n_consts + n_carry:]]
    body = _sub(body_graph)

    def step(state, x):
        overflow, carry = state
        *out, inner = body(*consts, *carry, *x)
        return (lax.bitwise_or(overflow, inner), tuple(out[:n_carry])), tuple(out[n_carry:])

    start = (jnp.zeros((), np.bool_), tuple(init))
    (overflow, carry), ys = lax.scan(step, start, tuple(xs), length=length, reverse=reverse)
    _raise_overflow(overflow)
    return (*carry, *ys)


@rule("custom_vjp_call", "custom_jvp_call")
def _custom_call(outs, *args, graph, n_consts, **rules):
    # The primal graph is the computation; the rule graphs served the staging
    # transformations that already ran.
    return tuple(interpret(graph, args))
