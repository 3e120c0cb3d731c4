"""The interpreter stack: primitives, traces, tracers and `bind`.

Every transformation (reverse, forward, staging) is a *trace* at a level on a
stack that each thread has for itself (as JAX's trace state), so threads
differentiating at the same time never see each other's traces. Applying a
primitive finds the highest-level trace among its arguments and lets that
trace process it; values of lower levels are passed down untouched, so nested
transformations never confuse their perturbations.
With no tracer among the arguments, `bind` runs the primitive's array
implementation directly: that is the fast path that backward passes take.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import DerivativeDroppedError, EscapedTracerError

#: Every primitive by name. `wengert.xla` checks it lowers each entry.
registry: dict[str, Primitive] = {}


class Primitive:
    """One operation of the IR, defined once with all its rules.

    * ``impl(*arrays, **params)``: eager evaluation (numpy or cupy).
    * ``shape_rule(*avals, **params) -> Aval | tuple[Aval, ...]``: for staging.
    * ``jvps[i](tangent_i, ans, *args, **params)``: the contribution of the
      tangent of argument ``i`` to the output tangent (``None`` = zero).
    * ``vjps[i](cotangent, ans, *args, **params)``: the cotangent of argument
      ``i``. Rules are written with primitives, so they are differentiable.

    Multiple-result primitives take a single ``jvp(tangents, ans, *args)``
    returning all output tangents, and per-argument VJPs that receive the
    tuple of output cotangents. ``vjp_forward(*args, **params) -> (outs, back)``
    (optional, multiple results) replaces ``impl`` and ``vjps`` in the reverse
    pass over staged values: one forward computation that also keeps what
    ``back(cotangents)`` needs (a loop that records its carries while giving
    its outputs). ``keep_args``/``keep_ans`` tell the reverse
    pass what the VJP needs to remember (the rest is kept as shapes only).
    """

    __slots__ = ("name", "impl", "shape_rule", "jvps", "jvp", "vjps", "vjp_forward",
                 "multiple_results", "keep_args", "keep_ans", "__weakref__")

    def __init__(self, name: str, impl: Callable, *, multiple_results: bool = False,
                 keep_args: bool = True, keep_ans: bool = False) -> None:
        if name in registry:
            raise ValueError(f"primitive {name!r} is already registered")
        self.name = name
        self.impl = impl
        self.shape_rule: Callable | None = None
        self.jvps: tuple | None = None
        self.jvp: Callable | None = None
        self.vjps: tuple | None = None
        self.vjp_forward: Callable | None = None
        self.multiple_results = multiple_results
        self.keep_args = keep_args
        self.keep_ans = keep_ans
        registry[name] = self

    def def_rules(self, *, shape: Callable | None = None, jvps: tuple | None = None,
                  jvp: Callable | None = None, vjps: tuple | None = None,
                  vjp_forward: Callable | None = None) -> Primitive:
        if shape is not None:
            self.shape_rule = shape
        if jvps is not None:
            self.jvps = jvps
        if jvp is not None:
            self.jvp = jvp
        if vjps is not None:
            self.vjps = vjps
        if vjp_forward is not None:
            self.vjp_forward = vjp_forward
        return self

    @property
    def differentiable(self) -> bool:
        return self.vjps is not None

    def bind(self, *args: Any, **params: Any) -> Any:
        top = None
        level = -1
        for a in args:
            if isinstance(a, Tracer):
                t = a._trace
                if t.level > level:
                    top, level = t, t.level
        if top is None:
            return self.impl(*args, **params)
        if not top.active:
            raise escaped_tracer_error(self.name, top)
        return top.process(self, args, params)

    def __repr__(self) -> str:
        return f"Primitive({self.name})"


def is_inexact_dtype(dtype: Any) -> bool:
    """Float or complex, including the ml_dtypes floats (bfloat16, float8_*) that
    NumPy reports with kind 'V': these are the dtypes that carry derivatives."""
    dtype = np.dtype(dtype)
    return dtype.kind in "fc" or (dtype.kind == "V" and dtype.name.startswith(
        ("bfloat16", "float8", "float6", "float4")))


def is_real_float_dtype(dtype: Any) -> bool:
    return is_inexact_dtype(dtype) and np.dtype(dtype).kind != "c"


class Shaped:
    """``ndim`` and ``size`` of anything with a ``shape`` (avals and tracers)."""

    __slots__ = ()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class Aval(Shaped):
    """An abstract value: shape and dtype, what staging and shape-only saves keep."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        # Tapes build many of these: skip conversions when given the canonical types.
        self.shape = shape if type(shape) is tuple else tuple(int(d) for d in shape)
        self.dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Aval) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))

    def __repr__(self) -> str:
        return f"{self.dtype.name}[{','.join(map(str, self.shape))}]"


class WeakAval(Aval):
    """A Python number's abstract value (JAX's weak type): 0-d, and in arithmetic it
    takes the dtype of the arrays it meets, as the Python number would in NumPy
    (``lr * w32`` stays float32). `dtype` is what it has on its own. It equals the
    `Aval` of that dtype: weakness changes how results are typed, and those types
    are recorded, so graphs that agree on every type compute the same thing."""

    __slots__ = ()

    @property
    def python_type(self) -> type:
        return {"b": bool, "i": int, "u": int, "f": float, "c": complex}[self.dtype.kind]

    def __repr__(self) -> str:
        return f"weak {self.dtype.name}[]"


def aval_of(x: Any) -> Aval:
    """The abstract value of an array, tracer or Python scalar (Python numbers are weak)."""
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, Aval):
        return x
    if isinstance(x, bool):
        return Aval((), np.dtype(bool))
    if isinstance(x, (int, float, complex)) and not isinstance(x, np.generic):
        return WeakAval((), np.result_type(x))
    return Aval(np.shape(x), x.dtype)


class Trace:
    """One level of the interpreter stack. Subclasses implement `process`.

    ``active`` turns False when its transformation returns: its tracers are
    then dead, and `bind` refuses them rather than extend a finished tape.
    """

    __slots__ = ("level", "active")

    def __init__(self) -> None:
        self.level = len(trace_stack())
        self.active = True

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} does not implement process")


def escaped_tracer_error(what: str, trace: Trace) -> EscapedTracerError:
    return EscapedTracerError(
        f"{what} was applied to a traced value of a {type(trace).__name__} (level "
        f"{trace.level}) whose transformation has already returned: the tracer escaped it "
        "(stored in a global, an attribute or a closure used later). Return the value from "
        "the transformed function instead, or apply the transformation again.")


class _ThreadState(threading.local):
    """The interpreter stack of the current thread."""

    def __init__(self) -> None:
        self.stack: list[Trace] = []


_state = _ThreadState()


def trace_stack() -> list[Trace]:
    """The traces open in the current thread, innermost last."""
    return _state.stack


class trace_level:
    """Context manager that pushes a trace for the duration of a transformation."""

    __slots__ = ("trace",)

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def __enter__(self) -> Trace:
        trace_stack().append(self.trace)
        return self.trace

    def __exit__(self, *exc: object) -> None:
        self.trace.active = False
        stack = trace_stack()
        if not stack or stack[-1] is not self.trace:
            raise RuntimeError(
                "wengert.ad: the trace stack is corrupted: a transformation exited out of "
                "order (a generator or context manager suspended inside a transformation "
                "and resumed outside it, or a trace shared between threads)")
        stack.pop()


class Tracer(Shaped):
    """A value seen by a transformation. Concrete subclasses hold their trace's data.

    Array methods and operators (``x @ W``, ``x.T``, ``x[i] = v``) and the
    NumPy protocols are attached by `wengert.ad.numpy`, which owns the
    mapping from NumPy names to primitives.
    """

    __slots__ = ("_trace",)
    __array_priority__ = 1000

    @property
    def aval(self) -> Aval:
        return Aval(self.shape, self.dtype)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self) -> int:  # tracers are mutable handles, hashed by identity
        return id(self)

    def concrete_value(self, what: str) -> Any:
        """The concrete value, for Python control flow; staged tracers refuse."""
        raise NotImplementedError(f"{type(self).__name__} does not implement concrete_value")

    # Python's conversions all ask for the concrete value, naming what wanted it.
    def __bool__(self) -> bool:
        return bool(self.concrete_value("bool()"))

    def __float__(self) -> float:
        return float(self.concrete_value("float()"))

    def __int__(self) -> int:
        return int(self.concrete_value("int()"))

    def __complex__(self) -> complex:
        return complex(self.concrete_value("complex()"))

    def __index__(self) -> int:
        return int(np.asarray(self.concrete_value("an index")).__index__())

    def item(self) -> Any:
        return np.asarray(self.concrete_value("item()")).item()

    def tolist(self) -> Any:
        return np.asarray(self.concrete_value("tolist()")).tolist()


class ConcreteTracer(Tracer):
    """Base of tracers that carry a concrete value (reverse and forward mode)."""

    __slots__ = ()

    def _primal(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement _primal")

    @property
    def shape(self) -> tuple[int, ...]:
        v = self._primal()
        s = getattr(v, "shape", None)
        return np.shape(v) if s is None else s

    @property
    def dtype(self) -> np.dtype:
        v = self._primal()
        return v.dtype if hasattr(v, "dtype") else np.result_type(v)

    @property
    def aval(self) -> Aval:
        """The primal's: a staged or weakly typed primal keeps what it is."""
        v = self._primal()
        if isinstance(v, Tracer) or not hasattr(v, "dtype"):
            return aval_of(v)
        return Aval(self.shape, self.dtype)

    def concrete_value(self, what: str) -> Any:
        v = self._primal()
        while isinstance(v, Tracer):
            v = v.concrete_value(what)
        return v

    # A Python number has no derivative: converting a float tracer would silently
    # drop it, so these refuse. bool(), int() and indexing stay (control flow).
    def __float__(self) -> float:
        return float(self._number("float()"))

    def __complex__(self) -> complex:
        return complex(self._number("complex()"))

    def item(self) -> Any:
        return np.asarray(self._number("item()")).item()

    def tolist(self) -> Any:
        return np.asarray(self._number("tolist()")).tolist()

    # Piecewise constant, like int(): math.floor/ceil/trunc lose no derivative.
    def __floor__(self) -> int:
        return math.floor(self.concrete_value("math.floor()"))

    def __ceil__(self) -> int:
        return math.ceil(self.concrete_value("math.ceil()"))

    def __trunc__(self) -> int:
        return math.trunc(self.concrete_value("math.trunc()"))

    def _number(self, what: str) -> Any:
        if is_inexact_dtype(self.dtype):
            raise DerivativeDroppedError(
                f"{what} of a differentiated value would drop its derivative (math.sin(x) "
                "and float(x) give Python numbers, which carry none). Use the array "
                "functions instead (numpy.sin(x) or wengert.ad.numpy.sin(x) are "
                "differentiated); for a value meant as a constant, convert "
                "wengert.ad.stop_gradient(x), or do it outside the differentiated function.")
        return self.concrete_value(what)
