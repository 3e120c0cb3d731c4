"""Tracers as NumPy arrays: operators, methods, in-place updates and the
NEP-13/NEP-18 protocols, so unmodified NumPy code runs on traced values.

A traced array is a mutable *handle* to an immutable value: ``a[i] = v`` and
``a += b`` compute a new value functionally and rebind the handle. NumPy
views are not tracked: a write through a slice of ``a`` does not reach ``a``.
"""

from __future__ import annotations

import copy
import dis
import sys
import types
from typing import Any

import numpy as np

from .. import errors
from .._core import ConcreteTracer, Tracer, escaped_tracer_error, is_inexact_dtype
from .._mutation import rebind as _rebind
from ..primitives import elementwise as ew
from ..primitives import structural as st

_STORE_SUBSCR = dis.opmap["STORE_SUBSCR"]


def _index_update(x: Any, index: Any, values: Any, prim) -> Any:
    spec, arrays = st.encode_index(index)
    return prim.bind(x, values, *arrays, spec=spec)


def _getitem(self: Tracer, index: Any) -> Any:
    if isinstance(index, Tracer) and index.dtype == np.bool_ or (
            isinstance(index, np.ndarray) and index.dtype == np.bool_ and index.ndim > 0):
        index = index if isinstance(index, np.ndarray) else np.asarray(
            index.concrete_value("a boolean mask"))
    spec, arrays = st.encode_index(index)
    return st.getitem_p.bind(self, *arrays, spec=spec)


def _setitem(self: Tracer, index: Any, value: Any) -> None:
    new = _index_update(self, index, value, st.index_update_p)
    if not _rebind(self, new):
        raise errors.TracerMutationError(
            "a[i] = v: the value v is traced by an inner transformation but the array a "
            "belongs to an outer one, so a cannot be updated in place. Write "
            "a = a.at[i].set(v) instead.")


class _IndexUpdater:
    """``x.at[i].set(v)`` / ``.add(v)``: functional updates that return a new array."""

    __slots__ = ("x", "index")

    def __init__(self, x: Any, index: Any = None) -> None:
        self.x, self.index = x, index

    def __getitem__(self, index: Any) -> _IndexUpdater:
        return _IndexUpdater(self.x, index)

    def set(self, values: Any) -> Any:
        return _index_update(self.x, self.index, values, st.index_update_p)

    def add(self, values: Any) -> Any:
        return _index_update(self.x, self.index, values, st.scatter_add_p)

    def get(self) -> Any:
        return self.x[self.index]


def _inplace(op):
    def method(self: Tracer, other: Any) -> Any:
        new = op(self, other)
        return self if _rebind(self, new) else new

    return method


def _reflected(op):
    return lambda self, other: op(other, self)


def _method(fn):
    """A plain function for the class dict (bound methods of primitives are not descriptors)."""
    return lambda *args: fn(*args)


_NO_PARAMS: dict = {}


def _binary_methods(prim):
    """``x op y`` and ``y op x``: with a constant ``y`` they go straight to ``x``'s
    trace, skipping `bind`'s search (the common case in user code)."""
    def apply(a: Any, b: Any, traced: Tracer) -> Any:
        if isinstance(a, Tracer) and isinstance(b, Tracer):
            return prim.bind(a, b)
        trace = traced._trace
        if not trace.active:
            raise escaped_tracer_error(prim.name, trace)
        return trace.process(prim, (a, b), _NO_PARAMS)

    return (lambda self, other: apply(self, other, self),
            lambda self, other: apply(other, self, self))


def _refuse_array(self: Tracer, dtype: Any = None, copy: Any = None) -> Any:
    raise errors.TracerArrayConversionError(
        "a traced value was converted to a plain NumPy array (np.asarray, np.array, or "
        "writing it into an array that is not traced, such as one made by np.zeros or "
        "wnp.zeros), which would silently drop its derivative. "
        + _conversion_hint(sys._getframe(1)))


def _conversion_hint(frame: Any) -> str:
    """What to call instead, judged from who converted: ``np.r_``/``np.c_`` and SciPy's
    Python functions convert their inputs, and no NumPy protocol lets a tracer intercept
    that, so name the differentiable twin."""
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back  # our own frames (__array__ and friends)
    outermost_scipy = None
    while frame is not None:  # the library frames directly above the conversion
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] not in ("numpy", "scipy"):
            break
        if frame.f_code.co_name == "__getitem__" and module.startswith("numpy.lib"):
            return "np.r_[...] / np.c_[...] convert their items; use wengert.ad.numpy.r_ / .c_."
        if module.startswith("scipy."):
            kind = type(frame.f_locals.get("self")).__name__  # scipy.stats: e.g. norm_gen
            dist = kind.removesuffix("_gen") if module.startswith("scipy.stats") and \
                kind.endswith("_gen") else None
            sub = f"stats.{dist}" if dist else module.split(".")[1]
            outermost_scipy = (module, sub, frame.f_code.co_name)
        frame = frame.f_back
    if outermost_scipy is not None:
        module, sub, name = outermost_scipy
        twin = f"wengert.ad.scipy.{sub}.{name}"
        try:
            import importlib

            found = hasattr(importlib.import_module(f"wengert.ad.scipy.{sub}"), name)
        except ImportError:
            found = False
        return (f"scipy's {name} (in {module}) converts its inputs to NumPy arrays; "
                + (f"call {twin} instead, which is differentiable." if found else
                   "wengert.ad.scipy has no differentiable version of it: write it with "
                   "wengert.ad.numpy, or give it a rule with @wengert.ad.adjoint."))
    return ("Build the array from the traced values with wengert.ad.numpy instead: "
            "wnp.stack([...]) / wnp.concatenate, wnp.where(mask, v, a), or a functional "
            "update such as wengert.ad.lax.dynamic_update_slice(a, v, starts); or use "
            "ad.stop_gradient(x) if no derivative is wanted.")


def _array(self: Tracer, dtype: Any = None, copy: Any = None) -> Any:
    """Integer and boolean values carry no derivative: as in NumPy they may index
    plain arrays or be stored in them (eagerly). Float values are refused."""
    if isinstance(self, ConcreteTracer) and not is_inexact_dtype(self.dtype):
        return np.asarray(self.concrete_value("a conversion to a NumPy array"), dtype)
    _refuse_array(self)


def _guard_scalar(convert):
    """Refuse scalar conversion when NumPy is storing a float tracer into a plain array."""
    def method(self: Tracer) -> Any:
        frame = sys._getframe(1)
        if frame.f_code.co_code[frame.f_lasti] == _STORE_SUBSCR and \
                is_inexact_dtype(self.dtype):
            _refuse_array(self)
        return convert(self)

    return method


def _array_ufunc(self: Tracer, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any):
    from . import _dispatch

    return _dispatch.ufunc(ufunc, method, inputs, kwargs)


def _array_function(self: Tracer, func: Any, types_: Any, args: Any, kwargs: Any):
    from . import _dispatch

    return _dispatch.function(func, args, kwargs)


def install(ns: types.ModuleType) -> None:
    """Attach the array interface to `Tracer`, implemented by namespace ``ns``."""
    T = Tracer
    T.__neg__ = _method(ew.neg_p.bind)
    T.__pos__ = ns.positive
    T.__abs__ = _method(ew.abs_p.bind)
    for name, prim in {"add": ew.add_p, "sub": ew.sub_p, "mul": ew.mul_p,
                       "truediv": ew.div_p, "pow": ew.pow_p, "and": ew.bitwise_and_p,
                       "or": ew.bitwise_or_p, "xor": ew.bitwise_xor_p,
                       "lshift": ew.left_shift_p, "rshift": ew.right_shift_p}.items():
        forward, reflected = _binary_methods(prim)
        setattr(T, f"__{name}__", forward)
        setattr(T, f"__r{name}__", reflected)
        setattr(T, f"__i{name}__", _inplace(prim.bind))
    for name, op in {"matmul": ns.matmul, "mod": ns.mod,
                     "floordiv": ns.floor_divide}.items():
        setattr(T, f"__{name}__", op)
        setattr(T, f"__r{name}__", _reflected(op))
        setattr(T, f"__i{name}__", _inplace(op))
    for name, op in {"eq": ew.eq_p.bind, "ne": ew.ne_p.bind, "lt": ew.lt_p.bind,
                     "le": ew.le_p.bind, "gt": ew.gt_p.bind, "ge": ew.ge_p.bind}.items():
        setattr(T, f"__{name}__", _method(op))
    T.__invert__ = _method(ew.invert_p.bind)
    T.__getitem__ = _getitem
    T.__setitem__ = _setitem
    T.at = property(lambda self: _IndexUpdater(self))
    T.__array__ = _array
    T.__dlpack__ = lambda self, *args, **kwargs: _refuse_array(self)
    T.flags = property(_refuse_array)  # a traced value has no memory layout
    T.__array_ufunc__ = _array_ufunc
    T.__array_function__ = _array_function
    T.T = property(lambda self: ns.transpose(self))
    T.mT = property(lambda self: ns.swapaxes(self, -1, -2))
    T.real = property(_method(ew.real_p.bind))
    T.imag = property(_method(ew.imag_p.bind))
    T.conj = T.conjugate = _method(ew.conj_p.bind)
    T.reshape = lambda self, *shape, order="C": ns.reshape(
        self, shape[0] if len(shape) == 1 else shape, order)
    T.transpose = lambda self, *axes: ns.transpose(
        self, (axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes) or None)
    T.astype = lambda self, dtype, copy=True: ns.astype(self, dtype)
    # A new handle: a later in-place update of ``self`` must not reach the copy.
    T.copy = lambda self: self + 0 if is_inexact_dtype(self.dtype) else copy.copy(self)
    T.ravel = T.flatten = lambda self: ns.ravel(self)
    T.dot = lambda self, other: ns.dot(self, other)
    for name in ("sum", "mean", "prod", "max", "min", "var", "std", "argmax", "argmin",
                 "cumsum", "cumprod", "squeeze", "swapaxes", "clip", "all", "any", "trace",
                 "diagonal", "repeat", "argsort", "round", "take"):
        setattr(T, name, getattr(ns, name))
    T.__round__ = lambda self, ndigits=None: ns.round(self, ndigits or 0)
    T.__divmod__ = lambda self, other: ns.divmod(self, other)
    T.__rdivmod__ = lambda self, other: ns.divmod(other, self)
    # In-place methods rebind the handle, like ``a[...] = v``.
    T.sort = lambda self, axis=-1, kind=None: _rebind(self, ns.sort(self, axis)) and None
    T.fill = lambda self, value: _setitem(self, Ellipsis, value)
    for name, convert in (("__float__", ConcreteTracer.__float__),
                          ("__int__", ConcreteTracer.__int__),
                          ("__complex__", ConcreteTracer.__complex__),
                          ("__index__", ConcreteTracer.__index__)):
        setattr(ConcreteTracer, name, _guard_scalar(convert))
