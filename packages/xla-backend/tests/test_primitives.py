"""Every `wengert.ad` primitive lowers, and compiled results match eager ones.

`SAMPLES` holds one (or a few) random invocations per registry entry; the
coverage tests fail for a primitive that has no lowering or no sample, so a
newly added primitive cannot slip past unchecked. Tolerances: float64 1e-12,
float32 1e-5 (relative).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import wengert.ad as ad
import wengert.xla as xla
from wengert.ad.primitives import registry
from wengert.ad.primitives.structural import encode_index

F64, F32 = np.float64, np.float32


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(sum(map(ord, name)))


def normal(shape, dtype=F64, name="x"):
    return _rng(name + str(shape)).standard_normal(shape).astype(dtype)


def uniform(shape, lo, hi, dtype=F64, name="u"):
    return _rng(name + str(shape)).uniform(lo, hi, shape).astype(dtype)


def cplx(shape, dtype=np.complex128):
    return (normal(shape, name="re") + 1j * normal(shape, name="im")).astype(dtype)


def ints(shape, lo, hi, dtype=np.int64, name="i"):
    return _rng(name + str(shape)).integers(lo, hi, shape).astype(dtype)


def spd(n, batch=()):
    a = normal(batch + (n, n), name="spd")
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


# name -> list of (args, params), each run eagerly and compiled
SAMPLES: dict[str, list[tuple[tuple, dict]]] = {}


def sample(name: str, *args, **params) -> None:
    SAMPLES.setdefault(name, []).append((args, params))


def _float_variants(name: str, make: Callable[[type], tuple], **params) -> None:
    for dtype in (F64, F32):
        sample(name, *make(dtype), **params)


# ---- elementwise -------------------------------------------------------------------------------
for _n in ["neg", "sin", "cos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "exp", "expm1",
           "logistic", "sign", "floor", "ceil", "round", "abs", "erf", "erfc", "cbrt",
           "conj", "real", "imag", "stop_gradient"]:
    _float_variants(_n, lambda d: (normal((3, 4), d) * 2,))
for _n in ["conj", "real", "imag", "abs", "neg", "exp", "sin", "sign"]:
    sample(_n, cplx((5,)))
sample("tan", uniform((7,), -1.2, 1.2))
sample("round", np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49]))  # half to even
for _n in ["log", "sqrt", "log1p", "gammaln", "digamma"]:
    _float_variants(_n, lambda d: (uniform((3, 4), 0.1, 5.0, d),))
for _n in ["arcsin", "arccos", "arctanh", "erfinv"]:
    _float_variants(_n, lambda d: (uniform((6,), -0.95, 0.95, d),))
_float_variants("arccosh", lambda d: (uniform((6,), 1.05, 4.0, d),))
_float_variants("logit", lambda d: (uniform((6,), 0.05, 0.95, d),))
# ---- random numbers: the cipher and its bit manipulations, exactly -----------------------------
_U32 = np.uint32
sample("threefry2x32", _U32(0), _U32(42), ints((2, 3), 0, 2**32, _U32, "c1"),
       ints((2, 3), 0, 2**32, _U32, "c2"))
sample("threefry2x32", ints((4,), 0, 2**32, _U32, "k1"), _U32(7), _U32(0),
       ints((4,), 0, 2**32, _U32, "c"))   # keys broadcast against the counters
sample("random_counters", np.array([0, 42], _U32), shape=(3, 4))
for _w in (8, 16, 32, 64):
    sample("random_combine", ints((5,), 0, 2**32, _U32, "y1"), ints((5,), 0, 2**32, _U32, "y2"),
           bit_width=_w)
sample("random_unit", ints((6,), 0, 2**32, _U32, "b"), dtype=np.dtype(F32))
sample("random_unit", ints((6,), 0, 2**63, np.uint64, "b"), dtype=np.dtype(F64))
sample("random_unit", ints((6,), 0, 2**16, np.uint16, "b"), dtype=np.dtype(np.float16))
sample("polygamma", uniform((6,), 0.5, 4.0), n=1)
sample("polygamma", uniform((6,), 0.5, 4.0), n=2)
for _n in ["add", "sub", "mul", "div", "max", "min", "atan2", "rem"]:
    _float_variants(_n, lambda d: (normal((3, 4), d), normal((4,), d, "y") + 3.0))
    sample(_n, normal((2, 3)), 2.5)  # Python literal operand
sample("add", ints((4,), -5, 5), 1.5)  # int + float literal -> float64
sample("mul", ints((4,), -5, 5, np.int32), normal((4,), F32))  # -> float64 (NumPy)
sample("div", ints((4,), 1, 5), ints((4,), 1, 5, name="j"))  # true division
sample("rem", ints((6,), -9, 9), ints((6,), 1, 4, name="j"))  # C fmod on integers
sample("floor_divide", ints((6,), -9, 9), ints((6,), -4, 4, name="j") * 2 + 1)  # ints stay
_float_variants("floor_divide", lambda d: (normal((3, 4), d) * 5, normal((4,), d, "y") + 3.0))
sample("add", cplx((3,)), normal((3,)))
_float_variants("pow", lambda d: (uniform((3, 4), 0.2, 3.0, d), normal((4,), d, "y")))
sample("pow", ints((5,), 0, 4), ints((5,), 0, 4, name="e"))
sample("xlogy", uniform((5,), 0.0, 3.0), uniform((5,), 0.1, 3.0, name="y"))
sample("stdtr", uniform((5,), 1.0, 6.0), normal((5,), name="t"))
for _n in ["eq", "ne", "lt", "le", "gt", "ge"]:
    sample(_n, ints((3, 4), 0, 3).astype(F64), ints((4,), 0, 3, name="j").astype(F64))
    sample(_n, ints((5,), 0, 4, np.int32), 2)
for _n in ["and", "or", "xor"]:
    sample(_n, ints((6,), 0, 2).astype(bool), ints((6,), 0, 2, name="j").astype(bool))
    sample(_n, ints((6,), 0, 3), ints((6,), 0, 2, name="j").astype(bool))  # truthiness
sample("not", ints((6,), 0, 2).astype(bool))
sample("not", ints((6,), 0, 3))
sample("lu", normal((4, 4)))
sample("lu", normal((2, 3, 3), F32))  # a batch, single precision
sample("lu", cplx((3, 3)))
sample("lu_pivots_to_permutation", np.array([2, 2, 3, 3], np.int32), permutation_size=4)
sample("lu_pivots_to_permutation", np.array([[1, 1], [0, 1]], np.int32), permutation_size=3)
for _n in ["bitwise_and", "bitwise_or", "bitwise_xor"]:
    sample(_n, ints((6,), -64, 64), ints((6,), 0, 64, name="j"))
    sample(_n, ints((6,), 0, 2).astype(bool), ints((6,), 0, 2, name="j").astype(bool))
    sample(_n, ints((6,), 0, 64, np.int32), ints((6,), 0, 2, name="j").astype(bool))
for _n in ["left_shift", "right_shift"]:  # arithmetic >> on signed, logical on unsigned
    sample(_n, ints((6,), -64, 64), ints((6,), 0, 8, name="j"))
    sample(_n, ints((6,), 0, 255, np.uint8), ints((6,), 0, 8, np.uint8, name="j"))
    sample(_n, ints((6,), -64, 64, np.int32), 3)
sample("invert", ints((6,), -64, 64, np.int32))
sample("invert", ints((6,), 0, 255, np.uint8))
sample("invert", ints((6,), 0, 2).astype(bool))
_special = np.array([0.0, np.inf, -np.inf, np.nan, 1.5])
sample("isfinite", _special)
sample("isnan", _special)
sample("isfinite", ints((3,), 0, 3))
sample("select", ints((3, 4), 0, 2).astype(bool), normal((3, 4)), normal((4,), name="y"))
sample("select", ints((3, 4), 0, 2).astype(bool), normal((3, 4), F32), 0.0)
sample("convert_element_type", normal((5,)) * 4, new_dtype=np.dtype(np.int32))
sample("convert_element_type", normal((5,)), new_dtype=np.dtype(F32))
sample("convert_element_type", ints((5,), -3, 3, np.int32), new_dtype=np.dtype(F64))
sample("convert_element_type", normal((5,)), new_dtype=np.dtype(bool))
sample("convert_element_type", normal((5,)), new_dtype=np.dtype(np.complex128))

# ---- contraction and convolution ----------------------------------------------------------------
_float_variants("dot_general", lambda d: (normal((2, 3, 4), d), normal((2, 4, 5), d, "y")),
                dimension_numbers=(((2,), (1,)), ((0,), (0,))))
sample("dot_general", normal((3, 4)), normal((5, 3), name="y"),
       dimension_numbers=(((0,), (1,)), ((), ())))
_conv = dict(window_strides=(2, 1), padding=((1, 0), (1, 1)), lhs_dilation=(1, 1),
             rhs_dilation=(1, 2), dimension_numbers=((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2)),
             feature_group_count=2)
_float_variants("conv_general_dilated",
                lambda d: (normal((2, 7, 6, 4), d), normal((3, 2, 2, 6), d, "w")), **_conv)
sample("conv_general_dilated", normal((1, 5, 5, 2)), normal((2, 2, 2, 3), name="w"),
       **dict(_conv, window_strides=(1, 1), lhs_dilation=(2, 1), rhs_dilation=(1, 1),
              padding=((1, -1), (0, 2)), feature_group_count=1))
_pool = dict(window_dimensions=(1, 3, 2, 1), window_strides=(1, 2, 2, 1),
             padding=((0, 0), (1, 1), (0, 1), (0, 0)))
for _n in ["reduce_window_sum", "reduce_window_max"]:
    _float_variants(_n, lambda d: (normal((2, 7, 6, 3), d),), **_pool)
for _n in ["select_and_gather_add"]:
    _float_variants(_n, lambda d: (normal((2, 7, 6, 3), d, "t"), normal((2, 7, 6, 3), d)),
                    **_pool)
_float_variants("select_and_scatter_add",
                lambda d: (normal((2, 4, 3, 3), d, "s"), normal((2, 7, 6, 3), d)), **_pool)

# ---- reductions, scans, sorting ----------------------------------------------------------------
for _n in ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod"]:
    _float_variants(_n, lambda d: (normal((3, 4, 5), d),), axes=(0, 2))
    sample(_n, ints((3, 4), -3, 3, np.int32), axes=(1,))
sample("reduce_sum", ints((3, 4), 0, 2).astype(bool), axes=(0, 1))
for _n in ["argmax", "argmin"]:
    sample(_n, normal((4, 5)), axis=1)
    sample(_n, np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]), axis=1)  # first of ties
for _n in ["cumsum", "cumprod"]:
    _float_variants(_n, lambda d: (normal((3, 5), d),), axis=1, reverse=False)
    sample(_n, normal((4, 3)), axis=0, reverse=True)
_float_variants("sort", lambda d: (normal((3, 6), d),), axis=1)
sample("argsort", np.array([[3.0, 1.0, 3.0, 0.0, 1.0]]), axis=1)  # stable
sample("argsort", normal((4, 3)), axis=0)
sample("take_along_axis", normal((3, 5)), ints((3, 4), -5, 5), axis=1)

# ---- structural ----------------------------------------------------------------------------------
sample("reshape", normal((3, 4)), new_sizes=(2, 6))
sample("transpose", normal((2, 3, 4)), permutation=(2, 0, 1))
sample("broadcast_in_dim", normal((3, 1)), shape=(2, 3, 4), broadcast_dimensions=(1, 2))
sample("broadcast_in_dim", 1.5, shape=(2, 3), broadcast_dimensions=())
sample("rev", normal((3, 4)), dimensions=(0, 1))
sample("concatenate", normal((2, 3)), normal((4, 3), F32, "y"), dimension=0)
_float_variants("pad", lambda d: (normal((3, 4), d), 0.5),
                padding_config=((1, -1, 1), (-1, 2, 0)))


def _index_sample(name, x, index, *updates):
    spec, arrays = encode_index(index)
    sample(name, x, *updates, *arrays, spec=spec)


_x = normal((4, 5, 3))
_index_sample("getitem", _x, (slice(1, None, 2), None, Ellipsis, -1))
_index_sample("getitem", _x, (np.array([0, -1, 2]), slice(None), np.array([1, 0, 2])))
_index_sample("getitem", _x, (1, np.array([[0, 4], [3, 3]])))
_index_sample("scatter_add", np.zeros((5, 3)), np.array([0, 2, 0, -1]), normal((4, 3)))
_index_sample("scatter_add", np.zeros((5, 3)), (slice(1, 3), 1), normal((2,)))
_index_sample("index_update", normal((5, 3)), (np.array([4, 1]), slice(None)),
              normal((2, 3), name="u"))
_index_sample("index_update", normal((5, 3), F32), (slice(None, None, 2), 2), np.array(7.0, F32))
sample("dynamic_slice", normal((5, 6)), np.int64(1), np.int32(4), slice_sizes=(3, 4))
sample("dynamic_slice", normal((5, 6)), -2, 9, slice_sizes=(2, 2))  # clamped
sample("dynamic_update_slice", normal((5, 6)), normal((2, 3), name="u"), np.int64(4), 1)

# ---- fft and linear algebra ------------------------------------------------------------------------
sample("fft", cplx((3, 8)), fft_type="fft", fft_lengths=(8,))
sample("fft", cplx((4, 6), np.complex64), fft_type="ifft", fft_lengths=(4, 6))
sample("fft", normal((2, 8)), fft_type="rfft", fft_lengths=(8,))
sample("fft", normal((2, 7), F32), fft_type="rfft", fft_lengths=(7,))
sample("fft", cplx((2, 5)), fft_type="irfft", fft_lengths=(8,))
sample("cholesky", spd(4, (2,)))
sample("triangular_solve", np.tril(spd(4)), normal((4, 3)), left_side=True, lower=True,
       transpose_a=False, conjugate_a=False)
sample("triangular_solve", np.triu(spd(4)), normal((3, 4)), left_side=False, lower=False,
       transpose_a=True, conjugate_a=False)
sample("solve", spd(4, (2,)) + normal((2, 4, 4)), normal((2, 4, 2), name="b"))
sample("slogdet", normal((3, 4, 4)))
sample("eigh", spd(4, (2,)))
sample("svd", normal((2, 5, 3)))
sample("eig", normal((2, 3, 3)))
sample("qr", normal((2, 5, 3)))


# ---- control flow: one equation each, with sub-graphs -----------------------------------------
def _control_sample(name: str, fn: Callable, *args) -> None:
    """The equation of primitive ``name`` in the staged ``fn``, as a sample."""
    graph = ad.make_graph(fn, *args)
    k = next(k for k, e in enumerate(graph.eqns) if e.prim.name == name)
    eqn = graph.eqns[k]
    prefix = ad.ir.Graph(graph.in_vars, graph.const_vars, graph.consts, graph.eqns[:k],
                         eqn.inputs)
    sample(name, *ad.eval_graph(prefix, *args), **eqn.params)


def _add_control_samples() -> None:
    x = normal((3,))
    _control_sample("cond", lambda x: ad.cond(x[0] > 0, lambda y: y * 2.0, lambda y: -y, x), x)
    _control_sample("while", lambda x: ad.while_loop(lambda c: c[0] < 10.0,
                                                      lambda c: c * 1.5 + 1.0, x), x)
    _control_sample("scan", lambda x: ad.scan(lambda c, r: (c + r, c * r), x[0], x), x)


    @ad.adjoint
    def scaled(x):
        return x * 3.0, lambda g: (g * 3.0,)

    @ad.custom_jvp
    def softplus(x):
        return ad.numpy.log1p(ad.numpy.exp(x))

    @softplus.defjvp
    def _(primals, tangents):
        return softplus(primals[0]), tangents[0] * ad.numpy.exp(-ad.numpy.logaddexp(0, -primals[0]))

    _control_sample("custom_vjp_call", lambda x: scaled(x) + 1.0, x)
    _control_sample("custom_jvp_call", lambda x: softplus(x) * 2.0, x)


_add_control_samples()


# ---- the checks ----------------------------------------------------------------------------------


def test_every_primitive_has_a_lowering():
    missing = sorted(set(registry) - set(xla.lowering.RULES))
    assert not missing, f"primitives without an XLA lowering: {missing}"


def test_every_primitive_has_a_sample():
    missing = sorted(set(registry) - set(SAMPLES))
    assert not missing, f"primitives without a sample in test_primitives.SAMPLES: {missing}"


def _tolerance(values) -> dict:
    dtypes = {np.result_type(v) for v in values}
    if any(d in (np.float32, np.complex64) for d in dtypes):
        return dict(rtol=1e-5, atol=1e-5)
    return dict(rtol=1e-12, atol=1e-12)


def _canonical(name: str, out: tuple) -> tuple:
    """Decompositions are unique up to signs of vectors: compare sign-free invariants."""
    if name == "eigh":
        w, v = out
        return w, np.abs(v)
    if name == "svd":
        u, s, vh = out
        return np.abs(u), s, np.abs(vh)
    if name == "qr":
        q, r = out
        return np.abs(q), np.abs(r)
    if name == "eig":  # eigenvalues in no particular order: sort them and their vectors
        w, v = out
        order = np.lexsort((w.imag, w.real), axis=-1)
        return (np.take_along_axis(w, order, -1),
                np.abs(np.take_along_axis(v, order[..., None, :], -1)))
    return out


CASES = [(name, k) for name in sorted(SAMPLES) for k in range(len(SAMPLES[name]))]


@pytest.mark.parametrize("name,k", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_compiled_matches_eager(name, k):
    prim = registry[name]
    args, params = SAMPLES[name][k]
    eager = prim.bind(*args, **params)
    compiled = xla.jit(lambda *a: prim.bind(*a, **params), autograph=False)(*args)
    eager = _canonical(name, tuple(eager) if prim.multiple_results else (eager,))
    compiled = _canonical(name, tuple(map(np.asarray, compiled)) if prim.multiple_results
                          else (np.asarray(compiled),))
    for e, c in zip(eager, compiled):
        e = np.asarray(e)
        assert c.dtype == e.dtype, f"{name}: compiled dtype {c.dtype}, eager {e.dtype}"
        assert c.shape == e.shape
        if e.dtype.kind in "biu":
            np.testing.assert_array_equal(c, e)
        else:
            np.testing.assert_allclose(c, e, **_tolerance(args + (e,)), equal_nan=True)
