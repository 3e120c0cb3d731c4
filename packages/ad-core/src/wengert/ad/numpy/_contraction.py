"""Products: dot, matmul, tensordot, einsum, inner, outer, kron, vdot,
all expressed with the one `dot_general` primitive."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..primitives.contraction import dot_general_p
from ._common import as_array, normalize_axis, shape_of
from ._elementwise import conj
from ._shape import broadcast_to, reshape, transpose


def _dot_general(a: Any, b: Any, contract: tuple, batch: tuple = ((), ())) -> Any:
    return dot_general_p.bind(a, b, dimension_numbers=(
        (tuple(contract[0]), tuple(contract[1])), (tuple(batch[0]), tuple(batch[1]))))


def matmul(a: Any, b: Any) -> Any:
    a, b = as_array(a), as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: operands must be at least 1-d (use * for scalars)")
    if shape_of(a)[-1] != shape_of(b)[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {shape_of(a)} and {shape_of(b)} are not aligned "
                         f"(last axis of the first vs "
                         f"{'second-to-last' if b.ndim > 1 else 'only'} axis of the second)")
    if b.ndim <= 2 or a.ndim == 1:
        if a.ndim == 1 and b.ndim > 2:
            return _batched_matmul(a, b)
        b_contract = 0 if b.ndim == 1 else b.ndim - 2
        return _dot_general(a, b, ((a.ndim - 1,), (b_contract,)))
    return _batched_matmul(a, b)


def _batched_matmul(a: Any, b: Any) -> Any:
    squeeze_a = a.ndim == 1
    if squeeze_a:
        a = reshape(a, (1,) + shape_of(a))
    batch = np.broadcast_shapes(shape_of(a)[:-2], shape_of(b)[:-2])
    a = broadcast_to(a, batch + shape_of(a)[-2:])
    b = broadcast_to(b, batch + shape_of(b)[-2:])
    nb = len(batch)
    out = _dot_general(a, b, ((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb))))
    if squeeze_a:
        out = reshape(out, shape_of(out)[:-2] + shape_of(out)[-1:])
    return out


def dot(a: Any, b: Any) -> Any:
    a, b = as_array(a), as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return matmul(a, b)
    return _dot_general(a, b, ((a.ndim - 1,), (b.ndim - 2,)))


def vdot(a: Any, b: Any) -> Any:
    return dot(conj(reshape(a, (-1,))), reshape(b, (-1,)))


def inner(a: Any, b: Any) -> Any:
    a, b = as_array(a), as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return _dot_general(a, b, ((a.ndim - 1,), (b.ndim - 1,)))


def outer(a: Any, b: Any) -> Any:
    a, b = reshape(as_array(a), (-1,)), reshape(as_array(b), (-1,))
    return _dot_general(a, b, ((), ()))


def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    a, b = as_array(a), as_array(b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        ca, cb = tuple(range(a.ndim - n, a.ndim)), tuple(range(n))
    else:
        ca, cb = axes
        ca = (ca,) if isinstance(ca, int) else tuple(ca)
        cb = (cb,) if isinstance(cb, int) else tuple(cb)
    ca = tuple(normalize_axis(x, a.ndim) for x in ca)
    cb = tuple(normalize_axis(x, b.ndim) for x in cb)
    return _dot_general(a, b, (ca, cb))


def kron(a: Any, b: Any) -> Any:
    a, b = as_array(a), as_array(b)
    nd = max(a.ndim, b.ndim)
    a = reshape(a, (1,) * (nd - a.ndim) + shape_of(a))
    b = reshape(b, (1,) * (nd - b.ndim) + shape_of(b))
    prod = outer(a, b)  # shape a.shape + b.shape
    perm = [x for i in range(nd) for x in (i, nd + i)]
    return reshape(transpose(reshape(prod, shape_of(a) + shape_of(b)), perm),
                   tuple(p * q for p, q in zip(shape_of(a), shape_of(b))))


# ---- einsum ------------------------------------------------------------------------------
def _parse_einsum(subscripts: str, ndims: list[int]) -> tuple[list[str], str]:
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        lhs, out = subscripts.split("->")
    else:
        lhs, out = subscripts, None
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: {len(terms)} operand terms in {subscripts!r} but "
                         f"{len(ndims)} operands")
    if "." in subscripts:
        used = set(c for c in subscripts if c.isalpha())
        free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
        width = max(n - (len(t) - 3) for t, n in zip(terms, ndims) if "..." in t)
        ell = "".join(free[:width])
        terms = [t.replace("...", ell[width - (n - (len(t) - 3)):]) if "..." in t else t
                 for t, n in zip(terms, ndims)]
        if out is not None:
            out = out.replace("...", ell)
    if out is None:
        counts: dict[str, int] = {}
        for t in terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = "".join(sorted(c for c, k in counts.items() if k == 1 and c.islower())) if \
            "." not in subscripts else ell + "".join(
                sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    return terms, out


def _sublists_to_subscripts(args: tuple) -> tuple[str, tuple]:
    """``(a, [0, 1], b, [1, 2], [0, 2])`` -> ``("ab,bc->ac", (a, b))``; ``...`` is
    ``Ellipsis`` in a sublist."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def term(sublist: Any) -> str:
        out = []
        for label in sublist:
            if label is Ellipsis:
                out.append("...")
            elif isinstance(label, (int, np.integer)) and 0 <= label < len(letters):
                out.append(letters[int(label)])
            else:
                raise ValueError(f"einsum: sublist labels are integers in [0, {len(letters)}) "
                                 f"or Ellipsis, got {label!r}")
        return "".join(out)

    operands, terms = args[0:len(args) - len(args) % 2:2], args[1::2]
    subscripts = ",".join(term(t) for t in terms[:len(operands)])
    if len(args) % 2:
        subscripts += "->" + term(args[-1])
    return subscripts, operands


def _broadcast_labels(pairs: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
    """Broadcast axes of size 1 to the size their label has in another operand."""
    sizes: dict[str, int] = {}
    for x, term in pairs:
        for c, n in zip(term, shape_of(x)):
            if n != 1:
                if sizes.setdefault(c, n) != n:
                    raise ValueError(f"einsum: label {c!r} has sizes {sizes[c]} and {n}")
    out = []
    for x, term in pairs:
        shape = tuple(sizes.get(c, n) for c, n in zip(term, shape_of(x)))
        out.append((x if shape == shape_of(x) else broadcast_to(x, shape), term))
    return out


def _sum_private(x: Any, term: str, keep: set) -> tuple[Any, str]:
    """Sum out indices of one operand that appear nowhere else."""
    from ._reductions import sum

    drop = tuple(i for i, c in enumerate(term) if c not in keep)
    if not drop:
        return x, term
    return sum(x, axis=drop), "".join(c for i, c in enumerate(term) if i not in drop)


def _diagonal_of_repeats(x: Any, term: str) -> tuple[Any, str]:
    from ._shape import diagonal

    while len(set(term)) != len(term):
        c = next(ch for ch in term if term.count(ch) > 1)
        i = term.index(c)
        j = term.index(c, i + 1)
        x = diagonal(x, 0, i, j)
        term = "".join(ch for k, ch in enumerate(term) if k not in (i, j)) + c
    return x, term


def einsum(subscripts: Any, *operands: Any, optimize: Any = False) -> Any:
    """NumPy's einsum, as a chain of `dot_general`s (``optimize`` is accepted, unused).

    Takes NumPy's sublist form too (``einsum(a, [0, 1], b, [1, 2])``); a label
    of size 1 in one operand broadcasts against the others, as in NumPy.
    """
    if not isinstance(subscripts, str):
        subscripts, operands = _sublists_to_subscripts((subscripts, *operands))
    ops = [as_array(o) for o in operands]
    terms, out = _parse_einsum(subscripts, [o.ndim for o in ops])
    pairs = _broadcast_labels([_diagonal_of_repeats(x, t) for x, t in zip(ops, terms)])
    x, term = pairs[0]
    rest = pairs[1:]
    for i, (y, yterm) in enumerate(rest):
        later = set(out) | set("".join(t for _, t in rest[i + 1:]))
        x, term = _sum_private(x, term, later | set(yterm))
        y, yterm = _sum_private(y, yterm, later | set(term))
        batch = [c for c in term if c in yterm and c in later]
        contract = [c for c in term if c in yterm and c not in later]
        x = _dot_general(x, y, ((tuple(term.index(c) for c in contract),
                                 tuple(yterm.index(c) for c in contract))),
                         (tuple(term.index(c) for c in batch),
                          tuple(yterm.index(c) for c in batch)))
        term = "".join(batch) + "".join(c for c in term if c not in yterm) + "".join(
            c for c in yterm if c not in term)
    x, term = _sum_private(x, term, set(out))
    if sorted(term) != sorted(out):
        raise ValueError(f"einsum: output {out!r} is not reachable from {subscripts!r}")
    return transpose(x, [term.index(c) for c in out]) if term != out else x


# ---- NumPy 2's vector products (ufuncs: they broadcast like elementwise operations) ------------
def vecdot(x1: Any, x2: Any, axis: int = -1) -> Any:
    """``sum(conj(x1) * x2, axis)``."""
    from ._reductions import sum

    return sum(conj(x1) * x2, axis=axis)


def matvec(x1: Any, x2: Any) -> Any:
    """Matrix (..., m, n) times vector (..., n)."""
    from ._reductions import sum

    x2 = as_array(x2)
    return sum(as_array(x1) * reshape(x2, shape_of(x2)[:-1] + (1, shape_of(x2)[-1])), axis=-1)


def vecmat(x1: Any, x2: Any) -> Any:
    """Conjugated vector (..., m) times matrix (..., m, n)."""
    from ._reductions import sum

    x1 = as_array(x1)
    return sum(reshape(conj(x1), shape_of(x1) + (1,)) * as_array(x2), axis=-2)


def cross(a: Any, b: Any, axis: int = -1) -> Any:
    """Cross product of 3-vectors along ``axis`` (broadcasting the other axes)."""
    from ._shape import moveaxis, stack

    a, b = moveaxis(as_array(a), axis, -1), moveaxis(as_array(b), axis, -1)
    if shape_of(a)[-1] != 3 or shape_of(b)[-1] != 3:
        raise ValueError("cross: only 3-vectors are supported")
    parts = [a[..., (k + 1) % 3] * b[..., (k + 2) % 3] - a[..., (k + 2) % 3] * b[..., (k + 1) % 3]
             for k in range(3)]
    return moveaxis(stack(parts, axis=-1), -1, axis)
