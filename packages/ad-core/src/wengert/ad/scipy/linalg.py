"""Differentiable `scipy.linalg` solves: ``solve_triangular``, ``cho_factor``,
``cho_solve``, ``lu_factor`` and ``lu_solve``. Each is built on the
``triangular_solve``, ``cholesky`` and ``lu`` primitives, so it differentiates to
any order, stages, and lowers to XLA's TriangularSolve, Cholesky and LU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..numpy import _common
from ..numpy import linalg as _linalg
from ..numpy import _elementwise, _shape
from ..primitives._helpers import on_device_of
from ..primitives.linalg import lu_p, lu_pivots_to_permutation_p, triangular_solve_p
from ..primitives.reductions import argsort_p
from ..primitives.structural import reshape_p

_TRANS = {0: (False, False), "N": (False, False), 1: (True, False), "T": (True, False),
          2: (True, True), "C": (True, True)}


def _array(x: Any) -> Any:
    return x if hasattr(x, "shape") and hasattr(x, "dtype") else _common.as_array(x)


def solve_triangular(a: Any, b: Any, trans: int | str = 0, lower: bool = False,
                     unit_diagonal: bool = False) -> Any:
    """``x`` with ``op(a) x = b`` for triangular ``a`` (``trans``: 0/'N' ``a``,
    1/'T' ``a^T``, 2/'C' ``a^H``); ``b`` a vector or a matrix, as SciPy's."""
    if unit_diagonal:
        raise NotImplementedError("solve_triangular: unit_diagonal=True is not supported; "
                                  "set the diagonal of a to ones instead")
    if trans not in _TRANS:
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', "
                         f"got {trans!r}")
    a, b = _array(a), _array(b)
    transpose, conjugate = _TRANS[trans]
    vector = len(b.shape) == len(a.shape) - 1
    rhs = reshape_p.bind(b, new_sizes=(*b.shape, 1)) if vector else b
    x = triangular_solve_p.bind(a, rhs, left_side=True, lower=bool(lower),
                                transpose_a=transpose, conjugate_a=conjugate)
    return reshape_p.bind(x, new_sizes=tuple(b.shape)) if vector else x


def cho_factor(a: Any, lower: bool = False) -> tuple[Any, bool]:
    """``(c, lower)``: the Cholesky factor of Hermitian positive-definite ``a`` (lower
    ``L`` or upper ``L^H``), for `cho_solve`. The other triangle is zero."""
    return _linalg.cholesky(_array(a), upper=not lower), bool(lower)


def cho_solve(c_and_lower: tuple[Any, bool], b: Any) -> Any:
    """``x`` with ``a x = b``, from ``cho_factor(a)``."""
    c, lower = c_and_lower
    if lower:  # a = L L^H
        return solve_triangular(c, solve_triangular(c, b, lower=True), trans="C", lower=True)
    # a = U^H U
    return solve_triangular(c, solve_triangular(c, b, trans="C", lower=False), lower=False)


def lu_factor(a: Any) -> tuple[Any, Any]:
    """``(lu, piv)`` of square ``a`` as SciPy's: ``L`` (unit diagonal, not stored) and
    ``U`` packed in ``lu``; row ``i`` was interchanged with row ``piv[i]``, in turn.
    Differentiable in ``a`` (the pivots are piecewise constant)."""
    lu, piv, _ = lu_p.bind(_array(a))
    return lu, piv


def lu_solve(lu_and_piv: tuple[Any, Any], b: Any, trans: int | str = 0) -> Any:
    """``x`` with ``op(a) x = b`` from ``lu_factor(a)`` (``trans`` as in
    `solve_triangular`); ``b`` a vector or a matrix."""
    if trans not in _TRANS:
        raise ValueError(f"lu_solve: trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}")
    lu, piv = lu_and_piv
    lu, b = _array(lu), _array(b)
    if len(lu.shape) != 2:
        raise ValueError(f"lu_solve: lu must be one square matrix, got shape {lu.shape}")
    n = lu.shape[-1]
    perm = lu_pivots_to_permutation_p.bind(_array(piv), permutation_size=n)
    lower = _elementwise.add(_shape.tril(lu, -1), _eye_like(lu, n))
    upper = _shape.triu(lu)
    transpose, conjugate = _TRANS[trans]
    if not transpose:  # a[perm] = L U
        return solve_triangular(upper, solve_triangular(lower, b[perm], lower=True))
    # a^T = U^T L^T P: solve for y = P x, then x = y[perm^-1]
    y = solve_triangular(lower, solve_triangular(upper, b, trans=trans), trans=trans,
                         lower=True)
    return y[argsort_p.bind(perm, axis=0)]


def _eye_like(x: Any, n: int) -> Any:
    return on_device_of(x, np.eye(n, dtype=x.dtype))


__all__ = ["cho_factor", "cho_solve", "lu_factor", "lu_solve", "solve_triangular"]
