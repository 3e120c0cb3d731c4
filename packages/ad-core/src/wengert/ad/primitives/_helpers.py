"""Helpers every rule shares: broadcasting un-reduction, the complex
convention, shape rules for the common families, and the rules of linear
primitives derived from one transpose rule.

Complex convention (descent-ready, as Zygote and PyTorch): a VJP is the
adjoint with respect to the real inner product ``Re(sum(conj(a) * b))``. For a
holomorphic ``f`` the pullback of ``g`` is ``g * conj(f'(z))``; `to_operand`
then makes the cotangent of a real operand real.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .._core import Aval, ConcreteTracer, Primitive, WeakAval, aval_of, registry


def shape_of(x: Any) -> tuple[int, ...]:
    s = getattr(x, "shape", None)
    return () if s is None else s


def is_complex(x: Any) -> bool:
    if isinstance(x, complex):
        return True
    dt = getattr(x, "dtype", None)
    return dt is not None and dt.kind == "c"


def conj_if_complex(x: Any) -> Any:
    if is_complex(x):
        from .elementwise import conj_p

        return conj_p.bind(x)
    return x


def to_operand(g: Any, x: Any) -> Any:
    """Sum a cotangent back to operand ``x``'s shape; make it real if ``x`` is real."""
    shape = getattr(x, "shape", ())
    gshape = getattr(g, "shape", ())
    if gshape != shape:
        # By name: the modules defining these import this one (and a function-level
        # import costs more than the lookup on this path every backward pass takes).
        lead = len(gshape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, d in enumerate(shape) if d == 1 and gshape[i + lead] != 1)
        if axes:
            g = registry["reduce_sum"].bind(g, axes=axes)
        if shape_of(g) != shape:
            g = registry["reshape"].bind(g, new_sizes=shape)
    gdtype = getattr(g, "dtype", None)
    if gdtype is not None and gdtype.kind == "c" and not is_complex(x):
        g = registry["real"].bind(g)
    return g


def is_cupy(x: Any) -> bool:
    """A CuPy array, which NumPy must not try to convert."""
    return type(x).__module__.split(".")[0] == "cupy"


def on_device_of(like: Any, constant: Any) -> Any:
    """A NumPy constant moved to the device of ``like`` (CuPy refuses NumPy operands).

    Staged values have no device yet: their constants stay NumPy arrays."""
    while isinstance(like, ConcreteTracer):
        like = like._primal()
    if is_cupy(like):
        import cupy

        return cupy.asarray(constant)
    return constant


def zeros(shape: tuple[int, ...], dtype: Any, like: Any = None) -> Any:
    """Zeros as a broadcast scalar: free eagerly, one small equation when staged
    (on the device of ``like``)."""
    from .structural import broadcast_in_dim_p

    return broadcast_in_dim_p.bind(on_device_of(like, np.zeros((), dtype)), shape=tuple(shape),
                                   broadcast_dimensions=())


def holomorphic(deriv):
    """VJP and JVP of a unary holomorphic function from its derivative ``deriv(ans, x)``."""
    def vjp(g, ans, x):
        d = deriv(ans, x)
        if is_complex(d):
            d = conj_if_complex(d)
        elif not is_complex(g) and shape_of(g) == shape_of(x):
            return g * d  # real and unbroadcast: nothing for to_operand to do
        return to_operand(g * d, x)

    def jvp(t, ans, x):
        return t * deriv(ans, x)

    return (vjp,), (jvp,)


@functools.lru_cache(maxsize=4096)
def _elementwise_dtype(impl, kinds: tuple) -> np.dtype:
    samples = [np.ones((), k) if isinstance(k, np.dtype) else k(1) for k in kinds]
    with np.errstate(all="ignore"):
        return np.result_type(impl(*samples))


def dtype_key(x: Any) -> Any:
    """What decides ``x``'s part in NumPy's promotion: the Python type of a (weak)
    number, else the dtype."""
    if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
        return type(x)
    aval = aval_of(x)
    return aval.python_type if type(aval) is WeakAval else aval.dtype


def elementwise_shape(prim: Primitive):
    """Shape rule for an elementwise primitive: broadcast shapes, numpy's dtype.

    Weak numbers only meeting weak numbers give a weak number (``2 * i``)."""
    def rule(*args, **params):
        impl = functools.partial(prim.impl, **params) if params else prim.impl
        shape = np.broadcast_shapes(*(shape_of(a) for a in args))
        keys = tuple(dtype_key(a) for a in args)
        dtype = _elementwise_dtype(impl, keys)
        if not shape and dtype.kind in "iufc" and all(isinstance(k, type) for k in keys):
            return WeakAval(shape, dtype)
        return Aval(shape, dtype)

    rule.elementwise = True  # batching derives the rule of every such primitive
    return rule


class Variadic:
    """Rule table for primitives with any number of operands: ``fn(i, ...)``."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __getitem__(self, i: int):
        fn = self.fn
        return lambda *a, **k: fn(i, *a, **k)


#: The transpose rule of every primitive defined by `def_linear`, by name.
linear_transposes: dict[str, Callable] = {}


def def_linear(prim: Primitive, transpose: Callable, *, linear: tuple[int, ...] | None = (0,),
               jointly: bool = False, arity: int | None = 1,
               shape: Callable | None = None, make_zeros: Callable | None = None) -> Primitive:
    """The JVP and VJP rules of a primitive that is linear in the operands ``linear``
    (``None``: all of them), derived from ONE transpose rule, so they agree by
    construction.

    ``transpose(i, ct, *operands, **params)`` is the cotangent of linear operand ``i``
    (linear operands are read for their shapes only, unless the primitive is
    bilinear). The JVP is the primitive itself applied to the tangent; the other
    linear operands are zeroed when the primitive is linear in them ``jointly``
    (concatenate, pad, scatters), kept when it is linear in each one separately
    (``dot_general``, convolution). ``arity`` (``None``: any number) lets a
    fixed-arity primitive keep plain rule tuples, the cheapest to look up.
    ``make_zeros(shape, dtype, like)`` makes those zeros (default `zeros`).
    """
    new_zeros = zeros if make_zeros is None else make_zeros

    def is_linear(i: int) -> bool:
        return linear is None or i in linear

    def jvp(i: int, t: Any, ans: Any, *args: Any, **params: Any) -> Any:
        if not is_linear(i):
            return None
        operands = list(args)
        operands[i] = t
        if jointly:
            for j, a in enumerate(args):
                if j != i and is_linear(j):  # a scalar zero costs no operation
                    shape = shape_of(a)
                    operands[j] = np.dtype(t.dtype).type(0) if not shape else \
                        new_zeros(shape, t.dtype, t)
        return prim.bind(*operands, **params)

    def vjp(i: int, g: Any, ans: Any, *args: Any, **params: Any) -> Any:
        return transpose(i, g, *args, **params) if is_linear(i) else None

    def vjp_of(i: int) -> Callable:
        # One closure per operand calling the transpose directly: the backward
        # sweep calls it once per linear operand of every taped application.
        return lambda g, ans, *args, **params: transpose(i, g, *args, **params)

    linear_transposes[prim.name] = transpose
    if arity is None:
        jvps, vjps = Variadic(jvp), Variadic(vjp)
    else:
        jvps = tuple(Variadic(jvp)[i] if is_linear(i) else None for i in range(arity))
        vjps = tuple(vjp_of(i) if is_linear(i) else None for i in range(arity))
    return prim.def_rules(shape=shape, jvps=jvps, vjps=vjps)
