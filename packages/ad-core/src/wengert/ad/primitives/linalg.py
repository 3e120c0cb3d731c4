"""Linear-algebra primitives, shaped like XLA's: `cholesky`, `triangular_solve`,
`solve`, `slogdet`, `eigh`, `svd`, `eig`, `qr`, `lu` (with
`lu_pivots_to_permutation`). `inv`, `det`, `pinv` and
`lstsq` are compositions in `wengert.ad.numpy.linalg`.

Matrices live in the last two axes; leading axes are a batch, which every
operand of one primitive shares (the namespace broadcasts). Like LAPACK,
`cholesky` and `eigh` read only the lower triangle of their input, and
`triangular_solve` only the triangle it is told: the derivative rules are
exact for that, so a tangent in the ignored triangle has no effect.
Rules are written with primitives, so they differentiate again. Shape rules
compute shapes from shapes: staging never runs LAPACK.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import Aval, Primitive
from ._helpers import conj_if_complex, is_complex, is_cupy, on_device_of, shape_of, to_operand
from .contraction import dot_general_p
from .elementwise import conj_p, div_p, eq_p, real_p, select_p
from .reductions import argsort_p, reduce_sum_p, take_along_axis_p
from .structural import broadcast_in_dim_p, getitem_p, reshape_p, transpose_p


# ---- matrix helpers written with primitives ------------------------------------------
def _mT(x: Any) -> Any:
    n = len(shape_of(x))
    return transpose_p.bind(x, permutation=tuple(range(n - 2)) + (n - 1, n - 2))


def _H(x: Any) -> Any:
    return conj_if_complex(_mT(x))


def _mm(a: Any, b: Any) -> Any:
    """Batched matrix product of operands with the same batch axes."""
    nb = len(shape_of(a)) - 2
    batch = tuple(range(nb))
    return dot_general_p.bind(a, b, dimension_numbers=(((nb + 1,), (nb,)), (batch, batch)))


def _zero(x: Any) -> Any:
    return np.dtype(x.dtype).type(0)


def _real_dtype(x: Any) -> np.dtype:
    return np.finfo(x.dtype).dtype


def _tri(x: Any, k: int, lower: bool) -> Any:
    """The lower (``tril(x, k)``) or upper (``triu(x, k)``) triangle of ``x``."""
    n, m = shape_of(x)[-2:]
    mask = np.tri(n, m, k, dtype=bool) if lower else ~np.tri(n, m, k - 1, dtype=bool)
    return select_p.bind(on_device_of(x, mask), x, _zero(x))


def _diag_part(x: Any) -> Any:
    r = on_device_of(x, np.arange(shape_of(x)[-1]))
    return getitem_p.bind(x, r, r, spec=(("ellipsis",), ("array",), ("array",)))


def _diag_embed(d: Any) -> Any:
    """A batch of diagonal matrices from a batch of vectors."""
    n = shape_of(d)[-1]
    column = reshape_p.bind(d, new_sizes=shape_of(d) + (1,))
    return column * on_device_of(d, np.eye(n, dtype=_real_dtype(d)))


def _row(v: Any) -> Any:
    """``v[..., None, :]``: a vector as a row, to scale the columns of a matrix."""
    s = shape_of(v)
    return reshape_p.bind(v, new_sizes=s[:-1] + (1, s[-1]))


def _col(v: Any) -> Any:
    s = shape_of(v)
    return reshape_p.bind(v, new_sizes=s + (1,))


def _safe_reciprocal(d: Any) -> Any:
    """``1/d`` with 0 where ``d == 0`` (degenerate spectra, zero singular values)."""
    zero = eq_p.bind(d, 0)
    return select_p.bind(zero, _zero(d), div_p.bind(1, select_p.bind(zero, 1, d)))


def _gap_reciprocals(w: Any, squared: bool) -> Any:
    """``F[i, j] = 1 / (w_j - w_i)`` (or ``w_j² - w_i²``), 0 where equal (and on the diagonal)."""
    if squared:
        w = w * w
    return _safe_reciprocal(_row(w) - _col(w))


def _diag_only(x: Any) -> Any:
    n, m = shape_of(x)[-2:]
    return select_p.bind(on_device_of(x, np.eye(n, m, dtype=bool)), x, _zero(x))


def _real_diag(x: Any) -> Any:
    d = _diag_only(x)
    return real_p.bind(d) if is_complex(d) else d


def _i_imag(z: Any) -> Any:
    """``i Im(z)``, written without a Python complex constant."""
    return (z - conj_p.bind(z)) * 0.5


def _hermitian_from_lower(t: Any) -> Any:
    """The Hermitian matrix a lower triangle stands for: what LAPACK reads, ignoring the
    imaginary part of the diagonal."""
    strict = _tri(t, -1, True)
    return strict + _H(strict) + _real_diag(t)


def _hermitian_from_lower_adjoint(g: Any) -> Any:
    return _tri(g, -1, True) + _tri(_H(g), -1, True) + _real_diag(g)


def _unused_on_device(gs: tuple, ans: tuple) -> tuple:
    """Cotangents of unused outputs arrive as NumPy zeros even for CuPy outputs (the
    reverse pass makes them without a device): move those to the outputs' device."""
    return tuple(on_device_of(a, g) if type(g) is np.ndarray else g for g, a in zip(gs, ans))


# ---- triangular_solve ---------------------------------------------------------------
def _solve_triangular(a, b, lower, transpose_a, conjugate_a):
    if conjugate_a and not transpose_a:
        a = a.conj()
    trans = (2 if conjugate_a else 1) if transpose_a else 0
    if is_cupy(a):
        from cupyx.scipy.linalg import solve_triangular
    else:
        from scipy.linalg import solve_triangular
    return solve_triangular(a, b, trans=trans, lower=lower, check_finite=False)


def _swap_last(x):
    return x.swapaxes(-1, -2)


def _triangular_solve_impl(a, b, *, left_side, lower, transpose_a, conjugate_a):
    if left_side:
        return _solve_triangular(a, b, lower, transpose_a, conjugate_a)
    # x op(a) = b  <=>  op(a)^T x^T = b^T
    return _swap_last(_solve_triangular(a, _swap_last(b), lower, not transpose_a, conjugate_a))


def _op(x: Any, transpose_a: bool, conjugate_a: bool) -> Any:
    """``op(x)``: the matrix the solve actually inverts (self-adjoint pieces)."""
    if transpose_a:
        x = _mT(x)
    return conj_if_complex(x) if conjugate_a else x


def _trisolve_jvp_a(t, ans, a, b, *, left_side, lower, transpose_a, conjugate_a):
    dop = _op(_tri(t, 0, lower), transpose_a, conjugate_a)
    rhs = -_mm(dop, ans) if left_side else -_mm(ans, dop)
    return triangular_solve_p.bind(a, rhs, left_side=left_side, lower=lower,
                                   transpose_a=transpose_a, conjugate_a=conjugate_a)


def _trisolve_jvp_b(t, ans, a, b, **params):
    return triangular_solve_p.bind(a, t, **params)


def _trisolve_adjoint(g, a, *, left_side, lower, transpose_a, conjugate_a):
    """``op(a)^{-H} g`` (or ``g op(a)^{-H}``): the cotangent of ``b``."""
    return triangular_solve_p.bind(a, g, left_side=left_side, lower=lower,
                                   transpose_a=not transpose_a, conjugate_a=not conjugate_a)


def _trisolve_vjp_a(g, ans, a, b, *, left_side, lower, transpose_a, conjugate_a):
    params = dict(left_side=left_side, lower=lower, transpose_a=transpose_a,
                  conjugate_a=conjugate_a)
    gb = _trisolve_adjoint(g, a, **params)
    g_op = -_mm(gb, _H(ans)) if left_side else -_mm(_H(ans), gb)
    return to_operand(_tri(_op(g_op, transpose_a, conjugate_a), 0, lower), a)


def _trisolve_vjp_b(g, ans, a, b, **params):
    return to_operand(_trisolve_adjoint(g, a, **params), b)


triangular_solve_p = Primitive("triangular_solve", _triangular_solve_impl, keep_ans=True)
triangular_solve_p.def_rules(
    shape=lambda a, b, **params: Aval(b.shape, np.result_type(a.dtype, b.dtype)),
    jvps=(_trisolve_jvp_a, _trisolve_jvp_b),
    vjps=(_trisolve_vjp_a, _trisolve_vjp_b))


def _trisolve(l: Any, b: Any, *, left_side: bool, adjoint: bool = False) -> Any:
    """``l^{-1} b``, ``l^{-H} b``, ``b l^{-1}`` or ``b l^{-H}`` for lower-triangular ``l``."""
    return triangular_solve_p.bind(l, b, left_side=left_side, lower=True, transpose_a=adjoint,
                                   conjugate_a=adjoint)


# ---- cholesky (lower, A = L L^H) ----------------------------------------------------------
def _phi(x: Any) -> Any:
    """Strictly lower part plus half the diagonal: the tangent map of a Cholesky factor."""
    return _tri(x, -1, True) + 0.5 * _diag_only(x)


def _cholesky_jvp(t, l, a):
    # L^{-1} dA L^{-H} = Y + Y^H with Y = L^{-1} dL lower, real diagonal.
    x = _trisolve(l, _trisolve(l, _hermitian_from_lower(t), left_side=True),
                  left_side=False, adjoint=True)
    return _mm(l, _phi(x))


def _cholesky_vjp(g, l, a):
    p = _phi(_mm(_H(l), g))
    m = _trisolve(l, _trisolve(l, p, left_side=True, adjoint=True), left_side=False)
    return to_operand(_hermitian_from_lower_adjoint(m), a)


cholesky_p = Primitive("cholesky", lambda a: np.linalg.cholesky(a), keep_args=False,
                       keep_ans=True)
cholesky_p.def_rules(shape=lambda a: Aval(a.shape, a.dtype), jvps=(_cholesky_jvp,),
                     vjps=(_cholesky_vjp,))


# ---- solve (general square system, LU) ----------------------------------------------------
def _solve_vjp_b(g, ans, a, b):
    return to_operand(solve_p.bind(_H(a), g), b)


def _solve_vjp_a(g, ans, a, b):
    return to_operand(-_mm(solve_p.bind(_H(a), g), _H(ans)), a)


solve_p = Primitive("solve", lambda a, b: np.linalg.solve(a, b), keep_ans=True)
solve_p.def_rules(
    shape=lambda a, b: Aval(b.shape, np.result_type(a.dtype, b.dtype)),
    jvps=(lambda t, ans, a, b: -solve_p.bind(a, _mm(t, ans)),
          lambda t, ans, a, b: solve_p.bind(a, t)),
    vjps=(_solve_vjp_a, _solve_vjp_b))


def inverse_adjoint(a: Any) -> Any:
    """``a^{-H}``, the derivative of ``log det a``."""
    n = shape_of(a)[-1]
    eye = on_device_of(a, np.broadcast_to(np.eye(n, dtype=a.dtype), shape_of(a)))
    return solve_p.bind(_H(a), eye)


# ---- slogdet: (sign, log|det|) ------------------------------------------------------------
def _slogdet_jvp(tangents, ans, a):
    (t,) = tangents
    sign, _ = ans
    trace = reduce_sum_p.bind(_diag_part(solve_p.bind(a, t)), axes=(len(shape_of(t)) - 2,))
    if not is_complex(a):
        return None, trace
    return sign * _i_imag(trace), real_p.bind(trace)


def _slogdet_vjp(gs, ans, a):
    g_sign, g_log = _unused_on_device(gs, ans)
    sign, _ = ans
    weight = g_log
    if is_complex(a):
        weight = g_log - _i_imag(conj_if_complex(g_sign) * sign)
    return to_operand(_col(_col(weight)) * inverse_adjoint(a), a)


def _slogdet_impl(a):
    sign, logabsdet = np.linalg.slogdet(a)
    return sign, logabsdet


slogdet_p = Primitive("slogdet", _slogdet_impl, multiple_results=True, keep_ans=True)
def _real_aval(shape: tuple, dtype: Any) -> Aval:
    return Aval(shape, np.finfo(dtype).dtype)


slogdet_p.def_rules(shape=lambda a: (Aval(a.shape[:-2], a.dtype), _real_aval(a.shape[:-2], a.dtype)),
                    jvp=_slogdet_jvp,
                    vjps=(_slogdet_vjp,))


# ---- eigh: (w ascending, v), from the lower triangle ----------------------------------------
def _eigh_jvp(tangents, ans, a):
    (t,) = tangents
    w, v = ans
    m = _mm(_H(v), _mm(_hermitian_from_lower(t), v))
    dw = real_p.bind(_diag_part(m)) if is_complex(m) else _diag_part(m)
    dv = _mm(v, _gap_reciprocals(w, False) * m)
    return dw, dv


def _eigh_vjp(gs, ans, a):
    gw, gv = _unused_on_device(gs, ans)
    w, v = ans
    gm = _diag_embed(gw) + _gap_reciprocals(w, False) * _mm(_H(v), gv)
    return to_operand(_hermitian_from_lower_adjoint(_mm(v, _mm(gm, _H(v)))), a)


eigh_p = Primitive("eigh", lambda a: tuple(np.linalg.eigh(a)), multiple_results=True,
                   keep_args=False, keep_ans=True)
eigh_p.def_rules(shape=lambda a: (_real_aval(a.shape[:-1], a.dtype), Aval(a.shape, a.dtype)),
                 jvp=_eigh_jvp, vjps=(_eigh_vjp,))


# ---- svd (thin): (u, s descending, vh) --------------------------------------------------------
def _svd_jvp(tangents, ans, a):
    (t,) = tangents
    u, s, vh = ans
    m_rows, n_cols = shape_of(a)[-2:]
    v = _H(vh)
    ds_mat = _mm(_H(u), _mm(t, v))
    ds = real_p.bind(_diag_part(ds_mat)) if is_complex(ds_mat) else _diag_part(ds_mat)
    f = _gap_reciprocals(s, True)
    s_inv = _safe_reciprocal(s)
    dss = ds_mat * _row(s)
    sds = _col(s) * ds_mat
    du = f * (dss + _H(dss))
    if is_complex(ds_mat):  # the phase gauge: u^H du has a purely imaginary diagonal
        du = du + _diag_embed(_i_imag(_diag_part(ds_mat)) * s_inv)
    du = _mm(u, du)
    dv = _mm(v, f * (sds + _H(sds)))
    if m_rows > n_cols:
        dav = _mm(t, v)
        du = du + (dav - _mm(u, _mm(_H(u), dav))) * _row(s_inv)
    if n_cols > m_rows:
        dahu = _mm(_H(t), u)
        dv = dv + (dahu - _mm(v, _mm(vh, dahu))) * _row(s_inv)
    return du, ds, _H(dv)


def _svd_vjp(gs, ans, a):
    gu, g_s, gvh = _unused_on_device(gs, ans)
    u, s, vh = ans
    m_rows, n_cols = shape_of(a)[-2:]
    v, gv = _H(vh), _H(gvh)
    f = _gap_reciprocals(s, True)
    s_inv = _safe_reciprocal(s)
    fu = f * _mm(_H(u), gu)
    fv = f * _mm(vh, gv)
    gsm = _diag_embed(g_s) + (fu + _H(fu)) * _row(s) + _col(s) * (fv + _H(fv))
    if is_complex(gsm):
        gsm = gsm + _diag_embed(_i_imag(_diag_part(_mm(_H(u), gu))) * s_inv)
    ga = _mm(u, _mm(gsm, vh))
    if m_rows > n_cols:
        ga = ga + _mm((gu - _mm(u, _mm(_H(u), gu))) * _row(s_inv), vh)
    if n_cols > m_rows:
        ga = ga + _mm(u, _H((gv - _mm(v, _mm(vh, gv))) * _row(s_inv)))
    return to_operand(ga, a)


svd_p = Primitive("svd", lambda a: tuple(np.linalg.svd(a, full_matrices=False)),
                  multiple_results=True, keep_args=False, keep_ans=True)
def _svd_shape(a: Aval) -> tuple[Aval, Aval, Aval]:
    *batch, m, n = a.shape
    k = min(m, n)
    return (Aval((*batch, m, k), a.dtype), _real_aval((*batch, k), a.dtype),
            Aval((*batch, k, n), a.dtype))


svd_p.def_rules(shape=_svd_shape, jvp=_svd_jvp, vjps=(_svd_vjp,))


# ---- eig (general square matrix): (w, v), both complex --------------------------------------
# Gauge: LAPACK returns each eigenvector with unit norm and its largest component real.
# The derivative keeps exactly that gauge, so it is the derivative of what numpy returns
# (while the largest component stays the same one).
def _eig_impl(a):
    w, v = np.linalg.eig(a)
    dtype = np.result_type(a.dtype, np.complex64)
    return w.astype(dtype, copy=False), v.astype(dtype, copy=False)


def _largest_component(v: Any) -> Any:
    """Per column of ``v``, a one-hot mask of the component LAPACK made real (a constant)."""
    from .reductions import argmax_p

    n = shape_of(v)[-2]
    top = argmax_p.bind(real_p.bind(v * conj_p.bind(v)), axis=len(shape_of(v)) - 2)
    return eq_p.bind(on_device_of(v, np.arange(n).reshape(n, 1)), _row(top))


def _eig_gauge(v: Any, dv: Any, onehot: Any, sign: float) -> Any:
    """Project a column perturbation onto the gauge (unit norm, largest component real).

    ``sign=+1``: the tangent map; ``sign=-1``: its adjoint (same correction, transposed)."""
    vk = reduce_sum_p.bind(select_p.bind(onehot, v, _zero(v)), axes=(len(shape_of(v)) - 2,))
    vk = real_p.bind(vk)
    if sign > 0:
        h = reduce_sum_p.bind(conj_p.bind(v) * dv, axes=(len(shape_of(v)) - 2,))
        dk = reduce_sum_p.bind(select_p.bind(onehot, dv, _zero(dv)), axes=(len(shape_of(v)) - 2,))
        c = -real_p.bind(h) - _i_imag(dk) / vk
        return dv + v * _row(c)
    h = reduce_sum_p.bind(conj_p.bind(v) * dv, axes=(len(shape_of(v)) - 2,))
    correction = v * _row(real_p.bind(h)) + select_p.bind(onehot, _row(_i_imag(h) / vk),
                                                          _zero(dv))
    return dv - correction


def _eig_jvp(tangents, ans, a):
    (t,) = tangents
    w, v = ans
    m = solve_p.bind(v, _mm(t, v))
    dw = _diag_part(m)
    dv = _mm(v, _gap_reciprocals(w, False) * m)
    return dw, _eig_gauge(v, dv, _largest_component(v), 1.0)


def _eig_vjp(gs, ans, a):
    gw, gv = _unused_on_device(gs, ans)
    w, v = ans
    gv0 = _eig_gauge(v, gv, _largest_component(v), -1.0)
    gm = _diag_embed(gw) + conj_p.bind(_gap_reciprocals(w, False)) * _mm(_H(v), gv0)
    return to_operand(solve_p.bind(_H(v), _mm(gm, _H(v))), a)


eig_p = Primitive("eig", _eig_impl, multiple_results=True, keep_args=False, keep_ans=True)
eig_p.def_rules(
    shape=lambda a: (Aval(a.shape[:-1], np.result_type(a.dtype, np.complex64)),
                     Aval(a.shape, np.result_type(a.dtype, np.complex64))),
    jvp=_eig_jvp, vjps=(_eig_vjp,))


# ---- qr (reduced, rows >= columns): (q, r) -------------------------------------------------
def _qr_jvp(tangents, ans, a):
    # dA = dQ R + Q dR; with X = dA R^{-1} and K = Q^H X, Q^H dQ = Omega is
    # skew-Hermitian and fixed by dR = (K - Omega) R being upper triangular with a real
    # diagonal (LAPACK's R has a real diagonal).
    (t,) = tangents
    q, r = ans
    x = _right_solve_upper(r, t, adjoint=False)
    k = _mm(_H(q), x)
    omega = _qr_omega(k)
    return _mm(q, omega - k) + x, _mm(k - omega, r)


def _qr_omega(k: Any) -> Any:
    lower = _tri(k, -1, True)
    omega = lower - _H(lower)
    return omega + _diag_only(_i_imag(k)) if is_complex(k) else omega


def _qr_vjp(gs, ans, a):
    gq, gr = _unused_on_device(gs, ans)
    q, r = ans
    n = _mm(gr, _H(r)) - _mm(_H(q), gq)
    gk = n - _tri(n - _H(n), -1, True)
    if is_complex(gk):
        gk = gk - _diag_only(_i_imag(n))
    gx = gq + _mm(q, gk)
    return to_operand(_right_solve_upper(r, gx, adjoint=True), a)


def _right_solve_upper(r: Any, b: Any, adjoint: bool) -> Any:
    """``b r^{-1}`` (or ``b r^{-H}``) for upper-triangular ``r``."""
    return triangular_solve_p.bind(r, b, left_side=False, lower=False, transpose_a=adjoint,
                                   conjugate_a=adjoint)


def _qr_shape(a: Aval) -> tuple[Aval, Aval]:
    *batch, m, n = a.shape
    k = min(m, n)
    return Aval((*batch, m, k), a.dtype), Aval((*batch, k, n), a.dtype)


qr_p = Primitive("qr", lambda a: tuple(np.linalg.qr(a, mode="reduced")),
                 multiple_results=True, keep_args=False, keep_ans=True)
qr_p.def_rules(shape=_qr_shape, jvp=_qr_jvp, vjps=(_qr_vjp,))


# ---- lu (partial pivoting: a[perm] = L U, L unit lower, packed with U) ------------------------
def _pivots_to_permutation(pivots: np.ndarray, size: int) -> np.ndarray:
    """LAPACK's row interchanges (row i swapped with pivots[i], in turn) as a permutation."""
    perm = np.broadcast_to(np.arange(size, dtype=np.int32), (*pivots.shape[:-1], size)).copy()
    for index in np.ndindex(*pivots.shape[:-1]):
        p = perm[index]
        for i, j in enumerate(pivots[index]):
            p[i], p[j] = p[j], p[i]
    return perm


def _lu_impl(a):
    if is_cupy(a):
        import cupy
        from cupyx.scipy.linalg import lu_factor as factor

        xp = cupy
    else:
        from scipy.linalg import lu_factor as factor

        xp = np
    n = a.shape[-1]
    lu, piv = xp.empty_like(a), np.empty((*a.shape[:-2], n), np.int32)
    for index in np.ndindex(*a.shape[:-2]):
        lu[index], p = factor(a[index])
        piv[index] = xp.asnumpy(p) if xp is not np else p
    perm = _pivots_to_permutation(piv, n)
    return lu, on_device_of(a, piv), on_device_of(a, perm)


def _lu_shape(a: Aval) -> tuple[Aval, Aval, Aval]:
    *batch, m, n = a.shape
    if m != n:
        raise ValueError(f"lu: the matrix must be square, got shape {a.shape}")
    return (Aval(a.shape, a.dtype), Aval((*batch, n), np.int32), Aval((*batch, n), np.int32))


def _unpack_lu(lu: Any) -> tuple[Any, Any]:
    """(L with its unit diagonal, U) from the packed factor."""
    n = shape_of(lu)[-1]
    return _tri(lu, -1, True) + on_device_of(lu, np.eye(n, dtype=lu.dtype)), _tri(lu, 0, False)


def _rows(x: Any, perm: Any) -> Any:
    """``x[..., perm, :]``: the rows of ``x`` in the order ``perm``."""
    idx = broadcast_in_dim_p.bind(perm, shape=shape_of(x), broadcast_dimensions=tuple(
        range(len(shape_of(x)) - 1)))
    return take_along_axis_p.bind(x, idx, axis=len(shape_of(x)) - 2)


def _lu_jvp(tangents, ans, a):
    # a[perm] = L U, so L^{-1} da[perm] U^{-1} = L^{-1} dL + dU U^{-1} = X: its strictly
    # lower part gives dL = L tril(X, -1), its upper part dU = triu(X) U.
    (t,) = tangents
    lu, _, perm = ans
    l, u = _unpack_lu(lu)
    x = _right_solve_upper(u, _trisolve_unit(l, _rows(t, perm)), adjoint=False)
    return _mm(l, _tri(x, -1, True)) + _mm(_tri(x, 0, False), u), None, None


def _lu_vjp(gs, ans, a):
    g = _unused_on_device(gs, ans)[0]
    lu, _, perm = ans
    l, u = _unpack_lu(lu)
    ct_x = _tri(_mm(_H(l), _tri(g, -1, True)), -1, True) + _tri(_mm(_tri(g, 0, False), _H(u)),
                                                                0, False)
    ct_rows = _right_solve_upper(u, _trisolve_unit(l, ct_x, adjoint=True), adjoint=True)
    inverse = argsort_p.bind(perm, axis=len(shape_of(perm)) - 1)
    return to_operand(_rows(ct_rows, inverse), a)


def _trisolve_unit(l: Any, b: Any, adjoint: bool = False) -> Any:
    """``l^{-1} b`` (or ``l^{-H} b``) for the unit lower factor ``l`` (diagonal stored)."""
    return triangular_solve_p.bind(l, b, left_side=True, lower=True, transpose_a=adjoint,
                                   conjugate_a=adjoint)


lu_p = Primitive("lu", _lu_impl, multiple_results=True, keep_args=False, keep_ans=True)
lu_p.def_rules(shape=_lu_shape, jvp=_lu_jvp, vjps=(_lu_vjp,))

lu_pivots_to_permutation_p = Primitive(
    "lu_pivots_to_permutation",
    lambda pivots, permutation_size: on_device_of(pivots, _pivots_to_permutation(
        np.asarray(pivots.get() if is_cupy(pivots) else pivots), permutation_size)))
lu_pivots_to_permutation_p.def_rules(
    shape=lambda pivots, permutation_size: Aval((*pivots.shape[:-1], permutation_size),
                                                np.int32))
