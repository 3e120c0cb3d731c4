"""`checkpoint(f)`: trade compute for memory in reverse mode.

Under a reverse trace the checkpointed call becomes ONE tape entry that keeps
only ``f``'s inputs: the forward pass runs ``f`` on plain values (nothing of
it is taped at that level) and the pullback re-runs ``f`` under a fresh
`pullback`. Gradients are those of ``f``.

``checkpoint(f, policy="save_matmuls")`` (JAX's ``dots_saveable``) keeps the
outputs of the matrix products and convolutions as well: the forward pass
records them, and the recomputation takes them instead of multiplying again
(the cheap elementwise work is redone). A policy is a name in `POLICIES` or a
function of a primitive's name.

Zygote's caveat: this is only right if ``f`` is pure — the recomputation must
see what the forward pass saw. The common impure case, drawing random
numbers from a generator that lives outside the call (NumPy's global RNG, a
`Generator` closed over, a global, or passed in), is detected: a warning
names it, and the generator's state is replayed during the recomputation so
the gradient still matches the forward pass. Pass a seed as an argument and
build the generator inside ``f`` to make it pure.
"""

from __future__ import annotations

import contextlib
import functools
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._api import pullback, top_trace
from ._core import ConcreteTracer, Primitive, Trace, Tracer, trace_level
from ._reverse import ReverseTrace
from .custom import call_adjoint
from .tree import tree_flatten, tree_leaves, tree_unflatten


class ImpureCheckpointWarning(UserWarning):
    """A checkpointed function changed state that its recomputation depends on."""


#: Which primitives' outputs the forward pass keeps, by policy name.
POLICIES: dict[str, frozenset[str]] = {
    "nothing_saveable": frozenset(),
    "save_matmuls": frozenset({"dot_general", "conv_general_dilated"}),
    "dots_saveable": frozenset({"dot_general", "conv_general_dilated"}),
}


def _saveable(policy: str | Callable[[str], bool] | None) -> Callable[[str], bool] | None:
    if policy is None:
        return None
    if callable(policy):
        return policy
    if policy not in POLICIES:
        raise ValueError(f"checkpoint: unknown policy {policy!r}; use one of "
                         f"{sorted(POLICIES)} or a function of a primitive's name")
    names = POLICIES[policy]
    return None if not names else names.__contains__


def checkpoint(f: Callable | None = None, *,
               policy: str | Callable[[str], bool] | None = None) -> Callable:
    """``f`` with the same value and gradients, storing only its inputs for the backward pass
    (and, with ``policy``, the outputs of the primitives it names: see the module doc).

    Values that ``f`` reaches are inputs too and traced ones receive gradients:
    its closure cells (recursively through closed-over functions), and for a
    callable object (an ``nn`` layer, any registered tree with ``__call__``, a
    bound method, a `functools.partial`) its leaves. Usable as ``@checkpoint`` or
    ``@checkpoint(policy="save_matmuls")``.
    """
    if f is None:
        return functools.partial(checkpoint, policy=policy)
    saveable = _saveable(policy)

    @functools.wraps(f)
    def wrapped(*args: Any) -> Any:
        rebuild, captured = _traced_inputs(f)
        trace = top_trace((captured, args))
        if not isinstance(trace, ReverseTrace):
            return f(*args)

        def pure(captured: list, *xs: Any) -> Any:
            return rebuild(captured)(*xs)

        return call_adjoint(trace, lambda captured, *xs: _forward(pure, captured, *xs),
                            (captured, *args))

    def _forward(pure: Callable, captured: list, *xs: Any) -> tuple[Any, Callable]:
        generators = _generators(f, xs)
        before = [_get_state(g) for g in generators]
        if saveable is None:
            y, saved = pure(captured, *xs), None
        else:
            y, saved = _recorded(saveable, pure, captured, xs)
        drawn = [(g, s) for g, s in zip(generators, before) if not _same(s, _get_state(g))]
        if drawn:
            warnings.warn(
                f"checkpoint: {getattr(f, '__qualname__', f)!r} drew random numbers from "
                f"{', '.join(_describe(g) for g, _ in drawn)} without an explicit key, so its "
                "recomputation in the backward pass is not the same function. Its state is "
                "replayed for the recomputation; pass a seed as an argument and create the "
                "generator inside the function to make it pure.",
                ImpureCheckpointWarning, stacklevel=5)

        def back(g: Any) -> tuple:
            with _replayed(drawn):
                if saved is None:
                    return pullback(pure, captured, *xs)[1](g)
                return _pullback_reusing(saveable, saved, pure, captured, xs, g)

        return y, back

    return wrapped


# ---- policies: keep some outputs of the forward pass for the recomputation ------------------
class _KeptTracer(ConcreteTracer):
    __slots__ = ("value",)

    def __init__(self, trace: Trace, value: Any) -> None:
        self._trace = trace
        self.value = value

    def _primal(self) -> Any:
        return self.value


class _SavingTrace(Trace):
    """Sees the primitives applied to the checkpointed function's inputs. Recording, it
    keeps the outputs of the saveable ones in order; replaying (the recomputation), it
    returns those instead of computing them again; afterwards (the backward pass of the
    recomputation) it computes everything."""

    __slots__ = ("saveable", "saved", "replaying", "next")

    def __init__(self, saveable: Callable[[str], bool], saved: list | None) -> None:
        super().__init__()
        self.saveable = saveable
        self.replaying = saved is not None
        self.saved = [] if saved is None else saved
        self.next = 0

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        vals = [a.value if type(a) is _KeptTracer and a._trace is self else a for a in args]
        if self.replaying and self.saveable(prim.name):
            out = self.saved[self.next]
            self.next += 1
        else:
            out = prim.bind(*vals, **params)
            if not self.replaying and self.saveable(prim.name):
                self.saved.append(out)
        if prim.multiple_results:
            return tuple(_KeptTracer(self, o) for o in out)
        return _KeptTracer(self, out)

    def wrap(self, tree: Any) -> Any:
        leaves, treedef = tree_flatten(tree)
        return tree_unflatten(treedef, [_KeptTracer(self, x) if hasattr(x, "dtype") else x
                                        for x in leaves])

    def unwrap(self, tree: Any) -> Any:
        leaves, treedef = tree_flatten(tree, is_leaf=lambda x: x is None)
        return tree_unflatten(treedef, [x.value if type(x) is _KeptTracer and x._trace is self
                                        else x for x in leaves])


def _recorded(saveable: Callable[[str], bool], pure: Callable, captured: list, xs: tuple
              ) -> tuple[Any, list]:
    trace = _SavingTrace(saveable, None)
    with trace_level(trace):
        y = trace.unwrap(pure(*trace.wrap([captured, *xs])))
    return y, trace.saved


def _pullback_reusing(saveable: Callable[[str], bool], saved: list, pure: Callable,
                      captured: list, xs: tuple, g: Any) -> tuple:
    trace = _SavingTrace(saveable, saved)
    with trace_level(trace):
        _, back = pullback(pure, *trace.wrap([captured, *xs]))
        if trace.next != len(saved):
            raise RuntimeError("checkpoint: the recomputation applied other primitives than "
                               "the forward pass (is the function pure?)")
        trace.replaying = False
        return trace.unwrap(back(g))


def _traced_inputs(obj: Any, seen: frozenset = frozenset()) -> tuple[Callable, list]:
    """The traced values reachable from the callable ``obj``, and ``rebuild(values)``
    giving ``obj`` with them replaced (``obj`` itself while none are found).

    Looks through closure cells (recursively into closed-over functions), the
    object and function of a bound method, a `functools.partial`'s function
    and arguments, and any tree (an ``nn`` layer, a registered class). An
    object that is not a tree but holds traced attributes is refused: its
    parameters would get no gradient.
    """
    if isinstance(obj, types.FunctionType):
        if id(obj) in seen:  # recursion: left as it is
            return (lambda _: obj), []
        return _function_inputs(obj, seen | {id(obj)})
    if isinstance(obj, types.MethodType):
        return _parts_inputs(obj, [obj.__func__, obj.__self__], seen,
                             lambda func, self: types.MethodType(func, self))
    if isinstance(obj, functools.partial):
        return _parts_inputs(obj, [obj.func, obj.args, obj.keywords], seen,
                             lambda func, a, kw: functools.partial(func, *a, **kw))
    leaves, tree = tree_flatten(obj)
    if any(isinstance(x, Tracer) for x in leaves):
        return functools.partial(tree_unflatten, tree), leaves
    for leaf in leaves:
        _refuse_hidden_tracers(leaf)
    return (lambda _: obj), []


def _function_inputs(f: types.FunctionType, seen: frozenset) -> tuple[Callable, list]:
    cells = f.__closure__ or ()
    parts = []  # (cell index, rebuild of its contents, number of values)
    values: list = []
    for k, cell in enumerate(cells):
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        inner, found = _traced_inputs(content, seen)
        if found:
            parts.append((k, inner, len(found)))
            values.extend(found)
    if not parts:
        return (lambda _: f), []

    def rebuild(new: list) -> Callable:
        closure = list(cells)
        start = 0
        for k, inner, n in parts:
            closure[k] = types.CellType(inner(list(new[start:start + n])))
            start += n
        g = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__,
                               tuple(closure))
        g.__kwdefaults__ = f.__kwdefaults__
        return g

    return rebuild, values


def _parts_inputs(obj: Any, parts: list, seen: frozenset, make: Callable
                  ) -> tuple[Callable, list]:
    """Inputs of ``obj``, made of ``parts`` (``make(*parts)`` builds it again)."""
    found = [_traced_inputs(p, seen) for p in parts]
    values = [v for _, vs in found for v in vs]
    if not values:
        return (lambda _: obj), []

    def rebuild(new: list) -> Any:
        rebuilt, start = [], 0
        for (inner, vs), p in zip(found, parts):
            rebuilt.append(inner(new[start:start + len(vs)]) if vs else p)
            start += len(vs)
        return make(*rebuilt)

    return rebuild, values


def _refuse_hidden_tracers(leaf: Any) -> None:
    """A plain object (not a tree) whose attributes hold traced values cannot be
    rebuilt around new values: say so instead of dropping their gradients."""
    attrs = getattr(leaf, "__dict__", None)
    if not attrs or isinstance(leaf, (type, types.ModuleType, types.FunctionType)):
        return
    for name, value in attrs.items():
        if any(isinstance(x, Tracer) for x in tree_leaves(value)):
            raise TypeError(
                f"checkpoint: the {type(leaf).__name__} object it calls holds a traced value "
                f"in its attribute {name!r}, which checkpoint cannot see (the class is not a "
                "tree), so its gradient would be lost. Register the class with "
                "wengert.ad.register_tree, or pass the value as an argument of the "
                "checkpointed function.")


def _generators(f: Callable, args: tuple) -> list:
    """Random generators ``f`` can reach: NumPy's global one, closure cells, globals it
    names, and its arguments."""
    found = [np.random.mtrand._rand]
    candidates = list(tree_leaves(list(args)))
    f = getattr(f, "__func__", f)  # a bound method: its function's cells and globals
    code = getattr(f, "__code__", None)
    for cell in getattr(f, "__closure__", None) or ():
        with contextlib.suppress(ValueError):  # an empty cell
            candidates.append(cell.cell_contents)
    if code is not None:
        names = getattr(f, "__globals__", {})
        candidates.extend(names[n] for n in code.co_names if n in names)
    for c in candidates:
        if isinstance(c, (np.random.Generator, np.random.RandomState)) and \
                all(c is not g for g in found):
            found.append(c)
    return found


def _get_state(g: Any) -> Any:
    return g.get_state(legacy=False) if isinstance(g, np.random.RandomState) else \
        g.bit_generator.state


def _set_state(g: Any, state: Any) -> None:
    if isinstance(g, np.random.RandomState):
        g.set_state(state)
    else:
        g.bit_generator.state = state


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _describe(g: Any) -> str:
    return "NumPy's global random state" if g is np.random.mtrand._rand else \
        f"a {type(g).__name__} it can reach"


@contextlib.contextmanager
def _replayed(drawn: list) -> Iterator[None]:
    """Rewind each generator to its state before the forward pass, then restore it."""
    now = [_get_state(g) for g, _ in drawn]
    for g, before in drawn:
        _set_state(g, before)
    try:
        yield
    finally:
        for (g, _), state in zip(drawn, now):
            _set_state(g, state)
