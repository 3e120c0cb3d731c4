"""The table of gradient-check cases behind the systematic suite.

A case names the public function it exercises (``"numpy.sin"``,
``"numpy.linalg.eigh"``, ``"scipy.special.erf"``, relative to ``wengert.ad``;
``"indexing.*"`` and ``"primitive.*"`` cases exercise primitives with no
namespace function of their own) and a function ``fn(op, xp, *args)`` that
calls ``op``, the function of that name, with ``xp`` the array namespace
(`wengert.ad.numpy`, or `jax.numpy` when the case is replayed in JAX).
Arguments are float64/complex128 arrays or scalars; constants (indices,
axes, shapes) live in ``fn``. Inputs stay away from kinks and branch cuts,
so central finite differences are a fair judge.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    fn: Callable
    args: tuple
    label: str
    order2: bool = False
    jax: bool = True  # replay in JAX (False when JAX has no equivalent or different semantics)
    rtol: float = 1e-6
    gpu_skip: str = ""  # why the CuPy run cannot match NumPy's, if it cannot

    @property
    def id(self) -> str:
        return f"{self.name}[{self.label}]"


CASES: list[Case] = []
_rng = np.random.default_rng(20261128)


def _call(op, xp, *args):
    return op(*args)


def kw(**params: Any) -> Callable:
    """``fn`` calling ``op(*args, **params)``."""
    return lambda op, xp, *args: op(*args, **params)


def add(name: str, *args: Any, fn: Callable = _call, label: str | None = None,
        order2: bool = False, jax: bool = True, rtol: float = 1e-6, gpu_skip: str = "") -> None:
    if label is None:
        label = ",".join("x".join(map(str, np.shape(a))) or "scalar" for a in args)
    taken = {c.id for c in CASES}
    unique, k = label, 1
    while f"{name}[{unique}]" in taken:
        k += 1
        unique = f"{label}#{k}"
    CASES.append(Case(name, fn, tuple(args), unique, order2, jax, rtol, gpu_skip))


# ---- inputs ------------------------------------------------------------------------------
def sample(domain: str, *shape: int) -> Any:
    """Random values in a domain where the functions under test are smooth."""
    size = shape or ()
    u = _rng.uniform(0.0, 1.0, size)
    s = np.where(_rng.uniform(0.0, 1.0, size) < 0.5, -1.0, 1.0)
    if domain == "any":  # |x| in [0.2, 1.5]: away from the kinks at 0
        x = s * (0.2 + 1.3 * u)
    elif domain == "pos":
        x = 0.3 + 1.7 * u
    elif domain == "unit":
        x = s * (0.1 + 0.7 * u)
    elif domain == "gt1":
        x = 1.2 + 1.8 * u
    elif domain == "prob":
        x = 0.1 + 0.8 * u
    elif domain == "frac":  # away from integers and half-integers
        x = np.floor(s * 3 * u) + 0.1 + 0.3 * _rng.uniform(0.0, 1.0, size)
    elif domain in ("c", "cpos", "cunit"):
        re = sample("pos" if domain == "cpos" else "unit" if domain == "cunit" else "any",
                    *shape)
        im = sample("unit" if domain == "cunit" else "any", *shape)
        return np.asarray(re + 1j * im) if shape else complex(re + 1j * im)
    else:
        raise ValueError(domain)
    return np.asarray(x) if shape else np.float64(x)


def spd(n: int, *batch: int, cplx: bool = False) -> np.ndarray:
    """A well-conditioned Hermitian positive definite matrix (or stack of them)."""
    a = sample("any", *batch, n, n)
    if cplx:
        a = a + 1j * sample("any", *batch, n, n)
    return a @ np.conj(np.swapaxes(a, -1, -2)) + n * np.eye(n)


def well_conditioned(n: int, *batch: int, cplx: bool = False) -> np.ndarray:
    a = sample("any", *batch, n, n) * 0.3 + np.eye(n) * 2
    return a + 1j * sample("any", *batch, n, n) * 0.3 if cplx else a


# ---- elementwise: unary ------------------------------------------------------------------
# name: (real domain, complex domain or None, in the second-order subset)
UNARY = {
    "negative": ("any", "c", False), "positive": ("any", "c", False),
    "sin": ("any", "c", True), "cos": ("any", "c", False), "tan": ("unit", "cunit", False),
    "arcsin": ("unit", "cunit", False), "arccos": ("unit", "cunit", False),
    "arctan": ("any", "cunit", False), "sinh": ("any", "c", False), "cosh": ("any", "c", False),
    "tanh": ("any", "cunit", True), "arcsinh": ("any", "cunit", False),
    "arccosh": ("gt1", None, False), "arctanh": ("unit", "cunit", False),
    "asin": ("unit", None, False), "acos": ("unit", None, False), "atan": ("any", None, False),
    "asinh": ("any", None, False), "acosh": ("gt1", None, False), "atanh": ("unit", None, False),
    "exp": ("any", "c", True), "expm1": ("any", "c", False), "exp2": ("any", None, False),
    "log": ("pos", "cpos", True), "log1p": ("pos", None, False), "log2": ("pos", None, False),
    "log10": ("pos", None, False), "sqrt": ("pos", "cpos", True), "cbrt": ("any", None, False),
    "square": ("any", "c", False), "reciprocal": ("any", "c", True),
    "abs": ("any", "c", True), "absolute": ("any", "c", False), "fabs": ("any", None, False),
    "sign": ("any", None, False), "floor": ("frac", None, False), "ceil": ("frac", None, False),
    "rint": ("frac", None, False), "round": ("frac", None, False),
    "around": ("frac", None, False), "trunc": ("frac", None, False), "fix": ("frac", None, False),
    "conj": (None, "c", False), "conjugate": (None, "c", False), "real": (None, "c", True),
    "imag": (None, "c", True), "angle": (None, "c", False),
    "deg2rad": ("any", None, False), "rad2deg": ("any", None, False),
    "radians": ("any", None, False), "degrees": ("any", None, False),
    "sinc": ("any", None, False), "modf": ("frac", None, False),
}
for _name, (_real, _cplx, _o2) in UNARY.items():
    if _real is not None:
        add(f"numpy.{_name}", sample(_real))
        add(f"numpy.{_name}", sample(_real, 2, 3), order2=_o2)
    if _cplx is not None:
        add(f"numpy.{_name}", sample(_cplx, 3), label="complex", order2=_o2 and _real is None)
add("numpy.round", sample("frac", 4) * 10, fn=kw(decimals=1), label="decimals")

# ---- elementwise: binary, over broadcasting pairs ------------------------------------------
PAIRS = [((), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((2, 3), (2, 3))]
# name: (domain of x, domain of y, complex domains or None, second order)
BINARY = {
    "add": ("any", "any", ("c", "c"), False), "subtract": ("any", "any", ("c", "c"), False),
    "multiply": ("any", "any", ("c", "c"), True), "divide": ("any", "any", ("c", "c"), True),
    "true_divide": ("any", "any", None, False),
    "power": ("pos", "any", ("cpos", "c"), True), "pow": ("pos", "any", None, False),
    "float_power": ("pos", "any", None, False),
    "maximum": ("any", "any", None, True), "minimum": ("any", "any", None, False),
    "fmax": ("any", "any", None, False), "fmin": ("any", "any", None, False),
    "arctan2": ("any", "any", None, True), "atan2": ("any", "any", None, False),
    "hypot": ("any", "any", None, False), "logaddexp": ("any", "any", None, True),
    "logaddexp2": ("any", "any", None, False), "mod": ("frac", "gt1", None, False),
    "remainder": ("frac", "gt1", None, False), "fmod": ("frac", "gt1", None, False),
    "floor_divide": ("frac", "gt1", None, False), "divmod": ("frac", "gt1", None, False),
    "copysign": ("any", "any", None, False), "heaviside": ("any", "any", None, False),
}
for _name, (_dx, _dy, _cplx, _o2) in BINARY.items():
    for _k, (_sx, _sy) in enumerate(PAIRS):
        add(f"numpy.{_name}", sample(_dx, *_sx), sample(_dy, *_sy), order2=_o2 and _k == 2)
    if _cplx is not None:
        add(f"numpy.{_name}", sample(_cplx[0], 2, 3), sample(_cplx[1], 3), label="complex",
            order2=_o2)
add("numpy.ldexp", sample("any", 2, 3), fn=lambda op, xp, x: op(x, -3))
add("numpy.where", sample("any", 2, 3), sample("any", 3),
    fn=lambda op, xp, x, y: op(x > y, x, y), order2=True)
add("numpy.where", sample("c", 3), label="complex",
    fn=lambda op, xp, z: op(z.real > 0, z, 0.5 * z))
add("numpy.clip", sample("any", 2, 3), fn=lambda op, xp, x: op(x, -0.9, 0.7))
add("numpy.clip", sample("any", 2, 3), sample("any", 3) - 1.6, sample("any", 2, 1) + 1.6,
    label="traced bounds")

# ---- reductions: axis and keepdims variants, with a size-1 axis ------------------------------
AXES = [dict(), dict(axis=0), dict(axis=-1, keepdims=True), dict(axis=(0, 2))]


def _axes_label(params: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in params.items()) or "all"


REDUCTIONS = {"sum": True, "mean": False, "prod": True, "max": True, "min": False,
              "amax": False, "amin": False, "var": True, "std": False, "ptp": False,
              "nansum": False, "nanmean": False, "logsumexp": True, "median": False}
for _name, _o2 in REDUCTIONS.items():
    for _k, _params in enumerate(AXES):
        add(f"numpy.{_name}", sample("any", 2, 1, 3), fn=kw(**_params),
            label=_axes_label(_params), order2=_o2 and _k == 3, jax=_name != "logsumexp")
for _name in ("sum", "mean", "prod", "var", "std"):
    add(f"numpy.{_name}", sample("c", 2, 3), fn=kw(axis=1), label="complex")
add("numpy.var", sample("any", 3, 4), fn=kw(axis=1, ddof=1), label="ddof")
add("numpy.std", sample("any", 3, 4), fn=kw(axis=0, ddof=1, keepdims=True), label="ddof")
# First order only: cumprod's own rules (inside prod's) assume no exact zeros.
add("numpy.prod", np.array([[0.0, 1.5, -2.0], [0.7, 0.0, 0.0]]), fn=kw(axis=1), label="zeros")
add("numpy.average", sample("any", 2, 3), fn=kw(axis=1))
add("numpy.average", sample("any", 2, 3), sample("pos", 3), fn=lambda op, xp, x, w:
    op(x, axis=1, weights=w), label="weights")
add("numpy.average", sample("any", 2, 3), sample("pos", 2), fn=lambda op, xp, x, w:
    op(x, axis=0, weights=w), label="weights,axis=0")
add("numpy.nansum", np.array([1.0, np.nan, -0.5]), label="nan")
add("numpy.nanmean", np.array([[1.0, np.nan], [-0.5, 2.0]]), fn=kw(axis=0), label="nan")
for _name, _q in (("quantile", 0.3), ("quantile", np.array([0.2, 0.75])), ("percentile", 40)):
    add(f"numpy.{_name}", sample("any", 3, 5), fn=kw(q=_q, axis=1), label=f"q={_q}")
add("numpy.quantile", sample("any", 2, 5), fn=kw(q=0.6, axis=None, keepdims=True),
    label="keepdims")
for _name, _o2 in (("cumsum", True), ("cumprod", True), ("sort", True)):
    for _params in (dict(axis=None), dict(axis=0), dict(axis=-1)):
        add(f"numpy.{_name}", sample("any", 2, 3), fn=kw(**_params),
            label=_axes_label(_params), order2=_o2 and _params == dict(axis=-1))
add("numpy.cumsum", sample("c", 4), label="complex")
add("numpy.cumprod", sample("c", 4), label="complex")
add("numpy.take_along_axis", sample("any", 3, 4),
    fn=lambda op, xp, x: op(x, np.array([[0, 3], [1, 1], [2, 0]]), axis=1))

# ---- products ---------------------------------------------------------------------------------
for _sa, _sb in (((3,), (3,)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)), ((), (3,))):
    add("numpy.dot", sample("any", *_sa), sample("any", *_sb), order2=_sa == (2, 3))
for _sa, _sb in (((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 1, 2, 3), (3, 3, 2)),
                 ((3,), (2, 3, 4))):
    add("numpy.matmul", sample("any", *_sa), sample("any", *_sb), order2=len(_sa) == 4)
add("numpy.matmul", sample("c", 2, 3), sample("c", 3, 2), label="complex", order2=True)
add("numpy.tensordot", sample("any", 2, 3, 4), sample("any", 3, 4, 2))
add("numpy.tensordot", sample("any", 2, 3), sample("any", 3, 2), fn=kw(axes=1), label="axes=1")
add("numpy.tensordot", sample("any", 2, 3, 4), sample("any", 3, 2),
    fn=kw(axes=([1, 0], [0, 1])), label="axes=pairs")
for _spec, _shapes in (("ij,jk->ik", ((2, 3), (3, 4))), ("ii->", ((3, 3),)),
                       ("ii->i", ((3, 3),)), ("bij,bjk->bik", ((2, 2, 3), (2, 3, 2))),
                       ("...ij,...jk->...ik", ((2, 2, 3), (3, 2))), ("i,i", ((3,), (3,))),
                       ("ij->ji", ((2, 3),)), ("ijk->", ((2, 3, 2),)), ("i,j->ij", ((2,), (3,))),
                       ("...i,...i->...", ((2, 3), (2, 3))),
                       ("ij,ij,i->j", ((2, 3), (2, 3), (2,)))):
    add("numpy.einsum", *(sample("any", *s) for s in _shapes),
        fn=lambda op, xp, *xs, _spec=_spec: op(_spec, *xs), label=_spec,
        order2=_spec == "bij,bjk->bik")
add("numpy.einsum", sample("c", 2, 3), sample("c", 3),
    fn=lambda op, xp, a, b: op("ij,j->i", a, b), label="complex")
add("numpy.outer", sample("any", 3), sample("any", 2))
add("numpy.inner", sample("any", 2, 3), sample("any", 4, 3))
add("numpy.kron", sample("any", 2, 2), sample("any", 2, 3))
add("numpy.vdot", sample("c", 2, 2), sample("c", 4), label="complex")
add("numpy.vecdot", sample("c", 2, 3), sample("c", 3), label="complex")
add("numpy.matvec", sample("any", 2, 4, 3), sample("any", 3))
add("numpy.vecmat", sample("c", 4), sample("c", 2, 4, 3), label="complex")

# ---- shapes, joining, splitting, padding --------------------------------------------------------
X23, X231 = sample("any", 2, 3), sample("any", 2, 3, 1)
SHAPE_CASES = [
    ("reshape", lambda op, xp, x: op(x, (3, -1)), (X23,)), ("ravel", _call, (X23,)),
    ("transpose", _call, (sample("any", 2, 3, 4),)),
    ("transpose", kw(axes=(1, 2, 0)), (sample("any", 2, 3, 4),)),
    ("swapaxes", kw(axis1=0, axis2=2), (sample("any", 2, 3, 4),)),
    ("moveaxis", kw(source=0, destination=-1), (sample("any", 2, 3, 4),)),
    ("expand_dims", kw(axis=1), (X23,)), ("squeeze", _call, (X231,)),
    ("squeeze", kw(axis=2), (X231,)), ("broadcast_to", kw(shape=(4, 2, 3)), (X231[..., 0],)),
    ("broadcast_to", kw(shape=(2, 3, 5)), (X231,)),
    ("broadcast_arrays", _call, (sample("any", 3), sample("any", 2, 1))),
    ("atleast_1d", _call, (sample("any"),)), ("atleast_2d", _call, (sample("any", 3),)),
    ("concatenate", lambda op, xp, a, b: op([a, b], axis=1), (X23, sample("any", 2, 2))),
    ("concatenate", lambda op, xp, a, b: op([a, b], axis=None), (X23, sample("any", 4))),
    ("stack", lambda op, xp, a, b: op([a, b], axis=1), (X23, sample("any", 2, 3))),
    ("hstack", lambda op, xp, a, b: op([a, b]), (sample("any", 3), sample("any", 2))),
    ("vstack", lambda op, xp, a, b: op([a, b]), (sample("any", 3), X23)),
    ("split", kw(indices_or_sections=3, axis=1), (X23,)),
    ("split", kw(indices_or_sections=[1, 2]), (sample("any", 4, 2),)),
    ("split", kw(indices_or_sections=[2, 1], axis=1), (X23,)),  # overlapping pieces
    ("unstack", kw(axis=1), (X23,)),
    ("tile", kw(reps=(2, 1, 2)), (X23,)), ("repeat", kw(repeats=2, axis=1), (X23,)),
    ("repeat", lambda op, xp, x: op(x, np.array([1, 0, 2]), axis=1), (X23,)),
    ("take", lambda op, xp, x: op(x, np.array([4, 0, 4])), (X23,)),
    ("take", lambda op, xp, x: op(x, np.array([[2, 0]]), axis=1), (X23,)),
    ("pad", kw(pad_width=((1, 0), (2, 1))), (X23,)),
    ("pad", kw(pad_width=1, constant_values=0.5), (sample("any", 3),)),
    ("flip", _call, (X23,)), ("flip", kw(axis=1), (X23,)), ("fliplr", _call, (X23,)),
    ("flipud", _call, (X23,)), ("roll", kw(shift=2), (X23,)),
    ("roll", kw(shift=(1, -1), axis=(0, 1)), (X23,)),
    ("diagonal", _call, (sample("any", 3, 4),)),
    ("diagonal", kw(offset=1, axis1=1, axis2=2), (sample("any", 2, 3, 4),)),
    ("diag", _call, (sample("any", 3),)), ("diag", kw(k=-1), (sample("any", 3, 4),)),
    ("trace", _call, (sample("any", 3, 3),)), ("trace", kw(offset=1), (sample("any", 3, 4),)),
    ("tril", _call, (sample("any", 3, 4),)), ("triu", kw(k=1), (sample("any", 2, 3, 3),)),
    ("diff", _call, (sample("any", 5),)), ("diff", kw(n=2, axis=0), (sample("any", 4, 2),)),
    ("array", lambda op, xp, x: op([x, 2 * x, x * x]), (sample("any"),)),
    ("asarray", _call, (X23,)), ("astype", lambda op, xp, x: op(x, np.complex128), (X23,)),
    ("full", lambda op, xp, v: op((2, 3), v), (sample("any"),)),
    ("full_like", lambda op, xp, x, v: op(x, v) * x, (X23, sample("any"))),
    ("linspace", lambda op, xp, a, b: op(a, b, 5), (sample("any"), sample("any"))),
    ("copy", _call, (X23,)), ("append", _call, (X23, sample("any", 2))),
    ("append", kw(axis=0), (X23, sample("any", 1, 3))),
    ("column_stack", lambda op, xp, a, b: op([a, b]), (sample("any", 2), X23[:, :2])),
    ("atleast_3d", _call, (sample("any", 3),)), ("atleast_3d", _call, (X23,)),
    ("array_split", kw(indices_or_sections=2, axis=1), (X23,)),
    ("meshgrid", _call, (sample("any", 3), sample("any", 2))),
    ("meshgrid", kw(indexing="ij", sparse=True), (sample("any", 3), sample("any", 2))),
    ("cross", _call, (sample("any", 2, 3), sample("any", 3))),
    ("cross", kw(axis=0), (sample("any", 3, 2), sample("any", 3, 2))),
    ("trapezoid", _call, (X23,)),
    ("trapezoid", lambda op, xp, y, x: op(y, x, axis=0), (sample("any", 4, 2),
                                                           np.cumsum(sample("pos", 4)))),
    ("select", lambda op, xp, a, b: op([a > 0.5, b < 0], [a * b, a - b], 0.25),
     (X23, sample("any", 3))),
    ("nan_to_num", _call, (np.array([[0.5, np.nan, np.inf], [-np.inf, 1.2, -0.3]]),)),
    ("rot90", _call, (X23,)), ("rot90", kw(k=3, axes=(2, 0)), (sample("any", 2, 3, 4),)),
    ("rollaxis", kw(axis=2, start=0), (sample("any", 2, 3, 4),)),
    ("vsplit", kw(indices_or_sections=2), (sample("any", 4, 3),)),
    ("hsplit", kw(indices_or_sections=[1]), (X23,)),
    ("dsplit", kw(indices_or_sections=2), (sample("any", 2, 1, 4),)),
    ("row_stack", lambda op, xp, a, b: op([a, b]), (sample("any", 3), X23)),
    ("dstack", lambda op, xp, a, b: op([a, b]), (X23, X23)),
    ("gradient", _call, (sample("any", 4, 3),)),
    ("gradient", kw(axis=0, edge_order=2), (sample("any", 4, 3),)),
    ("gradient", lambda op, xp, f, x: op(f, x, axis=1), (sample("any", 2, 4),
                                                          np.cumsum(sample("pos", 4)))),
    ("gradient", lambda op, xp, f, x: op(f, 0.7, x, edge_order=2),
     (sample("any", 3, 4), np.cumsum(sample("pos", 4)))),
    ("r_", lambda op, xp, a, b: op[a, 0.5, b], (sample("any", 3), sample("any", 2))),
    ("r_", lambda op, xp, a, b: op["0,2", a, b], (sample("any", 3), sample("any", 3))),
    ("c_", lambda op, xp, a, b: op[a, b], (sample("any", 3), sample("any", 3, 2))),
    ("concat", lambda op, xp, a, b: op([a, b], axis=1), (X23, sample("any", 2, 2))),
    ("permute_dims", kw(axes=(2, 0, 1)), (sample("any", 2, 3, 4),)),
    ("matrix_transpose", _call, (sample("any", 2, 3, 4),)),
]
for _name, _fn, _args in SHAPE_CASES:
    add(f"numpy.{_name}", *_args, fn=_fn, order2=_name in ("pad", "concatenate", "gradient"),
        jax=_name not in ("row_stack", "gradient"))  # jax: row_stack removed, gradient
# rejects traced spacings; partition: JAX orders inside the parts differently.
add("numpy.partition", sample("any", 2, 5), fn=kw(kth=2), jax=False)
add("numpy.real_if_close", sample("any", 2, 3), jax=False)  # (complex steps of a real-valued
# complex input would change the result's dtype: test_numpy_functions checks that path)
add("numpy.real_if_close", sample("c", 3), label="complex", jax=False)

# ---- indexing: reads and in-place writes on traced arrays ----------------------------------------
_IDX = np.array([2, 0, 2])
_MASK = np.array([[True, False, True], [False, True, True]])
READS = {
    "int": lambda x: x[1], "negative-int-and-step": lambda x: x[-1, ::-2],
    "newaxis-ellipsis": lambda x: x[None, ..., 1], "slices": lambda x: x[:, 1:],
    "int-array": lambda x: x[:, _IDX], "pairs": lambda x: x[np.array([0, 1, 1]), _IDX],
    "mask": lambda x: x[_MASK], "mixed": lambda x: x[1:, _IDX], "2d-index": lambda x: x[
        np.array([[1, 0], [0, 0]])],
}
for _label, _read in READS.items():
    add("indexing.getitem", sample("any", 2, 3), fn=lambda op, xp, x, _r=_read: _r(x) * 1.5,
        label=_label, order2=_label == "pairs")


def _set_int(x, v):
    x = x * 1.0
    x[1] = v[:3]
    return x * x


def _set_mask(x, v):
    x = x + 0.0
    x[_MASK] = v[:4]
    return x


def _add_repeated(x, v):
    x = x * 2.0
    x[:, _IDX] += v[:3]  # NumPy semantics: a repeated index receives the update once
    return x * v[0]


def _set_slice_then_read(x, v):
    y = x * 1.0
    y[0, 1:] = v[:2] * y[1, :2]
    return y.sum(axis=0) * y[0, 2]


WRITES = {"int": _set_int, "mask": _set_mask, "repeated-index-add": _add_repeated,
          "slice-then-read": _set_slice_then_read}
for _label, _write in WRITES.items():
    add("indexing.setitem", sample("any", 2, 3), sample("any", 4),
        fn=lambda op, xp, x, v, _w=_write: _w(x, v), label=_label, jax=False,
        order2=_label == "slice-then-read", gpu_skip="CuPy assigns repeated indices in no "
        "particular order" if _label == "repeated-index-add" else "")

# ---- numpy.linalg --------------------------------------------------------------------------------


def _sym(xp, a):
    """Make an input Hermitian in-graph, so that JAX (which symmetrizes) and we agree."""
    return (a + xp.conj(xp.swapaxes(a, -1, -2))) / 2


def _eigh_invariant(op, xp, a, **params):
    w, v = op(_sym(xp, a), **params)
    return w, (v * xp.sin(w)[..., None, :]) @ xp.conj(xp.swapaxes(v, -1, -2))


def _svd_invariant(op, xp, a):
    u, s, vh = op(a, full_matrices=False)
    return s, (u * xp.cos(s)[..., None, :]) @ vh


for _cplx in (False, True):
    _l = "complex" if _cplx else "real"
    add("numpy.linalg.solve", well_conditioned(3, cplx=_cplx), sample("any", 3, 2), label=_l,
        order2=True)
    add("numpy.linalg.inv", well_conditioned(3, 2, cplx=_cplx), label=_l + ",batched",
        order2=not _cplx)
    add("numpy.linalg.det", well_conditioned(3, cplx=_cplx), label=_l, order2=True)
    add("numpy.linalg.slogdet", well_conditioned(3, 2, cplx=_cplx), label=_l + ",batched",
        order2=_cplx)
    add("numpy.linalg.cholesky", spd(3, cplx=_cplx), fn=lambda op, xp, a: op(_sym(xp, a)),
        label=_l, order2=True, rtol=1e-5)
    add("numpy.linalg.eigh", spd(3, cplx=_cplx), fn=_eigh_invariant, label=_l, order2=True,
        rtol=1e-5)
    add("numpy.linalg.svd", sample("any", 4, 3) + (1j * sample("any", 4, 3) if _cplx else 0),
        fn=_svd_invariant, label=_l + ",tall", order2=True, rtol=1e-5)
add("numpy.linalg.solve", well_conditioned(3, 2), sample("any", 3), label="vector,batched")
add("numpy.linalg.solve", well_conditioned(3), sample("any", 2, 3, 1), label="broadcast")
add("numpy.linalg.det", well_conditioned(2, 3), label="batched")
add("numpy.linalg.cholesky", spd(3, 2), fn=lambda op, xp, a: op(_sym(xp, a), upper=True),
    label="upper,batched")
add("numpy.linalg.cholesky", spd(3), label="lower-triangle-only", jax=False)
add("numpy.linalg.eigh", spd(3, 2), fn=lambda op, xp, a: _eigh_invariant(op, xp, a, UPLO="U"),
    label="upper,batched")
_SIGNS = "cuSOLVER and LAPACK may choose opposite signs for the same vectors"
add("numpy.linalg.eigh", sample("any", 3, 3), fn=lambda op, xp, a: op(a), label="raw",
    jax=False, gpu_skip=_SIGNS)  # real eigenvectors are unique up to sign: FD can judge them
add("numpy.linalg.eigvalsh", spd(4, cplx=True), fn=lambda op, xp, a: op(_sym(xp, a)))
add("numpy.linalg.svd", sample("any", 2, 3, 5), fn=_svd_invariant, label="wide,batched")
add("numpy.linalg.svd", sample("any", 3, 3), label="square,raw", jax=False, rtol=1e-5,
    gpu_skip=_SIGNS)
add("numpy.linalg.svd", sample("any", 3, 2), fn=kw(compute_uv=False), label="values")
add("numpy.linalg.svdvals", sample("any", 2, 4))
for _ord in (None, 1, 2, np.inf, -np.inf, 3, 0.5):
    add("numpy.linalg.norm", sample("any", 4), fn=kw(ord=_ord), label=f"vector,ord={_ord}",
        order2=_ord is None)
for _ord in (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
    add("numpy.linalg.norm", sample("any", 3, 4), fn=kw(ord=_ord), label=f"matrix,ord={_ord}")
add("numpy.linalg.norm", sample("c", 2, 3), label="complex")
add("numpy.linalg.norm", sample("any", 2, 3, 4), fn=kw(axis=1, keepdims=True),
    label="axis,keepdims")
add("numpy.linalg.norm", sample("any", 2, 3, 4), fn=kw(ord="nuc", axis=(2, 0), keepdims=True),
    label="matrix-axes,keepdims")
add("numpy.linalg.norm", sample("any", 2, 3, 4), label="flattened")
add("numpy.linalg.vector_norm", sample("any", 2, 3, 4), fn=kw(axis=(0, 2), ord=3))
add("numpy.linalg.matrix_norm", sample("any", 2, 3, 4), fn=kw(ord=1, keepdims=True))
add("numpy.linalg.pinv", sample("any", 4, 3))
# eig: LAPACK's gauge (unit norm, largest component real) is what the derivative keeps,
# so finite differences of the raw eigenvectors can judge it (JAX fixes no gauge).
add("numpy.linalg.eig", well_conditioned(3), label="real", jax=False, order2=True, rtol=1e-5)
add("numpy.linalg.eig", sample("any", 3, 3), label="real,complex pairs", jax=False, rtol=1e-5)
add("numpy.linalg.eig", well_conditioned(3, 2, cplx=True), label="complex,batched", jax=False,
    rtol=1e-5)
add("numpy.linalg.eigvals", sample("any", 4, 4), jax=False)
for _shape, _cplx in (((4, 3), False), ((3, 3), True), ((2, 5, 2), False)):
    add("numpy.linalg.qr", sample("any", *_shape) + (1j * sample("any", *_shape) if _cplx else 0),
        label="x".join(map(str, _shape)) + (",complex" if _cplx else ""),
        order2=_shape == (4, 3), rtol=1e-5)
add("numpy.linalg.qr", sample("any", 4, 3), fn=kw(mode="r"), label="r")
add("numpy.linalg.lstsq", sample("any", 5, 3), sample("any", 5, 2),
    fn=lambda op, xp, a, b: op(a, b)[:2], label="overdetermined", jax=False)
add("numpy.linalg.lstsq", sample("any", 3, 3), sample("any", 3), label="square",
    fn=lambda op, xp, a, b: op(a, b)[0])
add("numpy.linalg.cond", well_conditioned(3))
add("numpy.linalg.cond", well_conditioned(3), fn=kw(p="fro"), label="fro")
for _n in (3, 0, -2):
    add("numpy.linalg.matrix_power", well_conditioned(2), fn=kw(n=_n), label=f"n={_n}")
add("numpy.linalg.multi_dot", sample("any", 3), sample("any", 3, 2), sample("any", 2, 4),
    fn=lambda op, xp, *xs: op(list(xs)))
add("numpy.linalg.matrix_transpose", sample("any", 2, 3, 4))
add("numpy.linalg.diagonal", sample("any", 2, 3, 3), fn=kw(offset=-1))
add("numpy.linalg.trace", sample("any", 2, 3, 3))
add("numpy.linalg.matmul", sample("any", 2, 3), sample("any", 3, 2))
add("numpy.linalg.outer", sample("any", 2), sample("any", 3))
add("numpy.linalg.tensordot", sample("any", 2, 3), sample("any", 3, 2), fn=kw(axes=1))
add("numpy.linalg.vecdot", sample("any", 2, 3), sample("any", 2, 3))

# ---- numpy.fft -----------------------------------------------------------------------------------
for _name, _domain in (("fft", "c"), ("ifft", "c"), ("rfft", "any")):
    add(f"numpy.fft.{_name}", sample(_domain, 2, 6), order2=True)
    add(f"numpy.fft.{_name}", sample(_domain, 5, 2), fn=kw(n=7, axis=0, norm="ortho"),
        label="pad,axis=0,ortho")
    add(f"numpy.fft.{_name}", sample(_domain, 2, 6), fn=kw(n=4, norm="forward"),
        label="crop,forward")
add("numpy.fft.fft", sample("any", 5), label="real input")
add("numpy.fft.irfft", sample("c", 2, 4), order2=True)
add("numpy.fft.irfft", sample("c", 4), fn=kw(n=7), label="odd")
add("numpy.fft.irfft", sample("c", 3, 2), fn=kw(n=6, axis=0, norm="ortho"), label="axis=0,ortho")
for _name, _domain in (("fft2", "c"), ("ifft2", "c"), ("rfft2", "any"), ("irfft2", "c")):
    add(f"numpy.fft.{_name}", sample(_domain, 2, 3, 4))
for _name, _domain in (("fftn", "c"), ("ifftn", "c"), ("rfftn", "any"), ("irfftn", "c")):
    add(f"numpy.fft.{_name}", sample(_domain, 3, 2, 4), fn=kw(axes=(2, 0)), label="axes=(2,0)",
        order2=_name == "rfftn")
    add(f"numpy.fft.{_name}", sample(_domain, 3, 4), fn=kw(s=(4, 6)), label="s=(4,6)")
add("numpy.fft.fftshift", sample("any", 3, 4))
add("numpy.fft.ifftshift", sample("any", 5), fn=kw(axes=0))

# ---- scipy.special -------------------------------------------------------------------------------
for _name, _domain, _o2 in (("erf", "any", True), ("erfc", "any", False), ("erfinv", "unit", True),
                            ("gammaln", "pos", True), ("digamma", "pos", True),
                            ("psi", "pos", False), ("expit", "any", True),
                            ("logit", "prob", True)):
    add(f"scipy.special.{_name}", sample(_domain, 2, 3), order2=_o2)
    add(f"scipy.special.{_name}", sample(_domain))
add("scipy.special.erf", sample("cunit", 3), label="complex", jax=False,
    gpu_skip="cupyx.scipy.special.erf has no complex loop")
for _n in (1, 2):
    add("scipy.special.polygamma", sample("pos", 3), fn=lambda op, xp, x, _n=_n: op(_n, x),
        label=f"n={_n}", order2=_n == 1)
add("scipy.special.xlogy", sample("pos", 2, 3), sample("pos", 3), order2=True)
add("scipy.special.xlogy", np.array([0.0, 0.5]), sample("pos", 2), label="x=0")
for _params in AXES:
    add("scipy.special.logsumexp", sample("any", 2, 1, 3), fn=kw(**_params),
        label=_axes_label(_params))

add("scipy.special.ndtr", sample("any", 2, 3), order2=True)
add("scipy.special.stdtr", sample("any", 2, 3), fn=lambda op, xp, t: op(3.5, t), label="df const")

# ---- scipy.stats, scipy.signal, scipy.integrate, scipy.optimize ------------------------------------
_LOC_SCALE = (sample("any", 2, 3), sample("any", 3), sample("pos", 3))
for _fn in ("logpdf", "pdf", "cdf", "logcdf"):
    add(f"scipy.stats.norm.{_fn}", *_LOC_SCALE, order2=_fn in ("logpdf", "cdf"))
for _fn in ("logpdf", "pdf"):
    add(f"scipy.stats.t.{_fn}", sample("any", 2, 3), sample("gt1", 3) + 1, sample("any"),
        sample("pos"), order2=_fn == "logpdf")
add("scipy.stats.t.cdf", *_LOC_SCALE, fn=lambda op, xp, x, loc, scale: op(x, 3.5, loc, scale),
    order2=True, label="df const")


def _mvn(op, xp, x, mean, cov):
    return op(x, mean, _sym(xp, cov))


for _fn in ("logpdf", "pdf"):
    add(f"scipy.stats.multivariate_normal.{_fn}", sample("any", 4, 3), sample("any", 3), spd(3),
        fn=_mvn, order2=_fn == "logpdf", rtol=1e-5)
add("scipy.stats.multivariate_normal.logpdf", sample("any", 3), sample("any", 3), spd(3),
    fn=_mvn, label="one point", rtol=1e-5)
for _name in ("convolve", "correlate"):
    for _mode, _sa, _sb in (("full", (5,), (3,)), ("same", (4, 5), (2, 3)),
                            ("valid", (5, 4), (2, 2)), ("valid", (2,), (4,))):
        add(f"scipy.signal.{_name}", sample("any", *_sa), sample("any", *_sb),
            fn=lambda op, xp, a, b, _m=_mode: op(a, b, mode=_m), label=f"{_mode},{_sa},{_sb}",
            order2=_mode == "same")
    add(f"scipy.signal.{_name}", sample("c", 4), sample("c", 2), label="complex")


def _decay(y, t, k, b):
    import wengert.ad.numpy as wnp

    return -k * y + b * wnp.sin(t) * y[::-1]


# Tight solver tolerances, so that finite differences of the solution can judge it.
add("scipy.integrate.odeint", sample("any", 2), np.array([0.0, 0.4, 1.0]), sample("pos", 2),
    sample("any"), jax=False, rtol=1e-4,
    fn=lambda op, xp, y0, t, k, b: op(_decay, y0, t, (k, b), rtol=1e-11, atol=1e-11))
_CONTRACTION = np.array([[0.3, 0.1, -0.2], [0.05, 0.2, 0.1], [0.0, -0.1, 0.25]])


def _tanh_map(x, p, scale):
    import wengert.ad.numpy as wnp

    return wnp.tanh(_CONTRACTION @ x * scale + p)


add("scipy.optimize.fixed_point", sample("any", 3), sample("unit"), jax=False, order2=True,
    fn=lambda op, xp, p, s: op(_tanh_map, xp.zeros(3), (p, s)))

# ---- primitives with no namespace function of their own ------------------------------------------
_L = np.linalg.cholesky(spd(3))
for _left in (True, False):
    for _transpose in (False, True):
        for _conjugate in (False, True):
            for _lower in (True, False):
                _params = dict(left_side=_left, lower=_lower, transpose_a=_transpose,
                               conjugate_a=_conjugate)
                _a = (_L if _lower else _L.T) * (1 + 0.5j)
                _b = sample("any", 3, 2) if _left else sample("c", 2, 3)
                add("primitive.triangular_solve", _a, _b, jax=False,
                    fn=lambda op, xp, a, b, _p=_params: op(a, b, **_p),
                    label=",".join(k for k, v in _params.items() if v) or "right,upper",
                    order2=_left and _lower and not _transpose)


# ---- primitives of the layers built on top: wengert.ad.lax and staged programs ---------------
add("lax.conv_general_dilated", sample("any", 1, 4, 5, 2), sample("any", 3, 2, 2, 3),
    fn=lambda op, xp, x, w: op(x, w, (1, 2), "SAME", rhs_dilation=(1, 2),
                               dimension_numbers=("NHWC", "HWIO", "NHWC")), order2=True)
add("lax.conv_general_dilated", sample("c", 1, 5, 4), sample("c", 3, 2, 4), label="complex,groups",
    fn=lambda op, xp, x, w: op(x, w, (2,), [(1, 1)], feature_group_count=2,
                               dimension_numbers=("NWC", "WIO", "NWC")), order2=True)
add("lax.reduce_window_sum", sample("any", 1, 4, 4, 2), jax=False,
    fn=lambda op, xp, x: op(x, (1, 2, 2, 1), (1, 2, 1, 1), "SAME"))
add("lax.reduce_window_max", sample("any", 1, 4, 4, 2), jax=False, order2=True,
    fn=lambda op, xp, x: op(x, (1, 2, 2, 1), (1, 2, 2, 1)))
# ---- scipy.linalg ---------------------------------------------------------------------------------
for _trans in (0, 1, 2):
    add("scipy.linalg.solve_triangular", _L, sample("any", 3), jax=False, order2=_trans == 0,
        fn=lambda op, xp, a, b, _t=_trans: op(a, b, trans=_t, lower=True), label=f"trans={_trans}")
add("scipy.linalg.solve_triangular", _L.T, sample("any", 3, 2), jax=False, label="upper,matrix",
    fn=lambda op, xp, a, b: op(a, b))


def _cho_solve(op, xp, a, b, lower):
    """``cho_solve`` of ``cho_factor(a)``: the case differentiates through both."""
    from wengert.ad.scipy.linalg import cho_factor

    return op(cho_factor(a, lower=lower), b)


for _lower in (True, False):
    add("scipy.linalg.cho_solve", spd(3), sample("any", 3, 2), jax=False, order2=_lower,
        fn=lambda op, xp, a, b, _lo=_lower: _cho_solve(op, xp, a, b, _lo),
        label=f"lower={_lower}")
add("scipy.linalg.lu_factor", well_conditioned(4), jax=False, order2=True,
    fn=lambda op, xp, a: op(a)[0])
add("scipy.linalg.lu_factor", well_conditioned(3, cplx=True), jax=False, label="complex",
    fn=lambda op, xp, a: op(a)[0])


def _lu_solve(op, xp, a, b, trans):
    """``lu_solve`` of ``lu_factor(a)``: the case differentiates through both."""
    from wengert.ad.scipy.linalg import lu_factor

    return op(lu_factor(a), b, trans=trans)


for _trans, _rhs in ((0, sample("any", 4)), (1, sample("any", 4, 2)), (2, sample("any", 4))):
    add("scipy.linalg.lu_solve", well_conditioned(4), _rhs, jax=False, order2=_trans == 0,
        fn=lambda op, xp, a, b, _t=_trans: _lu_solve(op, xp, a, b, _t), label=f"trans={_trans}")
add("scipy.linalg.lu_solve", well_conditioned(3, cplx=True), sample("c", 3), jax=False,
    fn=lambda op, xp, a, b: _lu_solve(op, xp, a, b, 2), label="complex,trans=2")
add("lax.dynamic_slice_in_dim", sample("any", 5, 3), jax=False, order2=True,
    fn=lambda op, xp, x: op(x, np.int64(2), 2, axis=0))
add("lax.dynamic_update_slice_in_dim", sample("any", 5, 3), sample("any", 5, 2), jax=False,
    order2=True, fn=lambda op, xp, x, u: op(x, u, np.int64(1), axis=1))
add("primitive.dynamic_slice", sample("any", 4, 3), jax=False, order2=True,
    fn=lambda op, xp, x: op(x, np.int64(1), np.int64(0), slice_sizes=(2, 2)))
add("primitive.dynamic_update_slice", sample("any", 4, 3), sample("any", 2, 2), jax=False,
    order2=True, fn=lambda op, xp, x, u: op(x, u, np.int64(2), np.int64(1)))


def _staged(fun: Callable, *example: Any) -> Callable:
    """A case function that evaluates the staged graph of ``fun`` (one equation per
    structured control-flow call or custom rule: the primitives only staging binds)."""
    import wengert.ad as ad

    graph = ad.make_graph(fun, *example)
    return lambda op, xp, *args: ad.eval_graph(graph, *args)


def _staged_programs() -> None:
    import wengert.ad as ad
    import wengert.ad.numpy as wnp

    def branch(x):
        return ad.cond(wnp.sum(x) > 0, lambda: wnp.sin(x) * x, lambda: wnp.cos(x) - x)

    def loop(x):
        return ad.while_loop(lambda c: c[1] < 3, lambda c: (wnp.sin(c[0]) + 1.5 * c[0], c[1] + 1),
                             (x, np.int64(0)), max_steps=4)[0]

    def recurrence(x):
        return ad.scan(lambda c, r: (c * r + wnp.sin(c), c * 2), x[0], x[1:])

    @ad.adjoint
    def softplus(x):
        y = wnp.logaddexp(x, 0.0)
        return y, lambda g: (g * wnp.exp(x - y),)

    @ad.custom_jvp
    def sine(x):
        return wnp.sin(x)

    @sine.defjvp
    def _(primals, tangents):
        return wnp.sin(primals[0]), wnp.cos(primals[0]) * tangents[0]

    for label, x in (("true", sample("pos", 3)), ("false", -sample("pos", 3))):
        add("staged.cond", x, fn=_staged(branch, x), label=label, jax=False, order2=True)
    x = sample("any", 3)
    add("staged.while_loop", x, fn=_staged(loop, x), jax=False, order2=True)
    x = sample("any", 4)
    add("staged.scan", x, fn=_staged(recurrence, x), jax=False, order2=True)
    add("staged.adjoint", x, fn=_staged(lambda v: softplus(v) ** 2, x), jax=False, order2=True)
    add("staged.custom_jvp", x, fn=_staged(lambda v: sine(v) * v, x), jax=False, order2=True)


_staged_programs()


def resolve(name: str, root: str = "wengert.ad") -> Callable | None:
    """The function a case name refers to, under ``wengert.ad`` (or a JAX module root)."""
    kind, _, attr = name.rpartition(".")
    if kind == "primitive":
        from wengert.ad.primitives import registry

        return registry[attr].bind
    if kind in ("indexing", "staged"):
        return None
    module = importlib.import_module(f"{root}.{kind}" if root else kind)
    return getattr(module, attr)
