"""`dot_general`: XLA's tensor contraction, the one primitive behind `dot`,
`matmul`, `tensordot`, `inner`, `outer` and `einsum` in `wengert.ad.numpy`.

Output layout (as XLA): batch dimensions, then the free dimensions of the left
operand, then those of the right. The VJPs contract the cotangent with the
other operand and transpose back to the operand's own dimension order.
"""

from __future__ import annotations

import numpy as np

from .._core import Aval, Primitive
from ._helpers import conj_if_complex, to_operand


def _free_dims(ndim, contract, batch):
    return tuple(d for d in range(ndim) if d not in contract and d not in batch)


def _dot_general_impl(a, b, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if not lb and a.ndim == 2 and b.ndim == 2 and lc == (1,) and rc == (0,):
        return a @ b
    la, ra = _free_dims(a.ndim, lc, lb), _free_dims(b.ndim, rc, rb)
    ash, bsh = a.shape, b.shape
    batch = [ash[d] for d in lb]
    m = int(np.prod([ash[d] for d in la], dtype=np.int64))
    k = int(np.prod([ash[d] for d in lc], dtype=np.int64))
    n = int(np.prod([bsh[d] for d in ra], dtype=np.int64))
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


def _transpose_back(result, ndim, batch, free, contract, other_contract):
    """Permute ``result`` (batch, free, remaining-other) into an operand's own order."""
    remaining = sorted(other_contract)
    position = {}
    for i, d in enumerate(batch):
        position[d] = i
    for j, d in enumerate(free):
        position[d] = len(batch) + j
    for c, oc in zip(contract, other_contract):
        position[c] = len(batch) + len(free) + remaining.index(oc)
    perm = tuple(position[d] for d in range(ndim))
    if perm == tuple(range(ndim)):
        return result
    from .structural import transpose_p

    return transpose_p.bind(result, permutation=perm)


def _vjp_lhs(g, ans, a, b, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    a_ndim, b_ndim = a.ndim, b.ndim
    la, ra = _free_dims(a_ndim, lc, lb), _free_dims(b_ndim, rc, rb)
    nb = len(lb)
    g_b_free = tuple(range(nb + len(la), nb + len(la) + len(ra)))
    dims = ((g_b_free, ra), (tuple(range(nb)), rb))
    r = dot_general_p.bind(g, conj_if_complex(b), dimension_numbers=dims)
    return to_operand(_transpose_back(r, a_ndim, lb, la, lc, rc), a)


def _vjp_rhs(g, ans, a, b, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    a_ndim, b_ndim = a.ndim, b.ndim
    la, ra = _free_dims(a_ndim, lc, lb), _free_dims(b_ndim, rc, rb)
    nb = len(lb)
    g_a_free = tuple(range(nb, nb + len(la)))
    dims = ((g_a_free, la), (tuple(range(nb)), lb))
    r = dot_general_p.bind(g, conj_if_complex(a), dimension_numbers=dims)
    return to_operand(_transpose_back(r, b_ndim, rb, ra, rc, lc), b)


dot_general_p = Primitive("dot_general", _dot_general_impl)
dot_general_p.def_rules(
    shape=_dot_general_shape,
    vjps=(_vjp_lhs, _vjp_rhs),
    jvps=(lambda t, ans, a, b, dimension_numbers:
          dot_general_p.bind(t, b, dimension_numbers=dimension_numbers),
          lambda t, ans, a, b, dimension_numbers:
          dot_general_p.bind(a, t, dimension_numbers=dimension_numbers)))

