"""The transformations users call: gradient, pullback, jvp, jacobians,
custom rules, stop_gradient. Each opens a trace level, wraps the inputs'
leaves, runs the function, and unwraps the outputs.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._core import (ConcreteTracer, Primitive, Tracer, escaped_tracer_error, is_inexact_dtype,
                    is_real_float_dtype, trace_level)
from ._forward import JVPTrace, JVPTracer
from ._reverse import ReverseTrace, ReverseTracer
from .errors import TracerArrayConversionError, call_user_function
from .tree import tree_flatten, tree_map, tree_unflatten

# ---- leaves ----------------------------------------------------------------------------------


def _dtype(x: Any) -> np.dtype | None:
    if isinstance(x, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(x, (int, float, complex)):
        return np.result_type(x)
    dt = getattr(x, "dtype", None)
    return np.dtype(dt) if dt is not None else None


def is_differentiable(x: Any) -> bool:
    """Float and complex arrays/scalars get derivatives; ints, bools, others get ``None``."""
    if type(x) is np.ndarray and x.dtype.kind in "fc":  # the common case
        return True
    dt = _dtype(x)
    return dt is not None and is_inexact_dtype(dt)


def _refuse_object_numbers(leaves: Sequence[Any], where: str) -> None:
    """An object array of floats would silently get a ``None`` gradient: refuse it."""
    for x in leaves:
        if isinstance(x, np.ndarray) and x.dtype.kind == "O" and any(
                isinstance(e, (float, complex, np.inexact)) for e in x.flat):
            raise TypeError(f"{where}: an input is a NumPy array of dtype object holding "
                            f"floats (shape {x.shape}); it cannot be differentiated. Convert "
                            "it first: np.asarray(x, dtype=float)")


def _check_one_backend(leaves: Sequence[Any], where: str) -> None:
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return
    kinds = {("cupy" if isinstance(x, cupy.ndarray) else "numpy") for x in leaves
             if isinstance(x, (np.ndarray, cupy.ndarray)) and getattr(x, "ndim", 0) > 0}
    if len(kinds) > 1:
        raise TypeError(f"{where}: the inputs mix NumPy and CuPy arrays; move them to one "
                        "device first with wengert.ad.to_device(tree, 'cpu' or 'gpu')")


def _writable(x: Any) -> Any:
    """Backward passes may return broadcast views; hand users ordinary arrays."""
    if type(x) is np.ndarray and not x.flags.writeable:
        return np.array(x)
    return x


def _unwrap(trace: Any, x: Any) -> Any:
    if isinstance(x, Tracer) and x._trace is trace:
        return x.value if isinstance(x, ReverseTracer) else x.primal
    return x


def _zeros_like_leaf(x: Any) -> Any:
    if isinstance(x, (float, complex)):
        return type(x)(0)
    from .numpy import zeros_like

    return zeros_like(x)


def _as_python_like(g: Any, like: Any) -> Any:
    """A gradient has its argument's type: a Python float input gets a Python float
    back (as Zygote), a float32 array a float32 array even where the computation
    promoted to float64 (so optimiser state stays in the parameters' precision)."""
    if isinstance(like, (float, complex)) and not isinstance(g, Tracer):
        return type(like)(g)
    want, got = _dtype(like), _dtype(g)
    if want is not None and got is not None and want != got and hasattr(g, "astype") \
            and not (got.kind == "c" and want.kind != "c"):
        g = g.astype(want)
    return _writable(g)


# ---- reverse mode ---------------------------------------------------------------------------


def _trace_reverse(f: Callable, args: tuple, argnums: Sequence[int]):
    trace = ReverseTrace()
    structures = {}
    flat = {i: tree_flatten(args[i]) for i in argnums}
    all_leaves = [x for leaves, _ in flat.values() for x in leaves]
    _check_one_backend(all_leaves, "gradient")
    _refuse_object_numbers(all_leaves, "gradient")
    with trace_level(trace):
        wrapped = list(args)
        for i, (leaves, treedef) in flat.items():
            new = [trace.new_leaf(x) if is_differentiable(x) else x for x in leaves]
            # Tape slots, kept apart from the tracers: an input updated in place inside f
            # (``x[0] = v``, ``x += 1``) rebinds its handle to a later tape entry.
            slots = [t.idx if isinstance(t, ReverseTracer) else None for t in new]
            structures[i] = (treedef, leaves, slots)
            wrapped[i] = tree_unflatten(treedef, new)
        out = call_user_function(f, wrapped)
    return trace, out, structures


def _arg_cotangents(trace: ReverseTrace, structures: dict, leaf_cts: list) -> tuple:
    results = []
    for treedef, leaves, slots in structures.values():
        grads = []
        for x, slot in zip(leaves, slots):
            if slot is None:
                grads.append(None)
            else:
                g = leaf_cts[slot]
                grads.append(_zeros_like_leaf(x) if g is None else _as_python_like(g, x))
        results.append(tree_unflatten(treedef, grads))
    return tuple(results)


def _check_cotangent(ct: Any, y: Any, k: int) -> Any:
    ys, cs = np.shape(y) if not isinstance(y, Tracer) else y.shape, \
        np.shape(ct) if not isinstance(ct, Tracer) else ct.shape
    if ys != cs:
        raise ValueError(f"pullback: the cotangent for output leaf {k} has shape {cs}, but "
                         f"that output has shape {ys}; pass a cotangent shaped like the output")
    ydt, cdt = _dtype(y), _dtype(ct)
    if ydt is not None and cdt is not None and ydt != cdt:
        if cdt.kind == "c" and ydt.kind != "c":
            raise TypeError(f"pullback: output leaf {k} is real but its cotangent is complex")
        from .numpy import astype

        ct = astype(ct, ydt) if isinstance(ct, Tracer) else np.asarray(ct).astype(ydt)
    return ct


def pullback(f: Callable, *args: Any) -> tuple[Any, Callable]:
    """``y, back = pullback(f, *args)``; ``back(dy)`` returns one cotangent per argument.

    ``back`` may be called many times. Cotangents of integer/bool leaves are ``None``.
    """
    trace, out, structures = _trace_reverse(f, args, range(len(args)))
    out_leaves, out_def = tree_flatten(out)
    y = tree_unflatten(out_def, [_unwrap(trace, o) for o in out_leaves])

    def back(dy: Any) -> tuple:
        dy_leaves, dy_def = tree_flatten(dy)
        if dy_def != out_def:
            raise ValueError(f"pullback: the cotangent's structure {dy_def} does not match the "
                             f"output's structure {out_def}")
        seeds = []
        for k, (o, ct) in enumerate(zip(out_leaves, dy_leaves)):
            ct = _check_cotangent(ct, _unwrap(trace, o), k)
            if isinstance(o, ReverseTracer) and o._trace is trace:
                seeds.append((o, ct))
        return _arg_cotangents(trace, structures, trace.backward(seeds))

    return y, back


def _scalar_seed(trace: ReverseTrace, out: Any, fname: str) -> list:
    leaves, _ = tree_flatten(out)
    if len(leaves) != 1:
        raise TypeError(f"{fname}: the function must return a real scalar, but it returned "
                        f"{len(leaves)} values ({type(out).__name__}); use pullback or "
                        "jacobian for several outputs")
    (o,) = leaves
    dt = _dtype(o)
    if dt is None or not (dt.kind in "biu" or is_real_float_dtype(dt)):
        kind = "a complex value" if dt is not None and dt.kind == "c" else \
            f"a {type(o).__name__}"
        raise TypeError(f"{fname}: the function must return a real scalar, but it returned "
                        f"{kind}; for complex outputs take abs/real first or use pullback")
    shape = o.shape if isinstance(o, Tracer) else np.shape(o)
    if shape not in ((), (1,)):
        raise TypeError(f"{fname}: the function must return a real scalar, but it returned an "
                        f"array of shape {shape}; reduce it (e.g. .sum()) or use jacobian")
    if not (isinstance(o, ReverseTracer) and o._trace is trace):
        return []
    value = o.value
    while isinstance(value, ConcreteTracer):  # nested: find the array underneath
        value = value._primal()
    seed = np.ones(shape, dt if is_real_float_dtype(dt) else np.float64)
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(value, cupy.ndarray):
        seed = cupy.asarray(seed)
    return [(o, seed)]


def resolve_argnums(argnums: int | Sequence[int], argnum: int | Sequence[int] | None
                    ) -> int | Sequence[int]:
    """``argnum`` is autograd's spelling of ``argnums``, accepted as an alias."""
    if argnum is None:
        return argnums
    if argnums != 0:
        raise TypeError("pass argnums or its alias argnum (autograd's spelling), not both")
    return argnum


def _normalize_argnums(argnums: int | Sequence[int], nargs: int) -> tuple[tuple[int, ...], bool]:
    single = isinstance(argnums, (int, np.integer))
    nums = (argnums,) if single else tuple(argnums) if isinstance(argnums, Sequence) and \
        not isinstance(argnums, str) else None
    if nums is None or any(isinstance(n, bool) or not isinstance(n, (int, np.integer))
                           for n in nums):
        raise TypeError(f"argnums must be an int or a tuple of ints (positions of positional "
                        f"arguments), got {argnums!r}; to differentiate with respect to a "
                        "named argument, pass it positionally or close over the others")
    for n in nums:
        if not -nargs <= n < nargs:
            raise ValueError(f"argnums {n} is out of range for a call with {nargs} "
                             "positional arguments")
    return tuple(n % nargs for n in nums), single


def _value_and_grads(f: Callable, args: tuple, argnums: Sequence[int], fname: str):
    trace, out, structures = _trace_reverse(f, args, argnums)
    seeds = _scalar_seed(trace, out, fname)
    grads = _arg_cotangents(trace, structures, trace.backward(seeds))
    value = tree_map(lambda o: _unwrap(trace, o), out)
    return value, grads


def gradient(f: Callable, *args: Any) -> tuple:
    """Zygote's ``gradient``: a tuple with one gradient per positional argument.

    ``f`` must return a real scalar. Gradients have the arguments' structure
    (a dataclass model gives a dataclass of gradients); integer and boolean
    leaves get ``None``. For complex inputs the gradient is
    ``df/dx + i df/dy`` (the steepest-ascent direction, as Zygote and
    PyTorch; JAX returns its conjugate).
    """
    return _value_and_grads(f, args, range(len(args)), "gradient")[1]


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0, *,
                   argnum: int | Sequence[int] | None = None) -> Callable:
    """``f`` -> a function returning ``(f(*args), gradient w.r.t. argnums)``."""
    argnums = resolve_argnums(argnums, argnum)

    @functools.wraps(f)
    def wrapped(*args: Any) -> tuple[Any, Any]:
        nums, single = _normalize_argnums(argnums, len(args))
        value, grads = _value_and_grads(f, args, nums, "value_and_grad")
        return value, grads[0] if single else grads

    return wrapped


def grad(f: Callable, argnums: int | Sequence[int] = 0, *,
         argnum: int | Sequence[int] | None = None) -> Callable:
    """``f`` -> its gradient function with respect to ``argnums``."""
    vg = value_and_grad(f, resolve_argnums(argnums, argnum))

    @functools.wraps(f)
    def wrapped(*args: Any) -> Any:
        return vg(*args)[1]

    return wrapped


def elementwise_grad(f: Callable, argnums: int | Sequence[int] = 0, *,
                     argnum: int | Sequence[int] | None = None) -> Callable:
    """autograd's ``elementwise_grad``: the gradient of ``sum(f(*args))``, one pullback
    seeded with ones. For ``f`` acting elementwise it is each output entry's
    derivative with respect to its own input entry (for other ``f``, the sum's)."""
    argnums = resolve_argnums(argnums, argnum)

    @functools.wraps(f)
    def wrapped(*args: Any) -> Any:
        nums, single = _normalize_argnums(argnums, len(args))
        trace, out, structures = _trace_reverse(f, args, nums)
        seeds = [(o, _ones_like_value(o)) for o in tree_flatten(out)[0]
                 if isinstance(o, ReverseTracer) and o._trace is trace]
        grads = _arg_cotangents(trace, structures, trace.backward(seeds))
        return grads[0] if single else grads

    return wrapped


def _ones_like_value(o: ReverseTracer) -> Any:
    """A cotangent of ones for ``o``, on the device of the array underneath."""
    value = o.value
    while isinstance(value, ConcreteTracer):  # nested: find the array underneath
        value = value._primal()
    return np.ones_like(value) if hasattr(value, "shape") else type(value)(1)


def _is_none(x: Any) -> bool:
    return x is None


# ---- forward mode ---------------------------------------------------------------------------


def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Forward mode: ``(f(*primals), J @ tangents)``. Tangents mirror the primals' trees."""
    for name, value in (("primals", primals), ("tangents", tangents)):
        if not isinstance(value, (tuple, list)):
            raise TypeError(f"jvp: {name} must be a tuple with one entry per argument of f, "
                            f"got {type(value).__name__}; write jvp(f, (x,), (dx,))")
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    _check_one_backend(tree_flatten(primals)[0] + tree_flatten(tangents)[0], "jvp")
    _refuse_object_numbers(tree_flatten(primals)[0], "jvp")
    trace = JVPTrace()
    with trace_level(trace):
        wrapped = []
        for k, (p, t) in enumerate(zip(primals, tangents)):
            # None is a leaf here, so a non-float primal leaf may take a None tangent.
            p_leaves, p_def = tree_flatten(p, is_leaf=_is_none)
            t_leaves, t_def = tree_flatten(t, is_leaf=_is_none)
            if p_def != t_def:
                raise ValueError(f"jvp: tangent {k} has structure {t_def}, but its primal "
                                 f"has {p_def}")
            new = []
            for j, (pl, tl) in enumerate(zip(p_leaves, t_leaves)):
                if tl is None or not is_differentiable(pl):
                    new.append(pl)
                    continue
                if np.shape(tl) != np.shape(pl) and not isinstance(tl, Tracer):
                    raise ValueError(f"jvp: tangent {k} leaf {j} has shape {np.shape(tl)}, "
                                     f"but its primal has shape {np.shape(pl)}")
                new.append(JVPTracer(trace, pl, tl))
            wrapped.append(tree_unflatten(p_def, new))
        out = call_user_function(f, wrapped)
    out_leaves, out_def = tree_flatten(out)
    ys, dys = [], []
    for o in out_leaves:
        if isinstance(o, JVPTracer) and o._trace is trace:
            ys.append(o.primal)
            dys.append(_writable(o.tangent))
        else:
            ys.append(o)
            dys.append(_zeros_like_leaf(o) if is_differentiable(o) else None)
    return tree_unflatten(out_def, ys), tree_unflatten(out_def, dys)


# ---- custom rules and stop_gradient ------------------------------------------------------------

stop_gradient_p = Primitive("stop_gradient", lambda x: x, keep_args=False)
stop_gradient_p.def_rules(shape=lambda x: x, vjps=(lambda g, ans, x: None,),
                          jvps=(lambda t, ans, x: None,))


def stop_gradient(x: Any) -> Any:
    """``x`` itself, seen as a constant by every transformation.

    A value known now (all its tracers eager) comes back as a plain array, a
    copy so that writing into it cannot reach the tape: ``float()`` of it
    is then allowed.
    """
    return tree_map(_constant, x)


def _constant(leaf: Any) -> Any:
    if not isinstance(leaf, Tracer):
        return leaf
    v = leaf
    while isinstance(v, ConcreteTracer):
        v = v._primal()
    if isinstance(v, Tracer):  # staged underneath: the graph must record it
        return stop_gradient_p.bind(leaf)
    return v.copy() if hasattr(v, "copy") else v


def top_trace(args: Sequence[Any], what: str = "a custom rule") -> Any:
    """The highest-level trace among the leaves of ``args`` (``None`` if none); a
    finished one is refused, as `bind` refuses it."""
    top, level = None, -1
    # Arrays and tracers are leaves already: no walk for the common call f(x).
    leaves = args if all(type(a) is np.ndarray or isinstance(a, Tracer) for a in args) \
        else tree_flatten(list(args))[0]
    for leaf in leaves:
        if isinstance(leaf, Tracer):
            if not leaf._trace.active:
                raise escaped_tracer_error(what, leaf._trace)
            if leaf._trace.level > level:
                top, level = leaf._trace, leaf._trace.level
    return top


def adjoint(fun: Callable) -> Callable:
    """Give ``fun`` a hand-written pullback: ``fun`` returns ``(y, back)`` and
    ``back(dy)`` returns a tuple with one cotangent per positional argument.

    The decorated function returns ``y`` alone. Under forward mode the primal
    code of ``fun`` is differentiated directly.
    """
    @functools.wraps(fun)
    def wrapped(*args: Any) -> Any:
        trace = top_trace(args)
        if trace is None:
            return fun(*args)[0]
        return trace.process_custom_vjp(fun, args)

    wrapped.__wengert_adjoint__ = fun
    return wrapped
