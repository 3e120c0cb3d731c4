"""`dot_general`: XLA's tensor contraction, the one primitive behind `dot`,
`matmul`, `tensordot`, `inner`, `outer` and `einsum` in `wengert.ad.numpy`.

Output layout (as XLA): batch dimensions, then the free dimensions of the left
operand, then those of the right. The VJPs contract the cotangent with the
other operand and transpose back to the operand's own dimension order.
"""

from __future__ import annotations

import math

import numpy as np

from .._core import Aval, Primitive
from ._helpers import conj_if_complex, def_linear, to_operand


def _free_dims(ndim, contract, batch):
    return tuple(d for d in range(ndim) if d not in contract and d not in batch)


def _dot_general_impl(a, b, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    # A traced Python scalar arrives as the scalar itself (a 0-d operand).
    a = a if hasattr(a, "ndim") else np.asarray(a)
    b = b if hasattr(b, "ndim") else np.asarray(b)
    if not lb and a.ndim == 2 and b.ndim == 2 and lc == (1,) and rc == (0,):
        return a @ b
    la, ra = _free_dims(a.ndim, lc, lb), _free_dims(b.ndim, rc, rb)
    ash, bsh = a.shape, b.shape
    batch = [ash[d] for d in lb]
    m = math.prod(ash[d] for d in la)
    k = math.prod(ash[d] for d in lc)
    n = math.prod(bsh[d] for d in ra)
    a2 = np.reshape(np.transpose(a, lb + la + lc), batch + [m, k])
    b2 = np.reshape(np.transpose(b, rb + rc + ra), batch + [k, n])
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


def _operand_cotangent(g, other, own, other_dims, g_other_free):
    """Contract ``g`` with the other operand back onto one operand's dimensions.

    ``own`` and ``other_dims`` are ``(ndim, batch, free, contract)`` of the two
    operands. Of the two operand orders, take the one whose result already has
    the operand's own layout, so weight gradients come out row-major (a
    transposed view would slow every later elementwise update).
    """
    ndim, batch, free, contract = own
    _, other_batch, other_free, other_contract = other_dims
    nb, nf, nc = len(batch), len(free), len(contract)
    remaining = sorted(other_contract)

    def layout(contract_first: bool) -> tuple[int, ...]:
        position = {d: i for i, d in enumerate(batch)}
        for j, d in enumerate(free):
            position[d] = nb + (nc + j if contract_first else j)
        for c, oc in zip(contract, other_contract):
            position[c] = nb + remaining.index(oc) + (0 if contract_first else nf)
        return tuple(position[d] for d in range(ndim))

    other = conj_if_complex(other)
    g_batch = tuple(range(nb))
    identity = tuple(range(ndim))
    if layout(False) != identity and layout(True) == identity:
        return dot_general_p.bind(other, g, dimension_numbers=(
            (other_free, g_other_free), (other_batch, g_batch)))
    r = dot_general_p.bind(g, other, dimension_numbers=(
        (g_other_free, other_free), (g_batch, other_batch)))
    perm = layout(False)
    if perm == identity:
        return r
    from .structural import transpose_p

    return transpose_p.bind(r, permutation=perm)


def _ndim(x):
    return x.ndim if hasattr(x, "ndim") else 0  # a Python scalar (a traced one's value)


def _operands(a, b, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    la, ra = _free_dims(_ndim(a), lc, lb), _free_dims(_ndim(b), rc, rb)
    return (_ndim(a), lb, la, lc), (_ndim(b), rb, ra, rc)


def _transpose(i, g, a, b, dimension_numbers):
    """``dot_general`` is linear in each operand separately."""
    return (_transpose_lhs if i == 0 else _transpose_rhs)(g, a, b, dimension_numbers)


def _transpose_lhs(g, a, b, dimension_numbers):
    a_dims, b_dims = _operands(a, b, dimension_numbers)
    nb, n_afree, n_bfree = len(a_dims[1]), len(a_dims[2]), len(b_dims[2])
    g_b_free = tuple(range(nb + n_afree, nb + n_afree + n_bfree))
    return to_operand(_operand_cotangent(g, b, a_dims, b_dims, g_b_free), a)


def _transpose_rhs(g, a, b, dimension_numbers):
    a_dims, b_dims = _operands(a, b, dimension_numbers)
    nb, n_afree = len(a_dims[1]), len(a_dims[2])
    g_a_free = tuple(range(nb, nb + n_afree))
    return to_operand(_operand_cotangent(g, a, b_dims, a_dims, g_a_free), b)


dot_general_p = def_linear(Primitive("dot_general", _dot_general_impl), _transpose,
                           linear=(0, 1), arity=2, shape=_dot_general_shape)

