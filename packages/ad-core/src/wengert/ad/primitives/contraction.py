"""`dot_general`: XLA's tensor contraction, the one primitive behind `dot`,
`matmul`, `tensordot`, `inner`, `outer` and `einsum` in `wengert.ad.numpy`.

Output layout (as XLA): batch dimensions, then the free dimensions of the left
operand, then those of the right. The VJPs contract the cotangent with the
other operand and transpose back to the operand's own dimension order.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .._core import Aval, Primitive
from ._helpers import conj_if_complex, def_linear, to_operand
from .structural import transpose_p


def _free_dims(ndim, contract, batch):
    return tuple(d for d in range(ndim) if d not in contract and d not in batch)


_MATRIX_PRODUCTS = {((1,), (0,)): "ab", ((0,), (0,)): "aTb", ((1,), (1,)): "abT",
                    ((0,), (1,)): "aTbT"}


@functools.lru_cache(maxsize=1024)
def _impl_plan(a_ndim: int, b_ndim: int, dimension_numbers: tuple):
    """How `_dot_general_impl` runs one signature, worked out once per signature:
    a 2-d product that BLAS takes as it is (``"ab"``, or with transposed views,
    ``"aTb"``, ``"abT"``, ``"aTbT"``), else the permutations that bring each
    operand to (batch, free, contract) order and the free dimensions."""
    (lc, rc), (lb, rb) = dimension_numbers
    if not lb and a_ndim == 2 and b_ndim == 2 and (lc, rc) in _MATRIX_PRODUCTS:
        return _MATRIX_PRODUCTS[lc, rc]
    la, ra = _free_dims(a_ndim, lc, lb), _free_dims(b_ndim, rc, rb)
    return lb + la + lc, rb + rc + ra, la, ra


def _dot_general_impl(a, b, dimension_numbers):
    (lc, _), (lb, _) = dimension_numbers
    # A traced Python scalar arrives as the scalar itself (a 0-d operand).
    a = a if hasattr(a, "ndim") else np.asarray(a)
    b = b if hasattr(b, "ndim") else np.asarray(b)
    plan = _impl_plan(a.ndim, b.ndim, dimension_numbers)
    if plan == "ab":
        return a @ b
    if plan == "aTb":
        return a.T @ b
    if plan == "abT":
        return a @ b.T
    if plan == "aTbT":
        return a.T @ b.T
    a_order, b_order, la, ra = plan
    ash, bsh = a.shape, b.shape
    batch = [ash[d] for d in lb]
    m = math.prod(ash[d] for d in la)
    k = math.prod(ash[d] for d in lc)
    n = math.prod(bsh[d] for d in ra)
    a2 = np.reshape(np.transpose(a, a_order), batch + [m, k])
    b2 = np.reshape(np.transpose(b, b_order), batch + [k, n])
    out = np.matmul(a2, b2)
    return np.reshape(out, tuple(batch) + tuple(ash[d] for d in la) + tuple(bsh[d] for d in ra))


def _dot_general_shape(a, b, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    for l, r in zip(lc + lb, rc + rb):
        if a.shape[l] != b.shape[r]:
            raise TypeError(f"dot_general: dimension {l} of {a} does not match dimension {r} "
                            f"of {b}")
    la, ra = _free_dims(a.ndim, lc, lb), _free_dims(b.ndim, rc, rb)
    shape = tuple(a.shape[d] for d in lb) + tuple(a.shape[d] for d in la) + tuple(
        b.shape[d] for d in ra)
    return Aval(shape, np.result_type(a.dtype, b.dtype))


@functools.lru_cache(maxsize=1024)
def _cotangent_plan(i: int, a_ndim: int, b_ndim: int, dimension_numbers: tuple):
    """How the cotangent ``g`` of the output goes back onto operand ``i``, worked out
    once per signature: ``(g_first, dimension_numbers, permutation or None)`` of
    the contraction of ``g`` with the other operand.

    Of the two operand orders, take the one whose result already has the
    operand's own layout, so weight gradients come out row-major (a transposed
    view would slow every later elementwise update).
    """
    (lc, rc), (lb, rb) = dimension_numbers
    a_dims = (a_ndim, lb, _free_dims(a_ndim, lc, lb), lc)
    b_dims = (b_ndim, rb, _free_dims(b_ndim, rc, rb), rc)
    nb, n_afree, n_bfree = len(lb), len(a_dims[2]), len(b_dims[2])
    if i == 0:
        own, other = a_dims, b_dims
        g_other_free = tuple(range(nb + n_afree, nb + n_afree + n_bfree))
    else:
        own, other = b_dims, a_dims
        g_other_free = tuple(range(nb, nb + n_afree))
    ndim, batch, free, contract = own
    _, other_batch, other_free, other_contract = other
    nf, nc = len(free), len(contract)
    remaining = sorted(other_contract)

    def layout(contract_first: bool) -> tuple[int, ...]:
        position = {d: i for i, d in enumerate(batch)}
        for j, d in enumerate(free):
            position[d] = nb + (nc + j if contract_first else j)
        for c, oc in zip(contract, other_contract):
            position[c] = nb + remaining.index(oc) + (0 if contract_first else nf)
        return tuple(position[d] for d in range(ndim))

    g_batch = tuple(range(nb))
    identity = tuple(range(ndim))
    if layout(False) != identity and layout(True) == identity:
        return False, ((other_free, g_other_free), (other_batch, g_batch)), None
    perm = layout(False)
    return True, ((g_other_free, other_free), (g_batch, other_batch)), \
        None if perm == identity else perm


def _ndim(x):
    return x.ndim if hasattr(x, "ndim") else 0  # a Python scalar (a traced one's value)


def _transpose(i, g, a, b, dimension_numbers):
    """``dot_general`` is linear in each operand separately: the cotangent of
    operand ``i`` contracts ``g`` with the other one, back in the operand's own
    dimension order."""
    own, other = (a, b) if i == 0 else (b, a)
    g_first, dn, perm = _cotangent_plan(i, _ndim(a), _ndim(b), dimension_numbers)
    other = conj_if_complex(other)
    if g_first:
        r = dot_general_p.bind(g, other, dimension_numbers=dn)
    else:
        r = dot_general_p.bind(other, g, dimension_numbers=dn)
    if perm is not None:
        r = transpose_p.bind(r, permutation=perm)
    return to_operand(r, own)


dot_general_p = def_linear(Primitive("dot_general", _dot_general_impl), _transpose,
                           linear=(0, 1), arity=2, shape=_dot_general_shape)

