"""Differentiable `numpy.linalg`: ``norm`` (and ``vector_norm``/``matrix_norm``),
``solve``, ``inv``, ``det``, ``slogdet``, ``cholesky``, ``eigh``, ``eigvalsh``,
``svd``, ``svdvals``, ``pinv``, ``lstsq``, ``qr``, ``eig``, ``eigvals``, ``cond``,
``matrix_power``, ``multi_dot``, ``matrix_rank``.
Stacks of matrices (leading batch axes) work wherever NumPy allows them.

Derivatives where the functions are not smooth:

* ``eigh``: eigenvector derivatives contain ``1/(λ_j - λ_i)``. For exactly
  repeated eigenvalues those terms are dropped, which is right for functions
  that do not depend on the choice of basis inside an eigenspace (e.g. of the
  eigenvalues alone) and meaningless otherwise; nearly repeated eigenvalues
  give large eigenvector derivatives, as they must. Complex eigenvectors are
  fixed up to a phase: differentiate only phase-invariant functions of them.
* ``svd``: the same for singular values (``1/(s_j² - s_i²)``); only
  ``full_matrices=False`` (or square input) is differentiable, because the
  extra columns of a full basis are not unique; zero singular values give
  zero, not infinite, terms.
* ``eig`` (general matrices): eigenvectors are unique only up to a complex
  factor each. NumPy (LAPACK) returns them with unit norm and their largest
  component real; the derivative keeps that gauge, so it is the derivative of
  what NumPy returns, as long as the largest component stays the same one.
  Eigenvalues are complex (also of real matrices); repeated eigenvalues give
  infinite eigenvector derivatives and have their terms dropped, as ``eigh``.
  Eagerly, eigenvalues and vectors come back real when NumPy's would (all
  eigenvalues real); staged, they are always complex (the dtype would depend
  on the data).
* ``qr``: the reduced factorization (``mode='reduced'``, or ``'r'``) of
  matrices with at least as many rows as columns and full column rank is
  differentiable; ``'complete'`` and wide matrices refuse (their extra
  columns are not unique). ``lstsq`` is ``pinv(a) @ b``, with ``rank`` and
  ``residuals`` as NumPy.
* ``cholesky`` and ``eigh`` read one triangle, as LAPACK: the derivative with
  respect to the other triangle is zero.
* ``det`` at a singular matrix, and ``norm`` at zero, have no finite gradient.
"""

from __future__ import annotations

import builtins
import functools
from typing import Any, NamedTuple

import numpy as np
from numpy.linalg import LinAlgError

from ..primitives import linalg as lp
from ..primitives._helpers import on_device_of
from ._common import as_array, normalize_axis, shape_of
from ._contraction import matmul, outer, tensordot, vecdot
from ._creation import astype
from ._elementwise import abs, conj, exp, not_equal, power, real, sqrt, where
from ._reductions import any, max, min, sum
from ._shape import broadcast_to, matrix_transpose, moveaxis, reshape, swapaxes
from ._shape import diagonal as _diagonal


class SlogdetResult(NamedTuple):
    sign: Any
    logabsdet: Any


class EighResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class EigResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    Q: Any
    R: Any


class SVDResult(NamedTuple):
    U: Any
    S: Any
    Vh: Any


def _inexact(a: Any) -> Any:
    """Integer matrices are solved in float64, as NumPy does."""
    a = as_array(a)
    return astype(a, np.float64) if a.dtype.kind in "biu" else a


def _square(a: Any, what: str) -> Any:
    a = _inexact(a)
    s = shape_of(a)
    if len(s) < 2 or s[-1] != s[-2]:
        raise LinAlgError(f"{what}: expected a (stack of) square matrices, got shape {s}")
    return a


def _H(a: Any) -> Any:
    return conj(swapaxes(a, -1, -2))


def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    """The diagonals of the matrices in the last two axes (array-API semantics)."""
    return _diagonal(x, offset, -2, -1)


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    return sum(diagonal(x, offset=offset), -1, dtype)


def _identity_like(a: Any) -> np.ndarray:
    n = shape_of(a)[-1]
    return on_device_of(a, np.broadcast_to(np.eye(n, dtype=a.dtype), shape_of(a)))


# ---- solving ---------------------------------------------------------------------------
def solve(a: Any, b: Any) -> Any:
    """``a x = b``; ``b`` is a vector only when it is 1-d (NumPy 2 semantics)."""
    a, b = _square(a, "solve"), _inexact(b)
    vector = b.ndim == 1
    if vector:
        b = reshape(b, shape_of(b) + (1,))
    batch = np.broadcast_shapes(shape_of(a)[:-2], shape_of(b)[:-2])
    a = broadcast_to(a, batch + shape_of(a)[-2:])
    b = broadcast_to(b, batch + shape_of(b)[-2:])
    x = lp.solve_p.bind(a, b)
    return reshape(x, shape_of(x)[:-1]) if vector else x


def inv(a: Any) -> Any:
    a = _square(a, "inv")
    return lp.solve_p.bind(a, _identity_like(a))


def slogdet(a: Any) -> SlogdetResult:
    return SlogdetResult(*lp.slogdet_p.bind(_square(a, "slogdet")))


def det(a: Any) -> Any:
    sign, logabsdet = slogdet(a)
    return sign * exp(logabsdet)


def matrix_power(a: Any, n: int) -> Any:
    a = _square(a, "matrix_power")
    if n < 0:
        a, n = inv(a), -n
    result = None
    while n:
        if n & 1:
            result = a if result is None else matmul(result, a)
        n >>= 1
        if n:
            a = matmul(a, a)
    return _identity_like(a).copy() if result is None else result


def multi_dot(arrays: Any) -> Any:
    return functools.reduce(matmul, arrays)


# ---- factorizations ---------------------------------------------------------------------
def cholesky(a: Any, upper: bool = False) -> Any:
    """Lower ``L`` with ``a = L L^H`` (``upper=True``: ``L^H``); reads the lower triangle."""
    lower = lp.cholesky_p.bind(_square(a, "cholesky"))
    return _H(lower) if upper else lower


def eigh(a: Any, UPLO: str = "L") -> EighResult:  # noqa: N803  (NumPy's name)
    """Eigenvalues (ascending) and eigenvectors of a Hermitian matrix, from one triangle."""
    a = _square(a, "eigh")
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    return EighResult(*lp.eigh_p.bind(a if UPLO == "L" else _H(a)))


def eigvalsh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    return eigh(a, UPLO).eigenvalues


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Any:
    """``a = U diag(S) Vh`` with ``S`` descending (``hermitian`` is accepted and ignored)."""
    a = _inexact(a)
    m, n = shape_of(a)[-2:]
    if not compute_uv:
        return svdvals(a)
    if full_matrices and m != n:
        raise NotImplementedError(
            f"svd(full_matrices=True) of a {m}x{n} matrix: the extra singular vectors of a "
            "full basis are not unique, so they have no derivative. Pass "
            "full_matrices=False (the thin SVD), which is differentiable.")
    return SVDResult(*lp.svd_p.bind(a))


def svdvals(x: Any) -> Any:
    return lp.svd_p.bind(_inexact(x))[1]


def pinv(a: Any, rcond: float | None = None, hermitian: bool = False) -> Any:
    """Moore-Penrose inverse from the thin SVD; singular values below the cutoff count as 0."""
    u, s, vh = lp.svd_p.bind(_inexact(a))
    if rcond is None:
        rcond = 10 * builtins.max(shape_of(a)[-2:]) * np.finfo(s.dtype).eps
    cutoff = rcond * max(s, axis=-1, keepdims=True)
    kept = s > cutoff
    s_inv = where(kept, 1 / where(kept, s, 1), 0)
    return matmul(_H(vh) * reshape(s_inv, shape_of(s)[:-1] + (1, shape_of(s)[-1])), _H(u))


def matrix_rank(A: Any, tol: Any = None, hermitian: bool = False, *,  # noqa: N803
                rtol: Any = None) -> Any:
    """The number of singular values above the cutoff (an integer: no derivative)."""
    A = _inexact(A)
    if A.ndim < 2:
        return astype(any(not_equal(A, 0)), np.int64)
    s = svdvals(A)
    top = max(s, axis=-1, keepdims=True)
    if tol is None:
        if rtol is None:
            rtol = builtins.max(shape_of(A)[-2:]) * np.finfo(s.dtype).eps
        cutoff = rtol * top
    else:
        cutoff = tol
    return sum(s > cutoff, axis=-1)


def _concrete(x: Any, what: str) -> Any:
    from .._core import Tracer

    return x.concrete_value(what) if isinstance(x, Tracer) else x


def lstsq(a: Any, b: Any, rcond: Any = None) -> tuple:
    """Least squares ``min |a x - b|`` as NumPy: ``(x, residuals, rank, s)``, ``x`` from the
    pseudo-inverse (differentiable in ``a`` and ``b`` at full rank)."""
    a, b = _inexact(a), _inexact(b)
    m, n = shape_of(a)[-2:]
    if rcond is None:
        rcond = np.finfo(a.dtype).eps * builtins.max(m, n)
    s = svdvals(a)
    rank = sum(s > rcond * max(s), axis=-1)
    x = matmul(pinv(a, rcond), b)
    vector = b.ndim == 1
    if int(_concrete(rank, "lstsq's rank (it decides whether residuals are returned)")) == n \
            and m > n:
        r = matmul(a, x) - b
        residuals = sum(_abs2(r), axis=0)
        residuals = reshape(residuals, (1,)) if vector else residuals
    else:
        residuals = np.zeros((0,), np.finfo(a.dtype).dtype)
    return x, residuals, rank, s


def qr(a: Any, mode: str = "reduced") -> Any:
    """``a = Q R`` with ``Q`` orthonormal columns and ``R`` upper triangular."""
    a = _inexact(a)
    m, n = shape_of(a)[-2:]
    if mode not in ("reduced", "r", "complete"):
        raise ValueError(f"qr: unsupported mode {mode!r} (reduced, r or complete)")
    if mode == "complete" and m > n or m < n:
        raise NotImplementedError(
            f"qr(mode={mode!r}) of a {m}x{n} matrix: the columns of Q beyond the column space "
            "(or R's extra columns) are not unique, so they have no derivative; pass a matrix "
            "with at least as many rows as columns and mode='reduced'")
    q, r = lp.qr_p.bind(a)
    return r if mode == "r" else QRResult(q, r)


def eig(a: Any) -> EigResult:
    """Eigenvalues and right eigenvectors of a general square matrix (see the gauge above)."""
    w, v = lp.eig_p.bind(_square(a, "eig"))
    if a.dtype.kind != "c" and not _staged(w) and not bool((_concrete(w, "eig").imag != 0).any()):
        w, v = real(w), real(v)  # NumPy returns real arrays when all eigenvalues are real
    return EigResult(w, v)


def _staged(x: Any) -> bool:
    from .._core import ConcreteTracer, Tracer

    while isinstance(x, ConcreteTracer):
        x = x._primal()
    return isinstance(x, Tracer)


def eigvals(a: Any) -> Any:
    return eig(a).eigenvalues


def cond(x: Any, p: Any = None) -> Any:
    if p is None or p in (2, -2):
        s = svdvals(x)
        ratio = s[..., 0] / s[..., -1]
        return 1 / ratio if p == -2 else ratio
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))


# ---- norms ---------------------------------------------------------------------------------
def _abs2(x: Any) -> Any:
    return real(x * conj(x)) if x.dtype.kind == "c" else x * x


def _vector_norm(x: Any, ord: Any, axis: int, keepdims: bool) -> Any:
    if ord is None or ord == 2:
        return sqrt(sum(_abs2(x), axis, keepdims=keepdims))
    if ord == np.inf:
        return max(abs(x), axis, keepdims=keepdims)
    if ord == -np.inf:
        return min(abs(x), axis, keepdims=keepdims)
    if ord == 0:
        return sum(astype(not_equal(x, 0), np.finfo(x.dtype).dtype), axis, keepdims=keepdims)
    if ord == 1:
        return sum(abs(x), axis, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid order {ord!r} for a vector norm")
    return power(sum(power(abs(x), ord), axis, keepdims=keepdims), 1.0 / ord)


def _matrix_norm(x: Any, ord: Any, axes: tuple[int, int], keepdims: bool) -> Any:
    row, col = axes
    if ord is None or ord == "fro":
        return sqrt(sum(_abs2(x), axes, keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        inner, outer_axis = (row, col) if ord in (1, -1) else (col, row)
        sums = sum(abs(x), inner, keepdims=True)
        pick = max if ord in (1, np.inf) else min
        out = pick(sums, outer_axis, keepdims=True)
    elif ord in ("nuc", 2, -2):
        s = svdvals(moveaxis(x, (row, col), (-2, -1)))
        out = sum(s, -1) if ord == "nuc" else (max if ord == 2 else min)(s, -1)
        kept = tuple(1 if i in axes else d for i, d in enumerate(shape_of(x)))
        out = reshape(out, kept)
    else:
        raise ValueError(f"norm: invalid order {ord!r} for a matrix norm")
    if keepdims:
        return out
    return reshape(out, tuple(d for i, d in enumerate(shape_of(out)) if i not in axes))


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """NumPy's vector and matrix norms (``ord``: None, 'fro', 'nuc', ±1, ±2, ±inf, p)."""
    x = _inexact(x)
    nd = x.ndim
    if axis is None:
        if ord is None:
            out = sqrt(sum(_abs2(x)))
            return reshape(out, (1,) * nd) if keepdims else out
        if nd not in (1, 2):
            raise ValueError("norm: ord needs axis for arrays that are not 1-d or 2-d")
        axis = (0,) if nd == 1 else (0, 1)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(normalize_axis(int(a), nd) for a in axes)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2 and axes[0] != axes[1]:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError(f"norm: axis must be an int or a pair of distinct ints, got {axis!r}")


def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    x = _inexact(x)
    if axis is None:
        out = _vector_norm(reshape(x, (-1,)), ord, 0, False)
        return reshape(out, (1,) * x.ndim) if keepdims else out
    if not isinstance(axis, (int, np.integer)):
        axes = tuple(normalize_axis(int(a), x.ndim) for a in axis)
        rest = tuple(i for i in range(x.ndim) if i not in axes)
        moved = moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
        flat = reshape(moved, tuple(shape_of(x)[i] for i in rest) + (-1,))
        out = _vector_norm(flat, ord, -1, False)
        if keepdims:
            out = reshape(out, tuple(1 if i in axes else d for i, d in enumerate(shape_of(x))))
        return out
    return _vector_norm(x, ord, normalize_axis(int(axis), x.ndim), keepdims)


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    x = _inexact(x)
    return _matrix_norm(x, ord, (x.ndim - 2, x.ndim - 1), keepdims)


__all__ = ["EigResult", "EighResult", "LinAlgError", "QRResult", "SVDResult", "SlogdetResult",
           "cholesky", "cond", "det", "diagonal", "eig", "eigh", "eigvals", "eigvalsh", "inv",
           "lstsq", "matmul", "matrix_norm", "matrix_power", "matrix_rank", "matrix_transpose",
           "multi_dot", "norm", "outer", "pinv", "qr", "slogdet", "solve", "svd", "svdvals",
           "tensordot", "trace", "vecdot", "vector_norm"]
